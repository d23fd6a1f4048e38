package brokermesh

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// TrustList is the set of NodeIds a broker serves. The zero value trusts nobody.
type TrustList struct {
	ids map[key.PublicKey]bool
}

// ParseTrustList parses a comma- or space-separated list of NodeIds (iroh base32 or hex).
func ParseTrustList(s string) (TrustList, error) {
	t := TrustList{ids: map[key.PublicKey]bool{}}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		id, err := key.ParsePublicKey(f)
		if err != nil {
			return TrustList{}, fmt.Errorf("trust list entry %q: %w", f, err)
		}
		t.ids[id] = true
	}
	return t, nil
}

// Add trusts id.
func (t *TrustList) Add(id key.PublicKey) {
	if t.ids == nil {
		t.ids = map[key.PublicKey]bool{}
	}
	t.ids[id] = true
}

// Allows reports whether id is trusted.
func (t TrustList) Allows(id key.PublicKey) bool { return t.ids[id] }

// Len is the number of trusted ids.
func (t TrustList) Len() int { return len(t.ids) }

// Serve registers the KafkaOp protocol on ep: connections from trusted NodeIds are served by
// srv; any other peer's connection is closed with ErrCodeUntrusted and a message naming it.
func Serve(ep *endpoint.Endpoint, srv *Server, trust TrustList, logger *slog.Logger) {
	ServeFunc(ep, srv, trust.Allows, logger)
}

// ServeFunc is Serve with a trust decision that may change while serving (a broker of the
// metadata quorum also trusts the brokers the quorum admits); allows is called once per
// connection and must be safe for concurrent use.
func ServeFunc(ep *endpoint.Endpoint, srv *Server, allows func(key.PublicKey) bool, logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	refused := newRefusalLog(logger, nil) // once per node per minute (refusal.go)
	ep.Handle(ALPN, func(ctx context.Context, c *endpoint.Conn) {
		defer c.Close()
		id := c.RemoteID()
		if !allows(id) {
			refused.refused(id, fmt.Sprint(c.RemoteAddr()))
			_ = c.CloseWithError(uint64(ErrCodeUntrusted), "node "+id.String()+" is not trusted by this broker")
			return
		}
		srv.ServeConn(ctx, id.String(), heldAccepter{c})
	})
}

// heldAccepter accepts a connection's streams leaving their credit to the server
// (Server.ServeConn gives it back with its next answer).
type heldAccepter struct{ c *endpoint.Conn }

func (h heldAccepter) AcceptStream(ctx context.Context) (*quic.Stream, error) {
	return h.c.AcceptStreamHeld(ctx)
}

// MeshOpener opens KafkaOp streams to one broker over the mesh, dialing (and re-dialing after
// a connection is lost) through the endpoint, which reuses a live connection.
type MeshOpener struct {
	ep   *endpoint.Endpoint
	addr endpoint.NodeAddr

	mu   sync.Mutex
	conn *endpoint.Conn // guarded by mu; nil until dialed or after it failed
}

// NewMeshOpener returns an opener for the broker at addr.
func NewMeshOpener(ep *endpoint.Endpoint, addr endpoint.NodeAddr) *MeshOpener {
	ep.AddNodeAddr(addr)
	return &MeshOpener{ep: ep, addr: addr}
}

func (m *MeshOpener) dial(ctx context.Context) (*endpoint.Conn, error) {
	m.mu.Lock()
	c := m.conn
	m.mu.Unlock()
	if c != nil && c.Context().Err() == nil {
		return c, nil
	}
	c, err := m.ep.Dial(ctx, m.addr, ALPN)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.conn = c
	m.mu.Unlock()
	return c, nil
}

// Reset implements Resetter: the connection dialed last is closed (with reason), so every
// stream on it fails now and the next OpenStream dials a new one.
func (m *MeshOpener) Reset(reason string) {
	m.mu.Lock()
	c := m.conn
	m.conn = nil
	m.mu.Unlock()
	if c != nil {
		_ = c.CloseWithError(0, reason)
	}
}

// OpenStream implements StreamOpener.
func (m *MeshOpener) OpenStream(ctx context.Context) (Stream, error) {
	for attempt := 0; ; attempt++ {
		c, err := m.dial(ctx)
		if err != nil {
			return nil, err
		}
		st, err := c.OpenStream(ctx)
		if err == nil {
			return st, nil
		}
		if attempt > 0 || ctx.Err() != nil {
			return nil, err
		}
		// The connection died under us (broker restarted): forget it and dial once more.
		m.mu.Lock()
		if m.conn == c {
			m.conn = nil
		}
		m.mu.Unlock()
		_ = c.Close()
	}
}
