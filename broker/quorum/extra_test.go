package quorum

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"go.etcd.io/raft/v3/raftpb"
)

// TestInjectedClockDrivesTicks: with a fake clock nothing happens until it moves.
func TestInjectedClockDrivesTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		c := newCluster(t, 0, 0)
		c.clock = fc
		// Two voters bootstrapped: an election needs ticks (a single voter would also
		// campaign on its own only after an election timeout).
		nodes := []*Node{c.start(1, nil, peersOf(1, 2)).n, c.start(2, nil, peersOf(1, 2)).n}
		time.Sleep(time.Minute) // virtual wall time passes; the fake clock does not
		for _, n := range nodes {
			if _, ok := n.Leader(); ok {
				t.Fatal("a leader was elected without clock ticks")
			}
		}
		waitFor(t, "a leader once the fake clock ticks", func() bool {
			fc.Advance(100 * time.Millisecond)
			l1, ok1 := nodes[0].Leader()
			l2, ok2 := nodes[1].Leader()
			return ok1 && ok2 && l1 == l2
		})
	})
}

func TestReadBarrierFailsWhenLeaderStepsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 3)
		l := c.bootstrap(1, 2, 3)
		c.propose(l, "a")
		c.net.Isolate(l.id)
		err := l.n.ReadBarrier(context.Background()) // returns once CheckQuorum deposes it
		if !errors.Is(err, ErrLeaderChanged) {
			t.Fatalf("read barrier on an isolated leader: %v", err)
		}
		// With no leader known, a read barrier is refused at once.
		waitFor(t, "the isolated node forgets the leader", func() bool {
			_, ok := l.n.Leader()
			return !ok
		})
		if err := l.n.ReadBarrier(t.Context()); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("read barrier without a leader: %v", err)
		}
	})
}

func TestProposeContextCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 3)
		l := c.bootstrap(1, 2, 3)
		// Followers never get the entry (dropped appends), so it cannot commit; the caller's
		// deadline ends the wait.
		c.net.SetDrop(func(m *raftpb.Message) bool { return m.GetType() == raftpb.MsgApp })
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		if _, err := l.n.Propose(ctx, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("propose: %v", err)
		}
		c.net.SetDrop(nil)
		// The proposal itself was not withdrawn: it commits once appends flow again.
		c.converged([]string{"x"}, 1, 2, 3)
	})
}

// failingStorage fails Save once armed.
type failingStorage struct {
	*MemoryStorage
	fail atomic.Bool
}

var errDiskFull = errors.New("disk full")

func (s *failingStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	if s.fail.Load() {
		return errDiskFull
	}
	return s.MemoryStorage.Save(hs, ents, snap)
}

func TestStorageFailureStopsNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 1)
		st := &failingStorage{MemoryStorage: NewMemoryStorage()}
		tn := c.start(1, st, peersOf(1))
		n, sm := tn.n, tn.sm
		c.leader(1)
		if _, err := n.Propose(t.Context(), []byte("a")); err != nil {
			t.Fatal(err)
		}
		st.fail.Store(true)
		_, err := n.Propose(t.Context(), []byte("b"))
		if !errors.Is(err, ErrStopped) || !errors.Is(err, errDiskFull) {
			t.Fatalf("propose with a failing disk: %v", err)
		}
		<-n.Done()
		if !errors.Is(n.Err(), errDiskFull) {
			t.Fatalf("Err %v", n.Err())
		}
		if got := sm.list(); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("applied %v past a failed save", got)
		}
	})
}

// TestSnapshotSendFailureRetried: a learner whose first snapshots are lost still catches up
// (the transport reports the failure, raft sends again).
func TestSnapshotSendFailureRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, n1 := newFoundedCluster(t, 3, 1)
		c.leader(1)
		want := []string{"a", "b", "c", "d", "e"}
		for _, d := range want {
			c.propose(n1, d)
		}
		var dropped atomic.Int32
		c.net.SetDrop(func(m *raftpb.Message) bool {
			if m.GetType() == raftpb.MsgSnap && dropped.Load() < 3 {
				dropped.Add(1)
				return true
			}
			return false
		})
		n2 := c.start(2, nil, nil)
		if err := n1.n.AddLearner(t.Context(), 2, []byte(addrOf(2))); err != nil {
			t.Fatal(err)
		}
		c.converged(want, 2)
		if dropped.Load() != 3 || n2.sm.restores.Load() == 0 {
			t.Fatalf("dropped %d snapshots, restored %d", dropped.Load(), n2.sm.restores.Load())
		}
		// Voters is 1: the learner stays a learner.
		if st := n1.n.Status(); !slices.Equal(st.Learners, []uint64{2}) || !st.Progress[2].Learner {
			t.Fatalf("status %+v", st)
		}
	})
}

func TestStepRejectsMisroutedAndLocalMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, n1 := newFoundedCluster(t, 0, 1)
		if err := n1.n.Step(t.Context(), &raftpb.Message{Type: raftpb.MsgApp.Enum(), To: new(uint64(2)), From: new(uint64(3))}); err == nil {
			t.Fatal("accepted a message for another node")
		}
		if err := n1.n.Step(t.Context(), &raftpb.Message{Type: raftpb.MsgHup.Enum(), To: new(uint64(1))}); err == nil {
			t.Fatal("accepted a local message from the network")
		}
		c.leader(1)
		c.propose(n1, "a")
	})
}

func TestMembershipRequestsAreIdempotent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 3)
		l := c.bootstrap(1, 2, 3)
		ctx := t.Context()
		c.start(4, nil, nil)
		for range 2 {
			if err := l.n.AddLearner(ctx, 4, []byte("n4")); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.n.Promote(ctx, 99); err == nil {
			t.Fatal("promoted a non-member")
		}
		if err := l.n.AddLearner(ctx, 5, nil); err == nil {
			t.Fatal("added a learner without an address")
		}
		// Re-adding a voter keeps it a voter and carries its new address everywhere.
		other := l.id%3 + 1
		if err := l.n.AddLearner(ctx, other, []byte("moved")); err != nil {
			t.Fatal(err)
		}
		for id := uint64(1); id <= 4; id++ {
			waitFor(t, "the new address reaches every node", func() bool {
				return id == other || string(c.nodes[id].tr.Peers()[other]) == "moved"
			})
		}
		st := l.n.Status()
		if !slices.Equal(st.Voters, []uint64{1, 2, 3}) || !slices.Equal(st.Learners, []uint64{4}) {
			t.Fatalf("voters %v learners %v", st.Voters, st.Learners)
		}
		if err := l.n.Promote(ctx, other); err != nil {
			t.Fatalf("promote a voter: %v", err)
		}
		for range 2 {
			if err := l.n.Remove(ctx, 4); err != nil {
				t.Fatal(err)
			}
		}
		if st := l.n.Status(); len(st.Learners) != 0 {
			t.Fatalf("learners %v after removal", st.Learners)
		}
		c.propose(l, "a")
		c.converged([]string{"a"}, 1, 2, 3)
	})
}
