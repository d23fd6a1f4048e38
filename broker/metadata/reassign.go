package metadata

import (
	"fmt"
	"slices"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// Replica reassignments of replicated partitions (issue #16 item 3; Kafka's
// AlterPartitionReassignments). The state records what a partition moves to; the raft
// membership changes that carry it out are the partition leader's (broker/controller), which
// proposes CompleteReassignment once its raft group's voters are the target.
//
// While a reassignment runs, a partition's Replicas is the list it had (its raft group's
// voters at the start), Target the list it moves to, and Adding the replicas outside Replicas
// the move may have added to the raft group. The brokers run the partition's raft group on
// Replicas ∪ Adding; the replicas of Adding join it empty (they never bootstrap it). The
// leader and ISR reported during a move may name any of them.

// AlterReassignments starts, changes or cancels reassignments, one item per partition. An
// empty Target cancels (Kafka's null replicas): the partition then moves back to its
// Replicas (Target = Replicas) until the raft group is so again.
type AlterReassignments struct{ Partitions []ReassignPartition }

// ReassignPartition is one partition's target replica list (raft ids, preferred leader
// first), or empty to cancel.
type ReassignPartition struct {
	Topic     string
	Partition int32
	Target    []uint64
}

// CompleteReassignment records that a partition's raft group now has exactly Target as its
// voters: Replicas becomes Target (and the owner its first replica's NodeID) and the move
// ends. It is applied only if Target is the partition's current target.
type CompleteReassignment struct {
	Topic     string
	Partition int32
	Target    []uint64
}

// AlterReassignmentsResult answers AlterReassignments, one entry per item in order (Epoch
// unused).
type AlterReassignmentsResult struct{ Partitions []MoveResult }

// CompleteReassignmentResult answers CompleteReassignment.
type CompleteReassignmentResult struct {
	Code    int16
	Message string
}

func (*AlterReassignments) kind() uint64   { return kindAlterReassignments }
func (*CompleteReassignment) kind() uint64 { return kindCompleteReassignment }

func (c *AlterReassignments) appendFields(b []byte) []byte {
	b = postcard.AppendUvarint(b, uint64(len(c.Partitions)))
	for _, p := range c.Partitions {
		b = postcard.AppendString(b, p.Topic)
		b = appendI32(b, p.Partition)
		b = appendU64s(b, p.Target)
	}
	return b
}

func (c *CompleteReassignment) appendFields(b []byte) []byte {
	b = postcard.AppendString(b, c.Topic)
	b = appendI32(b, c.Partition)
	return appendU64s(b, c.Target)
}

// member reports whether raft id is in the partition's raft group as the state knows it:
// one of its Replicas or, during a reassignment, of Adding.
func (p *Partition) member(id uint64) bool {
	return slices.Contains(p.Replicas, id) || slices.Contains(p.Adding, id)
}

// Moving reports whether a reassignment of p is in progress.
func (p *Partition) Moving() bool { return p.Target != nil }

// Members is the partition's raft group as the brokers run it: Replicas, then Adding.
func (p *Partition) Members() []uint64 {
	out := slices.Clone(p.Replicas)
	for _, id := range p.Adding {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// Reassignment is a partition's reassignment in Kafka's terms (ListPartitionReassignments):
// Replicas is the whole current set, the target first; Adding the target's replicas that
// were not replicas before; Removing the ones that go.
func (p *Partition) Reassignment() (replicas, adding, removing []uint64) {
	if p.Target == nil {
		return nil, nil, nil
	}
	replicas = slices.Clone(p.Target)
	for _, id := range p.Members() {
		if !slices.Contains(p.Target, id) {
			replicas = append(replicas, id)
			removing = append(removing, id)
		}
	}
	for _, id := range p.Target {
		if !slices.Contains(p.Replicas, id) {
			adding = append(adding, id)
		}
	}
	return replicas, adding, removing
}

func (s *State) alterReassignments(c *AlterReassignments, dry bool) *AlterReassignmentsResult {
	res := &AlterReassignmentsResult{Partitions: make([]MoveResult, len(c.Partitions))}
	seen := map[TopicPartition]bool{}
	for i, it := range c.Partitions {
		fail := func(code int16, format string, args ...any) {
			res.Partitions[i] = MoveResult{Code: code, Message: fmt.Sprintf(format, args...)}
		}
		tp := TopicPartition{it.Topic, it.Partition}
		t := s.topics[it.Topic]
		if t == nil || it.Partition < 0 || int(it.Partition) >= len(t.Partitions) {
			fail(CodeUnknownTopicOrPartition, "Partition %s-%d does not exist.", it.Topic, it.Partition)
			continue
		}
		if seen[tp] {
			fail(CodeInvalidRequest, "Partition %s-%d is listed twice.", it.Topic, it.Partition)
			continue
		}
		seen[tp] = true
		p := &t.Partitions[it.Partition]
		if !p.Replicated() {
			fail(CodeInvalidReplicaAssignment, "Partition %s-%d is not replicated (replication factor 1): its replicas cannot be moved.", it.Topic, it.Partition)
			continue
		}
		if len(it.Target) == 0 { // cancel
			if p.Target == nil {
				fail(CodeNoReassignmentInProgress, "No reassignment of %s-%d is in progress.", it.Topic, it.Partition)
				continue
			}
			if !dry {
				p.Target = slices.Clone(p.Replicas)
			}
			continue
		}
		if code, msg := s.checkTarget(it.Target, len(p.Replicas)); code != CodeNone {
			fail(code, "Partition %s-%d: %s", it.Topic, it.Partition, msg)
			continue
		}
		if dry {
			continue
		}
		switch {
		case p.Target == nil && sameSet(it.Target, p.Replicas):
			// Only the order changes (the preferred leader): no raft change is needed.
			s.setReplicas(p, it.Target)
		default:
			p.Target = slices.Clone(it.Target)
			for _, id := range it.Target {
				if !slices.Contains(p.Replicas, id) && !slices.Contains(p.Adding, id) {
					p.Adding = append(p.Adding, id)
				}
			}
		}
	}
	return res
}

// checkTarget checks a reassignment target: rf distinct registered raft ids.
func (s *State) checkTarget(target []uint64, rf int) (int16, string) {
	if len(target) != rf {
		return CodeInvalidReplicationFactor, fmt.Sprintf("the target lists %d replicas; changing the replication factor (%d) is not supported.", len(target), rf)
	}
	for j, id := range target {
		if s.brokers[id] == nil {
			return CodeInvalidReplicaAssignment, fmt.Sprintf("replica %d is not a registered broker.", id)
		}
		if slices.Contains(target[:j], id) {
			return CodeInvalidReplicaAssignment, fmt.Sprintf("replica %d is listed twice.", id)
		}
	}
	return CodeNone, ""
}

func sameSet(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for _, id := range a {
		if !slices.Contains(b, id) {
			return false
		}
	}
	return true
}

// setReplicas makes reps the partition's settled replica list: the owner follows its first
// replica (when that one is registered), the ISR and leader keep only replicas, and any
// reassignment ends.
func (s *State) setReplicas(p *Partition, reps []uint64) {
	if b := s.brokers[reps[0]]; b != nil && b.NodeID != p.Owner {
		s.owned[p.Owner]--
		if s.owned[p.Owner] <= 0 {
			delete(s.owned, p.Owner)
		}
		p.Owner = b.NodeID
		s.owned[p.Owner]++
	}
	p.Replicas = slices.Clone(reps)
	p.Target, p.Adding = nil, nil
	p.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(id uint64) bool { return !slices.Contains(reps, id) })
	if !slices.Contains(reps, p.Leader) {
		p.Leader = 0
	}
}

func (s *State) completeReassignment(c *CompleteReassignment, dry bool) *CompleteReassignmentResult {
	t := s.topics[c.Topic]
	if t == nil || c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
		return &CompleteReassignmentResult{Code: CodeUnknownTopicOrPartition, Message: fmt.Sprintf("Partition %s-%d does not exist.", c.Topic, c.Partition)}
	}
	p := &t.Partitions[c.Partition]
	switch {
	case p.Target == nil:
		return &CompleteReassignmentResult{Code: CodeNoReassignmentInProgress, Message: fmt.Sprintf("No reassignment of %s-%d is in progress.", c.Topic, c.Partition)}
	case !slices.Equal(p.Target, c.Target):
		return &CompleteReassignmentResult{Code: CodeInvalidReplicaAssignment, Message: fmt.Sprintf("The reassignment of %s-%d now targets %v, not %v.", c.Topic, c.Partition, p.Target, c.Target)}
	}
	if !dry {
		s.setReplicas(p, c.Target)
	}
	return &CompleteReassignmentResult{}
}

// sectionReassignments is the tag of the snapshot section of reassignments in progress.
const sectionReassignments = 4

// movingTopics lists the topics with a reassignment in progress, by name.
func (s *State) movingTopics() []string {
	return s.topicsWhere(s.replicatedTopics(), (*Partition).Moving)
}

// appendReassignments appends the body of the reassignments section: seq<name |
// seq<partition:i32 | target:seq<u64> | adding:seq<u64>>>.
func (s *State) appendReassignments(b []byte, names []string) []byte {
	return s.appendPartitionSection(b, names, (*Partition).Moving, func(b []byte, p *Partition) []byte {
		b = appendU64s(b, p.Target)
		return appendU64s(b, p.Adding)
	})
}

// restoreReassignments reads the section appendReassignments writes into s (whose topics and
// replica lists are read).
func restoreReassignments(d *dec, s *State, check func(bool, string, ...any)) {
	restorePartitionSection(d, s, check, "reassignments", 2, func(name string, idx int32, p *Partition) {
		target := d.u64s()
		adding := d.u64s()
		if d.err != nil {
			return
		}
		check(p.Replicated() && len(target) == len(p.Replicas) && distinct(target) && !slices.Contains(target, 0),
			"topic %q partition %d: bad reassignment target", name, idx)
		check(distinct(adding) && !slices.Contains(adding, 0) && !slices.ContainsFunc(adding, func(id uint64) bool { return slices.Contains(p.Replicas, id) }),
			"topic %q partition %d: bad adding replicas", name, idx)
		check(!slices.ContainsFunc(target, func(id uint64) bool { return !p.member(id) && !slices.Contains(adding, id) }),
			"topic %q partition %d: target replica neither a replica nor adding", name, idx)
		p.Target, p.Adding = target, adding
	})
}
