package brokermesh

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// count is the number of partitions produced (a read the race detector can order: the
// answer came over a real socket).
func (f *fakeBroker) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.produced)
}

// metaBroker is a fakeBroker that also answers Metadata with a fixed topic list.
type metaBroker struct {
	*fakeBroker
	topics []string
}

func (m *metaBroker) Metadata(context.Context, *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	resp := &brokerop.MetadataResp{}
	for _, t := range m.topics {
		resp.Topics = append(resp.Topics, brokerop.TopicInfo{Name: t})
	}
	return resp, nil
}

// guardFixture is a Guard whose MayAct and ACLs a test changes.
type guardFixture struct {
	mayAct atomic.Bool
	dec    atomic.Pointer[acl.Cached]
}

func (f *guardFixture) guard() *Guard {
	return &Guard{MayAct: func(peer string) bool { return f.mayAct.Load() }, Authorizer: f.dec.Load}
}

func (f *guardFixture) setACLs(bs ...acl.Binding) {
	f.dec.Store(acl.NewCached(acl.New(acl.Config{SuperUsers: []string{"User:admin"}}, bs), 0))
}

func allowTopic(principal, topic string, op acl.Operation) acl.Binding {
	return acl.Binding{ResourceType: acl.ResourceTopic, ResourceName: topic, PatternType: acl.PatternLiteral,
		Principal: principal, Host: "*", Operation: op, Permission: acl.PermissionAllow}
}

func as(principal string) context.Context {
	return brokerop.WithActing(context.Background(), brokerop.Acting{Principal: principal, Host: "10.0.0.7"})
}

func produceTo(topic string) *brokerop.ProduceReq {
	return &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: topic, Records: []byte{1}}}}
}

func refusedCode(err error) int16 {
	var r *brokerop.RefusedError
	if errors.As(err, &r) {
		return r.Code
	}
	return 0
}

// callers returns the same guarded service behind a mesh connection (ServeConn: the produce
// fast path) and behind a Local (its own produce path).
func callers(t *testing.T, svc brokerop.Service, g *Guard) map[string]*Caller {
	mesh, _ := setupGuarded(t, svc, g)
	srv := NewServer(nil, svc)
	srv.SetGuard(g)
	l := NewLocal(srv, "peer")
	t.Cleanup(l.Close)
	return map[string]*Caller{"mesh": mesh, "local": NewCaller(l, "self")}
}

// A principal acting through a gateway is authorized by the broker itself: User:bob with no
// ACL is refused with TOPIC_AUTHORIZATION_FAILED on produce and fetch, and is served once an
// ACL grants him; a call without a principal (the node's own) is not checked.
func TestGuardAuthorizesThePrincipal(t *testing.T) {
	fb := &fakeBroker{fetchDone: make(chan error, 1)}
	f := &guardFixture{}
	f.mayAct.Store(true)
	f.setACLs()
	for name, c := range callers(t, brokerop.Parts{Data: fb}, f.guard()) {
		t.Run(name, func(t *testing.T) {
			f.setACLs()
			_, err := c.Produce(as("User:bob"), produceTo("orders"))
			if code := refusedCode(err); code != 29 {
				t.Fatalf("produce without ACL: %v (code %d), want TOPIC_AUTHORIZATION_FAILED", err, code)
			}
			_, err = c.Fetch(as("User:bob"), &brokerop.FetchReq{Partitions: []brokerop.FetchPartition{{Topic: "orders"}}})
			if code := refusedCode(err); code != 29 {
				t.Fatalf("fetch without ACL: %v (code %d)", err, code)
			}
			before := fb.count()
			f.setACLs(allowTopic("User:bob", "orders", acl.OpWrite))
			if resp, err := c.Produce(as("User:bob"), produceTo("orders")); err != nil || resp.Partitions[0].ErrorCode != 0 {
				t.Fatalf("produce with WRITE: %+v %v", resp, err)
			}
			if n := fb.count(); n != before+1 {
				t.Fatalf("the allowed produce was not appended (%d → %d)", before, n)
			}
			// WRITE is not READ; another principal is not bob; a super user needs no ACL.
			if _, err := c.Fetch(as("User:bob"), &brokerop.FetchReq{Partitions: []brokerop.FetchPartition{{Topic: "orders"}}}); refusedCode(err) != 29 {
				t.Fatalf("fetch with WRITE only: %v", err)
			}
			if _, err := c.Produce(as("User:eve"), produceTo("orders")); refusedCode(err) != 29 {
				t.Fatalf("eve produced on bob's ACL: %v", err)
			}
			if _, err := c.Produce(as("User:admin"), produceTo("orders")); err != nil {
				t.Fatalf("super user refused: %v", err)
			}
			// The node's own call (no principal) is checked by trust only.
			if _, err := c.Produce(context.Background(), produceTo("other")); err != nil {
				t.Fatalf("call without a principal: %v", err)
			}
			// The ACLs are revoked: refused again, with no restart.
			f.setACLs()
			if _, err := c.Produce(as("User:bob"), produceTo("orders")); refusedCode(err) != 29 {
				t.Fatalf("produce after the ACL went: %v", err)
			}
		})
	}
}

