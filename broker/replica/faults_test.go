package replica

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"

	"go.etcd.io/raft/v3/raftpb"
)

// others returns the voters of c other than id.
func (c *cluster) others(id uint64) []uint64 {
	var r []uint64
	for _, v := range c.voters {
		if v != id {
			r = append(r, v)
		}
	}
	return r
}

// TestCommitNeedsMajorityDurable: while neither follower's Sync returns, the leader's
// proposal is durable on the leader only (Propose returns) and is not committed; once one
// follower's Sync returns it commits (leader + that follower are a majority).
func TestCommitNeedsMajorityDurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		c.propose(l, g, "warm")
		fs := c.others(l)
		gates := map[uint64]chan struct{}{}
		for _, f := range fs {
			gate := make(chan struct{})
			gates[f] = gate
			c.nodes[f].setSyncHook(func() error { <-gate; return nil })
		}
		p, err := c.nodes[l].eng.Propose(context.Background(), g, []byte("needs-majority"))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // both followers are stuck in Sync with the entry written, not durable
		if err, ok := poll(p.Committed); ok {
			t.Fatalf("committed (%v) with no follower durable", err)
		}
		st, _ := c.nodes[l].eng.Status(g)
		if st.Commit >= p.Index {
			t.Fatalf("leader commit %d reached %d with no follower durable", st.Commit, p.Index)
		}
		c.nodes[fs[0]].setSyncHook(nil)
		close(gates[fs[0]])
		if err := <-p.Committed; err != nil {
			t.Fatalf("after one follower synced: %v", err)
		}
		c.nodes[fs[1]].setSyncHook(nil)
		close(gates[fs[1]])
		for _, id := range c.voters {
			c.waitApplied(id, g, p.Index)
		}
	})
}

// TestSyncFailureStopsEngine: a leader whose Sync fails acknowledges nothing of that round
// (Propose fails: outcome unknown) and stops with the error. Its entry went to the followers
// while it synced (a leader's appends leave before its own Sync), so the next leader, whose
// majority holds it, commits it: the outcome the error leaves open.
func TestSyncFailureStopsEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		c.propose(l, g, "ok")
		disk := errors.New("disk on fire")
		c.nodes[l].setSyncHook(func() error { return disk })
		_, err := c.nodes[l].eng.Propose(context.Background(), g, []byte("doomed"))
		if !errors.Is(err, ErrStopped) || !errors.Is(err, disk) || !errors.Is(err, ErrNotLeader) {
			t.Fatalf("Propose with a failing Sync = %v", err)
		}
		<-c.nodes[l].eng.Done()
		if !errors.Is(c.nodes[l].eng.Err(), disk) {
			t.Fatalf("Err = %v", c.nodes[l].eng.Err())
		}
		if _, err := c.nodes[l].eng.Propose(context.Background(), g, []byte("x")); !errors.Is(err, ErrStopped) {
			t.Fatalf("Propose after the failure = %v", err)
		}
		if _, ok := c.nodes[l].eng.Status(g); ok {
			t.Fatal("Status of a stopped engine")
		}
		c.stop(l)
		l2 := c.leader(g, c.others(l)...)
		p := c.propose(l2, g, "next")
		for _, id := range c.others(l) {
			c.waitApplied(id, g, p.Index)
			if _, got := c.nodes[id].sms[g].applied(); !slices.Equal(got, []string{"ok", "doomed", "next"}) {
				t.Errorf("node %d applied %q", id, got)
			}
		}
	})
}

// TestStorageWriteFailureStopsEngine: a failing Storage write stops the engine like Sync.
func TestStorageWriteFailureStopsEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		bad := errors.New("bad sector")
		c.nodes[l].stores[g].FailWrites(bad)
		if _, err := c.nodes[l].eng.Propose(context.Background(), g, []byte("x")); !errors.Is(err, bad) {
			t.Fatalf("Propose = %v", err)
		}
		<-c.nodes[l].eng.Done()
		c.nodes[l].stores[g].FailWrites(nil)
	})
}

