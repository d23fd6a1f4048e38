package endpoint

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/syncbuf"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshtls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const echoALPN = "/test/echo/0"

func newEP(t testing.TB) *Endpoint {
	t.Helper()
	return newEPWith(t, Options{BindAddr: "127.0.0.1:0"})
}

func newEPWith(t testing.TB, opts Options) *Endpoint {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

// echo serves bidi streams by echoing them and uni streams by echoing each
// on a new uni stream.
func echo(ctx context.Context, c *Conn) {
	defer c.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		c.ServeUniStreams(ctx, func(rs *quic.ReceiveStream) {
			data, err := io.ReadAll(rs)
			if err != nil {
				return
			}
			ss, err := c.OpenUniStream(ctx)
			if err != nil {
				return
			}
			ss.Write(data)
			ss.Close()
		})
	})
	c.ServeStreams(ctx, func(s *quic.Stream) {
		io.Copy(s, s)
		s.Close()
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func roundTrip(t testing.TB, c *Conn, msg []byte) {
	t.Helper()
	ctx := ctxT(t)
	s, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(msg); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo: got %d bytes, want %d", len(got), len(msg))
	}
}

func TestDialEcho(t *testing.T) {
	a, b := newEP(t), newEP(t)
	var seen atomic.Value
	b.Handle(echoALPN, func(ctx context.Context, c *Conn) {
		seen.Store(c.RemoteID())
		if c.ALPN() != echoALPN {
			t.Errorf("server ALPN %q", c.ALPN())
		}
		echo(ctx, c)
	})
	c, err := a.Dial(ctxT(t), b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteID() != b.NodeID() || c.ALPN() != echoALPN {
		t.Fatalf("client sees %v %q", c.RemoteID(), c.ALPN())
	}
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	roundTrip(t, c, msg)
	if got, _ := seen.Load().(key.PublicKey); got != a.NodeID() {
		t.Fatalf("server saw %v, want %v", got, a.NodeID())
	}

	// Uni streams: send on one, the echo comes back on another.
	ctx := ctxT(t)
	ss, err := c.OpenUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ss.Write([]byte("uni hello"))
	ss.Close()
	rs, err := c.AcceptUniStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rs)
	if err != nil || string(got) != "uni hello" {
		t.Fatalf("uni echo %q %v", got, err)
	}
}

func TestDialReuse(t *testing.T) {
	a, b := newEP(t), newEP(t)
	var accepted atomic.Int32
	b.Handle(echoALPN, func(ctx context.Context, c *Conn) {
		accepted.Add(1)
		echo(ctx, c)
	})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	conns := make([]*Conn, 8)
	for i := range conns {
		wg.Go(func() {
			c, err := a.Dial(ctx, b.Addr(), echoALPN)
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, c := range conns[1:] {
		if c != conns[0] {
			t.Fatal("concurrent dials returned different connections")
		}
	}
	// The address book now knows b: dial by id only.
	c2, err := a.Dial(ctx, NodeAddr{ID: b.NodeID()}, echoALPN)
	if err != nil || c2 != conns[0] {
		t.Fatalf("dial by id: %v (same=%v)", err, c2 == conns[0])
	}
	roundTrip(t, c2, []byte("x"))
	if n := accepted.Load(); n != 1 {
		t.Fatalf("server accepted %d connections, want 1", n)
	}
	// Once closed, the next Dial makes a new connection.
	conns[0].Close()
	<-conns[0].Context().Done()
	c3, err := a.Dial(ctx, NodeAddr{ID: b.NodeID()}, echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	if c3 == conns[0] {
		t.Fatal("closed connection reused")
	}
	roundTrip(t, c3, []byte("y"))
}

func TestDialRefusals(t *testing.T) {
	a, b := newEP(t), newEP(t)
	var handled atomic.Int32
	b.Handle(echoALPN, func(ctx context.Context, c *Conn) { handled.Add(1); echo(ctx, c) })
	impostor := key.GenerateSecretKey().Public()
	ctx := ctxT(t)

	_, err := a.Dial(ctx, NodeAddr{ID: impostor, Direct: b.Addr().Direct}, echoALPN)
	if err == nil || !errors.Is(err, meshtls.ErrWrongPeer) {
		t.Fatalf("dial with wrong id: err = %v, want ErrWrongPeer", err)
	}
	if _, err := a.Dial(ctx, b.Addr(), "/not/served"); err == nil {
		t.Fatal("dial with unserved ALPN succeeded")
	}
	if _, err := a.Dial(ctx, NodeAddr{ID: key.GenerateSecretKey().Public()}, echoALPN); !errors.Is(err, ErrNoAddresses) {
		t.Fatalf("dial unknown node: %v", err)
	}
	if _, err := a.Dial(ctx, NodeAddr{ID: a.NodeID()}, echoALPN); err == nil {
		t.Fatal("dial self succeeded")
	}
	if n := handled.Load(); n != 0 {
		t.Fatalf("handler ran %d times for refused connections", n)
	}
	// b still works.
	c, err := a.Dial(ctx, b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("still here"))
}

// A client presenting a certificate without the libp2p extension, or none,
// is refused by the server.
// A silent first address does not stop Dial; a peer reachable on several
// addresses gets a single connection.
func TestDialAddressOrder(t *testing.T) {
	a, b := newEP(t), newEP(t)
	var accepted atomic.Int32
	b.Handle(echoALPN, func(ctx context.Context, c *Conn) { accepted.Add(1); echo(ctx, c) })
	silent := mustUDP(t)
	defer silent.Close()
	real := b.LocalAddr()
	addrs := []netip.AddrPort{addrPortOf(silent.LocalAddr()), real, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), real.Port())}
	start := time.Now()
	c, err := a.Dial(ctxT(t), NodeAddr{ID: b.NodeID(), Direct: addrs}, echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < DialStagger {
		t.Fatalf("connected in %v, before the silent address's stagger", el)
	}
	roundTrip(t, c, []byte("ok"))
	if c.RemoteAddr().String() != real.String() {
		t.Fatalf("connected via %v, want %v", c.RemoteAddr(), real)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("server accepted %d connections, want 1", n)
	}
}

func TestServerRefusesBadClients(t *testing.T) {
	b := newEP(t)
	var handled atomic.Int32
	b.Handle(echoALPN, func(ctx context.Context, c *Conn) { handled.Add(1); c.Close() })
	plain := plainCert(t)
	good, _ := meshtls.GenerateCertificate(key.GenerateSecretKey())
	cases := map[string]*tls.Config{
		"no extension": meshtls.ClientConfig(plain, b.NodeID(), echoALPN),
		"no certificate": func() *tls.Config {
			c := meshtls.ClientConfig(good, b.NodeID(), echoALPN)
			c.Certificates = nil
			return c
		}(),
	}
	for name, conf := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			qc, err := quic.DialAddr(ctx, b.LocalAddr().String(), conf, &quic.Config{})
			if err == nil {
				// TLS 1.3: the client may finish before the server
				// refuses; the server must close the connection.
				select {
				case <-qc.Context().Done():
				case <-ctx.Done():
					t.Fatal("server kept a connection from a bad client")
				}
				qc.CloseWithError(0, "")
			}
		})
	}
	if n := handled.Load(); n != 0 {
		t.Fatalf("handler ran %d times", n)
	}
}

func plainCert(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(plainCertPEM, plainKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGarbageAndAbortedHandshakes(t *testing.T) {
	a, b := newEP(t), newEP(t)
	b.Handle(echoALPN, echo)
	raw, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(b.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for i := range 500 {
		n := []int{0, 1, 5, 20, 1199, 1200, 1350, 1500}[i%8]
		buf := make([]byte, n)
		rand.Read(buf)
		if n > 4 && i%3 == 0 {
			buf[0] |= 0xc0 // long header, fixed bit: looks like an Initial
			buf[1], buf[2], buf[3], buf[4] = 0, 0, 0, 1
		}
		raw.Write(buf)
	}
	// Aborted handshakes: give up after a moment, many times.
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%4)*time.Millisecond)
		c, err := a.Dial(ctx, b.Addr(), echoALPN)
		cancel()
		if err == nil {
			c.Close()
		}
	}
	// A client that sends its Initial and vanishes.
	tr := &quic.Transport{Conn: mustUDP(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	good, _ := meshtls.GenerateCertificate(key.GenerateSecretKey())
	tr.Dial(ctx, net.UDPAddrFromAddrPort(b.LocalAddr()), meshtls.ClientConfig(good, b.NodeID(), echoALPN), &quic.Config{})
	cancel()
	tr.Close()
	tr.Conn.Close()

	c, err := a.Dial(ctxT(t), b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("survived"))
}

// testSock is a sock (with GRO if gro) on a new loopback socket, closed when the test ends.
func testSock(t testing.TB, gro bool) (*sock, *net.UDPConn) {
	t.Helper()
	uc := mustUDP(t)
	s := newSock(uc, gro)
	t.Cleanup(func() { s.Close() })
	return s, uc
}

func mustUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCloseStopsHandlersAndDials(t *testing.T) {
	a, b := newEP(t), newEP(t)
	started := make(chan struct{})
	b.Handle(echoALPN, func(ctx context.Context, c *Conn) {
		close(started)
		<-ctx.Done() // a handler that only stops when told
	})
	if _, err := a.Dial(ctxT(t), b.Addr(), echoALPN); err != nil {
		t.Fatal(err)
	}
	<-started
	done := make(chan error)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := b.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := b.Dial(ctxT(t), a.Addr(), echoALPN); !errors.Is(err, ErrClosed) {
		t.Fatalf("dial after close: %v", err)
	}

	// A dial in progress to a silent address is aborted by Close.
	silent := mustUDP(t)
	defer silent.Close()
	id := key.GenerateSecretKey().Public()
	errc := make(chan error)
	go func() {
		_, err := a.Dial(context.Background(), NodeAddr{ID: id, Direct: []netip.AddrPort{addrPortOf(silent.LocalAddr())}}, echoALPN)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	a.Close()
	if err := <-errc; err == nil {
		t.Fatal("dial survived Close")
	}
}

func TestPacketFilter(t *testing.T) {
	a := newEP(t)
	b := newEP(t)
	var claimed atomic.Int32
	b.sock.setFilter(func(p []byte, from netip.AddrPort) bool {
		if bytes.HasPrefix(p, []byte("TS💬")) {
			claimed.Add(1)
			return true
		}
		return false
	})
	b.Handle(echoALPN, echo)
	raw := mustUDP(t)
	defer raw.Close()
	for range 10 {
		raw.WriteTo([]byte("TS💬 disco-ish"), net.UDPAddrFromAddrPort(b.LocalAddr()))
	}
	c, err := a.Dial(ctxT(t), b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 256<<10)
	rand.Read(msg)
	for range 10 {
		raw.WriteTo([]byte("TS💬 again"), net.UDPAddrFromAddrPort(b.LocalAddr()))
	}
	roundTrip(t, c, msg)
	deadline := time.Now().Add(5 * time.Second)
	for claimed.Load() != 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := claimed.Load(); n != 20 {
		t.Fatalf("filter claimed %d packets, want 20", n)
	}
}

// Disco packets (as a Rust node sends when dialing) are dropped before
// quic-go, and the connection carries on.
func TestDiscoDropped(t *testing.T) {
	a, b := newEP(t), newEP(t)
	b.Handle(echoALPN, echo)
	raw := mustUDP(t)
	defer raw.Close()
	pkt := append([]byte(DiscoMagic), make([]byte, 32+24+16+40)...)
	rand.Read(pkt[len(DiscoMagic):])
	c, err := a.Dial(ctxT(t), b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		raw.WriteTo(pkt, net.UDPAddrFromAddrPort(b.LocalAddr()))
	}
	raw.WriteTo(pkt[:20], net.UDPAddrFromAddrPort(b.LocalAddr())) // too short: not disco
	roundTrip(t, c, []byte("after disco"))
	deadline := time.Now().Add(5 * time.Second)
	for b.discoDropped.Load() != 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := b.discoDropped.Load(); n != 5 {
		t.Fatalf("dropped %d disco packets, want 5", n)
	}
}

// 100 concurrent bidi streams (iroh's limit) on one connection, each
// echoed with its own content.
func TestHundredStreams(t *testing.T) {
	a, b := newEP(t), newEP(t)
	b.Handle(echoALPN, echo)
	ctx := ctxT(t)
	c, err := a.Dial(ctx, b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range MaxIncomingBidi {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte(i)}, 10000+i)
			s, err := c.OpenStream(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Write(msg); err != nil {
				t.Error(err)
				return
			}
			s.Close()
			got, err := io.ReadAll(s)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("stream %d: %d bytes, %v", i, len(got), err)
			}
		})
	}
	wg.Wait()
}

func TestInjectedConn(t *testing.T) {
	uc := mustUDP(t)
	e, err := New(Options{Conn: uc})
	if err != nil {
		t.Fatal(err)
	}
	if e.LocalAddr() != addrPortOf(uc.LocalAddr()) {
		t.Fatalf("LocalAddr %v, want %v", e.LocalAddr(), uc.LocalAddr())
	}
	e.Handle(echoALPN, echo)
	a := newEP(t)
	c, err := a.Dial(ctxT(t), e.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("injected"))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := uc.WriteTo([]byte("x"), uc.LocalAddr()); err == nil {
		t.Fatal("endpoint did not close the injected socket")
	}
}

func FuzzParseNodeAddr(f *testing.F) {
	id := key.GenerateSecretKey().Public()
	f.Add(id.String() + "@127.0.0.1:1,[::1]:2")
	f.Add(id.Hex())
	f.Add("@")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseNodeAddr(s)
		if err != nil {
			return
		}
		b, err := ParseNodeAddr(a.String())
		if err != nil || b.ID != a.ID || !slices.Equal(a.Direct, b.Direct) {
			t.Fatalf("%q -> %q does not round-trip: %v", s, a.String(), err)
		}
	})
}