// A node that may not act for principals (no gateway role) naming one is refused with
// CLUSTER_AUTHORIZATION_FAILED, authorization on or off; without naming one it is served.
func TestGuardRefusesPrincipalFromNonGateway(t *testing.T) {
	fb := &fakeBroker{fetchDone: make(chan error, 1)}
	f := &guardFixture{} // mayAct false
	for name, c := range callers(t, brokerop.Parts{Data: fb}, f.guard()) {
		t.Run(name, func(t *testing.T) {
			for _, acls := range []bool{false, true} {
				if acls {
					f.setACLs(allowTopic("User:bob", "orders", acl.OpWrite))
				}
				if _, err := c.Produce(as("User:bob"), produceTo("orders")); refusedCode(err) != 31 {
					t.Fatalf("acls %v: principal from a non-gateway: %v", acls, err)
				}
				if _, err := c.Fetch(as("User:bob"), &brokerop.FetchReq{Partitions: []brokerop.FetchPartition{{Topic: "orders"}}}); refusedCode(err) != 31 {
					t.Fatalf("acls %v: fetch: %v", acls, err)
				}
			}
			if _, err := c.Produce(context.Background(), produceTo("orders")); err != nil {
				t.Fatalf("without a principal: %v", err)
			}
		})
	}
}

// Metadata for all topics lists only those the principal may describe (Kafka hides the
// others); named topics it may not describe are refused.
func TestGuardFiltersMetadata(t *testing.T) {
	svc := &metaBroker{fakeBroker: &fakeBroker{}, topics: []string{"a", "b", "c"}}
	f := &guardFixture{}
	f.mayAct.Store(true)
	f.setACLs(allowTopic("User:bob", "b", acl.OpDescribe), allowTopic("User:bob", "c", acl.OpRead))
	c, _ := setupGuarded(t, brokerop.Parts{Data: svc.fakeBroker, Admin: svc}, f.guard())
	resp, err := c.Metadata(as("User:bob"), &brokerop.MetadataReq{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tp := range resp.Topics {
		got = append(got, tp.Name)
	}
	if len(got) != 2 || got[0] != "b" || got[1] != "c" { // READ implies DESCRIBE
		t.Fatalf("bob sees %v, want [b c]", got)
	}
	if _, err := c.Metadata(as("User:bob"), &brokerop.MetadataReq{Topics: []string{"a"}}); refusedCode(err) != 29 {
		t.Fatalf("named topic without DESCRIBE: %v", err)
	}
	if resp, err := c.Metadata(context.Background(), &brokerop.MetadataReq{}); err != nil || len(resp.Topics) != 3 {
		t.Fatalf("node's own metadata: %+v %v", resp, err)
	}
}

// BenchmarkGuardedProduce: one 8-partition produce (1 KiB per partition) over loopback QUIC,
// served without a guard, by a guard with authorization off (the role check only), and by a
// guard authorizing User:bob against ACLs (cached decisions): the broker side's cost of the
// second plane.
func BenchmarkGuardedProduce(b *testing.B) {
	req := &brokerop.ProduceReq{Acks: -1}
	for i := range 8 {
		req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: "orders", Partition: int32(i), Records: make([]byte, 1024)})
	}
	acls := acl.NewCached(acl.New(acl.Config{}, []acl.Binding{allowTopic("User:bob", "orders", acl.OpWrite),
		allowTopic("User:alice", "other", acl.OpRead)}), 0)
	for _, bc := range []struct {
		name  string
		guard *Guard
		ctx   context.Context
	}{
		{"no-guard", nil, context.Background()},
		{"role-only", &Guard{MayAct: func(string) bool { return true }}, as("User:bob")},
		{"acl", &Guard{MayAct: func(string) bool { return true }, Authorizer: func() *acl.Cached { return acls }}, as("User:bob")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, _ := setupGuarded(b, brokerop.Parts{Data: &nullProduce{}}, bc.guard)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Produce(bc.ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nullProduce answers every produce at once, keeping nothing.
type nullProduce struct{ brokerop.Unimplemented }

func (nullProduce) Produce(_ context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	resp := &brokerop.ProduceResp{Partitions: make([]brokerop.ProducePartitionResp, len(req.Partitions))}
	for i, p := range req.Partitions {
		resp.Partitions[i] = brokerop.ProducePartitionResp{Topic: p.Topic, Partition: p.Partition}
	}
	return resp, nil
}

func (n *nullProduce) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	return brokerop.ProduceNow(ctx, n.Produce, req)
}

func (n *nullProduce) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	return brokerop.FetchUnpooled(ctx, n.Fetch, req)
}
