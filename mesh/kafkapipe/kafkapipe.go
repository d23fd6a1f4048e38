package kafkapipe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/internal/acceptloop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// ALPN is the mesh protocol of Kafka connections.
const ALPN = "/meshkafka/kafka/0"

const maxAdvertise = 1024

// WritePreamble writes the preamble naming advertise.
func WritePreamble(w io.Writer, advertise string) error {
	if len(advertise) == 0 || len(advertise) > maxAdvertise || !utf8.ValidString(advertise) {
		return fmt.Errorf("kafkapipe: advertised address %q: 1 to %d bytes of UTF-8", advertise, maxAdvertise)
	}
	b := make([]byte, 3, 3+len(advertise))
	binary.BigEndian.PutUint16(b[1:], uint16(len(advertise)))
	_, err := w.Write(append(b, advertise...))
	return err
}

// ReadPreamble reads a preamble and returns the advertised address.
func ReadPreamble(r io.Reader) (string, error) {
	var h [3]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return "", fmt.Errorf("kafkapipe: preamble: %w", err)
	}
	if h[0] != 0 {
		return "", fmt.Errorf("kafkapipe: preamble version %d, want 0", h[0])
	}
	n := int(binary.BigEndian.Uint16(h[1:]))
	if n == 0 || n > maxAdvertise {
		return "", fmt.Errorf("kafkapipe: advertised address of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("kafkapipe: preamble: %w", err)
	}
	if !utf8.Valid(b) {
		return "", errors.New("kafkapipe: advertised address is not UTF-8")
	}
	if _, _, err := net.SplitHostPort(string(b)); err != nil {
		return "", fmt.Errorf("kafkapipe: advertised address: %w", err)
	}
	return string(b), nil
}

// Conn is one Kafka connection over the mesh: a QUIC stream as a net.Conn.
type Conn struct {
	*quic.Stream
	local, remote net.Addr
	// Advertise is the address the opener asked the gateway to name (accepted side only).
	Advertise string
	// Peer is the NodeId of the other side.
	Peer string
}

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Close ends both directions of the stream.
func (c *Conn) Close() error {
	c.Stream.CancelRead(0)
	return c.Stream.Close()
}

// meshAddr names a mesh peer as a net.Addr.
type meshAddr string

func (meshAddr) Network() string  { return "mesh" }
func (a meshAddr) String() string { return string(a) }

// Listener accepts Kafka connections arriving over the mesh on one endpoint.
type Listener struct {
	ep     *endpoint.Endpoint
	conns  chan *Conn
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

// Listen registers ALPN on ep and returns a listener of the streams that arrive on it. trust
// (nil: everyone) decides which NodeIds may connect; others are refused.
func Listen(ep *endpoint.Endpoint, trust func(endpoint.NodeAddr) bool) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{ep: ep, conns: make(chan *Conn), ctx: ctx, cancel: cancel}
	ep.Handle(ALPN, func(hctx context.Context, c *endpoint.Conn) {
		if trust != nil && !trust(endpoint.NodeAddr{ID: c.RemoteID()}) {
			c.CloseWithError(1, "not allowed")
			return
		}
		l.serve(hctx, c)
	})
	return l
}

func (l *Listener) serve(hctx context.Context, c *endpoint.Conn) {
	defer c.Close()
	c.ServeStreams(hctx, func(s *quic.Stream) {
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		adv, err := ReadPreamble(s)
		_ = s.SetReadDeadline(time.Time{})
		if err != nil {
			s.CancelRead(1)
			s.CancelWrite(1)
			return
		}
		kc := &Conn{Stream: s, local: meshAddr(l.ep.NodeID().String()), remote: meshAddr(c.RemoteID().String()),
			Advertise: adv, Peer: c.RemoteID().String()}
		select {
		case l.conns <- kc:
			// The gateway owns the stream now; keep the connection until it is done.
			<-s.Context().Done()
		case <-l.ctx.Done():
			kc.Close()
		case <-hctx.Done():
			kc.Close()
		}
	})
}

// Accept returns the next Kafka connection (a *Conn).
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting (connections already accepted stay).
func (l *Listener) Close() error {
	l.once.Do(l.cancel)
	return nil
}

// Addr is the endpoint's NodeId as a net.Addr.
func (l *Listener) Addr() net.Addr { return meshAddr(l.ep.NodeID().String()) }

// Dialer returns a dial function (franz-go's kgo.Dialer shape) that reaches the gateway at gw
// over ep for every address the client asks for, naming that address in the preamble: so the
// gateway's answers name the same addresses and the client keeps dialing through here. All
// streams share one mesh connection, dialed again when it was lost.
func Dialer(ep *endpoint.Endpoint, gw endpoint.NodeAddr) func(ctx context.Context, network, host string) (net.Conn, error) {
	var mu sync.Mutex
	var conn *endpoint.Conn
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		mu.Lock()
		c := conn
		if c == nil || c.Context().Err() != nil {
			var err error
			if c, err = ep.Dial(ctx, gw, ALPN); err != nil {
				mu.Unlock()
				return nil, err
			}
			conn = c
		}
		mu.Unlock()
		s, err := c.OpenStream(ctx)
		if err != nil {
			return nil, err
		}
		if err := WritePreamble(s, host); err != nil {
			s.CancelRead(1)
			s.CancelWrite(1)
			return nil, err
		}
		return &Conn{Stream: s, local: meshAddr(ep.NodeID().String()), remote: meshAddr(gw.ID.String()), Peer: gw.ID.String()}, nil
	}
}

// Proxy forwards every TCP connection ln accepts to the gateway at gw over ep, advertising
// advertise (normally ln's own address, as the clients dial it), until ctx ends.
func Proxy(ctx context.Context, ep *endpoint.Endpoint, gw endpoint.NodeAddr, ln net.Listener, advertise string) error {
	dial := Dialer(ep, gw)
	return acceptloop.Serve(ctx, ln, func(tc net.Conn) {
		mc, err := dial(ctx, "tcp", advertise)
		if err != nil {
			return
		}
		defer mc.Close()
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(mc, tc)
			_ = mc.(*Conn).Stream.Close()
			close(done)
		}()
		_, _ = io.Copy(tc, mc)
		if t, ok := tc.(*net.TCPConn); ok {
			_ = t.CloseWrite()
		}
		select {
		case <-done:
		case <-ctx.Done():
		}
	})
}