func TestKeyLog(t *testing.T) {
	var cl, sl syncbuf.Buffer
	a, err := New(Options{BindAddr: "127.0.0.1:0", KeyLog: &cl})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Options{BindAddr: "127.0.0.1:0", KeyLog: &sl})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Handle(echoALPN, echo)
	c, err := a.Dial(ctxT(t), b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("logged"))
	for name, buf := range map[string]*syncbuf.Buffer{"client": &cl, "server": &sl} {
		if !strings.Contains(buf.String(), "CLIENT_TRAFFIC_SECRET_0 ") {
			t.Fatalf("%s key log lacks traffic secrets: %q", name, buf.String())
		}
	}
}

func TestParseNodeAddr(t *testing.T) {
	id := key.GenerateSecretKey().Public()
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{id.String(), nil, true},
		{id.String() + "@127.0.0.1:4433", []string{"127.0.0.1:4433"}, true},
		{id.Hex() + "@127.0.0.1:1,[::1]:2", []string{"127.0.0.1:1", "[::1]:2"}, true},
		{id.String() + "@", nil, false},
		{id.String() + "@localhost:1", nil, false},
		{id.String() + "@127.0.0.1:0", nil, false},
		{id.String() + "@127.0.0.1", nil, false},
		{"nonsense@127.0.0.1:1", nil, false},
	}
	for _, tt := range tests {
		a, err := ParseNodeAddr(tt.in)
		if (err == nil) != tt.ok {
			t.Fatalf("ParseNodeAddr(%q) err = %v", tt.in, err)
		}
		if !tt.ok {
			continue
		}
		if a.ID != id {
			t.Fatalf("%q: id %v", tt.in, a.ID)
		}
		var got []string
		for _, ap := range a.Direct {
			got = append(got, ap.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Fatalf("%q: direct %v, want %v", tt.in, got, tt.want)
		}
		back, err := ParseNodeAddr(a.String())
		if err != nil || back.ID != a.ID || !slices.Equal(back.Direct, a.Direct) {
			t.Fatalf("String round trip %q: %v", a.String(), err)
		}
	}
}

