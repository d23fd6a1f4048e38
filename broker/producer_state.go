package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Idempotent produce: per-partition producer state and duplicate detection, Kafka's rules
// (ProducerStateManager / ProducerAppendInfo) for batches whose producerId is >= 0:
//
//   - Per producer id the partition keeps the epoch and the last producerWindow (5) batches'
//     first and last sequence and base offset.
//   - A batch of the current epoch whose (first, last) sequence equals one of those is a
//     retry of a stored batch: it is answered with success and the ORIGINAL base offset, and
//     nothing is stored. (For acks=-1 the answer still waits until the original is fsynced.)
//   - An older epoch is INVALID_PRODUCER_EPOCH; a newer epoch must start at sequence 0,
//     otherwise OUT_OF_ORDER_SEQUENCE_NUMBER; within an epoch the first sequence must follow
//     the last one (wrapping after MaxInt32 to 0), otherwise OUT_OF_ORDER_SEQUENCE_NUMBER.
//   - An unknown producer is accepted at any sequence (Kafka >= 2.5, KIP-360: its state may
//     have gone with retention) except on a partition that has never held a record, where it
//     must start at 0 (KAFKA-15591, as kfake does): otherwise two in-flight batches of a new
//     producer could be stored out of order.
//   - An idempotent produce must carry exactly one record batch per partition (Kafka enforces
//     this for Produce v3+); a payload mixing idempotent and plain batches is INVALID_RECORD.
//   - A producer's state expires producerIDExpiration (24 h, Kafka's
//     producer.id.expiration.ms default) after its last append, by the broker clock (not the
//     batch timestamps Kafka uses: a producer replaying old CreateTime data must not lose its
//     state at once). Batches found by a rebuild's log scan count as appended at load time.
//     The flusher drops expired entries when it writes a snapshot. A producer that comes back
//     after expiry is an unknown producer.
//
// # Crash recovery
//
// The state is rebuilt lazily, on the first idempotent produce a partition gets after Open:
// from the snapshot file (producer.snapshot in the partition directory), then by scanning the
// batch headers of the log from the snapshot's offset to the end (without a usable snapshot:
// from the log start). Scanning replays Kafka batch headers (producerId, epoch,
// baseSequence, lastOffsetDelta, baseOffset) without validation. A snapshot only holds state
// of batches below the log's fsynced offset when it is written, so a crash can never leave it
// ahead of the log; one claiming an offset beyond the log end (or failing its checksum) is
// ignored and the whole log is scanned. Snapshots are written on Close (after the log's final
// fsync) and by the background flusher (every Config.FlushInterval, 1 s by default) once the
// partition has taken idempotent writes and either snapshotBytes (16 MiB) of log were appended
// or snapshotInterval (30 s) passed since the last one. So after a kill -9 the scan covers
// the smaller of 16 MiB and 30 s of appends, plus one flush interval; a partition that never
// had a snapshot (data from before idempotence was served) is scanned whole, once. The scan
// holds the partition's producer lock, so only idempotent produces to that partition wait
// for it.
//
// # Snapshot file layout (big-endian)
//
//	"MKPS" | version u8 (1) | offset u64 (state covers batches below it) | producers u32 |
//	per producer: id u64 | epoch i16 | last append i64 (broker clock, Unix ms) | batches u8 (1..5) |
//	    per batch: firstSeq i32 | lastSeq i32 | baseOffset i64 |
//	CRC-32C of everything before it u32

const (
	producerWindow       = 5
	producerSnapshotFile = "producer.snapshot"
	snapshotBytes        = 16 << 20
	snapshotInterval     = 30 * time.Second
	producerIDExpiration = 24 * time.Hour

	offProducerID    = 43
	offProducerEpoch = 51
	offBaseSequence  = 53

	snapMagic   = "MKPS"
	snapVersion = 2 // 1: before transactions (still read)
)

// seqBatch is what the state remembers of one stored idempotent batch.
type seqBatch struct {
	firstSeq, lastSeq int32
	baseOffset        int64
}

// producerEntry is one producer id's state in one partition.
type producerEntry struct {
	epoch   int16
	lastTs  int64      // broker time (Unix ms) of the last append, for expiry
	batches []seqBatch // oldest first, at most producerWindow, all of epoch
	// txnFirst is the first offset of the producer's ongoing transaction in this
	// partition, -1 without one (txn_partition.go).
	txnFirst int64
}

