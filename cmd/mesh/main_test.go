package main

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
)

func TestMain(m *testing.M) {
	statusOut = io.Discard
	goleak.VerifyTestMain(m)
}

// syncBuf is a goroutine-safe buffer that signals its first line.
type syncBuf struct {
	mu    sync.Mutex
	b     bytes.Buffer
	first chan string
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if s.first != nil {
		if line, _, ok := strings.Cut(s.b.String(), "\n"); ok {
			s.first <- line
			s.first = nil
		}
	}
	return len(p), nil
}

func serve(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan string, 1)
	out := &syncBuf{first: first}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"serve-echo", "-bind", "127.0.0.1:0"}, args...), out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve-echo: %v", err)
		}
	})
	select {
	case line := <-first:
		return line
	case err := <-done:
		t.Fatalf("serve-echo exited: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve-echo printed nothing")
	}
	return ""
}

func TestEchoAndThroughput(t *testing.T) {
	addr := serve(t)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"echo", addr, "-msg", "ping"}, &out); err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(addr, "@")
	if !strings.Contains(out.String(), id) || !strings.HasSuffix(strings.TrimSpace(out.String()), ": ping") {
		t.Fatalf("echo output %q", out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"throughput", addr, "-streams", "4", "-bytes", "1000000"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "MB/s") || !strings.Contains(out.String(), "path: direct 127.0.0.1:") {
		t.Fatalf("throughput output %q", out.String())
	}
}

func TestCustomALPN(t *testing.T) {
	addr := serve(t, "-alpn", "/other/echo/1")
	if err := run(t.Context(), []string{"echo", addr}, io.Discard); err == nil {
		t.Fatal("echo on the default ALPN succeeded against a server on another ALPN")
	}
	if err := run(t.Context(), []string{"echo", "-alpn", "/other/echo/1", addr}, io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestIDKeepsIdentity(t *testing.T) {
	dir := t.TempDir()
	var a, b bytes.Buffer
	if err := run(t.Context(), []string{"id", "-data", dir, "-bind", "127.0.0.1:0"}, &a); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"id", "-data", dir, "-bind", "127.0.0.1:0"}, &b); err != nil {
		t.Fatal(err)
	}
	first := func(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
	if first(a.String()) != first(b.String()) || !strings.HasPrefix(a.String(), "node id: ") {
		t.Fatalf("identity not kept:\n%s\n%s", a.String(), b.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "identity")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.String(), "addr:    127.0.0.1:") {
		t.Fatalf("no address printed: %s", a.String())
	}
}

// Through an in-process relay only: the client never sends UDP to the
// server directly.
func TestEchoViaRelay(t *testing.T) {
	rs := relayserver.New(relayserver.Config{})
	hs := httptest.NewServer(rs)
	defer func() {
		rs.Close()
		hs.Close()
	}()
	addr := serve(t, "-relay", hs.URL)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"echo", addr, "-relay", hs.URL, "-peer-relay", hs.URL, "-relay-only", "-msg", "via relay"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.TrimSpace(out.String()), ": via relay") {
		t.Fatalf("echo output %q", out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"throughput", addr, "-peer-relay", hs.URL, "-relay-only", "-streams", "2", "-bytes", "200000"}, &out); err != nil {
		t.Fatal(err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"echo"}, {"echo", "not-a-node"}, {"throughput", "x", "-streams", "0"}} {
		if err := run(t.Context(), args, io.Discard); err == nil {
			t.Fatalf("run(%q) succeeded", args)
		}
	}
}
