package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

// flipNet is a replicated partition "r"/0 on fake brokers, in process (run in a synctest
// bubble): leader is the broker that serves it under term (-1: none, an election under way);
// recorded/recEpoch is what the quorum's Placement says. A dead broker answers nothing: every
// call to it waits for its context, as a call to a SIGKILLed broker waits for the
// connection's idle timeout.
type flipNet struct {
	mu       sync.Mutex
	leader   int
	term     int32
	recorded int
	recEpoch int32
	dead     []bool
	ids      []string
	calls    []string // "<op>@<broker>", in order
}

func (n *flipNet) set(f func(n *flipNet)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n)
}

func (n *flipNet) callLog() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.calls...)
}

// flipBroker is broker i of a flipNet.
type flipBroker struct {
	brokerop.Service // nil: only the ops below are called
	n                *flipNet
	i                int
}

// serve records op and reports whether the broker leads, and the term; a dead broker answers
// nothing: serve waits for ctx to end and returns its error.
func (f *flipBroker) serve(ctx context.Context, op string) (lead bool, term int32, err error) {
	f.n.mu.Lock()
	f.n.calls = append(f.n.calls, op+"@"+string(rune('0'+f.i)))
	dead, lead, term := f.n.dead[f.i], f.n.leader == f.i, f.n.term
	f.n.mu.Unlock()
	if dead {
		<-ctx.Done()
		return false, 0, ctx.Err()
	}
	return lead, term, nil
}

// data is what broker i answers as a leader: offsets 100i (produce) and 10i (ListOffsets),
// high watermark i+1, a record of value '0'+i.
func (f *flipBroker) data() fakeData {
	return fakeData{baseOffset: int64(100 * f.i), listOffset: int64(10 * f.i), highWatermark: int64(f.i + 1), value: []byte{byte('0' + f.i)}}
}

func (f *flipBroker) ClusterBrokers(ctx context.Context, req *brokerop.ClusterBrokersReq) (*brokerop.ClusterBrokersResp, error) {
	f.n.mu.Lock()
	dead := f.n.dead[f.i]
	f.n.mu.Unlock()
	if dead {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &brokerop.ClusterBrokersResp{}, nil
}

func (f *flipBroker) Placement(ctx context.Context, req *brokerop.PlacementReq) (*brokerop.PlacementResp, error) {
	if _, _, err := f.serve(ctx, "placement"); err != nil {
		return nil, err
	}
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return &brokerop.PlacementResp{Topics: []brokerop.TopicPlacement{{Name: "r", TopicID: [16]byte{7},
		Owners: []string{f.n.ids[0]}, Leaders: []string{f.n.ids[f.n.recorded]}, LeaderEpochs: []int32{f.n.recEpoch}}}}, nil
}

// Metadata answers the quorum's record: brokers with Kafka ids 1..3, "r"/0 led by the
// recorded broker at its epoch.
func (f *flipBroker) Metadata(ctx context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	r := &brokerop.MetadataResp{}
	for i, id := range f.n.ids {
		r.Brokers = append(r.Brokers, brokerop.BrokerInfo{NodeID: int32(i + 1), MeshID: id})
	}
	r.Topics = []brokerop.TopicInfo{{Name: "r", TopicID: [16]byte{7}, Partitions: []brokerop.PartitionInfo{{Partition: 0,
		Leader: int32(f.n.recorded + 1), LeaderEpoch: f.n.recEpoch, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}}}}}
	return r, nil
}

func (f *flipBroker) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	lead, _, err := f.serve(ctx, "produce")
	if err != nil {
		return nil, err
	}
	return f.data().produce(req, lead), nil
}

// ProduceStaged answers at the wait, as a pipelined produce over the mesh does.
func (f *flipBroker) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	return func() (*brokerop.ProduceResp, error) { return f.Produce(ctx, req) }
}

func (f *flipBroker) ListOffsets(ctx context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error) {
	lead, term, err := f.serve(ctx, "list")
	if err != nil {
		return nil, err
	}
	return f.data().listOffsets(req, lead, term), nil
}

// Fetch answers at once: a record from the leader, NOT_LEADER_OR_FOLLOWER from the others.
func (f *flipBroker) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	lead, _, err := f.serve(ctx, "fetch")
	if err != nil {
		return nil, err
	}
	return f.data().fetch(req, lead), nil
}

