package interop

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/interop/irohnode"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ctxFor returns a context that ends after d or when the test ends.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// nsCtx skips the test unless it runs in a private network namespace with only loopback
// (irohnode.RequireNamespace: a Rust iroh node must reach no real network), and returns a
// context that ends after d or with the test.
func nsCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	irohnode.RequireNamespace(t)
	return ctxFor(t, d)
}

// rustPeer is nsCtx with one Rust node serving the test ALPNs.
func rustPeer(t *testing.T, d time.Duration) (context.Context, *irohnode.Node) {
	t.Helper()
	ctx := nsCtx(t, d)
	return ctx, rustNode(t, irohnode.NodeOptions{ALPNs: testALPNs})
}

// rustNode starts a driver (killed at cleanup) with one Rust node serving alpns.
func rustNode(t testing.TB, o irohnode.NodeOptions) *irohnode.Node {
	t.Helper()
	d := irohnode.Start(t)
	n, err := d.NewNode(ctxFor(t, 30*time.Second), o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const (
	alpnEcho   = "meshkafka/test/echo/0"
	alpnSink   = "meshkafka/test/sink/0"
	alpnSource = "meshkafka/test/source/0"
)

var testALPNs = map[string]irohnode.Mode{
	alpnEcho:   irohnode.Echo,
	alpnSink:   irohnode.Sink,
	alpnSource: irohnode.Source,
}
