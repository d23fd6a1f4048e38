package endpoint

import (
	"context"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
)

// newPathsEP makes an endpoint over a magicsock PathConn on loopback (no
// relay).
func newPathsEP(t testing.TB) *Endpoint {
	t.Helper()
	sk := key.GenerateSecretKey()
	ms, err := magicsock.New(magicsock.Options{SecretKey: sk, BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{SecretKey: sk, Paths: ms})
	if err != nil {
		ms.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

var _ PathConn = (*magicsock.Conn)(nil)

// The endpoint runs over a magicsock PathConn: dial by node id through a
// mapped address, echo both ways, and reuse.
func TestOverPathConn(t *testing.T) {
	a, b := newPathsEP(t), newPathsEP(t)
	var seen = make(chan key.PublicKey, 1)
	b.Handle(echoALPN, func(ctx context.Context, c *Conn) {
		seen <- c.RemoteID()
		echo(ctx, c)
	})
	// b must know a to accept its packets (as iroh: unknown senders are dropped).
	b.AddNodeAddr(a.Addr())
	ba := b.Addr()
	if len(ba.Direct) != 1 {
		t.Fatalf("b advertises %v", ba)
	}
	c, err := a.Dial(ctxT(t), ba, echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteID() != b.NodeID() {
		t.Fatalf("dialed %v", c.RemoteID())
	}
	roundTrip(t, c, make([]byte, 200<<10))
	if got := <-seen; got != a.NodeID() {
		t.Fatalf("b saw %v, want %v", got, a.NodeID())
	}
	c2, err := a.Dial(ctxT(t), NodeAddr{ID: b.NodeID()}, echoALPN)
	if err != nil || c2 != c {
		t.Fatalf("reuse over PathConn: %v (same=%v)", err, c2 == c)
	}
}
