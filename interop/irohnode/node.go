package irohnode

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"
)

// Mode is how a Rust node serves streams on an ALPN (see the package doc).
type Mode string

// The stream-serving modes.
const (
	Echo   Mode = "echo"
	Sink   Mode = "sink"
	Source Mode = "source"
)

// NodeAddr is iroh's NodeAddr as the FFI takes it: node id (base32 text), direct addresses
// ("ip:port") and an optional relay URL.
type NodeAddr struct {
	NodeID    string   `json:"nodeId"`
	RelayURL  string   `json:"relayUrl,omitempty"`
	Addresses []string `json:"addresses"`
}

// NodeOptions configures a Rust node.
type NodeOptions struct {
	Name      string          // handle inside the driver; empty picks one
	SecretKey []byte          // 32 bytes; nil means random
	ALPNs     map[string]Mode // protocols served, fixed for the node's life
	Discovery bool            // FFI "Default" discovery (pkarr, DNS, mDNS) instead of "None"
	IPv4Addr  string          // default 127.0.0.1:0
	IPv6Addr  string          // default [::1]:0
}

// Node is a Rust iroh node inside a driver.
type Node struct {
	d    *Driver
	Name string
	ID   string   // node id, iroh 0.28 base32
	Addr NodeAddr // as the node reports it; RelayURL is the unreachable default relay
}

// Direct returns the node's address without its relay URL: what a Go peer in the namespace can
// actually reach.
func (n *Node) Direct() NodeAddr {
	return NodeAddr{NodeID: n.ID, Addresses: append([]string(nil), n.Addr.Addresses...)}
}

// Driver returns the driver hosting the node.
func (n *Node) Driver() *Driver { return n.d }

// NewNode creates a Rust node in this driver.
func (d *Driver) NewNode(ctx context.Context, o NodeOptions) (*Node, error) {
	args := map[string]any{"name": o.Name, "alpns": o.ALPNs}
	if o.SecretKey != nil {
		if len(o.SecretKey) != 32 {
			return nil, fmt.Errorf("irohnode: secret key must be 32 bytes, got %d", len(o.SecretKey))
		}
		args["secretKey"] = hex.EncodeToString(o.SecretKey)
	}
	if o.Discovery {
		args["discovery"] = "default"
	}
	if o.IPv4Addr != "" {
		args["ipv4Addr"] = o.IPv4Addr
	}
	if o.IPv6Addr != "" {
		args["ipv6Addr"] = o.IPv6Addr
	}
	var r struct {
		Name string `json:"name"`
		NodeAddr
	}
	if err := d.Call(ctx, "create", args, &r); err != nil {
		return nil, err
	}
	return &Node{d: d, Name: r.Name, ID: r.NodeID, Addr: r.NodeAddr}, nil
}

// NodeAddr asks the node for its current address.
func (n *Node) NodeAddr(ctx context.Context) (NodeAddr, error) {
	var a NodeAddr
	err := n.d.Call(ctx, "nodeAddr", map[string]any{"node": n.Name}, &a)
	return a, err
}

// AddNodeAddr teaches the node a peer's address (needed before the peer dials it: iroh drops
// QUIC packets from addresses it does not know).
func (n *Node) AddNodeAddr(ctx context.Context, a NodeAddr) error {
	return n.d.Call(ctx, "addNodeAddr", map[string]any{"node": n.Name, "addr": a}, nil)
}

// RemoteInfo is one entry of the node's remote list.
type RemoteInfo struct {
	NodeID   string   `json:"nodeId"`
	RelayURL string   `json:"relayUrl"`
	Addrs    []string `json:"addrs"`
	ConnType string   `json:"connType"`
}

// RemoteInfos lists the peers the node knows.
func (n *Node) RemoteInfos(ctx context.Context) ([]RemoteInfo, error) {
	var r struct {
		Remotes []RemoteInfo `json:"remotes"`
	}
	err := n.d.Call(ctx, "remoteInfo", map[string]any{"node": n.Name}, &r)
	return r.Remotes, err
}

