package metadata_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
)

// reassigned is a four-broker state with topic "r": two partitions on raft ids 1, 2, 3
// (led by 1 at epoch 2, all in sync).
func reassigned(t *testing.T) *metadata.State {
	t.Helper()
	s := cluster(t, 4)
	mustApply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{{Name: "r", ID: tid(1), Partitions: 2,
		Owners: owners(2, node(1)), Replicas: [][]uint64{{1, 2, 3}, {1, 2, 3}}}}})
	for p := range int32(2) {
		mustApply(t, s, &metadata.UpdatePartition{Topic: "r", Partition: p, Leader: 1, LeaderEpoch: 2, ISR: []uint64{1, 2, 3}})
	}
	return s
}

func part(t *testing.T, s *metadata.State, p int32) metadata.Partition {
	t.Helper()
	tp, ok := s.Topic("r")
	if !ok {
		t.Fatal("no topic r")
	}
	return tp.Partitions[p]
}

func alterCodes(t *testing.T, s *metadata.State, items ...metadata.ReassignPartition) []int16 {
	t.Helper()
	r, ok := apply(t, s, &metadata.AlterReassignments{Partitions: items}).(*metadata.AlterReassignmentsResult)
	if !ok {
		t.Fatal("no AlterReassignmentsResult")
	}
	var out []int16
	for _, m := range r.Partitions {
		out = append(out, m.Code)
	}
	return out
}

func complete(t *testing.T, s *metadata.State, p int32, target ...uint64) int16 {
	t.Helper()
	r := apply(t, s, &metadata.CompleteReassignment{Topic: "r", Partition: p, Target: target}).(*metadata.CompleteReassignmentResult)
	return r.Code
}

// A move from {1,2,3} to {4,2,3}: recorded with its adding and removing replicas, the adding
// replica may lead and be in sync during the move, a snapshot keeps it, and completing it
// settles the replicas (owner following the new preferred leader, ISR and leader kept only
// for replicas).
func TestReassignMove(t *testing.T) {
	s := reassigned(t)
	check(t, alterCodes(t, s, metadata.ReassignPartition{Topic: "r", Partition: 0, Target: []uint64{4, 2, 3}}), []int16{0})
	p := part(t, s, 0)
	check(t, p.Moving(), true)
	check(t, p.Replicas, []uint64{1, 2, 3}) // settled until completion
	check(t, p.Members(), []uint64{1, 2, 3, 4})
	reps, adding, removing := p.Reassignment()
	check(t, fmt.Sprint(reps, adding, removing), "[4 2 3 1] [4] [1]")
	p1 := part(t, s, 1)
	check(t, p1.Moving(), false)

	// The adding replica takes over leadership (the old leader is removed last).
	up := apply(t, s, &metadata.UpdatePartition{Topic: "r", Leader: 4, LeaderEpoch: 3, ISR: []uint64{4, 2, 3, 1}}).(*metadata.UpdatePartitionResult)
	check(t, up.Code, int16(0))

	// Snapshot and restore keep the move.
	r := metadata.New()
	if err := r.Restore(snap(t, s)); err != nil {
		t.Fatal(err)
	}
	check(t, string(snap(t, r)), string(snap(t, s)))
	check(t, part(t, r, 0).Target, []uint64{4, 2, 3})

	check(t, complete(t, s, 0, 4, 3, 2), metadata.CodeInvalidReplicaAssignment) // not the target
	check(t, complete(t, s, 1, 1, 2, 3), metadata.CodeNoReassignmentInProgress)
	check(t, complete(t, s, 0, 4, 2, 3), int16(0))
	p = part(t, s, 0)
	check(t, p.Moving(), false)
	check(t, p.Replicas, []uint64{4, 2, 3})
	check(t, p.Adding, []uint64(nil))
	check(t, p.Owner, node(4))
	check(t, p.Leader, uint64(4))
	check(t, p.ISR, []uint64{4, 2, 3})
	check(t, s.PartitionCount(node(4)), int64(1))
	check(t, s.PartitionCount(node(1)), int64(1))
	// A settled state has no reassignment section: it restores to the same bytes.
	r = metadata.New()
	if err := r.Restore(snap(t, s)); err != nil {
		t.Fatal(err)
	}
	check(t, string(snap(t, r)), string(snap(t, s)))
	check(t, complete(t, s, 0, 4, 2, 3), metadata.CodeNoReassignmentInProgress)
}

