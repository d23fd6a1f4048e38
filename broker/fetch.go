package broker

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/bufpool"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Fetch reads whole stored batches from each requested partition, honouring the request's
// total MaxBytes and each partition's MaxBytes, except that the first partition with data
// returns at least one whole batch even if it is larger (KIP-74). Batches start with the one
// containing the fetch offset, so the first may begin before it (as in Kafka; clients skip).
//
// If fewer than MinBytes are available and no partition has an error, Fetch waits up to
// MaxWaitMs for more: every append to a requested partition wakes it to re-read, so it
// returns as soon as enough data arrived. ctx cancellation and Close end the wait early with
// what is there.
func (b *Broker) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	return b.fetch(ctx, req, nil)
}

// FetchPooled is Fetch whose record bytes may live in read buffers the broker reuses: the
// caller calls release exactly once, when it no longer uses resp (e.g. after writing the
// answer to the socket), and must not touch resp's records after that. Not calling release
// is safe (the buffers are then garbage collected); calling it early is not.
func (b *Broker) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (resp *brokerop.FetchResp, release func(), err error) {
	bufs := &readBufs{}
	resp, err = b.fetch(ctx, req, bufs)
	return resp, bufs.release, err
}

func (b *Broker) fetch(ctx context.Context, req *brokerop.FetchReq, bufs *readBufs) (*brokerop.FetchResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.FetchResp{Partitions: make([]brokerop.FetchPartitionResp, len(req.Partitions))}
	parts := make([]*partition, len(req.Partitions))
	for i := range req.Partitions {
		parts[i] = b.lookup(req.Partitions[i].Topic, req.Partitions[i].Partition)
	}
	n, failed := b.readOnce(req, parts, resp, bufs)
	if failed || n >= int(req.MinBytes) || req.MaxWaitMs <= 0 {
		return resp, nil
	}
	// Register before re-reading so that an append between the read and the wait is not
	// missed: the buffered channel keeps one pending signal.
	wake := make(chan struct{}, 1)
	for _, p := range parts {
		if p != nil {
			p.addWaiter(wake)
		}
	}
	defer func() {
		for _, p := range parts {
			if p != nil {
				p.removeWaiter(wake)
			}
		}
	}()
	timer := time.NewTimer(time.Duration(req.MaxWaitMs) * time.Millisecond)
	defer timer.Stop()
	for {
		n, failed = b.readOnce(req, parts, resp, bufs)
		if failed || n >= int(req.MinBytes) {
			return resp, nil
		}
		select {
		case <-wake:
		case <-timer.C:
			return resp, nil
		case <-ctx.Done():
			return resp, nil
		case <-b.closing:
			return resp, nil
		}
	}
}

// readOnce fills resp from the logs and returns the bytes read and whether any partition
// has an error.
func (b *Broker) readOnce(req *brokerop.FetchReq, parts []*partition, resp *brokerop.FetchResp, bufs *readBufs) (int, bool) {
	// Every partition's answer is overwritten below: the buffers of an earlier pass (a long
	// poll re-reading after a wake) are no longer referenced.
	bufs.release()
	remaining := int(req.MaxBytes)
	if req.MaxBytes <= 0 {
		remaining = 1<<31 - 1 // Fetch v0–v2 have no total limit
	}
	total := 0
	failed := false
	minOne := true // KIP-74: the first partition with data returns at least one batch
	for i := range req.Partitions {
		fp := &req.Partitions[i]
		r := &resp.Partitions[i]
		*r = brokerop.FetchPartitionResp{Topic: fp.Topic, Partition: fp.Partition, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1}
		p := parts[i]
		if p == nil || p.deleted.Load() {
			r.ErrorCode = kerr.UnknownTopicOrPartition.Code
			failed = true
			continue
		}
		var size int
		var bad bool
		if p.replicated() {
			size, bad = b.readReplicated(p, fp, r, remaining, minOne, req.IsolationLevel == 1, bufs) // replicated_read.go
		} else {
			size, bad = b.readPartition(p, fp, r, remaining, minOne, req.IsolationLevel == 1, bufs)
		}
		if bad {
			failed = true
		}
		if size > 0 {
			minOne = false
			remaining -= size
			total += size
		}
	}
	return total, failed
}

