package cluster

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// On the metadata quorum, a SCRAM user, an ACL and a client quota created through one gateway
// are cluster metadata: after the broker that took the writes (the quorum leader) is killed, a
// second gateway that never talked to it authenticates the user, authorizes it by the ACL
// (and refuses what the ACL does not allow) and reads the quota, through the other brokers.
func TestSecurityOnTheQuorumSurvivesTheWriter(t *testing.T) {
	gw1, gw2 := newEP(t), newEP(t)
	qc := controllertest.StartWith(t, controllertest.Options{N: 3, Trust: []key.PublicKey{gw1.NodeID(), gw2.NodeID()}, ClusterSecurity: true})
	li, err := qc.Leader()
	if err != nil {
		t.Fatal(err)
	}
	authz := gateway.AuthorizerConfig{Enabled: true, SuperUsers: []string{gateway.AnonymousPrincipal}}
	_, addr1 := serveKafka(t, gateway.Config{Backend: clusterForAddrs(t, gw1, qc.Brokers[li].EP), AdvertisedHost: "127.0.0.1", Authorizer: authz})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl1, err := kgo.NewClient(kgo.SeedBrokers(addr1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl1.Close()
	adm := kadm.NewClient(cl1)
	if _, err := adm.CreateTopics(ctx, 3, 1, nil, "sec", "other"); err != nil {
		t.Fatal(err)
	}
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "pw"}})
	if err != nil || res.Error() != nil {
		t.Fatalf("create user: %v %v", err, res.Error())
	}
	acls, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("sec").Operations(kadm.OpWrite, kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil || len(acls) != 2 || acls[0].Err != nil || acls[1].Err != nil {
		t.Fatalf("create ACLs: %v %+v", err, acls)
	}
	qr, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: kmsg.StringPtr("alice")}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1 << 20}}}})
	if err != nil || len(qr) != 1 || qr[0].Err != nil {
		t.Fatalf("alter quota: %v %+v", err, qr)
	}
	cl1.Close()

	// The broker that took every write goes.
	qc.Brokers[li].Stop()
	var rest []*endpoint.Endpoint
	for i, b := range qc.Brokers {
		if i != li {
			rest = append(rest, b.EP)
		}
	}
	srv, err := gateway.NewServer(gateway.Config{Backend: clusterForAddrs(t, gw2, rest...), AdvertisedHost: "127.0.0.1",
		Authorizer: gateway.AuthorizerConfig{Enabled: true, SuperUsers: []string{gateway.AnonymousPrincipal}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeListener(ln, gateway.SASLPlaintext, 0) }()
	defer func() {
		srv.Close()
		if err := <-done; !errors.Is(err, gateway.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	// Partitions have one copy (no replication yet): produce to those on live brokers.
	c2 := clusterForAddrs(t, gw2, rest...)
	live := map[string]int32{}
	dead := qc.Brokers[li].EP.NodeID().String()
	for _, topic := range []string{"sec", "other"} {
		pl, err := c2.Placement(ctx, &brokerop.PlacementReq{Topics: []string{topic}})
		if err != nil {
			t.Fatal(err)
		}
		live[topic] = -1
		for p, o := range pl.Topics[0].Owners {
			if o != dead {
				live[topic] = int32(p)
			}
		}
	}
	alice, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.SASL(scram.Auth{User: "alice", Pass: "pw"}.AsSha512Mechanism()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequestRetries(20), kgo.RetryTimeout(45*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "sec", Partition: live["sec"], Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("alice produces to sec through the other brokers: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "other", Partition: live["other"], Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produces to other (no ACL): %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	bad, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.SASL(scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism()), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	// The quota, read through a broker that did not take the write.
	qs, err := c2.DescribeClientQuotas(ctx, &brokerop.DescribeClientQuotasReq{})
	if err != nil || len(qs.Entries) != 1 || len(qs.Entries[0].Values) != 1 || qs.Entries[0].Values[0].Value != "1.048576e+06" {
		t.Fatalf("quotas after the writer died: %+v %v", qs, err)
	}
}
