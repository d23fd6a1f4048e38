package gateway

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
)

// aclsOnly serves DescribeAcls from a settable list and counts the calls.
type aclsOnly struct {
	brokerop.Unimplemented
	mu       sync.Mutex
	bindings []brokerop.AclBinding
	fail     bool
	calls    int
}

func (b *aclsOnly) DescribeAcls(context.Context, *brokerop.DescribeAclsReq) (*brokerop.DescribeAclsResp, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if b.fail {
		return nil, errors.New("controller unreachable")
	}
	return &brokerop.DescribeAclsResp{Bindings: b.bindings}, nil
}

func (b *aclsOnly) set(bs []brokerop.AclBinding, fail bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bindings, b.fail = bs, fail
}

// The gateway's ACL cache: loaded once, reloaded only after Refresh on the injected clock or
// after invalidate; a failed reload keeps the previous ACLs; with none ever loaded only super
// users pass.
func TestAuthorizerCache(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Unix(1000, 0))
	be := &aclsOnly{}
	be.set(nil, true)
	a := newAuthorizer(AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}, Refresh: 10 * time.Second, Clock: clk}, be)
	topic := acl.Resource{Type: acl.ResourceTopic, Name: "t"}
	if a.current(ctx).Authorize("User:alice", "h", acl.OpRead, topic) || !a.current(ctx).Authorize("User:admin", "h", acl.OpRead, topic) {
		t.Fatal("with no ACLs loaded only super users may pass")
	}
	read := brokerop.AclBinding{ResourceType: int8(acl.ResourceTopic), ResourceName: "t", PatternType: int8(acl.PatternLiteral),
		Principal: "User:alice", Host: "*", Operation: int8(acl.OpRead), Permission: int8(acl.PermissionAllow)}
	be.set([]brokerop.AclBinding{read}, false)
	if a.current(ctx).Authorize("User:alice", "h", acl.OpRead, topic) {
		t.Fatal("a failed load is retried only after 1 s")
	}
	clk.Advance(time.Second)
	if !a.current(ctx).Authorize("User:alice", "h", acl.OpRead, topic) {
		t.Fatal("ACLs not loaded after the retry interval")
	}
	be.set(nil, false)
	clk.Advance(9 * time.Second)
	if !a.current(ctx).Authorize("User:alice", "h", acl.OpRead, topic) {
		t.Fatal("ACLs reloaded before Refresh")
	}
	clk.Advance(time.Second)
	if a.current(ctx).Authorize("User:alice", "h", acl.OpRead, topic) {
		t.Fatal("ACLs not reloaded after Refresh")
	}
	be.set([]brokerop.AclBinding{read}, false)
	a.invalidate()
	if !a.current(ctx).Authorize("User:alice", "h", acl.OpRead, topic) {
		t.Fatal("ACLs not reloaded after invalidate")
	}
	be.set(nil, true)
	clk.Advance(time.Minute)
	if !a.current(ctx).Authorize("User:alice", "h", acl.OpRead, topic) {
		t.Fatal("a failed reload dropped the previous ACLs")
	}
	calls := be.calls
	for range 5 {
		a.current(ctx)
	}
	if be.calls != calls {
		t.Fatalf("%d reloads within the retry interval", be.calls-calls)
	}
}
