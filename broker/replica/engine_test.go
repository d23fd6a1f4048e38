package replica

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

func TestNewRejectsBadConfig(t *testing.T) {
	ln := NewLocalNet()
	defer ln.Close()
	for _, cfg := range []Config{
		{Transport: ln.Endpoint(1), Sync: func() error { return nil }},
		{ID: 1, Sync: func() error { return nil }},
		{ID: 1, Transport: ln.Endpoint(1)},
	} {
		if e, err := New(cfg); err == nil {
			e.Stop()
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestThreeReplicasProposeCommit: a 3-replica group elects one leader; the leader's
// proposals are durable when Propose returns, committed when Committed yields, and applied in
// the same order at the same indexes on every replica; a follower refuses with the leader's id.
func TestThreeReplicasProposeCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		var f uint64 = 1
		if f == l {
			f = 2
		}
		_, err := c.nodes[f].eng.Propose(context.Background(), g, []byte("x"))
		nl, ok := isNotLeader(err)
		if !ok || nl.Leader != l || nl.Term == 0 {
			t.Fatalf("follower Propose = %v, want *NotLeaderError{Leader: %d}", err, l)
		}
		if _, err := c.nodes[l].eng.Propose(context.Background(), gid(99), []byte("x")); !errors.Is(err, ErrUnknownGroup) {
			t.Fatalf("Propose to an unknown group = %v", err)
		}
		if _, err := c.nodes[l].eng.Propose(context.Background(), g, nil); err == nil {
			t.Fatal("empty proposal accepted")
		}

		var want []string
		var last uint64
		for i := range 10 {
			d := fmt.Sprintf("rec-%d", i)
			p := c.propose(l, g, d)
			if p.Index <= last || p.Term == 0 {
				t.Fatalf("proposal %d: index %d term %d after index %d", i, p.Index, p.Term, last)
			}
			last = p.Index
			want = append(want, d)
		}
		st, ok := c.nodes[l].eng.Status(g)
		if !ok || st.Leader != l || st.Commit < last || len(st.Progress) != 3 || !slices.Equal(st.Voters, []uint64{1, 2, 3}) {
			t.Fatalf("leader status %+v", st)
		}
		for _, id := range c.voters {
			c.waitApplied(id, g, last)
			if _, got := c.nodes[id].sms[g].applied(); !slices.Equal(got, want) {
				t.Errorf("node %d applied %q, want %q", id, got, want)
			}
			if c.nodes[id].sms[g].order {
				t.Errorf("node %d: Apply out of order", id)
			}
			if s := c.nodes[id].eng.Stats(); s.Syncs > s.Rounds {
				t.Errorf("node %d: %d syncs in %d rounds", id, s.Syncs, s.Rounds)
			}
		}
		// Every replica bootstrapped the same membership entries: the first data entry has
		// the same index everywhere (offsets match).
		if st.Voters == nil || c.nodes[f].stores[g] == nil {
			t.Fatal("no storage")
		}
		for _, id := range c.voters {
			ents, err := c.nodes[id].stores[g].Entries(1, 4, 1<<20)
			if err != nil || len(ents) != 3 {
				t.Fatalf("node %d: bootstrap entries %v %v", id, ents, err)
			}
			for i, e := range ents {
				if e.GetType() != raftpb.EntryConfChange || e.GetTerm() != 1 || e.GetIndex() != uint64(i+1) {
					t.Errorf("node %d: bootstrap entry %d = %v", id, i, e)
				}
			}
		}
	})
}

