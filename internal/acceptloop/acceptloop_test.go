package acceptloop

import (
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Each accepted connection gets its own handler (two are served at once), is closed when
// its handler returns, and Serve returns nil only after ctx ended and every handler returned.
func TestServeUntilCancel(t *testing.T) {
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var finished atomic.Int32
	served := make(chan struct{}, 2)
	returned := make(chan error, 1)
	go func() {
		returned <- Serve(ctx, ln, func(c net.Conn) {
			if _, err := c.Write([]byte("hi")); err != nil {
				t.Error(err)
			}
			served <- struct{}{}
			<-release
			finished.Add(1)
		})
	}()
	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	<-served
	<-served // both handlers run at the same time
	cancel()
	close(release)
	if err := <-returned; err != nil {
		t.Fatalf("Serve = %v, want nil after ctx ended", err)
	}
	if n := finished.Load(); n != 2 {
		t.Fatalf("Serve returned with %d of 2 handlers finished", n)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("the listener still accepts after Serve returned")
	}
	for _, c := range conns {
		b, err := io.ReadAll(c) // "hi", then EOF: Serve closed the connection
		if err != nil || string(b) != "hi" {
			t.Fatalf("read %q, %v; want \"hi\" then EOF", b, err)
		}
	}
}

// An Accept failure while ctx is live is returned.
func TestServeReturnsAcceptError(t *testing.T) {
	ln := listen(t)
	ln.Close()
	err := Serve(context.Background(), ln, func(net.Conn) { t.Error("handler called") })
	if err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
}
