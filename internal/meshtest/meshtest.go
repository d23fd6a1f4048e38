// Package meshtest holds test fixtures shared by the mesh packages and the binaries' tests: an
// in-process relay server on loopback HTTP (StartRelay) or over in-memory pipes
// (StartMemRelay, for synctest bubbles), an in-memory multicast link for injected mDNS
// sockets, a QUIC echo server with iroh's TLS, and WaitFor, which polls for a condition.
// Its subpackage natlab simulates a UDP internet with NATs and firewalls. Nothing here leaves the process or loopback. Test-only:
// production code must not import it or natlab (checked by deps_test.go).
package meshtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshtls"
	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
)

// StartRelay runs an in-process relay server (the code cmd/relay serves) on plain HTTP on
// loopback, stopped at test cleanup, and returns it with its URL http://127.0.0.1:PORT.
func StartRelay(tb testing.TB) (*relayserver.Server, string) {
	tb.Helper()
	return StartRelayConfig(tb, relayserver.Config{})
}

// StartRelayConfig is StartRelay with the server configured by cfg.
func StartRelayConfig(tb testing.TB, cfg relayserver.Config) (*relayserver.Server, string) {
	tb.Helper()
	srv := relayserver.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	tb.Cleanup(func() {
		_ = hs.Close()
		_ = srv.Close()
		<-done
	})
	return srv, "http://" + ln.Addr().String()
}

// Link is an in-memory multicast link: whatever one member writes, every member (the writer
// included, as with multicast loopback) reads. The zero value is ready to use.
type Link struct {
	mu      sync.Mutex
	members []*LinkConn
}

// LinkConn is one member socket of a Link; it implements net.PacketConn. Reads report the
// member's own address as the source.
type LinkConn struct {
	l      *Link
	addr   *net.UDPAddr
	in     chan []byte
	closed chan struct{}
	once   sync.Once
}

// Join adds a member socket with address 127.0.0.1:port.
func (l *Link) Join(port int) *LinkConn {
	c := &LinkConn{l: l, addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}, in: make(chan []byte, 256), closed: make(chan struct{})}
	l.mu.Lock()
	l.members = append(l.members, c)
	l.mu.Unlock()
	return c
}

// MDNSConns joins a member on the mDNS port and returns it as mdns.Config.Conns.
func (l *Link) MDNSConns() []mdns.Conn {
	return []mdns.Conn{{PacketConn: l.Join(5353), Group: net.UDPAddrFromAddrPort(mdns.GroupV4)}}
}

// LookupAll has every service look up every other one's node id (ids[i] is svcs[i]'s) and
// fails tb unless each finds that id at the addresses want(j) gives, within 5 seconds.
func LookupAll(tb testing.TB, svcs []*mdns.Service, ids []key.PublicKey, want func(j int) []netip.AddrPort) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range svcs {
		for j := range svcs {
			if i == j {
				continue
			}
			got, err := svcs[i].Lookup(ctx, ids[j])
			if err != nil {
				tb.Fatalf("node %d looking up node %d: %v", i, j, err)
			}
			w := slices.SortedFunc(slices.Values(want(j)), netip.AddrPort.Compare)
			if got.ID != ids[j] || !slices.Equal(got.Direct, w) {
				tb.Fatalf("node %d sees node %d at %v, want %v", i, j, got.Direct, w)
			}
		}
	}
}

// ReadFrom returns the next datagram written on the link.
func (c *LinkConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		return copy(b, p), c.addr, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

// WriteTo delivers b to every member (dropped for a member whose queue is full, like UDP).
func (c *LinkConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	for _, m := range c.l.members {
		select {
		case m.in <- append([]byte(nil), b...):
		default:
		}
	}
	return len(b), nil
}

// Close ends pending and future reads.
func (c *LinkConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// LocalAddr is 127.0.0.1:port as given to Join.
func (c *LinkConn) LocalAddr() net.Addr { return c.addr }

// SetDeadline is a no-op.
func (c *LinkConn) SetDeadline(time.Time) error { return nil }

// SetReadDeadline is a no-op.
func (c *LinkConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline is a no-op.
func (c *LinkConn) SetWriteDeadline(time.Time) error { return nil }

// Drain discards every datagram queued for this member.
func (c *LinkConn) Drain() {
	for {
		select {
		case <-c.in:
		default:
			return
		}
	}
}

// Next returns the next datagram queued for this member, or ok=false after timeout.
func (c *LinkConn) Next(timeout time.Duration) (b []byte, ok bool) {
	select {
	case b = <-c.in:
		return b, true
	case <-time.After(timeout):
		return nil, false
	}
}

// ServeEcho accepts QUIC connections on tr for alpn, authenticated as sk with iroh's TLS, and
// echoes every bidirectional stream until test cleanup (which closes the listener and waits
// for every goroutine it started).
func ServeEcho(tb testing.TB, tr *quic.Transport, sk key.SecretKey, alpn string, conf *quic.Config) {
	tb.Helper()
	cert, err := meshtls.GenerateCertificate(sk)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := tr.Listen(meshtls.ServerConfig(cert, func() []string { return []string{alpn} }), conf)
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			wg.Go(func() {
				for {
					s, err := c.AcceptStream(context.Background())
					if err != nil {
						return
					}
					wg.Go(func() {
						_, _ = io.Copy(s, s)
						_ = s.Close()
					})
				}
			})
		}
	})
	tb.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
}

// WaitFor polls cond every 2 ms until it holds, failing tb if it still does not after 10 s
// (a safety net for a hung test, not a timing assertion).
func WaitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