func TestAddrUnspecified(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	port := e.LocalAddr().Port()
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	if !slices.Contains(e.Addr().Direct, want) || e.Addr().Direct[0] != want {
		t.Fatalf("Addr() = %v, want %v first", e.Addr(), want)
	}
	for _, ap := range e.Addr().Direct {
		if ap.Addr().IsUnspecified() || !ap.Addr().Is4() || ap.Port() != port {
			t.Fatalf("bad expanded address %v", ap)
		}
	}
	// And it is dialable through the expansion.
	a := newEP(t)
	e.Handle(echoALPN, echo)
	c, err := a.Dial(ctxT(t), e.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("hi"))
}

// plainCertPEM is an ordinary self-signed P-256 certificate (no libp2p
// extension), generated once with crypto/x509.
var plainCertPEM, plainKeyPEM = func() ([]byte, []byte) {
	return genPlainPEM()
}()

// A dual-stack endpoint ("[::]:0") is reachable over IPv4 and IPv6
// loopback and lists both.
func TestDualStack(t *testing.T) {
	e, err := New(Options{BindAddr: "[::]:0"})
	if err != nil {
		t.Skipf("no IPv6 here: %v", err)
	}
	defer e.Close()
	e.Handle(echoALPN, echo)
	port := e.LocalAddr().Port()
	v4 := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	v6 := netip.AddrPortFrom(netip.IPv6Loopback(), port)
	if d := e.Addr().Direct; !slices.Contains(d, v4) || !slices.Contains(d, v6) {
		t.Fatalf("Addr() = %v, want %v and %v", d, v4, v6)
	}
	a6, err := New(Options{BindAddr: "[::1]:0"})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer a6.Close()
	a4 := newEP(t)
	for name, tc := range map[string]struct {
		from *Endpoint
		to   netip.AddrPort
	}{"v4": {a4, v4}, "v6": {a6, v6}} {
		c, err := tc.from.Dial(ctxT(t), NodeAddr{ID: e.NodeID(), Direct: []netip.AddrPort{tc.to}}, echoALPN)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		roundTrip(t, c, []byte(name))
	}
	// An IPv4-only endpoint skips IPv6 addresses rather than failing on them.
	if _, err := a4.Dial(ctxT(t), NodeAddr{ID: a6.NodeID(), Direct: []netip.AddrPort{a6.LocalAddr()}}, echoALPN); !errors.Is(err, ErrNoAddresses) {
		t.Fatalf("v4 endpoint dialing v6-only node: %v", err)
	}
}

