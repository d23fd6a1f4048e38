package controller

// Security metadata on the quorum (issue #17): ACL bindings, SCRAM credentials and client
// quotas are cluster metadata (package broker/metadata, commands 30–33), so every broker and
// gateway sees the same ones and they survive the loss of any minority of brokers. With
// Config.ClusterSecurity the controller serves the security ops (brokerop.SecurityService) and
// the client-quota ops from the quorum: like every controller op they run on the leader
// (forwarded there), reads after a ReadBarrier; writes go through package broker's own code
// (broker.ACLs, broker.Credentials, broker.AlterClientQuotasOf: Kafka's validation and error
// codes) over a store whose Store proposes the difference. Without it (a broker started with
// no seeds: go tool task up / up-single) Config.Security serves them from files, as before.
//
// Roles of mesh nodes (metadata.RoleGateway, RoleAdmin) are set by the operator's
// "allow -role" (QuorumAdmin actions allow-gateway, disallow-gateway, allow-admin,
// disallow-admin) and read by Trusts and MayAdminister.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/wal"
)

// MetaCommand proposes a metadata command as it is (the security commands); Replica.Do
// returns the metadata result (e.g. *metadata.ACLsResult), or an error for an entry the state
// machine refused to decode.
type MetaCommand struct{ Cmd metadata.Command }

func (MetaCommand) isCommand() {}

// metaState is a Replica that exposes its metadata state (QuorumReplica does).
type metaState interface {
	MetadataState() *metadata.State
}

// MetadataState is the applied metadata state (this node's copy).
func (q *QuorumReplica) MetadataState() *metadata.State { return q.sm.st }

// proposeMeta proposes c and returns the metadata result.
func (q *QuorumReplica) proposeMeta(ctx context.Context, c metadata.Command) (any, error) {
	res, err := q.node.Propose(ctx, metadata.EncodeCommand(c))
	if err != nil {
		return nil, notLeader(err)
	}
	if err, ok := res.(error); ok {
		return nil, fmt.Errorf("controller: metadata apply: %w", err)
	}
	return res, nil
}

// Quorum admin actions for roles (QuorumAdminReq.Action).
const (
	ActionAllowGateway    = "allow-gateway"
	ActionDisallowGateway = "disallow-gateway"
	ActionAllowAdmin      = "allow-admin"
	ActionDisallowAdmin   = "disallow-admin"
)

// roleAction returns the role bit and whether an action sets it, for a role action.
func roleAction(action string) (uint8, bool, bool) {
	switch action {
	case ActionAllowGateway:
		return metadata.RoleGateway, true, true
	case ActionDisallowGateway:
		return metadata.RoleGateway, false, true
	case ActionAllowAdmin:
		return metadata.RoleAdmin, true, true
	case ActionDisallowAdmin:
		return metadata.RoleAdmin, false, true
	}
	return 0, false, false
}

// RoleActionFor is the QuorumAdmin action of "allow|disallow -role role" ("" or "broker":
// the broker admission actions themselves).
func RoleActionFor(action, role string) (string, error) {
	switch role {
	case "", "broker":
		return action, nil
	case "gateway", "admin":
		if action != brokerop.QuorumAllow && action != brokerop.QuorumDisallow {
			return "", fmt.Errorf("-role %s goes with allow or disallow, not %s", role, action)
		}
		return action + "-" + role, nil
	}
	return "", fmt.Errorf("unknown role %q (broker, gateway or admin)", role)
}

func (c *Controller) state() *metadata.State {
	if ms, ok := c.r.(metaState); ok {
		return ms.MetadataState()
	}
	return nil
}

// roles returns id's role bits in the applied state.
func (c *Controller) roles(id key.PublicKey) uint8 {
	if st := c.state(); st != nil {
		return st.Roles(nodeID(id))
	}
	return 0
}

// HasRole reports whether the applied metadata gives id the role bit.
func (c *Controller) HasRole(id key.PublicKey, role uint8) bool { return c.roles(id)&role != 0 }