func (f *flipBroker) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	return brokerop.FetchUnpooled(ctx, f.Fetch, req)
}

// resetCounter is a StreamOpener that counts the connection resets the cluster asks for.
type resetCounter struct{ resets atomic.Int32 }

func (r *resetCounter) OpenStream(context.Context) (brokermesh.Stream, error) {
	return nil, errors.New("no streams in this test")
}
func (r *resetCounter) Reset(string) { r.resets.Add(1) }

// flipTest runs body in a synctest bubble on a flipCluster, with a context that times out
// after a (virtual) minute.
func flipTest(t *testing.T, body func(t *testing.T, ctx context.Context, c *Cluster, n *flipNet, openers []*resetCounter)) {
	synctest.Test(t, func(t *testing.T) {
		c, n, openers := flipCluster(t)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		body(t, ctx, c, n, openers)
	})
}

// flipCluster is a quorum-mode cluster of three fake brokers leading "r"/0 with broker 0
// (term 1, recorded), and the openers of their callers.
func flipCluster(t *testing.T) (*Cluster, *flipNet, []*resetCounter) {
	t.Helper()
	n := &flipNet{leader: 0, term: 1, recorded: 0, recEpoch: 1, dead: make([]bool, 3)}
	var seeds []endpoint.NodeAddr
	for range 3 {
		a := endpoint.NodeAddr{ID: key.GenerateSecretKey().Public()}
		seeds = append(seeds, a)
		n.ids = append(n.ids, a.ID.String())
	}
	c, err := New(seeds, func(a endpoint.NodeAddr) *brokermesh.Caller { return brokermesh.NewCaller(nil, a.ID.ShortString()) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.mode = modeQuorum
	var openers []*resetCounter
	for i, id := range n.ids {
		o := &resetCounter{}
		openers = append(openers, o)
		b := &Broker{Service: &flipBroker{n: n, i: i}, caller: brokermesh.NewCaller(o, id), clk: clock.Real()}
		c.callers[id] = b
		c.members[id] = true
		if i == 1 {
			c.preferred = b // controller ops (Placement) go to a broker that stays up
		}
	}
	return c, n, openers
}

func produceStaged(ctx context.Context, c *Cluster) (brokerop.ProducePartitionResp, error) {
	r, err := c.ProduceStaged(ctx, produceRReq())()
	if err != nil {
		return brokerop.ProducePartitionResp{}, err
	}
	return r.Partitions[0], nil
}

// A partition's leader is SIGKILLed while a produce waits on it, and another broker wins the
// election before the quorum records it. The produce in flight fails within
// probeAfter+probeTimeout (it used to wait for the connection's idle timeout; here, the
// caller's deadline), the dead broker's connection is closed, and the client's retry goes
// straight to the new leader, which the gateway learns by asking the brokers; the next
// produce goes there with no search.
func TestProduceFailsOverWhenTheLeaderDies(t *testing.T) {
	flipTest(t, func(t *testing.T, ctx context.Context, c *Cluster, n *flipNet, openers []*resetCounter) {
		if p, err := produceStaged(ctx, c); err != nil || p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("produce at the first leader: %+v, %v", p, err)
		}
		n.set(func(n *flipNet) { n.dead[0], n.leader, n.term = true, 2, 2 })

		start := time.Now()
		_, err := produceStaged(ctx, c)
		if !errors.Is(err, brokermesh.ErrUnavailable) {
			t.Fatalf("produce in flight at the dead leader: %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took > probeAfter+probeTimeout {
			t.Fatalf("the produce in flight failed after %v (virtual), want within %v", took, probeAfter+probeTimeout)
		}
		if openers[0].resets.Load() != 1 {
			t.Fatalf("the dead broker's connection was reset %d times, want 1", openers[0].resets.Load())
		}

		start = time.Now()
		p, err := produceStaged(ctx, c)
		if err != nil || p.ErrorCode != 0 || p.BaseOffset != 200 {
			t.Fatalf("the client's retry: %+v, %v; want it stored by broker 2", p, err)
		}
		if took := time.Since(start); took > probeTimeout {
			t.Fatalf("the retry took %v (virtual)", took)
		}
		n.set(func(n *flipNet) { n.calls = nil })
		if p, err := produceStaged(ctx, c); err != nil || p.BaseOffset != 200 {
			t.Fatalf("next produce: %+v, %v", p, err)
		}
		if calls := n.callLog(); len(calls) != 1 || calls[0] != "produce@2" {
			t.Fatalf("the next produce made calls %v, want [produce@2] (the leader found is remembered)", calls)
		}
		// The quorum then records broker 1 under a later term: its record wins over what
		// the brokers said before.
		n.set(func(n *flipNet) { n.leader, n.term, n.recorded, n.recEpoch = 1, 3, 1, 3 })
		c.forgetPlacement("r")
		if p, err := produceStaged(ctx, c); err != nil || p.BaseOffset != 100 {
			t.Fatalf("produce after the quorum recorded broker 1: %+v, %v", p, err)
		}
	})
}

// With no leader at all (an election under way), a produce is held and sent to the broker
// that wins, rather than failing at once and coming back after the client's backoff; with no
// leader within leaderWait it is answered NOT_LEADER_OR_FOLLOWER.
func TestProduceHeldUntilANewLeader(t *testing.T) {
	flipTest(t, func(t *testing.T, ctx context.Context, c *Cluster, n *flipNet, _ []*resetCounter) {
		n.set(func(n *flipNet) { n.dead[0], n.leader = true, -1 })
		if _, err := produceStaged(ctx, c); !errors.Is(err, brokermesh.ErrUnavailable) {
			t.Fatalf("produce in flight at the dead leader: %v", err)
		}
		elected := 1500 * time.Millisecond
		go func() {
			time.Sleep(elected)
			n.set(func(n *flipNet) { n.leader, n.term = 1, 2 })
		}()
		start := time.Now()
		p, err := produceStaged(ctx, c)
		if err != nil || p.ErrorCode != 0 || p.BaseOffset != 100 {
			t.Fatalf("held produce: %+v, %v; want it stored by the broker elected", p, err)
		}
		// The search asks again every two huntIntervals: a round in which no broker leads
		// gives the dead one huntInterval after the live ones answered, not probeTimeout.
		if took := time.Since(start); took < elected || took > elected+2*huntInterval {
			t.Fatalf("held produce answered after %v (virtual); the leader was elected after %v", took, elected)
		}
		synctest.Wait()

		n.set(func(n *flipNet) { n.dead[1], n.leader = true, -1 }) // and nobody leads again
		if _, err := produceStaged(ctx, c); !errors.Is(err, brokermesh.ErrUnavailable) {
			t.Fatalf("produce in flight at the second dead leader: %v", err)
		}
		start = time.Now()
		p, err = produceStaged(ctx, c)
		if err != nil || p.ErrorCode != errNotLeaderOrFollower {
			t.Fatalf("produce with no leader: %+v, %v; want NOT_LEADER_OR_FOLLOWER", p, err)
		}
		if took := time.Since(start); took < leaderWait || took > leaderWait+probeTimeout {
			t.Fatalf("answered after %v (virtual), want after leaderWait %v", took, leaderWait)
		}
	})
}

// A long-polling Fetch at a leader that dies is abandoned once the leader fails its probe and
// sent again, within the same Fetch, to the broker now leading: the consumer gets its records
// from the new leader instead of an error.
func TestFetchFailsOverWithinTheRequest(t *testing.T) {
	flipTest(t, func(t *testing.T, ctx context.Context, c *Cluster, n *flipNet, _ []*resetCounter) {
		n.set(func(n *flipNet) { n.dead[0], n.leader, n.term = true, 2, 2 })
		start := time.Now()
		r, err := c.Fetch(ctx, &brokerop.FetchReq{MaxWaitMs: 5000, MinBytes: 1, MaxBytes: 1 << 20,
			Partitions: []brokerop.FetchPartition{{Topic: "r", Partition: 0, MaxBytes: 1 << 20}}})
		if err != nil || r.Partitions[0].ErrorCode != 0 || len(r.Partitions[0].Records) == 0 || r.Partitions[0].HighWatermark != 3 {
			t.Fatalf("fetch: %+v, %v; want broker 2's record", r, err)
		}
		if took := time.Since(start); took > probeAfter+2*probeTimeout {
			t.Fatalf("fetch answered after %v (virtual)", took)
		}
	})
}

// A partition's quorum record names a broker that answers NOT_LEADER_OR_FOLLOWER (the new
// leader has not reported yet): the gateway asks the brokers and sends the produce to the one
// that leads, instead of passing the error to the client.
func TestNotLeaderFindsTheLeader(t *testing.T) {
	flipTest(t, func(t *testing.T, ctx context.Context, c *Cluster, n *flipNet, _ []*resetCounter) {
		n.set(func(n *flipNet) { n.leader, n.term = 2, 2 })
		p, err := c.Produce(ctx, produceRReq())
		if err != nil || p.Partitions[0].ErrorCode != 0 || p.Partitions[0].BaseOffset != 200 {
			t.Fatalf("produce: %+v, %v", p, err)
		}
		lo, err := c.ListOffsets(ctx, &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: "r", Partition: 0, Timestamp: -1}}})
		if err != nil || lo.Partitions[0].ErrorCode != 0 || lo.Partitions[0].Offset != 20 {
			t.Fatalf("list offsets: %+v, %v", lo, err)
		}
		// Metadata shows the leader the gateway routes to, under its epoch, so that a
		// client's Fetch is not fenced by the quorum's older record.
		md, err := c.Metadata(ctx, &brokerop.MetadataReq{Topics: []string{"r"}})
		if err != nil {
			t.Fatal(err)
		}
		if p := md.Topics[0].Partitions[0]; p.Leader != 3 || p.LeaderEpoch != 2 {
			t.Fatalf("metadata shows leader %d epoch %d, want 3 (broker 2) under epoch 2", p.Leader, p.LeaderEpoch)
		}
		// Once the quorum records a later epoch, its record is shown.
		n.set(func(n *flipNet) { n.leader, n.term, n.recorded, n.recEpoch = 1, 3, 1, 3 })
		md, err = c.Metadata(ctx, &brokerop.MetadataReq{Topics: []string{"r"}})
		if p := md.Topics[0].Partitions[0]; err != nil || p.Leader != 2 || p.LeaderEpoch != 3 {
			t.Fatalf("metadata after the quorum's record: %+v, %v", p, err)
		}
	})
}

