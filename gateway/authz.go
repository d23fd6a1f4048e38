package gateway

// Authorization (issue 17 item 3): Kafka's ACLs, decided on the gateway.
//
//   - Off unless Config.Authorizer.Enabled (cmd/gateway -authorizer): then every request is
//     allowed, as before ACLs existed. On, each API asks for Kafka's operations on Kafka's
//     resources (package acl's operation map, acl.Need values such as acl.ProduceTopic, which
//     the brokers ask of the same requests' KafkaOps: brokerop.AuthorizeOp) and answers
//     Kafka's codes:
//     TOPIC_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED,
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
//   - The decision is package broker/acl's (pure): super users (Config.Authorizer.SuperUsers)
//     may do everything; deny wins; DESCRIBE is implied by READ, WRITE, DELETE and ALTER;
//     AllowIfNoACL is allow.everyone.if.no.acl.found (default false: with no ACLs only super
//     users may do anything).
//   - The bindings live with the brokers (Backend.DescribeAcls): on the metadata quorum when
//     the brokers run as a cluster (any broker answers, from the quorum leader), else in the
//     single broker's file. The gateway caches them and reloads them when they are older than
//     Config.Authorizer.Refresh (default 10 s, read on Config.Authorizer.Clock) and after each
//     CreateAcls and DeleteAcls it serves. A reload that fails keeps the previous bindings; with
//     none loaded yet the gateway allows only super users and retries after 1 s.
//   - The host is the client's IP address as the gateway sees it.

import (
	"context"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
)

// AuthorizerConfig turns ACL authorization on.
type AuthorizerConfig struct {
	// Enabled turns authorization on (Kafka's authorizer.class.name).
	Enabled bool
	// SuperUsers are principals allowed everything ("User:admin"; Kafka's super.users).
	SuperUsers []string
	// AllowIfNoACL allows requests on resources no ACL applies to
	// (allow.everyone.if.no.acl.found).
	AllowIfNoACL bool
	// Refresh is how old the cached ACLs may get before they are reloaded (default 10 s).
	Refresh time.Duration
	// Clock reads the time for Refresh (nil: the wall clock).
	Clock clock.Clock
}

// aclSource is where the gateway loads ACLs from (the Backend).
type aclSource interface {
	DescribeAcls(ctx context.Context, req *brokerop.DescribeAclsReq) (*brokerop.DescribeAclsResp, error)
}

type authorizer struct {
	cfg     AuthorizerConfig
	backend aclSource
	clock   clock.Clock

	mu      sync.Mutex
	cur     *acl.Authorizer // guarded by mu; nil: never loaded
	validTo time.Time       // guarded by mu; reload after
}

func newAuthorizer(cfg AuthorizerConfig, be aclSource) *authorizer {
	if !cfg.Enabled {
		return nil
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 10 * time.Second
	}
	return &authorizer{cfg: cfg, backend: be, clock: clock.Or(cfg.Clock)}
}

var anyACLFilter = brokerop.AclFilter{ResourceType: int8(acl.ResourceAny), PatternType: int8(acl.PatternAny),
	Operation: int8(acl.OpAny), Permission: int8(acl.PermissionAny)}

// current returns the authorizer, reloading the bindings when they are stale.
func (a *authorizer) current(ctx context.Context) *acl.Authorizer {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.clock.Now()
	if a.cur != nil && now.Before(a.validTo) {
		return a.cur
	}
	// The gateway's own lookup, not the client's: no principal (the broker checks the
	// gateway's role only).
	resp, err := a.backend.DescribeAcls(brokerop.WithoutActing(ctx), &brokerop.DescribeAclsReq{Filter: anyACLFilter})
	if err == nil && resp.ErrorCode == 0 {
		bs := make([]acl.Binding, len(resp.Bindings))
		for i, b := range resp.Bindings {
			bs[i] = bindingFromOp(b)
		}
		a.cur = acl.New(acl.Config{SuperUsers: a.cfg.SuperUsers, AllowIfNoACL: a.cfg.AllowIfNoACL}, bs)
		a.validTo = now.Add(a.cfg.Refresh)
		return a.cur
	}
	// Failed: keep what was loaded (with nothing loaded yet, only super users pass, never
	// AllowIfNoACL) and retry after 1 s.
	if a.cur == nil {
		a.cur = acl.New(acl.Config{SuperUsers: a.cfg.SuperUsers}, nil)
	}
	a.validTo = now.Add(time.Second)
	return a.cur
}