// setRoleLocal sets or clears one role bit of id (on the leader).
func (c *Controller) setRoleLocal(ctx context.Context, id key.PublicKey, action string) error {
	bit, set, _ := roleAction(action)
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	if err := c.r.ReadBarrier(ctx); err != nil {
		return err
	}
	cur := c.roles(id)
	next := cur &^ bit
	if set {
		next = cur | bit
	}
	if next == cur {
		return nil
	}
	res, err := c.r.Do(ctx, MetaCommand{&metadata.SetRoles{NodeID: nodeID(id), Roles: next}})
	if err != nil {
		return err
	}
	if r, ok := res.(*metadata.SetRolesResult); ok && r.Code != 0 {
		return &adminError{r.Code, fmt.Sprintf("roles %#x refused for %s", next, id)}
	}
	c.log.Info("node roles changed", "node", id.String(), "action", action)
	return nil
}

// MayAdminister reports whether the caller of an operator op (QuorumAdmin) may run it: a call
// from this process (no mesh peer: the loopback admin API), a fellow broker (a forwarded op),
// or a node with the admin role. A gateway may not change the cluster's membership.
func (c *Controller) MayAdminister(ctx context.Context) bool {
	p := brokermesh.PeerOf(ctx)
	if p == "" || c.forwarded(ctx) {
		return true
	}
	id, err := key.ParsePublicKey(p)
	return err == nil && c.HasRole(id, metadata.RoleAdmin)
}

// --- the security service on the quorum ---

// clusterSecurity serves brokerop.SecurityService from the quorum.
type clusterSecurity struct {
	c  *Controller
	mu sync.Mutex // serialises writes on the leader (read, check, propose)
}

var _ brokerop.SecurityService = (*clusterSecurity)(nil)

// errNoSecurityState is answered by a Replica that does not expose its metadata state.
var errNoSecurityState = errors.New("controller: this replica keeps no security metadata")

func (s *clusterSecurity) st() (*metadata.State, error) {
	if st := s.c.state(); st != nil {
		return st, nil
	}
	return nil, errNoSecurityState
}

// leaderRead runs fn on the leader after a ReadBarrier.
func leaderRead[Req, Resp any](s *clusterSecurity, ctx context.Context, req *Req, fn func(context.Context, *metadata.State, *Req) (*Resp, error),
	remote func(brokerop.Service, context.Context, *Req) (*Resp, error)) (*Resp, error) {
	return route(s.c, ctx, req, func(ctx context.Context, req *Req) (*Resp, error) {
		st, err := s.st()
		if err != nil {
			return nil, err
		}
		if err := s.c.r.ReadBarrier(ctx); err != nil {
			return nil, err
		}
		return fn(ctx, st, req)
	}, remote)
}

// leaderWrite runs fn on the leader after a ReadBarrier, serialised with the other writes.
func leaderWrite[Req, Resp any](s *clusterSecurity, ctx context.Context, req *Req, fn func(context.Context, *metadata.State, *Req) (*Resp, error),
	remote func(brokerop.Service, context.Context, *Req) (*Resp, error)) (*Resp, error) {
	return route(s.c, ctx, req, func(ctx context.Context, req *Req) (*Resp, error) {
		st, err := s.st()
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.c.r.ReadBarrier(ctx); err != nil {
			return nil, err
		}
		return fn(ctx, st, req)
	}, remote)
}

// opened adapts op, a method of what open makes over the leader's state (its ACLs or its
// SCRAM credentials), to leaderRead and leaderWrite.
func opened[T, Req, Resp any](open func(context.Context, *metadata.State) (T, error),
	op func(T, context.Context, *Req) (*Resp, error)) func(context.Context, *metadata.State, *Req) (*Resp, error) {
	return func(ctx context.Context, st *metadata.State, req *Req) (*Resp, error) {
		t, err := open(ctx, st)
		if err != nil {
			return nil, err
		}
		return op(t, ctx, req)
	}
}

