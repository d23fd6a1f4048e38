package raftlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Record framing; the layout is drawn in doc.go.
const (
	recMagic      = 0x524c4f47 // "RLOG"
	recHeaderSize = 24
	recVersion    = 1

	kindBatch    = 1 // a segment record: reset/compact, entries, hard state
	kindSnapshot = 2 // the snapshot file's one record
	kindRaftID   = 3 // the raft-id file's one record

	// maxRecordBytes bounds one record (and so a segment's base record: every live entry).
	maxRecordBytes = 1 << 30
	// maxIndex bounds the indexes and terms a record may carry, far beyond any raft log,
	// so that index arithmetic on replayed state cannot overflow.
	maxIndex = 1 << 62
)

// Batch flags.
const (
	flagReset    = 1 << 0 // drop every entry; the log starts after (index, term)
	flagCompact  = 1 << 1 // drop entries up to index; the log starts after (index, term)
	flagHard     = 1 << 2 // a hard state follows
	flagSnapshot = 1 << 3 // the log was reset to the snapshot (snapIndex, snapTerm) (see state.mark)
	knownFlags   = flagReset | flagCompact | flagHard | flagSnapshot
)

var (
	// ErrCorrupt marks damage to durable raft state: bytes that were fsynced and no longer
	// read back as written. Open refuses such a directory rather than forget part of it.
	ErrCorrupt = errors.New("raftlog: corrupt raft state")
	// ErrUnsupportedVersion: an intact record in a format this code does not know.
	ErrUnsupportedVersion = errors.New("raftlog: unsupported record version")

	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// IsCorruption reports whether err reports damage to durable state (ErrCorrupt).
func IsCorruption(err error) bool { return errors.Is(err, ErrCorrupt) }

// batch is one decoded segment record. Applied in the order reset or compact, entries, hard
// state (see state.apply).
type batch struct {
	flags uint8
	index uint64 // reset or compact point
	term  uint64 // term of the entry at index
	mark  point  // flagSnapshot: the snapshot the log was last reset to
	hs    *raftpb.HardState
	ents  []*raftpb.Entry
}

var marshal = proto.MarshalOptions{Deterministic: true}

// appendRecord frames payload as one record of kind and appends it to dst. synced is the
// position of the file known durable when the record is written.
func appendRecord(dst []byte, kind uint8, synced int64, payload []byte) []byte {
	n := len(dst)
	size := recHeaderSize + len(payload)
	dst = append(dst, make([]byte, recHeaderSize)...)
	dst = append(dst, payload...)
	b := dst[n:]
	binary.BigEndian.PutUint32(b[4:8], recMagic)
	binary.BigEndian.PutUint32(b[8:12], uint32(size))
	b[12] = recVersion
	b[13] = kind
	binary.BigEndian.PutUint64(b[16:24], uint64(synced))
	binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:size], castagnoli))
	return dst
}

// record is one decoded record frame.
type record struct {
	kind    uint8
	synced  int64
	payload []byte // aliases the bytes read
}

// errPartial is the decoding error of a record that the bytes end inside of.
var errPartial = fmt.Errorf("%w: partial record", ErrCorrupt)

// decodeRecord decodes the record at the start of b and returns it and its size. It fails
// with an ErrCorrupt error if b does not start with a whole intact record (errPartial if b
// ends inside the record its header announces), and with ErrUnsupportedVersion for an intact
// record of an unknown version or kind.
func decodeRecord(b []byte) (record, int, error) {
	var r record
	if len(b) < recHeaderSize {
		return r, 0, errPartial
	}
	if binary.BigEndian.Uint32(b[4:8]) != recMagic {
		return r, 0, fmt.Errorf("%w: bad record magic", ErrCorrupt)
	}
	size := int(binary.BigEndian.Uint32(b[8:12]))
	if size < recHeaderSize || size > maxRecordBytes {
		return r, 0, fmt.Errorf("%w: record size %d", ErrCorrupt, size)
	}
	if len(b) < size {
		return r, 0, errPartial
	}
	if crc32.Checksum(b[4:size], castagnoli) != binary.BigEndian.Uint32(b[0:4]) {
		return r, 0, fmt.Errorf("%w: record crc mismatch", ErrCorrupt)
	}
	if b[12] != recVersion || b[13] < kindBatch || b[13] > kindRaftID || b[14] != 0 || b[15] != 0 {
		return r, 0, fmt.Errorf("%w %d (kind %d)", ErrUnsupportedVersion, b[12], b[13])
	}
	r.kind = b[13]
	r.synced = int64(binary.BigEndian.Uint64(b[16:24]))
	r.payload = b[recHeaderSize:size:size]
	if r.synced < 0 {
		return r, 0, fmt.Errorf("%w: record durable point %d", ErrCorrupt, r.synced)
	}
	return r, size, nil
}

// readRecords decodes the records of one file whose bytes are b. It returns the intact
// records and the end of the last one. A damaged or partial record ends them: that is a torn
// tail (the bytes from end on were never acknowledged) unless an intact record after it was
// written when the file was already durable past it, which makes it damage to synced bytes
// (an ErrCorrupt error). An intact record of an unknown version fails too: it is never a torn
// tail.
func readRecords(b []byte) (recs []record, end int64, err error) {
	pos := int64(0)
	for pos < int64(len(b)) {
		r, n, derr := decodeRecord(b[pos:])
		if derr != nil {
			if !IsCorruption(derr) {
				return recs, pos, fmt.Errorf("position %d: %w", pos, derr)
			}
			if later, ok := durableAfter(b, pos); ok {
				return recs, pos, fmt.Errorf("%w: damaged at position %d, below the durable point %d a later record records (%v)",
					ErrCorrupt, pos, later, derr)
			}
			return recs, pos, nil
		}
		if r.synced > pos {
			return recs, pos, fmt.Errorf("%w: record at %d claims %d durable", ErrCorrupt, pos, r.synced)
		}
		recs = append(recs, r)
		pos += int64(n)
	}
	return recs, pos, nil
}

