package share

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/meshkafka/meshkafka/broker/internal/binrec"
)

// Record kinds.
const (
	KindGroup           uint8 = 1 // a share group exists
	KindDeleteGroup     uint8 = 2 // a share group and its state are gone
	KindPartition       uint8 = 3 // a share partition's complete state
	KindDeletePartition uint8 = 4 // a share partition's state is gone
	KindConfig          uint8 = 5 // a group's complete config set
)

// Record is one durable change. Each kind carries the complete new state of its key (group,
// or group + partition), so replay is last-writer-wins and compaction keeps one per key.
type Record struct {
	Kind       uint8
	Group      string
	Topic      string
	Partition  int32
	StateEpoch int32
	Start      int64 // SPSO
	Runs       []Run
	Configs    [][2]string
}

// Run is a run of records from First to Last (inclusive) in one state with one delivery
// count.
type Run struct {
	First, Last int64
	State       State
	Count       int16
}

// MaxWindow bounds the offsets a decoded partition record may describe, so that a damaged
// or hostile log cannot make replay allocate without limit.
const MaxWindow = 1 << 20

// ErrBadRecord is wrapped by every DecodeRecord error.
var ErrBadRecord = errors.New("share: bad record")

// AppendRecord appends r's encoding (integers big-endian, strings and counts as uvarint
// lengths):
//
//	record    = version:u8 (=1) | kind:u8 | group:str | body
//	body      = kind 1, 2: (nothing)
//	            kind 3 partition: topic:str | partition:i32 | stateEpoch:i32 | start:i64 |
//	                              nruns:uvarint | (first:i64 | last:i64 | state:u8 | count:i16)*nruns
//	            kind 4 delete partition: topic:str | partition:i32
//	            kind 5 configs: n:uvarint | (name:str | value:str)*n
func AppendRecord(b []byte, r *Record) []byte {
	b = append(b, 1, r.Kind)
	b = appendStr(b, r.Group)
	switch r.Kind {
	case KindPartition:
		b = appendStr(b, r.Topic)
		b = binary.BigEndian.AppendUint32(b, uint32(r.Partition))
		b = binary.BigEndian.AppendUint32(b, uint32(r.StateEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Start))
		b = binary.AppendUvarint(b, uint64(len(r.Runs)))
		for _, run := range r.Runs {
			b = binary.BigEndian.AppendUint64(b, uint64(run.First))
			b = binary.BigEndian.AppendUint64(b, uint64(run.Last))
			b = append(b, byte(run.State))
			b = binary.BigEndian.AppendUint16(b, uint16(run.Count))
		}
	case KindDeletePartition:
		b = appendStr(b, r.Topic)
		b = binary.BigEndian.AppendUint32(b, uint32(r.Partition))
	case KindConfig:
		b = binary.AppendUvarint(b, uint64(len(r.Configs)))
		for _, kv := range r.Configs {
			b = appendStr(b, kv[0])
			b = appendStr(b, kv[1])
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader reads a record: binrec's fields, and the uvarint-prefixed strings of this layout.
type reader struct{ binrec.Reader }

func newReader(b []byte) *reader {
	return &reader{binrec.Reader{B: b, Short: "short ", Bad: func(what string) error {
		return fmt.Errorf("%w: %s", ErrBadRecord, what)
	}}}
}

func (r *reader) uvarint(what string) uint64 {
	if r.Err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.B)
	if k <= 0 || k != len(binary.AppendUvarint(nil, v)) { // overlong forms are refused
		r.Fail("bad " + what)
		return 0
	}
	r.B = r.B[k:]
	return v
}

func (r *reader) str(what string) string {
	n := r.uvarint(what + " length")
	if n > uint64(len(r.B)) {
		r.Fail("short " + what)
		return ""
	}
	return string(r.Take(int(n), what))
}

// DecodeRecord decodes one record; it checks the layout, the kind, each run's order and
// state, and that the runs stay within MaxWindow offsets of the start.
func DecodeRecord(b []byte) (*Record, error) {
	r := newReader(b)
	if v := r.U8("version"); r.Err == nil && v != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrBadRecord, v)
	}
	rec := &Record{Kind: r.U8("kind")}
	rec.Group = r.str("group")
	switch rec.Kind {
	case KindGroup, KindDeleteGroup:
	case KindPartition:
		rec.Topic = r.str("topic")
		rec.Partition = int32(r.U32("partition"))
		rec.StateEpoch = int32(r.U32("state epoch"))
		rec.Start = int64(r.U64("start"))
		n := r.uvarint("run count")
		if n > uint64(len(r.B))/19 {
			r.Fail("run count")
			break
		}
		prev := rec.Start - 1
		for range n {
			run := Run{First: int64(r.U64("first")), Last: int64(r.U64("last")), State: State(r.U8("state")), Count: int16(r.U16("count"))}
			if r.Err != nil {
				break
			}
			if run.First <= prev || run.Last < run.First || run.Last-rec.Start >= MaxWindow || rec.Start < 0 || run.Count < 0 {
				r.Fail("run offsets")
				break
			}
			switch run.State {
			case Available, Acquired, Acknowledged, Archived:
			default:
				r.Fail("run state")
			}
			prev = run.Last
			rec.Runs = append(rec.Runs, run)
		}
	case KindDeletePartition:
		rec.Topic = r.str("topic")
		rec.Partition = int32(r.U32("partition"))
	case KindConfig:
		n := r.uvarint("config count")
		if n > uint64(len(r.B))/2 {
			r.Fail("config count")
			break
		}
		for range n {
			k, v := r.str("config name"), r.str("config value")
			if r.Err != nil {
				break
			}
			rec.Configs = append(rec.Configs, [2]string{k, v})
		}
	default:
		r.Fail(fmt.Sprintf("kind %d", rec.Kind))
	}
	if r.Err == nil && len(r.B) != 0 {
		r.Fail("trailing bytes")
	}
	if r.Err != nil {
		return nil, r.Err
	}
	return rec, nil
}
