package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/meshkafka/meshkafka/broker/replica"
)

// status is a leader's raft view: voters, learners, commit, and per replica its match
// (every listed replica recently active unless in idle).
func status(leader uint64, voters, learners []uint64, commit uint64, match map[uint64]uint64, idle ...uint64) replica.GroupStatus {
	st := replica.GroupStatus{Leader: leader, Voters: voters, Learners: learners, Commit: commit, Progress: map[uint64]replica.Progress{}}
	for id, m := range match {
		active := true
		for _, i := range idle {
			active = active && i != id
		}
		st.Progress[id] = replica.Progress{Match: m, RecentActive: active}
	}
	return st
}

// A move from {1,2,3} to {4,2,3} as the leader walks it, one membership change at a time:
// learner first, promotion only once caught up, the old replica removed last, and the
// leader handing over when it is the one leaving.
func TestNextMoveStep(t *testing.T) {
	all := map[uint64]uint64{1: 1000, 2: 1000, 3: 1000, 4: 1000}
	for _, c := range []struct {
		name string
		st   replica.GroupStatus
		self uint64
		tgt  []uint64
		want string
	}{
		{"a follower does nothing", status(2, []uint64{1, 2, 3}, nil, 1000, all), 1, []uint64{4, 2, 3}, "wait 0"},
		{"add the target as learner", status(1, []uint64{1, 2, 3}, nil, 1000, all), 1, []uint64{4, 2, 3}, "add-learner 4"},
		{"a learner far behind waits", status(1, []uint64{1, 2, 3}, []uint64{4}, 1000, map[uint64]uint64{1: 1000, 2: 1000, 3: 1000, 4: 900}), 1, []uint64{4, 2, 3}, "wait 0"},
		{"an idle learner waits", status(1, []uint64{1, 2, 3}, []uint64{4}, 1000, all, 4), 1, []uint64{4, 2, 3}, "wait 0"},
		{"a caught-up learner is promoted", status(1, []uint64{1, 2, 3}, []uint64{4}, 1000, map[uint64]uint64{1: 1000, 2: 1000, 3: 1000, 4: 990}), 1, []uint64{4, 2, 3}, "promote 4"},
		{"the leader leaving hands over to a caught-up target voter", status(1, []uint64{1, 2, 3, 4}, nil, 1000, all), 1, []uint64{4, 2, 3}, "transfer-leader 4"},
		{"hand-over skips a lagging preferred replica", status(1, []uint64{1, 2, 3, 4}, nil, 1000, map[uint64]uint64{1: 1000, 2: 1000, 3: 1000, 4: 10}), 1, []uint64{4, 2, 3}, "transfer-leader 2"},
		{"another leader removes the old replica", status(2, []uint64{1, 2, 3, 4}, nil, 1000, all), 2, []uint64{4, 2, 3}, "remove 1"},
		{"voters are the target: complete", status(2, []uint64{2, 3, 4}, nil, 1000, all), 2, []uint64{4, 2, 3}, "complete 0"},
		{"cancel: a learner not in the target goes first", status(1, []uint64{1, 2, 3}, []uint64{4}, 1000, all), 1, []uint64{1, 2, 3}, "remove 4"},
		{"cancel after promotion: the added voter goes", status(1, []uint64{1, 2, 3, 4}, nil, 1000, all), 1, []uint64{1, 2, 3}, "remove 4"},
		{"a gone replica is removed after its replacement is in", status(1, []uint64{1, 2, 3, 5}, nil, 1000, map[uint64]uint64{1: 1000, 2: 1000, 5: 1000}), 1, []uint64{1, 2, 5}, "remove 3"},
		{"no caught-up voter to hand over to: wait", status(1, []uint64{1, 4}, nil, 1000, map[uint64]uint64{1: 1000, 4: 3}), 1, []uint64{4}, "wait 0"},
	} {
		got := nextMoveStep(c.st, c.self, c.tgt)
		if s := fmt.Sprintf("%s %d", got.kind, got.id); s != c.want {
			t.Errorf("%s: %s, want %s", c.name, s, c.want)
		}
	}
}

