package meshctl

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
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

func eventually(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNodesLearnEachOther: three brokers and a gateway on loopback, each
// bootstrapping from the first broker only, learn every other node with its
// role, addresses and load; a stopped broker expires everywhere; a node of
// another mesh is never seen.
func TestNodesLearnEachOther(t *testing.T) {
	cfg := Config{MeshID: "test-mesh", Interval: 100 * time.Millisecond, Staleness: 800 * time.Millisecond}
	var nodes []*testNode
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	b0 := startNode(t, Config{Role: RoleBroker, MeshID: cfg.MeshID, Interval: cfg.Interval, Staleness: cfg.Staleness,
		Load: func() (uint64, uint64) { return 7, 4096 }})
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

	eventually(t, "gateway learns three brokers", 10*time.Second, func() bool { return len(gw.n.Directory(RoleBroker)) == 3 })
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
	for _, n := range nodes[:3] {
		eventually(t, "broker sees gateway", 10*time.Second, func() bool { return n.seen(Up, gw) })
	}
	// Stop broker 2: it expires at the gateway and at the other brokers.
	gone := nodes[2]
	gone.stop()
	nodes = append(nodes[:2], nodes[3:]...)
	eventually(t, "stopped broker expires", 10*time.Second, func() bool {
		return gw.seen(Down, gone) && b0.seen(Down, gone) && nodes[1].seen(Down, gone)
	})
	if l := gw.n.Directory(RoleBroker); len(l) != 2 {
		t.Fatalf("after expiry the gateway lists %d brokers", len(l))
	}
	// The survivors keep refreshing each other: nothing else expired.
	time.Sleep(2 * cfg.Staleness)
	if gw.seen(Down, b0) || gw.seen(Down, nodes[1]) {
		t.Fatal("a live broker expired")
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
	until := func(f func() bool) { // no deadline: go test's -timeout is the backstop
		for !f() {
			time.Sleep(5 * time.Millisecond)
		}
	}
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
