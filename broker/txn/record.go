package txn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meshkafka/meshkafka/broker/internal/binrec"
)

// State is a transaction's state, as Kafka's TransactionState names them.
type State uint8

const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
	Dead
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead"}

// String is Kafka's name of the state (DescribeTransactions, ListTransactions).
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// TP is a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

// Offset is one pending transactional offset commit.
type Offset struct {
	Group       string
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// Txn is the coordinator's whole state of one transactional id. Every change is persisted
// as the complete new Txn (a Record), as Kafka's __transaction_state does; replaying the
// records in order with Apply rebuilds the state.
type Txn struct {
	ID         string
	ProducerID int64
	Epoch      int16
	TimeoutMs  int32
	State      State
	StartMs    int64    // when the transaction became Ongoing (Unix ms), 0 if not
	UpdateMs   int64    // last change (Unix ms)
	Partitions []TP     // sorted, unique
	Groups     []string // sorted, unique
	Offsets    []Offset // pending offsets, sorted by (group, topic, partition), unique

	// V2 marks the end of a transaction.version 2 transaction (KIP-890 part 2: EndTxn v5
	// bumps the epoch). In PrepareCommit/PrepareAbort, Epoch is already the bumped one (the
	// markers carry it, fencing the ended epoch in the partitions) and NextProducerID/
	// NextEpoch are what the producer continues with once it completes (the same producer
	// id at Epoch, or a new one at epoch 0 when the epoch is exhausted): decided here, so a
	// completion redone after a crash hands out the same pair EndTxn answered. In
	// CompleteCommit/CompleteAbort, PrevProducerID/PrevEpoch are the pair the ended
	// transaction ran under, so a retried EndTxn is recognised. Other states: false.
	V2             bool
	NextProducerID int64
	NextEpoch      int16
	PrevProducerID int64
	PrevEpoch      int16
}

func (t *Txn) clone() *Txn {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	c.Groups = slices.Clone(t.Groups)
	c.Offsets = slices.Clone(t.Offsets)
	return &c
}

func cmpTP(a, b TP) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}

func cmpOffset(a, b Offset) int {
	if c := strings.Compare(a.Group, b.Group); c != 0 {
		return c
	}
	return cmpTP(TP{a.Topic, a.Partition}, TP{b.Topic, b.Partition})
}

// Record encoding (big-endian), one Txn per record:
//
//	version u8 (=1) | id str | producerID i64 | epoch i16 | timeoutMs i32 | state u8 |
//	startMs i64 | updateMs i64 | partitions u32 | (topic str | partition i32)* |
//	groups u32 | group str* | offsets u32 | (group str | topic str | partition i32 |
//	offset i64 | leaderEpoch i32 | metadata str)*
//	str = length u32 | bytes
//
// Version 2 (a Txn with V2 set; others are still written as version 1) appends
//
//	nextProducerID i64 | nextEpoch i16 | prevProducerID i64 | prevEpoch i16
const (
	recordVersion   = 1
	recordVersionV2 = 2
)

// maxRecord bounds a decoded record (and a decoded string).
const maxRecord = 64 << 20

// ErrBadRecord is wrapped by every decoding error.
var ErrBadRecord = errors.New("txn: bad record")

