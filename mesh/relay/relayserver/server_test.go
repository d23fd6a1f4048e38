package relayserver_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayhttp"
	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type testRelay struct {
	srv  *relayserver.Server
	url  string
	addr string // host:port of url
}

// newRelay runs srv behind a real HTTP server on loopback; cleanup closes both and waits.
func newRelay(t testing.TB, cfg relayserver.Config) *testRelay {
	t.Helper()
	srv, url := meshtest.StartRelayConfig(t, cfg)
	return &testRelay{srv: srv, url: url, addr: strings.TrimPrefix(url, "http://")}
}

// newKey is a fresh relay client key.
func newKey() ed25519.PrivateKey { return key.GenerateSecretKey().Ed25519() }

func pub(priv ed25519.PrivateKey) relay.NodeKey {
	var k relay.NodeKey
	copy(k[:], priv.Public().(ed25519.PublicKey))
	return k
}

func dial(t testing.TB, r *testRelay, priv ed25519.PrivateKey) *relay.Client {
	t.Helper()
	c, err := relayhttp.Dial(context.Background(), r.url, priv, relayhttp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// The server registers the client after reading ClientInfo; wait for it so that packets
	// sent right away are not dropped as "no such peer".
	meshtest.WaitFor(t, func() bool { return r.srv.IsConnected(pub(priv)) })
	return c
}

// recvType reads frames until one of type want arrives (KeepAlives are skipped).
func recvType(t testing.TB, c *relay.Client, want relay.FrameType) relay.Frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	for {
		f, err := c.Recv()
		if err != nil {
			t.Fatalf("recv (waiting for %v): %v", want, err)
		}
		if f.Type == want {
			f.Data = bytes.Clone(f.Data)
			return f
		}
		if f.Type != relay.FrameKeepAlive {
			t.Fatalf("got %v frame, want %v", f.Type, want)
		}
	}
}

func TestForwardBothWays(t *testing.T) {
	r := newRelay(t, relayserver.Config{})
	ka, kb := newKey(), newKey()
	a, b := dial(t, r, ka), dial(t, r, kb)

	if err := a.Send(pub(kb), []byte("hello b")); err != nil {
		t.Fatal(err)
	}
	f := recvType(t, b, relay.FrameRecvPacket)
	if f.Key != pub(ka) || string(f.Data) != "hello b" {
		t.Fatalf("b got %x %q", f.Key[:4], f.Data)
	}
	if err := b.SendDatagram(pub(ka), []byte("hello a")); err != nil {
		t.Fatal(err)
	}
	f = recvType(t, a, relay.FrameRecvPacket)
	items, err := relay.SplitDatagrams(f.Data, nil)
	if err != nil || len(items) != 1 || string(items[0]) != "hello a" || f.Key != pub(kb) {
		t.Fatalf("a got %x items %q err %v", f.Key[:4], items, err)
	}
	// A 64 KiB payload, the largest allowed, passes intact.
	big := make([]byte, relay.MaxPacketSize)
	_, _ = rand.Read(big)
	if err := a.Send(pub(kb), big); err != nil {
		t.Fatal(err)
	}
	if f = recvType(t, b, relay.FrameRecvPacket); !bytes.Equal(f.Data, big) {
		t.Fatal("64 KiB payload corrupted")
	}
	// Ping is answered with a Pong carrying the same bytes.
	if err := a.SendPing([8]byte{9, 8, 7, 6, 5, 4, 3, 2}); err != nil {
		t.Fatal(err)
	}
	if f = recvType(t, a, relay.FramePong); f.PingData != [8]byte{9, 8, 7, 6, 5, 4, 3, 2} {
		t.Fatalf("pong data %x", f.PingData)
	}
	// Packets to an unknown node are dropped silently; the sender stays connected.
	if err := a.Send(pub(newKey()), []byte("nobody")); err != nil {
		t.Fatal(err)
	}
	meshtest.WaitFor(t, func() bool { return r.srv.Stats().DroppedNoPeer == 1 })
	if err := a.Send(pub(kb), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if f = recvType(t, b, relay.FrameRecvPacket); string(f.Data) != "still here" {
		t.Fatalf("got %q", f.Data)
	}
	if err := a.NotePreferred(true); err != nil {
		t.Fatal(err)
	}
}

func TestPeerGone(t *testing.T) {
	r := newRelay(t, relayserver.Config{})
	ka, kb, kc := newKey(), newKey(), newKey()
	a, b, c := dial(t, r, ka), dial(t, r, kb), dial(t, r, kc)
	_ = c
	if err := a.Send(pub(kb), []byte("x")); err != nil {
		t.Fatal(err)
	}
	recvType(t, b, relay.FrameRecvPacket)
	_ = a.Close()
	f := recvType(t, b, relay.FramePeerGone)
	if f.Key != pub(ka) {
		t.Fatalf("peer gone for %x, want a", f.Key[:4])
	}
	meshtest.WaitFor(t, func() bool { return r.srv.Stats().PeerGoneSent >= 1 })
	time.Sleep(20 * time.Millisecond)
	if got := r.srv.Stats().PeerGoneSent; got != 1 {
		t.Fatalf("PeerGoneSent = %d, want 1 (c never heard from a)", got)
	}
}

// rawConn upgrades a plain TCP connection by hand, for handshake abuse.
func rawConn(t *testing.T, r *testRelay) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	fmt.Fprintf(conn, "GET /relay HTTP/1.1\r\nHost: x\r\nUpgrade: iroh derp http\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != relay.UpgradeProtocol {
		t.Fatalf("upgrade: %s %v", resp.Status, resp.Header)
	}
	return conn, br
}