func aclToMeta(b acl.Binding) metadata.ACL {
	return metadata.ACL{ResourceType: int8(b.ResourceType), ResourceName: b.ResourceName, PatternType: int8(b.PatternType),
		Principal: b.Principal, Host: b.Host, Operation: int8(b.Operation), Permission: int8(b.Permission)}
}

func aclFromMeta(a metadata.ACL) acl.Binding {
	return acl.Binding{ResourceType: acl.ResourceType(a.ResourceType), ResourceName: a.ResourceName, PatternType: acl.PatternType(a.PatternType),
		Principal: a.Principal, Host: a.Host, Operation: acl.Operation(a.Operation), Permission: acl.Permission(a.Permission)}
}

// aclStore is a broker.ACLStore over the quorum for one op on the leader: Load reads the
// applied state, Store proposes the difference.
type aclStore struct {
	ctx context.Context
	c   *Controller
	st  *metadata.State
}

func (a *aclStore) Load() ([]acl.Binding, error) {
	ms := a.st.ACLs()
	out := make([]acl.Binding, len(ms))
	for i, m := range ms {
		out[i] = aclFromMeta(m)
	}
	return out, nil
}

func (a *aclStore) Store(next []acl.Binding) error {
	old := map[metadata.ACL]bool{}
	for _, m := range a.st.ACLs() {
		old[m] = true
	}
	keep := map[metadata.ACL]bool{}
	var add, del []metadata.ACL
	for _, b := range next {
		m := aclToMeta(b)
		keep[m] = true
		if !old[m] {
			add = append(add, m)
		}
	}
	for m := range old {
		if !keep[m] {
			del = append(del, m)
		}
	}
	slices.SortFunc(del, metadata.CompareACL)
	if len(add) > 0 {
		if _, err := a.c.r.Do(a.ctx, MetaCommand{&metadata.CreateACLs{ACLs: add}}); err != nil {
			return err
		}
	}
	if len(del) > 0 {
		if _, err := a.c.r.Do(a.ctx, MetaCommand{&metadata.DeleteACLs{ACLs: del}}); err != nil {
			return err
		}
	}
	return nil
}

func (s *clusterSecurity) acls(ctx context.Context, st *metadata.State) (*broker.ACLs, error) {
	return broker.OpenACLs(&aclStore{ctx: ctx, c: s.c, st: st})
}

// DescribeAcls answers from the leader's state.
func (s *clusterSecurity) DescribeAcls(ctx context.Context, req *brokerop.DescribeAclsReq) (*brokerop.DescribeAclsResp, error) {
	return leaderRead(s, ctx, req, opened(s.acls, (*broker.ACLs).DescribeAcls), brokerop.Service.DescribeAcls)
}

// CreateAcls stores bindings on the quorum.
func (s *clusterSecurity) CreateAcls(ctx context.Context, req *brokerop.CreateAclsReq) (*brokerop.CreateAclsResp, error) {
	return leaderWrite(s, ctx, req, opened(s.acls, (*broker.ACLs).CreateAcls), brokerop.Service.CreateAcls)
}

// DeleteAcls deletes bindings on the quorum.
func (s *clusterSecurity) DeleteAcls(ctx context.Context, req *brokerop.DeleteAclsReq) (*brokerop.DeleteAclsResp, error) {
	return leaderWrite(s, ctx, req, opened(s.acls, (*broker.ACLs).DeleteAcls), brokerop.Service.DeleteAcls)
}

// credStore is a broker.CredentialStore over the quorum for one op on the leader.
type credStore struct {
	ctx context.Context
	c   *Controller
	st  *metadata.State
}

func credFromMeta(m metadata.ScramCredential) brokerop.ScramCredential {
	return brokerop.ScramCredential{Mechanism: m.Mechanism, Iterations: m.Iterations, Salt: m.Salt, StoredKey: m.StoredKey, ServerKey: m.ServerKey}
}

