package relayhttp_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayhttp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeServer accepts one connection, records the upgrade request and answers with status;
// on 101 it reads the ClientInfo frame.
func fakeServer(t *testing.T, status string) (addr string, got <-chan *http.Request, info <-chan relay.Frame) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reqs := make(chan *http.Request, 1)
	infos := make(chan relay.Frame, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		reqs <- req
		_, _ = c.Write([]byte("HTTP/1.1 " + status + "\r\nUpgrade: iroh derp http\r\nContent-Length: 0\r\n\r\n"))
		if strings.HasPrefix(status, "101") {
			f, _, err := relay.ReadFrame(br, nil)
			if err == nil {
				f.Data = append([]byte(nil), f.Data...)
				infos <- f
			}
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String(), reqs, infos
}

func TestDialRequestAndHandshake(t *testing.T) {
	addr, reqs, infos := fakeServer(t, "101 Switching Protocols")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	// The URL path is ignored: iroh always upgrades on /relay.
	c, err := relayhttp.Dial(context.Background(), "http://"+addr+"/some/path", priv, relayhttp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := <-reqs
	if req.Method != "GET" || req.URL.Path != "/relay" || req.Header.Get("Upgrade") != "iroh derp http" || req.Host != addr {
		t.Fatalf("request %s %s Host=%q Upgrade=%q", req.Method, req.URL, req.Host, req.Header.Get("Upgrade"))
	}
	if req.Header.Get("Connection") != "" {
		t.Fatalf("iroh sends no Connection header, we sent %q", req.Header.Get("Connection"))
	}
	f := <-infos
	if _, err := relay.VerifyClientInfo(&f); err != nil {
		t.Fatal(err)
	}
	if f.Key != c.PublicKey() {
		t.Fatal("client info carries another key")
	}
}

func TestDialRefusals(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	addr, _, _ := fakeServer(t, "400 Bad Request")
	if _, err := relayhttp.Dial(context.Background(), "http://"+addr, priv, relayhttp.Options{}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("400 answer: %v", err)
	}
	for _, u := range []string{"ftp://127.0.0.1:1", "http://", "::bad"} {
		if _, err := relayhttp.Dial(context.Background(), u, priv, relayhttp.Options{}); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
	// A server that accepts TCP but never answers: the dial gives up at Timeout.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c
		}
	}()
	start := time.Now()
	if _, err := relayhttp.Dial(context.Background(), "http://"+ln.Addr().String(), priv, relayhttp.Options{Timeout: 200 * time.Millisecond}); err == nil {
		t.Fatal("silent server: no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	(<-held).Close()
}
