package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/broker/quorum"
	"github.com/meshkafka/meshkafka/broker/quorum/raftmesh"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// StateMachine is the quorum.StateMachine a broker's raft node applies: the metadata state,
// with a signal after every apply or restore (Replica.Changed).
type StateMachine struct {
	st      *metadata.State
	changed chan struct{}
}

// NewStateMachine returns an empty metadata state machine.
func NewStateMachine() *StateMachine {
	return &StateMachine{st: metadata.New(), changed: make(chan struct{}, 1)}
}

// State is the metadata state (safe for concurrent use).
func (s *StateMachine) State() *metadata.State { return s.st }

// Apply implements quorum.StateMachine.
func (s *StateMachine) Apply(index uint64, data []byte) any {
	r := s.st.Apply(index, data)
	switch r.(type) {
	case *metadata.CommitOffsetsResult, *metadata.DeleteOffsetsResult, *metadata.DeleteGroupsResult, *metadata.AllocateProducerIDsResult,
		*metadata.GroupGenerationsResult, *metadata.GroupMembersResult,
		*metadata.UpdatePartitionResult:
		// Offsets, producer ids and partition leaders: nothing the brokers or the transport follow.
	default:
		s.signal()
	}
	return r
}

// Snapshot implements quorum.StateMachine.
func (s *StateMachine) Snapshot() ([]byte, error) { return s.st.Snapshot() }

// Restore implements quorum.StateMachine.
func (s *StateMachine) Restore(data []byte) error {
	err := s.st.Restore(data)
	s.signal()
	return err
}

func (s *StateMachine) signal() { kick(s.changed) }

var _ quorum.StateMachine = (*StateMachine)(nil)

// QuorumReplica is the Replica of a broker: its raft node and the state machine the node
// applies.
type QuorumReplica struct {
	node *quorum.Node
	sm   *StateMachine
	id   uint64
	keys sync.Map // metadata.NodeID → key.PublicKey: each NodeId's curve check done once
}

// NewQuorumReplica returns the Replica over node, which applies sm; id is node's raft id.
func NewQuorumReplica(node *quorum.Node, sm *StateMachine, id uint64) *QuorumReplica {
	return &QuorumReplica{node: node, sm: sm, id: id}
}

// RaftID implements Replica.
func (q *QuorumReplica) RaftID() uint64 { return q.id }

// Leader implements Replica.
func (q *QuorumReplica) Leader() (uint64, bool) { return q.node.Leader() }

// LeaderWatch implements Replica.
func (q *QuorumReplica) LeaderWatch() (uint64, <-chan struct{}) { return q.node.LeaderWatch() }

// TransferLeadership implements Replica.
func (q *QuorumReplica) TransferLeadership(ctx context.Context, id uint64) error {
	return notLeader(q.node.TransferLeadership(ctx, id))
}

// Status implements Replica.
func (q *QuorumReplica) Status() Status {
	s := q.node.Status()
	out := Status{RaftID: s.ID, Leader: s.Leader, Term: s.Term, Commit: s.Commit, Applied: s.Applied, Voters: s.Voters, Learners: s.Learners, Removed: s.Removed}
	if s.Progress != nil {
		out.Progress = make(map[uint64]Progress, len(s.Progress))
		for id, p := range s.Progress {
			out.Progress[id] = Progress{Match: p.Match, RecentActive: p.RecentActive}
		}
	}
	return out
}

// ReadBarrier implements Replica.
func (q *QuorumReplica) ReadBarrier(ctx context.Context) error {
	return notLeader(q.node.ReadBarrier(ctx))
}

// AddLearner implements Replica.
func (q *QuorumReplica) AddLearner(ctx context.Context, id uint64, addr endpoint.NodeAddr) error {
	return notLeader(q.node.AddLearner(ctx, id, raftmesh.EncodeAddr(addr)))
}

// Promote implements Replica.
func (q *QuorumReplica) Promote(ctx context.Context, id uint64) error {
	return notLeader(q.node.Promote(ctx, id))
}

// RemoveMember implements Replica.
func (q *QuorumReplica) RemoveMember(ctx context.Context, id uint64) error {
	return notLeader(q.node.Remove(ctx, id))
}

// Changed implements Replica.
func (q *QuorumReplica) Changed() <-chan struct{} { return q.sm.changed }

