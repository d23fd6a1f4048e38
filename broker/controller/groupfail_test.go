package controller

import (
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/internal/clock"
)

// Kafka error codes the test checks.
const (
	codeUnknownMemberID = 25
)

// A group coordinator belongs to the leadership it was started in. Here broker 2's watcher
// never looks again after start-up (its controller runs on a fake clock that stops), as a
// watcher that misses a leadership which ended and came back between two of its looks: an
// op starts the coordinator on broker 2, the leadership moves to broker 0 (whose coordinator
// restores the group's member a, sees a leave, forms a new generation of b and commits a
// newer offset) and back. Broker 2 must then serve the quorum's offsets and membership and
// fence the member that left, not reuse its old coordinator: that one answered the old
// offset (a consumer resuming from it sees committed offsets go backwards) and accepted the
// zombie member's commit, rolling the offset back.
func TestGroupCoordinatorIsNotReusedAcrossLeaderships(t *testing.T) {
	h := newHarness(t, 3)
	fc := clock.NewFake(time.Now())
	h.clocks = map[int]clock.Clock{2: fc}
	h.groups = group.MachineConfig{InitialRebalanceDelay: -1}

	// Broker 2's clock runs while the cluster forms (its watcher asks to join), then stops.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				fc.Advance(10 * time.Millisecond)
			}
		}
	})
	h.startThree()
	close(stop)
	wg.Wait()

	moveLeader := h.leadOn
	const grp, topic = "g", "t"
	fetch := func(via int) int64 { t.Helper(); return h.committedOffset(t, via, grp, topic) }
	// member joins and syncs a one-member generation through broker via.
	member := func(via int, client string) (string, int32) {
		t.Helper()
		ctx, cancel := ctx5()
		defer cancel()
		j, err := h.caller(via).JoinGroup(ctx, &brokerop.JoinGroupReq{Group: grp, ClientID: client, ProtocolType: "consumer",
			Protocols: []brokerop.GroupProtocol{{Name: "range"}}, SessionTimeoutMs: 30000, RebalanceTimeoutMs: 30000})
		if err != nil || j.ErrorCode != 0 {
			t.Fatalf("join %s through broker %d: %+v, %v", client, via, j, err)
		}
		s, err := h.caller(via).SyncGroup(ctx, &brokerop.SyncGroupReq{Group: grp, MemberID: j.MemberID, Generation: j.Generation,
			ProtocolType: "consumer", Protocol: j.Protocol, Assignments: []brokerop.SyncGroupAssignment{{MemberID: j.MemberID, Assignment: []byte{1}}}})
		if err != nil || s.ErrorCode != 0 {
			t.Fatalf("sync %s through broker %d: %+v, %v", client, via, s, err)
		}
		return j.MemberID, j.Generation
	}
	commit := func(via int, id string, gen int32, off int64) int16 {
		t.Helper()
		ctx, cancel := ctx5()
		defer cancel()
		r, err := h.caller(via).OffsetCommit(ctx, &brokerop.OffsetCommitReq{Group: grp, MemberID: id, Generation: gen,
			Topics: []brokerop.OffsetCommitTopic{{Topic: topic, Partitions: []brokerop.OffsetCommitPartition{{Partition: 0, Offset: off, LeaderEpoch: -1}}}}})
		if err != nil {
			t.Fatalf("commit %d through broker %d: %v", off, via, err)
		}
		return r.Topics[0].Partitions[0].ErrorCode
	}

	moveLeader(2)
	fetch(2) // broker 2's coordinator runs
	a, genA := member(2, "a")
	if code := commit(2, a, genA, 10); code != 0 {
		t.Fatalf("a's commit: error %d", code)
	}

	moveLeader(0)
	// a is a member on broker 0's coordinator too (membership is recorded); it leaves there.
	ctx, cancel := ctx5()
	l, err := h.caller(0).LeaveGroup(ctx, &brokerop.LeaveGroupReq{Group: grp, Members: []brokerop.LeaveGroupMember{{MemberID: a}}})
	cancel()
	if err != nil || l.ErrorCode != 0 || l.Members[0].ErrorCode != 0 {
		t.Fatalf("a leaves through broker 0: %+v, %v", l, err)
	}
	b, genB := member(0, "b")
	if code := commit(0, b, genB, 20); code != 0 {
		t.Fatalf("b's commit: error %d", code)
	}

	moveLeader(2)
	if got := fetch(2); got != 20 {
		t.Fatalf("broker 2 leads again and answers committed offset %d, want 20 (committed under broker 0)", got)
	}
	if code := commit(2, a, genA, 5); code != codeUnknownMemberID {
		t.Fatalf("a zombie member of an old generation commits through broker 2: error %d, want UNKNOWN_MEMBER_ID", code)
	}
	if got := fetch(2); got != 20 {
		t.Fatalf("committed offset %d after the zombie's commit, want 20", got)
	}

	// b, restored here with broker 0's recorded membership, rejoins with its member id (as
	// the leader, a new generation): it completes at once, b alone. The old coordinator
	// instead did not know b (UNKNOWN_MEMBER_ID), and a fresh join waited for a, a member of
	// its old generation that will never rejoin, up to the rebalance timeout (the fault
	// suite's hung JoinGroup; here broker 2's group clock is stopped, so it never completed).
	ctx, cancel = ctx5() // a hang bound
	defer cancel()
	j, err := h.caller(2).JoinGroup(ctx, &brokerop.JoinGroupReq{Group: grp, MemberID: b, ClientID: "b", ProtocolType: "consumer",
		Protocols: []brokerop.GroupProtocol{{Name: "range"}}, SessionTimeoutMs: 30000, RebalanceTimeoutMs: 30000})
	if err != nil || j.ErrorCode != 0 || j.MemberID != b || j.LeaderID != b || len(j.Members) != 1 || j.Generation <= genB {
		t.Fatalf("b rejoins through broker 2 with its member id from broker 0's coordinator: %+v, %v; want a generation above %d of b alone", j, err, genB)
	}
}
