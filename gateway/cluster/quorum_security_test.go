package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller"
	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/internal/syncbuf"
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
	li := leaderIndex(t, qc)
	authz := gateway.AuthorizerConfig{Enabled: true, SuperUsers: []string{gateway.AnonymousPrincipal}}
	_, addr1 := serveKafka(t, gateway.Config{Backend: clusterForAddrs(t, gw1, qc.Brokers[li].EP), AdvertisedHost: "127.0.0.1", Authorizer: authz})
	ctx := timeoutCtx(t, 60*time.Second)
	cl1 := kafkaclients.KgoClient(t, addr1)
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
	g := serve.StartProtocol(t, gateway.Config{Backend: clusterForAddrs(t, gw2, rest...), AdvertisedHost: "127.0.0.1",
		Authorizer: gateway.AuthorizerConfig{Enabled: true, SuperUsers: []string{gateway.AnonymousPrincipal}}}, gateway.SASLPlaintext)
	defer g.Stop()
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
	alice := kafkaclients.KgoClient(t, g.Addr, kgo.SASL(scram.Auth{User: "alice", Pass: "pw"}.AsSha512Mechanism()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequestRetries(20), kgo.RetryTimeout(45*time.Second))
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "sec", Partition: live["sec"], Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("alice produces to sec through the other brokers: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "other", Partition: live["other"], Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produces to other (no ACL): %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	bad := kafkaclients.KgoClient(t, g.Addr, kgo.SASL(scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism()), kgo.RequestRetries(0))
	if err := bad.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v", err)
	}
	// The quota, read through a broker that did not take the write.
	qs, err := c2.DescribeClientQuotas(ctx, &brokerop.DescribeClientQuotasReq{})
	if err != nil || len(qs.Entries) != 1 || len(qs.Entries[0].Values) != 1 || qs.Entries[0].Values[0].Value != "1.048576e+06" {
		t.Fatalf("quotas after the writer died: %+v %v", qs, err)
	}
}

// A gateway no broker trusts gets, through Kafka, CLUSTER_AUTHORIZATION_FAILED (not a
// retriable leader error), and one log line naming the fix; once an operator gives it the
// gateway role on the quorum (allow -role gateway), every broker serves it.
func TestUntrustedGatewayThenGatewayRole(t *testing.T) {
	gw := newEP(t)
	qc := controllertest.StartWith(t, controllertest.Options{N: 2, ClusterSecurity: true})
	var logs syncbuf.Buffer
	notice := &brokermesh.RefusalNotice{Log: slog.New(slog.NewTextHandler(&logs, nil)), Self: gw.NodeID()}
	c, err := New([]endpoint.NodeAddr{qc.Brokers[0].EP.Addr(), qc.Brokers[1].EP.Addr()}, func(a endpoint.NodeAddr) *brokermesh.Caller {
		cl := brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, a), a.ID.String())
		cl.NoticeRefusals(notice)
		return cl
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serveKafka(t, gateway.Config{Backend: c, AdvertisedHost: "127.0.0.1"})
	ctx := timeoutCtx(t, 60*time.Second)
	cl := kafkaclients.KgoClient(t, addr, kgo.RequestRetries(0))
	_, err = kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, "t")
	var ke *kerr.Error
	if err == nil || !errors.As(err, &ke) || ke != kerr.ClusterAuthorizationFailed {
		// CreateTopics answers per topic: look at the topic's error too.
		r, rerr := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, nil, "t")
		if rerr != nil || r["t"].Err != kerr.ClusterAuthorizationFailed {
			t.Fatalf("untrusted gateway: create topics %v / %+v %v, want CLUSTER_AUTHORIZATION_FAILED", err, r, rerr)
		}
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	mreq.Topics = append(mreq.Topics, mt)
	md, err := mreq.RequestWith(ctx, cl)
	if err != nil || len(md.Topics) != 1 || md.Topics[0].ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("untrusted gateway: metadata %+v %v, want CLUSTER_AUTHORIZATION_FAILED for the topic", md, err)
	}
	if n := strings.Count(logs.String(), "refused this node (not trusted); add "+gw.NodeID().String()); n < 1 || n > 2 {
		t.Fatalf("%d refusal notices (want one per broker asked):\n%s", n, logs.String())
	}
	// The operator gives it the gateway role (the loopback admin API's call: no mesh peer).
	actx, acancel := controllertest.Context()
	resp, err := qc.Brokers[1].Controller.QuorumAdmin(actx, &brokerop.QuorumAdminReq{Action: controller.ActionAllowGateway, MeshID: gw.NodeID().String()})
	acancel()
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("allow -role gateway: %+v %v", resp, err)
	}
	if err := controllertest.Eventually(func() error {
		for i, b := range qc.Brokers {
			if !b.Controller.Trusts(gw.NodeID()) {
				return fmt.Errorf("broker %d does not trust the gateway yet", i)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r, err := kadm.NewClient(cl).CreateTopics(ctx, 2, 1, nil, "t")
	if err != nil || r["t"].Err != nil {
		t.Fatalf("create topics after allow -role gateway: %+v %v", r, err)
	}
	// A gateway may not administer the cluster (no admin role): its QuorumAdmin is refused.
	qa, err := c.QuorumAdmin(ctx, &brokerop.QuorumAdminReq{Action: brokerop.QuorumAllow, MeshID: key.GenerateSecretKey().Public().String()})
	if err != nil || qa.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("a gateway's QuorumAdmin: %+v %v, want CLUSTER_AUTHORIZATION_FAILED", qa, err)
	}
}
