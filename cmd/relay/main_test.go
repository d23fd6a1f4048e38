package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayhttp"
	"github.com/meshkafka/meshkafka/mesh/stun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs the command with args and returns the relay URL and STUN address it prints.
func start(t *testing.T, args ...string) (relayURL, stunAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, io.Discard)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	sc := bufio.NewScanner(pr)
	want := 1
	if !contains(args, "-stun=") {
		want = 2
	}
	for i := 0; i < want && sc.Scan(); i++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "relay: serving "):
			relayURL = strings.TrimPrefix(line, "relay: serving ")
		case strings.HasPrefix(line, "stun: serving udp "):
			stunAddr = strings.TrimPrefix(line, "stun: serving udp ")
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if relayURL == "" {
		t.Fatal("no relay line printed")
	}
	return relayURL, stunAddr
}

func contains(args []string, prefix string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

func exchange(t *testing.T, url string, opts relayhttp.Options) {
	t.Helper()
	_, ka, _ := ed25519.GenerateKey(rand.Reader)
	_, kb, _ := ed25519.GenerateKey(rand.Reader)
	ctx := context.Background()
	a, err := relayhttp.Dial(ctx, url, ka, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := relayhttp.Dial(ctx, url, kb, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	// b may not be registered yet when a first sends; resend until it arrives.
	got := make(chan relay.Frame, 1)
	go func() {
		for {
			f, err := b.Recv()
			if err != nil {
				close(got)
				return
			}
			if f.Type == relay.FrameRecvPacket {
				f.Data = append([]byte(nil), f.Data...)
				got <- f
				return
			}
		}
	}()
	pubB := relay.NodeKey(kb.Public().(ed25519.PublicKey))
	for {
		if err := a.Send(pubB, []byte("via cmd/relay")); err != nil {
			t.Fatal(err)
		}
		select {
		case f, ok := <-got:
			if !ok {
				t.Fatal("b's connection ended")
			}
			if string(f.Data) != "via cmd/relay" || f.Key != relay.NodeKey(ka.Public().(ed25519.PublicKey)) {
				t.Fatalf("b got %q from %x", f.Data, f.Key[:4])
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestPlainHTTPAndSTUN(t *testing.T) {
	url, stunAddr := start(t, "-addr", "127.0.0.1:0", "-stun", "127.0.0.1:0")
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("url %q", url)
	}
	exchange(t, url, relayhttp.Options{})

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sa, err := net.ResolveUDPAddr("udp", stunAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := stun.Probe(ctx, pc, sa)
	if err != nil {
		t.Fatal(err)
	}
	if got != pc.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("STUN says %v, socket is %v", got, pc.LocalAddr())
	}
}

func TestTLS(t *testing.T) {
	certs := gatewaytest.NewCerts(t, t.TempDir(), "client") // a server certificate for 127.0.0.1 from a throw-away CA
	url, _ := start(t, "-addr", "127.0.0.1:0", "-stun=", "-cert", certs.Cert, "-key", certs.Key)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("url %q", url)
	}
	exchange(t, url, relayhttp.Options{TLSConfig: &tls.Config{RootCAs: certs.ClientTLS().RootCAs}})
	// Without trusting the certificate the dial fails.
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	if c, err := relayhttp.Dial(context.Background(), url, k, relayhttp.Options{}); err == nil {
		_ = c.Close()
		t.Fatal("dial without the CA succeeded")
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-cert", "x.pem"},
		{"-addr", "127.0.0.1:0", "-stun=", "-cert", "/nonexistent", "-key", "/nonexistent"},
		{"extra"},
	} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