// Datagrams are on, as in quinn's default config, so iroh applications that use them work.
func TestDatagrams(t *testing.T) {
	a, b := newEP(t), newEP(t)
	b.Handle(echoALPN, func(ctx context.Context, c *Conn) {
		for {
			d, err := c.QUIC().ReceiveDatagram(ctx)
			if err != nil {
				return
			}
			if err := c.QUIC().SendDatagram(append([]byte("re:"), d...)); err != nil {
				return
			}
		}
	})
	c, err := a.Dial(ctxT(t), b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	if !c.QUIC().ConnectionState().SupportsDatagrams.Remote {
		t.Fatal("peer does not advertise datagram support")
	}
	ctx := ctxT(t)
	for i := 0; i < 20; i++ { // datagrams are unreliable: retry until one comes back
		if err := c.QUIC().SendDatagram([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		d, err := c.QUIC().ReceiveDatagram(rctx)
		cancel()
		if err == nil {
			if string(d) != "re:ping" {
				t.Fatalf("got %q", d)
			}
			return
		}
	}
	t.Fatal("no datagram came back")
}

// A node that restarts with the same key on the same address resets the connections peers
// still hold from its previous run, so they fail at once instead of after the idle timeout.
func TestRestartedPeerResetsOldConnections(t *testing.T) {
	a := newEP(t)
	sk := key.GenerateSecretKey()
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{SecretKey: sk, Conn: uc})
	if err != nil {
		t.Fatal(err)
	}
	b.Handle(echoALPN, echo)
	addr := b.Addr()
	c, err := a.Dial(ctxT(t), addr, echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("before"))
	// Crash: the socket goes first, so no CONNECTION_CLOSE ever reaches a.
	uc.Close()
	b.Close()
	b2, err := New(Options{SecretKey: sk, BindAddr: uc.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if c.Context().Err() != nil {
		t.Fatal("old connection already closed before any packet reached the restarted node")
	}
	start := time.Now()
	// Traffic on the old connection reaches b2, which answers with a stateless reset.
	go func() {
		for c.Context().Err() == nil {
			if s, err := c.OpenStream(context.Background()); err == nil {
				s.Write([]byte("anyone?"))
				s.Close()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case <-c.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("old connection still open 10 s after the peer restarted (idle timeout is 30 s)")
	}
	t.Logf("old connection reset %v after the restart", time.Since(start))
	var sr *quic.StatelessResetError
	if err := context.Cause(c.Context()); !errors.As(err, &sr) {
		t.Fatalf("connection ended with %v, want a stateless reset", err)
	}
}

// Stream credit: Conn.AcceptStream and AcceptUniStream give a finished stream's credit back
// (the peer opens twice MaxIncoming* streams one after another), AcceptStreamHeld leaves it
// to the handler (the peer can open no more streams until the handler releases one).
func TestStreamCredit(t *testing.T) {
	const heldALPN = "/test/held/0"
	a, b := newEP(t), newEP(t)
	b.Handle(echoALPN, echo)
	held := make(chan *quic.Stream, MaxIncomingBidi)
	b.Handle(heldALPN, func(ctx context.Context, c *Conn) {
		for {
			s, err := c.AcceptStreamHeld(ctx)
			if err != nil {
				return
			}
			if _, err := io.ReadAll(s); err != nil {
				t.Error(err)
			}
			s.Write([]byte("ok"))
			s.Close()
			held <- s
		}
	})
	ctx := ctxT(t)
	c, err := a.Dial(ctx, b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * MaxIncomingBidi {
		roundTrip(t, c, []byte{byte(i)})
	}
	for i := range 2 * MaxIncomingUni {
		ss, err := c.OpenUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ss.Write([]byte{byte(i)})
		ss.Close()
		rs, err := c.AcceptUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(rs); err != nil || !bytes.Equal(got, []byte{byte(i)}) {
			t.Fatalf("uni echo %d: %q %v", i, got, err)
		}
	}

	hc, err := a.Dial(ctx, b.Addr(), heldALPN)
	if err != nil {
		t.Fatal(err)
	}
	call := func(s *quic.Stream) {
		t.Helper()
		s.Write([]byte("call"))
		s.Close()
		if got, err := io.ReadAll(s); err != nil || string(got) != "ok" {
			t.Fatalf("answer %q %v", got, err)
		}
	}
	for range MaxIncomingBidi {
		s, err := hc.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		call(s)
	}
	// Every stream is finished, but the handler holds all their credit.
	var limit *quic.StreamLimitReachedError
	if _, err := hc.QUIC().OpenStream(); !errors.As(err, &limit) {
		t.Fatalf("open with all credit held: err = %v, want StreamLimitReachedError", err)
	}
	(<-held).ReleaseStreamCredit()
	s, err := hc.OpenStream(ctx) // waits for the MAX_STREAMS the release sent
	if err != nil {
		t.Fatal(err)
	}
	call(s)
	for range MaxIncomingBidi { // the rest, and the stream just used
		(<-held).ReleaseStreamCredit()
	}
}