// AppendRecord appends t's encoding to b.
func AppendRecord(b []byte, t *Txn) []byte {
	if t.V2 {
		b = append(b, recordVersionV2)
	} else {
		b = append(b, recordVersion)
	}
	b = appendStr(b, t.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(t.ProducerID))
	b = binary.BigEndian.AppendUint16(b, uint16(t.Epoch))
	b = binary.BigEndian.AppendUint32(b, uint32(t.TimeoutMs))
	b = append(b, byte(t.State))
	b = binary.BigEndian.AppendUint64(b, uint64(t.StartMs))
	b = binary.BigEndian.AppendUint64(b, uint64(t.UpdateMs))
	b = binary.BigEndian.AppendUint32(b, uint32(len(t.Partitions)))
	for _, p := range t.Partitions {
		b = appendStr(b, p.Topic)
		b = binary.BigEndian.AppendUint32(b, uint32(p.Partition))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(t.Groups)))
	for _, g := range t.Groups {
		b = appendStr(b, g)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(t.Offsets)))
	for _, o := range t.Offsets {
		b = appendStr(b, o.Group)
		b = appendStr(b, o.Topic)
		b = binary.BigEndian.AppendUint32(b, uint32(o.Partition))
		b = binary.BigEndian.AppendUint64(b, uint64(o.Offset))
		b = binary.BigEndian.AppendUint32(b, uint32(o.LeaderEpoch))
		b = appendStr(b, o.Metadata)
	}
	if t.V2 {
		b = binary.BigEndian.AppendUint64(b, uint64(t.NextProducerID))
		b = binary.BigEndian.AppendUint16(b, uint16(t.NextEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(t.PrevProducerID))
		b = binary.BigEndian.AppendUint16(b, uint16(t.PrevEpoch))
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// decoder reads a record: binrec's fields, and the length-prefixed strings and lists of
// this layout.
type decoder struct{ binrec.Reader }

func newDecoder(b []byte) *decoder {
	return &decoder{binrec.Reader{B: b, Bad: func(what string) error {
		return fmt.Errorf("%w: truncated or invalid %s", ErrBadRecord, what)
	}}}
}

func (d *decoder) str(what string) string {
	n := d.U32(what)
	if n > maxRecord {
		d.Fail(what)
		return ""
	}
	return string(d.Take(int(n), what))
}

// count reads a list length whose items take at least min bytes each.
func (d *decoder) count(min int, what string) int {
	n := d.U32(what)
	if d.Err == nil && uint64(n)*uint64(min) > uint64(len(d.B)) {
		d.Fail(what)
		return 0
	}
	return int(n)
}

// DecodeRecord parses one record. It checks framing and value ranges, not the state
// machine's invariants beyond sortedness and uniqueness of the lists.
func DecodeRecord(b []byte) (*Txn, error) {
	if len(b) > maxRecord {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadRecord, len(b))
	}
	d := newDecoder(b)
	v := d.U8("version")
	if d.Err == nil && v != recordVersion && v != recordVersionV2 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrBadRecord, v)
	}
	t := &Txn{V2: v == recordVersionV2}
	t.ID = d.str("id")
	t.ProducerID = int64(d.U64("producer id"))
	t.Epoch = int16(d.U16("epoch"))
	t.TimeoutMs = int32(d.U32("timeout"))
	t.State = State(d.U8("state"))
	t.StartMs = int64(d.U64("start"))
	t.UpdateMs = int64(d.U64("update"))
	for range d.count(8, "partitions") {
		t.Partitions = append(t.Partitions, TP{d.str("topic"), int32(d.U32("partition"))})
	}
	for range d.count(4, "groups") {
		t.Groups = append(t.Groups, d.str("group"))
	}
	for range d.count(32, "offsets") {
		t.Offsets = append(t.Offsets, Offset{Group: d.str("group"), Topic: d.str("topic"), Partition: int32(d.U32("partition")),
			Offset: int64(d.U64("offset")), LeaderEpoch: int32(d.U32("leader epoch")), Metadata: d.str("metadata")})
	}
	if t.V2 {
		t.NextProducerID, t.NextEpoch = int64(d.U64("next producer id")), int16(d.U16("next epoch"))
		t.PrevProducerID, t.PrevEpoch = int64(d.U64("previous producer id")), int16(d.U16("previous epoch"))
	}
	if d.Err != nil {
		return nil, d.Err
	}
	if len(d.B) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(d.B))
	}
	switch {
	case t.ID == "":
		return nil, fmt.Errorf("%w: empty transactional id", ErrBadRecord)
	case t.ProducerID < 0 || t.Epoch < 0 || t.TimeoutMs <= 0:
		return nil, fmt.Errorf("%w: producer %d epoch %d timeout %d", ErrBadRecord, t.ProducerID, t.Epoch, t.TimeoutMs)
	case t.State > Dead:
		return nil, fmt.Errorf("%w: unknown state %d", ErrBadRecord, t.State)
	case t.V2 && (t.NextProducerID < 0 || t.NextEpoch < 0 || t.PrevProducerID < 0 || t.PrevEpoch < 0):
		return nil, fmt.Errorf("%w: next producer %d/%d, previous %d/%d", ErrBadRecord, t.NextProducerID, t.NextEpoch, t.PrevProducerID, t.PrevEpoch)
	case !sortedUnique(t.Partitions, cmpTP) || !sortedUnique(t.Groups, strings.Compare) || !sortedUnique(t.Offsets, cmpOffset):
		return nil, fmt.Errorf("%w: lists not sorted and unique", ErrBadRecord)
	}
	return t, nil
}

func sortedUnique[T any](s []T, cmp func(a, b T) int) bool {
	for i := 1; i < len(s); i++ {
		if cmp(s[i-1], s[i]) >= 0 {
			return false
		}
	}
	return true
}
