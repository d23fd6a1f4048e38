package kafkawire

import "encoding/binary"

// Offsets in a RecordBatch v2 header (see appendBatchV2).
const (
	batchOffLength     = 8  // batchLength int32: the bytes after it
	batchOffMagic      = 16 // magic int8
	batchOffAttributes = 21 // attributes int16
	batchHeaderPrefix  = batchOffAttributes + 2

	attrTransactional = 0x10
)

// HasTransactionalBatch reports whether records (a partition's records as a Produce request
// carries them) holds a RecordBatch v2 with the transactional attribute, looking at every
// batch header in turn, as Kafka's RequestUtils.hasTransactionalRecords does before it asks
// for WRITE on the transactional id. It only reads headers: a batch cut short still counts
// by its attributes if they are there, and the walk stops at the first header that is
// incomplete or has a length that cannot be right (the broker refuses such records anyway).
// Legacy message sets (magic 0 and 1) are never transactional.
func HasTransactionalBatch(records []byte) bool {
	for len(records) >= batchHeaderPrefix {
		if records[batchOffMagic] == 2 && binary.BigEndian.Uint16(records[batchOffAttributes:])&attrTransactional != 0 {
			return true
		}
		n := int64(int32(binary.BigEndian.Uint32(records[batchOffLength:])))
		if n < batchHeaderPrefix-12 || n > int64(len(records))-12 {
			return false
		}
		records = records[12+n:]
	}
	return false
}
