package broker

import (
	"errors"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Reads of replicated partitions: only the leader serves them, once it applied its own
// term's first entry, and never past the high watermark (the next offset after the last
// applied entry), so a consumer never sees an entry that is not committed.

// serving returns p's raft group if this broker serves reads of p (it leads it and applied
// its own term's first entry) with the term; otherwise the Kafka error code (nil group).
func (p *partition) serving(currentEpoch int32) (*replGroup, uint64, int16) {
	g := p.group.Load()
	if g == nil {
		return nil, 0, kerr.NotLeaderForPartition.Code
	}
	ok, _, term := g.leaderState()
	if !ok || g.b.Err() != nil { // stopped (a failed journal write): let another replica serve
		return nil, 0, kerr.NotLeaderForPartition.Code
	}
	// Leader epochs of replicated partitions are raft terms (≥ 1): 0 and -1 mean "none given".
	switch {
	case currentEpoch > 0 && uint64(currentEpoch) < term:
		return nil, 0, kerr.FencedLeaderEpoch.Code
	case currentEpoch > 0 && uint64(currentEpoch) > term:
		return nil, 0, kerr.UnknownLeaderEpoch.Code
	}
	return g, term, 0
}

// highWatermark is the next offset after the last applied entry.
func (g *replGroup) highWatermark() int64 { return max(g.hw.Load(), 0) }

// readReplicated is readPartition for a replicated partition.
// committed (read_committed) reads only below the last stable offset and leaves aborted
// transactions out, from the applied state (replicated_txn.go).
func (b *Broker) readReplicated(p *partition, fp *brokerop.FetchPartition, r *brokerop.FetchPartitionResp, remaining int, minOne, committed bool, bufs *readBufs) (int, bool) {
	g, _, code := p.serving(fp.CurrentLeaderEpoch)
	if code != 0 {
		r.ErrorCode = code
		return 0, true
	}
	p.logMu.RLock()
	defer p.logMu.RUnlock()
	l := p.log
	if l == nil || p.deleted.Load() {
		r.ErrorCode = kerr.NotLeaderForPartition.Code
		return 0, true
	}
	hw := g.highWatermark()
	lso, aborted := g.stable(hw, fp.Offset)
	r.HighWatermark, r.LastStableOffset, r.LogStartOffset = hw, lso, g.logStartOffset()
	if fp.Offset == hw {
		return 0, false
	}
	// Between the high watermark and the log end: not committed yet, nothing to read.
	if fp.Offset < r.LogStartOffset || fp.Offset > l.NextOffset() {
		r.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0, true
	}
	if fp.Offset >= hw || committed && fp.Offset >= lso {
		return 0, false
	}
	limit := min(int(fp.MaxBytes), remaining)
	if limit <= 0 && !minOne {
		return 0, false
	}
	batches, err := l.ReadInto(fp.Offset, max(limit, 1), bufs.get(limit))
	if committed && err == nil {
		batches, err = b.readCommitted(l, batches, lso, aborted, limit, bufs)
	}
	if errors.Is(err, wal.ErrOffsetOutOfRange) {
		r.LogStartOffset = g.logStartOffset()
		r.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0, true
	}
	if err != nil {
		r.ErrorCode = b.storageError(p, "read", err)
		return 0, true
	}
	return setRecords(r, bufs, batches, hw, limit, minOne), false
}

// listOffsetsReplicated is ListOffsets for one replicated partition: latest is the high
// watermark (read_committed: the last stable offset), and a timestamp lookup never answers
// an offset at or past the high watermark.
func (b *Broker) listOffsetsReplicated(p *partition, lp *brokerop.ListOffsetsPartition, r *brokerop.ListOffsetsPartitionResp, committed bool) {
	g, term, code := p.serving(lp.CurrentLeaderEpoch)
	if code != 0 {
		r.ErrorCode = code
		return
	}
	r.LeaderEpoch = int32(min(term, 1<<31-1))
	p.logMu.RLock()
	defer p.logMu.RUnlock()
	l := p.log
	if l == nil || p.deleted.Load() {
		r.ErrorCode = kerr.NotLeaderForPartition.Code
		return
	}
	hw := g.highWatermark()
	var err error
	switch lp.Timestamp {
	case tsEarliest, tsEarliestLocal:
		r.Offset = g.logStartOffset()
	case tsLatest:
		r.Offset = hw
		if committed {
			r.Offset, _ = g.stable(hw, hw)
		}
	case tsMaxTimestamp:
		r.Offset, r.Timestamp, err = maxTimestamp(l)
	default:
		r.Offset, r.Timestamp, err = offsetForTimestamp(l, lp.Timestamp)
	}
	if start := g.logStartOffset(); err == nil && r.Timestamp != -1 && r.Offset >= 0 && r.Offset < start {
		r.Offset = start // below a DeleteRecords start: Kafka answers the log start offset
	}
	if err == nil && r.Timestamp != -1 && r.Offset >= hw {
		r.Offset, r.Timestamp = -1, -1 // found only in entries not committed yet
	}
	if err != nil {
		r.Offset, r.Timestamp = -1, -1
		r.ErrorCode = b.storageError(p, "list offsets", err)
	}
}

// endOffsetFor answers OffsetForLeaderEpoch from the terms of the applied entries, as Kafka
// answers from its leader epoch cache: the requested epoch if it is the latest (ending at
// the high watermark), else the largest epoch at most it (or the requested one, if it is
// older than every epoch here) ending where the next epoch starts; (-1, -1) above the latest.
func (g *replGroup) endOffsetFor(epoch int32) (int32, int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.epochs) == 0 || epoch < 0 {
		return -1, -1
	}
	req := uint64(epoch)
	last := g.epochs[len(g.epochs)-1]
	if req >= last.term {
		if req == last.term {
			return epoch, g.highWatermark()
		}
		return -1, -1
	}
	i := 0
	for i < len(g.epochs) && g.epochs[i].term <= req {
		i++
	}
	higher := g.epochs[i] // exists: req < last.term
	if i == 0 {
		return epoch, higher.start
	}
	return int32(g.epochs[i-1].term), higher.start
}
