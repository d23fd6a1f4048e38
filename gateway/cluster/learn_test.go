package cluster

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
	"github.com/twmb/franz-go/pkg/kerr"
)

// joinControl attaches gossip and a control-plane node to ep.
func joinControl(t *testing.T, ep *endpoint.Endpoint, role meshctl.Role, onChange func(meshctl.Change), boot ...endpoint.NodeAddr) func() {
	t.Helper()
	g, err := gossip.Attach(ep, gossip.Config{CloseGrace: 100 * time.Millisecond, RejoinInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n, err := meshctl.Join(t.Context(), ep, g, meshctl.Config{Role: role, MeshID: "learn-test", Interval: 100 * time.Millisecond,
		Staleness: time.Second, Bootstrap: boot, OnChange: onChange})
	if err != nil {
		_ = g.Close()
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = n.Close()
			_ = g.Close()
		}
	}
	t.Cleanup(stop)
	return stop
}

func produceAll(t *testing.T, ctx context.Context, c *Cluster, topic string, n int32) {
	t.Helper()
	// A call the gateway abandons (a broker that missed its liveness probe on a loaded
	// machine) is retried, as a Kafka client retries; the context bounds the whole.
	retry := func(what string, call func() error) {
		t.Helper()
		for {
			err := call()
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: %v", what, err)
			}
			t.Logf("%s: %v; trying again", what, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	tried := false
	retry("create "+topic, func() error {
		cr, err := c.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: topic, NumPartitions: n, ReplicationFactor: 1}}})
		switch {
		case err != nil:
			tried = true
			return err
		case cr.Topics[0].ErrorCode == kerr.TopicAlreadyExists.Code && tried: // an abandoned try created it
		case cr.Topics[0].ErrorCode != 0:
			t.Fatalf("create %s: %+v", topic, cr)
		}
		return nil
	})
	pending := map[int32]bool{}
	for p := range n {
		pending[p] = true
	}
	// Until every partition has its record: a retriable partition error (the owner has not
	// applied the new topic yet: UNKNOWN_TOPIC_OR_PARTITION) is asked again, as a client does.
	retry("produce to "+topic, func() error {
		req := &brokerop.ProduceReq{Acks: -1, TimeoutMs: 5000}
		for _, p := range slices.Sorted(maps.Keys(pending)) {
			req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: topic, Partition: p,
				Records: encodeRecordBatch(nil, fmt.Appendf(nil, "%s-%d", topic, p), time.Now())})
		}
		pr, err := c.Produce(ctx, req)
		if err != nil {
			return err
		}
		for _, p := range pr.Partitions {
			switch e := kerr.ErrorForCode(p.ErrorCode); {
			case e == nil:
				delete(pending, p.Partition)
			case !kerr.IsRetriable(e):
				t.Fatalf("produce %s/%d: %+v", topic, p.Partition, p)
			}
		}
		if len(pending) > 0 {
			return fmt.Errorf("partitions %v not written yet", slices.Sorted(maps.Keys(pending)))
		}
		return nil
	})
}

// holders returns, per partition, the index of the broker that stores its data.
func holders(t *testing.T, ctx context.Context, bs []*testBroker, topic string, n int32) []int {
	t.Helper()
	out := make([]int, n)
	for p := range n {
		out[p] = -1
		for i, b := range bs {
			lo, err := b.b.ListOffsets(ctx, &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: topic, Partition: p, Timestamp: -1}}})
			if err != nil {
				t.Fatal(err)
			}
			if r := lo.Partitions[0]; r.ErrorCode == 0 && r.Offset > 0 {
				if out[p] != -1 {
					t.Fatalf("%s/%d stored on brokers %d and %d", topic, p, out[p], i)
				}
				out[p] = i
			}
		}
		if out[p] == -1 {
			t.Fatalf("%s/%d stored nowhere", topic, p)
		}
	}
	return out
}

