package interop

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// TestRawStreamsWithRust checks the Go half of the stream modes (gostreams_test.go) against the
// Rust driver with a bare quic-go peer, independent of mesh/endpoint: Rust opens bi and uni
// streams to a Go echo listener, and Go opens bi streams to the Rust sink and source.
func TestRawStreamsWithRust(t *testing.T) {
	ctx, rust := rustPeer(t, 60*time.Second)
	const n = 1<<20 + 3
	want := irohnode.PatternSHA256(n)

	t.Run("rust-dials-go-echo", func(t *testing.T) {
		k := newEd25519(t)
		id := nodeIDText(t, k.Public().(ed25519.PublicKey))
		p := newRawPeer(t)
		reports := make(chan streamReport, 64)
		p.listen(t, rawCert(t, rawCertOpts{signer: k}), alpnEcho, func(c *quic.Conn) {
			goServe(c.Context(), rawQUIC{c}, irohnode.Echo, reportTo(t, reports))
		})
		// Rust sinks the uni streams Go echoes back (an echo there would ping-pong forever).
		c, err := rust.Connect(ctx, irohnode.NodeAddr{NodeID: id, Addresses: []string{p.addr()}}, alpnEcho, irohnode.Sink)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx, 0, "")
		for _, kind := range []string{"bi", "uni"} {
			r, err := c.Transfer(ctx, irohnode.Transfer{Kind: kind, Streams: 3, Bytes: n})
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			for range 3 {
				rep := <-reports
				if rep.Err != nil || rep.Kind != kind || rep.RecvSHA256 != want || rep.SentSHA256 != want {
					t.Errorf("%s: Go echo saw %+v, want %s both ways", kind, rep, want)
				}
			}
			if kind == "bi" {
				for i, s := range r.Streams {
					if s.RecvSHA256 != want {
						t.Errorf("bi stream %d: echo came back as %s", i, s.RecvSHA256)
					}
				}
				continue
			}
			// uni echo: Go opened a uni stream back for each; Rust sinks them on this
			// connection and reports each as a stream event.
			for range 3 {
				e, err := rust.WaitStream(ctx, c.Handle)
				if err != nil {
					t.Fatal(err)
				}
				if e.Kind != "uni" || e.RecvSHA256 != want {
					t.Errorf("uni echo back to Rust: %+v", e)
				}
			}
		}
	})

	t.Run("go-dials-rust", func(t *testing.T) {
		k := newEd25519(t)
		p := newRawPeer(t)
		for _, tc := range []struct {
			alpn    string
			request bool
			want    string
		}{
			{alpnSink, false, sinkReplySHA256(n, want)},
			{alpnSource, true, want},
			{alpnEcho, false, want},
		} {
			c, err := p.dial(ctx, t, rust, nodeIDText(t, k.Public().(ed25519.PublicKey)), rawCert(t, rawCertOpts{signer: k}), tc.alpn)
			if err != nil {
				t.Fatalf("%s: %v", tc.alpn, err)
			}
			res, err := goTransfer(ctx, rawQUIC{c}, irohnode.Transfer{Streams: 4, Bytes: n, Request: tc.request})
			if err != nil {
				t.Fatalf("%s: %v", tc.alpn, err)
			}
			for i, s := range res.Streams {
				if s.RecvSHA256 != tc.want {
					t.Errorf("%s stream %d: reply %d bytes %s, want %s", tc.alpn, i, s.RecvBytes, s.RecvSHA256, tc.want)
				}
			}
			sendCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if tc.alpn == alpnSink {
				if err := sendUni(sendCtx, rawQUIC{c}, n); err != nil {
					t.Fatal(err)
				}
				for {
					e, err := rust.WaitStream(sendCtx, "")
					if err != nil {
						t.Fatal(err)
					}
					if e.Kind == "uni" {
						if e.RecvSHA256 != want {
							t.Errorf("Rust sink got uni %d bytes %s, want %s", e.RecvBytes, e.RecvSHA256, want)
						}
						break
					}
				}
			}
			cancel()
			c.CloseWithError(0, "")
		}
	})
}