func TestHandshakeRefused(t *testing.T) {
	r := newRelay(t, relayserver.Config{HandshakeTimeout: 300 * time.Millisecond})
	kb := newKey()
	b := dial(t, r, kb)

	good := relay.NewClientInfo(newKey())
	badSig := good
	badSig.Signature[10] ^= 0x40
	stolen := relay.NewClientInfo(newKey())
	stolen.Key = pub(kb) // claims b's identity, signed by someone else
	v2priv := newKey()
	v2 := relay.Frame{Type: relay.FrameClientInfo, Key: pub(v2priv), Data: []byte{2}}
	copy(v2.Signature[:], ed25519.Sign(v2priv, v2.Data))

	cases := []struct {
		name  string
		first []relay.Frame
	}{
		{"bad signature", []relay.Frame{badSig}},
		{"someone else's key", []relay.Frame{stolen}},
		{"version 2", []relay.Frame{v2}},
		{"send before client info", []relay.Frame{{Type: relay.FrameSendPacket, Key: pub(kb), Data: []byte("sneaky")}}},
		{"silence", nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, br := rawConn(t, r)
			var out []byte
			for _, f := range tc.first {
				out, _ = f.AppendTo(out)
			}
			// Whatever the client sends after a refused handshake must not be forwarded.
			after := relay.Frame{Type: relay.FrameSendPacket, Key: pub(kb), Data: []byte("must not arrive")}
			out, _ = after.AppendTo(out)
			if tc.first == nil {
				out = nil
			}
			if _, err := conn.Write(out); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := br.Read(make([]byte, 1)); err == nil {
				t.Fatalf("server sent %d bytes instead of closing", n)
			} else if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				t.Fatal("server kept the unauthenticated connection open")
			}
			meshtest.WaitFor(t, func() bool { return r.srv.Stats().HandshakeFailed == uint64(i+1) })
		})
	}
	if r.srv.IsConnected(pub(v2priv)) {
		t.Fatal("version-2 client registered")
	}
	if s := r.srv.Stats(); s.PacketsSent != 0 || s.Accepted != 1 {
		t.Fatalf("stats after refused handshakes: %+v", s)
	}
	// b is unaffected and never received anything.
	if err := b.SendPing([8]byte{1}); err != nil {
		t.Fatal(err)
	}
	recvType(t, b, relay.FramePong)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestSameKeyReplacesOldConnection(t *testing.T) {
	r := newRelay(t, relayserver.Config{})
	ka, kb := newKey(), newKey()
	b := dial(t, r, kb)
	a1 := dial(t, r, ka)
	if err := a1.Send(pub(kb), []byte("from a1")); err != nil {
		t.Fatal(err)
	}
	recvType(t, b, relay.FrameRecvPacket)
	a2, err := relayhttp.Dial(context.Background(), r.url, ka, relayhttp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	// The old connection is closed by the server.
	_ = a1.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := a1.Recv(); err != nil {
			if isTimeout(err) {
				t.Fatal("old connection not closed")
			}
			break
		}
	}
	meshtest.WaitFor(t, func() bool { return r.srv.Stats().Current == 2 })
	if err := b.Send(pub(ka), []byte("to a2")); err != nil {
		t.Fatal(err)
	}
	if f := recvType(t, a2, relay.FrameRecvPacket); string(f.Data) != "to a2" {
		t.Fatalf("a2 got %q", f.Data)
	}
	// The replacement is not a departure: b gets no PeerGone for a.
	if got := r.srv.Stats().PeerGoneSent; got != 0 {
		t.Fatalf("PeerGoneSent = %d after a replacement", got)
	}
}