// A replacement is a live non-member, on a rack the partition has no replica on if there is
// one, else the least loaded.
func TestPickReplacement(t *testing.T) {
	cands := []candidate{{raftID: 1, rack: "a"}, {raftID: 2, rack: "b"}, {raftID: 3, rack: "a"}, {raftID: 4, rack: "c"}, {raftID: 5, rack: "b"}}
	racks := map[uint64]string{1: "a", 2: "b", 3: "a", 4: "c", 5: "b"}
	for _, c := range []struct {
		members []uint64
		load    map[uint64]int
		want    uint64
		ok      bool
	}{
		{[]uint64{1, 2}, nil, 4, true},                           // rack c is free
		{[]uint64{1, 4}, map[uint64]int{2: 5, 5: 1}, 5, true},    // rack b, the less loaded one
		{[]uint64{1, 2, 4}, map[uint64]int{3: 2, 5: 1}, 5, true}, // every rack used: least loaded
		{[]uint64{1, 2, 3, 4, 5}, nil, 0, false},                 // nobody left
		{[]uint64{2, 4, 5}, map[uint64]int{1: 3, 3: 3}, 1, true}, // a tie: the candidates' order
	} {
		got, ok := pickReplacement(cands, c.members, racks, c.load)
		if ok != c.ok || got.raftID != c.want {
			t.Errorf("members %v load %v: %d %v, want %d %v", c.members, c.load, got.raftID, ok, c.want, c.ok)
		}
	}
}

// simGroup is a raft group's membership as nextMoveStep's steps change it (no I/O): a learner
// catches up one round after it is added; a transfer makes its target leader.
type simGroup struct {
	leader           uint64
	voters, learners []uint64
	caughtUp         map[uint64]bool
}

func (g *simGroup) status() replica.GroupStatus {
	st := replica.GroupStatus{Leader: g.leader, Voters: slices.Clone(g.voters), Learners: slices.Clone(g.learners), Commit: 1000,
		Progress: map[uint64]replica.Progress{}}
	for _, id := range append(slices.Clone(g.voters), g.learners...) {
		m := uint64(1)
		if g.caughtUp[id] {
			m = 1000
		}
		st.Progress[id] = replica.Progress{Match: m, RecentActive: true}
	}
	return st
}

// walk applies the leader's steps until the move completes; it checks that the group never
// has fewer voters than min or two changes at once, and returns the steps taken.
func walk(t *testing.T, g *simGroup, target []uint64, min int) []string {
	t.Helper()
	var steps []string
	for range 100 {
		for _, id := range g.learners {
			g.caughtUp[id] = true // one round later the learner has caught up
		}
		s := nextMoveStep(g.status(), g.leader, target)
		steps = append(steps, fmt.Sprintf("%s %d", s.kind, s.id))
		switch s.kind {
		case stepComplete:
			if !sameIDs(g.voters, target) || len(g.learners) != 0 {
				t.Fatalf("complete with voters %v learners %v, target %v", g.voters, g.learners, target)
			}
			return steps
		case stepAddLearner:
			g.learners = append(g.learners, s.id)
		case stepPromote:
			g.learners = slices.DeleteFunc(g.learners, func(x uint64) bool { return x == s.id })
			g.voters = append(g.voters, s.id)
		case stepRemove:
			if s.id == g.leader {
				t.Fatalf("the leader removes itself: %v", steps)
			}
			g.learners = slices.DeleteFunc(g.learners, func(x uint64) bool { return x == s.id })
			g.voters = slices.DeleteFunc(g.voters, func(x uint64) bool { return x == s.id })
		case stepTransfer:
			if !slices.Contains(g.voters, s.id) {
				t.Fatalf("transfer to non-voter %d", s.id)
			}
			g.leader = s.id
		case stepWait:
			t.Fatalf("the leader waits with every learner caught up: %v", steps)
		}
		if len(g.voters) < min {
			t.Fatalf("%d voters after %v", len(g.voters), steps)
		}
	}
	t.Fatalf("no completion after 100 steps: %v", steps)
	return nil
}

func sameIDs(a, b []uint64) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// Moves walked to completion: every replica replaced (the leader leaves last, after handing
// over), a single replacement, a revert after promotion, and a retarget mid-move; never fewer
// voters than the replication factor.
func TestMoveWalks(t *testing.T) {
	for _, c := range []struct {
		name    string
		g       simGroup
		target  []uint64
		wantLen int
	}{
		{"all three replaced", simGroup{leader: 1, voters: []uint64{1, 2, 3}}, []uint64{4, 5, 6}, 11},
		{"a follower replaced", simGroup{leader: 1, voters: []uint64{1, 2, 3}}, []uint64{1, 2, 4}, 4},
		{"the leader replaced", simGroup{leader: 1, voters: []uint64{1, 2, 3}}, []uint64{4, 2, 3}, 5},
		{"revert after promotion", simGroup{leader: 2, voters: []uint64{1, 2, 3, 4}}, []uint64{1, 2, 3}, 2},
		{"retarget with a learner", simGroup{leader: 1, voters: []uint64{1, 2, 3}, learners: []uint64{4}}, []uint64{1, 2, 5}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.g.caughtUp = map[uint64]bool{}
			for _, id := range c.g.voters {
				c.g.caughtUp[id] = true
			}
			steps := walk(t, &c.g, c.target, 3)
			if len(steps) != c.wantLen {
				t.Errorf("%d steps, want %d: %v", len(steps), c.wantLen, steps)
			}
		})
	}
}
