package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// Over the mesh: a user created through one gateway (API 51 → the controller broker's
// credentials) authenticates with SCRAM on a SASL_PLAINTEXT listener of another gateway,
// which looks the credential up over the mesh; a wrong password is refused.
func TestScramCredentialsOverTheMesh(t *testing.T) {
	gw1, gw2 := newEP(t), newEP(t)
	bs := startBrokers(t, 2, gw1, gw2)
	_, plainAddr := serveKafka(t, gateway.Config{Backend: clusterFor(t, gw1, bs), AdvertisedHost: "127.0.0.1"})
	ctx := timeoutCtx(t, 30*time.Second)

	adminCl := kafkaclients.KgoClient(t, plainAddr)
	res, err := kadm.NewClient(adminCl).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "pw"}})
	if err != nil || res.Error() != nil {
		t.Fatalf("alter over the mesh: %v %v", err, res.Error())
	}

	g := serve.StartProtocol(t, gateway.Config{Backend: clusterFor(t, gw2, bs), AdvertisedHost: "127.0.0.1"}, gateway.SASLPlaintext)
	defer g.Stop()
	for pass, wantOK := range map[string]bool{"pw": true, "nope": false} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(g.Addr), kgo.SASL(scram.Auth{User: "alice", Pass: pass}.AsSha256Mechanism()),
			kgo.AllowAutoTopicCreation(), kgo.RequestRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		if wantOK {
			err = cl.ProduceSync(ctx, &kgo.Record{Topic: "sasl-mesh", Value: []byte("v")}).FirstErr()
		} else {
			err = cl.Ping(ctx) // a producer would retry the failed authentication until its deadline
		}
		cl.Close()
		if wantOK && err != nil {
			t.Fatalf("produce with the right password: %v", err)
		}
		if !wantOK && !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("wrong password: %v", err)
		}
	}
}
