package interop

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
	"github.com/meshkafka/meshkafka/mesh/meshtls"
)

// relayPeer is a Go node on a magicsock (our relay as home relay) with a bare quic-go
// transport on top, serving echo on alpnEcho.
type relayPeer struct {
	sk key.SecretKey
	ms *magicsock.Conn
	tr *quic.Transport
}

var relayQUICConf = &quic.Config{KeepAlivePeriod: time.Second, MaxIdleTimeout: 30 * time.Second, HandshakeIdleTimeout: 10 * time.Second}

func newRelayPeer(t *testing.T, relayURL string, disableDirect bool) *relayPeer {
	t.Helper()
	sk := key.GenerateSecretKey()
	var log *slog.Logger
	if os.Getenv("MAGICSOCK_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p := startRelayPeer(t, magicsock.Options{SecretKey: sk, BindAddr: "127.0.0.1:0", HomeRelay: relayURL, DisableDirect: disableDirect, Logger: log})
	meshtest.ServeEcho(t, p.tr, sk, alpnEcho, relayQUICConf)
	return p
}

// startRelayPeer opens a magicsock with opts and a QUIC transport over it, both closed when the
// test ends.
func startRelayPeer(t *testing.T, opts magicsock.Options) *relayPeer {
	t.Helper()
	ms, err := magicsock.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := &relayPeer{sk: opts.SecretKey, ms: ms, tr: &quic.Transport{Conn: ms}}
	t.Cleanup(func() {
		_ = p.tr.Close()
		_ = ms.Close()
	})
	return p
}

// echoFromGo opens a stream to the Rust node's echo service and checks n bytes come back.
func echoFromGo(ctx context.Context, t *testing.T, c *quic.Conn, n int) {
	t.Helper()
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.New()
	got := sha256.New()
	var rn int64
	var rerr error
	var wg sync.WaitGroup
	wg.Go(func() { rn, rerr = io.Copy(got, s) })
	buf := make([]byte, 16<<10)
	for sent := 0; sent < n; sent += len(buf) {
		chunk := buf[:min(len(buf), n-sent)]
		for i := range chunk {
			chunk[i] = byte(sent/len(buf) + i)
		}
		want.Write(chunk)
		if _, err := s.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	wg.Wait()
	if rerr != nil || rn != int64(n) || !slices.Equal(want.Sum(nil), got.Sum(nil)) {
		t.Fatalf("echo of %d bytes: got %d bytes, err %v, checksum match %v", n, rn, rerr, slices.Equal(want.Sum(nil), got.Sum(nil)))
	}
}

func remoteConnType(ctx context.Context, t *testing.T, n *irohnode.Node, id key.PublicKey) string {
	t.Helper()
	infos, err := n.RemoteInfos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ri := range infos {
		if ri.NodeID == id.String() {
			return ri.ConnType
		}
	}
	return ""
}

// TestRelayQUICRustGoRelayOnly: QUIC connections between an unmodified Rust node and a Go
// node that run only through our relay (the Go side sends no UDP disco and ignores
// CallMeMaybe; the Rust side is given no direct address), in both directions, with checksums.
func TestRelayQUICRustGoRelayOnly(t *testing.T) {
	ctx := nsCtx(t, 90*time.Second)
	srv, relayURL := startGoRelay(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("relay stats at failure: %+v", srv.Stats())
		}
	})
	g := newRelayPeer(t, relayURL, true)
	rust := rustNode(t, irohnode.NodeOptions{ALPNs: testALPNs})
	rustID, err := key.ParsePublicKey(rust.ID)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4<<20 + 5

	// Rust → Go, knowing only our node id and relay URL.
	rc, err := rust.Connect(ctx, irohnode.NodeAddr{NodeID: g.sk.Public().String(), RelayURL: relayURL, Addresses: []string{}}, alpnEcho, "")
	if err != nil {
		t.Fatalf("Rust dialing Go over the relay: %v", err)
	}
	if rc.Remote != g.sk.Public().String() {
		t.Fatalf("Rust reached %s, want %s", rc.Remote, g.sk.Public())
	}
	r, err := rc.Transfer(ctx, irohnode.Transfer{Bytes: n})
	if err != nil {
		t.Fatalf("%v; relay stats %+v", err, srv.Stats())
	}
	if want := irohnode.PatternSHA256(n); r.Streams[0].RecvSHA256 != want || r.Streams[0].RecvBytes != n {
		t.Fatalf("Rust got back %d bytes %s, want %s", r.Streams[0].RecvBytes, r.Streams[0].RecvSHA256, want)
	}
	t.Logf("Rust→Go over the relay: %d bytes echoed in %.0f ms", n, r.MS)

	// Go → Rust over the same relay (the Rust node is connected to it now).
	addr := g.ms.AddNodeAddr(rustID, relayURL, nil)
	cert, err := meshtls.GenerateCertificate(g.sk)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := g.tr.Dial(ctx, addr, meshtls.ClientConfig(cert, rustID, alpnEcho), relayQUICConf)
	if err != nil {
		infos, _ := rust.RemoteInfos(ctx)
		t.Fatalf("Go dialing Rust over the relay: %v; relay stats %+v; Rust remotes %+v", err, srv.Stats(), infos)
	}
	defer gc.CloseWithError(0, "")
	echoFromGo(ctx, t, gc, n)
	if id, err := meshtls.PeerID(gc.ConnectionState().TLS); err != nil || id != rustID {
		t.Fatalf("Go reached %v (%v), want %v", id, err, rustID)
	}

	if pi, _ := g.ms.Path(rustID); pi.Direct.IsValid() {
		t.Fatalf("Go side found a direct path %v in relay-only mode", pi.Direct)
	}
	if ct := remoteConnType(ctx, t, rust, g.sk.Public()); ct != "relay" && ct != "Relay" {
		t.Errorf("Rust's connType for us is %q, want relay", ct)
	}
	st := srv.Stats()
	if st.HandshakeFailed != 0 || st.BytesSent < 4*n {
		t.Fatalf("relay stats %+v: want ≥ %d payload bytes relayed", st, 4*n)
	}
	if st.Unresponsive != 0 {
		t.Errorf("relay stats %+v: the relay gave up on a client that answered no Ping", st)
	}
	if st.Unpaced != 1 {
		// The Go peer (relayhttp) opts out of the window; the Rust client must stay paced.
		t.Errorf("relay stats %+v: want only the Go peer unpaced", st)
	}
	t.Logf("relay stats: %+v", st)
	_ = rc.Close(ctx, 0, "done")
}

