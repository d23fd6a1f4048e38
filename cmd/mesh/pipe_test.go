package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/mesh/ticket"
)

// lineWaiter collects written text and hands over the first line containing want.
type lineWaiter struct {
	mu   sync.Mutex
	b    bytes.Buffer
	want string
	got  chan string // never reassigned: wait reads it without the lock
	sent bool
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	for _, l := range strings.Split(w.b.String(), "\n") {
		if !w.sent && strings.Contains(l, w.want) {
			w.got <- l
			w.sent = true
		}
	}
	return len(p), nil
}

func (w *lineWaiter) wait(t *testing.T) string {
	t.Helper()
	select {
	case l := <-w.got:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("no line with %q", w.want)
		return ""
	}
}

// TestPipeStdio: mesh listen and mesh connect (dumbpipe's protocol) pass stdin to the other
// side's stdout both ways, and both end once both inputs ended.
func TestPipeStdio(t *testing.T) {
	status := &lineWaiter{want: "connect with", got: make(chan string, 1)}
	statusOut = status
	defer func() { statusOut = io.Discard }()
	var listenOut, connectOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runIO(t.Context(), []string{"listen", "-bind", "127.0.0.1:0"}, strings.NewReader("from the listener\n"), &listenOut)
	}()
	f := strings.Fields(status.wait(t))
	tk := f[len(f)-1]
	if !strings.HasPrefix(tk, "node") {
		t.Fatalf("listen printed no ticket: %v", f)
	}
	if err := runIO(t.Context(), []string{"connect", tk}, strings.NewReader("from the connector\n"), &connectOut); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if listenOut.String() != "from the connector\n" || connectOut.String() != "from the listener\n" {
		t.Fatalf("listener got %q, connector got %q", listenOut.String(), connectOut.String())
	}
	// connect tells its path on the status stream (stdout is the pipe's data).
	status.mu.Lock()
	st := status.b.String()
	status.mu.Unlock()
	if !strings.Contains(st, "path: direct 127.0.0.1:") {
		t.Fatalf("connect printed no direct path: %q", st)
	}
}

// TestPipeOverMDNS: listen -mdns is reached by connect -mdns with a bare NodeId.
func TestPipeOverMDNS(t *testing.T) {
	var lan meshtest.Link
	mdnsConns = lan.MDNSConns
	status := &lineWaiter{want: "connect with", got: make(chan string, 1)}
	statusOut = status
	defer func() { statusOut, mdnsConns = io.Discard, nil }()
	var listenOut, connectOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runIO(t.Context(), []string{"listen", "-mdns", "-bind", "127.0.0.1:0"}, strings.NewReader("L\n"), &listenOut)
	}()
	f := strings.Fields(status.wait(t))
	tk, err := ticket.Parse(f[len(f)-1])
	if err != nil {
		t.Fatal(err)
	}
	if err := runIO(t.Context(), []string{"connect", tk.ID.String(), "-mdns", "-bind", "127.0.0.1:0"}, strings.NewReader("C\n"), &connectOut); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if listenOut.String() != "C\n" || connectOut.String() != "L\n" {
		t.Fatalf("listener got %q, connector got %q", listenOut.String(), connectOut.String())
	}
}

// TestPipeTCP: connect-tcp gives a local port that reaches, through listen-tcp, a TCP service
// on the other node; several connections at once, each with its own half-close.
func TestPipeTCP(t *testing.T) {
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	var served sync.WaitGroup
	defer served.Wait()
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			served.Go(func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				fmt.Fprintf(c, "echo:%s", b)
			})
		}
	}()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	status := &lineWaiter{want: "connect with", got: make(chan string, 1)}
	statusOut = status
	defer func() { statusOut = io.Discard }()
	wg.Go(func() {
		if err := runIO(ctx, []string{"listen-tcp", "-bind", "127.0.0.1:0", "-host", svc.Addr().String()}, nil, io.Discard); err != nil {
			t.Errorf("listen-tcp: %v", err)
		}
	})
	f := strings.Fields(status.wait(t))
	fwd := &lineWaiter{want: "forwarding tcp", got: make(chan string, 1)}
	wg.Go(func() {
		if err := runIO(ctx, []string{"connect-tcp", f[len(f)-1], "-addr", "127.0.0.1:0"}, nil, fwd); err != nil {
			t.Errorf("connect-tcp: %v", err)
		}
	})
	local := strings.Fields(fwd.wait(t))[2]
	var clients sync.WaitGroup
	for i := range 3 {
		clients.Go(func() {
			c, err := net.Dial("tcp", local)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "request %d", i)
			c.(*net.TCPConn).CloseWrite()
			b, err := io.ReadAll(c)
			if err != nil || string(b) != fmt.Sprintf("echo:request %d", i) {
				t.Errorf("client %d got %q, %v", i, b, err)
			}
		})
	}
	clients.Wait()
}
