package controller

import (
	"fmt"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
)

// Group membership is durable across coordinator changes (Kafka's GroupMetadata records):
// a coordinator started on a new quorum leader restores the members, protocol, leader and
// assignments of the last recorded generation, so the members of a Stable group go on with
// their ids and generation (Heartbeat, OffsetCommit and a late SyncGroup succeed) instead
// of being told UNKNOWN_MEMBER_ID. That answer sent kgo (v1.22) down its rejoin path that
// keeps its owned partitions and cursors while another member gets them (the
// MajorityMinoritySplit commit-backwards anomaly). A member that left is not restored.
func TestGroupMembershipSurvivesCoordinatorMoves(t *testing.T) {
	h := newHarness(t, 3)
	h.groups = group.MachineConfig{InitialRebalanceDelay: -1}
	li := h.startThree()
	const grp = "g"
	joinReq := func(member, client string) *brokerop.JoinGroupReq {
		return &brokerop.JoinGroupReq{Group: grp, MemberID: member, ClientID: client, ProtocolType: "consumer",
			Protocols: []brokerop.GroupProtocol{{Name: "range", Metadata: []byte(client)}}, SessionTimeoutMs: 30000, RebalanceTimeoutMs: 30000}
	}
	// a forms generation 1 alone; b and c join (parked until a rejoins), then a rejoins:
	// generation 2 of a (leader), b and c.
	var a *brokerop.JoinGroupResp
	eventually(t, "a joins", func() error {
		ctx, cancel := ctx5()
		defer cancel()
		j, err := h.caller(li).JoinGroup(ctx, joinReq("", "a"))
		if err == nil && j.ErrorCode != 0 {
			err = fmt.Errorf("join: error %d", j.ErrorCode)
		}
		a = j
		return err
	})
	joined := map[string]*brokerop.JoinGroupResp{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, client := range []string{"b", "c"} {
		wg.Go(func() {
			ctx, cancel := ctx5()
			defer cancel()
			j, err := h.caller(li).JoinGroup(ctx, joinReq("", client))
			if err != nil || j.ErrorCode != 0 {
				t.Errorf("%s joins: %+v %v", client, j, err)
				return
			}
			mu.Lock()
			joined[client] = j
			mu.Unlock()
		})
	}
	eventually(t, "b and c wait in the rebalance", func() error {
		ctx, cancel := ctx5()
		defer cancel()
		d, err := h.caller(li).DescribeGroups(ctx, &brokerop.DescribeGroupsReq{Groups: []string{grp}})
		if err != nil {
			return err
		}
		if g := d.Groups[0]; g.State != "PreparingRebalance" || len(g.Members) != 3 {
			return fmt.Errorf("group %s with %d members", g.State, len(g.Members))
		}
		return nil
	})
	ctx, cancel := ctx5()
	a, err := h.caller(li).JoinGroup(ctx, joinReq(a.MemberID, "a"))
	cancel()
	wg.Wait()
	if err != nil || a.ErrorCode != 0 || t.Failed() {
		t.Fatalf("a rejoins: %+v %v", a, err)
	}
	b, c := joined["b"], joined["c"]
	gen := a.Generation
	if a.LeaderID != a.MemberID || b.Generation != gen || c.Generation != gen || len(a.Members) != 3 {
		t.Fatalf("generation: a %+v, b %+v, c %+v", a, b, c)
	}
	ctx, cancel = ctx5()
	s, err := h.caller(li).SyncGroup(ctx, &brokerop.SyncGroupReq{Group: grp, MemberID: a.MemberID, Generation: gen, Assignments: []brokerop.SyncGroupAssignment{
		{MemberID: a.MemberID, Assignment: []byte("A")}, {MemberID: b.MemberID, Assignment: []byte("B")}, {MemberID: c.MemberID, Assignment: []byte("C")}}})
	cancel()
	if err != nil || s.ErrorCode != 0 || string(s.Assignment) != "A" {
		t.Fatalf("leader's sync: %+v %v", s, err)
	}
	commit := func(via int, member string, offset int64) int16 {
		t.Helper()
		ctx, cancel := ctx5()
		defer cancel()
		r, err := h.caller(via).OffsetCommit(ctx, &brokerop.OffsetCommitReq{Group: grp, MemberID: member, Generation: gen,
			Topics: []brokerop.OffsetCommitTopic{{Topic: "t", Partitions: []brokerop.OffsetCommitPartition{{Partition: 1, Offset: offset, LeaderEpoch: -1}}}}})
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
		return r.Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(li, b.MemberID, 10); code != 0 {
		t.Fatalf("b's commit: error %d", code)
	}
	moveTo := h.leadOn
	heartbeat := func(via int, member string) int16 {
		t.Helper()
		var code int16
		eventually(t, "a heartbeat answered", func() error {
			ctx, cancel := ctx5()
			defer cancel()
			r, err := h.caller(via).Heartbeat(ctx, &brokerop.HeartbeatReq{Group: grp, MemberID: member, Generation: gen})
			if err == nil {
				code = r.ErrorCode
			}
			return err
		})
		return code
	}

	// The coordinator moves mid-generation: every member goes on in its generation.
	second := (li + 1) % 3
	moveTo(second)
	if code := heartbeat(second, a.MemberID); code != 0 {
		t.Fatalf("a's heartbeat on the new coordinator: error %d, want none (same member id and generation %d)", code, gen)
	}
	if code := commit(second, b.MemberID, 20); code != 0 {
		t.Fatalf("b's commit on the new coordinator: error %d", code)
	}
	ctx, cancel = ctx5()
	s, err = h.caller(second).SyncGroup(ctx, &brokerop.SyncGroupReq{Group: grp, MemberID: c.MemberID, Generation: gen})
	cancel()
	if err != nil || s.ErrorCode != 0 || string(s.Assignment) != "C" {
		t.Fatalf("c's late sync on the new coordinator: %+v %v, want its assignment C", s, err)
	}

	// c leaves; the coordinator moves again: c is not brought back, a and b are still
	// members (of the rebalance c's departure started).
	ctx, cancel = ctx5()
	l, err := h.caller(second).LeaveGroup(ctx, &brokerop.LeaveGroupReq{Group: grp, Members: []brokerop.LeaveGroupMember{{MemberID: c.MemberID}}})
	cancel()
	if err != nil || l.ErrorCode != 0 || l.Members[0].ErrorCode != 0 {
		t.Fatalf("c leaves: %+v %v", l, err)
	}
	third := (second + 1) % 3
	moveTo(third)
	if code := heartbeat(third, c.MemberID); code != 25 { // UNKNOWN_MEMBER_ID
		t.Fatalf("c's heartbeat after it left: error %d, want UNKNOWN_MEMBER_ID", code)
	}
	if code := heartbeat(third, a.MemberID); code != 27 { // REBALANCE_IN_PROGRESS
		t.Fatalf("a's heartbeat: error %d, want REBALANCE_IN_PROGRESS", code)
	}
	ctx, cancel = ctx5()
	d, err := h.caller(third).DescribeGroups(ctx, &brokerop.DescribeGroupsReq{Groups: []string{grp}})
	cancel()
	if err != nil || len(d.Groups[0].Members) != 2 {
		t.Fatalf("describe after the moves: %+v %v, want a and b", d, err)
	}
	for _, m := range d.Groups[0].Members {
		if m.MemberID != a.MemberID && m.MemberID != b.MemberID {
			t.Fatalf("member %s restored; members are %s and %s", m.MemberID, a.MemberID, b.MemberID)
		}
	}
}
