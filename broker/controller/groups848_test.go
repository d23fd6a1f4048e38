package controller

import (
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
)

// TestConsumerGroup848OnTheQuorum: KIP-848 heartbeats sent to followers reach the one
// coordinator on the quorum leader (a member joins through one broker and heartbeats through
// another), ConsumerGroupDescribe through a third broker sees it, and an OffsetCommit with
// the member epoch is accepted and readable everywhere (a quorum proposal).
func TestConsumerGroup848OnTheQuorum(t *testing.T) {
	h := newHarness(t, 3)
	h.groups = group.MachineConfig{ConsumerStartGrace: -1} // assign at once (see broker/group)
	h.formThree(2)
	ctx, cancel := ctx5()
	defer cancel()
	cr, err := h.caller(1).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "t848", NumPartitions: 3, ReplicationFactor: 1}}})
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v, %v", cr, err)
	}
	topics := []brokerop.ConsumerGroupTopic{{Name: "t848", TopicID: cr.Topics[0].TopicID, Partitions: 3}}
	join, err := h.caller(0).ConsumerGroupHeartbeat(ctx, &brokerop.ConsumerGroupHeartbeatReq{
		Group: "q848", MemberID: "m1", RebalanceTimeoutMs: 10000, HasSubscribedTopicNames: true, SubscribedTopicNames: []string{"t848"},
		HasOwned: true, HasTopics: true, Topics: topics,
	})
	if err != nil || join.ErrorCode != 0 || join.MemberEpoch != 1 || len(join.Assignment) != 1 || len(join.Assignment[0].Partitions) != 3 {
		t.Fatalf("join via broker 0: %+v, %v", join, err)
	}
	hb, err := h.caller(1).ConsumerGroupHeartbeat(ctx, &brokerop.ConsumerGroupHeartbeatReq{
		Group: "q848", MemberID: "m1", MemberEpoch: 1, RebalanceTimeoutMs: -1, HasOwned: true, Owned: join.Assignment, HasTopics: true, Topics: topics,
	})
	if err != nil || hb.ErrorCode != 0 || hb.MemberEpoch != 1 {
		t.Fatalf("heartbeat via broker 1: %+v, %v", hb, err)
	}
	d, err := h.caller(2).ConsumerGroupDescribe(ctx, &brokerop.ConsumerGroupDescribeReq{Groups: []string{"q848"}})
	if err != nil || len(d.Groups) != 1 || d.Groups[0].State != "Stable" || len(d.Groups[0].Members) != 1 || d.Groups[0].Members[0].MemberID != "m1" {
		t.Fatalf("describe via broker 2: %+v, %v", d, err)
	}
	oc, err := h.caller(2).OffsetCommit(ctx, &brokerop.OffsetCommitReq{Group: "q848", MemberID: "m1", Generation: 1, Topics: []brokerop.OffsetCommitTopic{
		{Topic: "t848", Partitions: []brokerop.OffsetCommitPartition{{Partition: 2, Offset: 9, LeaderEpoch: -1}}}}})
	if err != nil || oc.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit with the member epoch: %+v, %v", oc, err)
	}
	oc, err = h.caller(0).OffsetCommit(ctx, &brokerop.OffsetCommitReq{Group: "q848", MemberID: "m1", Generation: 2, Topics: []brokerop.OffsetCommitTopic{
		{Topic: "t848", Partitions: []brokerop.OffsetCommitPartition{{Partition: 2, Offset: 10, LeaderEpoch: -1}}}}})
	if err != nil || oc.Topics[0].Partitions[0].ErrorCode != 113 {
		t.Fatalf("commit with a future epoch: %+v, %v (want STALE_MEMBER_EPOCH)", oc, err)
	}
	of, err := h.caller(1).OffsetFetch(ctx, &brokerop.OffsetFetchReq{Group: "q848", Topics: []brokerop.OffsetFetchTopic{{Topic: "t848", Partitions: []int32{2}}}})
	if err != nil || of.Topics[0].Partitions[0].Offset != 9 {
		t.Fatalf("fetch: %+v, %v", of, err)
	}
}