func TestKeepAlive(t *testing.T) {
	r := newRelay(t, relayserver.Config{KeepAlive: 30 * time.Millisecond})
	c := dial(t, r, newKey())
	for range 3 {
		recvType(t, c, relay.FrameKeepAlive)
	}
}

func TestHTTPSurface(t *testing.T) {
	r := newRelay(t, relayserver.Config{})
	get := func(path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", r.url+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	if resp := get("/relay/probe", nil); resp.StatusCode != 200 {
		t.Errorf("probe: %s", resp.Status)
	}
	resp := get("/generate_204", map[string]string{"X-Tailscale-Challenge": "ts_use1-1.relay.iroh.network."})
	if resp.StatusCode != 204 || resp.Header.Get("X-Tailscale-Response") != "response ts_use1-1.relay.iroh.network." {
		t.Errorf("generate_204: %s %v", resp.Status, resp.Header)
	}
	if resp := get("/generate_204", map[string]string{"X-Tailscale-Challenge": "bad challenge!"}); resp.Header.Get("X-Tailscale-Response") != "" {
		t.Errorf("invalid challenge echoed")
	}
	if resp := get("/relay", nil); resp.StatusCode != 400 {
		t.Errorf("GET /relay without upgrade: %s", resp.Status)
	}
	if resp := get("/relay", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}); resp.StatusCode != 400 {
		t.Errorf("websocket upgrade: %s", resp.Status)
	}
	if resp := get("/nope", nil); resp.StatusCode != 404 {
		t.Errorf("unknown path: %s", resp.Status)
	}
	// The legacy /derp path upgrades too.
	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: iroh derp http\r\n\r\n")
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("/derp upgrade: %v %v", resp, err)
	}
}

