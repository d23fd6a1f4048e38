package controller

import (
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Share-group ops reach the leader's share coordinator from any broker: a member joins
// through one follower and the group, with that member, is described through the other
// follower and the leader alike.
func TestShareOpsRouteToLeader(t *testing.T) {
	h := newHarness(t, 3)
	li := h.startThree()
	f1, f2 := (li+1)%3, (li+2)%3
	ctx, cancel := ctx5()
	defer cancel()
	cr, err := h.caller(f1).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "jobs", NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v, %v", cr, err)
	}
	hb, err := h.caller(f1).ShareGroupHeartbeat(ctx, &brokerop.ShareGroupHeartbeatReq{Group: "workers", MemberID: "m1", HasTopics: true, Topics: []string{"jobs"}})
	if err != nil || hb.ErrorCode != 0 || hb.MemberEpoch <= 0 || len(hb.Assignment) != 2 {
		t.Fatalf("heartbeat through a follower: %+v, %v", hb, err)
	}
	for _, i := range []int{f2, li} {
		d, err := h.caller(i).ShareGroupDescribe(ctx, &brokerop.ShareGroupDescribeReq{Groups: []string{"workers"}})
		if err != nil || len(d.Groups) != 1 || d.Groups[0].ErrorCode != 0 || len(d.Groups[0].Members) != 1 || d.Groups[0].Members[0].MemberID != "m1" {
			t.Fatalf("describe through node %d: %+v, %v", i, d, err)
		}
	}
	// A heartbeat at the member's epoch through the other follower is the same member.
	hb2, err := h.caller(f2).ShareGroupHeartbeat(ctx, &brokerop.ShareGroupHeartbeatReq{Group: "workers", MemberID: "m1", MemberEpoch: hb.MemberEpoch})
	if err != nil || hb2.ErrorCode != 0 || hb2.MemberEpoch != hb.MemberEpoch {
		t.Fatalf("heartbeat through the other follower: %+v, %v", hb2, err)
	}
}
