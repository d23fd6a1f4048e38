package controller

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
)

// commitGate holds the offset commits a broker forwards to the quorum leader while armed:
// each held commit is delivered to the leader only when the test releases it, whatever
// became of the call that brought it (the forwarder's caller gave up long before): a forward
// in flight while a broker is cut off, delivered after the heal.
type commitGate struct {
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // one per held commit
	release chan struct{} // closed: deliver every held commit
	results chan error    // one per delivered commit: nil when it was answered without error
}

func (g *commitGate) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = true
}

// heldCommits is a forwarding caller behind a commitGate.
type heldCommits struct {
	brokerop.Service
	g *commitGate
}

func (h heldCommits) OffsetCommit(ctx context.Context, req *brokerop.OffsetCommitReq) (*brokerop.OffsetCommitResp, error) {
	h.g.mu.Lock()
	armed := h.g.armed
	h.g.mu.Unlock()
	if !armed {
		return h.Service.OffsetCommit(ctx, req)
	}
	h.g.held <- struct{}{}
	<-h.g.release
	dctx, cancel := ctx5() // the caller's context ended long ago: the bytes are in the network
	defer cancel()
	r, err := h.Service.OffsetCommit(dctx, req)
	if err == nil {
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					err = fmt.Errorf("%s/%d: error %d", t.Topic, p.Partition, p.ErrorCode)
				}
			}
		}
	}
	h.g.results <- err
	return r, err
}

// committedOffset is group grp's committed offset of partition 0 of topic, asked through
// broker via until it answers without error.
func (h *harness) committedOffset(t *testing.T, via int, grp, topic string) int64 {
	t.Helper()
	var off int64
	eventually(t, "offset fetch", func() error {
		ctx, cancel := ctx5()
		defer cancel()
		r, err := h.caller(via).OffsetFetch(ctx, &brokerop.OffsetFetchReq{Group: grp, Topics: []brokerop.OffsetFetchTopic{{Topic: topic, Partitions: []int32{0}}}})
		if err != nil {
			return err
		}
		if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].ErrorCode != 0 {
			return fmt.Errorf("offset fetch answer %+v", r)
		}
		off = r.Topics[0].Partitions[0].Offset
		return nil
	})
	return off
}

// A commit that a broker forwards to the quorum leader and delivers late (cut off from the
// leader, it held the forward while the gateway gave up on it, sent the same commit to
// another broker and then a newer one) must not roll the committed offset back: the leader
// answers the late copy as committed and keeps the newer offset, because both carry the
// gateway's stamp (Writer, Seq) and the newer Seq came first. The stamps live in the quorum's
// state: a late copy reaching a new leader (its coordinator started from the quorum) is
// refused too. Commits of other writers, or unstamped, apply in arrival order, as Kafka's
// coordinator applies them.
func TestLateForwardedCommitDoesNotRollBack(t *testing.T) {
	h := newHarness(t, 3)
	gates := make([]*commitGate, 3)
	h.forward = map[int]func(brokerop.Service) brokerop.Service{}
	for i := range 3 {
		gates[i] = &commitGate{held: make(chan struct{}, 1), release: make(chan struct{}), results: make(chan error, 1)}
		h.forward[i] = func(s brokerop.Service) brokerop.Service { return heldCommits{s, gates[i]} }
	}
	li := h.startThree()
	x, y := (li+1)%3, (li+2)%3
	hold := gates[x]
	released := false
	defer func() {
		if !released {
			close(hold.release)
		}
	}()

	const grp, topic, writer = "g", "t", 0x5eed
	commitReq := func(off int64, writer, seq uint64) *brokerop.OffsetCommitReq {
		return &brokerop.OffsetCommitReq{Group: grp, Generation: -1, Writer: writer, Seq: seq,
			Topics: []brokerop.OffsetCommitTopic{{Topic: topic, Partitions: []brokerop.OffsetCommitPartition{{Partition: 0, Offset: off, LeaderEpoch: -1}}}}}
	}
	commit := func(via int, off int64, writer, seq uint64) {
		t.Helper()
		eventually(t, fmt.Sprintf("commit %d through broker %d", off, via), func() error {
			ctx, cancel := ctx5()
			defer cancel()
			r, err := h.caller(via).OffsetCommit(ctx, commitReq(off, writer, seq))
			if err != nil {
				return err
			}
			if code := r.Topics[0].Partitions[0].ErrorCode; code != 0 {
				return fmt.Errorf("error %d", code)
			}
			return nil
		})
	}
	fetch := func(via int) int64 { t.Helper(); return h.committedOffset(t, via, grp, topic) }

	commit(x, 1, 0, 0)
	hold.arm()

	// The gateway sends commit 453 (seq 1) to x, which forwards it and is cut off; the
	// gateway gives up on x.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := h.caller(x).OffsetCommit(ctx, commitReq(453, writer, 1))
		gaveUp <- err
	}()
	<-hold.held
	cancel()
	if err := <-gaveUp; err == nil {
		t.Fatal("the call to the cut-off broker answered")
	}
	// It sends 453 again, to y, then 479 (seq 2), both acknowledged.
	commit(y, 453, writer, 1)
	commit(y, 479, writer, 2)
	if got := fetch(y); got != 479 {
		t.Fatalf("offset %d after the commit of 479", got)
	}

	// The heal: x's forward of 453 reaches the leader.
	close(hold.release)
	released = true
	if err := <-hold.results; err != nil {
		t.Fatalf("the late copy of a commit was answered %v; want it answered as committed (overwritten)", err)
	}
	for _, via := range []int{li, x, y} {
		if got := fetch(via); got != 479 {
			t.Fatalf("committed offset %d through broker %d after a late copy of the commit of 453 arrived; want 479 (acknowledged after 453)", got, via)
		}
	}

	// A new leader's coordinator starts from the quorum's offsets: it knows the stamps too.
	h.leadOn(x)
	commit(x, 453, writer, 1) // a late copy reaching the new leader
	if got := fetch(x); got != 479 {
		t.Fatalf("committed offset %d after a late copy of 453 reached a new leader; want 479", got)
	}
	for i, n := range h.nodes {
		eventually(t, "the quorum's offsets", func() error {
			for _, o := range n.sm.State().GroupOffsets(grp) {
				if o.Topic == topic && o.Partition == 0 && o.Offset != 479 {
					return fmt.Errorf("broker %d's quorum state holds offset %d", i, o.Offset)
				}
			}
			return nil
		})
	}

	// Commits of another writer (or unstamped) apply in arrival order; a newer seq of the
	// writer applies after them.
	commit(y, 460, 0, 0)
	if got := fetch(y); got != 460 {
		t.Fatalf("an unstamped commit of 460 left offset %d", got)
	}
	commit(y, 470, writer+1, 1)
	if got := fetch(y); got != 470 {
		t.Fatalf("another writer's commit of 470 left offset %d", got)
	}
	commit(y, 490, writer, 3)
	if got := fetch(y); got != 490 {
		t.Fatalf("the writer's next commit of 490 left offset %d", got)
	}
}