// TestManyClients: 200 clients on one relay, each sending to its ring neighbour, all
// concurrently; every packet arrives with the right source.
func TestManyClients(t *testing.T) {
	const n, perClient = 200, 20
	r := newRelay(t, relayserver.Config{})
	keys := make([]ed25519.PrivateKey, n)
	clients := make([]*relay.Client, n)
	for i := range n {
		keys[i] = newKey()
		clients[i] = dial(t, r, keys[i])
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		next := pub(keys[(i+1)%n])
		prev := pub(keys[(i+n-1)%n])
		c := clients[i]
		wg.Go(func() {
			for j := range perClient {
				if err := c.Send(next, fmt.Appendf(nil, "%d/%d", i, j)); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			seen := 0
			for seen < perClient {
				f, err := c.Recv()
				if err != nil {
					errs <- fmt.Errorf("client %d after %d packets: %w", i, seen, err)
					return
				}
				if f.Type != relay.FrameRecvPacket {
					continue
				}
				if f.Key != prev || string(f.Data) != fmt.Sprintf("%d/%d", (i+n-1)%n, seen) {
					errs <- fmt.Errorf("client %d got %q from %x", i, f.Data, f.Key[:4])
					return
				}
				seen++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := r.srv.Stats(); s.PacketsSent != n*perClient || s.Current != n {
		t.Fatalf("stats %+v", s)
	}
}

// TestFloodingClientIsRateLimited: a client sending as fast as it can gets no more than
// rate×time+burst through, while another pair on the same relay keeps a fast round trip.
func TestFloodingClientIsRateLimited(t *testing.T) {
	const rate, burst = 512 << 10, 128 << 10 // bytes/s
	r := newRelay(t, relayserver.Config{RateLimit: rate, RateBurst: burst, SendQueueDepth: 4096})
	kf, ks, kx, ky := newKey(), newKey(), newKey(), newKey()
	flooder, sink := dial(t, r, kf), dial(t, r, ks)
	x, y := dial(t, r, kx), dial(t, r, ky)

	var received atomic.Int64
	sinkDone := drainPackets(sink, func(data []byte) { received.Add(int64(len(data))) })
	stop := make(chan struct{})
	floodDone := make(chan struct{})
	payload := make([]byte, 16<<10)
	start := time.Now()
	go func() {
		defer close(floodDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := flooder.Send(pub(ks), payload); err != nil {
				return
			}
		}
	}()

	// Meanwhile an unrelated pair round-trips quickly.
	for i := range 5 {
		t0 := time.Now()
		if err := x.Send(pub(ky), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		recvType(t, y, relay.FrameRecvPacket)
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("unrelated packet took %v while a client floods", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	got := received.Load()
	close(stop)
	_ = flooder.Close() // unblocks a Send stuck on TCP back-pressure
	<-floodDone
	_ = sink.Close()
	<-sinkDone

	limit := int64(rate*elapsed.Seconds()) + burst + int64(len(payload))
	t.Logf("flooder got %d bytes through in %v (limit %d, %.0f KiB/s)", got, elapsed, limit, float64(got)/elapsed.Seconds()/1024)
	if got > limit {
		t.Fatalf("flooder got %d bytes through in %v, limit %d", got, elapsed, limit)
	}
	if got < burst {
		t.Fatalf("flooder got only %d bytes through; the limiter should allow the burst", got)
	}
	if r.srv.Stats().RateLimited == 0 {
		t.Fatal("RateLimited counter is zero")
	}
}

// TestRateLimitWaitsOnTheClock: past its burst, a client's next packet is held for exactly the
// time the token bucket needs, measured on the injected clock.
func TestRateLimitWaitsOnTheClock(t *testing.T) {
	fake := clock.NewFake(time.Unix(1000, 0))
	r := newRelay(t, relayserver.Config{RateLimit: 1000, RateBurst: 2000, Clock: fake})
	ka, kb := newKey(), newKey()
	a, b := dial(t, r, ka), dial(t, r, kb)
	const tickers = 2 // one keep-alive ticker per client
	meshtest.WaitFor(t, func() bool { return fake.Waiting() == tickers })
	spendBurst(t, a, b, kb) // the whole burst
	const held = "past the burst: held until its tokens are earned"
	if err := a.Send(pub(kb), []byte(held)); err != nil {
		t.Fatal(err)
	}
	// The read loop counts the wait, then arms its timer on the fake clock.
	meshtest.WaitFor(t, func() bool { return r.srv.Stats().RateLimited == 1 && fake.Waiting() == tickers+1 })
	releasedWhenEarned(t, fake, tickers, b, held, "rate-limit")
}

// spendBurst sends a 2000-byte packet (the limiters' burst in these tests) from a to b,
// whose key is kb, and checks it arrives whole.
func spendBurst(t testing.TB, a, b *relay.Client, kb ed25519.PrivateKey) {
	t.Helper()
	if err := a.Send(pub(kb), make([]byte, 2000)); err != nil {
		t.Fatal(err)
	}
	if f := recvType(t, b, relay.FrameRecvPacket); len(f.Data) != 2000 {
		t.Fatalf("burst packet: %d bytes", len(f.Data))
	}
}

// releasedWhenEarned checks that held, a packet a limiter of 1000 B/s is holding on fake
// (with tickers other timers armed), stays held until 1 ms before its tokens are earned
// and then reaches c. what names the limiter in the failure.
func releasedWhenEarned(t testing.TB, fake *clock.Fake, tickers int, c *relay.Client, held, what string) {
	t.Helper()
	owed := time.Duration(float64(len(held)) / 1000 * float64(time.Second)) // at 1000 B/s
	fake.Advance(owed - time.Millisecond)
	if fake.Waiting() != tickers+1 {
		t.Fatalf("the %s wait ended before the tokens were earned", what)
	}
	fake.Advance(time.Millisecond)
	if f := recvType(t, c, relay.FrameRecvPacket); string(f.Data) != held {
		t.Fatalf("held packet: %q", f.Data)
	}
}

func TestCloseDisconnectsClients(t *testing.T) {
	r := newRelay(t, relayserver.Config{})
	c := dial(t, r, newKey())
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := c.Recv(); err != nil {
				done <- err
				return
			}
		}
	}()
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("client not disconnected by Close")
	}
	if err := r.srv.Accept(context.Background(), nopConn{}, nil); !errors.Is(err, relayserver.ErrServerClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// BenchmarkRelayThroughput measures payload bytes per second from one client to another
// through the relay server over loopback TCP (HTTP upgrade included), with a window of
// packets in flight so that nothing is dropped.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, size := range []int{1200, 16 << 10} {
		b.Run(fmt.Sprintf("payload=%d/impl=ours", size), func(b *testing.B) {
			r := newRelay(b, relayserver.Config{})
			ka, kb := newKey(), newKey()
			a, c := dial(b, r, ka), dial(b, r, kb)
			var got atomic.Int64
			done := drainPackets(c, func(data []byte) { got.Add(1) })
			payload := make([]byte, size)
			const window = 256
			b.SetBytes(int64(size))
			b.ResetTimer()
			start := time.Now()
			sent := int64(0)
			for b.Loop() {
				for sent-got.Load() >= window {
					time.Sleep(20 * time.Microsecond)
				}
				if err := a.Send(pub(kb), payload); err != nil {
					b.Fatal(err)
				}
				sent++
			}
			for got.Load() < sent {
				time.Sleep(50 * time.Microsecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(sent)*float64(size)/elapsed.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(sent)/elapsed.Seconds(), "packets/s")
			_ = c.Close()
			<-done
		})
	}
}

// TestClientThatDoesNotReadIsDropped: a client that stops reading is disconnected after
// WriteTimeout instead of pinning a writer forever.
func TestClientThatDoesNotReadIsDropped(t *testing.T) {
	r := newRelay(t, relayserver.Config{WriteTimeout: 200 * time.Millisecond})
	ks, kd := newKey(), newKey()
	sender := dial(t, r, ks)
	deaf := dial(t, r, kd) // never calls Recv
	_ = deaf
	payload := make([]byte, relay.MaxPacketSize)
	deadline := time.Now().Add(20 * time.Second)
	for r.srv.IsConnected(pub(kd)) {
		if time.Now().After(deadline) {
			t.Fatal("deaf client still connected")
		}
		if err := sender.Send(pub(kd), payload); err != nil {
			t.Fatal(err)
		}
	}
	// The sender is unaffected.
	if err := sender.SendPing([8]byte{7}); err != nil {
		t.Fatal(err)
	}
	recvType(t, sender, relay.FramePong)
}

// pipeConn serves one end of a net.Pipe with srv.Accept (on a goroutine that ends when the
// connection does) and returns the other end, with nothing sent on it yet.
func pipeConn(srv *relayserver.Server) net.Conn {
	cs, cc := net.Pipe()
	go func() { _ = srv.Accept(context.Background(), cs, nil) }()
	return cc
}

// frameLog is a client that reads raw frames and answers nothing, like iroh 0.28.1's relay
// client whose per-relay actor has not yet taken the frames: the test decides when each Ping
// is answered.
type frameLog struct {
	conn   net.Conn
	mu     sync.Mutex
	frames []relay.Frame // every frame received, in order, Data cloned
	done   chan struct{}
}

func newFrameLog(t *testing.T, srv *relayserver.Server, priv ed25519.PrivateKey) *frameLog {
	t.Helper()
	l := &frameLog{conn: pipeConn(srv), done: make(chan struct{})}
	ci := relay.NewClientInfo(priv)
	if _, err := relay.WriteFrame(l.conn, &ci, nil); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(l.done)
		br := bufio.NewReader(l.conn)
		var buf []byte
		for {
			var f relay.Frame
			var err error
			if f, buf, err = relay.ReadFrame(br, buf); err != nil {
				return
			}
			f.Data = bytes.Clone(f.Data)
			l.mu.Lock()
			l.frames = append(l.frames, f)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *frameLog) snapshot() []relay.Frame {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.frames)
}

func (l *frameLog) close() {
	_ = l.conn.Close()
	<-l.done
}

// pipeClient is a relay.Client on a pipe to srv whose frames a goroutine reads (answering
// Pings, as Client.Recv does) and counts.
// drainPackets reads c until it fails (close c to stop it), calling onPacket with each
// received packet's data; done is closed when it has stopped.
func drainPackets(c *relay.Client, onPacket func(data []byte)) (done <-chan struct{}) {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for {
			f, err := c.Recv()
			if err != nil {
				return
			}
			if f.Type == relay.FrameRecvPacket {
				onPacket(f.Data)
			}
		}
	}()
	return ch
}

// pipeSender starts a server with cfg (closed at the end of the test) and connects a sending
// client a with key ka over a pipe (what it receives is counted and dropped); kb is a key for
// the receiver, which the test connects as it needs.
func pipeSender(t *testing.T, cfg relayserver.Config) (srv *relayserver.Server, a *relay.Client, ka, kb ed25519.PrivateKey) {
	t.Helper()
	srv = relayserver.New(cfg)
	t.Cleanup(func() { srv.Close() })
	ka, kb = newKey(), newKey()
	a, _, stopA := pipeClient(t, srv, ka)
	t.Cleanup(stopA)
	return srv, a, ka, kb
}

func pipeClient(t *testing.T, srv *relayserver.Server, priv ed25519.PrivateKey) (c *relay.Client, packets *atomic.Int64, stop func()) {
	t.Helper()
	c, err := relay.NewClient(priv, pipeConn(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	packets = new(atomic.Int64)
	done := drainPackets(c, func(data []byte) { packets.Add(1) })
	return c, packets, func() { _ = c.Close(); <-done }
}

// TestWindowBoundsUnconfirmedFrames: the server never has more than relayserver.Window frames
// in flight to a client beyond the last Ping that client answered, and every packet still
// arrives, in order, as the client answers. This is what keeps iroh 0.28.1's relay client
// alive: it deadlocks once 65 received frames wait for its per-relay actor (see Window).
func TestWindowBoundsUnconfirmedFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, a, ka, kb := pipeSender(t, relayserver.Config{})
		b := newFrameLog(t, srv, kb)
		defer b.close()
		synctest.Wait()
		if !srv.IsConnected(pub(ka)) || !srv.IsConnected(pub(kb)) {
			t.Fatal("clients not connected")
		}

		const n = 10 * relayserver.Window // fits the send queue: nothing is dropped
		sendErr := make(chan error, 1)
		go func() {
			for i := range n {
				if err := a.Send(pub(kb), []byte{byte(i >> 8), byte(i)}); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- nil
		}()
		// Take the frames in order like iroh's relay actor, answering each Ping when it gets
		// to it; between steps, let the server send all it will.
		var (
			seen      int // frames taken
			confirmed int // frames up to the last answered Ping
			delivered int // packets, checked in order
			pings     int
		)
		for step := 0; delivered < n; step++ {
			synctest.Wait()
			frames := b.snapshot()
			if unconfirmed := len(frames) - confirmed; unconfirmed > relayserver.Window {
				t.Fatalf("step %d: %d frames sent beyond the last answered Ping, window %d", step, unconfirmed, relayserver.Window)
			}
			if seen == len(frames) {
				t.Fatalf("step %d: stalled after %d of %d packets (%d frames, %d Pings answered)", step, delivered, n, len(frames), pings)
			}
			for ; seen < len(frames); seen++ {
				switch f := frames[seen]; f.Type {
				case relay.FrameRecvPacket:
					if f.Key != pub(ka) || len(f.Data) != 2 || int(f.Data[0])<<8|int(f.Data[1]) != delivered {
						t.Fatalf("packet %d: %x from %x", delivered, f.Data, f.Key[:4])
					}
					delivered++
				case relay.FramePing:
					pong := relay.Frame{Type: relay.FramePong, PingData: f.PingData}
					if _, err := relay.WriteFrame(b.conn, &pong, nil); err != nil {
						t.Fatal(err)
					}
					pings++
					confirmed = seen + 1
				default:
					t.Fatalf("unexpected %v frame", f.Type)
				}
			}
		}
		if err := <-sendErr; err != nil {
			t.Fatal(err)
		}
		if s := srv.Stats(); s.DroppedQueue != 0 || s.WindowWaits == 0 || s.Unresponsive != 0 {
			t.Fatalf("stats %+v: want window waits and no drops", s)
		}
	})
}

// TestClientThatAnswersNoPingIsDropped: with Window frames unconfirmed the server sends
// nothing more, and disconnects the client once it has left the Ping unanswered for
// WriteTimeout.
func TestClientThatAnswersNoPingIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		srv, a, ka, kb := pipeSender(t, relayserver.Config{WriteTimeout: timeout})
		b := newFrameLog(t, srv, kb)
		defer b.close()
		synctest.Wait()
		for i := range 2 * relayserver.Window {
			if err := a.Send(pub(kb), []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got := len(b.snapshot()); got != relayserver.Window {
			t.Fatalf("client that answers nothing got %d frames, want the window of %d", got, relayserver.Window)
		}
		time.Sleep(timeout - time.Nanosecond)
		synctest.Wait()
		if !srv.IsConnected(pub(kb)) {
			t.Fatal("disconnected before WriteTimeout")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if srv.IsConnected(pub(kb)) {
			t.Fatal("still connected after leaving a Ping unanswered for WriteTimeout")
		}
		if s := srv.Stats(); s.Unresponsive != 1 {
			t.Fatalf("stats %+v: want one unresponsive client", s)
		}
		// The sender is unaffected.
		if srv.IsConnected(pub(ka)) != true {
			t.Fatal("sender disconnected")
		}
	})
}

// TestClientAnsweringPingsGetsEverything: relay.Client answers the server's Pings itself, so
// a Go client receives a long burst whole; the window only paces it.
func TestClientAnsweringPingsGetsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, a, _, kb := pipeSender(t, relayserver.Config{})
		_, got, stopB := pipeClient(t, srv, kb)
		defer stopB()
		synctest.Wait()
		const n = 400
		for i := range n {
			if err := a.Send(pub(kb), []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got.Load() != n {
			t.Fatalf("got %d of %d packets; stats %+v", got.Load(), n, srv.Stats())
		}
	})
}

// TestUnpacedClientsSkipTheWindow: a client dialled by relayhttp sends relay.UnpacedHeader and
// gets a burst of twice the window with no Ping in it and no window wait; a client that
// upgrades without the header (as iroh's does) is paced: Pings come with its packets.
func TestUnpacedClientsSkipTheWindow(t *testing.T) {
	const n = 2 * relayserver.Window // fits the send queue: nothing is dropped
	r := newRelay(t, relayserver.Config{})
	ka, kb, kc := newKey(), newKey(), newKey()
	a, b := dial(t, r, ka), dial(t, r, kb)
	burst := func(dst ed25519.PrivateKey) {
		t.Helper()
		for i := range n {
			if err := a.Send(pub(dst), []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// pings reads frames from c until n packets have come, in order, and returns the number
	// of Pings among them (Recv answers each).
	pings := func(c *relay.Client) int {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard only
		got, pings := 0, 0
		for got < n {
			f, err := c.Recv()
			if err != nil {
				t.Fatalf("after %d packets: %v", got, err)
			}
			switch f.Type {
			case relay.FrameRecvPacket:
				if len(f.Data) != 1 || int(f.Data[0]) != got {
					t.Fatalf("packet %d: %x", got, f.Data)
				}
				got++
			case relay.FramePing:
				pings++
			}
		}
		return pings
	}
	burst(kb)
	if p := pings(b); p != 0 {
		t.Fatalf("unpaced client got %d Pings", p)
	}
	if s := r.srv.Stats(); s.Unpaced != 2 || s.WindowWaits != 0 {
		t.Fatalf("stats %+v: want 2 unpaced clients and no window wait", s)
	}

	conn, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /relay HTTP/1.1\r\nHost: x\r\nUpgrade: iroh derp http\r\n\r\n")
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	c, err := relay.NewClient(kc, conn, br)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	meshtest.WaitFor(t, func() bool { return r.srv.IsConnected(pub(kc)) })
	burst(kc)
	if p := pings(c); p == 0 {
		t.Fatalf("paced client got no Ping with %d packets", n)
	}
	if s := r.srv.Stats(); s.Unpaced != 2 {
		t.Fatalf("stats %+v: the client without the header was not paced", s)
	}
}
