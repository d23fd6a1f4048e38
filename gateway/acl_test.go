package gateway_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/internal/scramkey"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// aclBackend is the in-memory data backend with a group coordinator and the broker's durable
// credentials and ACLs.
type aclBackend struct {
	*gatewaytest.MemBackend
	*group.Coordinator
	*broker.Credentials
	*broker.ACLs
}

type aclServer struct {
	addr    string
	aclPath string
}

func addScramUser(t testing.TB, c *broker.Credentials, user, pass string) {
	t.Helper()
	salt := make([]byte, 16)
	rand.Read(salt)
	salted, err := scramkey.Salted(scramkey.SHA256, pass, salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.AlterUserScramCredentials(context.Background(), &brokerop.AlterUserScramCredentialsReq{Upsertions: []brokerop.ScramUpsertion{
		{Name: user, Mechanism: int8(scramkey.SHA256), Iterations: 4096, Salt: salt, SaltedPassword: salted}}})
	if err != nil || resp.Results[0].ErrorCode != 0 {
		t.Fatalf("add user %s: %v %+v", user, err, resp)
	}
}

// startACLServer serves a SASL_PLAINTEXT listener with authorization on, super user admin,
// and users admin, alice and bob (password "<user>-pw").
func startACLServer(t *testing.T) *aclServer {
	t.Helper()
	dir := t.TempDir()
	creds, err := broker.OpenCredentials(&broker.FileCredentialStore{FS: wal.OSFS(), Path: filepath.Join(dir, "scram.credentials")})
	if err != nil {
		t.Fatal(err)
	}
	aclPath := filepath.Join(dir, "acls")
	acls, err := broker.OpenACLs(&broker.FileACLStore{FS: wal.OSFS(), Path: aclPath})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"admin", "alice", "bob"} {
		addScramUser(t, creds, u, u+"-pw")
	}
	coord, err := group.Open(group.Config{Dir: "/groups", FS: waltest.NewCrashFS(),
		Machine: group.MachineConfig{InitialRebalanceDelay: time.Millisecond, MinSessionTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coord.Close() }) // after the gateway's Stop
	g := serve.StartProtocol(t, gateway.Config{Backend: aclBackend{gatewaytest.NewMem(1), coord, creds, acls}, AdvertisedHost: "127.0.0.1",
		Logger: slog.New(slog.DiscardHandler), Authorizer: gateway.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}}}, gateway.SASLPlaintext)
	return &aclServer{addr: g.Addr, aclPath: aclPath}
}

func (s *aclServer) client(t *testing.T, user string, opts ...kgo.Opt) *kgo.Client {
	return kafkaclients.KgoClient(t, s.addr, append([]kgo.Opt{kgo.SASL(scram.Auth{User: user, Pass: user + "-pw"}.AsSha256Mechanism())}, opts...)...)
}

func mustACLs(t *testing.T, adm *kadm.Client, b *kadm.ACLBuilder) {
	t.Helper()
	res, err := adm.CreateACLs(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL %+v: %v", r, r.Err)
		}
	}
}

