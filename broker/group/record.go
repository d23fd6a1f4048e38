package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Kind is the type of an offset-log record.
type Kind uint8

// Record kinds.
const (
	KindCommit       Kind = 1 // group, topic, partition -> offset, leader epoch, metadata, time
	KindDeleteOffset Kind = 2 // group, topic, partition: committed offset removed
	KindDeleteGroup  Kind = 3 // group and all its offsets removed
	KindGeneration   Kind = 4 // group -> the last generation handed out (Generation)
	KindMembers      Kind = 5 // group -> its recorded classic membership (Members; members.go)
)

// Record is one durable change to the committed-offset state.
type Record struct {
	Kind        Kind
	Group       string
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitMs    int64
	// Writer and Seq are a commit's stamp (brokerop.OffsetCommitReq): Apply skips a commit
	// its writer has overtaken. The offset log in Dir does not store them (AppendEntry
	// leaves them out: one coordinator, no sender delivering late copies); the metadata
	// quorum does.
	Writer, Seq uint64
	// Generation is a KindGeneration record's: a group's generation, recorded before its
	// members learn it, so that a coordinator started later (after a restart, a leader
	// change or a rebuild) numbers the group's generations above it.
	Generation int32
	// Members is a KindMembers record's: the group's membership (Generation is its
	// generation), restored by a coordinator started later (Machine.RestoreMembers).
	Members *Membership
}

// entryVersion is the first byte of every offset-log entry.
const entryVersion = 1

// Entry flags.
const flagSnapshot = 1 << 0 // the entry holds the whole state a fresh log starts from

// maxStringLen bounds decoded strings (group ids, topics, metadata) so that a corrupt length
// cannot ask for a huge allocation.
const maxStringLen = 1 << 20

// ErrBadEntry reports an offset-log entry that does not decode.
var ErrBadEntry = errors.New("group: bad offset-log entry")

// AppendEntry encodes records as one offset-log entry (see doc.go for the layout).
func AppendEntry(b []byte, snapshot bool, recs []Record) []byte {
	var flags byte
	if snapshot {
		flags |= flagSnapshot
	}
	b = append(b, entryVersion, flags)
	b = binary.AppendUvarint(b, uint64(len(recs)))
	for _, r := range recs {
		b = append(b, byte(r.Kind))
		b = appendString(b, r.Group)
		switch r.Kind {
		case KindCommit:
			b = appendString(b, r.Topic)
			b = binary.BigEndian.AppendUint32(b, uint32(r.Partition))
			b = binary.BigEndian.AppendUint64(b, uint64(r.Offset))
			b = binary.BigEndian.AppendUint32(b, uint32(r.LeaderEpoch))
			b = appendString(b, r.Metadata)
			b = binary.BigEndian.AppendUint64(b, uint64(r.CommitMs))
		case KindDeleteOffset:
			b = appendString(b, r.Topic)
			b = binary.BigEndian.AppendUint32(b, uint32(r.Partition))
		case KindGeneration:
			b = binary.BigEndian.AppendUint32(b, uint32(r.Generation))
		case KindMembers:
			b = appendString(b, string(AppendMembership(nil, r.Members)))
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeEntry decodes one offset-log entry. Every byte must be consumed; anything else is
// ErrBadEntry (wrapped with the reason).
func DecodeEntry(data []byte) (snapshot bool, recs []Record, err error) {
	d := decoder{b: data}
	if v := d.byte(); v != entryVersion {
		return false, nil, fmt.Errorf("%w: version %d", ErrBadEntry, v)
	}
	flags := d.byte()
	if flags&^flagSnapshot != 0 {
		return false, nil, fmt.Errorf("%w: flags %#x", ErrBadEntry, flags)
	}
	n := d.uvarint()
	// Each record takes at least 2 bytes: never preallocate beyond what the input can hold.
	if d.err == nil && n > uint64(len(d.b)/2) {
		return false, nil, fmt.Errorf("%w: %d records in %d bytes", ErrBadEntry, n, len(d.b))
	}
	recs = make([]Record, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		r := Record{Kind: Kind(d.byte())}
		r.Group = d.string()
		switch r.Kind {
		case KindCommit:
			r.Topic = d.string()
			r.Partition = int32(d.u32())
			r.Offset = int64(d.u64())
			r.LeaderEpoch = int32(d.u32())
			r.Metadata = d.string()
			r.CommitMs = int64(d.u64())
		case KindDeleteOffset:
			r.Topic = d.string()
			r.Partition = int32(d.u32())
		case KindDeleteGroup:
		case KindGeneration:
			r.Generation = int32(d.u32())
		case KindMembers:
			body := d.string()
			if d.err == nil {
				r.Members, d.err = DecodeMembership([]byte(body))
				if d.err == nil {
					r.Generation = r.Members.Generation
				}
			}
		default:
			if d.err == nil {
				d.err = fmt.Errorf("%w: record kind %d", ErrBadEntry, r.Kind)
			}
		}
		recs = append(recs, r)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrBadEntry, len(d.b))
	}
	if d.err != nil {
		return false, nil, d.err
	}
	return flags&flagSnapshot != 0, recs, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) short() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated", ErrBadEntry)
	}
	d.b = nil
}

// take returns the next n bytes, or nil (and the decoder fails) when fewer are left.
func (d *decoder) take(n int) []byte {
	if len(d.b) < n {
		d.short()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.short()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > maxStringLen || n > math.MaxInt {
		d.short()
		return ""
	}
	return string(d.take(int(n)))
}
