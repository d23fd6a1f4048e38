package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/wal"
)

// Log compaction (cleanup.policy=compact), Kafka's log cleaner. See doc.go, Compacted topics.

const (
	cleanerStateFile = "cleaner.state"
	cleanerMagic     = "MKCL"
	cleanerVersion   = 1
	// DefaultCleanerBackoff is Config.CleanerBackoff's default (Kafka's log.cleaner.backoff.ms).
	DefaultCleanerBackoff = 15 * time.Second
)

// cleanRegion: the offsets below end (and at or above the previous region's end) were first
// cleaned at cleanedAt (broker clock, Unix ms): their tombstones and empty transaction
// markers go delete.retention.ms after that.
type cleanRegion struct{ end, cleanedAt int64 }

// cleanerState is a partition's cleaner checkpoint (file cleaner.state in its directory):
// where the dirty part of the log starts and when each cleaned region was first cleaned.
//
//	"MKCL" | version u8 (1) | firstDirty u64 | regions u32 | per region: end u64 | cleanedAt i64 |
//	CRC-32C of everything before it u32
//
// Lost or damaged, the whole log counts as dirty and as cleaned now (tombstones are kept
// delete.retention.ms longer, never dropped early).
type cleanerState struct {
	firstDirty int64
	regions    []cleanRegion // ends increasing
}

func encodeCleanerState(s cleanerState) []byte {
	b := append([]byte(cleanerMagic), cleanerVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(s.firstDirty))
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.regions)))
	for _, r := range s.regions {
		b = binary.BigEndian.AppendUint64(b, uint64(r.end))
		b = binary.BigEndian.AppendUint64(b, uint64(r.cleanedAt))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeCleanerState(b []byte) (cleanerState, error) {
	var s cleanerState
	if len(b) < 17+4 || string(b[:4]) != cleanerMagic || b[4] != cleanerVersion {
		return s, errors.New("broker: cleaner state: bad header")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return s, errors.New("broker: cleaner state: checksum mismatch")
	}
	s.firstDirty = int64(binary.BigEndian.Uint64(b[5:]))
	n := binary.BigEndian.Uint32(b[13:])
	rest := body[17:]
	if uint64(len(rest)) != uint64(n)*16 {
		return cleanerState{}, errors.New("broker: cleaner state: bad length")
	}
	prev := int64(-1)
	for i := range int(n) {
		r := cleanRegion{end: int64(binary.BigEndian.Uint64(rest[i*16:])), cleanedAt: int64(binary.BigEndian.Uint64(rest[i*16+8:]))}
		if r.end <= prev {
			return cleanerState{}, errors.New("broker: cleaner state: regions out of order")
		}
		prev = r.end
		s.regions = append(s.regions, r)
	}
	if s.firstDirty < 0 {
		return cleanerState{}, errors.New("broker: cleaner state: negative offset")
	}
	return s, nil
}

// cleanedAt is when offset off was first cleaned (now for the dirty part).
func (s *cleanerState) cleanedAt(off, now int64) int64 {
	for _, r := range s.regions {
		if off < r.end {
			return r.cleanedAt
		}
	}
	return now
}

// advance records a round that cleaned up to end at now, and merges the regions whose
// horizon passed (they only need to stay past it).
func (s *cleanerState) advance(end, now, deleteRetentionMs int64) {
	if end > s.firstDirty {
		s.regions = append(s.regions, cleanRegion{end: end, cleanedAt: now})
		s.firstDirty = end
	}
	k := 0
	for k < len(s.regions)-1 && s.regions[k+1].cleanedAt+deleteRetentionMs <= now {
		k++
	}
	if k > 0 {
		s.regions = append(s.regions[:0], s.regions[k:]...)
	}
}

func (b *Broker) loadCleanerState(p *partition) cleanerState {
	buf, ok, err := readSmallFile(b.fs, filepath.Join(p.dir(), cleanerStateFile), 1<<24)
	if err != nil || !ok {
		return cleanerState{}
	}
	s, err := decodeCleanerState(buf)
	if err != nil {
		b.log.Warn("broker: cleaner state unreadable; the whole log counts as dirty", "topic", p.t.name, "partition", p.index, "err", err)
		return cleanerState{}
	}
	return s
}

// ioThrottle paces the cleaner's I/O to rate bytes per second over all partitions
// (log.cleaner.io.max.bytes.per.second): each wait schedules n bytes after those already
// scheduled and sleeps until the schedule catches up with the clock.
type ioThrottle struct {
	rate  float64 // bytes per second; <= 0: no limit
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu   sync.Mutex
	next time.Time // when the bytes scheduled so far are done (guarded by mu)
}

func (t *ioThrottle) wait(ctx context.Context, n int) error {
	if t == nil || t.rate <= 0 {
		return ctx.Err()
	}
	t.mu.Lock()
	now := t.now()
	if t.next.Before(now) {
		t.next = now
	}
	t.next = t.next.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	d := t.next.Sub(now)
	t.mu.Unlock()
	if d <= 0 {
		return ctx.Err()
	}
	return t.sleep(ctx, d)
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CompactStats counts what a Compact call did.
type CompactStats struct {
	Partitions     int   // partitions cleaned
	Segments       int   // sealed segments read by the rewrite
	Swapped        int   // cleaned segments swapped in
	BytesRead      int64 // both passes
	BytesWritten   int64
	BytesBefore    int64 // size of the swapped groups before and after
	BytesAfter     int64
	RecordsRemoved int64
}

func (s *CompactStats) add(o CompactStats) {
	s.Partitions += o.Partitions
	s.Segments += o.Segments
	s.Swapped += o.Swapped
	s.BytesRead += o.BytesRead
	s.BytesWritten += o.BytesWritten
	s.BytesBefore += o.BytesBefore
	s.BytesAfter += o.BytesAfter
	s.RecordsRemoved += o.RecordsRemoved
}

// cleanerLoop is the log cleaner goroutine: a Compact pass every CleanerBackoff. Stopped by
// Close (which cancels a pass in progress).
func (b *Broker) cleanerLoop(ctx context.Context) {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.CleanerBackoff)
	defer t.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
			if _, err := b.Compact(ctx); err != nil && ctx.Err() == nil {
				b.log.Warn("broker: log cleaner", "err", err)
			}
		}
	}
}

