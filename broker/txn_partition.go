package broker

// Transactions in partitions (Kafka's exactly-once, data side).
//
// A transactional batch (attribute bit 4) is an idempotent batch whose producer has an open
// transaction in the partition from that batch's offset on (producerEntry.txnFirst). The
// coordinator (package broker/txn, served through txn_ops.go) ends it with a marker: a control
// batch (bits 4 and 5) holding one control record, key = version i16 (0) | type i16 (0 abort,
// 1 commit), value = version i16 (0) | coordinator epoch i32, written by WriteTxnMarkers.
// A commit closes the transaction; an abort also records (producer, first offset, marker
// offset) in the partition's aborted list. A marker with a newer epoch than the producer's
// raises it, so a fenced producer's batches get INVALID_PRODUCER_EPOCH.
//
// The last stable offset (LSO) is the smallest first offset of an open transaction, or the
// log end. A read_committed Fetch gets data only below the LSO and never the batches of
// aborted transactions: the broker leaves them out (it does not send an aborted-transactions
// list for the client to filter; the answer's list is empty), so the consumer sees offset
// gaps where aborted data lies, as after compaction. ListOffsets latest with read_committed
// answers the LSO.
//
// The state is part of the partition's producer state (producer_state.go): rebuilt from the
// producer snapshot plus a scan of the log after it (markers are recognised by their control
// record), and snapshotted with it (snapshot version 2) only when the whole log is durable.

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/meshkafka/meshkafka/broker/txn"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/twmb/franz-go/pkg/kerr"
)

// abortedTxn is one aborted transaction of a partition: its producer, first offset and the
// offset of its abort marker.
type abortedTxn struct {
	pid, first, last int64
}

// applyMarker applies a marker of producer pid at offset off (appended now, or replayed).
func (s *producerState) applyMarker(pid int64, epoch int16, commit bool, off, nowMs int64) {
	if s.producers == nil {
		s.producers = map[int64]*producerEntry{}
	}
	s.txn = true
	e := s.producers[pid]
	if e == nil {
		e = &producerEntry{epoch: epoch, txnFirst: -1}
		s.producers[pid] = e
	}
	if epoch > e.epoch {
		e.epoch, e.batches = epoch, e.batches[:0]
	}
	e.lastTs = max(e.lastTs, nowMs)
	if e.txnFirst >= 0 {
		if !commit {
			s.aborted = append(s.aborted, abortedTxn{pid: pid, first: e.txnFirst, last: off})
		}
		e.txnFirst = -1
	}
}

// stable returns the last stable offset below next (the log end) and the aborted
// transactions whose markers are at or after from (copies).
func (s *producerState) stable(next, from int64) (int64, []abortedTxn) {
	lso := next
	for _, e := range s.producers {
		if e.txnFirst >= 0 && e.txnFirst < lso {
			lso = e.txnFirst
		}
	}
	var out []abortedTxn
	for i := len(s.aborted) - 1; i >= 0 && s.aborted[i].last >= from; i-- {
		out = append(out, s.aborted[i])
	}
	return lso, out
}

// aborted reports whether the transactional batch of pid at off belongs to an aborted
// transaction in list.
func isAborted(list []abortedTxn, pid, off int64) bool {
	for _, a := range list {
		if a.pid == pid && a.first <= off && off <= a.last {
			return true
		}
	}
	return false
}

// stableState loads p's producer state (l is p's log, read under p.logMu) and returns the
// LSO and the aborted transactions with markers at or after from.
func (b *Broker) stableState(p *partition, l *wal.Log, from int64) (int64, []abortedTxn, error) {
	s := p.producerState()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(b, p, l); err != nil {
		return 0, nil, err
	}
	lso, ab := s.stable(l.NextOffset(), from)
	return lso, ab, nil
}

// committedOnly drops from batches (read from offset from) the entries at or above lso and
// the batches of aborted transactions, and reports whether anything was dropped.
func committedOnly(batches []wal.Batch, lso int64, aborted []abortedTxn) []wal.Batch {
	out := batches[:0]
	for _, bt := range batches {
		if bt.BaseOffset >= lso {
			break
		}
		if len(bt.Data) >= batchHeaderLen && len(aborted) > 0 {
			h := readBatchHead(bt.Data)
			if h.attrs&attrTransactional != 0 && h.attrs&attrControl == 0 && isAborted(aborted, h.producerID, bt.BaseOffset) {
				continue
			}
		}
		out = append(out, bt)
	}
	return out
}

// controlType parses a control batch's record: commit (true) or abort, ok false for another
// control type or a malformed batch.
func controlType(batch []byte) (commit, ok bool) {
	if len(batch) < batchHeaderLen || binary.BigEndian.Uint16(batch[offAttributes:])&attrCompressionMask != 0 {
		return false, false
	}
	rec := batch[batchHeaderLen:]
	var n int
	next := func() int64 {
		if n < 0 {
			return 0
		}
		v, k := binary.Varint(rec)
		if k <= 0 {
			n = -1
			return 0
		}
		rec = rec[k:]
		return v
	}
	if next(); n < 0 || len(rec) < 1 { // record length
		return false, false
	}
	rec = rec[1:] // attributes
	next()        // timestamp delta
	next()        // offset delta
	keyLen := next()
	if n < 0 || keyLen < 4 || int64(len(rec)) < keyLen {
		return false, false
	}
	switch binary.BigEndian.Uint16(rec[2:4]) {
	case 0:
		return false, true
	case 1:
		return true, true
	}
	return false, false
}

