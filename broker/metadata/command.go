package metadata

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// Command encoding (see doc.go): version:u8 (=1) | kind:uvarint | the command's fields in
// declaration order, postcard-encoded. Maps are encoded as sequences of key/value pairs in
// strictly ascending key order; a decoder refuses any other order, duplicate keys and
// trailing bytes.

const commandVersion = 1

// Command kinds (the varint after the version byte). Never renumber: they are in raft logs.
const (
	kindInitCluster          = 1
	kindRegisterBroker       = 2
	kindRemoveBroker         = 3
	kindAllowBroker          = 4
	kindDisallowBroker       = 5
	kindCreateTopics         = 6
	kindDeleteTopics         = 7
	kindCreatePartitions     = 8
	kindAlterConfigs         = 9
	kindReassign             = 10
	kindAllocateProducerIDs  = 11
	kindCommitOffsets        = 12
	kindDeleteGroups         = 13
	kindDeleteOffsets        = 14
	kindCommitOffsetsOrdered = 15 // CommitOffsets with writer stamps
	kindGroupGenerations     = 16
	// kindGroupMembers         = 17 (groupmembers.go)

	// Replicated partitions (issue #16): kinds 20–29.
	kindCreateTopicsReplicated     = 20 // CreateTopics with a replica list per partition
	kindCreatePartitionsReplicated = 21 // CreatePartitions with a replica list per new partition
	kindUpdatePartition            = 22
	kindAlterReassignments         = 23
	kindCompleteReassignment       = 24
)

// Decoding errors; Apply returns them (wrapped) as the result of an entry it cannot decode.
var (
	ErrMalformed      = errors.New("metadata: malformed command")
	ErrUnknownCommand = errors.New("metadata: unknown command")
	ErrUnknownVersion = errors.New("metadata: unknown command encoding version")
	ErrStaleIndex     = errors.New("metadata: entry index not above the last applied index")
)

// Command is one metadata change: EncodeCommand gives the bytes to propose; DecodeCommand
// reverses it.
type Command interface {
	kind() uint64
	appendFields(b []byte) []byte
}

// EncodeCommand returns c's bytes, the entry to propose: the encoding version, c's kind and
// its fields.
func EncodeCommand(c Command) []byte {
	b := []byte{commandVersion}
	b = postcard.AppendUvarint(b, c.kind())
	return c.appendFields(b)
}

// InitCluster sets the cluster id. The first one wins; later ones change nothing.
type InitCluster struct{ ClusterID string }

// RegisterBroker adds (or updates) a broker incarnation. A new RaftID for a NodeID that is
// registered under another raft id replaces that one (the result names it, for the caller to
// remove from raft).
type RegisterBroker struct {
	RaftID uint64
	NodeID NodeID
	Addr   []byte
	Rack   string
	// Kafka is the broker's advertised Kafka listener, host:port ("" for none). Encoded as an
	// optional trailing field: a registration without one is byte-identical to the older form.
	Kafka string
}

// MaxKafkaAddr bounds a broker's advertised Kafka address (host:port).
const MaxKafkaAddr = 300

// RemoveBroker removes a broker incarnation. Its partitions keep their owner until a Reassign
// moves them (State.OrphanedPartitions lists them).
type RemoveBroker struct{ RaftID uint64 }

// AllowBroker admits a NodeID to join (operator admission); DisallowBroker withdraws it.
type AllowBroker struct{ NodeID NodeID }

// DisallowBroker withdraws an AllowBroker. It does not remove a registered broker.
type DisallowBroker struct{ NodeID NodeID }

// CreateTopics creates topics. Ids and owners come from the proposer (the leader).
// MaxPartitions (> 0) is the per-broker partition limit: no owner may end up with more
// partitions than that (INVALID_PARTITIONS); 0 means no limit.
type CreateTopics struct {
	MaxPartitions int32
	Topics        []NewTopic
}

// NewTopic is one topic of a CreateTopics. Owners has one entry per partition. Replicas is
// nil for a single-owner topic; for a replicated one it has one list of raft ids per
// partition, all of the same length ≥ 2 (the replication factor), preferred leader first, and
// Owners[p] is the NodeID of Replicas[p][0].
type NewTopic struct {
	Name       string
	ID         TopicID
	Partitions int32
	Configs    map[string]string
	Owners     []NodeID
	Replicas   [][]uint64
}

