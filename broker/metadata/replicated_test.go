package metadata_test

import (
	"bytes"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
)

// rtopic is a replicated topic whose partition p has replicas reps[p] (raft id i is node(i)
// in cluster()).
func rtopic(name string, id byte, reps ...[]uint64) metadata.NewTopic {
	t := metadata.NewTopic{Name: name, ID: tid(id), Partitions: int32(len(reps)), Replicas: reps}
	for _, r := range reps {
		t.Owners = append(t.Owners, node(byte(r[0])))
	}
	return t
}

func topicCode(t *testing.T, r any) int16 {
	t.Helper()
	tr, ok := r.(*metadata.TopicsResult)
	if !ok || len(tr.Topics) != 1 {
		t.Fatalf("result %+v", r)
	}
	return tr.Topics[0].Code
}

func TestCreateReplicatedTopic(t *testing.T) {
	s := cluster(t, 4)
	for name, c := range map[string]struct {
		nt   metadata.NewTopic
		code int16
	}{
		"unregistered replica": {rtopic("x", 1, []uint64{1, 9}), metadata.CodeInvalidReplicaAssignment},
		"replica twice":        {rtopic("x", 1, []uint64{1, 1}), metadata.CodeInvalidReplicaAssignment},
		"one replica":          {rtopic("x", 1, []uint64{1}), metadata.CodeInvalidReplicaAssignment},
		"uneven factor":        {rtopic("x", 1, []uint64{1, 2}, []uint64{1, 2, 3}), metadata.CodeInvalidReplicaAssignment},
		"owner not first": {metadata.NewTopic{Name: "x", ID: tid(1), Partitions: 1, Owners: []metadata.NodeID{node(2)},
			Replicas: [][]uint64{{1, 2}}}, metadata.CodeInvalidReplicaAssignment},
		"lists for partitions": {metadata.NewTopic{Name: "x", ID: tid(1), Partitions: 2, Owners: []metadata.NodeID{node(1), node(2)},
			Replicas: [][]uint64{{1, 2}}}, metadata.CodeInvalidReplicaAssignment},
	} {
		before := snap(t, s)
		if got := topicCode(t, apply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{c.nt}})); got != c.code {
			t.Errorf("%s: code %d, want %d", name, got, c.code)
		}
		if s.Apply(s.LastApplied()+1, nil); !sameContent(t, s, mustRestore(t, before)) {
			t.Errorf("%s: a refused create changed the state", name)
		}
	}
	if got := topicCode(t, apply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{rtopic("r", 1, []uint64{1, 2, 3}, []uint64{2, 3, 4})}})); got != 0 {
		t.Fatalf("create: code %d", got)
	}
	tp, _ := s.Topic("r")
	if tp.ReplicationFactor() != 3 {
		t.Errorf("replication factor %d", tp.ReplicationFactor())
	}
	check(t, tp.Partitions[1], metadata.Partition{Owner: node(2), Replicas: []uint64{2, 3, 4}, ISR: []uint64{2, 3, 4}})
	// Growing keeps the replication factor: single owners or another factor are refused.
	grow := func(owners []metadata.NodeID, reps [][]uint64) int16 {
		return topicCode(t, apply(t, s, &metadata.CreatePartitions{Topics: []metadata.NewPartitions{{Name: "r", Count: 3, Owners: owners, Replicas: reps}}}))
	}
	if got := grow([]metadata.NodeID{node(1)}, nil); got != metadata.CodeInvalidReplicaAssignment {
		t.Errorf("grow without replicas: %d", got)
	}
	if got := grow([]metadata.NodeID{node(1)}, [][]uint64{{1, 2}}); got != metadata.CodeInvalidReplicaAssignment {
		t.Errorf("grow with factor 2: %d", got)
	}
	if got := grow([]metadata.NodeID{node(4)}, [][]uint64{{4, 1, 2}}); got != 0 {
		t.Errorf("grow: %d", got)
	}
	// A single-owner topic takes no replica lists when it grows.
	mustApply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{topic("single", 2, 1, node(1))}})
	r := apply(t, s, &metadata.CreatePartitions{Topics: []metadata.NewPartitions{{Name: "single", Count: 2, Owners: []metadata.NodeID{node(1)}, Replicas: [][]uint64{{1, 2}}}}})
	if got := topicCode(t, r); got != metadata.CodeInvalidReplicaAssignment {
		t.Errorf("replicas for a single-owner topic: %d", got)
	}
	// Replicated partitions do not move by Reassign, and are never orphaned.
	rr := apply(t, s, &metadata.Reassign{Moves: []metadata.Move{{Topic: "r", Partition: 0, Owner: node(4)}}}).(*metadata.ReassignResult)
	if rr.Moves[0].Code != metadata.CodeInvalidRequest {
		t.Errorf("reassign of a replicated partition: %+v", rr)
	}
}

