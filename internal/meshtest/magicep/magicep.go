// Package magicep starts a mesh endpoint on a magicsock (endpoint.Options.Paths), the way
// the mesh binaries run one, for the tests of magicsock and of interop. It is its own package
// because internal/meshtest cannot import mesh/endpoint: endpoint's own tests import
// meshtest.
package magicep

import (
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
