package meshctl

import (
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testNode struct {
	ep *endpoint.Endpoint
	g  *gossip.Gossip
	n  *Node

	mu      sync.Mutex
	changes []Change
}

func (tn *testNode) stop() {
	if tn.n != nil {
		_ = tn.n.Close()
	}
	_ = tn.g.Close()
	_ = tn.ep.Close()
}

func (tn *testNode) seen(kind ChangeKind, n *testNode) bool {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	for _, c := range tn.changes {
		if c.Kind == kind && c.Digest.Node == n.ep.NodeID() {
			return true
		}
	}
	return false
}

func startNode(t *testing.T, cfg Config, boot ...*testNode) *testNode {
	t.Helper()
	ep, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gossip.Attach(ep, gossip.Config{CloseGrace: 100 * time.Millisecond, RejoinInterval: time.Second})
	if err != nil {
		_ = ep.Close()
		t.Fatal(err)
	}
	tn := &testNode{ep: ep, g: g}
	for _, b := range boot {
		cfg.Bootstrap = append(cfg.Bootstrap, b.ep.Addr())
	}
	cfg.OnChange = func(c Change) {
		tn.mu.Lock()
		tn.changes = append(tn.changes, c)
		tn.mu.Unlock()
	}
	if tn.n, err = Join(t.Context(), ep, g, cfg); err != nil {
		tn.stop()
		t.Fatal(err)
	}
	return tn
}

// until polls f until it holds. No deadline: go test's -timeout is the backstop.
func until(f func() bool) {
	for !f() {
		time.Sleep(5 * time.Millisecond)
	}
}

// neighbors reports whether, in the control topic, hub has each of spokes as a gossip
// neighbor and each of them has hub.
func neighbors(t *testing.T, meshID string, hub *testNode, spokes ...*testNode) bool {
	t.Helper()
	has := func(of, want *testNode) bool {
		ns, err := of.g.Neighbors(t.Context(), TopicFor(meshID))
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(ns, want.ep.NodeID())
	}
	for _, s := range spokes {
		if !has(hub, s) || !has(s, hub) {
			return false
		}
	}
	return true
}

// round advances the shared clock by one interval, which makes every node publish, and waits
// until each of live has accepted a digest published at that moment or later from every other.
// Plumtree delivers every broadcast once the overlay is connected, so this needs no deadline.
func round(fake *clock.Fake, interval time.Duration, live []*testNode) {
	fake.Advance(interval)
	since := uint64(fake.Now().UnixMicro())
	until(func() bool {
		for _, o := range live {
			fresh := map[key.PublicKey]bool{}
			for _, e := range o.n.Directory(0) {
				if e.Seq >= since {
					fresh[e.Node] = true
				}
			}
			for _, n := range live {
				if n != o && !fresh[n.ep.NodeID()] {
					return false
				}
			}
		}
		return true
	})
}

// TestNodesLearnEachOther: three brokers and a gateway on loopback, each
// bootstrapping from the first broker only, learn every other node with its
// role, addresses and load; a stopped broker expires everywhere while the
// live ones, which keep refreshing each other, never do; a node of another
// mesh is never seen.
//
// Digests travel over real gossip, but publication, freshness and expiry run
// on one fake clock that the test advances an interval at a time, only once
// every live node has heard every other's digest of the previous interval:
// whether a node expires depends on what it heard, not on how fast a loaded
// machine delivered it (with wall-clock staleness of a few hundred
// milliseconds, live brokers flapped down and up under load).
func TestNodesLearnEachOther(t *testing.T) {
	fake := clock.NewFake(time.Unix(1000, 0))
	cfg := Config{MeshID: "test-mesh", Interval: time.Second, Staleness: 5 * time.Second, Clock: fake}
	var nodes []*testNode
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	bcfg := cfg
	bcfg.Role, bcfg.Load = RoleBroker, func() (uint64, uint64) { return 7, 4096 }
	b0 := startNode(t, bcfg)
	nodes = append(nodes, b0)
	for range 2 {
		c := cfg
		c.Role = RoleBroker
		nodes = append(nodes, startNode(t, c, b0))
	}
	gcfg := cfg
	gcfg.Role = RoleGateway
	gw := startNode(t, gcfg, b0)
	nodes = append(nodes, gw)
	ocfg := cfg
	ocfg.Role, ocfg.MeshID = RoleBroker, "other-mesh"
	other := startNode(t, ocfg, b0)
	nodes = append(nodes, other)
	mesh := slices.Clone(nodes[:4])

	// Every node joined through b0: once those links are up at both ends
	// the overlay is connected (more links may form; none goes away).
	until(func() bool { return neighbors(t, cfg.MeshID, b0, mesh[1:]...) })
	until(func() bool { return fake.Waiting() == 2*len(nodes) }) // every Node's tickers are armed
	round(fake, cfg.Interval, mesh)

	if l := gw.n.Directory(RoleBroker); len(l) != 3 {
		t.Fatalf("the gateway lists %d brokers", len(l))
	}
	for _, e := range gw.n.Directory(RoleBroker) {
		if e.Node == other.ep.NodeID() || e.MeshID != cfg.MeshID {
			t.Fatalf("foreign node listed: %+v", e)
		}
		if e.Node == b0.ep.NodeID() && (e.Partitions != 7 || e.Bytes != 4096) {
			t.Fatalf("b0 load %d/%d", e.Partitions, e.Bytes)
		}
		if len(e.Addrs) == 0 {
			t.Fatalf("no addresses for %s", e.Node.ShortString())
		}
		// The endpoint's address book learned the addresses too.
		if a, ok := gw.ep.NodeAddrOf(e.Node); !ok || len(a.Direct) == 0 {
			t.Fatalf("address book lacks %s", e.Node.ShortString())
		}
	}
	for _, n := range mesh[:3] {
		if !n.seen(Up, gw) {
			t.Fatalf("broker %s did not see the gateway", n.ep.NodeID().ShortString())
		}
	}

	// Stop broker 2, and wait until its last digest has reached every
	// survivor (an earlier one arriving later is then ignored: it cannot
	// refresh the entry) and the survivors have dropped it as a neighbor (b0
	// still links them all).
	gone := mesh[2]
	if err := gone.n.Close(); err != nil {
		t.Fatal(err)
	}
	last := gone.n.lastSeq // its run goroutine has exited
	gone.stop()
	nodes = slices.DeleteFunc(nodes, func(n *testNode) bool { return n == gone })
	live := slices.DeleteFunc(mesh, func(n *testNode) bool { return n == gone })
	// A node also publishes when a gossip link comes up, so its last digest may be one it
	// published just before Close, which may never have left it (this wait hung forever
	// then). Plumtree delivers a broadcast that left to every node, so: wait for the last
	// digest; if after a grace period it has reached no survivor, it never left, and the
	// one before it, which they all have, is the last.
	grace := time.Now().Add(3 * time.Second)
	until(func() bool {
		seqs := make([]uint64, len(live))
		for i, o := range live {
			for _, e := range o.n.Directory(0) {
				if e.Node == gone.ep.NodeID() {
					seqs[i] = e.Seq
				}
			}
		}
		if time.Now().After(grace) && !slices.Contains(seqs, last) && slices.Min(seqs) == slices.Max(seqs) {
			last = seqs[0]
		}
		return slices.Min(seqs) == last && slices.Max(seqs) == last
	})
	until(func() bool {
		for _, n := range live {
			ns, err := n.g.Neighbors(t.Context(), TopicFor(cfg.MeshID))
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(ns, gone.ep.NodeID()) {
				return false
			}
		}
		return neighbors(t, cfg.MeshID, b0, live[1:]...)
	})
	// After Staleness on the clock without news from it, broker 2 expires
	// everywhere (at the expiry tick of the last round).
	for range cfg.Staleness / cfg.Interval {
		round(fake, cfg.Interval, live)
	}
	until(func() bool { return gw.seen(Down, gone) && b0.seen(Down, gone) && live[1].seen(Down, gone) })
	if l := gw.n.Directory(RoleBroker); len(l) != 2 {
		t.Fatalf("after expiry the gateway lists %d brokers", len(l))
	}
	// The survivors kept refreshing each other: none of them ever expired.
	for _, o := range live {
		for _, n := range live {
			if o.seen(Down, n) {
				t.Fatalf("%s saw live %s expire", o.ep.NodeID().ShortString(), n.ep.NodeID().ShortString())
			}
		}
	}
	if gw.seen(Up, other) {
		t.Fatal("gateway saw a node of another mesh")
	}
}

// TestNodeExpiresOnItsClock: freshness and expiry are measured on the Node's injected clock:
// a broker that went silent is listed until Staleness has passed on the gateway's clock, and
// reported Down by the expiry check that the clock's ticker drives.
func TestNodeExpiresOnItsClock(t *testing.T) {
	const staleness = 8 * time.Second
	fake := clock.NewFake(time.Unix(1000, 0))
	b := startNode(t, Config{Role: RoleBroker, MeshID: "clock-mesh", Interval: time.Hour, Staleness: staleness})
	defer b.stop()
	gw := startNode(t, Config{Role: RoleGateway, MeshID: "clock-mesh", Interval: time.Hour, Staleness: staleness, Clock: fake}, b)
	defer gw.stop()
	until(func() bool { return gw.seen(Up, b) })
	b.stop()
	// Once b's connection is gone, nothing more from b can refresh it.
	until(func() bool {
		ns, err := gw.g.Neighbors(t.Context(), TopicFor("clock-mesh"))
		return err == nil && len(ns) == 0
	})
	fake.Advance(staleness - time.Millisecond)
	if l := gw.n.Directory(RoleBroker); len(l) != 1 || l[0].Node != b.ep.NodeID() {
		t.Fatalf("before Staleness on the clock the gateway lists %v", l)
	}
	if gw.seen(Down, b) {
		t.Fatal("reported Down before Staleness passed on the clock")
	}
	fake.Advance(2 * time.Millisecond)
	if l := gw.n.Directory(RoleBroker); len(l) != 0 {
		t.Fatalf("after Staleness on the clock the gateway still lists %v", l)
	}
	fake.Advance(staleness / 4) // the next expiry tick
	until(func() bool { return gw.seen(Down, b) })
}
