package controller

// The broker's check of the principal a gateway acts for (issue #17 item 4; the rules are in
// package brokermesh, guard.go). NodeConfig.Authorizer turns it on; the ACLs are those this
// broker holds: the quorum's metadata (ClusterSecurity) as applied on this broker, or the
// broker's acls file. The decisions are cached per ACL set (acl.Cached): a change of the
// ACLs (a CreateAcls or DeleteAcls applied here) builds a new set at the next call, with no
// restart (acl.Decisions).

import (
	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// AuthorizerConfig turns on the broker's own authorization of the principals gateways act
// for (Kafka's authorizer, on the broker side of the mesh).
type AuthorizerConfig struct {
	// Enabled authorizes every call that names a principal against the ACLs.
	Enabled bool
	// SuperUsers are principals allowed everything (Kafka's super.users).
	SuperUsers []string
	// AllowIfNoACL allows requests on resources no ACL applies to
	// (allow.everyone.if.no.acl.found; default false).
	AllowIfNoACL bool
}

// ACLSnapshotter is an ACL source that tells when its bindings changed (broker.ACLs, the
// file-backed one).
type ACLSnapshotter interface {
	// ACLSnapshot returns a number that changes whenever the bindings do, and the bindings.
	ACLSnapshot() (uint64, []acl.Binding)
}

// metadataACLs is the snapshot function over the applied metadata state: its applied index
// and its ACLs.
func metadataACLs(st *metadata.State) func() (uint64, func() []acl.Binding) {
	load := func() []acl.Binding {
		ms := st.ACLs()
		out := make([]acl.Binding, len(ms))
		for i, m := range ms {
			out[i] = aclFromMeta(m)
		}
		return out
	}
	return func() (uint64, func() []acl.Binding) { return st.LastApplied(), load }
}

// SnapshotACLs is the acl.Decisions snapshot function over a file-backed ACL source.
func SnapshotACLs(s ACLSnapshotter) func() (uint64, func() []acl.Binding) {
	return func() (uint64, func() []acl.Binding) {
		gen, bs := s.ACLSnapshot()
		return gen, func() []acl.Binding { return bs }
	}
}

// guard is the kafkaop server's check for this broker: trust (the -trust list, gateway or
// admin role) for naming a principal, and the ACLs when cfg.Authorizer is on.
func guard(cfg NodeConfig, ctl *Controller, st *metadata.State) *brokermesh.Guard {
	trust := cfg.Trust
	g := &brokermesh.Guard{MayAct: func(peer string) bool {
		if peer == LocalListenerPeer {
			return true // this broker's own Kafka listener, in process
		}
		k, err := key.ParsePublicKey(peer)
		if err != nil {
			return false
		}
		return trust != nil && trust(k) || ctl.HasRole(k, metadata.RoleGateway|metadata.RoleAdmin)
	}}
	if !cfg.Authorizer.Enabled {
		return g
	}
	var snap func() (uint64, func() []acl.Binding)
	switch s, ok := cfg.Security.(ACLSnapshotter); {
	case cfg.ClusterSecurity:
		snap = metadataACLs(st)
	case ok:
		snap = SnapshotACLs(s)
	default:
		// No ACLs kept on this broker: only super users (and AllowIfNoACL) pass.
		snap = func() (uint64, func() []acl.Binding) { return 0, func() []acl.Binding { return nil } }
	}
	g.Authorizer = acl.NewDecisions(acl.Config{SuperUsers: cfg.Authorizer.SuperUsers, AllowIfNoACL: cfg.Authorizer.AllowIfNoACL}, snap).Current
	return g
}

// LocalListenerPeer names this broker's own Kafka listener as a caller of its kafkaop server
// (brokermesh.NewLocal): it may act for the principals it authenticated.
const LocalListenerPeer = "kafka-listener"

// Guard returns the check the broker's kafkaop server applies (for a Local server of this
// broker's own Kafka listener; StartNode sets it on the mesh server).
func (n *Node) Guard() *brokermesh.Guard { return n.guard }