// Compact runs one pass of the log cleaner over every partition of a topic whose
// cleanup.policy includes compact that this broker stores (alone, or as one replica of a
// replicated partition: each replica cleans its own log, see doc.go): a partition is cleaned
// when its dirty ratio reaches min.cleanable.dirty.ratio or its oldest dirty record is older
// than max.compaction.lag.ms.
// The background goroutine calls it every Config.CleanerBackoff; tests call it directly.
func (b *Broker) Compact(ctx context.Context) (CompactStats, error) {
	var total CompactStats
	if b.closed.Load() {
		return total, ErrClosed
	}
	var errs []error
	for _, t := range b.sortedTopics() {
		cfg := t.cfg.Load()
		if !cfg.compact {
			continue
		}
		for _, p := range *t.parts.Load() {
			if p.deleted.Load() {
				continue
			}
			var g *replGroup
			if p.replicated() {
				if g = p.group.Load(); g == nil {
					continue // not a replica here (or replication not set up yet)
				}
			}
			st, err := b.compactPartition(ctx, p, g, cfg)
			total.add(st)
			if errors.Is(err, context.Canceled) && ctx.Err() == nil {
				err = nil // stopped for an admin op on the partition: the next pass goes on
			}
			if err != nil && !p.deleted.Load() && !errors.Is(err, wal.ErrClosed) {
				errs = append(errs, fmt.Errorf("%s-%d: %w", t.name, p.index, err))
			}
			if ctx.Err() != nil {
				return total, errors.Join(append(errs, ctx.Err())...)
			}
		}
	}
	return total, errors.Join(errs...)
}

