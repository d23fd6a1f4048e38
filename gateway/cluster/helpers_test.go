package cluster

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newEP starts a mesh endpoint on loopback with a fresh identity.
func newEP(t *testing.T) *endpoint.Endpoint { return magicep.Loopback(t) }

// serveKafka runs a gateway with cfg on a loopback port until the test ends, and returns its
// address.
func serveKafka(t *testing.T, cfg gateway.Config) (*gateway.Server, string) {
	t.Helper()
	g := serve.Start(t, cfg, nil)
	return g.Server, g.Addr
}

// startQuorum runs a quorum of n brokers that trusts a gateway endpoint it returns too.
func startQuorum(t *testing.T, n int) (*endpoint.Endpoint, *controllertest.Cluster) {
	t.Helper()
	gw := newEP(t)
	return gw, controllertest.Start(t, n, gw.NodeID())
}

// quorumKafka runs a quorum of n brokers and a gateway in front of all of them (seeded with
// every broker), serving Kafka on a loopback port until the test ends. It returns the
// gateway's address, the quorum and the gateway's endpoint.
func quorumKafka(t *testing.T, n int) (string, *controllertest.Cluster, *endpoint.Endpoint) {
	t.Helper()
	gw, qc := startQuorum(t, n)
	eps := make([]*endpoint.Endpoint, len(qc.Brokers))
	for i, b := range qc.Brokers {
		eps[i] = b.EP
	}
	c := clusterForAddrs(t, gw, eps...)
	_, addr := serveKafka(t, gateway.Config{Backend: c, AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)})
	return addr, qc, gw
}

// createTopic creates topic through adm, again and again (controllertest.Eventually) until it
// is created; TOPIC_ALREADY_EXISTS counts as created (an earlier attempt's answer was lost).
// It returns the last answer other than that one.
func createTopic(t *testing.T, adm *kadm.Client, parts int32, rf int16, configs map[string]*string, topic string) kadm.CreateTopicResponse {
	t.Helper()
	var created kadm.CreateTopicResponse
	if err := controllertest.Eventually(func() error {
		ctx, cancel := controllertest.Context()
		defer cancel()
		r, err := adm.CreateTopic(ctx, parts, rf, configs, topic)
		if errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return nil
		}
		created = r
		return errors.Join(err, r.Err)
	}); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	return created
}

// leaderIndex is the index in qc.Brokers of the quorum's leader.
func leaderIndex(t *testing.T, qc *controllertest.Cluster) int {
	t.Helper()
	li, err := qc.Leader()
	if err != nil {
		t.Fatal(err)
	}
	return li
}

// timeoutCtx is a context that times out after d, cancelled when the test ends.
func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
