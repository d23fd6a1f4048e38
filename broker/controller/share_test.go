package controller

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Share-group ops reach the leader's share coordinator from any broker: a member joins
// through one follower and the group, with that member, is described through the other
// follower and the leader alike.
func TestShareOpsRouteToLeader(t *testing.T) {
	h, li := newThreeHarness(t)
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

// A share group on a cluster consumes every partition of its topic, wherever it lives: the
// quorum leader's share coordinator reads each partition at the broker that owns it, not only
// the partitions of its own broker (before, the others answered UNKNOWN_TOPIC_OR_PARTITION
// for ever and their records were never delivered).
func TestShareGroupReadsEveryBrokersPartitions(t *testing.T) {
	h, li := newThreeHarness(t)
	f1 := (li + 1) % 3
	ctx, cancel := ctx5()
	defer cancel()
	const topic, parts = "jobs", 6
	owners := h.spreadTopic(t, f1, topic, parts)
	leaderOwns := 0
	for _, o := range owners {
		if o == li {
			leaderOwns++
		}
	}
	if leaderOwns == parts {
		t.Fatalf("every partition on the quorum leader's broker: the test shows nothing")
	}

	hb, err := h.caller(f1).ShareGroupHeartbeat(ctx, &brokerop.ShareGroupHeartbeatReq{Group: "workers", MemberID: "m1", HasTopics: true, Topics: []string{topic}})
	if err != nil || hb.ErrorCode != 0 || len(hb.Assignment) != parts {
		t.Fatalf("heartbeat: %+v, %v", hb, err)
	}
	var all []brokerop.ShareFetchPartition
	for p := range int32(parts) {
		all = append(all, brokerop.ShareFetchPartition{Topic: topic, Partition: p})
	}
	epoch := int32(0)
	fetch := func() *brokerop.ShareFetchResp {
		t.Helper()
		req := &brokerop.ShareFetchReq{Group: "workers", MemberID: "m1", SessionEpoch: epoch, MaxWaitMs: 50, MaxRecords: 100}
		if epoch == 0 {
			req.Partitions = all
		}
		ctx, cancel := ctx5()
		defer cancel()
		r, err := h.caller(f1).ShareFetch(ctx, req)
		if err != nil || r.ErrorCode != 0 {
			t.Fatalf("share fetch (session epoch %d): %+v, %v", epoch, r, err)
		}
		epoch++
		return r
	}
	// The first fetch opens the session and starts every share partition at its end
	// (share.auto.offset.reset latest): every partition must answer without an error.
	for _, p := range fetch().Partitions {
		if p.ErrorCode != 0 {
			t.Fatalf("first share fetch: partition %d (owner broker %d) answered error %d", p.Partition, owners[p.Partition], p.ErrorCode)
		}
	}
	for p, o := range owners {
		h.produceAt(t, o, topic, int32(p), fmt.Sprintf("job-%d", p))
	}
	// Within 20 s (well inside the member's 45 s session: no heartbeat is sent meanwhile).
	got := map[int32]bool{}
	for deadline := time.Now().Add(20 * time.Second); len(got) < parts && time.Now().Before(deadline); {
		for _, p := range fetch().Partitions {
			if p.ErrorCode != 0 {
				t.Logf("partition %d: error %d", p.Partition, p.ErrorCode)
			}
			for _, a := range p.Acquired {
				if a.First != 0 || a.Last != 0 || !bytes.Contains(p.Records, fmt.Appendf(nil, "job-%d", p.Partition)) {
					t.Fatalf("partition %d: acquired %+v of %d bytes", p.Partition, p.Acquired, len(p.Records))
				}
				got[p.Partition] = true
			}
		}
	}
	if len(got) != parts {
		t.Fatalf("records acquired from %d of %d partitions (%v); the quorum leader's broker owns %d", len(got), parts, got, leaderOwns)
	}
}

// Share-group state lives on the quorum: after the quorum leader (the share coordinator's
// broker) is shut down, the new leader serves the group from where the lost one left it:
// the start offsets its acknowledgements moved, not a group it has never heard of.
func TestShareStateSurvivesLeaderLoss(t *testing.T) {
	h, li := newThreeHarness(t)
	f1 := (li + 1) % 3
	const topic, group, parts = "jobs", "workers", 6
	ctx, cancel := ctx5()
	defer cancel()
	owners := h.spreadTopic(t, f1, topic, parts)
	// Start at 0 everywhere, then 5 records per partition.
	var starts []brokerop.ShareOffset
	for p := range int32(parts) {
		starts = append(starts, brokerop.ShareOffset{Topic: topic, Partition: p, StartOffset: 0})
	}
	if ar, err := h.caller(f1).AlterShareGroupOffsets(ctx, &brokerop.AlterShareGroupOffsetsReq{Group: group, Partitions: starts}); err != nil || ar.ErrorCode != 0 {
		t.Fatalf("alter share group offsets: %+v, %v", ar, err)
	}
	for p, o := range owners {
		for i := range 5 {
			h.produceAt(t, o, topic, int32(p), fmt.Sprintf("job-%d-%d", p, i))
		}
	}
	hb, err := h.caller(f1).ShareGroupHeartbeat(ctx, &brokerop.ShareGroupHeartbeatReq{Group: group, MemberID: "m1", HasTopics: true, Topics: []string{topic}})
	if err != nil || hb.ErrorCode != 0 {
		t.Fatalf("heartbeat: %+v, %v", hb, err)
	}
	// Acquire every record, then accept all of them: each partition's start offset moves to 5.
	var all []brokerop.ShareFetchPartition
	for p := range int32(parts) {
		all = append(all, brokerop.ShareFetchPartition{Topic: topic, Partition: p})
	}
	fr, err := h.caller(f1).ShareFetch(ctx, &brokerop.ShareFetchReq{Group: group, MemberID: "m1", MaxWaitMs: 100, MaxRecords: 100, Partitions: all})
	if err != nil || fr.ErrorCode != 0 {
		t.Fatalf("share fetch: %+v, %v", fr, err)
	}
	var acks []brokerop.ShareAckPartition
	acquired := 0
	for _, p := range fr.Partitions {
		for _, a := range p.Acquired {
			acquired += int(a.Last - a.First + 1)
			acks = append(acks, brokerop.ShareAckPartition{Topic: p.Topic, Partition: p.Partition, Acks: []brokerop.ShareAckBatch{{First: a.First, Last: a.Last, Types: []int8{1}}}})
		}
	}
	if acquired != 5*parts {
		t.Fatalf("acquired %d records, want %d: %+v", acquired, 5*parts, fr.Partitions)
	}
	ack, err := h.caller(f1).ShareAcknowledge(ctx, &brokerop.ShareAcknowledgeReq{Group: group, MemberID: "m1", SessionEpoch: 1, Partitions: acks})
	if err != nil || ack.ErrorCode != 0 {
		t.Fatalf("acknowledge: %+v, %v", ack, err)
	}
	startOffsets := func(via int) (map[int32]int64, error) {
		ctx, cancel := ctx5()
		defer cancel()
		d, err := h.caller(via).DescribeShareGroupOffsets(ctx, &brokerop.DescribeShareGroupOffsetsReq{Groups: []brokerop.ShareOffsetsGroup{{Group: group, All: true}}})
		if err != nil {
			return nil, err
		}
		if len(d.Groups) != 1 || d.Groups[0].ErrorCode != 0 {
			return nil, fmt.Errorf("describe: %+v", d.Groups)
		}
		got := map[int32]int64{}
		for _, p := range d.Groups[0].Partitions {
			got[p.Partition] = p.StartOffset
		}
		return got, nil
	}
	before, err := startOffsets(f1)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(parts) {
		if before[p] != 5 {
			t.Fatalf("start offsets before the leader's loss: %v, want 5 everywhere", before)
		}
	}

	// The lost broker's own partitions (replication factor 1) answer an error; every other
	// partition must show its start offset.
	h.nodes[li].stop()
	eventually(t, "the new leader serves the group's start offsets", func() error {
		got, err := startOffsets(f1)
		if err != nil {
			return err
		}
		for p, o := range owners {
			if o != li && got[int32(p)] != 5 {
				return fmt.Errorf("start offsets %v, want 5 on the partitions of the brokers left", got)
			}
		}
		return nil
	})
}

// spreadTopic creates topic with parts single-replica partitions through broker via and
// returns the index of the broker owning each partition, once each owner serves its partitions.
func (h *harness) spreadTopic(t *testing.T, via int, topic string, parts int32) []int {
	t.Helper()
	ctx, cancel := ctx5()
	defer cancel()
	cr, err := h.caller(via).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: topic, NumPartitions: parts, ReplicationFactor: 1}}})
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v, %v", cr, err)
	}
	pl, err := h.caller(via).Placement(ctx, &brokerop.PlacementReq{Topics: []string{topic}})
	if err != nil || len(pl.Topics) != 1 || len(pl.Topics[0].Owners) != int(parts) {
		t.Fatalf("placement: %+v, %v", pl, err)
	}
	byID := map[string]int{}
	for i, n := range h.nodes {
		byID[n.ep.NodeID().String()] = i
	}
	owners := make([]int, parts)
	for p, o := range pl.Topics[0].Owners {
		owners[p] = byID[o]
	}
	// Each owner serves its partitions once it has applied the topic (until then it answers
	// UNKNOWN_TOPIC_OR_PARTITION, which a share fetch passes on).
	for p, o := range owners {
		eventually(t, "the owner serves the partition", func() error {
			ctx, cancel := ctx5()
			defer cancel()
			r, err := h.caller(o).ListOffsets(ctx, &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: topic, Partition: int32(p), Timestamp: -1}}})
			if err != nil {
				return err
			}
			if c := r.Partitions[0].ErrorCode; c != 0 {
				return fmt.Errorf("list offsets p%d at broker %d: code %d", p, o, c)
			}
			return nil
		})
	}
	return owners
}

// produceAt produces one record of value to topic's partition p at broker owner (again
// until the owner has applied the topic).
func (h *harness) produceAt(t *testing.T, owner int, topic string, p int32, value string) {
	t.Helper()
	eventually(t, "produce at the owner", func() error {
		ctx, cancel := ctx5()
		defer cancel()
		r, err := h.caller(owner).Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: topic, Partition: p, Records: batch(value)}}})
		if err != nil {
			return err
		}
		if c := r.Partitions[0].ErrorCode; c != 0 {
			return fmt.Errorf("produce p%d: code %d", p, c)
		}
		return nil
	})
}
