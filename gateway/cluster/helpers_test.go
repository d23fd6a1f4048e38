package cluster

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newEP starts a mesh endpoint on loopback with a fresh identity.
func newEP(t *testing.T) *endpoint.Endpoint {
	t.Helper()
	ep, err := endpoint.New(endpoint.Options{SecretKey: key.GenerateSecretKey(), BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// serveKafka runs a gateway with cfg on a loopback port until the test ends, and returns its
// address.
func serveKafka(t *testing.T, cfg gateway.Config) (*gateway.Server, string) {
	t.Helper()
	g := serve.Start(t, cfg, nil)
	return g.Server, g.Addr
}
