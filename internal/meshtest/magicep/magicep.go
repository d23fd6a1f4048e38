// Package magicep starts a mesh endpoint on a magicsock (endpoint.Options.Paths), the way
// the mesh binaries run one, for the tests of magicsock and of interop. It is its own package
// because internal/meshtest cannot import mesh/endpoint: endpoint's own tests import
// meshtest.
package magicep

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
)

// New runs an endpoint with a fresh key on a magicsock bound to 127.0.0.1 with homeRelay as
// its home relay, and closes it when t ends (Close is idempotent: a test may close it earlier).
func New(t testing.TB, homeRelay string) *endpoint.Endpoint {
	t.Helper()
	sk := key.GenerateSecretKey()
	ms, err := magicsock.New(magicsock.Options{SecretKey: sk, BindAddr: "127.0.0.1:0", HomeRelay: homeRelay})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := endpoint.New(endpoint.Options{SecretKey: sk, Paths: ms})
	if err != nil {
		_ = ms.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	return ep
}

// ServeEcho answers every stream of every connection on alpn with the stream's own bytes,
// each stream in its own goroutine. When t ends it closes ep and waits for those goroutines.
func ServeEcho(t testing.TB, ep *endpoint.Endpoint, alpn string) {
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ep.Close() // ends the streams
		wg.Wait()
	})
	ep.Handle(alpn, func(ctx context.Context, c *endpoint.Conn) {
		defer c.Close()
		for {
			s, err := c.AcceptStream(ctx)
			if err != nil {
				return
			}
			wg.Go(func() { _, _ = io.Copy(s, s); _ = s.Close() })
		}
	})
}