// A broker marked down (it failed a probe) is used again as soon as it answers: restarted,
// it leads the partition again and the quorum records it.
func TestRestartedBrokerUsedAgain(t *testing.T) {
	flipTest(t, func(t *testing.T, ctx context.Context, c *Cluster, n *flipNet, _ []*resetCounter) {
		n.set(func(n *flipNet) { n.dead[0], n.leader, n.term = true, 2, 2 })
		if _, err := produceStaged(ctx, c); !errors.Is(err, brokermesh.ErrUnavailable) {
			t.Fatalf("produce in flight at the dead leader: %v", err)
		}
		if !c.callers[n.ids[0]].isDown() {
			t.Fatal("broker 0 not marked down")
		}
		n.set(func(n *flipNet) { n.dead[0], n.leader, n.term, n.recorded, n.recEpoch = false, 0, 3, 0, 3 })
		c.forgetPlacement("r")
		p, err := produceStaged(ctx, c)
		if err != nil || p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("produce after broker 0 came back as leader: %+v, %v", p, err)
		}
		if c.callers[n.ids[0]].isDown() {
			t.Fatal("broker 0 still marked down after it answered")
		}
	})
}

// In quorum mode a broker whose control-plane digest expires is not forgotten (the quorum
// places partitions; the data path probes), and one the gateway found down is used again as
// soon as it announces itself: a fresh connection, no down mark.
func TestQuorumBrokerDigestExpiryAndReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, n, openers := flipCluster(t)
		id, err := key.ParsePublicKey(n.ids[2])
		if err != nil {
			t.Fatal(err)
		}
		before := len(c.Brokers())
		if c.Learn(meshctl.Change{Kind: meshctl.Down, Digest: meshctl.Digest{Node: id, Role: meshctl.RoleBroker}}) || len(c.Brokers()) != before {
			t.Fatalf("a member's digest expiry forgot it: %d brokers, was %d", len(c.Brokers()), before)
		}
		b := c.callers[n.ids[2]]
		c.markDown(b, errors.New("test"))
		resets := openers[2].resets.Load()
		c.Learn(meshctl.Change{Kind: meshctl.Up, Digest: meshctl.Digest{Node: id, Role: meshctl.RoleBroker}})
		if b.isDown() || openers[2].resets.Load() != resets+1 {
			t.Fatalf("after it announced itself: down %v, resets %d (was %d)", b.isDown(), openers[2].resets.Load(), resets)
		}
	})
}
