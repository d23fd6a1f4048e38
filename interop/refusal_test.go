package interop

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// TestRawTLSAgainstRust drives the real Rust node with a bare quic-go/crypto/tls peer: a correct
// hand-made certificate is accepted in both directions (the control), and each defect is
// refused with the TLS alert iroh 0.28.1 sends for it.
func TestRawTLSAgainstRust(t *testing.T) {
	ctx, rust := rustPeer(t, 90*time.Second)
	// Every subtest uses a fresh Go identity: once the Rust node has a path for an id, telling it
	// a new address for the same id does not make it accept packets from there at once.
	fresh := func(t *testing.T) (ed25519.PrivateKey, string) {
		k := newEd25519(t)
		return k, nodeIDText(t, k.Public().(ed25519.PublicKey))
	}

	t.Run("go-dials-rust/valid", func(t *testing.T) {
		goKey, goID := fresh(t)
		p := newRawPeer(t)
		c, err := p.dial(ctx, t, rust, goID, rawCert(t, rawCertOpts{signer: goKey}), alpnEcho)
		if err != nil {
			t.Fatalf("handshake with a correct certificate failed: %v", err)
		}
		if got := c.ConnectionState().TLS.NegotiatedProtocol; got != alpnEcho {
			t.Errorf("ALPN %q, want %q", got, alpnEcho)
		}
		certs := p.peerCerts()
		if len(certs) != 1 {
			t.Fatalf("Rust presented %d certificates, want 1", len(certs))
		}
		pub, err := certNodeID(certs[0])
		if err != nil {
			t.Fatalf("Rust certificate: %v", err)
		}
		if id := nodeIDText(t, pub); id != rust.ID {
			t.Fatalf("Rust certificate proves %s, want %s", id, rust.ID)
		}
		got, err := echoOnce(ctx, c, []byte("hello rust"))
		if err != nil || string(got) != "hello rust" {
			t.Fatalf("echo: %q, %v", got, err)
		}
		e, err := rust.WaitAccepted(ctx, alpnEcho)
		if err != nil {
			t.Fatal(err)
		}
		if e.Remote != goID {
			t.Errorf("Rust attributes the connection to %s, want %s", e.Remote, goID)
		}
		c.CloseWithError(0, "")
	})

	refusals := []struct {
		name  string
		cert  func(goKey ed25519.PrivateKey) rawCertOpts
		alpn  string
		alert int
	}{
		// A certificate without the libp2p extension: bad_certificate.
		{"no-extension", func(k ed25519.PrivateKey) rawCertOpts { return rawCertOpts{signer: k, noExtension: true} }, alpnEcho, 42},
		// The extension claims another key than the one that signed it, so its signature does
		// not verify: certificate_unknown (46), as observed.
		{"extension-signature-mismatch", func(k ed25519.PrivateKey) rawCertOpts {
			return rawCertOpts{signer: k, claim: newEd25519(t).Public().(ed25519.PublicKey)}
		}, alpnEcho, 46},
		// An ALPN the Rust node does not serve: no_application_protocol.
		{"unserved-alpn", func(k ed25519.PrivateKey) rawCertOpts { return rawCertOpts{signer: k} }, "meshkafka/not-served/0", 120},
		// iroh-gossip 0.28 speaks /iroh-gossip/0 only.
		{"gossip-v1-alpn", func(k ed25519.PrivateKey) rawCertOpts { return rawCertOpts{signer: k} }, "/iroh-gossip/1", 120},
	}
	for _, tc := range refusals {
		t.Run("go-dials-rust/"+tc.name, func(t *testing.T) {
			goKey, goID := fresh(t)
			p := newRawPeer(t)
			c, err := p.dial(ctx, t, rust, goID, rawCert(t, tc.cert(goKey)), tc.alpn)
			if err == nil {
				// TLS 1.3: the client is done before the server has checked its certificate,
				// so a refused client certificate shows as the connection being closed.
				err = refusedAfterHandshake(c)
				if err == nil {
					t.Fatal("the Rust node accepted the handshake and kept the connection")
				}
			}
			if a := alertOf(err); a != tc.alert {
				t.Fatalf("got %v (alert %d), want TLS alert %d from the Rust node", err, a, tc.alert)
			}
			if tc.alert == 120 {
				return // refused before iroh's router sees the connection: no Rust-side event
			}
			// The Rust node's own account of the refusal (its router saw the connection).
			e, err := rust.WaitAcceptError(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("error %d", tc.alert); !strings.Contains(e.Error, want) {
				t.Errorf("Rust reported %q, want it to name %q", e.Error, want)
			}
		})
	}

	// The Rust node dials a bare Go listener. Control: the listener proves the dialed id.
	t.Run("rust-dials-go/valid", func(t *testing.T) {
		goKey, goID := fresh(t)
		p := newRawPeer(t)
		p.listen(t, rawCert(t, rawCertOpts{signer: goKey}), alpnEcho, serveEcho)
		c, err := rust.Connect(ctx, irohnode.NodeAddr{NodeID: goID, Addresses: []string{p.addr()}}, alpnEcho, "")
		if err != nil {
			t.Fatalf("Rust could not dial a correct Go listener: %v", err)
		}
		if c.Remote != goID {
			t.Errorf("Rust sees %s, want %s", c.Remote, goID)
		}
		r, err := c.Transfer(ctx, irohnode.Transfer{Bytes: 100 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if want := irohnode.PatternSHA256(100 << 10); r.Streams[0].RecvSHA256 != want {
			t.Errorf("echo through the Go listener: got %s, want %s", r.Streams[0].RecvSHA256, want)
		}
		certs := p.peerCerts()
		if len(certs) != 1 {
			t.Fatalf("Rust client presented %d certificates, want 1", len(certs))
		}
		if pub, err := certNodeID(certs[0]); err != nil || nodeIDText(t, pub) != rust.ID {
			t.Fatalf("Rust client certificate: %v", err)
		}
		_ = c.Close(ctx, 0, "")
	})

	// The Go listener proves a different key than the one Rust dialed: Rust must refuse.
	t.Run("rust-dials-go/wrong-key", func(t *testing.T) {
		_, goID := fresh(t)
		p := newRawPeer(t)
		other := newEd25519(t)
		p.listen(t, rawCert(t, rawCertOpts{signer: other}), alpnEcho, serveEcho)
		c, err := rust.Connect(ctx, irohnode.NodeAddr{NodeID: goID, Addresses: []string{p.addr()}}, alpnEcho, "")
		if err == nil {
			_ = c.Close(ctx, 0, "")
			t.Fatalf("Rust dialed %s and accepted a peer proving %s", goID, nodeIDText(t, other.Public().(ed25519.PublicKey)))
		}
		// Rust's verifier refuses the server certificate with illegal_parameter (47).
		if !strings.Contains(err.Error(), "error 47") {
			t.Errorf("want a refusal with TLS alert 47, got %v", err)
		}
	})
}

// serveEcho echoes every bi stream of a raw connection.
func serveEcho(c *quic.Conn) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s, err := c.AcceptStream(c.Context())
		if err != nil {
			return
		}
		wg.Go(func() {
			var buf bytes.Buffer
			_, _ = io.Copy(&buf, s)
			_, _ = s.Write(buf.Bytes())
			_ = s.Close()
		})
	}
}

// refusedAfterHandshake tells whether the server refused a connection whose client side
// completed: it runs a stream round trip, which cannot complete on a refused connection, and
// returns why the connection closed (nil if the round trip worked).
func refusedAfterHandshake(c *quic.Conn) error {
	defer c.CloseWithError(0, "")
	ctx, cancel := context.WithTimeout(c.Context(), 5*time.Second)
	defer cancel()
	if _, err := echoOnce(ctx, c, []byte("ping")); err == nil {
		return nil
	} else if c.Context().Err() == nil {
		return err
	}
	return context.Cause(c.Context())
}
