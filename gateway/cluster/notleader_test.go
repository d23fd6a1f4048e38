package cluster

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// leaderMove is the shared state of fake quorum brokers: the quorum places topic "r"
// (one replicated partition) with owner (preferred leader) brokers[0], and names as its
// leader whichever broker `leader` says; a broker that is not the leader answers data ops
// NOT_LEADER_OR_FOLLOWER.
type leaderMove struct {
	mu         sync.Mutex
	brokers    []endpoint.NodeAddr
	leader     int // index of the leader the brokers themselves know
	recorded   int // index of the leader the quorum has recorded (what Placement says)
	moveOnMiss bool
	unrecorded bool // Placement names no leader yet (epoch -1: a new topic's first election)
	placements int
	produces   int
	calls      []int // broker index of each data op, in order
}

type fakeQuorumBroker struct {
	brokerop.Unimplemented
	i  int
	lm *leaderMove
}

func (f fakeQuorumBroker) ClusterBrokers(ctx context.Context, req *brokerop.ClusterBrokersReq) (*brokerop.ClusterBrokersResp, error) {
	f.lm.mu.Lock()
	defer f.lm.mu.Unlock()
	r := &brokerop.ClusterBrokersResp{ClusterID: "c", Leader: f.lm.brokers[0].ID.String()}
	for i, a := range f.lm.brokers {
		b := brokerop.ClusterBroker{MeshID: a.ID.String(), RaftID: uint64(i + 1), Live: true, Voter: true, Leader: i == 0}
		for _, d := range a.Direct {
			b.Direct = append(b.Direct, d.String())
		}
		r.Brokers = append(r.Brokers, b)
	}
	return r, nil
}

func (f fakeQuorumBroker) Placement(ctx context.Context, req *brokerop.PlacementReq) (*brokerop.PlacementResp, error) {
	f.lm.mu.Lock()
	defer f.lm.mu.Unlock()
	f.lm.placements++
	resp := &brokerop.PlacementResp{}
	for _, n := range req.Topics {
		if n != "r" {
			resp.Topics = append(resp.Topics, brokerop.TopicPlacement{Name: n, ErrorCode: errUnknownTopicOrPartition})
			continue
		}
		tp := brokerop.TopicPlacement{Name: "r", TopicID: [16]byte{1}, Owners: []string{f.lm.brokers[0].ID.String()},
			Leaders: []string{f.lm.brokers[f.lm.recorded].ID.String()}, LeaderEpochs: []int32{int32(f.lm.recorded + 1)}}
		if f.lm.unrecorded {
			tp.Leaders, tp.LeaderEpochs = []string{""}, []int32{-1}
		}
		resp.Topics = append(resp.Topics, tp)
	}
	return resp, nil
}

// serve records the call and reports whether this broker leads; a miss makes the quorum
// record the real leader when moveOnMiss is set.
func (f fakeQuorumBroker) serve() bool {
	f.lm.mu.Lock()
	defer f.lm.mu.Unlock()
	f.lm.calls = append(f.lm.calls, f.i)
	if f.i != f.lm.leader && f.lm.moveOnMiss {
		f.lm.recorded = f.lm.leader
	}
	return f.i == f.lm.leader
}

// leaderMoveData is what the fake quorum brokers answer.
var leaderMoveData = fakeData{baseOffset: 42, listOffset: 7, highWatermark: 9, value: []byte("v")}

func (f fakeQuorumBroker) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	f.lm.mu.Lock()
	f.lm.produces++
	f.lm.mu.Unlock()
	return leaderMoveData.produce(req, f.serve()), nil
}

func (f fakeQuorumBroker) ListOffsets(ctx context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error) {
	return leaderMoveData.listOffsets(req, f.serve(), 0), nil
}

func (f fakeQuorumBroker) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	return leaderMoveData.fetch(req, f.serve()), nil
}

// startLeaderMove runs three fake quorum brokers and a gateway cluster seeded with them.
func startLeaderMove(t *testing.T) (*Cluster, *leaderMove) {
	gw := newEP(t)
	lm := &leaderMove{}
	var eps []*endpoint.Endpoint
	for range 3 {
		ep := newEP(t)
		eps = append(eps, ep)
		lm.brokers = append(lm.brokers, ep.Addr())
	}
	for i, ep := range eps {
		brokermesh.Serve(ep, brokermesh.NewServer(nil, fakeQuorumBroker{i: i, lm: lm}), trustOnly(gw.NodeID()), nil)
	}
	return clusterForAddrs(t, gw, eps...), lm
}

func produceR(t *testing.T, c *Cluster) brokerop.ProducePartitionResp {
	t.Helper()
	r, err := c.Produce(t.Context(), produceRReq())
	if err != nil {
		t.Fatal(err)
	}
	return r.Partitions[0]
}

