package quorum

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// A brand-new learner that has answered nothing (Match 0) is not promoted, even while the
// log is so short that "within promoteLag of the commit index" holds for Match 0: promoting
// it would make a voter that cannot vote, and a one-voter quorum would lose its majority.
// (The old rule, Match+promoteLag ≥ commit alone, promoted it at once here.) Once the learner
// runs and holds the configuration that added it, it is promoted.
func TestNoPromotionOfAnEmptyLearner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, n1 := newFoundedCluster(t, 0, 3)
		c.leader(1)
		if st := n1.n.Status(); st.Commit > promoteLag {
			t.Fatalf("commit index %d: the test needs a log no longer than promoteLag (%d)", st.Commit, promoteLag)
		}
		// Learner 2 is added but not running: it never answers.
		if err := n1.n.AddLearner(t.Context(), 2, []byte(addrOf(2))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second) // 50 ticks: many chances to promote
		if st := n1.n.Status(); !slices.Equal(st.Voters, []uint64{1}) || !slices.Equal(st.Learners, []uint64{2}) {
			t.Fatalf("voters %v learners %v: a learner that holds nothing was promoted", st.Voters, st.Learners)
		}
		// The quorum of one still commits alone.
		c.propose(c.leader(1), "a")

		// Started, it catches up and is promoted.
		c.start(2, nil, nil)
		waitFor(t, "learner 2 promoted once caught up", func() bool {
			return slices.Equal(n1.n.Status().Voters, []uint64{1, 2})
		})
		c.propose(c.leader(1, 2), "b")
		c.converged([]string{"a", "b"}, 1, 2)
	})
}

// LeaderWatch's channel stays open while the leader holds, and closes when the leader is
// lost (here: crashed); afterwards the watch names the new leader.
func TestLeaderWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 3)
		l := c.bootstrap(1, 2, 3)
		var f *tnode
		for id := uint64(1); id <= 3; id++ {
			if id != l.id {
				f = c.nodes[id]
			}
		}
		lead, changed := f.n.LeaderWatch()
		if lead != l.id {
			t.Fatalf("follower %d watches leader %d, want %d", f.id, lead, l.id)
		}
		c.propose(l, "a")
		time.Sleep(3 * time.Second)
		select {
		case <-changed:
			t.Fatal("the watch fired while the leader held")
		default:
		}

		c.stop(l.id)
		synctest.Wait()
		<-changed // raft's election timeout; a virtual wait
		var rest []uint64
		for id := uint64(1); id <= 3; id++ {
			if id != l.id {
				rest = append(rest, id)
			}
		}
		nl := c.leader(rest...)
		if lead, _ := f.n.LeaderWatch(); lead != nl.id {
			t.Fatalf("the watch names %d after the election, want %d", lead, nl.id)
		}

		// A stopped node's watch fires too.
		_, changed = f.n.LeaderWatch()
		c.stop(f.id)
		select {
		case <-changed:
		default:
			t.Fatal("the watch did not fire when the node stopped")
		}
	})
}

// TransferLeadership moves the leadership to a caught-up voter and returns once the old
// leader sees it there; it refuses on a follower and for a non-voter, and reports
// ErrTransferAborted when the transferee cannot be reached (the leader keeps leading).
func TestTransferLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 0, 3)
		l := c.bootstrap(1, 2, 3)
		c.propose(l, "a")
		var others []uint64
		for id := uint64(1); id <= 3; id++ {
			if id != l.id {
				others = append(others, id)
			}
		}
		to := others[0]

		var nle *NotLeaderError
		if err := c.nodes[to].n.TransferLeadership(t.Context(), others[1]); !errors.As(err, &nle) || nle.Leader != l.id {
			t.Fatalf("transfer on a follower: %v, want NotLeaderError naming %d", err, l.id)
		}
		if err := l.n.TransferLeadership(t.Context(), 9); err == nil {
			t.Fatal("transfer to a non-member succeeded")
		}
		if err := l.n.TransferLeadership(t.Context(), l.id); err != nil {
			t.Fatalf("transfer to itself: %v", err)
		}

		if err := l.n.TransferLeadership(t.Context(), to); err != nil {
			t.Fatalf("transfer to %d: %v", to, err)
		}
		nl := c.leader(1, 2, 3)
		if nl.id != to {
			t.Fatalf("leader %d after the transfer, want %d", nl.id, to)
		}
		c.propose(nl, "b")

		// A transferee cut off from the leader never catches up: raft gives up after an
		// election timeout and the leader still leads.
		back := l.id
		c.net.Cut(nl.id, back)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := nl.n.TransferLeadership(ctx, back); !errors.Is(err, ErrTransferAborted) {
			t.Fatalf("transfer to a cut-off voter: %v, want ErrTransferAborted", err)
		}
		if lead, _ := nl.n.Leader(); lead != nl.id {
			t.Fatalf("leader %d after the aborted transfer, want %d", lead, nl.id)
		}
		c.net.Heal()
		c.propose(c.leader(1, 2, 3), "c")
		c.converged([]string{"a", "b", "c"}, 1, 2, 3)
	})
}