// notLeader makes a quorum's not-leader error also wrap ErrNotLeader.
func notLeader(err error) error {
	if err != nil && errors.Is(err, quorum.ErrNotLeader) {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return err
}

func nodeID(k key.PublicKey) metadata.NodeID { return metadata.NodeID(k.Bytes()) }

func nodeIDs(ks []key.PublicKey) []metadata.NodeID {
	out := make([]metadata.NodeID, len(ks))
	for i, k := range ks {
		out[i] = nodeID(k)
	}
	return out
}

// publicKey turns a NodeId of the state into a key. The curve check of
// key.PublicKeyFromBytes costs tens of microseconds, and Topics and Brokers convert every
// partition's owner on each call (the controller polls them), so each NodeId is checked once
// and kept: there are as many as brokers ever registered.
func (q *QuorumReplica) publicKey(n metadata.NodeID) key.PublicKey {
	if k, ok := q.keys.Load(n); ok {
		return k.(key.PublicKey)
	}
	k, _ := key.PublicKeyFromBytes(n[:])
	q.keys.Store(n, k)
	return k
}

// Do implements Replica.
func (q *QuorumReplica) Do(ctx context.Context, cmd Command) (any, error) {
	if mc, ok := cmd.(MetaCommand); ok {
		return q.proposeMeta(ctx, mc.Cmd) // security commands (security.go)
	}
	var mc metadata.Command
	switch c := cmd.(type) {
	case InitCluster:
		mc = &metadata.InitCluster{ClusterID: c.ClusterID}
	case RegisterBroker:
		mc = &metadata.RegisterBroker{RaftID: c.Member.RaftID, NodeID: nodeID(c.Member.NodeID), Addr: raftmesh.EncodeAddr(c.Member.Addr), Rack: c.Member.Rack, Kafka: c.Member.Kafka}
	case RemoveBroker:
		mc = &metadata.RemoveBroker{RaftID: c.RaftID}
	case AllowBroker:
		if c.Allow {
			mc = &metadata.AllowBroker{NodeID: nodeID(c.NodeID)}
		} else {
			mc = &metadata.DisallowBroker{NodeID: nodeID(c.NodeID)}
		}
	case CreateTopics:
		m := &metadata.CreateTopics{}
		for _, t := range c.Topics {
			m.Topics = append(m.Topics, metadata.NewTopic{Name: t.Name, ID: t.ID, Partitions: t.Partitions, Configs: t.Configs, Owners: nodeIDs(t.Owners),
				Replicas: t.Replicas})
		}
		mc = m
	case DeleteTopics:
		mc = &metadata.DeleteTopics{Names: c.Names}
	case CreatePartitions:
		mc = &metadata.CreatePartitions{Topics: []metadata.NewPartitions{{Name: c.Name, Count: c.Count, Owners: nodeIDs(c.Owners), Replicas: c.Replicas}}}
	case UpdatePartition:
		mc = &metadata.UpdatePartition{Topic: c.Topic, Partition: c.Partition, Leader: c.Leader, LeaderEpoch: c.LeaderEpoch, ISR: c.ISR}
	case AlterConfigs:
		mc = &metadata.AlterConfigs{Topics: []metadata.ConfigChange{{Name: c.Name, Set: c.Set, Delete: c.Delete}}}
	case Reassign:
		mc = &metadata.Reassign{Moves: []metadata.Move{{Topic: c.Topic, Partition: c.Partition, Owner: nodeID(c.Owner)}}}
	case AllocateProducerIDs:
		mc = &metadata.AllocateProducerIDs{Count: int32(c.Count)}
	case CommitOffsets:
		m := &metadata.CommitOffsets{Group: c.Group}
		for _, o := range c.Offsets {
			m.Offsets = append(m.Offsets, metadata.OffsetCommit{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset,
				LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTimeMs: o.CommitMs, Writer: o.Writer, Seq: o.Seq})
		}
		mc = m
	case DeleteGroups:
		mc = &metadata.DeleteGroups{Groups: c.Groups}
	case GroupGenerations:
		m := &metadata.GroupGenerations{}
		for _, g := range c.Groups {
			m.Groups = append(m.Groups, metadata.GroupGeneration{Group: g.Group, Generation: g.Generation})
		}
		mc = m
	case GroupMembers:
		mc = &metadata.GroupMembers{Group: c.Group, Generation: c.Generation, Record: c.Record}
	case DeleteOffsets:
		m := &metadata.DeleteOffsets{Group: c.Group}
		for _, tp := range c.Partitions {
			m.Partitions = append(m.Partitions, metadata.TopicPartition{Topic: tp.Topic, Partition: tp.Partition})
		}
		mc = m
	default:
		return nil, fmt.Errorf("controller: unknown command %T", cmd)
	}
	res, err := q.node.Propose(ctx, metadata.EncodeCommand(mc))
	if err != nil {
		return nil, notLeader(err)
	}
	switch r := res.(type) {
	case error:
		return nil, fmt.Errorf("controller: metadata apply: %w", r)
	case *metadata.TopicsResult:
		codes := make([]int16, len(r.Topics))
		for i, t := range r.Topics {
			codes[i] = t.Code
		}
		if len(codes) == 1 && (isSingle(cmd)) {
			return codes[0], nil
		}
		return codes, nil
	case *metadata.AllocateProducerIDsResult:
		if r.Code != 0 {
			return nil, fmt.Errorf("controller: allocate producer ids: Kafka error %d", r.Code)
		}
		return r.First, nil
	case *metadata.RegisterBrokerResult:
		if r.Code != 0 {
			return nil, fmt.Errorf("controller: register broker: Kafka error %d: %s", r.Code, r.Message)
		}
		return nil, nil
	case *metadata.UpdatePartitionResult:
		return UpdateResult{Code: r.Code, Message: r.Message}, nil
	case *metadata.GroupMembersResult:
		if r.Code != 0 {
			return nil, fmt.Errorf("controller: record group members: Kafka error %d", r.Code)
		}
		return nil, nil // a stale record changed nothing: a newer one is recorded
	case *metadata.ReassignResult:
		for _, m := range r.Moves {
			if m.Code != 0 {
				return nil, fmt.Errorf("controller: reassign: Kafka error %d: %s", m.Code, m.Message)
			}
		}
		return nil, nil
	}
	return nil, nil
}

func isSingle(cmd Command) bool {
	switch cmd.(type) {
	case CreatePartitions, AlterConfigs:
		return true
	}
	return false
}

// ClusterID implements Replica.
func (q *QuorumReplica) ClusterID() string { return q.sm.st.ClusterID() }

// Topics implements Replica.
func (q *QuorumReplica) Topics() []Topic {
	ts := q.sm.st.Topics()
	out := make([]Topic, len(ts))
	for i, t := range ts {
		out[i] = Topic{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Partitions)), Configs: t.Configs, Owners: make([]key.PublicKey, len(t.Partitions))}
		for j, p := range t.Partitions {
			out[i].Owners[j] = q.publicKey(p.Owner)
			if p.Replicated() {
				if out[i].Replicas == nil {
					out[i].Replicas = make([][]uint64, len(t.Partitions))
					out[i].Leaders = make([]PartitionLeader, len(t.Partitions))
					out[i].Moves = make([]Move, len(t.Partitions))
				}
				out[i].Replicas[j] = p.Replicas
				out[i].Leaders[j] = PartitionLeader{Leader: p.Leader, Epoch: p.LeaderEpoch, ISR: p.ISR}
				out[i].Moves[j] = Move{Target: p.Target, Adding: p.Adding}
			}
		}
	}
	return out
}

