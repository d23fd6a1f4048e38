package broker

import (
	"context"
	"encoding/binary"
	"math"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Special ListOffsets timestamps.
const (
	tsLatest        = -1
	tsEarliest      = -2
	tsMaxTimestamp  = -3 // KIP-734
	tsEarliestLocal = -4 // KIP-405; without tiered storage the same as earliest
)

// ListOffsets answers offsets by timestamp: -2 (or -4) the log start offset, -1 the log end
// offset (both with timestamp -1), -3 the record with the largest timestamp, any other value
// the first record whose timestamp is at least it (offset and timestamp -1 if none).
//
// Timestamp lookups are exact: the log's time index finds the entry, and the records inside
// its batch are scanned, decompressing a compressed batch for that purpose only (bounded to
// 64 MiB; an undecodable batch answers with its base offset and first timestamp).
func (b *Broker) ListOffsets(ctx context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.ListOffsetsResp{Partitions: make([]brokerop.ListOffsetsPartitionResp, len(req.Partitions))}
	for i := range req.Partitions {
		lp := &req.Partitions[i]
		r := &resp.Partitions[i]
		*r = brokerop.ListOffsetsPartitionResp{Topic: lp.Topic, Partition: lp.Partition, Timestamp: -1, Offset: -1}
		p := b.lookup(lp.Topic, lp.Partition)
		if p == nil || p.deleted.Load() {
			r.ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		if p.replicated() {
			b.listOffsetsReplicated(p, lp, r, req.IsolationLevel == 1) // replicated_read.go
			continue
		}
		l, err := b.useLog(p, false)
		switch {
		case err != nil:
		case l == nil: // never written: an empty log
			if lp.Timestamp == tsEarliest || lp.Timestamp == tsEarliestLocal || lp.Timestamp == tsLatest {
				r.Offset = 0
			}
		case lp.Timestamp == tsEarliest || lp.Timestamp == tsEarliestLocal:
			r.Offset = p.startOffset(l)
		case lp.Timestamp == tsLatest && req.IsolationLevel == 1: // read_committed: the LSO
			r.Offset, _, err = b.stableState(p, l, l.NextOffset())
		case lp.Timestamp == tsLatest:
			r.Offset = l.NextOffset()
			if l.SyncedOffset() < r.Offset && !p.t.cfg.Load().relaxed {
				// The high watermark shows only durable records, as Fetch does: records
				// answered before their fsync (acks=1, transactional produces of
				// transaction.version 2) join a group commit first.
				err = p.sync(l, r.Offset, b.cfg.Now)
			}
		case lp.Timestamp == tsMaxTimestamp:
			r.Offset, r.Timestamp, err = maxTimestamp(l)
		default:
			r.Offset, r.Timestamp, err = offsetForTimestamp(l, lp.Timestamp)
			if start := p.startOffset(l); err == nil && r.Offset >= 0 && r.Offset < start {
				r.Offset = start // below a DeleteRecords start: Kafka answers the log start offset
			}
		}
		p.logMu.RUnlock()
		if err != nil {
			r.Offset, r.Timestamp = -1, -1
			r.ErrorCode = b.storageError(p, "list offsets", err)
		}
	}
	return resp, nil
}

// offsetForTimestamp finds the first record with timestamp >= ts.
func offsetForTimestamp(l *wal.Log, ts int64) (offset, timestamp int64, err error) {
	off, ok, err := l.OffsetForTimestamp(ts)
	if err != nil || !ok {
		return -1, -1, err
	}
	// Entries whose max timestamp reaches ts start at off; the first such entry holds the
	// record (retention may race us, so look at a few entries on).
	for range 4 {
		batches, err := l.Read(off, 1)
		if err != nil {
			return -1, -1, err
		}
		if len(batches) == 0 {
			return -1, -1, nil
		}
		for _, bt := range batches {
			if o, t, ok := findInBatches(bt.Data, ts); ok {
				return o, t, nil
			}
			off = bt.LastOffset + 1
		}
	}
	return -1, -1, nil
}

// maxTimestamp finds the first record carrying the largest timestamp in the log: a binary
// search over timestamps with the log's time index, then an exact look inside the entry.
func maxTimestamp(l *wal.Log) (offset, timestamp int64, err error) {
	if _, ok, err := l.OffsetForTimestamp(math.MinInt64); err != nil || !ok {
		return -1, -1, err
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64) // ok(lo) holds; find the largest such
	for lo < hi {
		d := uint64(hi) - uint64(lo)
		mid := int64(uint64(lo) + d/2 + d%2) // upper middle; unsigned arithmetic cannot overflow
		_, ok, err := l.OffsetForTimestamp(mid)
		if err != nil {
			return -1, -1, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return offsetForTimestamp(l, lo)
}

// findInBatches scans the RecordBatches of one stored entry for the first record with
// timestamp >= ts.
func findInBatches(data []byte, ts int64) (offset, timestamp int64, ok bool) {
	for off := 0; off+batchHeaderLen <= len(data); {
		batch := data[off:]
		size := int(int32(binary.BigEndian.Uint32(batch[offBatchLength:]))) + batchLengthOverhd
		if size < batchHeaderLen || size > len(batch) {
			return 0, 0, false
		}
		batch = batch[:size]
		off += size
		base := int64(binary.BigEndian.Uint64(batch))
		maxTs := int64(binary.BigEndian.Uint64(batch[offMaxTimestamp:]))
		if maxTs < ts {
			continue
		}
		attrs := binary.BigEndian.Uint16(batch[offAttributes:])
		baseTs := int64(binary.BigEndian.Uint64(batch[offBaseTimestamp:]))
		if attrs&attrTimestampType != 0 { // LogAppendTime: every record has maxTimestamp
			return base, maxTs, true
		}
		recs, err := decompressRecords(attrs&attrCompressionMask, batch[batchHeaderLen:])
		if err != nil {
			return base, baseTs, true // undecodable or oversize: fall back to the batch
		}
		if o, t, found := findInRecords(recs, base, baseTs, ts); found {
			return o, t, true
		}
		return base, baseTs, true // malformed records: fall back to the batch
	}
	return 0, 0, false
}

// findInRecords walks uncompressed v2 records (varint length, attributes, timestampDelta,
// offsetDelta, …) for the first with timestamp >= ts.
func findInRecords(recs []byte, base, baseTs, ts int64) (offset, timestamp int64, ok bool) {
	for len(recs) > 0 {
		length, n := binary.Varint(recs)
		if n <= 0 || length < 0 || int64(len(recs)-n) < length {
			return 0, 0, false
		}
		rec := recs[n : n+int(length)]
		recs = recs[n+int(length):]
		if len(rec) < 1 {
			return 0, 0, false
		}
		tsDelta, n1 := binary.Varint(rec[1:])
		if n1 <= 0 {
			return 0, 0, false
		}
		offDelta, n2 := binary.Varint(rec[1+n1:])
		if n2 <= 0 {
			return 0, 0, false
		}
		if t := baseTs + tsDelta; t >= ts {
			return base + offDelta, t, true
		}
	}
	return 0, 0, false
}
