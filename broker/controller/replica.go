package controller

import (
	"context"
	"errors"
	"slices"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Replica is this broker's member of the metadata quorum as the controller uses it: the raft
// node (package broker/quorum) and the metadata state it applies (package broker/metadata),
// behind one narrow interface. QuorumReplica is the real one (quorum.go); tests also use an
// in-memory fake. All methods are safe for concurrent use.
type Replica interface {
	// RaftID is this node's raft id.
	RaftID() uint64
	// Leader is the current leader's raft id, if one is known.
	Leader() (id uint64, ok bool)
	// LeaderWatch is the current leader's raft id (0: none known) and a channel closed at
	// its next change (another leader, none, or the node stopped).
	LeaderWatch() (leader uint64, changed <-chan struct{})
	// TransferLeadership hands the leadership to voter id (leader only) and returns once
	// this node sees id lead.
	TransferLeadership(ctx context.Context, id uint64) error
	// Status is this node's raft view; Progress is filled on the leader only.
	Status() Status
	// ReadBarrier returns once the local state holds every write committed before the call
	// (raft ReadIndex).
	ReadBarrier(ctx context.Context) error
	// Do proposes cmd and returns its result once it is applied on this node. Only the leader
	// proposes: elsewhere it fails with an error wrapping ErrNotLeader.
	Do(ctx context.Context, cmd Command) (any, error)
	// AddLearner, Promote and RemoveMember change the raft membership (leader only).
	AddLearner(ctx context.Context, id uint64, addr endpoint.NodeAddr) error
	Promote(ctx context.Context, id uint64) error
	RemoveMember(ctx context.Context, id uint64) error
	// Changed receives a value (non-blocking send, capacity 1) after an apply or a restore
	// that may have changed topics, brokers or admission.
	Changed() <-chan struct{}

	// The applied state (this node's copy; after a ReadBarrier on the leader, current).
	ClusterID() string
	Topics() []Topic // sorted by name
	Brokers() []Member
	Allowed(node key.PublicKey) bool
	Offsets() []Offset
	Generations() []GroupGeneration   // each group's last recorded generation
	GroupMemberships() []GroupMembers // each group's recorded membership
}

// ErrNotLeader is wrapped by Replica.Do on a node that is not the raft leader.
var ErrNotLeader = errors.New("controller: not the metadata quorum leader")

// Status is a node's raft view.
type Status struct {
	RaftID, Leader, Term, Commit, Applied uint64
	Voters, Learners                      []uint64
	// Progress of every member, by raft id (leader only).
	Progress map[uint64]Progress
	// Removed: this node saw its own removal from the quorum applied (it never rejoins with
	// this raft id; a fresh data directory makes a new one).
	Removed bool
}

// Progress is the leader's view of one member.
type Progress struct {
	Match        uint64
	RecentActive bool
}

// Topic is one topic of the metadata state.
type Topic struct {
	Name       string
	ID         [16]byte
	Partitions int32
	Configs    map[string]string
	Owners     []key.PublicKey // by partition
	// Replicas is nil for a single-owner topic; for a replicated one (issue #16) it holds, by
	// partition, the raft ids of the replicas, the preferred leader first (whose NodeId is
	// the partition's owner).
	Replicas [][]uint64
	// Leaders is, by partition of a replicated topic, what its leader last reported.
	Leaders []PartitionLeader
	// Moves is, by partition of a replicated topic, its replica reassignment in progress
	// (zero: none; moves.go).
	Moves []Move
}

// Move is a partition's replica reassignment in progress (metadata.Partition.Target and
// Adding): it moves to Target; Adding are the replicas outside Replicas the move may have
// added to its raft group (they join it empty).
type Move struct {
	Target []uint64
	Adding []uint64
}

// Moving reports whether a reassignment is in progress.
func (m Move) Moving() bool { return m.Target != nil }

// members is partition p's raft group as the brokers run it: its replicas, then the replicas
// its reassignment may have added.
func (t *Topic) members(p int) []uint64 {
	if p >= len(t.Replicas) {
		return nil
	}
	out := slices.Clone(t.Replicas[p])
	if p < len(t.Moves) {
		for _, id := range t.Moves[p].Adding {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// move is partition p's reassignment (zero: none).
func (t *Topic) move(p int) Move {
	if p < len(t.Moves) {
		return t.Moves[p]
	}
	return Move{}
}

// ReplicationFactor is the topic's replication factor (1 for a single-owner topic).
func (t *Topic) ReplicationFactor() int {
	if len(t.Replicas) == 0 {
		return 1
	}
	return len(t.Replicas[0])
}

// PartitionLeader is a replicated partition's leader as recorded on the quorum.
type PartitionLeader struct {
	Leader uint64 // raft id; 0 while none was reported (or it left the cluster)
	Epoch  int32  // leader epoch (raft term)
	ISR    []uint64
}

// Member is one registered broker.
type Member struct {
	RaftID  uint64
	NodeID  key.PublicKey
	Addr    endpoint.NodeAddr
	Rack    string
	KafkaID int32  // the Kafka-visible broker id the state assigned (0: none yet)
	Kafka   string // advertised Kafka listener host:port (direct data path), "" for none
}

// sameRegistration reports whether m and o register the same thing (raft id, NodeId,
// addresses, rack, Kafka listener).
func (m Member) sameRegistration(o Member) bool {
	return m.RaftID == o.RaftID && m.NodeID == o.NodeID && sameAddr(m.Addr, o.Addr) && m.Rack == o.Rack && m.Kafka == o.Kafka
}

// Offset is one committed group offset.
type Offset struct {
	Group       string
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitMs    int64
	Writer, Seq uint64 // the commit's stamp (brokerop.OffsetCommitReq; group.Superseded)
}

// GroupGeneration is a group's generation as the quorum records it.
type GroupGeneration struct {
	Group      string
	Generation int32
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Command is one metadata change (package broker/metadata's commands, in the controller's
// terms).
type Command interface{ isCommand() }

// The commands. Results (Replica.Do): CreateTopics → []int16 (a Kafka error code per topic),
// DeleteTopics → []int16, CreatePartitions and AlterConfigs → int16, AllocateProducerIDs → int64
// (the first id of the block); the others → nil.
type (
	InitCluster    struct{ ClusterID string }
	RegisterBroker struct{ Member Member }
	RemoveBroker   struct{ RaftID uint64 }
	AllowBroker    struct {
		NodeID key.PublicKey
		Allow  bool // false: disallow
	}
	CreateTopics     struct{ Topics []Topic }
	DeleteTopics     struct{ Names []string }
	CreatePartitions struct {
		Name     string
		Count    int32
		Owners   []key.PublicKey // of the new partitions
		Replicas [][]uint64      // of the new partitions (replicated topics only)
	}
	// UpdatePartition records a replicated partition's leader report; Do returns
	// UpdateResult.
	UpdatePartition struct {
		Topic       string
		Partition   int32
		Leader      uint64
		LeaderEpoch int32
		ISR         []uint64
	}
	AlterConfigs struct {
		Name   string
		Set    map[string]string
		Delete []string
	}
	Reassign struct {
		Topic     string
		Partition int32
		Owner     key.PublicKey
	}
	AllocateProducerIDs struct{ Count int64 }
	CommitOffsets       struct {
		Group   string
		Offsets []Offset
	}
	DeleteGroups struct{ Groups []string }
	// GroupGenerations records groups' generations (metadata.GroupGenerations).
	GroupGenerations struct{ Groups []GroupGeneration }
	// GroupMembers records a group's membership (metadata.GroupMembers; Record is
	// broker/group's Membership encoding); Replica.GroupMemberships lists them.
	GroupMembers struct {
		Group      string
		Generation int32
		Record     []byte
	}
	DeleteOffsets struct {
		Group      string
		Partitions []TopicPartition
	}
)

func (InitCluster) isCommand()         {}
func (RegisterBroker) isCommand()      {}
func (RemoveBroker) isCommand()        {}
func (AllowBroker) isCommand()         {}
func (CreateTopics) isCommand()        {}
func (DeleteTopics) isCommand()        {}
func (CreatePartitions) isCommand()    {}
func (AlterConfigs) isCommand()        {}
func (Reassign) isCommand()            {}
func (AllocateProducerIDs) isCommand() {}
func (CommitOffsets) isCommand()       {}
func (DeleteGroups) isCommand()        {}
func (GroupGenerations) isCommand()    {}
func (GroupMembers) isCommand()        {}
func (DeleteOffsets) isCommand()       {}
func (UpdatePartition) isCommand()     {}

// UpdateResult is the result of an UpdatePartition: a Kafka error code (0: recorded, or it
// was already so) and message.
type UpdateResult struct {
	Code    int16
	Message string
}