func credToMeta(b brokerop.ScramCredential) metadata.ScramCredential {
	return metadata.ScramCredential{Mechanism: b.Mechanism, Iterations: b.Iterations, Salt: b.Salt, StoredKey: b.StoredKey, ServerKey: b.ServerKey}
}

func (a *credStore) Load() (map[string][]brokerop.ScramCredential, error) {
	out := map[string][]brokerop.ScramCredential{}
	for _, u := range a.st.ScramUsers() {
		for _, cr := range u.Credentials {
			out[u.Name] = append(out[u.Name], credFromMeta(cr))
		}
	}
	return out, nil
}

func (a *credStore) Store(next map[string][]brokerop.ScramCredential) error {
	old, _ := a.Load()
	cmd := &metadata.AlterScram{}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		for _, cr := range old[name] {
			if !slices.ContainsFunc(next[name], func(n brokerop.ScramCredential) bool { return n.Mechanism == cr.Mechanism }) {
				cmd.Deletions = append(cmd.Deletions, metadata.ScramDeletion{User: name, Mechanism: cr.Mechanism})
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(next)) {
		for _, cr := range next[name] {
			i := slices.IndexFunc(old[name], func(o brokerop.ScramCredential) bool { return o.Mechanism == cr.Mechanism })
			if i >= 0 && sameCred(old[name][i], cr) {
				continue
			}
			cmd.Upsertions = append(cmd.Upsertions, metadata.ScramUpsertion{User: name, Credential: credToMeta(cr)})
		}
	}
	if len(cmd.Deletions)+len(cmd.Upsertions) == 0 {
		return nil
	}
	res, err := a.c.r.Do(a.ctx, MetaCommand{cmd})
	if err != nil {
		return err
	}
	if r, ok := res.(*metadata.CodesResult); ok {
		for _, code := range r.Codes {
			if code != 0 {
				return fmt.Errorf("controller: the metadata state refused a credential change (Kafka error %d)", code)
			}
		}
	}
	return nil
}

func sameCred(a, b brokerop.ScramCredential) bool {
	return a.Mechanism == b.Mechanism && a.Iterations == b.Iterations && string(a.Salt) == string(b.Salt) &&
		string(a.StoredKey) == string(b.StoredKey) && string(a.ServerKey) == string(b.ServerKey)
}

func (s *clusterSecurity) creds(ctx context.Context, st *metadata.State) (*broker.Credentials, error) {
	return broker.OpenCredentials(&credStore{ctx: ctx, c: s.c, st: st})
}

// DescribeUserScramCredentials answers from the leader's state (keys included: the gateway
// authenticates with them).
func (s *clusterSecurity) DescribeUserScramCredentials(ctx context.Context, req *brokerop.DescribeUserScramCredentialsReq) (*brokerop.DescribeUserScramCredentialsResp, error) {
	return leaderRead(s, ctx, req, opened(s.creds, (*broker.Credentials).DescribeUserScramCredentials), brokerop.Service.DescribeUserScramCredentials)
}

// AlterUserScramCredentials changes credentials on the quorum.
func (s *clusterSecurity) AlterUserScramCredentials(ctx context.Context, req *brokerop.AlterUserScramCredentialsReq) (*brokerop.AlterUserScramCredentialsResp, error) {
	return leaderWrite(s, ctx, req, opened(s.creds, (*broker.Credentials).AlterUserScramCredentials), brokerop.Service.AlterUserScramCredentials)
}

// --- client quotas ---

func quotasOf(st *metadata.State) []broker.ClientQuota {
	qs := st.Quotas()
	out := make([]broker.ClientQuota, len(qs))
	for i, q := range qs {
		out[i] = broker.ClientQuota{Values: q.Values}
		for _, p := range q.Entity {
			part := brokerop.QuotaEntityPart{Type: p.Type}
			if !p.Default {
				part.Name = &p.Name
			}
			out[i].Entity = append(out[i].Entity, part)
		}
	}
	return out
}

func quotaEntityToMeta(ps []brokerop.QuotaEntityPart) []metadata.QuotaPart {
	out := make([]metadata.QuotaPart, len(ps))
	for i, p := range ps {
		out[i] = metadata.QuotaPart{Type: p.Type, Default: p.Name == nil}
		if p.Name != nil {
			out[i].Name = *p.Name
		}
	}
	return out
}

// describeQuotas answers DescribeClientQuotas from the quorum (on the leader).
func (s *clusterSecurity) describeQuotas(ctx context.Context, req *brokerop.DescribeClientQuotasReq) (*brokerop.DescribeClientQuotasResp, error) {
	return leaderRead(s, ctx, req, func(_ context.Context, st *metadata.State, req *brokerop.DescribeClientQuotasReq) (*brokerop.DescribeClientQuotasResp, error) {
		return broker.DescribeClientQuotasOf(quotasOf(st), req), nil
	}, brokerop.Service.DescribeClientQuotas)
}

// alterQuotas changes client quotas on the quorum (on the leader).
func (s *clusterSecurity) alterQuotas(ctx context.Context, req *brokerop.AlterClientQuotasReq) (*brokerop.AlterClientQuotasResp, error) {
	return leaderWrite(s, ctx, req, func(ctx context.Context, st *metadata.State, req *brokerop.AlterClientQuotasReq) (*brokerop.AlterClientQuotasResp, error) {
		old := quotasOf(st)
		resp, changes := broker.AlterClientQuotasOf(old, req)
		if len(changes) == 0 {
			return resp, nil
		}
		cmd := &metadata.AlterQuotas{}
		for _, ch := range changes {
			e := metadata.QuotaChange{Entity: quotaEntityToMeta(ch.Entity), Set: ch.Values}
			for _, o := range st.Quotas() {
				if sameEntity(o.Entity, e.Entity) {
					for k := range o.Values {
						if _, kept := ch.Values[k]; !kept {
							e.Remove = append(e.Remove, k)
						}
					}
				}
			}
			slices.Sort(e.Remove)
			cmd.Entries = append(cmd.Entries, e)
		}
		res, err := s.c.r.Do(ctx, MetaCommand{cmd})
		failed := err != nil
		if r, ok := res.(*metadata.CodesResult); ok {
			failed = failed || slices.ContainsFunc(r.Codes, func(c int16) bool { return c != 0 })
		}
		if failed {
			if err != nil && !errors.Is(err, ErrNotLeader) {
				s.c.log.Error("storing client quotas on the quorum", "err", err)
			}
			if err != nil {
				return nil, err // outcome unknown or not the leader: a Go error, retried by the gateway
			}
			for i := range resp.Entries {
				resp.Entries[i].ErrorCode, resp.Entries[i].ErrorMessage = kerr.KafkaStorageError.Code, "storing the client quotas failed"
			}
		}
		return resp, nil
	}, brokerop.Service.AlterClientQuotas)
}

func sameEntity(a, b []metadata.QuotaPart) bool { return slices.Equal(a, b) }

// security returns the quorum security service (Config.ClusterSecurity), made once.
func (c *Controller) security() *clusterSecurity {
	c.secOnce.Do(func() { c.sec = &clusterSecurity{c: c} })
	return c.sec
}

// securityService is what Service serves for the security ops.
func (c *Controller) securityService() brokerop.SecurityService {
	if c.cfg.ClusterSecurity {
		return c.security()
	}
	return c.cfg.Security
}

// --- import at bootstrap ---

var anyACL = brokerop.AclFilter{ResourceType: int8(acl.ResourceAny), PatternType: int8(acl.PatternAny),
	Operation: int8(acl.OpAny), Permission: int8(acl.PermissionAny)}

// fileSecurity reads what a broker kept in files before it ran as a cluster: its SCRAM
// credentials and ACLs (through sec, the file-backed service; nil: none) and client quotas.
func fileSecurity(ctx context.Context, fsys wal.FS, dir string, sec brokerop.SecurityService) (*metadata.AlterScram, []metadata.ACL, *metadata.AlterQuotas, error) {
	scram, quotas := &metadata.AlterScram{}, &metadata.AlterQuotas{}
	var acls []metadata.ACL
	if sec != nil {
		users, err := sec.DescribeUserScramCredentials(ctx, &brokerop.DescribeUserScramCredentialsReq{})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("controller: read the SCRAM credentials file: %w", err)
		}
		for _, u := range users.Users {
			for _, cr := range u.Credentials {
				scram.Upsertions = append(scram.Upsertions, metadata.ScramUpsertion{User: u.Name, Credential: credToMeta(cr)})
			}
		}
		bs, err := sec.DescribeAcls(ctx, &brokerop.DescribeAclsReq{Filter: anyACL})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("controller: read the ACLs file: %w", err)
		}
		for _, b := range bs.Bindings {
			acls = append(acls, aclToMeta(broker.BindingFromOp(b)))
		}
	}
	qs, err := broker.LoadClientQuotas(fsys, dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("controller: read the client quotas file: %w", err)
	}
	for _, q := range qs {
		quotas.Entries = append(quotas.Entries, metadata.QuotaChange{Entity: quotaEntityToMeta(q.Entity), Set: q.Values})
	}
	return scram, acls, quotas, nil
}