// Shutdown stops the node.
func (n *Node) Shutdown(ctx context.Context) error {
	return n.d.Call(ctx, "shutdown", map[string]any{"node": n.Name}, nil)
}

// Conn is a connection held by the driver.
type Conn struct {
	n          *Node
	Handle     string
	Remote     string        // the peer's node id as Rust verified it
	RemoteAddr string        // the peer's UDP address
	DialTime   time.Duration // time the connect call took in the driver
}

// Connect dials addr on alpn. If serve is not empty, the Rust node also serves streams that the
// peer opens on this connection, in that mode.
func (n *Node) Connect(ctx context.Context, addr NodeAddr, alpn string, serve Mode) (*Conn, error) {
	var r struct {
		Conn       string  `json:"conn"`
		Remote     string  `json:"remote"`
		RemoteAddr string  `json:"remoteAddr"`
		MS         float64 `json:"ms"`
	}
	args := map[string]any{"node": n.Name, "addr": addr, "alpn": alpn}
	if serve != "" {
		args["serve"] = serve
	}
	if err := n.d.Call(ctx, "connect", args, &r); err != nil {
		return nil, err
	}
	return &Conn{n: n, Handle: r.Conn, Remote: r.Remote, RemoteAddr: r.RemoteAddr,
		DialTime: time.Duration(r.MS * float64(time.Millisecond))}, nil
}

// AcceptedConn returns the handle of a connection the node accepted (from an "accepted" event),
// so that tests can close it.
func (n *Node) AcceptedConn(e *Event) *Conn {
	return &Conn{n: n, Handle: e.Conn, Remote: e.Remote, RemoteAddr: e.RemoteAddr}
}

// Close closes the connection with an application error code and reason.
func (c *Conn) Close(ctx context.Context, code uint64, reason string) error {
	return c.n.d.Call(ctx, "closeConn", map[string]any{"conn": c.Handle, "code": code, "reason": reason}, nil)
}

// SendDatagram sends one unreliable QUIC datagram on the connection.
func (c *Conn) SendDatagram(ctx context.Context, data []byte) error {
	return c.n.d.Call(ctx, "sendDatagram", map[string]any{"conn": c.Handle, "data": data}, nil)
}

// ReadDatagram waits for the next QUIC datagram the peer sends on the connection. The driver
// keeps waiting after ctx ends; a later datagram then goes to that abandoned call.
func (c *Conn) ReadDatagram(ctx context.Context) ([]byte, error) {
	var r struct {
		Data []byte `json:"data"`
	}
	err := c.n.d.Call(ctx, "readDatagram", map[string]any{"conn": c.Handle}, &r)
	return r.Data, err
}

// Transfer describes streams a Rust node opens on a connection.
type Transfer struct {
	Kind    string // "bi" (default) or "uni"
	Streams int    // concurrent streams, default 1
	Bytes   int64  // bytes of Pattern per stream (with Request: bytes requested per stream)
	Request bool   // send an 8-byte big-endian request for Bytes instead of the data (a source peer)
}

// StreamResult is what one stream moved, as the Rust side counted it.
type StreamResult struct {
	SentBytes  int64   `json:"sentBytes"`
	SentSHA256 string  `json:"sentSha256"`
	RecvBytes  int64   `json:"recvBytes"`
	RecvSHA256 string  `json:"recvSha256"`
	MS         float64 `json:"ms"`
}

// TransferResult is the outcome of [Conn.Transfer].
type TransferResult struct {
	MS        float64        `json:"ms"`
	SentBytes int64          `json:"sentBytes"`
	RecvBytes int64          `json:"recvBytes"`
	MBps      float64        `json:"mbps"` // max(sent, received) bytes per second / 1e6
	Streams   []StreamResult `json:"streams"`
}