// markerBatch builds a control batch with one commit or abort marker record (base offset 0:
// the log stamps it).
func markerBatch(pid int64, epoch int16, commit bool, ts int64) []byte {
	var key, val [6]byte
	if commit {
		key[3] = 1
	}
	val = [6]byte{} // version 0, coordinator epoch 0
	var rec []byte
	rec = append(rec, 0)              // attributes
	rec = binary.AppendVarint(rec, 0) // timestamp delta
	rec = binary.AppendVarint(rec, 0) // offset delta
	rec = binary.AppendVarint(rec, 4) // key length
	rec = append(rec, key[:4]...)     // version, type
	rec = binary.AppendVarint(rec, 6) // value length
	rec = append(rec, val[:]...)      // version, coordinator epoch
	rec = binary.AppendVarint(rec, 0) // headers
	records := binary.AppendVarint(nil, int64(len(rec)))
	records = append(records, rec...)

	b := make([]byte, batchHeaderLen, batchHeaderLen+len(records))
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(batchHeaderLen-batchLengthOverhd+len(records)))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], attrTransactional|attrControl)
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xFFFFFFFF) // -1
	binary.BigEndian.PutUint32(b[offRecordCount:], 1)
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// WriteTxnMarkers appends a commit or abort marker of producer pid at epoch into each
// partition and returns once they are durable. Partitions that do not exist (a topic deleted
// meanwhile) are skipped.
func (b *Broker) WriteTxnMarkers(ctx context.Context, pid int64, epoch int16, commit bool, parts []txn.TP) error {
	if b.closed.Load() {
		return ErrClosed
	}
	var syncs []pendingSync
	for _, tp := range parts {
		p := b.lookup(tp.Topic, tp.Partition)
		if p == nil || p.deleted.Load() {
			continue
		}
		if p.replicated() {
			if err := b.writeReplicatedMarker(ctx, p, pid, epoch, commit); err != nil {
				return err
			}
			continue
		}
		if err := b.Err(); err != nil {
			return err
		}
		l, err := b.useLog(p, true)
		var base int64
		if err == nil {
			base, err = b.appendMarker(p, l, pid, epoch, commit)
		}
		p.logMu.RUnlock()
		if errors.Is(err, errPartitionDeleted) {
			continue
		}
		if err != nil {
			return err
		}
		p.wake()
		syncs = append(syncs, pendingSync{p: p, l: l, upTo: base + 1, stored: true})
	}
	for _, s := range syncs {
		if err := s.p.sync(s.l, s.upTo, b.cfg.Now); err != nil {
			return err
		}
	}
	return nil
}

func (b *Broker) appendMarker(p *partition, l *wal.Log, pid int64, epoch int16, commit bool) (int64, error) {
	s := p.producerState()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(b, p, l); err != nil {
		return -1, err
	}
	now := b.cfg.Now().UnixMilli()
	base, err := l.Append(markerBatch(pid, epoch, commit, now), 1, now)
	if err != nil {
		return -1, err
	}
	s.applyMarker(pid, epoch, commit, base, now)
	s.dirty = true
	return base, nil
}

// readCommitted filters a read (batches) for read_committed: nothing at or above lso, no
// aborted batch. When everything read was aborted it reads on (up to the LSO, where the
// abort marker at the latest is kept), so the consumer always gets something to move past
// the aborted data with.
func (b *Broker) readCommitted(l *wal.Log, batches []wal.Batch, lso int64, aborted []abortedTxn, limit int, bufs *readBufs) ([]wal.Batch, error) {
	for {
		if len(batches) == 0 {
			return batches, nil
		}
		next := batches[len(batches)-1].LastOffset + 1
		kept := committedOnly(batches, lso, aborted)
		if len(kept) > 0 || next >= lso {
			return kept, nil
		}
		var err error
		if batches, err = l.ReadInto(next, max(limit, 1), bufs.get(limit)); err != nil {
			return nil, err
		}
	}
}

// verifyTxnBatch asks the transaction coordinator whether the transactional batch h may be
// appended to p: its producer's transaction must be ongoing at that epoch with p added.
// With add (a Produce v12+ under transaction.version 2: TransactionVersion) the coordinator
// adds p to the transaction first.
func (b *Broker) verifyTxnBatch(ctx context.Context, p *partition, h batchHead, add bool) *BatchError {
	verify := b.txn.Verify
	if v := b.txnVerify.Load(); v != nil {
		verify = func(pid int64, epoch int16, tp txn.TP) int16 { return (*v)(ctx, pid, epoch, tp) }
	} else if add {
		verify = b.txn.VerifyAdd
	}
	switch verify(h.producerID, h.epoch, txn.TP{Topic: p.t.name, Partition: p.index}) {
	case 0:
		return nil
	case txn.ErrConcurrentTransactions:
		return batchErr(kerr.ConcurrentTransactions, "producer %d's transaction is being completed; retry", h.producerID)
	case txn.ErrInvalidProducerEpoch, txn.ErrProducerFenced: // Kafka answers a produce's fencing so
		return batchErr(kerr.InvalidProducerEpoch, "producer %d epoch %d is not the epoch of its transaction", h.producerID, h.epoch)
	case txn.ErrInvalidProducerIDMapping:
		return batchErr(kerr.InvalidProducerIDMapping, "producer %d has no transaction", h.producerID)
	case txn.ErrCoordinatorNotAvailable:
		return batchErr(kerr.NotEnoughReplicas, "the transaction coordinator could not be asked about producer %d; nothing was written, retry", h.producerID)
	default:
		return batchErr(kerr.InvalidTxnState, "producer %d has no ongoing transaction that includes %s-%d", h.producerID, p.t.name, p.index)
	}
}