// producerState is a partition's idempotence state. The zero value is "not loaded yet".
type producerState struct {
	mu        sync.Mutex // held across check + append of an idempotent batch
	loaded    bool
	producers map[int64]*producerEntry
	dirty     bool      // idempotent batches appended since the last snapshot
	snapOff   int64     // offset the last snapshot covers
	snapSize  int64     // log size when the last snapshot was taken
	snapTime  time.Time // when the last snapshot was taken (or the state loaded)
	expiredAt time.Time // when expiry last ran
	// aborted lists the aborted transactions of the log, by marker offset (txn_partition.go);
	// txn is set once the partition has seen a transactional batch or a marker.
	aborted []abortedTxn
	txn     bool

	snapMu sync.Mutex // serialises snapshot file writes
}

// batchHead is the idempotence-relevant part of a RecordBatch header.
type batchHead struct {
	attrs      uint16
	producerID int64
	epoch      int16
	firstSeq   int32
	delta      int32 // lastOffsetDelta
	baseOffset int64
	seenMs     int64 // broker time of the append (Unix ms); set by the caller of update
}

func readBatchHead(b []byte) batchHead {
	return batchHead{
		attrs:      binary.BigEndian.Uint16(b[offAttributes:]),
		producerID: int64(binary.BigEndian.Uint64(b[offProducerID:])),
		epoch:      int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		firstSeq:   int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		delta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		baseOffset: int64(binary.BigEndian.Uint64(b)),
	}
}

// lastSeq is the sequence of the batch's last record (Kafka's incrementSequence).
func (h batchHead) lastSeq() int32 {
	if h.firstSeq > math.MaxInt32-h.delta {
		return h.delta - (math.MaxInt32 - h.firstSeq) - 1
	}
	return h.firstSeq + h.delta
}

// forEachBatch calls fn with each RecordBatch of a payload that passed ValidateBatches (or
// was stored after it).
func forEachBatch(b []byte, fn func(batch []byte)) {
	for off := 0; off+batchHeaderLen <= len(b); {
		size := int(int32(binary.BigEndian.Uint32(b[off+offBatchLength:]))) + batchLengthOverhd
		if size < batchHeaderLen || off+size > len(b) {
			return
		}
		fn(b[off : off+size])
		off += size
	}
}

// check applies Kafka's sequence rules to batch h. It returns the stored batch h retries
// (dup), or the Kafka error refusing it; (nil, nil) means append it. logEmpty: the partition
// has never held a record.
func (s *producerState) check(h batchHead, logEmpty bool) (*seqBatch, *BatchError) {
	if h.epoch < 0 || h.firstSeq < 0 {
		return nil, batchErr(kerr.InvalidRecord, "idempotent batch of producer %d has epoch %d and base sequence %d", h.producerID, h.epoch, h.firstSeq)
	}
	e := s.producers[h.producerID]
	if e == nil {
		if h.firstSeq != 0 && logEmpty {
			return nil, batchErr(kerr.OutOfOrderSequenceNumber, "producer %d is unknown and the partition is empty: expected sequence 0, got %d", h.producerID, h.firstSeq)
		}
		return nil, nil
	}
	switch {
	case h.epoch < e.epoch:
		return nil, batchErr(kerr.InvalidProducerEpoch, "producer %d has epoch %d, older than the current epoch %d", h.producerID, h.epoch, e.epoch)
	case h.epoch > e.epoch:
		if h.firstSeq != 0 {
			return nil, batchErr(kerr.OutOfOrderSequenceNumber, "producer %d starts epoch %d at sequence %d, expected 0", h.producerID, h.epoch, h.firstSeq)
		}
		return nil, nil
	}
	last := h.lastSeq()
	for i := range e.batches {
		if sb := &e.batches[i]; sb.firstSeq == h.firstSeq && sb.lastSeq == last {
			return sb, nil
		}
	}
	if len(e.batches) == 0 {
		return nil, nil
	}
	prev := e.batches[len(e.batches)-1].lastSeq
	if int64(h.firstSeq) != int64(prev)+1 && (h.firstSeq != 0 || prev != math.MaxInt32) {
		return nil, batchErr(kerr.OutOfOrderSequenceNumber, "producer %d epoch %d: out of order sequence %d, expected %d", h.producerID, h.epoch, h.firstSeq, int64(prev)+1)
	}
	return nil, nil
}

