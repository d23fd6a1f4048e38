package controller

import (
	"fmt"
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
