package interop

// Go gossip nodes for the interop tests: mesh/gossip on a real mesh/endpoint bound to loopback,
// with a Transport wrapper that records every byte a peer sends us on the gossip stream, so tests
// can check Rust's frames against our codec.

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// goGossipNode is a Go gossip node on its own endpoint.
type goGossipNode struct {
	ep *endpoint.Endpoint
	id key.PublicKey
	g  *gossip.Gossip
	tr gossip.Transport

	mu       sync.Mutex
	captured []capturedStream // bytes received per stream, in stream order
}

type capturedStream struct {
	from key.PublicKey
	data []byte
}

func newGoGossipNode(t testing.TB, mod func(*gossip.Config)) *goGossipNode {
	t.Helper()
	ep, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	n := &goGossipNode{ep: ep, id: ep.NodeID(), tr: gossip.EndpointTransport(ep)}
	cfg := gossip.Config{
		Transport: n,
		Me:        n.id,
		Addr:      func() proto.AddrInfo { return proto.AddrInfo{Direct: []netip.AddrPort{n.addrPort()}} },
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := gossip.New(cfg)
	if err != nil {
		_ = ep.Close()
		t.Fatal(err)
	}
	n.g = g
	ep.Handle(gossip.ALPN, func(ctx context.Context, c *endpoint.Conn) {
		_ = g.HandleConn(ctx, &recConn{Conn: gossip.EndpointConn(c), n: n})
	})
	t.Cleanup(n.Close)
	return n
}

func (n *goGossipNode) addrPort() netip.AddrPort { return n.ep.LocalAddr() }

func (n *goGossipNode) Close() {
	_ = n.g.Close()
	_ = n.ep.Close()
}

// learn puts a peer's addresses in the endpoint's address book.
func (n *goGossipNode) learn(peer key.PublicKey, addrs ...netip.AddrPort) {
	n.ep.AddNodeAddr(endpoint.NodeAddr{ID: peer, Direct: addrs})
}

// Dial implements gossip.Transport.
func (n *goGossipNode) Dial(ctx context.Context, peer key.PublicKey) (gossip.Conn, error) {
	c, err := n.tr.Dial(ctx, peer)
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, n: n}, nil
}

// AddPeerAddr implements gossip.Transport.
func (n *goGossipNode) AddPeerAddr(peer key.PublicKey, info proto.AddrInfo) {
	n.tr.AddPeerAddr(peer, info)
}

type recConn struct {
	gossip.Conn
	n *goGossipNode
}

func (c *recConn) OpenStream(ctx context.Context) (gossip.Stream, error) {
	s, err := c.Conn.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	return c.n.record(s, c.RemoteID()), nil
}

func (c *recConn) AcceptStream(ctx context.Context) (gossip.Stream, error) {
	s, err := c.Conn.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return c.n.record(s, c.RemoteID()), nil
}

// recStream tees what the peer sends into the node's capture.
type recStream struct {
	gossip.Stream
	n   *goGossipNode
	idx int
}

func (n *goGossipNode) record(s gossip.Stream, from key.PublicKey) gossip.Stream {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.captured = append(n.captured, capturedStream{from: from})
	return &recStream{Stream: s, n: n, idx: len(n.captured) - 1}
}

func (r *recStream) Read(p []byte) (int, error) {
	k, err := r.Stream.Read(p)
	if k > 0 {
		r.n.mu.Lock()
		r.n.captured[r.idx].data = append(r.n.captured[r.idx].data, p[:k]...)
		r.n.mu.Unlock()
	}
	return k, err
}

// capturedFrames splits everything the peers accepted by from sent us into frames (length
// prefix included).
func (n *goGossipNode) capturedFrames(from func(key.PublicKey) bool) [][]byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out [][]byte
	for _, cs := range n.captured {
		if !from(cs.from) {
			continue
		}
		r := bytes.NewReader(cs.data)
		for {
			body, err := proto.ReadFrame(r, nil, 1<<20)
			if err != nil {
				break
			}
			out = append(out, append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
		}
	}
	return out
}