// Kafka's error codes, item by item; the valid items of a command are applied.
func TestReassignErrors(t *testing.T) {
	s := cluster(t, 4)
	mustApply(t, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{
		{Name: "r", ID: tid(1), Partitions: 2, Owners: owners(2, node(1)), Replicas: [][]uint64{{1, 2, 3}, {1, 2, 3}}},
		{Name: "single", ID: tid(2), Partitions: 1, Owners: owners(1, node(1))},
	}})
	ref := metadata.New()
	if err := ref.Restore(snap(t, s)); err != nil {
		t.Fatal(err)
	}
	var got []int16
	for _, it := range []metadata.ReassignPartition{
		{Topic: "nope", Partition: 0, Target: []uint64{1, 2, 3}},
		{Topic: "r", Partition: 2, Target: []uint64{1, 2, 3}},
		{Topic: "single", Partition: 0, Target: []uint64{1, 2}},
		{Topic: "r", Partition: 0, Target: []uint64{1, 2}},
		{Topic: "r", Partition: 0, Target: []uint64{1, 2, 2}},
		{Topic: "r", Partition: 0, Target: []uint64{1, 2, 9}},
		{Topic: "r", Partition: 0},
	} {
		got = append(got, alterCodes(t, s, it)...)
	}
	if !sameContent(t, s, ref) {
		t.Error("refused reassignments changed the state")
	}
	got = append(got, alterCodes(t, s,
		metadata.ReassignPartition{Topic: "r", Partition: 1, Target: []uint64{1, 2, 4}},
		metadata.ReassignPartition{Topic: "r", Partition: 1, Target: []uint64{1, 2, 3}})...)
	check(t, got, []int16{metadata.CodeUnknownTopicOrPartition, metadata.CodeUnknownTopicOrPartition, metadata.CodeInvalidReplicaAssignment,
		metadata.CodeInvalidReplicationFactor, metadata.CodeInvalidReplicaAssignment, metadata.CodeInvalidReplicaAssignment,
		metadata.CodeNoReassignmentInProgress, 0, metadata.CodeInvalidRequest})
	p0 := part(t, s, 0)
	check(t, p0.Moving(), false)
	check(t, part(t, s, 1).Target, []uint64{1, 2, 4})
	// Validate answers the same and changes nothing.
	before := snap(t, s)
	v := s.Validate(&metadata.AlterReassignments{Partitions: []metadata.ReassignPartition{{Topic: "r", Partition: 0}, {Topic: "r", Partition: 1}}}).(*metadata.AlterReassignmentsResult)
	check(t, []int16{v.Partitions[0].Code, v.Partitions[1].Code}, []int16{metadata.CodeNoReassignmentInProgress, 0})
	check(t, string(snap(t, s)), string(before))
}

// Cancelling moves the partition back: the target becomes its replicas, the added replica is
// still in the group (removing) until the leader completes the revert. A new target during a
// move keeps every replica it may have added.
func TestReassignCancelAndRetarget(t *testing.T) {
	s := reassigned(t)
	check(t, alterCodes(t, s, metadata.ReassignPartition{Topic: "r", Partition: 0, Target: []uint64{4, 2, 3}}), []int16{0})
	check(t, alterCodes(t, s, metadata.ReassignPartition{Topic: "r", Partition: 0}), []int16{0})
	p := part(t, s, 0)
	reps, adding, removing := p.Reassignment()
	check(t, fmt.Sprint(p.Target, reps, adding, removing), "[1 2 3] [1 2 3 4] [] [4]")
	check(t, alterCodes(t, s, metadata.ReassignPartition{Topic: "r", Partition: 0}), []int16{0}) // a second cancel: same
	check(t, complete(t, s, 0, 1, 2, 3), int16(0))
	p = part(t, s, 0)
	check(t, fmt.Sprint(p.Moving(), p.Replicas, p.Adding, p.Owner == node(1)), "false [1 2 3] [] true")

	// Retarget: {1,2,4} then {1,2,3}... the replica 4 stays a member until completion.
	check(t, alterCodes(t, s, metadata.ReassignPartition{Topic: "r", Partition: 1, Target: []uint64{1, 2, 4}}), []int16{0})
	check(t, alterCodes(t, s, metadata.ReassignPartition{Topic: "r", Partition: 1, Target: []uint64{3, 1, 2}}), []int16{0})
	p = part(t, s, 1)
	reps, adding, removing = p.Reassignment()
	check(t, fmt.Sprint(reps, adding, removing), "[3 1 2 4] [] [4]")
	// The removed broker incarnation 4 leaves the ISR (it was reported in sync).
	mustApply(t, s, &metadata.UpdatePartition{Topic: "r", Partition: 1, Leader: 1, LeaderEpoch: 4, ISR: []uint64{1, 2, 3, 4}})
	mustApply(t, s, &metadata.RemoveBroker{RaftID: 4})
	check(t, part(t, s, 1).ISR, []uint64{1, 2, 3})

	// Reordering the replicas of a partition not moving needs no raft change: it is settled at once.
	check(t, alterCodes(t, s, metadata.ReassignPartition{Topic: "r", Partition: 0, Target: []uint64{2, 1, 3}}), []int16{0})
	p = part(t, s, 0)
	check(t, fmt.Sprint(p.Moving(), p.Replicas, p.Owner == node(2)), "false [2 1 3] true")
}

// The reassignment encodings and snapshot section are fixed bytes (doc.go).
func TestReassignGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"AlterReassignments", metadata.EncodeCommand(&metadata.AlterReassignments{Partitions: []metadata.ReassignPartition{{Topic: "t", Partition: 1, Target: []uint64{300, 1}}, {Topic: "t"}}}),
			"01" + "17" + "02" + "0174" + "02" + "02" + "ac02" + "01" + "0174" + "00" + "00"},
		{"CompleteReassignment", metadata.EncodeCommand(&metadata.CompleteReassignment{Topic: "t", Partition: 1, Target: []uint64{300, 1}}),
			"01" + "18" + "0174" + "02" + "02" + "ac02" + "01"},
	} {
		if got := hex.EncodeToString(c.got); got != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, got, c.want)
		}
	}
	s := reassigned(t)
	mustApply(t, s, &metadata.AlterReassignments{Partitions: []metadata.ReassignPartition{{Topic: "r", Partition: 1, Target: []uint64{4, 2, 3}}}})
	// tag 4 | length | 1 topic "r" | 1 partition: 1 | target 4,2,3 | adding 4
	section := "04" + "0b" + "01" + "0172" + "01" + "02" + "03040203" + "0104"
	if got := hex.EncodeToString(snap(t, s)); !strings.HasSuffix(got, section) {
		t.Errorf("reassignments section:\ngot  %s\nwant it to end in %s", got, section)
	}
}
