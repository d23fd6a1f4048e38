package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
)

// Kafka RecordBatch v2 fields raftstore reads or writes (big-endian; the layout is drawn in
// broker/batch.go and in doc.go).
const (
	offBatchLength   = 8
	offLeaderEpoch   = 12
	offMagic         = 16
	offCRC           = 17
	offAttributes    = 21
	offLastDelta     = 23
	offBaseTimestamp = 27
	offMaxTimestamp  = 35
	offProducerID    = 43
	offProducerEpoch = 51
	offBaseSequence  = 53
	offRecordCount   = 57
	batchHeaderLen   = 61
	lengthOverhead   = 12 // baseOffset + batchLength
	attrControl      = 0x20
)

// Control key types of raftstore's control batches (Kafka uses 0 abort and 1 commit; these are
// far from them). Every Kafka client skips control batches whatever their key type.
const (
	ctrlNoop         = 0x7f01 // an empty normal raft entry (the no-op a new leader proposes)
	ctrlConfChange   = 0x7f02 // raftpb.EntryConfChange; value: the entry's data
	ctrlConfChangeV2 = 0x7f03 // raftpb.EntryConfChangeV2; value: the entry's data
	ctrlApp          = 0x7f04 // an application entry (AppEntry); value: its payload
)

// appPrefix starts the raft entry data of an application entry (AppEntry): twelve 0xff
// bytes, i.e. a baseOffset of -1 and a batchLength of -1, which no Kafka record batch has,
// so no data payload can be taken for one.
var appPrefix = bytes.Repeat([]byte{0xff}, 12)

// AppEntry returns the raft entry data (a normal entry) of an application entry: a small
// payload the application's state machine applies on every replica (the broker's
// DeleteRecords log start) that is no Kafka data. It is stored as one control batch (type
// 0x7f04, the payload as its value), occupying one offset that every Kafka client skips.
func AppEntry(payload []byte) []byte {
	return append(slices.Clip(appPrefix), payload...)
}

// AppPayload returns the payload of an application entry's data (ok false: not one).
func AppPayload(data []byte) (payload []byte, ok bool) {
	if !bytes.HasPrefix(data, appPrefix) {
		return nil, false
	}
	return data[len(appPrefix):], true
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errControl is the cause of every malformed control batch.
var errControl = errors.New("raftstore: malformed control entry")

// encodeControl returns the control batch that stores a raft entry with no Kafka payload: an
// empty normal entry, or a conf change (its data as the record's value). The batch is valid
// Kafka RecordBatch v2: control attribute, one record, partitionLeaderEpoch = term,
// timestamps -1 (none), producer id/epoch/sequence -1, baseOffset 0 (the broker's Stamp writes
// the real one).
func encodeControl(typ raftpb.EntryType, term uint64, data []byte) ([]byte, error) {
	var key uint16
	switch {
	case typ == raftpb.EntryType_EntryNormal && len(data) == 0:
		key = ctrlNoop
	case typ == raftpb.EntryType_EntryNormal && bytes.HasPrefix(data, appPrefix):
		key, data = ctrlApp, data[len(appPrefix):]
	case typ == raftpb.EntryType_EntryConfChange:
		key = ctrlConfChange
	case typ == raftpb.EntryType_EntryConfChangeV2:
		key = ctrlConfChangeV2
	default:
		return nil, fmt.Errorf("%w: entry type %v with %d bytes", errControl, typ, len(data))
	}
	if term > math.MaxInt32 {
		return nil, fmt.Errorf("raftstore: term %d does not fit a Kafka leader epoch", term)
	}
	// The record: attributes, timestampDelta, offsetDelta, key (version 0, type), value,
	// no headers; lengths are zigzag varints.
	var rec []byte
	rec = append(rec, 0)                        // attributes
	rec = binary.AppendVarint(rec, 0)           // timestampDelta
	rec = binary.AppendVarint(rec, 0)           // offsetDelta
	rec = binary.AppendVarint(rec, 4)           // key length
	rec = binary.BigEndian.AppendUint16(rec, 0) // key version
	rec = binary.BigEndian.AppendUint16(rec, key)
	rec = binary.AppendVarint(rec, int64(len(data)))
	rec = append(rec, data...)
	rec = binary.AppendVarint(rec, 0) // headers
	b := make([]byte, batchHeaderLen, batchHeaderLen+binary.MaxVarintLen64+len(rec))
	b = binary.AppendVarint(b, int64(len(rec)))
	b = append(b, rec...)
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-lengthOverhead))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(term))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], attrControl)
	binary.BigEndian.PutUint32(b[offLastDelta:], 0)
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], math.MaxUint64) // -1
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], math.MaxUint64)
	binary.BigEndian.PutUint64(b[offProducerID:], math.MaxUint64)
	binary.BigEndian.PutUint16(b[offProducerEpoch:], math.MaxUint16)
	binary.BigEndian.PutUint32(b[offBaseSequence:], math.MaxUint32)
	binary.BigEndian.PutUint32(b[offRecordCount:], 1)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b, nil
}