// invalidate makes the next decision reload the bindings.
func (a *authorizer) invalidate() {
	a.mu.Lock()
	a.validTo = time.Time{}
	a.mu.Unlock()
}

func bindingFromOp(b brokerop.AclBinding) acl.Binding {
	return acl.Binding{ResourceType: acl.ResourceType(b.ResourceType), ResourceName: b.ResourceName,
		PatternType: acl.PatternType(b.PatternType), Principal: b.Principal, Host: b.Host,
		Operation: acl.Operation(b.Operation), Permission: acl.Permission(b.Permission)}
}

// acting is ctx carrying the request's principal and host (brokerop.WithActing): every
// backend call made with it names them in its header, authorization on or off here, so the
// brokers authorize the client themselves (broker/brokermesh guard.go). An unauthenticated
// client is User:ANONYMOUS, as Kafka names it.
func (r *Request) acting(ctx context.Context) context.Context {
	p := r.Principal()
	if p == "" {
		p = AnonymousPrincipal
	}
	return brokerop.WithActing(ctx, brokerop.Acting{Principal: p, Host: r.host()})
}

// host is the client's address as ACLs name hosts.
func (r *Request) host() string {
	if r.conn == nil {
		return ""
	}
	return r.conn.host
}

// authz returns the authorizer for this request, nil when authorization is off.
func (r *Request) authz(ctx context.Context) *acl.Authorizer {
	if r.Server == nil || r.Server.authz == nil {
		return nil
	}
	return r.Server.authz.current(ctx)
}

// Authorized reports whether the request's principal may have need (package acl's operation
// map, which the brokers ask too) on the resource named name (always true when
// authorization is off).
func (r *Request) Authorized(ctx context.Context, need acl.Need, name string) bool {
	a := r.authz(ctx)
	return a == nil || a.Allows(r.Principal(), r.host(), need.On(name))
}

// authorizedFn returns a decision function for many resources of one request (one cache look
// up); it always allows when authorization is off.
func (r *Request) authorizedFn(ctx context.Context) func(need acl.Need, name string) bool {
	a := r.authz(ctx)
	if a == nil {
		return func(acl.Need, string) bool { return true }
	}
	p, h := r.Principal(), r.host()
	return func(need acl.Need, name string) bool { return a.Allows(p, h, need.On(name)) }
}

// authorizedOps is Kafka's authorized-operations bitfield of the resource for this request's
// principal (every supported operation when authorization is off, as Kafka answers without
// an authorizer).
func (r *Request) authorizedOps(ctx context.Context, typ acl.ResourceType, name string) int32 {
	a := r.authz(ctx)
	if a == nil {
		return acl.OperationsBitfield(typ, nil)
	}
	p, h, res := r.Principal(), r.host(), acl.Resource{Type: typ, Name: name}
	return acl.OperationsBitfield(typ, func(op acl.Operation) bool { return a.Authorize(p, h, op, res) })
}

// clusterOps is the cluster's authorized-operations bitfield as Kafka answers it in Metadata
// and DescribeCluster: 0 without DESCRIBE on the cluster, else the principal's operations.
func (r *Request) clusterOps(ctx context.Context) int32 {
	if !r.authorizedCluster(ctx, acl.DescribeCluster) {
		return 0
	}
	return r.authorizedOps(ctx, acl.ResourceCluster, acl.ClusterName)
}

// authorizedCluster reports whether the principal may have need (a cluster one) on the
// cluster.
func (r *Request) authorizedCluster(ctx context.Context, need acl.Need) bool {
	return r.Authorized(ctx, need, acl.ClusterName)
}

// authorizedAny is Kafka's authorizeByResourceType: need on at least one resource of its type.
func (r *Request) authorizedAny(ctx context.Context, need acl.Need) bool {
	a := r.authz(ctx)
	return a == nil || a.Allows(r.Principal(), r.host(), need.OnAny())
}

// topicsDenied reports, for n topics named by name(i), which the principal may not have need
// (a topic one) on.
func topicsDenied(ctx context.Context, r *Request, need acl.Need, n int, name func(int) string) []bool {
	authorized := r.authorizedFn(ctx)
	denied := make([]bool, n)
	for i := range n {
		denied[i] = !authorized(need, name(i))
	}
	return denied
}