// TestStopAndRemoveFailPending: proposals waiting for commit fail with ErrNotLeader when the
// group is removed or the engine stopped.
func TestStopAndRemoveFailPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, 2)
		g0, g1 := c.groups[0], c.groups[1]
		l0 := c.leader(g0)
		c.transfer(g1, l0)
		c.net.Isolate(l0) // nothing commits from now on
		p0, err := c.nodes[l0].eng.Propose(context.Background(), g0, []byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		p1, err := c.nodes[l0].eng.Propose(context.Background(), g1, []byte("b"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.nodes[l0].eng.RemoveGroup(g0); err != nil {
			t.Fatal(err)
		}
		if _, ok := isNotLeader(<-p0.Committed); !ok {
			t.Fatal("RemoveGroup did not fail the pending proposal with ErrNotLeader")
		}
		if err := c.nodes[l0].eng.RemoveGroup(g0); !errors.Is(err, ErrUnknownGroup) {
			t.Fatalf("second RemoveGroup = %v", err)
		}
		c.stop(l0)
		err = <-p1.Committed
		if _, ok := isNotLeader(err); !ok || !errors.Is(err, ErrStopped) {
			t.Fatalf("Stop: pending proposal got %v", err)
		}
		c.net.Heal()
	})
}

// TestTransferLeader moves leadership to a chosen replica.
func TestTransferLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		to := c.others(l)[1]
		c.propose(l, g, "a")
		// A proposal right behind the transfer request is refused, naming the transferee (or,
		// if the handover already happened, the new leader, or no one yet).
		c.nodes[l].eng.TransferLeader(g, to)
		_, err := c.nodes[l].eng.Propose(context.Background(), g, []byte("during"))
		if nl, ok := isNotLeader(err); !ok || nl.Leader != to && nl.Leader != 0 {
			t.Fatalf("Propose during a transfer: %v", err)
		}
		c.transfer(g, to)
		p := c.propose(to, g, "b")
		for _, id := range c.voters {
			c.waitApplied(id, g, p.Index)
			if sm := c.nodes[id].sms[g]; sm.lead != to {
				t.Errorf("node %d: LeaderChanged last said %d, want %d", id, sm.lead, to)
			}
		}
	})
}

// TestLearnerAddAndPromote: a fourth broker joins a group with nil voters, is added as a
// learner by ChangeConf, catches up from a snapshot (the leader compacted its log) and is
// promoted to voter; then it can lead. Without compaction it catches up from the log.
func TestLearnerAddAndPromote(t *testing.T) {
	for _, compact := range []bool{true, false} {
		t.Run(fmt.Sprintf("compact=%v", compact), func(t *testing.T) { testLearner(t, compact) })
	}
}

func testLearner(t *testing.T, compact bool) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		var last *Proposal
		for _, d := range []string{"a", "b", "c"} {
			last = c.propose(l, g, d)
		}
		// Compact the leader's log: the learner can only catch up by snapshot.
		c.waitApplied(l, g, last.Index)
		wantApplied, wantRestores := []string{"snap:abc", "d"}, 1
		if compact {
			if err := c.nodes[l].stores[g].Compact(last.Index, []byte("abc")); err != nil {
				t.Fatal(err)
			}
		} else {
			wantApplied, wantRestores = []string{"a", "b", "c", "d"}, 0
		}
		const newID = 4
		c.nodes[newID] = &tnode{id: newID, ep: c.net.Endpoint(newID), stores: map[GroupID]*MemoryStorage{}, sms: map[GroupID]*testSM{}}
		c.start(newID)
		c.addGroup(newID, g, nil)
		if _, ok := c.nodes[newID].eng.Status(g); !ok {
			t.Fatal("new replica does not run the group")
		}
		ctx := context.Background()
		add := func(typ raftpb.ConfChangeType) error {
			return c.nodes[l].eng.ChangeConf(ctx, g, &raftpb.ConfChangeV2{
				Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(uint64(newID))}}})
		}
		if err := c.nodes[c.others(l)[0]].eng.ChangeConf(ctx, g, &raftpb.ConfChangeV2{}); err == nil {
			t.Fatal("ChangeConf on a follower accepted")
		}
		if err := add(raftpb.ConfChangeAddLearnerNode); err != nil {
			t.Fatal(err)
		}
		st, _ := c.nodes[l].eng.Status(g)
		if !slices.Equal(st.Learners, []uint64{newID}) || len(st.Voters) != 3 {
			t.Fatalf("after AddLearner: %+v", st)
		}
		p := c.propose(l, g, "d")
		c.waitApplied(newID, g, p.Index)
		sm := c.nodes[newID].sms[g]
		if _, got := sm.applied(); sm.restores != wantRestores || !slices.Equal(got, wantApplied) {
			t.Fatalf("learner: %d restores, applied %q", sm.restores, got)
		}
		if err := add(raftpb.ConfChangeAddNode); err != nil {
			t.Fatal(err)
		}
		st, _ = c.nodes[l].eng.Status(g)
		if !slices.Equal(st.Voters, []uint64{1, 2, 3, newID}) || len(st.Learners) != 0 {
			t.Fatalf("after promotion: %+v", st)
		}
		c.voters = append(c.voters, newID)
		c.transfer(g, newID)
		p = c.propose(newID, g, "e")
		for _, id := range c.voters {
			c.waitApplied(id, g, p.Index)
		}
		// The new voter's storage saw the membership through the snapshot and the changes.
		if compact {
			_, cs, _ := c.nodes[newID].stores[g].InitialState()
			if !slices.Equal(cs.GetVoters(), []uint64{1, 2, 3}) || !slices.Equal(cs.GetLearners(), []uint64{newID}) {
				t.Errorf("learner's snapshot membership %v", cs)
			}
		}
		// It restarts on its storage and still follows.
		c.stop(newID)
		c.restart(newID)
		p = c.propose(c.leader(g), g, "f")
		c.waitApplied(newID, g, p.Index)
	})
}