// Generations go up across coordinators. A group's generation is in every member's
// cooperative subscription (KIP-792: of two members claiming a partition, the claim of the
// higher generation wins). A new coordinator (a leader change, or a rebuild after a failed
// commit) that numbered the group's generations from 1 again let a member of the old
// coordinator rejoin claiming its partitions under a generation higher than the current
// owner's: the assignor kept them with the stale member, which went on from its old
// position and committed offsets below those the current owner had committed (the
// MajorityMinoritySplit anomaly: commits of 389 acknowledged after commits of 430). So each
// generation is recorded on the quorum before the members learn it, and a new coordinator
// goes on above it.
func TestGenerationsGoUpAcrossCoordinators(t *testing.T) {
	h := newHarness(t, 3)
	h.groups = group.MachineConfig{InitialRebalanceDelay: -1}
	li := h.startThree()
	const grp = "g"
	join := func(via int) int32 {
		t.Helper()
		var gen int32
		eventually(t, fmt.Sprintf("a one-member generation through broker %d", via), func() error {
			ctx, cancel := ctx5()
			defer cancel()
			j, err := h.caller(via).JoinGroup(ctx, &brokerop.JoinGroupReq{Group: grp, ClientID: "c", ProtocolType: "consumer",
				Protocols: []brokerop.GroupProtocol{{Name: "range"}}, SessionTimeoutMs: 30000, RebalanceTimeoutMs: 30000})
			if err != nil {
				return err
			}
			if j.ErrorCode != 0 {
				return fmt.Errorf("join: error %d", j.ErrorCode)
			}
			// Leave again, so that the next join on this coordinator forms a new generation
			// at once (no member to wait for).
			l, err := h.caller(via).LeaveGroup(ctx, &brokerop.LeaveGroupReq{Group: grp, Members: []brokerop.LeaveGroupMember{{MemberID: j.MemberID}}})
			if err != nil || l.ErrorCode != 0 {
				return fmt.Errorf("leave: %+v, %v", l, err)
			}
			gen = j.Generation
			return nil
		})
		return gen
	}
	var last int32
	for range 3 {
		last = join(li)
	}
	// Another broker leads: its coordinator starts from the quorum.
	to := (li + 1) % 3
	h.leadOn(to)
	if got := join(to); got <= last {
		t.Fatalf("the new coordinator's first generation is %d, not above %d (the last one of the previous coordinator)", got, last)
	}
}