// update records a stored batch (appended now, or replayed from the log). A batch of an
// older epoch than the entry's is ignored (replay only).
func (s *producerState) update(h batchHead) {
	if s.producers == nil {
		s.producers = map[int64]*producerEntry{}
	}
	e := s.producers[h.producerID]
	switch {
	case e == nil:
		e = &producerEntry{epoch: h.epoch, lastTs: h.seenMs, txnFirst: -1}
		s.producers[h.producerID] = e
	case h.epoch < e.epoch:
		return
	case h.epoch > e.epoch:
		e.epoch, e.batches = h.epoch, e.batches[:0]
	}
	if h.attrs&attrTransactional != 0 && e.txnFirst < 0 {
		e.txnFirst, s.txn = h.baseOffset, true // the transaction's first batch here
	}
	e.lastTs = max(e.lastTs, h.seenMs)
	if len(e.batches) == producerWindow {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:producerWindow-1]
	}
	e.batches = append(e.batches, seqBatch{firstSeq: h.firstSeq, lastSeq: h.lastSeq(), baseOffset: h.baseOffset})
}

// expire drops producers whose newest batch is producerIDExpiration older than now.
func (s *producerState) expire(now time.Time) (n int) {
	limit := now.Add(-producerIDExpiration).UnixMilli()
	for id, e := range s.producers {
		if e.lastTs <= limit && e.txnFirst < 0 { // an open transaction keeps its producer
			delete(s.producers, id)
			n++
		}
	}
	return n
}

// replay feeds every idempotent batch of a stored log entry to update.
func (s *producerState) replay(data []byte, nowMs int64) {
	forEachBatch(data, func(batch []byte) { s.replayBatch(readBatchHead(batch), batch, nowMs) })
}

// replayFrom is replay for an entry whose first batch has offset base (a replicated
// partition's committed entry: its offsets come from the raft storage, not from its bytes).
func (s *producerState) replayFrom(data []byte, base, nowMs int64) {
	forEachBatch(data, func(batch []byte) {
		h := readBatchHead(batch)
		h.baseOffset = base
		base += int64(h.delta) + 1
		s.replayBatch(h, batch, nowMs)
	})
}

func (s *producerState) replayBatch(h batchHead, batch []byte, nowMs int64) {
	switch {
	case h.attrs&attrControl != 0:
		if commit, ok := controlType(batch); ok && h.producerID >= 0 {
			s.applyMarker(h.producerID, h.epoch, commit, h.baseOffset, nowMs)
		}
	case h.producerID >= 0:
		h.seenMs = nowMs
		s.update(h)
	}
}

// producerState returns p's producer state, allocating it on first use.
func (p *partition) producerState() *producerState {
	if s := p.producers.Load(); s != nil {
		return s
	}
	p.producers.CompareAndSwap(nil, &producerState{})
	return p.producers.Load()
}

// loadLocked rebuilds the state from the snapshot and the log tail (see the file comment).
func (s *producerState) loadLocked(b *Broker, p *partition, l *wal.Log) error {
	if s.loaded {
		return nil
	}
	start, next := l.StartOffset(), l.NextOffset()
	from := start
	loadMs := b.cfg.Now().UnixMilli()
	s.producers, s.aborted, s.txn = map[int64]*producerEntry{}, nil, false
	path := filepath.Join(p.dir(), producerSnapshotFile)
	buf, ok, err := readSmallFile(b.fs, path, 1<<30)
	if err != nil {
		b.log.Warn("broker: read producer snapshot; scanning the whole log", "topic", p.t.name, "partition", p.index, "err", err)
	}
	if ok {
		off, prods, aborted, err := decodeProducerSnapshot(buf)
		switch {
		case err != nil:
			b.log.Warn("broker: bad producer snapshot; scanning the whole log", "topic", p.t.name, "partition", p.index, "err", err)
		case off > next:
			b.log.Warn("broker: producer snapshot is ahead of the log; scanning the whole log", "topic", p.t.name, "partition", p.index,
				"snapshot_offset", off, "log_end", next)
		default:
			s.producers, s.aborted, from = prods, aborted, max(off, start)
			s.txn = len(aborted) > 0
			for _, e := range prods {
				s.txn = s.txn || e.txnFirst >= 0
			}
		}
	}
	for off := from; off < next; {
		batches, err := l.Read(off, 4<<20)
		if errors.Is(err, wal.ErrOffsetOutOfRange) && off < l.StartOffset() {
			off = l.StartOffset() // retention removed segments meanwhile
			continue
		}
		if err != nil {
			s.producers = nil
			return fmt.Errorf("broker: rebuild producer state of %s-%d: %w", p.t.name, p.index, err)
		}
		if len(batches) == 0 {
			break
		}
		for _, wb := range batches {
			if wb.LastOffset < off {
				continue
			}
			s.replay(wb.Data, loadMs)
			off = wb.LastOffset + 1
		}
	}
	s.expire(b.cfg.Now())
	s.expiredAt = b.cfg.Now()
	s.loaded = true
	s.snapOff, s.snapSize, s.snapTime = from, l.Size(), b.cfg.Now()
	s.dirty = next > from
	return nil
}