// DeleteTopics deletes topics by name. Committed group offsets of their partitions are kept
// (as the broker's group store does today).
type DeleteTopics struct{ Names []string }

// CreatePartitions grows topics; MaxPartitions as in CreateTopics.
type CreatePartitions struct {
	MaxPartitions int32
	Topics        []NewPartitions
}

// NewPartitions grows one topic to Count partitions; Owners has one entry per new partition,
// and Replicas one replica list per new partition for a replicated topic (of the topic's
// replication factor; nil for a single-owner topic), as in NewTopic.
type NewPartitions struct {
	Name     string
	Count    int32
	Owners   []NodeID
	Replicas [][]uint64
}

// UpdatePartition records what the leader of a replicated partition reports: itself as leader
// at LeaderEpoch (its raft term) and the in-sync replicas. It is applied only if LeaderEpoch is
// not below the stored one (FENCED_LEADER_EPOCH; at an equal epoch only the same leader may
// report), Leader is one of the partition's replicas and ISR is a set of its replicas that
// includes Leader.
type UpdatePartition struct {
	Topic       string
	Partition   int32
	Leader      uint64
	LeaderEpoch int32
	ISR         []uint64
}

// AlterConfigs changes topic configs. Configs are stored as given: validating names and values
// is the proposer's job (broker.validateConfigs), on the result of ApplyConfigChange.
type AlterConfigs struct{ Topics []ConfigChange }

// ConfigChange is one topic's config change: with Replace the topic's configs become Set
// (AlterConfigs), otherwise Set keys are set and Delete keys removed (IncrementalAlterConfigs;
// APPEND/SUBTRACT are resolved by the proposer into a Set).
type ConfigChange struct {
	Name    string
	Replace bool
	Set     map[string]string
	Delete  []string
}

// Reassign moves partitions to new owners (partitions of a removed broker placed again).
type Reassign struct{ Moves []Move }

// Move is one partition's new owner.
type Move struct {
	Topic     string
	Partition int32
	Owner     NodeID
}

// AllocateProducerIDs takes a block of Count producer ids, never handed out before.
type AllocateProducerIDs struct{ Count int32 }

// CommitOffsets stores committed offsets of a group (validated against group membership by
// the coordinator before it proposes; CommitTimeMs comes from the proposer's clock).
type CommitOffsets struct {
	Group   string
	Offsets []OffsetCommit
}

// OffsetCommit is one committed offset, the fields of a group.Record of KindCommit.
//
// Writer and Seq are the commit's stamp (brokerop.OffsetCommitReq): a commit whose Writer
// (not 0) committed the partition's offset under a higher Seq is not applied (a late copy of
// an older commit; the same rule as group.Superseded). Writer 0: applied in arrival order.
type OffsetCommit struct {
	Topic        string
	Partition    int32
	Offset       int64
	LeaderEpoch  int32
	Metadata     string
	CommitTimeMs int64
	Writer, Seq  uint64
}

// GroupGenerations records the last generation each group's coordinator handed out (it is
// recorded before the members learn it). A coordinator that starts later numbers the group's
// generations above it: generations only go up, as Kafka's (whose coordinator stores them with
// the group), and a member's claim on a partition under an old coordinator's generation never
// outranks the current owner's (KIP-792). A generation at or below the recorded one changes
// nothing. Kept when the group's offsets are deleted.
type GroupGenerations struct{ Groups []GroupGeneration }

// GroupGeneration is one group's generation.
type GroupGeneration struct {
	Group      string
	Generation int32
}

// DeleteGroups removes groups with all their committed offsets.
type DeleteGroups struct{ Groups []string }

// DeleteOffsets removes committed offsets of one group.
type DeleteOffsets struct {
	Group      string
	Partitions []TopicPartition
}

