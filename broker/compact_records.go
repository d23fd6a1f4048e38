package broker

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Record-level work of log compaction (compact.go): walking the records of a RecordBatch
// and rebuilding a batch with some of its records left out, Kafka's rules.

// keyHash is what the cleaner's offset map keys on: a 128-bit digest of the record key
// (Kafka's cleaner uses MD5 of the key the same way); a collision could make the cleaner drop
// the older of two different keys, at odds of about 2^-128 per pair.
type keyHash [16]byte

func hashKey(k []byte) keyHash {
	s := sha256.Sum256(k)
	var h keyHash
	copy(h[:], s[:16])
	return h
}

// rawRecord is one record of a batch, as walkRecords finds it.
type rawRecord struct {
	offsetDelta int32
	key         []byte // nil for a null key
	nullValue   bool   // a tombstone (when it has a key)
	raw         []byte // the whole record, its length prefix included
}

var errBadRecords = errors.New("broker: malformed records")

// walkRecords calls fn with each of the count records in recs (an uncompressed RecordBatch
// body). It fails on anything malformed, never reading past recs.
func walkRecords(recs []byte, count int32, fn func(r rawRecord) error) error {
	if count < 0 {
		return fmt.Errorf("%w: record count %d", errBadRecords, count)
	}
	for i := int32(0); i < count; i++ {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 0 || int64(len(recs)-n) < length {
			return fmt.Errorf("%w: record %d length", errBadRecords, i)
		}
		raw := recs[:n+int(length)]
		body := recs[n : n+int(length)]
		recs = recs[n+int(length):]
		if len(body) < 1 {
			return fmt.Errorf("%w: record %d is empty", errBadRecords, i)
		}
		body = body[1:] // attributes
		var err error
		varint := func() int64 {
			v, k := binary.Varint(body)
			if k <= 0 {
				err = fmt.Errorf("%w: record %d varint", errBadRecords, i)
				return 0
			}
			body = body[k:]
			return v
		}
		bytesField := func() ([]byte, bool) {
			l := varint()
			if err != nil {
				return nil, false
			}
			if l < 0 {
				return nil, true
			}
			if int64(len(body)) < l {
				err = fmt.Errorf("%w: record %d field length %d", errBadRecords, i, l)
				return nil, false
			}
			v := body[:l:l]
			body = body[l:]
			return v, false
		}
		varint() // timestamp delta
		od := varint()
		key, keyNull := bytesField()
		_, valueNull := bytesField()
		if err != nil {
			return err
		}
		if od < 0 || od > 1<<31-1 {
			return fmt.Errorf("%w: record %d offset delta %d", errBadRecords, i, od)
		}
		if keyNull {
			key = nil
		} else if key == nil {
			key = []byte{}
		}
		if err := fn(rawRecord{offsetDelta: int32(od), key: key, nullValue: valueNull, raw: raw}); err != nil {
			return err
		}
	}
	return nil
}

// batchRecords returns a batch's records uncompressed and their count.
func batchRecords(batch []byte) ([]byte, int32, error) {
	if len(batch) < batchHeaderLen {
		return nil, 0, fmt.Errorf("%w: batch of %d bytes", errBadRecords, len(batch))
	}
	attrs := binary.BigEndian.Uint16(batch[offAttributes:])
	recs, err := decompressRecords(attrs&attrCompressionMask, batch[batchHeaderLen:])
	if err != nil {
		return nil, 0, err
	}
	return recs, int32(binary.BigEndian.Uint32(batch[offRecordCount:])), nil
}

// rebuildBatch returns a copy of batch holding only the records kept (raw records of it, in
// order; possibly none): same base offset, last offset delta, timestamps, producer fields
// and attributes, but uncompressed (decision: the cleaner does not recompress; a batch it
// leaves whole keeps its compression), with its length, record count and CRC recomputed.
func rebuildBatch(batch []byte, kept [][]byte) []byte {
	size := batchHeaderLen
	for _, r := range kept {
		size += len(r)
	}
	out := make([]byte, batchHeaderLen, size)
	copy(out, batch[:batchHeaderLen])
	for _, r := range kept {
		out = append(out, r...)
	}
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-batchLengthOverhd))
	attrs := binary.BigEndian.Uint16(out[offAttributes:]) &^ attrCompressionMask
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	binary.BigEndian.PutUint32(out[offRecordCount:], uint32(len(kept)))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out
}

// checkKeyed refuses a produce to a compacted topic that holds a record without a key, as
// Kafka does (INVALID_RECORD): the cleaner could never replace it. Control batches are not
// checked; batches are decompressed for it (compacted topics only).
func checkKeyed(data []byte, topic string, partition int32) *BatchError {
	var be *BatchError
	forEachBatch(data, func(batch []byte) {
		if be != nil || binary.BigEndian.Uint16(batch[offAttributes:])&attrControl != 0 {
			return
		}
		recs, n, err := batchRecords(batch)
		if err != nil {
			be = batchErr(kerr.CorruptMessage, "records of a batch for compacted topic %s cannot be read: %v", topic, err)
			return
		}
		if err := walkRecords(recs, n, func(r rawRecord) error {
			if r.key == nil {
				return errNoKey
			}
			return nil
		}); err != nil {
			if errors.Is(err, errNoKey) {
				be = batchErr(kerr.InvalidRecord, "Compacted topic cannot accept message without key in topic partition %s-%d.", topic, partition)
			} else {
				be = batchErr(kerr.CorruptMessage, "records of a batch for compacted topic %s are malformed: %v", topic, err)
			}
		}
	})
	return be
}

var errNoKey = errors.New("record without a key")
