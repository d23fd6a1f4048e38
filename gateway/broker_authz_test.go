package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// The second plane of issue #17 item 4: a gateway whose own authorization is OFF still names
// the principal it authenticated on every call, and the broker (its kafkaop server guarded by
// the ACLs it holds) refuses what the ACLs do not allow, with the Kafka error the client then
// sees through the gateway. After an ACL grants it, the same client is served, with no
// restart of either side. An unauthenticated client is User:ANONYMOUS to the broker.
func TestBrokerAuthorizesWhenGatewayDoesNot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	sec, err := broker.OpenFileSecurity(wal.OSFS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	creds, acls := sec.Credentials, sec.ACLs
	for _, u := range []string{"admin", "bob"} {
		addScramUser(t, creds, u, u+"-pw")
	}
	coord, err := group.Open(group.Config{Dir: "/groups", FS: waltest.NewCrashFS(),
		Machine: group.MachineConfig{InitialRebalanceDelay: time.Millisecond, MinSessionTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coord.Close() })
	// The broker: its service behind a kafkaop server that checks principals against its ACLs.
	srv := brokermesh.NewServer(nil, aclBackend{gatewaytest.NewMem(1), coord, creds, acls})
	srv.SetGuard(&brokermesh.Guard{
		MayAct:     func(peer string) bool { return peer == "gateway" },
		Authorizer: acl.NewDecisions(acl.Config{SuperUsers: []string{"User:admin"}}, controller.SnapshotACLs(acls)).Current,
	})
	local := brokermesh.NewLocal(srv, "gateway")
	t.Cleanup(local.Close)
	be := brokermesh.NewCaller(local, "broker")
	// Two gateways in front of it, both with authorization off: SASL and PLAINTEXT.
	cfg := gateway.Config{Backend: be, AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}
	sasl := serve.StartProtocol(t, cfg, gateway.SASLPlaintext)
	plain := serve.StartProtocol(t, cfg, gateway.Plaintext)
	client := func(user string) *kgo.Client {
		opts := []kgo.Opt{kgo.DisableIdempotentWrite(), kgo.RecordRetries(1), kgo.RequestRetries(1)}
		if user == "" {
			return kafkaclients.KgoClient(t, plain.Addr, opts...)
		}
		return kafkaclients.KgoClient(t, sasl.Addr, append(opts, kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha256Mechanism()))...)
	}
	admin := client("admin")
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatalf("super user creates the topic: %v", err)
	}
	if _, err := kadm.NewClient(client("bob")).CreateTopic(ctx, 1, 1, nil, "bobs"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob creates a topic: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	if err := admin.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("by admin")}).FirstErr(); err != nil {
		t.Fatalf("super user produce: %v", err)
	}
	for _, who := range []struct{ user, principal string }{{"bob", "User:bob"}, {"", gateway.AnonymousPrincipal}} {
		t.Run(who.principal, func(t *testing.T) {
			err := client(who.user).ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr()
			if !errors.Is(err, kerr.TopicAuthorizationFailed) {
				t.Fatalf("produce without an ACL: %v, want TOPIC_AUTHORIZATION_FAILED", err)
			}
			grant := []brokerop.AclBinding{
				{ResourceType: int8(acl.ResourceTopic), ResourceName: "orders", PatternType: int8(acl.PatternLiteral),
					Principal: who.principal, Host: "*", Operation: int8(acl.OpWrite), Permission: int8(acl.PermissionAllow)}}
			if r, err := acls.CreateAcls(ctx, &brokerop.CreateAclsReq{Creations: grant}); err != nil || r.Results[0].ErrorCode != 0 {
				t.Fatalf("grant: %+v %v", r, err)
			}
			if err := client(who.user).ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatalf("produce with WRITE: %v", err)
			}
			// WRITE does not give READ: the fetch is refused by the broker too.
			fc := client(who.user)
			fc.AddConsumeTopics("orders")
			fetches := fc.PollRecords(ctx, 1)
			var ferr error
			fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
			if !errors.Is(ferr, kerr.TopicAuthorizationFailed) {
				t.Fatalf("fetch with WRITE only: %v", ferr)
			}
		})
	}
}