func (*InitCluster) kind() uint64    { return kindInitCluster }
func (*RegisterBroker) kind() uint64 { return kindRegisterBroker }
func (*RemoveBroker) kind() uint64   { return kindRemoveBroker }
func (*AllowBroker) kind() uint64    { return kindAllowBroker }
func (*DisallowBroker) kind() uint64 { return kindDisallowBroker }
func (c *CreateTopics) kind() uint64 {
	for _, t := range c.Topics {
		if len(t.Replicas) > 0 {
			return kindCreateTopicsReplicated
		}
	}
	return kindCreateTopics
}
func (*DeleteTopics) kind() uint64 { return kindDeleteTopics }
func (c *CreatePartitions) kind() uint64 {
	for _, t := range c.Topics {
		if len(t.Replicas) > 0 {
			return kindCreatePartitionsReplicated
		}
	}
	return kindCreatePartitions
}
func (*UpdatePartition) kind() uint64     { return kindUpdatePartition }
func (*AlterConfigs) kind() uint64        { return kindAlterConfigs }
func (*Reassign) kind() uint64            { return kindReassign }
func (*AllocateProducerIDs) kind() uint64 { return kindAllocateProducerIDs }
func (c *CommitOffsets) kind() uint64 {
	for _, o := range c.Offsets {
		if o.Writer != 0 {
			return kindCommitOffsetsOrdered
		}
	}
	return kindCommitOffsets
}
func (*DeleteGroups) kind() uint64     { return kindDeleteGroups }
func (*GroupGenerations) kind() uint64 { return kindGroupGenerations }
func (*DeleteOffsets) kind() uint64    { return kindDeleteOffsets }

// ---- field encoders ----

func appendI32(b []byte, v int32) []byte { return postcard.AppendZigzag(b, int64(v)) }

func appendStrings(b []byte, ss []string) []byte {
	b = postcard.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = postcard.AppendString(b, s)
	}
	return b
}

func appendNodeIDs(b []byte, ns []NodeID) []byte {
	b = postcard.AppendUvarint(b, uint64(len(ns)))
	for _, n := range ns {
		b = append(b, n[:]...)
	}
	return b
}

func appendU64s(b []byte, vs []uint64) []byte {
	b = postcard.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = postcard.AppendUvarint(b, v)
	}
	return b
}

func appendReplicas(b []byte, rs [][]uint64) []byte {
	b = postcard.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = appendU64s(b, r)
	}
	return b
}

func appendMap(b []byte, m map[string]string) []byte { return appendByKey(b, m, postcard.AppendString) }

// appendByKey appends m in key order: its length, then each key and what each appends of
// the key's value.
func appendByKey[V any](b []byte, m map[string]V, each func([]byte, V) []byte) []byte {
	b = postcard.AppendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = postcard.AppendString(b, k)
		b = each(b, m[k])
	}
	return b
}

// appendSectionByKey is appendByKey for the body of a snapshot section: nil, no section, if
// m is empty.
func appendSectionByKey[V any](b []byte, m map[string]V, each func([]byte, V) []byte) []byte {
	if len(m) == 0 {
		return nil
	}
	return appendByKey(b, m, each)
}

func (c *InitCluster) appendFields(b []byte) []byte { return postcard.AppendString(b, c.ClusterID) }

func (c *RegisterBroker) appendFields(b []byte) []byte {
	b = postcard.AppendUvarint(b, c.RaftID)
	b = append(b, c.NodeID[:]...)
	b = postcard.AppendBytes(b, c.Addr)
	b = postcard.AppendString(b, c.Rack)
	if c.Kafka != "" {
		b = postcard.AppendString(b, c.Kafka)
	}
	return b
}

func (c *RemoveBroker) appendFields(b []byte) []byte   { return postcard.AppendUvarint(b, c.RaftID) }
func (c *AllowBroker) appendFields(b []byte) []byte    { return append(b, c.NodeID[:]...) }
func (c *DisallowBroker) appendFields(b []byte) []byte { return append(b, c.NodeID[:]...) }

func (c *CreateTopics) appendFields(b []byte) []byte {
	b = appendI32(b, c.MaxPartitions)
	b = postcard.AppendUvarint(b, uint64(len(c.Topics)))
	for _, t := range c.Topics {
		b = postcard.AppendString(b, t.Name)
		b = append(b, t.ID[:]...)
		b = appendI32(b, t.Partitions)
		b = appendMap(b, t.Configs)
		b = appendNodeIDs(b, t.Owners)
		if c.kind() == kindCreateTopicsReplicated {
			b = appendReplicas(b, t.Replicas)
		}
	}
	return b
}

func (c *DeleteTopics) appendFields(b []byte) []byte { return appendStrings(b, c.Names) }

