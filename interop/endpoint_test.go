package interop

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

const (
	bigTransfer  = 64 << 20 // "64 MiB each way"
	manyStreams  = 100      // iroh 0.28 (quinn) allows 100 concurrent incoming bi streams
	manyStreamSz = 64 << 10
)

// acceptedConn is what a Go handler saw when it accepted a connection.
type acceptedConn struct {
	ALPN   string
	Remote string
}

// goNode is a Go endpoint on 127.0.0.1 serving modes (ALPN -> mode) with the Go half of the
// stream protocol. Accepted connections and served streams are reported on the channels.
type goNode struct {
	ep       *endpoint.Endpoint
	accepted chan acceptedConn
	reports  chan streamReport
}

func newGoNode(t testing.TB, modes map[string]irohnode.Mode) *goNode {
	t.Helper()
	ep := magicep.Loopback(t)
	g := &goNode{ep: ep, accepted: make(chan acceptedConn, 64), reports: make(chan streamReport, 4*manyStreams)}
	report := reportTo(t, g.reports)
	for alpn, mode := range modes {
		ep.Handle(alpn, func(ctx context.Context, c *endpoint.Conn) {
			defer c.Close()
			select {
			case g.accepted <- acceptedConn{ALPN: c.ALPN(), Remote: c.RemoteID().String()}:
			default:
			}
			goServe(ctx, c, mode, report)
		})
	}
	return g
}

// irohAddr is a Go endpoint's address as the driver takes it.
func irohAddr(ep *endpoint.Endpoint) irohnode.NodeAddr {
	a := ep.Addr()
	out := irohnode.NodeAddr{NodeID: a.ID.String(), Addresses: []string{}}
	for _, d := range a.Direct {
		out.Addresses = append(out.Addresses, d.String())
	}
	return out
}

// meshAddr is a Rust node's direct address as our endpoint takes it.
func meshAddr(t testing.TB, n *irohnode.Node) endpoint.NodeAddr {
	t.Helper()
	id, err := key.ParsePublicKey(n.ID)
	if err != nil {
		t.Fatalf("Rust node id %q: %v", n.ID, err)
	}
	a := endpoint.NodeAddr{ID: id}
	for _, s := range n.Addr.Addresses {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			t.Fatalf("Rust address %q: %v", s, err)
		}
		a.Direct = append(a.Direct, ap)
	}
	return a
}

func (g *goNode) waitReport(ctx context.Context, t testing.TB) streamReport {
	t.Helper()
	return receive(ctx, t, g.reports, "no stream report from the Go side")
}

func (g *goNode) waitAccepted(ctx context.Context, t testing.TB) acceptedConn {
	t.Helper()
	return receive(ctx, t, g.accepted, "the Go endpoint accepted no connection")
}

// receive returns the next value from ch; if ctx ends first it fails t with what.
func receive[T any](ctx context.Context, t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatal(what)
		var zero T
		return zero
	}
}

