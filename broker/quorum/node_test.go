package quorum

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

func TestSingleNodeBootstrap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, n1 := newFoundedCluster(t, 0, 1)
		l := c.leader(1)
		if l != n1 {
			t.Fatalf("leader %d", l.id)
		}
		var last uint64
		var want []string
		for i := range 10 {
			data := "v" + strconv.Itoa(i)
			res := c.propose(n1, data)
			idx, _ := strconv.ParseUint(strings.Split(res, ":")[0], 10, 64)
			if idx <= last {
				t.Fatalf("result index %d after %d", idx, last)
			}
			last = idx
			want = append(want, data)
		}
		if err := n1.n.ReadBarrier(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := n1.sm.list(); !slices.Equal(got, want) {
			t.Fatalf("applied %v, want %v", got, want)
		}
		st := n1.n.Status()
		if st.ID != 1 || st.Leader != 1 || !slices.Equal(st.Voters, []uint64{1}) || st.Applied < last || st.Commit < last {
			t.Fatalf("status %+v", st)
		}
		if _, err := n1.n.Propose(t.Context(), nil); err == nil {
			t.Fatal("empty proposal accepted")
		}

		n1.n.Stop()
		n1.n.Stop() // idempotent
		if _, err := n1.n.Propose(t.Context(), []byte("x")); !errors.Is(err, ErrStopped) {
			t.Fatalf("propose after stop: %v", err)
		}
		if err := n1.n.ReadBarrier(t.Context()); !errors.Is(err, ErrStopped) {
			t.Fatalf("read barrier after stop: %v", err)
		}
		if st := n1.n.Status(); !st.Stopped || st.Applied < last {
			t.Fatalf("status after stop %+v", st)
		}
		if _, ok := n1.n.Leader(); ok {
			t.Fatal("stopped node reports a leader")
		}
		c.nodes[1].n = nil
	})
}

func TestThreeNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 3)
		l := c.bootstrap(1, 2, 3)

		// Concurrent proposers each get their own entry's result; all nodes apply one order.
		var wg sync.WaitGroup
		for g := range 3 {
			wg.Go(func() {
				for i := range 10 {
					data := fmt.Sprintf("g%d-%d", g, i)
					res, err := l.n.Propose(context.Background(), []byte(data))
					if err != nil {
						t.Errorf("propose %s: %v", data, err)
						return
					}
					if s, _ := res.(string); !strings.HasSuffix(s, ":"+data) {
						t.Errorf("propose %s: got result %v", data, res)
					}
				}
			})
		}
		wg.Wait()
		want := l.sm.list()
		if len(want) != 30 {
			t.Fatalf("leader applied %d entries", len(want))
		}
		// Each proposer's entries are applied in its own order.
		for g := range 3 {
			var mine []string
			for _, e := range want {
				if strings.HasPrefix(e, fmt.Sprintf("g%d-", g)) {
					mine = append(mine, e)
				}
			}
			for i, e := range mine {
				if e != fmt.Sprintf("g%d-%d", g, i) {
					t.Fatalf("proposer %d order: %v", g, mine)
				}
			}
		}

		for id := uint64(1); id <= 3; id++ {
			f := c.nodes[id]
			if f == l {
				continue
			}
			_, err := f.n.Propose(t.Context(), []byte("x"))
			var nle *NotLeaderError
			if !errors.As(err, &nle) || nle.Leader != l.id || !errors.Is(err, ErrNotLeader) {
				t.Fatalf("follower propose: %v", err)
			}
			if err := f.n.AddLearner(t.Context(), 9, []byte("n9")); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("follower AddLearner: %v", err)
			}
			// ReadBarrier on a follower: afterwards it has applied everything committed.
			if err := f.n.ReadBarrier(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := f.sm.list(); !slices.Equal(got, want) {
				t.Fatalf("follower %d after ReadBarrier has %d entries, want %d", id, len(got), len(want))
			}
			// Every transport learnt the others' addresses from the bootstrap entries.
			peers := f.tr.Peers()
			for o := uint64(1); o <= 3; o++ {
				if o != id && string(peers[o]) != addrOf(o) {
					t.Fatalf("node %d peers %v", id, peers)
				}
			}
		}
		c.converged(want, 1, 2, 3)
		waitFor(t, "the leader sees every follower caught up", func() bool {
			st := l.n.Status()
			if !slices.Equal(st.Voters, []uint64{1, 2, 3}) || len(st.Progress) != 3 {
				t.Fatalf("leader status %+v", st)
			}
			for _, pr := range st.Progress {
				if pr.Match != st.Applied || pr.Learner || !pr.RecentActive {
					return false
				}
			}
			return true
		})
	})
}

func TestPartitionedLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 3)
		old := c.bootstrap(1, 2, 3)
		c.propose(old, "a")
		oldTerm := old.n.Status().Term

		c.net.Isolate(old.id)
		errc := make(chan error, 1)
		go func() {
			_, err := old.n.Propose(context.Background(), []byte("lost"))
			errc <- err
		}()
		var rest []uint64
		for id := uint64(1); id <= 3; id++ {
			if id != old.id {
				rest = append(rest, id)
			}
		}
		nl := c.leader(rest...)
		if nl == old {
			t.Fatal("isolated leader still leads the majority")
		}
		if st := nl.n.Status(); st.Term <= oldTerm {
			t.Fatalf("new leader term %d, old %d", st.Term, oldTerm)
		}
		c.propose(nl, "b")

		// The old leader steps down (CheckQuorum) and its pending proposal fails, retriably.
		var err error
		waitFor(t, "the isolated leader's proposal fails", func() bool {
			select {
			case err = <-errc:
				return true
			default:
				return false
			}
		})
		if !isRetriable(err) {
			t.Fatalf("isolated leader's proposal: %v", err)
		}
		waitFor(t, "the isolated leader steps down", func() bool {
			return old.n.Status().State != raft.StateLeader.String()
		})
		if _, err := old.n.Propose(t.Context(), []byte("lost2")); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("propose on the stepped-down leader: %v", err)
		}
		if got := old.sm.list(); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("isolated node applied %v", got)
		}

		c.net.Heal()
		c.leader(1, 2, 3)
		want := []string{"a", "b"}
		c.converged(want, 1, 2, 3)
		// "lost" was never committed anywhere.
		c.propose(c.leader(1, 2, 3), "c")
		c.converged(append(want, "c"), 1, 2, 3)
	})
}

func TestLearnerSnapshotAndPromotion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, n1 := newFoundedCluster(t, 4, 3)
		c.leader(1)
		want := c.proposeN(n1, "e", 20)
		if fi, _ := n1.st.FirstIndex(); fi < 10 {
			t.Fatalf("leader log not compacted: first index %d", fi)
		}

		// Learner 2 joins with an empty log: the entries it needs are compacted, so it
		// catches up by snapshot, then is promoted (voters 1 < 3).
		n2 := c.start(2, nil, nil)
		if err := n1.n.AddLearner(t.Context(), 2, []byte(addrOf(2))); err != nil {
			t.Fatal(err)
		}
		c.converged(want, 2)
		if n2.sm.restores.Load() == 0 {
			t.Fatal("learner caught up without a snapshot")
		}
		if string(n2.tr.Peers()[1]) != addrOf(1) || string(n1.tr.Peers()[2]) != addrOf(2) {
			t.Fatalf("peers: n1 %v n2 %v", n1.tr.Peers(), n2.tr.Peers())
		}
		waitFor(t, "learner 2 promoted", func() bool {
			return slices.Equal(n1.n.Status().Voters, []uint64{1, 2})
		})

		c.start(3, nil, nil)
		if err := n1.n.AddLearner(t.Context(), 3, []byte(addrOf(3))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "learner 3 promoted", func() bool {
			st := n1.n.Status()
			return slices.Equal(st.Voters, []uint64{1, 2, 3}) && len(st.Learners) == 0
		})

		// A fourth stays a learner: the voter target is 3.
		n4 := c.start(4, nil, nil)
		if err := n1.n.AddLearner(t.Context(), 4, []byte(addrOf(4))); err != nil {
			t.Fatal(err)
		}
		want = append(want, "f")
		c.propose(c.leader(1, 2, 3), "f")
		c.converged(want, 1, 2, 3, 4)
		time.Sleep(5 * time.Second)
		l := c.leader(1, 2, 3)
		if st := l.n.Status(); !slices.Equal(st.Learners, []uint64{4}) || !slices.Equal(st.Voters, []uint64{1, 2, 3}) {
			t.Fatalf("voters %v learners %v", st.Voters, st.Learners)
		}
		if _, err := n4.n.Propose(t.Context(), []byte("x")); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("learner propose: %v", err)
		}

		// Removing a voter makes room: the caught-up learner is promoted.
		victim := uint64(2)
		if l.id == 2 {
			victim = 3
		}
		if err := l.n.Remove(t.Context(), victim); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "learner 4 promoted after the removal", func() bool {
			st := l.n.Status()
			return len(st.Voters) == 3 && slices.Contains(st.Voters, 4) && !slices.Contains(st.Voters, victim) && len(st.Learners) == 0
		})
		if _, ok := l.tr.Peers()[victim]; ok {
			t.Fatalf("removed peer %d still in the leader's transport", victim)
		}
		waitFor(t, "the removed node sees its removal", func() bool { return c.nodes[victim].n.Status().Removed })
		c.stop(victim)

		var live []uint64
		for _, id := range []uint64{1, 2, 3, 4} {
			if id != victim {
				live = append(live, id)
			}
		}
		l = c.leader(live...)
		want = append(want, "g")
		c.propose(l, "g")
		c.converged(want, live...)
	})
}

func TestRestartKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 5, 3)
		l := c.bootstrap(1, 2, 3)
		want := c.proposeN(l, "a", 12)
		c.converged(want, 1, 2, 3)

		// A follower restarts on its storage (snapshot + log) and misses some entries.
		f := c.nodes[l.id%3+1]
		c.stop(f.id)
		want = append(want, c.proposeN(l, "b", 5)...)
		f2 := c.start(f.id, f.st, peersOf(1, 2, 3)) // Bootstrap ignored: storage not empty
		if f2.sm.restores.Load() == 0 {
			t.Fatal("restart did not restore the saved snapshot")
		}
		c.converged(want, f.id)

		// The whole cluster restarts.
		for id := uint64(1); id <= 3; id++ {
			c.stop(id)
		}
		for id := uint64(1); id <= 3; id++ {
			c.start(id, c.nodes[id].st, nil)
		}
		l = c.leader(1, 2, 3)
		want = append(want, "c")
		c.propose(l, "c")
		c.converged(want, 1, 2, 3)
		for id := uint64(1); id <= 3; id++ {
			peers := c.nodes[id].tr.Peers()
			if len(peers) != 2 {
				t.Fatalf("node %d knows peers %v after restart", id, peers)
			}
		}
	})
}

func TestWipedNodeRejoinsWithNewID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 8, 3)
		l := c.bootstrap(1, 2, 3)
		want := c.proposeN(l, "a", 10)
		// Node 3 loses its disk and comes back as raft id 33 at a new address.
		c.stop(3)
		n33 := c.start(33, nil, nil)
		n33.addr = "n3-new"
		l = c.leader(1, 2)
		if err := l.n.AddLearner(t.Context(), 33, []byte("n3-new")); err != nil {
			t.Fatal(err)
		}
		if err := l.n.Remove(t.Context(), 3); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "33 promoted in place of 3", func() bool {
			st := l.n.Status()
			return slices.Equal(st.Voters, []uint64{1, 2, 33}) && len(st.Learners) == 0
		})
		want = append(want, "b")
		c.propose(c.leader(1, 2, 33), "b")
		c.converged(want, 1, 2, 33)
		for _, id := range []uint64{1, 2} {
			peers := c.nodes[id].tr.Peers()
			if _, ok := peers[3]; ok || string(peers[33]) != "n3-new" {
				t.Fatalf("node %d peers %v", id, peers)
			}
		}
	})
}

func TestDroppedMessagesRecover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 3)
		l := c.bootstrap(1, 2, 3)
		c.propose(l, "a")
		// Drop every append to one follower: the other still forms a quorum.
		f := c.nodes[l.id%3+1]
		c.net.SetDrop(func(m *raftpb.Message) bool {
			return m.GetTo() == f.id && m.GetType() == raftpb.MsgApp
		})
		c.propose(l, "b")
		c.propose(l, "c")
		if got := f.sm.list(); len(got) > 1 {
			t.Fatalf("follower got dropped appends: %v", got)
		}
		c.net.SetDrop(nil)
		c.converged([]string{"a", "b", "c"}, 1, 2, 3)
	})
}

func TestStartRejectsBadConfig(t *testing.T) {
	if _, err := Start(Config{ID: 1}); err == nil {
		t.Fatal("Start without storage succeeded")
	}
	st := NewMemoryStorage()
	// A snapshot whose data is not our envelope must fail Start, not be half-restored.
	if err := st.Save(nil, []*raftpb.Entry{{Term: new(uint64(1)), Index: new(uint64(1))}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSnapshot(1, &raftpb.ConfState{Voters: []uint64{1}}, []byte("junk")); err != nil {
		t.Fatal(err)
	}
	ln := NewLocalNet()
	defer ln.Close()
	if _, err := Start(Config{ID: 1, Storage: st, Transport: ln.Transport(1), SM: &logSM{}}); err == nil {
		t.Fatal("Start accepted a malformed snapshot")
	}
}
