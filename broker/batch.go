package broker

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kerr"
)

// RecordBatch v2 header, as Kafka lays it out (big-endian):
//
//	offset  size  field
//	     0     8  baseOffset            (assigned by the broker; not covered by the CRC)
//	     8     4  batchLength           (bytes after this field)
//	    12     4  partitionLeaderEpoch  (not covered by the CRC)
//	    16     1  magic                 (2)
//	    17     4  crc                   (CRC-32C of bytes 21..end)
//	    21     2  attributes            (bits 0-2 compression, 3 timestamp type, 4 transactional, 5 control)
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp
//	    35     8  maxTimestamp
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61     …  records
const (
	offBatchLength     = 8
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offRecordCount     = 57
	batchHeaderLen     = 61
	batchLengthOverhd  = 12 // baseOffset + batchLength

	attrCompressionMask = 0x07
	attrTimestampType   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchError is why ValidateBatches refused a produce payload: a Kafka error code and the
// message Kafka would give.
type BatchError struct {
	Code int16
	Msg  string
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%s: %s", kerr.ErrorForCode(e.Code), e.Msg)
}

func batchErr(code *kerr.Error, format string, args ...any) *BatchError {
	return &BatchError{Code: code.Code, Msg: fmt.Sprintf(format, args...)}
}

// BatchSummary is what the broker needs of a validated produce payload.
type BatchSummary struct {
	Batches      int   // RecordBatches in the payload
	Records      int32 // offsets the payload occupies (sum of lastOffsetDelta+1)
	MaxTimestamp int64 // largest maxTimestamp of any batch
}

// ValidateBatches checks a produce payload: one or more RecordBatch v2 back to back, each with
// a sane length, magic 2, a matching CRC-32C, a known compression codec, a record count that
// agrees with lastOffsetDelta, no control flag (clients may not write control batches), a producer id on a
// transactional batch and at most maxBatchBytes bytes (maxBatchBytes < 0:
// no limit). It reads only batch headers: records are never decoded or decompressed.
//
// Errors use Kafka's codes: CORRUPT_MESSAGE for bad framing or CRC, INVALID_RECORD for legacy
// (magic 0/1) message sets, an empty payload or inconsistent counts, MESSAGE_TOO_LARGE for an
// oversize batch.
func ValidateBatches(b []byte, maxBatchBytes int) (BatchSummary, error) {
	var s BatchSummary
	if len(b) == 0 {
		return s, batchErr(kerr.InvalidRecord, "produce requests must have at least one record batch per partition")
	}
	for off := 0; off < len(b); {
		rest := b[off:]
		if len(rest) < offMagic+1 {
			return s, batchErr(kerr.CorruptMessage, "%d trailing bytes are too short for a record batch header", len(rest))
		}
		if magic := rest[offMagic]; magic != 2 {
			if magic < 2 {
				return s, batchErr(kerr.InvalidRecord, "produce requests are only allowed to contain record batches with magic version 2 (got magic %d)", magic)
			}
			return s, batchErr(kerr.CorruptMessage, "invalid magic %d in record batch at byte %d", magic, off)
		}
		length := int32(binary.BigEndian.Uint32(rest[offBatchLength:]))
		if length < batchHeaderLen-batchLengthOverhd {
			return s, batchErr(kerr.CorruptMessage, "record batch at byte %d has length %d, below the minimum %d", off, length, batchHeaderLen-batchLengthOverhd)
		}
		size := int(length) + batchLengthOverhd
		if size > len(rest) {
			return s, batchErr(kerr.CorruptMessage, "record batch at byte %d claims %d bytes, only %d present", off, size, len(rest))
		}
		batch := rest[:size]
		if want, got := binary.BigEndian.Uint32(batch[offCRC:]), crc32.Checksum(batch[offAttributes:], castagnoli); want != got {
			return s, batchErr(kerr.CorruptMessage, "record batch at byte %d is corrupt (stored crc = %d, computed crc = %d)", off, want, got)
		}
		if maxBatchBytes >= 0 && size > maxBatchBytes {
			return s, batchErr(kerr.MessageTooLarge, "the record batch size in the append is %d bytes which exceeds the maximum configured value of %d", size, maxBatchBytes)
		}
		attrs := binary.BigEndian.Uint16(batch[offAttributes:])
		if c := attrs & attrCompressionMask; c > 4 {
			return s, batchErr(kerr.CorruptMessage, "unknown compression type id %d in record batch at byte %d", c, off)
		}
		if attrs&attrControl != 0 {
			return s, batchErr(kerr.InvalidRecord, "clients are not allowed to write control records")
		}
		if attrs&attrTransactional != 0 && int64(binary.BigEndian.Uint64(batch[offProducerID:])) < 0 {
			return s, batchErr(kerr.InvalidRecord, "a transactional record batch needs a producer id")
		}
		delta := int32(binary.BigEndian.Uint32(batch[offLastOffsetDelta:]))
		count := int32(binary.BigEndian.Uint32(batch[offRecordCount:]))
		if delta < 0 {
			return s, batchErr(kerr.InvalidRecord, "record batch has an invalid offset range: lastOffsetDelta %d", delta)
		}
		if count != delta+1 {
			return s, batchErr(kerr.InvalidRecord, "inconsistent batch offset range (lastOffsetDelta %d) and record count %d", delta, count)
		}
		if s.Records > 1<<31-1-count {
			return s, batchErr(kerr.InvalidRecord, "too many records in one produce payload")
		}
		s.Records += count
		if ts := int64(binary.BigEndian.Uint64(batch[offMaxTimestamp:])); s.Batches == 0 || ts > s.MaxTimestamp {
			s.MaxTimestamp = ts
		}
		s.Batches++
		off += size
	}
	return s, nil
}

// stampOffsets writes consecutive base offsets into the batches of a payload that passed
// ValidateBatches, starting at base. baseOffset is outside the CRC, so nothing else changes.
func stampOffsets(b []byte, base int64) {
	for off := 0; off+batchHeaderLen <= len(b); {
		binary.BigEndian.PutUint64(b[off:], uint64(base))
		size := int(int32(binary.BigEndian.Uint32(b[off+offBatchLength:]))) + batchLengthOverhd
		base += int64(int32(binary.BigEndian.Uint32(b[off+offLastOffsetDelta:]))) + 1
		if size <= batchLengthOverhd {
			return
		}
		off += size
	}
}