func mustRestore(t *testing.T, sn []byte) *metadata.State {
	t.Helper()
	s := metadata.New()
	if err := s.Restore(sn); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUpdatePartitionFencing(t *testing.T) {
	s := cluster(t, 4)
	mustApply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{rtopic("r", 1, []uint64{1, 2, 3}), topic("single", 2, 1, node(1))}})
	up := func(leader uint64, epoch int32, isr ...uint64) *metadata.UpdatePartitionResult {
		t.Helper()
		return apply(t, s, &metadata.UpdatePartition{Topic: "r", Partition: 0, Leader: leader, LeaderEpoch: epoch, ISR: isr}).(*metadata.UpdatePartitionResult)
	}
	state := func() metadata.Partition { p, _ := s.Owner("r", 0); return p }
	if r := up(2, 3, 2, 1); r.Code != 0 || !r.Changed {
		t.Fatalf("first report: %+v", r)
	}
	check(t, state(), metadata.Partition{Owner: node(1), Replicas: []uint64{1, 2, 3}, Leader: 2, LeaderEpoch: 3, ISR: []uint64{2, 1}})
	for name, c := range map[string]struct {
		r    *metadata.UpdatePartitionResult
		code int16
	}{
		"older epoch":            {up(1, 2, 1), metadata.CodeFencedLeaderEpoch},
		"other leader, same one": {up(3, 3, 3), metadata.CodeFencedLeaderEpoch},
		"leader not a replica":   {up(4, 9, 4), metadata.CodeInvalidReplicaAssignment},
		"isr not replicas":       {up(1, 9, 1, 4), metadata.CodeInvalidReplicaAssignment},
		"isr without leader":     {up(1, 9, 2), metadata.CodeInvalidRequest},
		"isr twice":              {up(1, 9, 1, 1), metadata.CodeInvalidRequest},
		"negative epoch":         {up(1, -1, 1), metadata.CodeInvalidRequest},
	} {
		if c.r.Code != c.code || c.r.Changed {
			t.Errorf("%s: %+v, want code %d", name, c.r, c.code)
		}
	}
	check(t, state().LeaderEpoch, int32(3))
	// The same leader at its epoch may report a new ISR; a repeat changes nothing.
	if r := up(2, 3, 2, 1, 3); r.Code != 0 || !r.Changed {
		t.Errorf("ISR grows: %+v", r)
	}
	if r := up(2, 3, 2, 1, 3); r.Code != 0 || r.Changed {
		t.Errorf("repeat: %+v", r)
	}
	if r := up(3, 7, 3); r.Code != 0 || !r.Changed {
		t.Errorf("new term: %+v", r)
	}
	r := apply(t, s, &metadata.UpdatePartition{Topic: "single", Partition: 0, Leader: 1, ISR: []uint64{1}}).(*metadata.UpdatePartitionResult)
	if r.Code != metadata.CodeInvalidRequest {
		t.Errorf("single-owner partition: %+v", r)
	}
	r = apply(t, s, &metadata.UpdatePartition{Topic: "r", Partition: 1, Leader: 1, ISR: []uint64{1}}).(*metadata.UpdatePartitionResult)
	if r.Code != metadata.CodeUnknownTopicOrPartition {
		t.Errorf("no such partition: %+v", r)
	}
}

