package interop

// A quic-go Transport for mesh/gossip, built on the bare TLS peer of rawtls_test.go, so that the
// gossip interop tests do not wait for mesh/endpoint. It records every byte a peer sends us on
// the gossip stream, so tests can check Rust's frames against our codec.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

var gossipQUICConfig = &quic.Config{
	HandshakeIdleTimeout: 5 * time.Second,
	MaxIdleTimeout:       30 * time.Second,
	KeepAlivePeriod:      time.Second, // as iroh
	MaxIncomingStreams:   16,
}

// goGossipNode is a Go gossip node on its own loopback UDP socket.
type goGossipNode struct {
	sk   key.SecretKey
	id   key.PublicKey
	cert tls.Certificate
	udp  *net.UDPConn
	tr   *quic.Transport
	ln   *quic.Listener
	g    *gossip.Gossip
	wg   sync.WaitGroup

	mu       sync.Mutex
	book     map[key.PublicKey][]netip.AddrPort
	captured []capturedStream // bytes received per stream, in stream order
}

func newGoGossipNode(t testing.TB, mod func(*gossip.Config)) *goGossipNode {
	t.Helper()
	sk := key.GenerateSecretKey()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n := &goGossipNode{
		sk: sk, id: sk.Public(), udp: udp, tr: &quic.Transport{Conn: udp},
		cert: rawCert(t, rawCertOpts{signer: sk.Ed25519()}),
		book: make(map[key.PublicKey][]netip.AddrPort),
	}
	ln, err := n.tr.Listen(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{n.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{gossip.ALPN},
	}, gossipQUICConfig)
	if err != nil {
		t.Fatal(err)
	}
	n.ln = ln
	cfg := gossip.Config{
		Transport: n,
		Me:        n.id,
		Addr: func() proto.AddrInfo {
			return proto.AddrInfo{Direct: []netip.AddrPort{n.addrPort()}}
		},
		Logf: func(string, ...any) {},
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := gossip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.g = g
	n.wg.Go(n.acceptLoop)
	t.Cleanup(n.Close)
	return n
}

func (n *goGossipNode) addrPort() netip.AddrPort {
	return n.udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (n *goGossipNode) Close() {
	_ = n.g.Close()
	_ = n.ln.Close()
	n.wg.Wait()
	_ = n.tr.Close()
	_ = n.udp.Close()
}

func (n *goGossipNode) acceptLoop() {
	var inner sync.WaitGroup
	defer inner.Wait()
	for {
		c, err := n.ln.Accept(context.Background())
		if err != nil {
			return
		}
		inner.Go(func() {
			id, err := peerID(c)
			if err != nil {
				_ = c.CloseWithError(1, "bad certificate")
				return
			}
			_ = n.g.HandleConn(c.Context(), &quicGossipConn{n: n, c: c, remote: id})
		})
	}
}

func peerID(c *quic.Conn) (key.PublicKey, error) {
	certs := c.ConnectionState().TLS.PeerCertificates
	if len(certs) != 1 {
		return key.PublicKey{}, fmt.Errorf("%d peer certificates", len(certs))
	}
	pub, err := certNodeID(certs[0].Raw)
	if err != nil {
		return key.PublicKey{}, err
	}
	return key.PublicKeyFromBytes(pub)
}

// AddPeerAddr implements gossip.Transport: PeerData teaches us addresses.
func (n *goGossipNode) AddPeerAddr(peer key.PublicKey, info proto.AddrInfo) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.book[peer] = append([]netip.AddrPort(nil), info.Direct...)
}

func (n *goGossipNode) learn(peer key.PublicKey, addrs ...netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.book[peer] = addrs
}

// Dial implements gossip.Transport.
func (n *goGossipNode) Dial(ctx context.Context, peer key.PublicKey) (gossip.Conn, error) {
	n.mu.Lock()
	addrs := n.book[peer]
	n.mu.Unlock()
	var to netip.AddrPort
	for _, a := range addrs {
		if a.Addr().Unmap().Is4() {
			to = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
			break
		}
	}
	if !to.IsValid() {
		return nil, fmt.Errorf("no IPv4 address for %s", peer.ShortString())
	}
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{n.cert},
		InsecureSkipVerify: true, // iroh certificates do not chain; checked below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) != 1 {
				return errors.New("want exactly one certificate")
			}
			pub, err := certNodeID(raw[0])
			if err != nil {
				return err
			}
			if !bytes.Equal(pub, peer.Ed25519()) {
				return errors.New("certificate is for another node")
			}
			return nil
		},
		NextProtos: []string{gossip.ALPN},
		ServerName: "localhost",
	}
	c, err := n.tr.Dial(ctx, net.UDPAddrFromAddrPort(to), conf, gossipQUICConfig)
	if err != nil {
		return nil, err
	}
	return &quicGossipConn{n: n, c: c, remote: peer}, nil
}

type quicGossipConn struct {
	n      *goGossipNode
	c      *quic.Conn
	remote key.PublicKey
}

func (q *quicGossipConn) RemoteID() key.PublicKey { return q.remote }

func (q *quicGossipConn) OpenStream(ctx context.Context) (gossip.Stream, error) {
	s, err := q.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return q.n.record(s, q.remote), nil
}

func (q *quicGossipConn) AcceptStream(ctx context.Context) (gossip.Stream, error) {
	s, err := q.c.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return q.n.record(s, q.remote), nil
}

func (q *quicGossipConn) Close(code uint64, reason string) error {
	return q.c.CloseWithError(quic.ApplicationErrorCode(code), reason)
}

// recStream tees what the peer sends into the node's capture.
type recStream struct {
	*quic.Stream
	n   *goGossipNode
	idx int
}

type capturedStream struct {
	from key.PublicKey
	data []byte
}

func (n *goGossipNode) record(s *quic.Stream, from key.PublicKey) gossip.Stream {
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