// compactPartition cleans one partition if it is due; g is its raft group if it is a
// replicated partition (nil: single-owner). It holds p.logMu for reading
// throughout; whoever needs it for writing (a reopen, a topic deletion, DeleteRecords'
// reclaim) stops the cleaning first (p.lockLogForWrite), and Close cancels ctx.
func (b *Broker) compactPartition(ctx context.Context, p *partition, g *replGroup, cfg *topicConfig) (CompactStats, error) {
	var out CompactStats
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.cleaning.Store(&cancel)
	defer p.cleaning.Store(nil)
	l, err := b.useLog(p, false)
	defer p.logMu.RUnlock()
	if p.writers.Load() > 0 {
		return out, nil // an admin op waits for the log (see lockLogForWrite)
	}
	if err != nil || l == nil {
		if errors.Is(err, errPartitionDeleted) {
			err = nil
		}
		return out, err
	}
	if g != nil && g.log != l {
		return out, nil // the group's log was reopened meanwhile: the next pass cleans it
	}
	nowMs := b.cfg.Now().UnixMilli()
	state := b.loadCleanerState(p)
	var lso int64
	var aborted []abortedTxn
	matched := int64(math.MaxInt64) // tombstones below this only (replicated: cleanBounds)
	if g != nil {
		lso, aborted, matched = g.cleanBounds()
	} else if lso, aborted, err = b.stableState(p, l, 0); err != nil {
		return out, err
	}
	segs := l.Segments()
	start := segs[0].Base
	// The cleanable part ends at the first segment that is active, reaches the last stable
	// offset, or is younger than min.compaction.lag.ms.
	end := start
	for _, s := range segs {
		if !s.Sealed || s.Next > lso || cfg.minCompactionLagMs > 0 && s.MaxTimestamp > nowMs-cfg.minCompactionLagMs {
			break
		}
		end = s.Next
	}
	firstDirty := min(max(state.firstDirty, start), end)
	if firstDirty >= end {
		return out, nil
	}
	var clean, dirty int64
	for _, s := range segs {
		switch {
		case s.Next <= firstDirty:
			clean += s.Size
		case s.Next <= end:
			dirty += s.Size
		}
	}
	due := float64(dirty) >= cfg.minCleanableRatio*float64(clean+dirty)
	if !due && cfg.maxCompactionLagMs < math.MaxInt64 {
		if bs, err := l.Read(firstDirty, 1); err == nil && len(bs) > 0 && nowMs-bs[0].MaxTimestamp > cfg.maxCompactionLagMs {
			due = true
		}
	}
	if !due {
		return out, nil
	}
	c := &compactor{
		latest:  map[keyHash]int64{},
		lastOf:  map[int64]int64{},
		live:    map[int64]bool{},
		aborted: aborted,
		horizon: func(off int64) bool {
			return off < matched && state.cleanedAt(off, nowMs)+cfg.deleteRetentionMs <= nowMs
		},
		raft: g != nil,
	}
	// Pass 1: the latest offset of every key in the dirty part, and every producer's last
	// batch in the cleanable part, segment by segment. Once the offset map holds
	// maxKeys keys, the round ends before the next dirty segment (Kafka's dedupe buffer:
	// the map may overrun by one segment's keys; keys it mapped past the new end only make
	// older records of those keys go, which later records replace anyway).
	maxKeys := b.cfg.CleanerDedupeBufferBytes / 24
	for _, s := range segs {
		if s.Base >= end {
			break
		}
		if s.Base > firstDirty && int64(len(c.latest)) >= maxKeys {
			end = s.Base // nothing of s was read: lastOf is as of its start
			break
		}
		for off := s.Base; off < s.Next; {
			bs, err := l.Read(off, 1<<20)
			if err != nil {
				return out, err
			}
			if len(bs) == 0 {
				break
			}
			for _, wb := range bs {
				if wb.BaseOffset >= s.Next {
					off = s.Next
					break
				}
				if err := b.cleaner.wait(ctx, len(wb.Data)); err != nil {
					return out, err
				}
				out.BytesRead += int64(len(wb.Data))
				forEachBatch(wb.Data, func(batch []byte) { c.observe(batch, wb.BaseOffset >= firstDirty) })
				off = wb.LastOffset + 1
			}
		}
	}
	// Pass 2: rewrite.
	ws, err := l.CleanSegments(ctx, end, wal.CleanOptions{Throttle: b.cleaner.wait}, c.clean)
	out.Segments, out.Swapped = ws.Segments, ws.Swapped
	out.BytesRead += ws.BytesRead
	out.BytesWritten, out.BytesBefore, out.BytesAfter = ws.BytesWritten, ws.BytesBefore, ws.BytesAfter
	out.RecordsRemoved = c.removed
	if err != nil {
		return out, err
	}
	out.Partitions = 1
	// The checkpoint moves only after the swaps (a crash before it cleans the part again,
	// with a later cleanedAt: tombstones stay longer, never shorter).
	state.advance(end, nowMs, cfg.deleteRetentionMs)
	if err := writeFileAtomic(b.fs, filepath.Join(p.dir(), cleanerStateFile), encodeCleanerState(state)); err != nil {
		return out, err
	}
	b.log.Info("broker: log cleaner cleaned a partition", "topic", p.t.name, "partition", p.index,
		"bytes_before", ws.BytesBefore, "bytes_after", ws.BytesAfter, "records_removed", c.removed, "first_dirty", end)
	return out, nil
}

// compactor holds one cleaning's knowledge of a partition (Kafka's OffsetMap plus the
// transaction and producer bookkeeping of LogCleaner.cleanInto).
type compactor struct {
	latest  map[keyHash]int64 // key -> offset of its latest record in the dirty part
	lastOf  map[int64]int64   // producer id -> base offset of its last batch in the cleanable part
	live    map[int64]bool    // producer id -> its current transaction kept a record (pass 2)
	aborted []abortedTxn
	horizon func(off int64) bool // delete.retention.ms passed since off was first cleaned
	removed int64                // records removed
	// raft: the log is a raft log (a replicated partition): no batch is ever dropped, a batch
	// losing all its records is kept emptied (header intact), and control batches stay
	// whole, so every raft entry keeps its index, term, offsets and producer fields, and a
	// replica applying cleaned entries rebuilds the same producer and transaction state.
	raft bool
}