// TestGoDialsRust: our endpoint dials a real Rust node on custom ALPNs; bi and uni streams,
// 64 MiB each way with checksums, 100 concurrent streams, both sides see the right node ids.
func TestGoDialsRust(t *testing.T) {
	ctx, rust := rustPeer(t, 3*time.Minute)
	g := newGoNode(t, nil)
	goID := g.ep.NodeID().String()
	// iroh 0.28 ignores QUIC from addresses it was not told about.
	if err := rust.AddNodeAddr(ctx, irohAddr(g.ep)); err != nil {
		t.Fatal(err)
	}
	want := irohnode.PatternSHA256(bigTransfer)

	dial := func(t *testing.T, alpn string) *endpoint.Conn {
		t.Helper()
		c, err := g.ep.Dial(ctx, meshAddr(t, rust), alpn)
		if err != nil {
			t.Fatalf("dial %s: %v", alpn, err)
		}
		t.Cleanup(func() { c.Close() })
		if got := c.RemoteID().String(); got != rust.ID {
			t.Fatalf("Go sees %s, want %s", got, rust.ID)
		}
		if c.ALPN() != alpn {
			t.Fatalf("ALPN %q, want %q", c.ALPN(), alpn)
		}
		e, err := rust.WaitAccepted(ctx, alpn)
		if err != nil {
			t.Fatal(err)
		}
		if e.Remote != goID {
			t.Fatalf("Rust sees %s, want %s", e.Remote, goID)
		}
		return c
	}

	t.Run("bi-echo-64MiB", func(t *testing.T) {
		c := dial(t, alpnEcho)
		res, err := goTransfer(ctx, c, irohnode.Transfer{Bytes: bigTransfer})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Streams[0]
		if s.SentSHA256 != want || s.RecvBytes != bigTransfer || s.RecvSHA256 != want {
			t.Fatalf("sent %s, echoed %d bytes %s; want %s", s.SentSHA256, s.RecvBytes, s.RecvSHA256, want)
		}
		e, err := rust.WaitStream(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if e.Error != "" || e.RecvSHA256 != want || e.SentSHA256 != want {
			t.Fatalf("Rust echo saw %+v", e)
		}
		t.Logf("64 MiB each way in %.0f ms", s.MS)
	})

	t.Run("uni-sink-64MiB", func(t *testing.T) {
		c := dial(t, alpnSink)
		if err := sendUni(ctx, c, bigTransfer); err != nil {
			t.Fatal(err)
		}
		waitUni(ctx, t, rust, "", bigTransfer, want)
	})

	t.Run("uni-source-64MiB", func(t *testing.T) {
		c := dial(t, alpnSource)
		s, err := c.OpenUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var hdr [8]byte
		binary.BigEndian.PutUint64(hdr[:], bigTransfer)
		if _, err := s.Write(hdr[:]); err != nil {
			t.Fatal(err)
		}
		s.Close()
		back, err := c.AcceptUniStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, back)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != bigTransfer || got != want {
			t.Fatalf("Rust source sent %d bytes %s, want %d bytes %s", n, got, bigTransfer, want)
		}
		if _, err := rust.WaitStream(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bi-source", func(t *testing.T) {
		c := dial(t, alpnSource)
		res, err := goTransfer(ctx, c, irohnode.Transfer{Bytes: 5<<20 + 1, Request: true})
		if err != nil {
			t.Fatal(err)
		}
		if w := irohnode.PatternSHA256(5<<20 + 1); res.Streams[0].RecvSHA256 != w {
			t.Fatalf("got %s, want %s", res.Streams[0].RecvSHA256, w)
		}
		if _, err := rust.WaitStream(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("100-concurrent-streams", func(t *testing.T) {
		c := dial(t, alpnEcho)
		res, err := goTransfer(ctx, c, irohnode.Transfer{Streams: manyStreams, Bytes: manyStreamSz})
		if err != nil {
			t.Fatal(err)
		}
		w := irohnode.PatternSHA256(manyStreamSz)
		checkEchoes(t, res.Streams, w)
		for range manyStreams {
			e, err := rust.WaitStream(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if e.Error != "" || e.RecvSHA256 != w {
				t.Errorf("Rust stream: %+v", e)
			}
		}
	})
}

// TestRustDialsGo: a real Rust node dials our endpoint; the same checks the other way round.
func TestRustDialsGo(t *testing.T) {
	ctx := nsCtx(t, 3*time.Minute)
	g := newGoNode(t, testALPNs)
	goID := g.ep.NodeID().String()
	rust := rustNode(t, irohnode.NodeOptions{})
	want := irohnode.PatternSHA256(bigTransfer)

	connect := func(t *testing.T, alpn string, serve irohnode.Mode) *irohnode.Conn {
		t.Helper()
		c, err := rust.Connect(ctx, irohAddr(g.ep), alpn, serve)
		if err != nil {
			t.Fatalf("Rust connect %s: %v", alpn, err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background(), 0, "") })
		if c.Remote != goID {
			t.Fatalf("Rust sees %s, want %s", c.Remote, goID)
		}
		a := g.waitAccepted(ctx, t)
		if a.Remote != rust.ID || a.ALPN != alpn {
			t.Fatalf("Go accepted %+v, want %s on %s", a, rust.ID, alpn)
		}
		return c
	}

	t.Run("bi-echo-64MiB", func(t *testing.T) {
		c := connect(t, alpnEcho, "")
		r, err := c.Transfer(ctx, irohnode.Transfer{Bytes: bigTransfer})
		if err != nil {
			t.Fatal(err)
		}
		if s := r.Streams[0]; s.RecvBytes != bigTransfer || s.RecvSHA256 != want {
			t.Fatalf("echo returned %d bytes %s, want %s", s.RecvBytes, s.RecvSHA256, want)
		}
		rep := g.waitReport(ctx, t)
		if rep.Err != nil || rep.RecvSHA256 != want || rep.SentSHA256 != want {
			t.Fatalf("Go echo saw %+v", rep)
		}
		t.Logf("64 MiB each way in %.0f ms", r.MS)
	})

	t.Run("uni-sink-64MiB", func(t *testing.T) {
		c := connect(t, alpnSink, "")
		if _, err := c.Transfer(ctx, irohnode.Transfer{Kind: "uni", Bytes: bigTransfer}); err != nil {
			t.Fatal(err)
		}
		rep := g.waitReport(ctx, t)
		if rep.Err != nil || rep.Kind != "uni" || rep.RecvBytes != bigTransfer || rep.RecvSHA256 != want {
			t.Fatalf("Go sink saw %+v, want uni %d bytes %s", rep, bigTransfer, want)
		}
	})

	t.Run("uni-source-64MiB", func(t *testing.T) {
		// Rust requests on a uni stream; Go answers on a uni stream that Rust sinks.
		c := connect(t, alpnSource, irohnode.Sink)
		if _, err := c.Transfer(ctx, irohnode.Transfer{Kind: "uni", Bytes: bigTransfer, Request: true}); err != nil {
			t.Fatal(err)
		}
		waitUni(ctx, t, rust, c.Handle, bigTransfer, want)
		if rep := g.waitReport(ctx, t); rep.Err != nil || rep.SentSHA256 != want {
			t.Fatalf("Go source: %+v", rep)
		}
	})

	t.Run("100-concurrent-streams", func(t *testing.T) {
		c := connect(t, alpnEcho, "")
		r, err := c.Transfer(ctx, irohnode.Transfer{Streams: manyStreams, Bytes: manyStreamSz})
		if err != nil {
			t.Fatal(err)
		}
		w := irohnode.PatternSHA256(manyStreamSz)
		checkEchoes(t, r.Streams, w)
		for range manyStreams {
			if rep := g.waitReport(ctx, t); rep.Err != nil || rep.RecvSHA256 != w {
				t.Errorf("Go stream: %+v", rep)
			}
		}
	})
}

// TestEndpointRefusals: wrong keys and unserved ALPNs between our endpoint and the Rust node,
// both directions.
func TestEndpointRefusals(t *testing.T) {
	ctx, rust := rustPeer(t, 2*time.Minute)
	g := newGoNode(t, map[string]irohnode.Mode{alpnEcho: irohnode.Echo})
	if err := rust.AddNodeAddr(ctx, irohAddr(g.ep)); err != nil {
		t.Fatal(err)
	}
	other := key.GenerateSecretKey().Public()

	t.Run("go-dials-wrong-id", func(t *testing.T) {
		// The Rust node at this address proves its own id, not `other`: our verifier must refuse.
		a := meshAddr(t, rust)
		a.ID = other
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		c, err := g.ep.Dial(dctx, a, alpnEcho)
		if err == nil {
			c.Close()
			t.Fatalf("dialing %s reached the Rust node %s", other, rust.ID)
		}
		var te *quic.TransportError
		if !errors.As(err, &te) || te.Remote || te.ErrorCode < 0x100 || te.ErrorCode > 0x1ff {
			t.Errorf("want a TLS error raised by our verifier, got %v", err)
		}
	})

	t.Run("go-dials-unserved-alpn", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		c, err := g.ep.Dial(dctx, meshAddr(t, rust), "meshkafka/not-served/0")
		if err == nil {
			c.Close()
			t.Fatal("the Rust node accepted an ALPN it does not serve")
		}
		if a := alertOf(err); a != 120 {
			t.Errorf("want TLS alert 120 from Rust, got %v", err)
		}
	})

	t.Run("rust-dials-go-as-wrong-id", func(t *testing.T) {
		// Rust dials `other` at our address; our endpoint proves its real key: Rust refuses.
		addr := irohAddr(g.ep)
		addr.NodeID = other.String()
		c, err := rust.Connect(ctx, addr, alpnEcho, "")
		if err == nil {
			_ = c.Close(ctx, 0, "")
			t.Fatalf("Rust dialed %s and accepted our node %s", other, g.ep.NodeID())
		}
		if !strings.Contains(err.Error(), "error 47") {
			t.Errorf("want a refusal with TLS alert 47, got %v", err)
		}
	})

	t.Run("rust-dials-go-unserved-alpn", func(t *testing.T) {
		c, err := rust.Connect(ctx, irohAddr(g.ep), "meshkafka/not-served/0", "")
		if err == nil {
			_ = c.Close(ctx, 0, "")
			t.Fatal("our endpoint accepted an ALPN it does not serve")
		}
		if !strings.Contains(err.Error(), "error 120") {
			t.Errorf("want TLS alert 120 from our endpoint, got %v", err)
		}
	})

	t.Run("no-connection-leaked-to-handlers", func(t *testing.T) {
		select {
		case a := <-g.accepted:
			t.Fatalf("a refused handshake reached a handler: %+v", a)
		default:
		}
	})
}

// TestEndpointRefusesBadCertificates: a bare quic-go peer presents certificates our endpoint
// must refuse (the same ones the Rust node refuses in TestRawTLSAgainstRust), and a control
// certificate it must accept.
func TestEndpointRefusesBadCertificates(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	g := newGoNode(t, map[string]irohnode.Mode{alpnEcho: irohnode.Echo})
	addr := g.ep.Addr().Direct[0].String()
	k := newEd25519(t)
	for _, tc := range []struct {
		name   string
		opts   rawCertOpts
		alpn   string
		accept bool
	}{
		{"valid", rawCertOpts{signer: k}, alpnEcho, true},
		{"no-extension", rawCertOpts{signer: k, noExtension: true}, alpnEcho, false},
		{"extension-signature-mismatch", rawCertOpts{signer: k, claim: newEd25519(t).Public().(ed25519.PublicKey)}, alpnEcho, false},
		{"unserved-alpn", rawCertOpts{signer: k}, "meshkafka/not-served/0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newRawPeer(t)
			c, err := p.dialAddr(ctx, t, addr, rawCert(t, tc.opts), tc.alpn)
			if err == nil {
				err = refusedAfterHandshake(c)
			}
			if tc.accept {
				if err != nil {
					t.Fatalf("our endpoint refused a correct certificate: %v", err)
				}
				if a := g.waitAccepted(ctx, t); a.Remote != nodeIDText(t, k.Public().(ed25519.PublicKey)) {
					t.Fatalf("handler saw %s", a.Remote)
				}
				return
			}
			if err == nil {
				t.Fatal("our endpoint accepted it")
			}
			if alertOf(err) < 0 {
				t.Errorf("want a TLS alert from our endpoint, got %v", err)
			}
		})
	}
}