// Transfer opens streams from the Rust side and moves data; for bi streams it reads the peer's
// reply to the end at the same time, for uni streams it waits until the peer has every byte.
func (c *Conn) Transfer(ctx context.Context, t Transfer) (TransferResult, error) {
	if t.Kind == "" {
		t.Kind = "bi"
	}
	if t.Streams == 0 {
		t.Streams = 1
	}
	var r TransferResult
	err := c.n.d.Call(ctx, "transfer", map[string]any{
		"conn": c.Handle, "kind": t.Kind, "streams": t.Streams, "bytes": t.Bytes, "request": t.Request,
	}, &r)
	return r, err
}

// WaitAccepted waits for the node to accept a connection on alpn (any ALPN if empty).
func (n *Node) WaitAccepted(ctx context.Context, alpn string) (*Event, error) {
	return n.d.WaitEvent(ctx, func(e *Event) bool {
		return e.Name == "accepted" && e.Node == n.Name && (alpn == "" || e.ALPN == alpn)
	})
}

// WaitAcceptError waits for a refused incoming handshake on the node.
func (n *Node) WaitAcceptError(ctx context.Context) (*Event, error) {
	return n.d.WaitEvent(ctx, func(e *Event) bool { return e.Name == "acceptError" && e.Node == n.Name })
}

// WaitStream waits for a stream the node served on conn to end (any connection if conn is "").
func (n *Node) WaitStream(ctx context.Context, conn string) (*Event, error) {
	return n.d.WaitEvent(ctx, func(e *Event) bool {
		return e.Name == "stream" && e.Node == n.Name && (conn == "" || e.Conn == conn)
	})
}

// WaitClosed waits for the "closed" event of a connection.
func (c *Conn) WaitClosed(ctx context.Context) (*Event, error) {
	return c.n.d.WaitEvent(ctx, func(e *Event) bool { return e.Name == "closed" && e.Conn == c.Handle })
}

// Sub is a gossip subscription of a Rust node.
type Sub struct {
	n      *Node
	Handle string
}

// Subscribe joins a gossip topic with the given bootstrap node ids (their addresses must be known
// to the node, see [Node.AddNodeAddr]).
func (n *Node) Subscribe(ctx context.Context, topic [32]byte, bootstrap []string) (*Sub, error) {
	if bootstrap == nil {
		bootstrap = []string{}
	}
	var r struct {
		Sub string `json:"sub"`
	}
	err := n.d.Call(ctx, "subscribe", map[string]any{
		"node": n.Name, "topic": hex.EncodeToString(topic[:]), "bootstrap": bootstrap,
	}, &r)
	if err != nil {
		return nil, err
	}
	return &Sub{n: n, Handle: r.Sub}, nil
}

// Broadcast sends data to the whole swarm of the topic.
func (s *Sub) Broadcast(ctx context.Context, data []byte) error {
	return s.n.d.Call(ctx, "broadcast", map[string]any{"sub": s.Handle, "data": data}, nil)
}

// BroadcastNeighbors sends data to the direct neighbours only.
func (s *Sub) BroadcastNeighbors(ctx context.Context, data []byte) error {
	return s.n.d.Call(ctx, "broadcast", map[string]any{"sub": s.Handle, "data": data, "neighbors": true}, nil)
}

// Close leaves the topic.
func (s *Sub) Close(ctx context.Context) error {
	return s.n.d.Call(ctx, "unsubscribe", map[string]any{"sub": s.Handle}, nil)
}

// WaitEvent waits for a gossip event of this subscription: typ is one of joined, neighborUp,
// neighborDown, received, lagged, error ("" for any). match may further narrow it (nil: any).
func (s *Sub) WaitEvent(ctx context.Context, typ string, match func(*Event) bool) (*Event, error) {
	return s.n.d.WaitEvent(ctx, func(e *Event) bool {
		return e.Name == "gossip" && e.Sub == s.Handle && (typ == "" || e.Type == typ) && (match == nil || match(e))
	})
}