// TestLeaderFailover: when the leader stops, the others elect a new one that accepts
// proposals; the old leader restarts on its storage, catches up and applies the same log.
func TestLeaderFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		want := []string{"a", "b"}
		for _, d := range want {
			c.propose(l, g, d)
		}
		c.stop(l)
		var rest []uint64
		for _, id := range c.voters {
			if id != l {
				rest = append(rest, id)
			}
		}
		l2 := c.leader(g, rest...)
		if l2 == l {
			t.Fatalf("stopped node %d still leads", l)
		}
		p := c.propose(l2, g, "c")
		want = append(want, "c")
		c.restart(l)
		c.waitApplied(l, g, p.Index)
		for _, id := range c.voters {
			c.waitApplied(id, g, p.Index)
			if _, got := c.nodes[id].sms[g].applied(); !slices.Equal(got, want) {
				t.Errorf("node %d applied %q, want %q", id, got, want)
			}
		}
		if got := c.leader(g); got == 0 {
			t.Fatal("no leader after restart")
		}
	})
}

// TestPartitionedLeaderNeverCommits: a leader cut off from the others still makes its
// proposals durable locally, but they never report committed: they fail with ErrNotLeader
// once it steps down (CheckQuorum), a new leader takes over on the majority side, and after
// the heal the old leader's uncommitted entries are gone everywhere.
func TestPartitionedLeaderNeverCommits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		c.propose(l, g, "before")
		c.net.Isolate(l)
		var lost []*Proposal
		for i := range 3 {
			p, err := c.nodes[l].eng.Propose(context.Background(), g, fmt.Appendf(nil, "lost-%d", i))
			if err != nil {
				t.Fatalf("isolated leader: Propose: %v", err)
			}
			lost = append(lost, p)
		}
		var rest []uint64
		for _, id := range c.voters {
			if id != l {
				rest = append(rest, id)
			}
		}
		l2 := c.leader(g, rest...)
		p2 := c.propose(l2, g, "after")
		for i, p := range lost {
			err := <-p.Committed
			if _, ok := isNotLeader(err); !ok {
				t.Fatalf("lost proposal %d: Committed = %v, want ErrNotLeader", i, err)
			}
		}
		c.net.Heal()
		for _, id := range c.voters {
			c.waitApplied(id, g, p2.Index)
			if _, got := c.nodes[id].sms[g].applied(); !slices.Equal(got, []string{"before", "after"}) {
				t.Errorf("node %d applied %q", id, got)
			}
		}
	})
}

// TestManyGroupsOneSyncPerRound: with 3 replicas × 200 groups all led by one node, 200
// proposals queued while the node is inside Sync are made durable together by one more
// Sync (one fsync for the round, whatever the number of groups), then all commit.
func TestManyGroupsOneSyncPerRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const groups = 200
		c := newCluster(t, 3, groups)
		for _, g := range c.groups {
			if l := c.leader(g); l != 1 {
				c.nodes[l].eng.TransferLeader(g, 1)
			}
		}
		for _, g := range c.groups {
			c.transfer(g, 1)
		}
		n := c.nodes[1]
		gate := make(chan struct{})
		n.setSyncHook(func() error { <-gate; return nil })
		first := make(chan *Proposal, 1)
		go func() {
			p, _ := n.eng.Propose(context.Background(), c.groups[0], []byte("first"))
			first <- p
		}()
		synctest.Wait() // the engine is in Sync for "first"
		before := n.syncCount()
		res := make(chan *Proposal, groups)
		for _, g := range c.groups {
			go func() {
				p, err := n.eng.Propose(context.Background(), g, []byte("many"))
				if err != nil {
					t.Errorf("group %v: %v", g, err)
				}
				res <- p
			}()
		}
		synctest.Wait() // all 200 queued behind the blocked round
		roundsBefore := n.eng.Stats().Rounds
		n.setSyncHook(nil)
		close(gate)
		var ps []*Proposal
		for range groups {
			ps = append(ps, <-res)
		}
		if got := n.syncCount() - before; got != 1 {
			t.Errorf("%d proposals in %d groups took %d more syncs, want 1", groups, groups, got)
		}
		if r := n.eng.Stats().Rounds - roundsBefore; r > 2 {
			// the round of "first" finishing, then one round for the 200 (rounds that wrote
			// nothing do not count)
			t.Logf("%d rounds", r)
		}
		if p := <-first; p == nil || <-p.Committed != nil {
			t.Error("first proposal failed")
		}
		for _, p := range ps {
			if p == nil {
				continue
			}
			if err := <-p.Committed; err != nil {
				t.Error(err)
			}
		}
		for id, tn := range c.nodes {
			s := tn.eng.Stats()
			if s.Syncs > s.Rounds || s.Readies < uint64(groups) {
				t.Errorf("node %d: stats %+v", id, s)
			}
			// At most two Transport.Sends per round (what may leave before the round's
			// writes are durable, then the acknowledgements), each carrying every group's
			// messages.
			if sends := uint64(tn.ep.Sends()); sends > 2*s.Rounds || s.Sent < 2*sends {
				t.Errorf("node %d: %d Send calls for %d messages in %d rounds", id, sends, s.Sent, s.Rounds)
			}
		}
	})
}