// TestRestartAll: every replica stops and restarts on its storage; the groups elect leaders
// again and keep their logs (committed entries are applied again from the start).
func TestRestartAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, 4)
		want := map[GroupID][]string{}
		for _, g := range c.groups {
			l := c.leader(g)
			for _, d := range []string{"x", "y"} {
				c.propose(l, g, d)
				want[g] = append(want[g], d)
			}
		}
		for _, id := range c.voters {
			c.stop(id)
		}
		for _, id := range c.voters {
			c.restart(id)
		}
		for _, g := range c.groups {
			l := c.leader(g)
			p := c.propose(l, g, "z")
			want[g] = append(want[g], "z")
			for _, id := range c.voters {
				c.waitApplied(id, g, p.Index)
				if _, got := c.nodes[id].sms[g].applied(); !slices.Equal(got, want[g]) {
					t.Errorf("node %d group %v applied %q, want %q", id, g, got, want[g])
				}
			}
		}
	})
}

// TestRestartAfterCompaction: a replica snapshots its group at the applied index (AtApplied
// gives the index and the membership there), compacts its log, restarts: the state machine
// is restored from the snapshot and gets only the entries after it, and the replica still
// votes and follows with the right membership.
func TestRestartAfterCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		var p *Proposal
		for _, d := range []string{"a", "b", "c"} {
			p = c.propose(l, g, d)
		}
		x := c.others(l)[0]
		c.waitApplied(x, g, p.Index)
		st := c.nodes[x].stores[g]
		var at uint64
		err := c.nodes[x].eng.AtApplied(context.Background(), g, func(applied uint64, cs *raftpb.ConfState) error {
			at = applied
			if !slices.Equal(cs.GetVoters(), []uint64{1, 2, 3}) {
				t.Errorf("membership at %d: %v", applied, cs)
			}
			if _, err := st.CreateSnapshot(applied, cs, []byte("abc")); err != nil {
				return err
			}
			return st.MemoryStorage.Compact(applied)
		})
		if err != nil || at != p.Index {
			t.Fatalf("AtApplied: applied %d, err %v; want %d", at, err, p.Index)
		}
		if err := c.nodes[x].eng.AtApplied(context.Background(), gid(9), nil); !errors.Is(err, ErrUnknownGroup) {
			t.Fatalf("AtApplied of an unknown group: %v", err)
		}
		c.stop(x)
		c.restart(x)
		p = c.propose(c.leader(g), g, "d")
		c.waitApplied(x, g, p.Index)
		sm := c.nodes[x].sms[g]
		if _, got := sm.applied(); sm.restores != 1 || !slices.Equal(got, []string{"snap:abc", "d"}) {
			t.Fatalf("after restart: %d restores, applied %q", sm.restores, got)
		}
		// It can lead: the membership survived the compaction.
		c.transfer(g, x)
		p = c.propose(x, g, "e")
		for _, id := range c.voters {
			c.waitApplied(id, g, p.Index)
		}
	})
}