func (c *CreatePartitions) appendFields(b []byte) []byte {
	b = appendI32(b, c.MaxPartitions)
	b = postcard.AppendUvarint(b, uint64(len(c.Topics)))
	for _, t := range c.Topics {
		b = postcard.AppendString(b, t.Name)
		b = appendI32(b, t.Count)
		b = appendNodeIDs(b, t.Owners)
		if c.kind() == kindCreatePartitionsReplicated {
			b = appendReplicas(b, t.Replicas)
		}
	}
	return b
}

func (c *UpdatePartition) appendFields(b []byte) []byte {
	b = postcard.AppendString(b, c.Topic)
	b = appendI32(b, c.Partition)
	b = postcard.AppendUvarint(b, c.Leader)
	b = appendI32(b, c.LeaderEpoch)
	return appendU64s(b, c.ISR)
}

func (c *AlterConfigs) appendFields(b []byte) []byte {
	b = postcard.AppendUvarint(b, uint64(len(c.Topics)))
	for _, t := range c.Topics {
		b = postcard.AppendString(b, t.Name)
		b = postcard.AppendBool(b, t.Replace)
		b = appendMap(b, t.Set)
		b = appendStrings(b, t.Delete)
	}
	return b
}

func (c *Reassign) appendFields(b []byte) []byte {
	b = postcard.AppendUvarint(b, uint64(len(c.Moves)))
	for _, m := range c.Moves {
		b = postcard.AppendString(b, m.Topic)
		b = appendI32(b, m.Partition)
		b = append(b, m.Owner[:]...)
	}
	return b
}

func (c *AllocateProducerIDs) appendFields(b []byte) []byte { return appendI32(b, c.Count) }

func (c *GroupGenerations) appendFields(b []byte) []byte {
	b = postcard.AppendUvarint(b, uint64(len(c.Groups)))
	for _, g := range c.Groups {
		b = postcard.AppendString(b, g.Group)
		b = appendI32(b, g.Generation)
	}
	return b
}

func (c *CommitOffsets) appendFields(b []byte) []byte {
	b = postcard.AppendString(b, c.Group)
	b = postcard.AppendUvarint(b, uint64(len(c.Offsets)))
	ordered := c.kind() == kindCommitOffsetsOrdered
	for _, o := range c.Offsets {
		b = appendOffset(b, GroupOffset{TopicPartition{o.Topic, o.Partition},
			CommittedOffset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTimeMs: o.CommitTimeMs}})
		if ordered {
			b = postcard.AppendUvarint(b, o.Writer)
			b = postcard.AppendUvarint(b, o.Seq)
		}
	}
	return b
}

// appendOffset appends one committed offset in the form commands and snapshots share.
func appendOffset(b []byte, o GroupOffset) []byte {
	b = postcard.AppendString(b, o.Topic)
	b = appendI32(b, o.Partition)
	b = postcard.AppendZigzag(b, o.Offset)
	b = appendI32(b, o.LeaderEpoch)
	b = postcard.AppendString(b, o.Metadata)
	return postcard.AppendZigzag(b, o.CommitTimeMs)
}

func (c *DeleteGroups) appendFields(b []byte) []byte { return appendStrings(b, c.Groups) }

func (c *DeleteOffsets) appendFields(b []byte) []byte {
	b = postcard.AppendString(b, c.Group)
	b = postcard.AppendUvarint(b, uint64(len(c.Partitions)))
	for _, p := range c.Partitions {
		b = postcard.AppendString(b, p.Topic)
		b = appendI32(b, p.Partition)
	}
	return b
}

// ---- decoding ----

// dec wraps a postcard.Decoder with a sticky error, so field decoders read straight through.
type dec struct {
	d   postcard.Decoder
	err error
}

func (d *dec) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// field runs one postcard field decoder unless an earlier field failed (then it returns
// the zero value), keeping the first error.
func field[T any](d *dec, read func() (T, error)) T {
	if d.err != nil {
		var zero T
		return zero
	}
	v, err := read()
	d.fail(err)
	return v
}

func (d *dec) u64() uint64 { return field(d, d.d.U64) }

func (d *dec) i64() int64 { return field(d, d.d.I64) }

func (d *dec) i32() int32 { return field(d, d.d.I32) }

func (d *dec) bool() bool { return field(d, d.d.Bool) }