// TestRelayQUICRustGoUpgradeToDirect: the same pair with direct paths allowed starts on the
// relay and moves to a direct UDP path via disco (both sides agree), and data keeps flowing.
func TestRelayQUICRustGoUpgradeToDirect(t *testing.T) {
	ctx := nsCtx(t, 90*time.Second)
	srv, relayURL := startGoRelay(t)
	g := newRelayPeer(t, relayURL, false)
	rust := rustNode(t, irohnode.NodeOptions{ALPNs: testALPNs})
	rustID, err := key.ParsePublicKey(rust.ID)
	if err != nil {
		t.Fatal(err)
	}

	rc, err := rust.Connect(ctx, irohnode.NodeAddr{NodeID: g.sk.Public().String(), RelayURL: relayURL, Addresses: []string{}}, alpnEcho, "")
	if err != nil {
		t.Fatalf("Rust dialing Go over the relay: %v", err)
	}
	const n = 256 << 10
	want := irohnode.PatternSHA256(n)
	start := time.Now()
	for {
		r, err := rc.Transfer(ctx, irohnode.Transfer{Bytes: n})
		if err != nil {
			t.Fatal(err)
		}
		if r.Streams[0].RecvSHA256 != want {
			t.Fatalf("echo checksum %s, want %s", r.Streams[0].RecvSHA256, want)
		}
		ct := remoteConnType(ctx, t, rust, g.sk.Public())
		pi, _ := g.ms.Path(rustID)
		if (ct == "direct" || ct == "Direct") && pi.Direct.IsValid() {
			// Neither side knew a direct address at first: the handshake went over the relay.
			if st := srv.Stats(); st.BytesSent < 1200 {
				t.Errorf("relay carried only %d bytes; the first contact should have used it", st.BytesSent)
			}
			t.Logf("direct after %v: Rust connType %s, Go path %v (%v)", time.Since(start).Round(time.Millisecond), ct, pi.Direct, pi.Latency)
			if !slices.Contains(rust.Addr.Addresses, pi.Direct.String()) {
				t.Errorf("Go's direct path %v is not one of the Rust node's addresses %v", pi.Direct, rust.Addr.Addresses)
			}
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no direct path after 30s: Rust connType %q, Go path %+v", ct, pi)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Go → Rust on the now-direct pair.
	addr := g.ms.AddNodeAddr(rustID, relayURL, nil)
	cert, _ := meshtls.GenerateCertificate(g.sk)
	gc, err := g.tr.Dial(ctx, addr, meshtls.ClientConfig(cert, rustID, alpnEcho), relayQUICConf)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.CloseWithError(0, "")
	echoFromGo(ctx, t, gc, 2<<20)
	_ = rc.Close(ctx, 0, "done")
}

// TestRelayEndpointRustGo: the mesh endpoint itself (endpoint.Options.Paths = a magicsock with
// our relay as home relay) serves a Rust node that knows only its id and relay URL, and dials
// the Rust node back by id and relay URL.
func TestRelayEndpointRustGo(t *testing.T) {
	ctx := nsCtx(t, 60*time.Second)
	_, relayURL := startGoRelay(t)
	ep := magicep.New(t, relayURL)
	defer ep.Close()
	magicep.ServeEcho(t, ep, alpnEcho)
	rust := rustNode(t, irohnode.NodeOptions{ALPNs: testALPNs})
	rustID, err := key.ParsePublicKey(rust.ID)
	if err != nil {
		t.Fatal(err)
	}
	addr := ep.Addr()
	if addr.RelayURL != relayURL {
		t.Fatalf("endpoint address %v lacks the relay", addr)
	}
	rc, err := rust.Connect(ctx, irohnode.NodeAddr{NodeID: addr.ID.String(), RelayURL: addr.RelayURL, Addresses: []string{}}, alpnEcho, "")
	if err != nil {
		t.Fatalf("Rust dialing the Go endpoint: %v", err)
	}
	const n = 1 << 20
	r, err := rc.Transfer(ctx, irohnode.Transfer{Bytes: n, Streams: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range r.Streams {
		if s.RecvSHA256 != irohnode.PatternSHA256(n) {
			t.Fatalf("stream %d: echo checksum %s", i, s.RecvSHA256)
		}
	}
	gc, err := ep.Dial(ctx, endpoint.NodeAddr{ID: rustID, RelayURL: relayURL}, alpnEcho)
	if err != nil {
		t.Fatalf("Go endpoint dialing Rust by id and relay URL: %v", err)
	}
	if gc.RemoteID() != rustID {
		t.Fatalf("reached %v", gc.RemoteID())
	}
	echoFromGo(ctx, t, gc.QUIC(), n)
	_ = rc.Close(ctx, 0, "done")
}
