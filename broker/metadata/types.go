package metadata

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
)

// NodeID is a broker's mesh identity (its ed25519 public key), the 32 bytes of key.PublicKey.
type NodeID [32]byte

// IsZero reports whether n is the all-zero id (never a valid broker).
func (n NodeID) IsZero() bool { return n == NodeID{} }

// String returns n as 64 hex digits.
func (n NodeID) String() string { return hex.EncodeToString(n[:]) }

// TopicID is Kafka's 16-byte topic id (the same bytes as broker.TopicID).
type TopicID [16]byte

// IsZero reports whether id is the all-zero id (never a valid topic id).
func (id TopicID) IsZero() bool { return id == TopicID{} }

// Kafka error codes the state machine returns, with Kafka's numeric values (the test checks
// them against franz-go's kerr table). The state machine does not import kerr: it depends only
// on the standard library and internal/postcard.
const (
	CodeNone                     int16 = 0
	CodeUnknownServerError       int16 = -1
	CodeUnknownTopicOrPartition  int16 = 3
	CodeBrokerNotAvailable       int16 = 8
	CodeInvalidTopicException    int16 = 17
	CodeInvalidGroupID           int16 = 24
	CodeTopicAlreadyExists       int16 = 36
	CodeInvalidPartitions        int16 = 37
	CodeInvalidReplicaAssignment int16 = 39
	CodeInvalidReplicationFactor int16 = 38
	CodeInvalidRequest           int16 = 42
	CodeGroupIDNotFound          int16 = 69
	CodeFencedLeaderEpoch        int16 = 74
	CodeNoReassignmentInProgress int16 = 85
	CodeInconsistentClusterID    int16 = 104
)

// MaxProducerIDBlock is the largest Count an AllocateProducerIDs may ask for.
const MaxProducerIDBlock = 1 << 20

// Broker is one member of the cluster as the metadata state records it.
type Broker struct {
	RaftID  uint64 // this incarnation's raft id (non-zero)
	NodeID  NodeID // mesh identity; at most one live raft id per NodeID
	Addr    []byte // opaque peer address bytes (an encoded NodeAddr)
	Rack    string
	KafkaID int32 // Kafka-visible broker id: assigned on a NodeID's first registration, kept for it forever
	// Kafka is the host:port Kafka clients dial to reach this broker's own Kafka listener
	// (the direct data path, issue #16 item 4); "" when it serves Kafka only through gateways.
	Kafka string
}

func (b Broker) clone() Broker {
	b.Addr = slices.Clone(b.Addr)
	return b
}

// Partition is one partition's placement. A single-owner partition (replication factor 1)
// has an Owner only. A replicated partition (replication factor ≥ 2, issue #16) is a raft
// group of its Replicas; its Owner is the NodeID of the preferred leader Replicas[0] as it
// was registered when the partition was created, and Leader, LeaderEpoch and ISR are what its
// leader last reported (UpdatePartition).
type Partition struct {
	Owner NodeID // the broker that holds the partition's log (replicated: the preferred leader's)
	Epoch int32  // 0 at creation, +1 on every Reassign of the partition

	Replicas    []uint64 // raft ids of the replicas, preferred leader first; nil for a single-owner partition
	Leader      uint64   // raft id of the leader last reported; 0 while none is known
	LeaderEpoch int32    // the raft term of that leader (Kafka's leader epoch); 0 before any report
	ISR         []uint64 // in-sync replicas as the leader last reported them (all replicas at creation)

	// A replica reassignment in progress (reassign.go): Target is the replica list the
	// partition moves to (nil: none; Replicas itself when a cancelled one is being undone),
	// Adding the replicas outside Replicas that the move may have put in the raft group
	// (they join it empty, never bootstrapping it). Replicas stays the settled list until
	// CompleteReassignment makes it Target.
	Target []uint64
	Adding []uint64
}

// Replicated reports whether p is a replicated partition (a raft group of its replicas).
func (p *Partition) Replicated() bool { return len(p.Replicas) > 0 }

func (p Partition) clone() Partition {
	p.Replicas, p.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
	p.Target, p.Adding = slices.Clone(p.Target), slices.Clone(p.Adding)
	return p
}

// Topic is one topic's metadata.
type Topic struct {
	Name       string
	ID         TopicID
	Configs    map[string]string // overrides of the broker defaults; nil when none
	Partitions []Partition       // index = partition number
}

func (t *Topic) clone() Topic {
	ps := make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		ps[i] = p.clone()
	}
	return Topic{Name: t.Name, ID: t.ID, Configs: maps.Clone(t.Configs), Partitions: ps}
}

// ReplicationFactor is the topic's replication factor: the length of its partitions' replica
// lists, 1 for a single-owner topic.
func (t *Topic) ReplicationFactor() int {
	if len(t.Partitions) == 0 || !t.Partitions[0].Replicated() {
		return 1
	}
	return len(t.Partitions[0].Replicas)
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// CommittedOffset is a group's committed offset for one partition, as group.Record carries it.
type CommittedOffset struct {
	Offset       int64
	LeaderEpoch  int32
	Metadata     string
	CommitTimeMs int64
	Writer, Seq  uint64 // the stamp of the commit that wrote it (OffsetCommit); 0: none
}

// GroupOffset is one committed offset of a group with its partition.
type GroupOffset struct {
	TopicPartition
	CommittedOffset
}

// ValidateTopicName applies Kafka's topic name rules; it returns Kafka's message or "".
// Package broker applies them too, to a broker without a metadata quorum.
func ValidateTopicName(name string) string {
	const maxTopicNameLen = 249
	switch {
	case name == "":
		return "Topic name is illegal, it can't be empty"
	case name == "." || name == "..":
		return `Topic name cannot be "." or ".."`
	case len(name) > maxTopicNameLen:
		return fmt.Sprintf("Topic name is illegal, it can't be longer than %d characters, topic name: %s", maxTopicNameLen, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Sprintf("Topic name %q is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'", name)
		}
	}
	return ""
}

// CollisionKey maps names that Kafka's metrics would confuse ('.' vs '_') to one key.
func CollisionKey(name string) string {
	b := []byte(name)
	for i, c := range b {
		if c == '.' {
			b[i] = '_'
		}
	}
	return string(b)
}