// TestVotesForAGroupNotYetAddedAreHeld: a new group's replicas add it moments apart. A
// candidate's votes reaching a replica that has not added the group yet are held for it
// (up to an election timeout), so the first election completes as soon as the others add
// the group, not one more election timeout later.
func TestVotesForAGroupNotYetAddedAreHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, 0)
		g := gid(7)
		c.groups = []GroupID{g}
		c.addGroup(1, g, c.voters)
		c.nodes[1].eng.Campaign(g)
		synctest.Wait() // the (pre)votes went out to nodes that do not run g yet
		time.Sleep(2 * tick)
		c.addGroup(2, g, c.voters)
		c.addGroup(3, g, c.voters)
		c.leadsWithin3Ticks(1, g, "node 1 campaigned before the others added the group and is not leader 3 ticks after they did: its votes were lost")
	})
}

// TestMessagesForARemovedGroupAreNotHeld: a message that reaches a replica just after its
// group was removed there (sent by a leader that did not know yet) is dropped, not held for
// the group: held, it would reach the group if it is added back moments later on new, empty
// storage (a replica moved away and back), and a stale heartbeat carrying a commit index past
// that empty log makes raft panic. Messages for a group never run here are still held
// (TestVotesForAGroupNotYetAddedAreHeld).
func TestMessagesForARemovedGroupAreNotHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, 0)
		g := gid(9)
		c.addGroup(3, g, c.voters) // only node 3 runs g: nothing else talks to it
		synctest.Wait()
		n := c.nodes[3]
		if err := n.eng.RemoveGroup(g); err != nil {
			t.Fatal(err)
		}
		delete(n.stores, g) // added back below on new, empty storage
		dropped := n.eng.Stats().Dropped
		// The leader's heartbeat of before the removal: commit 7, far past an empty log.
		n.eng.Step(GroupMessage{Group: g, Msg: &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(1)), To: new(uint64(3)), Term: new(uint64(5)), Commit: new(uint64(7))}})
		synctest.Wait()
		if got := n.eng.Stats().Dropped; got != dropped+1 {
			t.Fatalf("dropped %d messages after the removal, want 1 (the stale heartbeat)", got-dropped)
		}
		time.Sleep(2 * tick)
		c.addGroup(3, g, nil) // added back as a new, empty replica, within an election timeout
		synctest.Wait()
		time.Sleep(2 * tick)
		synctest.Wait()
		if err := n.eng.Err(); err != nil {
			t.Fatalf("engine stopped: %v", err)
		}
		if st, ok := n.eng.Status(g); !ok || st.Commit != 0 {
			t.Fatalf("re-added group: status %+v (ok %v), want running with commit 0", st, ok)
		}
	})
}

// TestNewGroupFirstVoterCampaignsAtOnce: a new group's first voter (the preferred leader)
// campaigns as soon as its bootstrap membership is applied, so the group is led within a
// few message rounds, not after an election timeout (10–20 ticks).
func TestNewGroupFirstVoterCampaignsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, 0)
		g := gid(8)
		c.groups = []GroupID{g}
		voters := []uint64{2, 1, 3}
		for _, id := range []uint64{1, 2, 3} {
			c.addGroup(id, g, voters)
		}
		c.leadsWithin3Ticks(2, g, "first voter 2 not leader 3 ticks after the group was added")
	})
}