// isControl reports whether b starts with a Kafka control batch (magic 2, control attribute).
func isControl(b []byte) bool {
	return len(b) >= batchHeaderLen && b[offMagic] == 2 && binary.BigEndian.Uint16(b[offAttributes:])&attrControl != 0
}

// decodeControl decodes a stored control entry (b must be exactly one control batch written
// by encodeControl, baseOffset aside): the raft entry's type, term and data. Anything else is
// an error wrapping errControl; it never panics.
func decodeControl(b []byte) (typ raftpb.EntryType, term uint64, data []byte, err error) {
	bad := func(why string) (raftpb.EntryType, uint64, []byte, error) {
		return 0, 0, nil, fmt.Errorf("%w: %s", errControl, why)
	}
	if !isControl(b) {
		return bad("not a control batch")
	}
	if n := int64(int32(binary.BigEndian.Uint32(b[offBatchLength:]))); n != int64(len(b)-lengthOverhead) {
		return bad(fmt.Sprintf("batch length %d, %d bytes stored", n, len(b)-lengthOverhead))
	}
	if crc32.Checksum(b[offAttributes:], castagnoli) != binary.BigEndian.Uint32(b[offCRC:]) {
		return bad("crc mismatch")
	}
	epoch := int32(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
	if binary.BigEndian.Uint16(b[offAttributes:]) != attrControl || binary.BigEndian.Uint32(b[offLastDelta:]) != 0 ||
		binary.BigEndian.Uint32(b[offRecordCount:]) != 1 || epoch < 0 {
		return bad("attributes, offset delta, record count or epoch")
	}
	r := b[batchHeaderLen:]
	n, k := binary.Varint(r)
	if k <= 0 || n != int64(len(r)-k) {
		return bad("record length")
	}
	r = r[k:]
	if len(r) < 1 || r[0] != 0 {
		return bad("record attributes")
	}
	r = r[1:]
	for _, want := range []int64{0, 0, 4} { // timestampDelta, offsetDelta, key length
		v, k := binary.Varint(r)
		if k <= 0 || v != want {
			return bad("record header")
		}
		r = r[k:]
	}
	if len(r) < 4 || binary.BigEndian.Uint16(r) != 0 {
		return bad("control key")
	}
	key := binary.BigEndian.Uint16(r[2:])
	switch key {
	case ctrlNoop:
		typ = raftpb.EntryType_EntryNormal
	case ctrlConfChange:
		typ = raftpb.EntryType_EntryConfChange
	case ctrlConfChangeV2:
		typ = raftpb.EntryType_EntryConfChangeV2
	case ctrlApp:
		typ = raftpb.EntryType_EntryNormal
	default:
		return bad(fmt.Sprintf("control type %#x", binary.BigEndian.Uint16(r[2:])))
	}
	r = r[4:]
	vl, k := binary.Varint(r)
	if k <= 0 || vl < 0 || vl > int64(len(r)-k) {
		return bad("value length")
	}
	data = r[k : k+int(vl) : k+int(vl)]
	r = r[k+int(vl):]
	if h, k := binary.Varint(r); k <= 0 || h != 0 || k != len(r) {
		return bad("headers or trailing bytes")
	}
	switch {
	case key == ctrlApp:
		data = AppEntry(data)
	case typ == raftpb.EntryType_EntryNormal && len(data) != 0:
		return bad("no-op with a value")
	case len(data) == 0:
		data = nil
	}
	// One meaning per stored entry: only the canonical encoding is accepted (no
	// non-minimal varints; baseOffset aside, which the broker stamps).
	if re, err := encodeControl(typ, uint64(epoch), data); err != nil || !bytes.Equal(re[8:], b[8:]) {
		return bad("not in canonical form")
	}
	return typ, uint64(epoch), data, nil
}

// stampEpoch writes term as the partitionLeaderEpoch of every batch of a data payload (a
// field outside the batch CRC, as Kafka's broker sets it).
func stampEpoch(b []byte, term uint64) {
	for off := 0; off+batchHeaderLen <= len(b); {
		binary.BigEndian.PutUint32(b[off+offLeaderEpoch:], uint32(term))
		size := int(int32(binary.BigEndian.Uint32(b[off+offBatchLength:]))) + lengthOverhead
		if size <= lengthOverhead {
			return
		}
		off += size
	}
}

// payloadEpoch returns the partitionLeaderEpoch of a data payload's first batch: the term of
// the raft entry that stored it.
func payloadEpoch(b []byte) (uint64, error) {
	if len(b) < batchHeaderLen {
		return 0, fmt.Errorf("raftstore: stored entry of %d bytes is no record batch", len(b))
	}
	e := int32(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
	if e < 0 {
		return 0, fmt.Errorf("raftstore: stored entry with leader epoch %d", e)
	}
	return uint64(e), nil
}