// snapshotProducers writes p's producer snapshot when it is due (force: whenever the state is
// loaded and changed, used by Close once the log is closed and fully synced). upTo is the
// offset below which the log is durable.
func (b *Broker) snapshotProducers(p *partition, l *wal.Log, force bool) {
	s := p.producers.Load()
	if s == nil {
		return // no idempotent produce since Open
	}
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	s.mu.Lock()
	if !s.loaded || p.deleted.Load() {
		s.mu.Unlock()
		return
	}
	now := b.cfg.Now()
	if now.Sub(s.expiredAt) >= snapshotInterval {
		s.expiredAt = now
		if s.expire(now) > 0 {
			s.dirty = true // the snapshot must forget them too
		}
	}
	size := l.Size()
	if !s.dirty || !force && size-s.snapSize < snapshotBytes && now.Sub(s.snapTime) < snapshotInterval {
		s.mu.Unlock()
		return
	}
	upTo := l.SyncedOffset()
	if s.txn && upTo < l.NextOffset() {
		// Transaction state (ongoing transactions, aborted list, epochs raised by markers)
		// is not kept per offset: snapshot it only when the whole log is durable.
		s.mu.Unlock()
		return
	}
	buf := encodeProducerSnapshot(upTo, s.producers, s.aborted)
	s.dirty = l.NextOffset() > upTo
	s.mu.Unlock()
	err := l.MakeDir() // the partition's directory may not exist yet (wal.Options.LazyDir)
	if err == nil {
		err = writeFileAtomic(b.fs, filepath.Join(p.dir(), producerSnapshotFile), buf)
	}
	if err != nil {
		if !p.deleted.Load() {
			b.log.Warn("broker: write producer snapshot", "topic", p.t.name, "partition", p.index, "err", err)
		}
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.snapOff, s.snapSize, s.snapTime = upTo, size, now
	s.mu.Unlock()
}

// encodeProducerSnapshot encodes the state of batches below offset upTo, with the
// transaction state (which the caller takes only when the whole log is below upTo).
func encodeProducerSnapshot(upTo int64, prods map[int64]*producerEntry, aborted []abortedTxn) []byte {
	buf := append([]byte(snapMagic), snapVersion)
	buf = binary.BigEndian.AppendUint64(buf, uint64(upTo))
	countAt := len(buf)
	buf = binary.BigEndian.AppendUint32(buf, 0)
	n := uint32(0)
	for id, e := range prods {
		k := 0
		for _, sb := range e.batches {
			if sb.baseOffset < upTo {
				k++
			}
		}
		if k == 0 && e.txnFirst < 0 && e.epoch == 0 {
			continue // nothing to remember
		}
		n++
		buf = binary.BigEndian.AppendUint64(buf, uint64(id))
		buf = binary.BigEndian.AppendUint16(buf, uint16(e.epoch))
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.lastTs))
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.txnFirst))
		buf = append(buf, byte(k))
		for _, sb := range e.batches {
			if sb.baseOffset < upTo {
				buf = binary.BigEndian.AppendUint32(buf, uint32(sb.firstSeq))
				buf = binary.BigEndian.AppendUint32(buf, uint32(sb.lastSeq))
				buf = binary.BigEndian.AppendUint64(buf, uint64(sb.baseOffset))
			}
		}
	}
	binary.BigEndian.PutUint32(buf[countAt:], n)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(aborted)))
	for _, a := range aborted {
		buf = binary.BigEndian.AppendUint64(buf, uint64(a.pid))
		buf = binary.BigEndian.AppendUint64(buf, uint64(a.first))
		buf = binary.BigEndian.AppendUint64(buf, uint64(a.last))
	}
	return binary.BigEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
}