// importSecurity brings the ACLs, SCRAM credentials and client quotas a broker kept in files
// into the quorum it just bootstrapped (when the quorum has none yet), so that starting a
// broker with seeds loses nothing it stored alone. Called on the founding broker only; a
// joining broker's files are left alone (warnUnusedSecurity).
func importSecurity(ctx context.Context, fsys wal.FS, dir string, sec brokerop.SecurityService, rep *QuorumReplica, log *slog.Logger) error {
	scram, acls, quotas, err := fileSecurity(ctx, fsys, dir, sec)
	if err != nil {
		return err
	}
	st := rep.MetadataState()
	if len(scram.Upsertions)+len(acls)+len(quotas.Entries) == 0 || len(st.ACLs())+len(st.ScramUsers())+len(st.Quotas()) > 0 {
		return nil
	}
	if err := waitLeader(ctx, rep); err != nil {
		return err
	}
	for _, c := range []metadata.Command{scram, &metadata.CreateACLs{ACLs: acls}, quotas} {
		res, err := rep.Do(ctx, MetaCommand{c})
		if err != nil {
			return fmt.Errorf("controller: import security metadata: %w", err)
		}
		if r, ok := res.(*metadata.CodesResult); ok && slices.ContainsFunc(r.Codes, func(c int16) bool { return c != 0 }) {
			return fmt.Errorf("controller: import security metadata: refused (%v)", r.Codes)
		}
	}
	log.Info("imported the broker's SCRAM credentials, ACLs and client quotas into the metadata quorum",
		"credentials", len(scram.Upsertions), "acls", len(acls), "quotas", len(quotas.Entries))
	return nil
}

// warnUnusedSecurity logs when a broker joining a cluster has security files of its own: the
// cluster's metadata is used, not them (they stay on disk untouched).
func warnUnusedSecurity(ctx context.Context, fsys wal.FS, dir string, sec brokerop.SecurityService, log *slog.Logger) {
	scram, acls, quotas, err := fileSecurity(ctx, fsys, dir, sec)
	if err != nil || len(scram.Upsertions)+len(acls)+len(quotas.Entries) == 0 {
		return
	}
	log.Warn("this broker joins a cluster: its own SCRAM credentials, ACLs and client quotas files are NOT used (the cluster's metadata is); they are left in the data directory",
		"dir", dir, "credentials", len(scram.Upsertions), "acls", len(acls), "quotas", len(quotas.Entries))
}
