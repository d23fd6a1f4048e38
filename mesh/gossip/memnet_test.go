package gossip

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// memNet is an in-memory Transport: connections are pairs of io.Pipes.
type memNet struct {
	mu    sync.Mutex
	nodes map[key.PublicKey]*memNode
	wg    sync.WaitGroup // HandleConn goroutines
}

type memNode struct {
	net    *memNet
	id     key.PublicKey
	accept func(ctx context.Context, c Conn) // nil: refuses connections; guarded by net.mu after start

	mu    sync.Mutex
	addrs map[key.PublicKey]proto.AddrInfo
}

func newMemNet() *memNet { return &memNet{nodes: make(map[key.PublicKey]*memNode)} }

func (n *memNet) node(id key.PublicKey) *memNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := &memNode{net: n, id: id, addrs: make(map[key.PublicKey]proto.AddrInfo)}
	n.nodes[id] = m
	return m
}

func (m *memNode) AddPeerAddr(peer key.PublicKey, info proto.AddrInfo) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addrs[peer] = info
}

func (m *memNode) addr(peer key.PublicKey) (proto.AddrInfo, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.addrs[peer]
	return a, ok
}

var errNoRoute = errors.New("memnet: no route to peer")

func (m *memNode) Dial(ctx context.Context, peer key.PublicKey) (Conn, error) {
	m.net.mu.Lock()
	target := m.net.nodes[peer]
	var accept func(context.Context, Conn)
	if target != nil {
		accept = target.accept
	}
	m.net.mu.Unlock()
	if accept == nil {
		return nil, errNoRoute
	}
	a, b := memPair(m.id, peer)
	m.net.wg.Add(1)
	go func() {
		defer m.net.wg.Done()
		accept(context.Background(), b)
	}()
	return a, nil
}

// memPair returns the two ends of a connection between a (dialer) and b.
func memPair(a, b key.PublicKey) (*memConn, *memConn) {
	abR, abW := io.Pipe()
	baR, baW := io.Pipe()
	sh := &memShared{opened: make(chan struct{}), closed: make(chan struct{}), pipes: []*io.PipeReader{abR, baR}, writers: []*io.PipeWriter{abW, baW}}
	ca := &memConn{sh: sh, remote: b, stream: &memStream{r: baR, w: abW}}
	cb := &memConn{sh: sh, remote: a, stream: &memStream{r: abR, w: baW}}
	return ca, cb
}

type memShared struct {
	once     sync.Once
	openOnce sync.Once
	opened   chan struct{}
	closed   chan struct{}
	pipes    []*io.PipeReader
	writers  []*io.PipeWriter
	code     uint64
}

type memConn struct {
	sh     *memShared
	remote key.PublicKey
	stream *memStream
}

type memStream struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (s *memStream) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *memStream) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *memStream) Close() error                { return s.w.Close() }

var errConnClosed = errors.New("memnet: connection closed")

func (c *memConn) RemoteID() key.PublicKey { return c.remote }

func (c *memConn) OpenStream(ctx context.Context) (Stream, error) {
	select {
	case <-c.sh.closed:
		return nil, errConnClosed
	default:
	}
	c.sh.openOnce.Do(func() { close(c.sh.opened) })
	return c.stream, nil
}

func (c *memConn) AcceptStream(ctx context.Context) (Stream, error) {
	select {
	case <-c.sh.opened:
		return c.stream, nil
	case <-c.sh.closed:
		return nil, errConnClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *memConn) Close(code uint64, reason string) error {
	c.sh.once.Do(func() {
		c.sh.code = code
		close(c.sh.closed)
		for _, p := range c.sh.pipes {
			p.CloseWithError(errConnClosed)
		}
		for _, w := range c.sh.writers {
			w.CloseWithError(errConnClosed)
		}
	})
	return nil
}

func (c *memConn) isClosed() bool {
	select {
	case <-c.sh.closed:
		return true
	default:
		return false
	}
}
