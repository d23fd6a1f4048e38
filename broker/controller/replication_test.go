package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// On three live brokers: CreateTopics places RF 3 (and -1 means 3), refuses RF 4 with
// INVALID_REPLICATION_FACTOR and a min.insync.replicas above the RF with INVALID_CONFIG; the
// replicas spread (every broker leads some partitions by preference); Metadata and Placement
// show them; a leader report recorded through a follower (forwarded) shows up as leader,
// epoch and ISR, and an older one is fenced.
func TestReplicatedTopicPlacement(t *testing.T) {
	h, li := newThreeHarness(t)
	cb := h.waitMembers(0, 3, 3)
	fi := (li + 1) % 3
	ctx, cancel := ctx5()
	cr, err := h.caller(fi).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{
		{Name: "r3", NumPartitions: 6, ReplicationFactor: 3},
		{Name: "dflt", NumPartitions: 3, ReplicationFactor: -1},
		{Name: "r4", NumPartitions: 1, ReplicationFactor: 4},
		{Name: "isr", NumPartitions: 1, ReplicationFactor: 3, Configs: map[string]string{"min.insync.replicas": "4"}},
		{Name: "r3", NumPartitions: 1, ReplicationFactor: 3}, // listed twice: the broker's check comes first
		{Name: "one", NumPartitions: 2, ReplicationFactor: 1},
	}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{kerr.InvalidRequest.Code, 0, kerr.InvalidReplicationFactor.Code, kerr.InvalidConfig.Code, kerr.InvalidRequest.Code, 0}
	for i, r := range cr.Topics {
		if r.ErrorCode != want[i] {
			t.Errorf("topic %d %s: code %d (%s), want %d", i, r.Name, r.ErrorCode, r.ErrorMessage, want[i])
		}
	}
	if cr.Topics[1].ReplicationFactor != 3 {
		t.Errorf("default replication factor answered %d, want 3", cr.Topics[1].ReplicationFactor)
	}
	ctx, cancel = ctx5()
	cr, err = h.caller(fi).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "r3", NumPartitions: 6, ReplicationFactor: 3}}})
	cancel()
	if err != nil || cr.Topics[0].ErrorCode != 0 || cr.Topics[0].ReplicationFactor != 3 {
		t.Fatalf("create r3: %+v, %v", cr, err)
	}

	kafkaOf := map[uint64]int32{}
	nodeOf := map[uint64]string{}
	for _, n := range h.nodes {
		for _, m := range n.ctl.members() {
			kafkaOf[m.RaftID], nodeOf[m.RaftID] = m.KafkaID, m.NodeID.String()
		}
	}
	if len(kafkaOf) != 3 || len(cb.Brokers) != 3 {
		t.Fatalf("brokers: %v", kafkaOf)
	}
	// The metadata state: three distinct replicas per partition, preferred leaders spread.
	// fi is a follower of the quorum: the create was answered once the leader applied it, so
	// fi's own state may be a moment behind.
	var top []Topic
	var r3 *Topic
	eventually(t, "r3 in the follower's state", func() error {
		top, r3 = h.nodes[fi].ctl.r.Topics(), nil
		for i := range top {
			if top[i].Name == "r3" {
				r3 = &top[i]
			}
		}
		if r3 == nil || len(r3.Replicas) != 6 {
			return fmt.Errorf("r3 in the state: %+v", r3)
		}
		return nil
	})
	for i := range top {
		if top[i].Name == "one" && top[i].Replicas != nil {
			t.Errorf("RF 1 topic has replica lists %v", top[i].Replicas)
		}
	}
	leads := map[uint64]int{}
	for p, r := range r3.Replicas {
		if len(r) != 3 || len(slices.Compact(slices.Sorted(slices.Values(r)))) != 3 {
			t.Fatalf("partition %d replicas %v", p, r)
		}
		leads[r[0]]++
	}
	if len(leads) != 3 {
		t.Errorf("preferred leaders on %d brokers, want 3: %v", len(leads), leads)
	}

	md := func() brokerop.TopicInfo {
		t.Helper()
		ctx, cancel := ctx5()
		defer cancel()
		m, err := h.caller(fi).Metadata(ctx, &brokerop.MetadataReq{Topics: []string{"r3"}})
		if err != nil || len(m.Topics) != 1 {
			t.Fatalf("metadata: %+v, %v", m, err)
		}
		return m.Topics[0]
	}
	ti := md()
	for p, bp := range ti.Partitions {
		reps := r3.Replicas[p]
		wantReps := []int32{kafkaOf[reps[0]], kafkaOf[reps[1]], kafkaOf[reps[2]]}
		if !slices.Equal(bp.Replicas, wantReps) || !slices.Equal(bp.ISR, wantReps) || len(bp.OfflineReplicas) != 0 ||
			bp.Leader != wantReps[0] || bp.LeaderEpoch != -1 {
			t.Errorf("partition %d before any report: %+v, want replicas = ISR = %v, leader %d, epoch -1", p, bp, wantReps, wantReps[0])
		}
	}

	// A leader report (the broker's hook) reaches the state through the quorum leader: made
	// by a replica that is not the quorum leader, so it is forwarded.
	byRaft := map[uint64]*tnode{}
	for _, n := range h.nodes {
		byRaft[n.id] = n
	}
	reps := r3.Replicas[2]
	newLeader := reps[1]
	if newLeader == h.nodes[li].id {
		newLeader = reps[2]
	}
	byRaft[newLeader].ctl.partitionState("r3", 2, newLeader, 7, []uint64{newLeader, reps[0]})
	eventually(t, "leader report recorded", func() error {
		bp := md().Partitions[2]
		if bp.Leader != kafkaOf[newLeader] || bp.LeaderEpoch != 7 || !slices.Equal(bp.ISR, []int32{kafkaOf[newLeader], kafkaOf[reps[0]]}) {
			return fmt.Errorf("partition 2: %+v", bp)
		}
		return nil
	})
	ctx, cancel = ctx5()
	pl, err := h.caller(li).Placement(ctx, &brokerop.PlacementReq{Topics: []string{"r3", "one"}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	r3p := pl.Topics[0]
	for p := range 6 {
		want, epoch := nodeOf[r3.Replicas[p][0]], int32(-1)
		if p == 2 {
			want, epoch = nodeOf[newLeader], 7
		}
		if r3p.Leaders[p] != want || r3p.LeaderEpochs[p] != epoch || r3p.Owners[p] != nodeOf[r3.Replicas[p][0]] {
			t.Errorf("placement of partition %d: owner %s leader %s epoch %d, want leader %s epoch %d", p, r3p.Owners[p], r3p.Leaders[p], r3p.LeaderEpochs[p], want, epoch)
		}
	}
	if one := pl.Topics[1]; !slices.Equal(one.Leaders, one.Owners) || !slices.Equal(one.LeaderEpochs, []int32{0, 0}) {
		t.Errorf("single-owner placement: %+v", one)
	}
	// Only the broker a report names as leader may send it: a gateway may not.
	ctx, cancel = ctx5()
	ur, err := h.caller(fi).UpdatePartition(ctx, &brokerop.UpdatePartitionReq{Topic: "r3", Partition: 2, Leader: reps[0], LeaderEpoch: 9, ISR: []uint64{reps[0]}})
	cancel()
	if err != nil || ur.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("report from the gateway: %+v, %v", ur, err)
	}
	// An older term is fenced; a replica that is no replica is refused.
	for _, c := range []struct {
		req  brokerop.UpdatePartitionReq
		code int16
	}{
		{brokerop.UpdatePartitionReq{Topic: "r3", Partition: 2, Leader: reps[0], LeaderEpoch: 6, ISR: []uint64{reps[0]}}, kerr.FencedLeaderEpoch.Code},
		{brokerop.UpdatePartitionReq{Topic: "r3", Partition: 2, Leader: reps[0], LeaderEpoch: 7, ISR: []uint64{reps[0]}}, kerr.FencedLeaderEpoch.Code},
		{brokerop.UpdatePartitionReq{Topic: "r3", Partition: 2, Leader: 999, LeaderEpoch: 9, ISR: []uint64{999}}, kerr.InvalidReplicaAssignment.Code},
		{brokerop.UpdatePartitionReq{Topic: "one", Partition: 0, Leader: reps[0], LeaderEpoch: 9, ISR: []uint64{reps[0]}}, kerr.InvalidRequest.Code},
		{brokerop.UpdatePartitionReq{Topic: "r3", Partition: 2, Leader: reps[0], LeaderEpoch: 8, ISR: []uint64{reps[0], reps[2]}}, 0},
	} {
		via := h.nodes[li] // a leader that is no broker: only the quorum leader itself gets it to the state
		if n := byRaft[c.req.Leader]; n != nil {
			via = n // the reporting broker itself (forwarded to the quorum leader)
		}
		ctx, cancel := ctx5()
		r, err := via.ctl.UpdatePartition(ctx, &c.req)
		cancel()
		if err != nil || r.ErrorCode != c.code {
			t.Errorf("%+v: %+v, %v; want code %d", c.req, r, err, c.code)
		}
	}
	if bp := md().Partitions[2]; bp.Leader != kafkaOf[reps[0]] || bp.LeaderEpoch != 8 {
		t.Errorf("after a new term: %+v", bp)
	}

	// CreatePartitions keeps the replication factor; min.insync.replicas is checked against it.
	ctx, cancel = ctx5()
	gr, err := h.caller(fi).CreatePartitions(ctx, &brokerop.CreatePartitionsReq{Topics: []brokerop.CreatePartitionsTopic{{Name: "r3", Count: 8}}})
	cancel()
	if err != nil || gr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create partitions: %+v, %v", gr, err)
	}
	for _, tp := range h.nodes[li].ctl.r.Topics() {
		if tp.Name == "r3" && (len(tp.Replicas) != 8 || len(tp.Replicas[7]) != 3) {
			t.Errorf("r3 grown: %v", tp.Replicas)
		}
	}
	four, two := "4", "1"
	ctx, cancel = ctx5()
	ac, err := h.caller(fi).IncrementalAlterConfigs(ctx, &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{
		{Type: topicResource, Name: "r3", Configs: []brokerop.IncrementalAlterConfig{{Name: minISRConfig, Op: brokerop.ConfigOpSet, Value: &four}}},
		{Type: topicResource, Name: "one", Configs: []brokerop.IncrementalAlterConfig{{Name: minISRConfig, Op: brokerop.ConfigOpSet, Value: &two}}},
	}})
	cancel()
	if err != nil || ac.Resources[0].ErrorCode != kerr.InvalidConfig.Code || ac.Resources[1].ErrorCode != 0 || ac.Resources[1].Name != "one" {
		t.Errorf("alter min.insync.replicas: %+v, %v", ac, err)
	}
	ctx, cancel = ctx5()
	ac, err = h.caller(fi).AlterConfigs(ctx, &brokerop.AlterConfigsReq{Resources: []brokerop.AlterConfigsResource{
		{Type: topicResource, Name: "one", Configs: []brokerop.AlterConfig{{Name: minISRConfig, Value: &two}}},
		{Type: topicResource, Name: "r3", Configs: []brokerop.AlterConfig{{Name: minISRConfig, Value: &four}}},
	}})
	cancel()
	if err != nil || ac.Resources[0].ErrorCode != 0 || ac.Resources[0].Name != "one" || ac.Resources[1].ErrorCode != kerr.InvalidConfig.Code || ac.Resources[1].Name != "r3" {
		t.Errorf("alter (whole set) min.insync.replicas: %+v, %v", ac, err)
	}

	// A stopped broker's replicas show as offline once the leader stops hearing from it.
	gone := (li + 2) % 3
	h.nodes[gone].stop()
	goneKafka := kafkaOf[h.nodes[gone].id]
	eventually(t, "offline replicas", func() error {
		for p, bp := range md().Partitions {
			holds := slices.Contains(bp.Replicas, goneKafka)
			if holds != slices.Contains(bp.OfflineReplicas, goneKafka) || len(bp.OfflineReplicas) > 1 {
				return fmt.Errorf("partition %d: replicas %v offline %v (stopped: %d)", p, bp.Replicas, bp.OfflineReplicas, goneKafka)
			}
		}
		return nil
	})
}
