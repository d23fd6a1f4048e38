package kafkawire

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/snappy"
	"github.com/pierrec/lz4/v4"
)

// Legacy message sets (magic 0 and 1) are what Produce v0–v2 carry:
//
//	message set: repeated { offset int64, message_size int32, message }
//	message v0:  crc int32 (IEEE, over the rest), magic int8 = 0, attributes int8,
//	             key bytes (int32 length, -1 = null), value bytes
//	message v1:  crc, magic = 1, attributes, timestamp int64, key, value
//
// attributes & 0x07 is the codec (0 none, 1 gzip, 2 snappy, 3 lz4); a compressed message is
// a wrapper whose value holds a compressed inner message set. ConvertMessageSet turns a
// message set into one uncompressed RecordBatch v2, the only format the broker stores.
// Limits: one level of compression (as Kafka allows); lz4 must be a standard LZ4 frame, so
// the pre-0.10 magic-0 lz4 framing (with its miscomputed header checksum) is refused as
// corrupt; a partial trailing message (which a producer never sends) is corrupt too.

// ErrCorruptMessageSet is returned for a legacy message set that cannot be converted
// (truncated, bad CRC, unknown codec, or nested compression). Produce answers
// CORRUPT_MESSAGE.
var ErrCorruptMessageSet = errors.New("kafkawire: corrupt legacy message set")

// maxInflated caps what one compressed wrapper may inflate to.
const maxInflated = DefaultMaxFrame

type legacyMsg = BatchRecord

// BatchRecord is one record for AppendRecordBatch: a timestamp (ms; negative = none) and a
// key and value (nil = null).
type BatchRecord struct {
	Timestamp  int64
	Key, Value []byte
}

// ConvertMessageSet converts a magic 0/1 message set to a RecordBatch v2 (uncompressed,
// CreateTime, no producer id, base offset 0). Magic 0 messages have no timestamp: their
// records carry -1, as Kafka's up-conversion does.
func ConvertMessageSet(ms []byte) ([]byte, error) {
	var msgs []legacyMsg
	if err := readMessageSet(ms, &msgs, false); err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: no messages", ErrCorruptMessageSet)
	}
	return appendBatchV2(nil, msgs), nil
}

func readMessageSet(b []byte, out *[]legacyMsg, inner bool) error {
	for len(b) > 0 {
		if len(b) < 12 {
			return fmt.Errorf("%w: truncated", ErrCorruptMessageSet)
		}
		size := int(int32(binary.BigEndian.Uint32(b[8:])))
		if size < 14 || size > len(b)-12 {
			return fmt.Errorf("%w: message size %d", ErrCorruptMessageSet, size)
		}
		m := b[12 : 12+size]
		b = b[12+size:]
		if crc32.ChecksumIEEE(m[4:]) != binary.BigEndian.Uint32(m) {
			return fmt.Errorf("%w: crc mismatch", ErrCorruptMessageSet)
		}
		magic, attrs := m[4], m[5]
		rest := m[6:]
		ts := int64(-1)
		switch magic {
		case 0:
		case 1:
			if len(rest) < 8 {
				return fmt.Errorf("%w: truncated timestamp", ErrCorruptMessageSet)
			}
			ts = int64(binary.BigEndian.Uint64(rest))
			rest = rest[8:]
		default:
			return fmt.Errorf("%w: magic %d", ErrCorruptMessageSet, magic)
		}
		key, rest, ok := legacyBytes(rest)
		if !ok {
			return fmt.Errorf("%w: key", ErrCorruptMessageSet)
		}
		value, rest, ok := legacyBytes(rest)
		if !ok || len(rest) != 0 {
			return fmt.Errorf("%w: value", ErrCorruptMessageSet)
		}
		codec := attrs & 0x07
		if codec == 0 {
			*out = append(*out, legacyMsg{Timestamp: ts, Key: key, Value: value})
			continue
		}
		if inner {
			return fmt.Errorf("%w: nested compression", ErrCorruptMessageSet)
		}
		raw, err := inflate(codec, value)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptMessageSet, err)
		}
		start := len(*out)
		if err := readMessageSet(raw, out, true); err != nil {
			return err
		}
		if magic == 1 && attrs&0x08 != 0 { // LogAppendTime wrapper: inner timestamps are the wrapper's
			for i := start; i < len(*out); i++ {
				(*out)[i].Timestamp = ts
			}
		}
	}
	return nil
}