// TestACLsKgo: alice may write topic a and read group g; bob may only describe topic a;
// admin is a super user. Each is refused elsewhere with Kafka's codes.
func TestACLsKgo(t *testing.T) {
	ctx := context.Background()
	s := startACLServer(t)
	adminCl := s.client(t, "admin")
	admin := kadm.NewClient(adminCl)
	if _, err := admin.CreateTopics(ctx, 1, 1, nil, "a", "b"); err != nil {
		t.Fatal(err)
	}
	mustACLs(t, admin, kadm.NewACLs().Allow("User:alice").Topics("a").Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	mustACLs(t, admin, kadm.NewACLs().Allow("User:alice").Groups("g").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))
	mustACLs(t, admin, kadm.NewACLs().Allow("User:bob").Topics("a").Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))

	alice := s.client(t, "alice")
	bob := s.client(t, "bob", kgo.DisableIdempotentWrite())

	// alice writes a (idempotently: WRITE on a topic stands for IDEMPOTENT_WRITE), not b.
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("alice produce a: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "b", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produce b: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// bob sees a (DESCRIBE) but may not write it: refused by Produce itself.
	if err := bob.ProduceSync(ctx, &kgo.Record{Topic: "a", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob produce a: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// bob has WRITE nowhere: no idempotent producer id.
	ipid := kmsg.NewPtrInitProducerIDRequest()
	ipid.TransactionTimeoutMillis = 60000
	if r, err := ipid.RequestWith(ctx, bob); err != nil || r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("bob InitProducerID: %v %+v", err, r)
	}

	// Metadata: all topics hides what a principal may not describe; a named one says so.
	if got := kafkaclients.MetadataTopics(ctx, t, alice); !slices.Equal(got, []string{"a"}) {
		t.Errorf("alice sees %v, want [a]", got)
	}
	if got := kafkaclients.MetadataTopics(ctx, t, adminCl); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("admin sees %v, want [a b]", got)
	}
	mreq := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("b")
	mreq.Topics = append(mreq.Topics, mt)
	if md, err := mreq.RequestWith(ctx, alice); err != nil || len(md.Topics) != 1 || md.Topics[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice Metadata b: %v %+v", err, md)
	}

	// Fetch (v12, by name): alice has no READ on a.
	aliceV12 := s.client(t, "alice", kgo.MaxVersions(kversion.V3_0_0()))
	if fr, err := fetchReq("a").RequestWith(ctx, aliceV12); err != nil || fr.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice fetch a: %v %+v", err, fr)
	}

	// Groups: alice may join g, not h; FindCoordinator and OffsetCommit say why.
	join := func(cl *kgo.Client, g string) int16 {
		jr := kmsg.NewPtrJoinGroupRequest()
		jr.Group, jr.ProtocolType, jr.SessionTimeoutMillis, jr.RebalanceTimeoutMillis = g, "consumer", 10000, 10000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 0, 0, 0, 0, 0, 0, 0}
		jr.Protocols = append(jr.Protocols, p)
		resp, err := jr.RequestWith(ctx, cl)
		var ke *kerr.Error
		if errors.As(err, &ke) { // kgo's FindCoordinator was refused first
			return ke.Code
		}
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	if code := join(alice, "g"); code == kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("alice join g: GROUP_AUTHORIZATION_FAILED")
	}
	if code := join(alice, "h"); code != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("alice join h: code %d, want GROUP_AUTHORIZATION_FAILED", code)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "h"
	if r, err := fc.RequestWith(ctx, alice); err != nil || r.ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("alice FindCoordinator h: %v %+v", err, r)
	}
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "g", -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "a"
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	if r, err := oc.RequestWith(ctx, alice); err != nil || r.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice OffsetCommit g/a: %v %+v", err, r)
	}

	// DeleteRecords needs DELETE on the topic; quotas and log dirs need the cluster.
	if res, err := kadm.NewClient(alice).DeleteRecords(ctx, kadm.Offsets{"a": {0: {At: 0}}}); err != nil || !errors.Is(res.Error(), kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice DeleteRecords a: %v %v", err, res.Error())
	}
	if _, err := kadm.NewClient(alice).DescribeClientQuotas(ctx, false, nil); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice DescribeClientQuotas: %v", err)
	}
	if _, err := admin.DescribeClientQuotas(ctx, false, nil); errors.Is(err, kerr.ClusterAuthorizationFailed) { // the memory backend keeps no quotas
		t.Fatalf("admin DescribeClientQuotas: %v", err)
	}

	// ACL and credential management need the cluster: alice is refused, admin is not.
	aliceAdm := kadm.NewClient(alice)
	if _, err := aliceAdm.DescribeACLs(ctx, anyEntry(kadm.NewACLs()).AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		res, _ := aliceAdm.DescribeACLs(ctx, anyEntry(kadm.NewACLs()).AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
		if len(res) == 0 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Fatalf("alice DescribeACLs: %v %+v", err, res)
		}
	}
	if res, err := aliceAdm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "mallory", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "x"}}); !errors.Is(err, kerr.ClusterAuthorizationFailed) && (err != nil || !errors.Is(res.Error(), kerr.ClusterAuthorizationFailed)) {
		t.Fatalf("alice AlterUserSCRAMs: %v %v", err, res.Error())
	}
	if res, err := aliceAdm.DescribeUserSCRAMs(ctx); !errors.Is(err, kerr.ClusterAuthorizationFailed) && (err != nil || !errors.Is(res.Error(), kerr.ClusterAuthorizationFailed)) {
		t.Fatalf("alice DescribeUserSCRAMs: %v", err)
	}
	if _, err := admin.DescribeUserSCRAMs(ctx); err != nil {
		t.Fatalf("admin DescribeUserSCRAMs: %v", err)
	}

	// Deleting alice's group ACL refuses her at once (this gateway reloads after DeleteAcls).
	del, err := admin.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Groups("g").Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternMatch))
	if err != nil || len(del) != 1 || len(del[0].Deleted) != 1 || del[0].Deleted[0].Name != "g" {
		t.Fatalf("delete alice's group ACL: %v %+v", err, del)
	}
	if code := join(alice, "g"); code != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("alice join g after delete: code %d, want GROUP_AUTHORIZATION_FAILED", code)
	}

	// The ACLs are durable: a store reopened from the file has the two left.
	reopened, err := broker.OpenACLs(&broker.FileACLStore{FS: wal.OSFS(), Path: s.aclPath})
	if err != nil {
		t.Fatal(err)
	}
	d, err := reopened.DescribeAcls(ctx, &brokerop.DescribeAclsReq{Filter: brokerop.AclFilter{ResourceType: 1, PatternType: 1, Operation: 1, Permission: 1}})
	if err != nil || len(d.Bindings) != 2 {
		t.Fatalf("reopened ACLs: %v %+v", err, d)
	}
}