// durableAfter looks for an intact record after the damaged one at pos that was written when
// the file was already durable past pos, and returns that durable point.
func durableAfter(b []byte, pos int64) (int64, bool) {
	var magic [4]byte
	binary.BigEndian.PutUint32(magic[:], recMagic)
	for i := pos + 1; i+recHeaderSize <= int64(len(b)); {
		j := bytes.Index(b[i+4:], magic[:])
		if j < 0 {
			return 0, false
		}
		start := i + int64(j)
		r, _, err := decodeRecord(b[start:])
		if err == nil && r.synced > pos {
			return r.synced, true
		}
		i = start + 1
	}
	return 0, false
}

// encodeBatch appends the payload of b to dst.
//
//	flags u8 | [index u64, term u64] | [snapIndex u64, snapTerm u64] | [hsLen u32, hs] |
//	count u32 | count × (len u32, entry)
func encodeBatch(dst []byte, b *batch) ([]byte, error) {
	dst = append(dst, b.flags)
	if b.flags&(flagReset|flagCompact) != 0 {
		dst = binary.BigEndian.AppendUint64(dst, b.index)
		dst = binary.BigEndian.AppendUint64(dst, b.term)
	}
	if b.flags&flagSnapshot != 0 {
		dst = binary.BigEndian.AppendUint64(dst, b.mark.index)
		dst = binary.BigEndian.AppendUint64(dst, b.mark.term)
	}
	var err error
	if b.flags&flagHard != 0 {
		if dst, err = appendMessage(dst, b.hs); err != nil {
			return nil, err
		}
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b.ents)))
	for _, e := range b.ents {
		if dst, err = appendMessage(dst, e); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func appendMessage(dst []byte, m proto.Message) ([]byte, error) {
	n := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst, err := marshal.MarshalAppend(dst, m)
	if err != nil {
		return nil, fmt.Errorf("raftlog: marshal %T: %w", m, err)
	}
	if len(dst)-n-4 > math.MaxUint32 {
		return nil, fmt.Errorf("raftlog: %T too large", m)
	}
	binary.BigEndian.PutUint32(dst[n:], uint32(len(dst)-n-4))
	return dst, nil
}

// decodeBatch decodes a batch payload. Its entries are checked to be consecutive; any
// inconsistency is an ErrCorrupt error (the record's CRC passed, so it was written so).
func decodeBatch(p []byte) (*batch, error) {
	bad := func(what string, args ...any) error {
		return fmt.Errorf("%w: batch record: %s", ErrCorrupt, fmt.Sprintf(what, args...))
	}
	if len(p) < 1 {
		return nil, bad("empty")
	}
	b := &batch{flags: p[0]}
	p = p[1:]
	if b.flags&^knownFlags != 0 {
		return nil, fmt.Errorf("%w: batch flags %#x", ErrUnsupportedVersion, b.flags)
	}
	if b.flags&flagReset != 0 && b.flags&flagCompact != 0 {
		return nil, bad("flags %#x", b.flags)
	}
	if b.flags&(flagReset|flagCompact) != 0 {
		if len(p) < 16 {
			return nil, bad("short reset point")
		}
		b.index, b.term = binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])
		p = p[16:]
		if b.index > maxIndex || b.term > maxIndex {
			return nil, bad("reset point %d/%d", b.index, b.term)
		}
	}
	if b.flags&flagSnapshot != 0 {
		if len(p) < 16 {
			return nil, bad("short snapshot mark")
		}
		b.mark = point{binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])}
		p = p[16:]
		if b.mark.index > maxIndex || b.mark.term > maxIndex {
			return nil, bad("snapshot mark %d/%d", b.mark.index, b.mark.term)
		}
	}
	next := func() ([]byte, error) {
		if len(p) < 4 {
			return nil, bad("short length")
		}
		n := binary.BigEndian.Uint32(p)
		if uint64(n) > uint64(len(p)-4) {
			return nil, bad("length %d past the record", n)
		}
		m := p[4 : 4+n]
		p = p[4+n:]
		return m, nil
	}
	if b.flags&flagHard != 0 {
		m, err := next()
		if err != nil {
			return nil, err
		}
		b.hs = &raftpb.HardState{}
		if err := proto.Unmarshal(m, b.hs); err != nil {
			return nil, bad("hard state: %v", err)
		}
	}
	if len(p) < 4 {
		return nil, bad("short entry count")
	}
	count := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(count) > uint64(len(p))/4 {
		return nil, bad("%d entries in %d bytes", count, len(p))
	}
	b.ents = make([]*raftpb.Entry, 0, count)
	for i := range count {
		m, err := next()
		if err != nil {
			return nil, err
		}
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(m, e); err != nil {
			return nil, bad("entry %d: %v", i, err)
		}
		if e.GetIndex() == 0 || e.GetIndex() > maxIndex || e.GetTerm() > maxIndex {
			return nil, bad("entry %d: index %d term %d", i, e.GetIndex(), e.GetTerm())
		}
		if i > 0 && e.GetIndex() != b.ents[i-1].GetIndex()+1 {
			return nil, bad("entry %d has index %d after %d", i, e.GetIndex(), b.ents[i-1].GetIndex())
		}
		b.ents = append(b.ents, e)
	}
	if len(p) != 0 {
		return nil, bad("%d trailing bytes", len(p))
	}
	return b, nil
}