func legacyBytes(b []byte) ([]byte, []byte, bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := int(int32(binary.BigEndian.Uint32(b)))
	b = b[4:]
	if n == -1 {
		return nil, b, true
	}
	if n < 0 || n > len(b) {
		return nil, nil, false
	}
	return b[:n], b[n:], true
}

var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

func inflate(codec byte, in []byte) ([]byte, error) {
	switch codec {
	case 1:
		zr, err := gzip.NewReader(bytes.NewReader(in))
		if err != nil {
			return nil, err
		}
		return readCapped(zr)
	case 2:
		if !bytes.HasPrefix(in, xerialMagic) {
			return snappyBlock(in)
		}
		// xerial framing: 8-byte magic, two int32 versions, then int32-length-prefixed blocks.
		if len(in) < 16 {
			return nil, errors.New("short xerial header")
		}
		in = in[16:]
		var out []byte
		for len(in) > 0 {
			if len(in) < 4 {
				return nil, errors.New("short xerial block")
			}
			n := int(binary.BigEndian.Uint32(in))
			if n > len(in)-4 {
				return nil, errors.New("xerial block overruns")
			}
			blk, err := snappyBlock(in[4 : 4+n])
			if err != nil {
				return nil, err
			}
			if len(out)+len(blk) > maxInflated {
				return nil, errors.New("inflates too large")
			}
			out = append(out, blk...)
			in = in[4+n:]
		}
		return out, nil
	case 3:
		return readCapped(lz4.NewReader(bytes.NewReader(in)))
	}
	return nil, fmt.Errorf("codec %d", codec)
}

func snappyBlock(in []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(in)
	if err != nil {
		return nil, err
	}
	if n > maxInflated {
		return nil, errors.New("inflates too large")
	}
	return snappy.Decode(nil, in)
}

func readCapped(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, maxInflated+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxInflated {
		return nil, errors.New("inflates too large")
	}
	return out, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendRecordBatch appends an uncompressed RecordBatch v2 holding recs (at least one), with
// base offset 0 and no producer id, as a broker stores it before assigning offsets.
func AppendRecordBatch(dst []byte, recs []BatchRecord) []byte { return appendBatchV2(dst, recs) }

// appendBatchV2 appends an uncompressed RecordBatch v2 holding msgs:
//
//	baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8 = 2,
//	crc uint32 (CRC-32C over attributes..end), attributes int16, lastOffsetDelta int32,
//	baseTimestamp int64, maxTimestamp int64, producerId int64, producerEpoch int16,
//	baseSequence int32, records int32 count, records
//
// each record: length varint, attributes int8, timestampDelta varint, offsetDelta varint,
// key (varint length, -1 = null), value, header count varint (0).
func appendBatchV2(dst []byte, msgs []legacyMsg) []byte {
	start := len(dst)
	base, maxTS := msgs[0].Timestamp, msgs[0].Timestamp
	for _, m := range msgs {
		maxTS = max(maxTS, m.Timestamp)
	}
	dst = binary.BigEndian.AppendUint64(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, 0) // length, below
	dst = binary.BigEndian.AppendUint32(dst, 0) // partition leader epoch
	dst = append(dst, 2)
	dst = binary.BigEndian.AppendUint32(dst, 0) // crc, below
	crcFrom := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msgs)-1))
	dst = binary.BigEndian.AppendUint64(dst, uint64(base))
	dst = binary.BigEndian.AppendUint64(dst, uint64(maxTS))
	dst = binary.BigEndian.AppendUint64(dst, ^uint64(0)) // producer id -1
	dst = binary.BigEndian.AppendUint16(dst, 0xffff)     // producer epoch -1
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff) // base sequence -1
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(msgs)))
	var rec []byte
	for i, m := range msgs {
		rec = append(rec[:0], 0)
		delta := int64(0)
		if base >= 0 && m.Timestamp >= 0 {
			delta = m.Timestamp - base
		}
		rec = binary.AppendVarint(rec, delta)
		rec = binary.AppendVarint(rec, int64(i))
		rec = appendVarBytes(rec, m.Key)
		rec = appendVarBytes(rec, m.Value)
		rec = binary.AppendVarint(rec, 0)
		dst = binary.AppendVarint(dst, int64(len(rec)))
		dst = append(dst, rec...)
	}
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-12))
	binary.BigEndian.PutUint32(dst[start+17:], crc32.Checksum(dst[crcFrom:], castagnoli))
	return dst
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}