// TestLeaderAppendsLeaveBeforeItsSync: a leader's appends reach the followers while the
// leader is still inside Sync for them (raft counts the leader's own copy only once that
// Sync returns), but a follower acknowledges an append only after its own Sync: with one
// follower's Sync blocked, only the other one's acknowledgement is sent.
func TestLeaderAppendsLeaveBeforeItsSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g, l := newLedCluster(t)
		warm := c.propose(l, g, "warm")
		var fs []uint64
		for _, id := range c.voters {
			if id != l {
				fs = append(fs, id)
				c.waitApplied(id, g, warm.Index) // no follower still inside a round for it
			}
		}
		synctest.Wait()
		type ack struct{ from, index uint64 }
		var mu sync.Mutex
		var acks []ack
		c.net.SetDrop(func(m GroupMessage) bool {
			if m.Msg.GetType() == raftpb.MsgAppResp && !m.Msg.GetReject() {
				mu.Lock()
				acks = append(acks, ack{m.Msg.GetFrom(), m.Msg.GetIndex()})
				mu.Unlock()
			}
			return false
		})
		leaderGate, followerGate := make(chan struct{}), make(chan struct{})
		c.nodes[l].setSyncHook(func() error { <-leaderGate; return nil })
		c.nodes[fs[0]].setSyncHook(func() error { <-followerGate; return nil })
		res := make(chan *Proposal, 1)
		go func() {
			p, err := c.nodes[l].eng.Propose(context.Background(), g, []byte("x"))
			if err != nil {
				t.Errorf("Propose: %v", err)
			}
			res <- p
		}()
		synctest.Wait() // the leader and follower 0 inside Sync, follower 1 done
		idx, _ := c.nodes[l].stores[g].LastIndex()
		for _, f := range fs {
			st := c.nodes[f].stores[g]
			if last, _ := st.LastIndex(); last < idx {
				t.Errorf("follower %d stored up to %d while the leader syncs, want %d", f, last, idx)
				continue
			}
			ents, err := st.Entries(idx, idx+1, math.MaxUint64)
			if err != nil || len(ents) != 1 || string(ents[0].GetData()) != "x" {
				t.Errorf("follower %d stored %v (%v) at %d while the leader syncs, want x", f, ents, err, idx)
			}
		}
		if _, ok := poll(res); ok {
			t.Fatal("Propose returned before the leader's Sync did")
		}
		mu.Lock()
		acked := map[uint64]bool{}
		for _, a := range acks {
			if a.index >= idx {
				acked[a.from] = true
			}
		}
		mu.Unlock()
		if !acked[fs[1]] || acked[fs[0]] {
			t.Errorf("acknowledgements of entry %d from %v, want from %d only", idx, acked, fs[1])
		}
		close(leaderGate)
		p := <-res
		if p == nil || p.Index != idx {
			t.Fatalf("proposal %+v, want index %d", p, idx)
		}
		if err := <-p.Committed; err != nil { // the leader and follower 1: a majority
			t.Fatal(err)
		}
		close(followerGate)
		c.waitApplied(fs[0], g, idx)
	})
}

// leadsWithin3Ticks fails the test with msg (and node id's status) unless node id leads g,
// in its own view, within 3 ticks.
func (c *cluster) leadsWithin3Ticks(id uint64, g GroupID, msg string) {
	c.t.Helper()
	for range 3 {
		synctest.Wait()
		if st, ok := c.nodes[id].eng.Status(g); ok && st.Leader == id {
			return
		}
		time.Sleep(tick)
	}
	st, _ := c.nodes[id].eng.Status(g)
	c.t.Fatalf("%s (status %+v)", msg, st)
}