// A removed broker's replicas go offline: out of every ISR, no longer leader, still replicas.
// A new incarnation of a NodeID does the same to the old raft id.
func TestRemovedBrokerReplicasOffline(t *testing.T) {
	s := cluster(t, 4)
	mustApply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{rtopic("r", 1, []uint64{1, 2, 3}, []uint64{2, 3, 4})}},
		&metadata.UpdatePartition{Topic: "r", Partition: 0, Leader: 3, LeaderEpoch: 2, ISR: []uint64{3, 1, 2}},
		&metadata.UpdatePartition{Topic: "r", Partition: 1, Leader: 2, LeaderEpoch: 1, ISR: []uint64{2, 3, 4}},
		&metadata.RemoveBroker{RaftID: 3})
	p0, _ := s.Owner("r", 0)
	p1, _ := s.Owner("r", 1)
	check(t, p0, metadata.Partition{Owner: node(1), Replicas: []uint64{1, 2, 3}, Leader: 0, LeaderEpoch: 2, ISR: []uint64{1, 2}})
	check(t, p1, metadata.Partition{Owner: node(2), Replicas: []uint64{2, 3, 4}, Leader: 2, LeaderEpoch: 1, ISR: []uint64{2, 4}})
	check(t, s.OfflineReplicas(), []metadata.TopicPartition{{Topic: "r", Partition: 0}, {Topic: "r", Partition: 1}})
	check(t, s.OrphanedPartitions(), []metadata.TopicPartition(nil))
	// A stale report from the removed leader's term is still fenced by epoch; the new
	// leader's report is taken.
	if r := apply(t, s, &metadata.UpdatePartition{Topic: "r", Partition: 0, Leader: 1, LeaderEpoch: 3, ISR: []uint64{1, 2}}).(*metadata.UpdatePartitionResult); r.Code != 0 {
		t.Errorf("new leader: %+v", r)
	}
	// Broker 2 comes back wiped (raft id 12): raft id 2 goes offline.
	mustApply(t, s, &metadata.RegisterBroker{RaftID: 12, NodeID: node(2)})
	p1, _ = s.Owner("r", 1)
	check(t, p1, metadata.Partition{Owner: node(2), Replicas: []uint64{2, 3, 4}, LeaderEpoch: 1, ISR: []uint64{4}})
	// Snapshots carry all of it.
	sn := snap(t, s)
	if !bytes.Equal(snap(t, mustRestore(t, sn)), sn) {
		t.Error("snapshot round trip differs")
	}
	r := mustRestore(t, sn)
	got, _ := r.Owner("r", 0)
	check(t, got, metadata.Partition{Owner: node(1), Replicas: []uint64{1, 2, 3}, Leader: 1, LeaderEpoch: 3, ISR: []uint64{1}}) // raft id 2 left too
}

// Trailing snapshot sections are canonical: present only when not empty, known tags, in
// ascending order.
func TestRestoreRefusesBadSections(t *testing.T) {
	empty := snap(t, metadata.New())[9:]
	s := cluster(t, 2)
	mustApply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{rtopic("r", 1, []uint64{1, 2})}})
	full := snap(t, s)
	body := full[9:]
	// The section (tag 2, a one-byte length, the body) ends the snapshot.
	var sec []byte
	for i := len(body) - 2; i >= 0 && sec == nil; i-- {
		if body[i] == 0x02 && int(body[i+1]) == len(body)-i-2 {
			sec = body[i:]
		}
	}
	if sec == nil {
		t.Fatal("no replicated-partitions section at the end of the snapshot")
	}
	if err := metadata.New().Restore(reseal(append(bytes.Clone(empty), sec...))); err == nil {
		t.Error("a section naming a topic the snapshot does not have was restored")
	}
	for name, data := range map[string][]byte{
		"empty section":  reseal(append(bytes.Clone(empty), 0x02, 0x01, 0x00)),
		"unknown tag":    reseal(append(bytes.Clone(empty), 0x05, 0x00)),
		"repeated tag":   reseal(append(bytes.Clone(body), sec...)),
		"truncated body": reseal(body[:len(body)-1]),
	} {
		if err := metadata.New().Restore(data); err == nil {
			t.Errorf("%s: restored", name)
		}
	}
	if err := metadata.New().Restore(full); err != nil {
		t.Fatal(err)
	}
}