func batchBase(batch []byte) int64 { return int64(binary.BigEndian.Uint64(batch[0:8])) }

// observe is pass 1 for one batch; dirty: the batch lies in the dirty part.
func (c *compactor) observe(batch []byte, dirty bool) {
	if len(batch) < batchHeaderLen {
		return
	}
	h := readBatchHead(batch)
	base := batchBase(batch)
	if h.producerID >= 0 {
		c.lastOf[h.producerID] = base
	}
	if !dirty || h.attrs&attrControl != 0 || h.attrs&attrTransactional != 0 && isAborted(c.aborted, h.producerID, base) {
		return
	}
	recs, n, err := batchRecords(batch)
	if err != nil {
		return
	}
	_ = walkRecords(recs, n, func(r rawRecord) error {
		if r.key != nil {
			c.latest[hashKey(r.key)] = base + int64(r.offsetDelta)
		}
		return nil
	})
}

// clean is pass 2 (a wal.CleanFunc): it filters every batch of a log entry.
func (c *compactor) clean(wb wal.Batch) ([]byte, bool, error) {
	var out []byte
	changed, any := false, false
	forEachBatch(wb.Data, func(batch []byte) {
		nb, keep, ch := c.filter(batch)
		changed = changed || ch
		if keep {
			any = true
			out = append(out, nb...)
		}
	})
	switch {
	case !changed:
		return nil, true, nil
	case !any:
		return nil, false, nil
	}
	return out, true, nil
}

// filter applies Kafka's retention rules to one batch: keep reports whether anything of it
// stays (nb: its bytes), changed whether nb differs from batch.
//
//   - A record stays unless a later record of the same key exists (offset map), or it is a
//     tombstone (null value) whose delete.retention.ms passed since it was first cleaned.
//     Records without a key stay.
//   - Batches of aborted transactions go whole.
//   - A transaction marker stays while its transaction kept a record, and otherwise until
//     delete.retention.ms passed since it was first cleaned.
//   - A producer's last batch in the cleanable part stays, emptied if nothing of it is kept,
//     so that its sequence and epoch survive a rebuild of the producer state.
//   - A batch the cleaner cannot parse stays whole.
func (c *compactor) filter(batch []byte) (nb []byte, keep, changed bool) {
	if len(batch) < batchHeaderLen {
		return batch, true, false
	}
	h := readBatchHead(batch)
	base := batchBase(batch)
	last := h.producerID >= 0 && c.lastOf[h.producerID] == base
	count := int64(int32(binary.BigEndian.Uint32(batch[offRecordCount:])))
	drop := func() ([]byte, bool, bool) {
		if count == 0 && (last || c.raft) {
			return batch, true, false
		}
		c.removed += count
		if last || c.raft {
			return rebuildBatch(batch, nil), true, true
		}
		return nil, false, true
	}
	if h.attrs&attrControl != 0 {
		live := c.live[h.producerID]
		delete(c.live, h.producerID)
		if live || c.raft || !c.horizon(base) {
			return batch, true, false
		}
		return drop()
	}
	txn := h.attrs&attrTransactional != 0
	if txn && isAborted(c.aborted, h.producerID, base) {
		return drop()
	}
	recs, n, err := batchRecords(batch)
	if err != nil {
		return batch, true, false
	}
	var kept [][]byte
	all := true
	err = walkRecords(recs, n, func(r rawRecord) error {
		off := base + int64(r.offsetDelta)
		if r.key != nil {
			if lat, ok := c.latest[hashKey(r.key)]; ok && lat > off || r.nullValue && c.horizon(off) {
				all = false
				return nil
			}
		}
		kept = append(kept, r.raw)
		return nil
	})
	if err != nil {
		return batch, true, false
	}
	if txn && len(kept) > 0 {
		c.live[h.producerID] = true
	}
	if all {
		return batch, true, false
	}
	if len(kept) == 0 {
		return drop()
	}
	c.removed += count - int64(len(kept))
	return rebuildBatch(batch, kept), true, true
}

// CleanerCheckpoint returns where the log cleaner's dirty part of topic-partition starts in
// this broker's log (Kafka's cleaner-offset-checkpoint): every sealed segment below it was
// cleaned. ok is false if the partition is unknown or was never cleaned here. For a
// replicated partition it is this replica's own checkpoint.
func (b *Broker) CleanerCheckpoint(topic string, partition int32) (firstDirty int64, ok bool) {
	p := b.lookup(topic, partition)
	if p == nil {
		return 0, false
	}
	s := b.loadCleanerState(p)
	return s.firstDirty, s.firstDirty > 0
}