// decodeProducerSnapshot parses a snapshot file: the offset it covers, the producers and
// the aborted transactions (version 1 files have no transaction state).
func decodeProducerSnapshot(b []byte) (int64, map[int64]*producerEntry, []abortedTxn, error) {
	const head = len(snapMagic) + 1 + 8 + 4
	if len(b) < head+4 || string(b[:len(snapMagic)]) != snapMagic {
		return 0, nil, nil, fmt.Errorf("broker: producer snapshot: bad header")
	}
	version := b[len(snapMagic)]
	if version != 1 && version != snapVersion {
		return 0, nil, nil, fmt.Errorf("broker: producer snapshot: unknown version %d", version)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, nil, nil, fmt.Errorf("broker: producer snapshot: checksum mismatch")
	}
	upTo := int64(binary.BigEndian.Uint64(b[len(snapMagic)+1:]))
	n := binary.BigEndian.Uint32(b[len(snapMagic)+9:])
	if upTo < 0 {
		return 0, nil, nil, fmt.Errorf("broker: producer snapshot: negative offset %d", upTo)
	}
	entryHead, minBatches := 8+2+8+1, 1
	if version >= 2 {
		entryHead, minBatches = 8+2+8+8+1, 0
	}
	const batchLen = 4 + 4 + 8
	rest := body[head:]
	if uint64(n) > uint64(len(rest)/entryHead) {
		return 0, nil, nil, fmt.Errorf("broker: producer snapshot: %d producers do not fit in %d bytes", n, len(rest))
	}
	prods := make(map[int64]*producerEntry, n)
	for range n {
		if len(rest) < entryHead {
			return 0, nil, nil, fmt.Errorf("broker: producer snapshot: truncated")
		}
		id := int64(binary.BigEndian.Uint64(rest))
		e := &producerEntry{epoch: int16(binary.BigEndian.Uint16(rest[8:])), lastTs: int64(binary.BigEndian.Uint64(rest[10:])), txnFirst: -1}
		if version >= 2 {
			e.txnFirst = int64(binary.BigEndian.Uint64(rest[18:]))
		}
		k := int(rest[entryHead-1])
		rest = rest[entryHead:]
		if id < 0 || e.epoch < 0 || k < minBatches || k > producerWindow || len(rest) < k*batchLen || e.txnFirst < -1 || e.txnFirst >= upTo ||
			k == 0 && e.txnFirst < 0 && e.epoch == 0 {
			return 0, nil, nil, fmt.Errorf("broker: producer snapshot: bad entry for producer %d", id)
		}
		if prods[id] != nil {
			return 0, nil, nil, fmt.Errorf("broker: producer snapshot: producer %d twice", id)
		}
		for range k {
			sb := seqBatch{
				firstSeq:   int32(binary.BigEndian.Uint32(rest)),
				lastSeq:    int32(binary.BigEndian.Uint32(rest[4:])),
				baseOffset: int64(binary.BigEndian.Uint64(rest[8:])),
			}
			if sb.firstSeq < 0 || sb.lastSeq < 0 || sb.baseOffset < 0 || sb.baseOffset >= upTo {
				return 0, nil, nil, fmt.Errorf("broker: producer snapshot: bad batch of producer %d", id)
			}
			e.batches = append(e.batches, sb)
			rest = rest[batchLen:]
		}
		prods[id] = e
	}
	var aborted []abortedTxn
	if version >= 2 {
		if len(rest) < 4 {
			return 0, nil, nil, fmt.Errorf("broker: producer snapshot: truncated")
		}
		na := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(na)*24 != uint64(len(rest)) {
			return 0, nil, nil, fmt.Errorf("broker: producer snapshot: %d aborted transactions do not fit in %d bytes", na, len(rest))
		}
		for range na {
			a := abortedTxn{pid: int64(binary.BigEndian.Uint64(rest)), first: int64(binary.BigEndian.Uint64(rest[8:])), last: int64(binary.BigEndian.Uint64(rest[16:]))}
			if a.pid < 0 || a.first < 0 || a.last < a.first || a.last >= upTo || len(aborted) > 0 && a.last <= aborted[len(aborted)-1].last {
				return 0, nil, nil, fmt.Errorf("broker: producer snapshot: bad aborted transaction of producer %d", a.pid)
			}
			aborted = append(aborted, a)
			rest = rest[24:]
		}
	}
	if len(rest) != 0 {
		return 0, nil, nil, fmt.Errorf("broker: producer snapshot: %d trailing bytes", len(rest))
	}
	return upTo, prods, aborted, nil
}