// Brokers implements Replica.
func (q *QuorumReplica) Brokers() []Member {
	bs := q.sm.st.Brokers()
	out := make([]Member, 0, len(bs))
	for _, b := range bs {
		m := Member{RaftID: b.RaftID, NodeID: q.publicKey(b.NodeID), Rack: b.Rack, KafkaID: b.KafkaID, Kafka: b.Kafka}
		if a, err := raftmesh.DecodeAddr(b.Addr); err == nil {
			m.Addr = a
		} else {
			m.Addr = endpoint.NodeAddr{ID: m.NodeID}
		}
		out = append(out, m)
	}
	return out
}

// Allowed implements Replica.
func (q *QuorumReplica) Allowed(n key.PublicKey) bool { return q.sm.st.Allowed(nodeID(n)) }

// Offsets implements Replica.
func (q *QuorumReplica) Offsets() []Offset {
	var out []Offset
	for _, g := range q.sm.st.Groups() {
		for _, o := range q.sm.st.GroupOffsets(g) {
			out = append(out, Offset{Group: g, Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch,
				Metadata: o.Metadata, CommitMs: o.CommitTimeMs, Writer: o.Writer, Seq: o.Seq})
		}
	}
	return out
}

// Generations implements Replica.
func (q *QuorumReplica) Generations() []GroupGeneration {
	var out []GroupGeneration
	for _, g := range q.sm.st.GroupGenerations() {
		out = append(out, GroupGeneration{Group: g.Group, Generation: g.Generation})
	}
	return out
}

// GroupMemberships implements Replica.
func (q *QuorumReplica) GroupMemberships() []GroupMembers {
	var out []GroupMembers
	for _, m := range q.sm.st.GroupMemberships() {
		out = append(out, GroupMembers{Group: m.Group, Generation: m.Generation, Record: m.Record})
	}
	return out
}

var _ Replica = (*QuorumReplica)(nil)
