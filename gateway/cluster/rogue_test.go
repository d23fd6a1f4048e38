package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

// The rogue broker of issue #17: a fresh key that serves kafkaop (trusting the gateway), joins
// the control topic through a broker and announces itself as a broker. Its digests reach the
// gateway, which does not believe them (not a member of the quorum): it gets no partition of a
// new 6-partition topic and no record, and is never asked anything.
func TestRogueBrokerGetsNoPartition(t *testing.T) {
	gw, qc := startQuorum(t, 3)
	boot := qc.Brokers[0].EP.Addr()
	for _, b := range qc.Brokers {
		joinControl(t, b.EP, meshctl.RoleBroker, nil, boot)
	}
	c := clusterForAddrs(t, gw, qc.Brokers[0].EP)
	c.EnableLearning() // as cmd/gateway does
	ctx := timeoutCtx(t, 60*time.Second)
	if _, err := c.ClusterBrokers(ctx, &brokerop.ClusterBrokersReq{}); err != nil {
		t.Fatal(err)
	}

	rogue := newEP(t)
	var rogueCalls atomic.Int64
	brokermesh.Serve(rogue, brokermesh.NewServer(nil, brokerop.Intercept(brokerop.Parts{}, func(ctx context.Context, op string) (context.Context, func(error)) {
		rogueCalls.Add(1)
		return ctx, func(error) {}
	})), trustOnly(gw.NodeID()), nil)
	joinControl(t, rogue, meshctl.RoleBroker, nil, boot)

	var rogueHeard, rogueBelieved atomic.Int64
	g, err := gossip.Attach(gw, gossip.Config{CloseGrace: 100 * time.Millisecond, RejoinInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n, err := meshctl.Join(t.Context(), gw, g, meshctl.Config{Role: meshctl.RoleGateway, MeshID: "learn-test", Interval: 100 * time.Millisecond,
		Staleness: time.Second, Bootstrap: []endpoint.NodeAddr{boot},
		Believe: func(d meshctl.Digest) bool {
			ok := c.Believes(d.Node)
			if d.Node == rogue.NodeID() {
				rogueHeard.Add(1)
				if ok {
					rogueBelieved.Add(1)
				}
			}
			return ok
		},
		OnChange: func(ch meshctl.Change) { c.Learn(ch) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(); _ = g.Close() })
	if err := controllertest.Eventually(func() error {
		if rogueHeard.Load() < 3 {
			return context.DeadlineExceeded
		}
		return nil
	}); err != nil {
		t.Fatalf("the rogue's digests never reached the gateway: the test would prove nothing")
	}

	produceAll(t, ctx, c, "orders", 6)
	pl, err := c.Placement(ctx, &brokerop.PlacementReq{Topics: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	members := map[string]bool{}
	for _, b := range qc.Brokers {
		members[b.EP.NodeID().String()] = true
	}
	for p, o := range pl.Topics[0].Owners {
		if !members[o] {
			t.Fatalf("partition %d placed on %s, not a member", p, o)
		}
	}
	for _, b := range c.Brokers() {
		if b.ID == rogue.NodeID() {
			t.Fatal("the rogue is a placement candidate")
		}
	}
	if rogueBelieved.Load() != 0 || rogueCalls.Load() != 0 {
		t.Fatalf("rogue believed %d times, asked %d ops", rogueBelieved.Load(), rogueCalls.Load())
	}
}

// Brokers from before the quorum have no member list: a gateway learns brokers from the
// control topic only when its caller vouched for them (-trusted-brokers); otherwise only its
// seeds.
func TestLegacyLearningNeedsTrustedBrokers(t *testing.T) {
	seed := key.GenerateSecretKey().Public()
	c, err := New([]endpoint.NodeAddr{{ID: seed}}, func(a endpoint.NodeAddr) *brokermesh.Caller {
		return brokermesh.NewCaller(nil, a.ID.ShortString())
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.EnableLearning()
	c.mode = modeLegacy
	stranger := key.GenerateSecretKey().Public()
	c.Learn(meshctl.Change{Kind: meshctl.Up, Digest: meshctl.Digest{Node: stranger, Role: meshctl.RoleBroker}})
	if len(c.Brokers()) != 1 || c.Believes(stranger) || !c.Believes(seed) {
		t.Fatalf("legacy mode without -trusted-brokers learned %v", c.Brokers())
	}
	c.TrustLearned()
	c.Learn(meshctl.Change{Kind: meshctl.Up, Digest: meshctl.Digest{Node: stranger, Role: meshctl.RoleBroker}})
	if len(c.Brokers()) != 2 {
		t.Fatalf("with -trusted-brokers: %v", c.Brokers())
	}
}