func (d *dec) str() string { return field(d, d.d.String) }

// bytes returns a copy (stored state never aliases an entry's buffer); nil when empty.
func (d *dec) bytes() []byte { return slices.Clone(field(d, d.d.Bytes)) }

func (d *dec) take(p []byte) {
	if d.err != nil {
		return
	}
	v, err := d.d.Take(len(p))
	d.fail(err)
	copy(p, v)
}

func (d *dec) nodeID() (n NodeID) { d.take(n[:]); return n }

func (d *dec) topicID() (id TopicID) { d.take(id[:]); return id }

// count reads a sequence length; each element takes at least min bytes, so a count the input
// cannot hold fails before anything is allocated.
func (d *dec) count(min int) int {
	if d.err != nil {
		return 0
	}
	n, err := d.d.Len()
	if err == nil && n > d.d.Remaining()/min {
		err = postcard.ErrShort
	}
	d.fail(err)
	if d.err != nil {
		return 0
	}
	return n
}

// list reads a sequence, each element read by elem and taking at least min bytes; nil when
// empty.
func list[T any](d *dec, min int, elem func() T) []T {
	n := d.count(min)
	if n == 0 {
		return nil
	}
	out := make([]T, 0, n)
	for range n {
		out = append(out, elem())
	}
	return out
}

func (d *dec) strings() []string { return list(d, 1, d.str) }

func (d *dec) nodeIDs() []NodeID { return list(d, len(NodeID{}), d.nodeID) }

func (d *dec) u64s() []uint64 { return list(d, 1, d.u64) }

// replicas reads per-partition replica lists; nil when empty.
func (d *dec) replicas() [][]uint64 { return list(d, 1, d.u64s) }

// stringMap reads a map whose keys must be strictly ascending; nil when empty.
func (d *dec) stringMap() map[string]string { return ascendingMap(d, 2, d.str) }

// ascendingMap reads a map whose keys must be strictly ascending, each value read by val;
// minEntry is an entry's smallest encoded size (for the count's bound); nil when empty.
func ascendingMap[V any](d *dec, minEntry int, val func() V) map[string]V {
	n := d.count(minEntry)
	if n == 0 {
		return nil
	}
	m := make(map[string]V, n)
	prev := ""
	for i := range n {
		k := d.str()
		v := val()
		if d.err != nil {
			return nil
		}
		if i > 0 && k <= prev {
			d.fail(fmt.Errorf("map keys not strictly ascending at %q", k))
			return nil
		}
		prev = k
		m[k] = v
	}
	return m
}