// TestACLFiltersKadm: DescribeACLs and DeleteACLs with kadm's filters (principal, resource
// type, pattern types LITERAL, PREFIXED, MATCH and ANY), and CreateACLs' validation.
func TestACLFiltersKadm(t *testing.T) {
	ctx := context.Background()
	s := startACLServer(t)
	admCl := s.client(t, "admin")
	adm := kadm.NewClient(admCl)
	mustACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("app-").Operations(kadm.OpRead, kadm.OpWrite).ResourcePatternType(kadm.ACLPatternPrefixed))
	mustACLs(t, adm, kadm.NewACLs().Allow("User:alice").Topics("app-x").Operations(kadm.OpDescribe).ResourcePatternType(kadm.ACLPatternLiteral))
	mustACLs(t, adm, kadm.NewACLs().Deny("User:bob").Topics("*").Operations(kadm.OpAll).ResourcePatternType(kadm.ACLPatternLiteral))
	mustACLs(t, adm, kadm.NewACLs().Allow("User:bob").Groups("g").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral))

	count := func(b *kadm.ACLBuilder) int {
		t.Helper()
		res, err := adm.DescribeACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			n += len(r.Described)
		}
		return n
	}
	cases := []struct {
		name string
		b    *kadm.ACLBuilder
		want int
	}{
		{"any", anyEntry(kadm.NewACLs()).AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny), 5},
		{"alice's", kadm.NewACLs().Allow("User:alice").AllowHosts().AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny), 3},
		{"prefixed topics", anyEntry(kadm.NewACLs()).Topics().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternPrefixed), 2},
		{"literal app-x", anyEntry(kadm.NewACLs()).Topics("app-x").Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternLiteral), 1},
		{"match app-x", anyEntry(kadm.NewACLs()).Topics("app-x").Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternMatch), 4},
		{"groups", anyEntry(kadm.NewACLs()).Groups().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny), 1},
		{"denies", kadm.NewACLs().Deny().DenyHosts().AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny), 1},
		{"write", anyEntry(kadm.NewACLs()).AnyResource().Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternAny), 1},
	}
	for _, c := range cases {
		if got := count(c.b); got != c.want {
			t.Errorf("%s: %d ACLs, want %d", c.name, got, c.want)
		}
	}

	// A CLUSTER not named kafka-cluster, or a principal without a type, is INVALID_REQUEST.
	cr := kmsg.NewPtrCreateACLsRequest()
	for _, c := range []struct {
		typ             kmsg.ACLResourceType
		name, principal string
	}{
		{kmsg.ACLResourceTypeCluster, "other", "User:alice"},
		{kmsg.ACLResourceTypeTopic, "t", "alice"},
		{kmsg.ACLResourceTypeTopic, "t", "User:carol"},
	} {
		x := kmsg.NewCreateACLsRequestCreation()
		x.ResourceType, x.ResourceName, x.ResourcePatternType = c.typ, c.name, kmsg.ACLResourcePatternTypeLiteral
		x.Principal, x.Host, x.Operation, x.PermissionType = c.principal, "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
		cr.Creations = append(cr.Creations, x)
	}
	resp, err := cr.RequestWith(ctx, admCl)
	if err != nil {
		t.Fatal(err)
	}
	if got := []int16{resp.Results[0].ErrorCode, resp.Results[1].ErrorCode, resp.Results[2].ErrorCode}; !slices.Equal(got, []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, 0}) {
		t.Fatalf("CreateACLs codes %v", got)
	}

	// Delete with two filters: each answers what it deleted.
	del, err := adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternPrefixed))
	if err != nil || len(del) != 1 || len(del[0].Deleted) != 2 {
		t.Fatalf("delete alice's prefixed: %v %+v", err, del)
	}
	if got := count(anyEntry(kadm.NewACLs()).AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)); got != 4 {
		t.Fatalf("after delete: %d ACLs, want 4", got)
	}
}

// TestACLsOffByDefault: without Authorizer.Enabled every principal may do everything and
// the ACL APIs answer SECURITY_DISABLED, as Kafka without an authorizer.
func TestACLsOffByDefault(t *testing.T) {
	ts := start(t, gateway.Config{})
	cl := kafkaclients.KgoClient(t, ts.addr)
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopics(context.Background(), 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	res, err := adm.DescribeACLs(context.Background(), anyEntry(kadm.NewACLs()).AnyResource().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if !errors.Is(err, kerr.SecurityDisabled) && (err != nil || len(res) != 1 || !errors.Is(res[0].Err, kerr.SecurityDisabled)) {
		t.Fatalf("DescribeACLs without authorizer: %v %+v", err, res)
	}
}

// anyEntry makes a kadm filter match every principal and host, allowed or denied.
func anyEntry(b *kadm.ACLBuilder) *kadm.ACLBuilder {
	return b.Allow().AllowHosts().Deny().DenyHosts()
}