// readPartition fills one partition's answer within limit bytes (at least one batch when
// minOne) and returns the bytes read and whether it failed. committed (read_committed)
// reads only below the last stable offset and leaves aborted transactions out
// (txn_partition.go).
func (b *Broker) readPartition(p *partition, fp *brokerop.FetchPartition, r *brokerop.FetchPartitionResp, remaining int, minOne, committed bool, bufs *readBufs) (int, bool) {
	l, err := b.useLog(p, false)
	defer p.logMu.RUnlock()
	if err != nil {
		r.ErrorCode = b.storageError(p, "open", err)
		return 0, true
	}
	if l == nil { // never written: an empty log
		r.HighWatermark, r.LastStableOffset, r.LogStartOffset = 0, 0, 0
		if fp.Offset != 0 {
			r.ErrorCode = kerr.OffsetOutOfRange.Code
			return 0, true
		}
		return 0, false
	}
	hw := l.NextOffset()
	if fp.Offset < hw && l.SyncedOffset() < hw && !p.t.cfg.Load().relaxed {
		// Serve only durable records: a record read now must still be there after a crash
		// (acks=0/1 data is otherwise fsynced by the background flusher). Joining the group
		// commit here costs the reader one shared fsync at most, and nothing when the
		// records were produced with acks=all. Topics with flush.ms/flush.messages opted out.
		if err := p.sync(l, hw, b.cfg.Now); err != nil {
			r.ErrorCode = b.storageError(p, "sync", err)
			return 0, true
		}
	}
	r.HighWatermark, r.LastStableOffset, r.LogStartOffset = hw, hw, p.startOffset(l)
	var aborted []abortedTxn
	if committed {
		if r.LastStableOffset, aborted, err = b.stableState(p, l, fp.Offset); err != nil {
			r.ErrorCode = b.storageError(p, "read", err)
			return 0, true
		}
	}
	if fp.Offset == hw {
		return 0, false
	}
	if fp.Offset < r.LogStartOffset || fp.Offset > hw {
		r.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0, true
	}
	if fp.Offset >= r.LastStableOffset {
		return 0, false
	}
	limit := min(int(fp.MaxBytes), remaining)
	if limit <= 0 && !minOne {
		return 0, false
	}
	batches, err := l.ReadInto(fp.Offset, max(limit, 1), bufs.get(limit))
	if committed && err == nil {
		batches, err = b.readCommitted(l, batches, r.LastStableOffset, aborted, limit, bufs)
	}
	if errors.Is(err, wal.ErrOffsetOutOfRange) {
		// Retention moved the start between our bounds check and the read.
		r.LogStartOffset = p.startOffset(l)
		r.ErrorCode = kerr.OffsetOutOfRange.Code
		return 0, true
	}
	if err != nil {
		r.ErrorCode = b.storageError(p, "read", err)
		return 0, true
	}
	return setRecords(r, bufs, batches, math.MaxInt64, limit, minOne), false
}

// setRecords answers r with the leading batches that start below end and fit in limit bytes
// (the first one whatever its size when minOne) and returns their size.
func setRecords(r *brokerop.FetchPartitionResp, bufs *readBufs, batches []wal.Batch, end int64, limit int, minOne bool) int {
	size, keep := 0, 0
	for _, bt := range batches {
		if bt.BaseOffset >= end || size+len(bt.Data) > limit && !(minOne && keep == 0) {
			break
		}
		size += len(bt.Data)
		keep++
	}
	if keep > 0 {
		r.Records = bufs.join(batches[:keep], size)
	}
	return size
}

// join returns the batches' bytes back to back: the one stored copy itself when there is a
// single batch, otherwise a copy into a pooled buffer of r (plain Fetch: one allocation of
// exactly size bytes). Stored entries are framed, so consecutive batches are not adjacent
// in the read buffer.
func (r *readBufs) join(batches []wal.Batch, size int) []byte {
	if len(batches) == 1 {
		return batches[0].Data
	}
	var out []byte
	if r != nil && size <= 8<<20 {
		out = r.get(size)[:0]
	} else {
		out = make([]byte, 0, size)
	}
	for _, bt := range batches {
		out = append(out, bt.Data...)
	}
	return out
}

// readBufs are the pooled read buffers one FetchPooled call handed to the log; nil (plain
// Fetch) allocates instead.
type readBufs struct {
	held []*[]byte
}

// Read buffers come in classes of a power of two from 64 KiB to 8 MiB, plus 4 KiB of slack:
// a log's read window is at most min(max(limit, index interval), 8 MiB) + 512 bytes, so a
// limit-sized read fits its class. A read whose window needs more allocates.
const readBufSlack = 4 << 10

var readPool = bufpool.New(16, 8, readBufSlack)

// get returns a buffer for a read of limit data bytes (nil without a pool).
func (r *readBufs) get(limit int) []byte {
	if r == nil {
		return nil
	}
	bp := readPool.Get(min(max(limit, 1), 8<<20))
	r.held = append(r.held, bp)
	return *bp
}

// release returns every held buffer to its pool.
func (r *readBufs) release() {
	if r == nil {
		return
	}
	for i, bp := range r.held {
		readPool.Put(bp)
		r.held[i] = nil
	}
	r.held = r.held[:0]
}