// DecodeCommand decodes one command. Errors wrap ErrUnknownVersion, ErrUnknownCommand or
// ErrMalformed.
func DecodeCommand(data []byte) (Command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if data[0] != commandVersion {
		return nil, fmt.Errorf("%w: %d", ErrUnknownVersion, data[0])
	}
	d := &dec{d: postcard.NewDecoder(data[1:])}
	k := d.u64()
	if d.err != nil {
		return nil, fmt.Errorf("%w: kind: %w", ErrMalformed, d.err)
	}
	var c Command
	switch k {
	case kindInitCluster:
		c = &InitCluster{ClusterID: d.str()}
	case kindRegisterBroker:
		x := &RegisterBroker{RaftID: d.u64(), NodeID: d.nodeID(), Addr: d.bytes(), Rack: d.str()}
		if d.err == nil && d.d.Remaining() > 0 {
			if x.Kafka = d.str(); d.err == nil && (x.Kafka == "" || len(x.Kafka) > MaxKafkaAddr) {
				d.fail(fmt.Errorf("kafka address of %d bytes", len(x.Kafka)))
			}
		}
		c = x
	case kindRemoveBroker:
		c = &RemoveBroker{RaftID: d.u64()}
	case kindAllowBroker:
		c = &AllowBroker{NodeID: d.nodeID()}
	case kindDisallowBroker:
		c = &DisallowBroker{NodeID: d.nodeID()}
	case kindCreateTopics, kindCreateTopicsReplicated:
		x := &CreateTopics{MaxPartitions: d.i32()}
		n := d.count(1 + 16 + 1 + 1 + 1)
		for range n {
			t := NewTopic{Name: d.str(), ID: d.topicID(), Partitions: d.i32(), Configs: d.stringMap(), Owners: d.nodeIDs()}
			if k == kindCreateTopicsReplicated {
				t.Replicas = d.replicas()
			}
			x.Topics = append(x.Topics, t)
		}
		if k == kindCreateTopicsReplicated && d.err == nil && x.kind() != k {
			d.fail(errors.New("replicated encoding without replica lists"))
		}
		c = x
	case kindDeleteTopics:
		c = &DeleteTopics{Names: d.strings()}
	case kindCreatePartitions, kindCreatePartitionsReplicated:
		x := &CreatePartitions{MaxPartitions: d.i32()}
		n := d.count(3)
		for range n {
			t := NewPartitions{Name: d.str(), Count: d.i32(), Owners: d.nodeIDs()}
			if k == kindCreatePartitionsReplicated {
				t.Replicas = d.replicas()
			}
			x.Topics = append(x.Topics, t)
		}
		if k == kindCreatePartitionsReplicated && d.err == nil && x.kind() != k {
			d.fail(errors.New("replicated encoding without replica lists"))
		}
		c = x
	case kindUpdatePartition:
		c = &UpdatePartition{Topic: d.str(), Partition: d.i32(), Leader: d.u64(), LeaderEpoch: d.i32(), ISR: d.u64s()}
	case kindAlterReassignments:
		x := &AlterReassignments{}
		n := d.count(3)
		for range n {
			x.Partitions = append(x.Partitions, ReassignPartition{Topic: d.str(), Partition: d.i32(), Target: d.u64s()})
		}
		c = x
	case kindCompleteReassignment:
		c = &CompleteReassignment{Topic: d.str(), Partition: d.i32(), Target: d.u64s()}
	case kindAlterConfigs:
		x := &AlterConfigs{}
		n := d.count(4)
		for range n {
			x.Topics = append(x.Topics, ConfigChange{Name: d.str(), Replace: d.bool(), Set: d.stringMap(), Delete: d.strings()})
		}
		c = x
	case kindReassign:
		x := &Reassign{}
		n := d.count(1 + 1 + 32)
		for range n {
			x.Moves = append(x.Moves, Move{Topic: d.str(), Partition: d.i32(), Owner: d.nodeID()})
		}
		c = x
	case kindAllocateProducerIDs:
		c = &AllocateProducerIDs{Count: d.i32()}
	case kindCommitOffsets, kindCommitOffsetsOrdered:
		x := &CommitOffsets{Group: d.str()}
		n := d.count(6)
		for range n {
			o := OffsetCommit{Topic: d.str(), Partition: d.i32(), Offset: d.i64(),
				LeaderEpoch: d.i32(), Metadata: d.str(), CommitTimeMs: d.i64()}
			if k == kindCommitOffsetsOrdered {
				o.Writer, o.Seq = d.u64(), d.u64()
			}
			x.Offsets = append(x.Offsets, o)
		}
		if k == kindCommitOffsetsOrdered && d.err == nil && x.kind() != k {
			d.fail(errors.New("ordered encoding without a writer"))
		}
		c = x
	case kindDeleteGroups:
		c = &DeleteGroups{Groups: d.strings()}
	case kindGroupGenerations:
		x := &GroupGenerations{}
		n := d.count(2)
		for range n {
			x.Groups = append(x.Groups, GroupGeneration{Group: d.str(), Generation: d.i32()})
		}
		c = x
	case kindGroupMembers:
		c = decodeGroupMembers(d)
	case kindDeleteOffsets:
		x := &DeleteOffsets{Group: d.str()}
		n := d.count(2)
		for range n {
			x.Partitions = append(x.Partitions, TopicPartition{Topic: d.str(), Partition: d.i32()})
		}
		c = x
	default:
		var ok bool
		if c, ok = decodeSecurity(d, k); !ok {
			if c, ok = decodeTxn(d, k); !ok {
				if c, ok = decodeShares(d, k); !ok {
					return nil, fmt.Errorf("%w: kind %d", ErrUnknownCommand, k)
				}
			}
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %T: %w", ErrMalformed, c, d.err)
	}
	if r := d.d.Remaining(); r != 0 {
		return nil, fmt.Errorf("%w: %T: %d trailing bytes", ErrMalformed, c, r)
	}
	return c, nil
}