// TestGatewayLearnsBrokersByGossip: a gateway given ONE broker seed learns the other two from
// the control topic and places a new topic's partitions on all three; a gateway given all three
// seeds agrees on every owner; a broker that stops announcing expires and gets no new
// placements, while its existing ones stay.
func TestGatewayLearnsBrokersByGossip(t *testing.T) {
	gw, gw2 := newEP(t), newEP(t)
	bs := startBrokers(t, 3, gw, gw2)
	slices.SortFunc(bs, func(a, b *testBroker) int { return cmpString(a.ep.NodeID().String(), b.ep.NodeID().String()) })
	seed := bs[0].ep.Addr() // the controller every gateway agrees on
	var stopB []func()
	for _, b := range bs {
		stopB = append(stopB, joinControl(t, b.ep, meshctl.RoleBroker, nil, seed))
	}

	c, err := New([]endpoint.NodeAddr{seed}, func(a endpoint.NodeAddr) *brokermesh.Caller {
		return brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, a), a.ID.ShortString())
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.EnableLearning()
	c.TrustLearned() // as cmd/gateway with -trusted-brokers naming them: legacy brokers have no member list
	joinControl(t, gw, meshctl.RoleGateway, func(ch meshctl.Change) { c.Learn(ch) }, seed)
	full := clusterFor(t, gw2, bs)

	ctx := timeoutCtx(t, 60*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for len(c.Brokers()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("gateway knows %d brokers", len(c.Brokers()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.Controller() != bs[0].ep.NodeID().String() {
		t.Fatal("controller changed")
	}

	const n = 6
	produceAll(t, ctx, c, "learned", n)
	on := holders(t, ctx, bs, "learned", n)
	used := map[int]bool{}
	for p, i := range on {
		used[i] = true
		_, o1, _, _ := c.owner(ctx, "learned", int32(p))
		_, o2, code, err := full.owner(ctx, "learned", int32(p))
		if err != nil || code != 0 || o1 != o2 || o1 != bs[i].ep.NodeID().String() {
			t.Fatalf("partition %d: learning gateway says %s, full gateway %s (code %d, %v), data on broker %d", p, o1, o2, code, err, i)
		}
	}
	if len(used) != 3 {
		t.Fatalf("partitions on %d brokers, want 3: %v", len(used), on)
	}

	// Broker 2 stops announcing (its process is gone for the control plane): it expires.
	stopB[2]()
	deadline = time.Now().Add(20 * time.Second)
	for len(c.Brokers()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("stopped broker did not expire: %d brokers", len(c.Brokers()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, b := range c.Brokers() {
		if b.ID == bs[2].ep.NodeID() {
			t.Fatal("the expired broker is still a candidate")
		}
	}
	produceAll(t, ctx, c, "after", n)
	for p, i := range holders(t, ctx, bs, "after", n) {
		if i == 2 {
			t.Fatalf("new partition %d placed on the expired broker", p)
		}
	}
	// Existing placements stay: the old topic still names broker 2 and is still served there
	// (its endpoint is up; only its announcements stopped).
	for p, i := range on {
		if i != 2 {
			continue
		}
		fr, err := c.Fetch(ctx, &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: "learned", Partition: int32(p), MaxBytes: 1 << 20}}})
		if err != nil || fr.Partitions[0].ErrorCode != 0 || len(fr.Partitions[0].Records) == 0 {
			t.Fatalf("partition %d on the expired broker: %+v %v", p, fr, err)
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestAddForgetBroker covers the bookkeeping without a network.
func TestAddForgetBroker(t *testing.T) {
	eps := []*endpoint.Endpoint{newEP(t), newEP(t), newEP(t)}
	gw := newEP(t)
	dials := map[string]int{}
	dial := func(a endpoint.NodeAddr) *brokermesh.Caller {
		dials[a.ID.String()]++
		return brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, a), a.ID.ShortString())
	}
	c, err := New([]endpoint.NodeAddr{eps[1].Addr(), eps[0].Addr()}, dial, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctl := c.Controller()
	if _, single := c.single(t.Context()); single {
		t.Fatal("two seeds reported single")
	}
	if !c.AddBroker(eps[2].Addr()) || c.AddBroker(eps[2].Addr()) {
		t.Fatal("AddBroker: new broker not reported added, or a repeat reported")
	}
	if len(c.Brokers()) != 3 || dials[eps[2].NodeID().String()] != 1 {
		t.Fatalf("brokers %v dials %v", c.Brokers(), dials)
	}
	for i := 1; i < 3; i++ {
		if c.Brokers()[i-1].ID.String() >= c.Brokers()[i].ID.String() {
			t.Fatal("brokers not sorted")
		}
	}
	if c.ForgetBroker(gw.NodeID()) {
		t.Fatal("forgot an unknown broker")
	}
	var ctlKey, other = eps[0].NodeID(), eps[1].NodeID()
	if ctl != ctlKey.String() {
		ctlKey, other = other, ctlKey
	}
	if c.ForgetBroker(ctlKey) {
		t.Fatal("forgot the controller")
	}
	if !c.ForgetBroker(other) || len(c.Brokers()) != 2 {
		t.Fatal("ForgetBroker")
	}
	// Coming back makes it a candidate again, without a new caller.
	before := dials[other.String()]
	moved := endpoint.NodeAddr{ID: other, Direct: eps[1].Addr().Direct}
	if other == eps[0].NodeID() {
		moved.Direct = eps[0].Addr().Direct
	}
	if !c.AddBroker(moved) || len(c.Brokers()) != 3 || dials[other.String()] != before {
		t.Fatalf("re-add: brokers %d dials %d→%d", len(c.Brokers()), before, dials[other.String()])
	}
	// New addresses for the controller: a fresh caller, the controller stays the same node.
	a := endpoint.NodeAddr{ID: ctlKey, Direct: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}}
	old := c.ctl()
	if !c.AddBroker(a) || c.ctl() == old || c.Controller() != ctl {
		t.Fatal("address change of the controller")
	}
}