// Data ops go to the leader the quorum recorded; a NOT_LEADER_OR_FOLLOWER answer makes the
// gateway read the placement again and send once more, to the new leader.
func TestNotLeaderRetriedAtNewLeader(t *testing.T) {
	c, lm := startLeaderMove(t)
	lm.mu.Lock()
	lm.leader, lm.recorded = 1, 1
	lm.mu.Unlock()
	if p := produceR(t, c); p.ErrorCode != 0 || p.BaseOffset != 42 {
		t.Fatalf("produce at the recorded leader: %+v", p)
	}
	// Leadership moves to broker 2; the quorum learns it when broker 1 is asked.
	lm.mu.Lock()
	lm.leader, lm.moveOnMiss = 2, true
	lm.calls = nil
	lm.mu.Unlock()
	if p := produceR(t, c); p.ErrorCode != 0 || p.BaseOffset != 42 {
		t.Fatalf("produce after the move: %+v", p)
	}
	lo, err := c.ListOffsets(t.Context(), &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: "r", Partition: 0, Timestamp: -1}}})
	if err != nil || lo.Partitions[0].ErrorCode != 0 || lo.Partitions[0].Offset != 7 {
		t.Fatalf("list offsets: %+v, %v", lo, err)
	}
	lm.mu.Lock()
	calls := lm.calls
	lm.leader, lm.calls = 0, nil // and on to broker 0
	lm.mu.Unlock()
	if want := []int{1, 2, 2}; !slices.Equal(calls, want) {
		t.Errorf("data ops went to brokers %v, want %v (old leader, new leader after a placement refresh, new leader)", calls, want)
	}
	fr, err := c.Fetch(t.Context(), &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: "r", Partition: 0, MaxBytes: 1 << 20}}})
	if err != nil || fr.Partitions[0].ErrorCode != 0 || fr.Partitions[0].HighWatermark != 9 || len(fr.Partitions[0].Records) == 0 {
		t.Fatalf("fetch after a move: %+v, %v", fr, err)
	}
	lm.mu.Lock()
	calls = lm.calls
	lm.mu.Unlock()
	if want := []int{2, 0}; !slices.Equal(calls, want) {
		t.Errorf("fetches went to brokers %v, want %v", calls, want)
	}
}

// While no broker leads (the quorum still names the old leader, which answers
// NOT_LEADER_OR_FOLLOWER, and no other broker serves the partition), the produce is answered
// NOT_LEADER_OR_FOLLOWER once leaderWait (here shortened) has passed: one resend, no loop of
// produces, and the client retries.
func TestNotLeaderRetriedOnce(t *testing.T) {
	c, lm := startLeaderMove(t)
	lm.mu.Lock()
	lm.leader, lm.recorded = 3, 0 // nobody leads; the quorum still names the preferred leader
	lm.mu.Unlock()
	ctx := withLeaderWait(t.Context(), 300*time.Millisecond)
	r, err := c.Produce(ctx, produceRReq())
	if err != nil || r.Partitions[0].ErrorCode != errNotLeaderOrFollower {
		t.Fatalf("produce: %+v, %v; want NOT_LEADER_OR_FOLLOWER", r, err)
	}
	lm.mu.Lock()
	produces, placements := lm.produces, lm.placements
	lm.mu.Unlock()
	if produces != 1 || placements != 2 {
		t.Errorf("%d produces sent, placements read %d; want 1 and 2 (no resend without a leader, one refresh)", produces, placements)
	}
	// Once recorded, the next request (the client's retry) reads the placement again and
	// goes straight to the leader.
	lm.mu.Lock()
	lm.leader, lm.recorded, lm.calls = 2, 2, nil
	lm.mu.Unlock()
	if p := produceR(t, c); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	if lm.mu.Lock(); !slices.Equal(lm.calls, []int{2}) {
		t.Errorf("calls %v, want [2]", lm.calls)
	}
	lm.mu.Unlock()
}

// A new topic's placement names no leader until the first one reports (epoch -1): its route
// is then only the preferred replica, which may not have won the election. The pipelined
// produce (which does not resend on NOT_LEADER_OR_FOLLOWER) must go to the broker that
// serves the partition, found by asking, not to the preferred replica: a client answered
// NOT_LEADER_OR_FOLLOWER waits for its next metadata refresh (kgo: 5 s).
func TestUnrecordedLeaderIsSearchedNotGuessed(t *testing.T) {
	c, lm := startLeaderMove(t)
	lm.mu.Lock()
	lm.leader, lm.unrecorded = 1, true
	lm.mu.Unlock()
	r, err := c.ProduceStaged(t.Context(), produceRReq())()
	if err != nil || r.Partitions[0].ErrorCode != 0 || r.Partitions[0].BaseOffset != 42 {
		t.Fatalf("produce while the quorum has recorded no leader: %+v, %v", r, err)
	}
	lm.mu.Lock()
	produces := lm.produces
	lm.mu.Unlock()
	if produces != 1 {
		t.Errorf("%d produces sent, want 1 (to the broker that leads)", produces)
	}
}

func (f fakeQuorumBroker) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	return brokerop.ProduceNow(ctx, f.Produce, req)
}

func (f fakeQuorumBroker) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	return brokerop.FetchUnpooled(ctx, f.Fetch, req)
}
