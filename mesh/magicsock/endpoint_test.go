package magicsock_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// TestEndpointOverMagicsock: the mesh endpoint runs on a magicsock (endpoint.Options.Paths);
// a node reached by id and relay URL alone answers through the relay, then directly.
func TestEndpointOverMagicsock(t *testing.T) {
	_, url := meshtest.StartRelay(t)
	a, b := magicep.New(t, url), magicep.New(t, url)
	magicep.ServeEcho(t, b, alpn)
	if got := b.Addr(); got.RelayURL != url {
		t.Fatalf("b's address %+v lacks its home relay %s", got, url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := a.Dial(ctx, endpoint.NodeAddr{ID: b.NodeID(), RelayURL: url}, alpn)
	if err != nil {
		t.Fatal(err)
	}
	if c.RemoteID() != b.NodeID() {
		t.Fatalf("reached %v", c.RemoteID())
	}
	for _, msg := range []string{"one", "two", "three"} {
		s, err := c.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		got, err := io.ReadAll(s)
		if err != nil || string(got) != msg {
			t.Fatalf("echo %q: %q %v", msg, got, err)
		}
	}
}
