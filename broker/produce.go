package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/txn"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Produce validates and appends each partition's record batches, stored byte for byte as
// produced except for the base offsets the broker assigns. Partitions are independent: a bad
// payload fails only its own partition, and nothing of it is stored.
//
// With acks=-1 a partition's answer waits until its data is fsynced (unless the topic relaxes
// this with flush.messages / flush.ms, see doc.go, or the batch is transactional under
// transaction.version 2: txnAckedUnsynced); concurrent producers share fsyncs through the
// log's group commit, and the partitions of one request are synced in parallel.
func (b *Broker) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	return b.ProduceStaged(ctx, req)()
}

// ProduceStaged is Produce in two stages, for a caller that pipelines requests: every
// partition's append happens before it returns (so appends keep the order of the calls), and
// the returned function waits for the durability acks=-1 asks for, then gives Produce's
// answer. Meanwhile the caller can stage the next request; concurrent waits share fsyncs
// through the log's group commit. Call the wait function once. The request (records
// included) is no longer used once ProduceStaged returns.
func (b *Broker) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	wait, _ := b.ProduceStagedReady(ctx, req)
	return wait
}

// ProduceStagedReady is ProduceStaged that also says whether the wait function returns at
// once (nothing to make durable: acks=0/1, transactional batches of transaction.version 2,
// relaxed topics, errors), so that a caller may call it where it would not block on an
// fsync (the gateway's connection reader, which then needs no hand-off to its writer).
func (b *Broker) ProduceStagedReady(ctx context.Context, req *brokerop.ProduceReq) (wait func() (*brokerop.ProduceResp, error), ready bool) {
	if b.closed.Load() {
		return func() (*brokerop.ProduceResp, error) { return nil, ErrClosed }, true
	}
	b.produceReqs.Add(1)
	b.openMissing(req)
	resp := &brokerop.ProduceResp{Partitions: make([]brokerop.ProducePartitionResp, len(req.Partitions))}
	var syncs []pendingSync
	var repls []replProduce // replicated partitions (replicated_produce.go)
	var nowMs int64         // the clock, read once for the request's idempotent batches
	for i := range req.Partitions {
		pp := &req.Partitions[i]
		r := &resp.Partitions[i]
		*r = brokerop.ProducePartitionResp{Topic: pp.Topic, Partition: pp.Partition, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
		if err := b.Err(); err != nil { // stopped: see Err
			r.ErrorCode, r.ErrorMessage = kerr.KafkaStorageError.Code, err.Error()
			continue
		}
		if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
			r.ErrorCode = kerr.InvalidRequiredAcks.Code
			continue
		}
		p := b.lookup(pp.Topic, pp.Partition)
		if p == nil {
			r.ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		cfg := p.t.cfg.Load()
		sum, err := ValidateBatches(pp.Records, cfg.maxMessageBytes)
		if err != nil {
			var be *BatchError
			errors.As(err, &be)
			r.ErrorCode, r.ErrorMessage = be.Code, be.Msg
			continue
		}
		if cfg.compact {
			if be := checkKeyed(pp.Records, pp.Topic, pp.Partition); be != nil {
				r.ErrorCode, r.ErrorMessage = be.Code, be.Msg
				continue
			}
		}
		if p.replicated() {
			repls = append(repls, replProduce{i: i, p: p, data: pp.Records, sum: sum, cfg: cfg})
			continue
		}
		if req.Acks == -1 && cfg.minInsync > 1 { // one replica: never enough
			r.ErrorCode = kerr.NotEnoughReplicas.Code
			r.ErrorMessage = fmt.Sprintf("the partition has 1 replica, min.insync.replicas is %d", cfg.minInsync)
			continue
		}
		l, err := b.useLog(p, true)
		var base, start, synced int64
		var stored bool
		if err == nil {
			if nowMs == 0 && readBatchHead(pp.Records).producerID >= 0 {
				nowMs = b.cfg.Now().UnixMilli() // one clock read per request, not per batch
			}
			base, stored, err = b.appendRecords(p, l, pp.Records, sum, nowMs, req.TxnAdd) // idempotence checks: producer_state.go
			var next int64
			start, next, synced = l.Offsets()
			start = min(max(start, p.logStart.Load()), next) // p.startOffset, with one lock
		}
		p.logMu.RUnlock()
		if err != nil {
			// (errors.As only on this path: its target escapes, an allocation per call.)
			if be := asBatchError(err); be != nil {
				r.ErrorCode, r.ErrorMessage = be.Code, be.Msg
			} else {
				r.ErrorCode = b.storageError(p, "append", err)
			}
			continue
		}
		p.wake()
		r.BaseOffset = base
		r.LogStartOffset = start
		upTo := base + int64(sum.Records)
		switch {
		case req.Acks == -1 && b.txnAckedUnsynced(req, p, pp.Records):
			// A transactional batch of transaction.version 2 is answered once written: the
			// EndTxn that commits it makes it durable (broker/txn's doc, Durability).
		case !cfg.relaxed && req.Acks == -1:
			syncs = append(syncs, pendingSync{i, p, l, upTo, stored})
		case cfg.relaxed && upTo-synced >= cfg.flushMessages:
			syncs = append(syncs, pendingSync{i, p, l, upTo, stored}) // flush.messages reached, whatever the acks
		}
	}
	var commits []func()
	if len(repls) > 0 {
		for _, w := range b.proposeAll(ctx, req.Acks, resp, repls) {
			if w != nil {
				commits = append(commits, w)
			}
		}
	}
	if len(syncs) == 0 && len(commits) == 0 {
		return func() (*brokerop.ProduceResp, error) { return resp, nil }, true
	}
	return func() (*brokerop.ProduceResp, error) {
		if len(syncs) > 0 {
			b.syncAll(resp, syncs)
		}
		for _, wait := range commits {
			wait()
		}
		return resp, nil
	}, false
}

// openConcurrency bounds the goroutines openMissing opens logs with.
const openConcurrency = 32

// openMissing opens, concurrently, the logs of the request's partitions that are not open
// yet (a first write to each: opening a log that is on disk reads its files, which overlap
// when issued together instead of one partition after the other; a new one costs a ReadDir,
// since its files are created later, see doc.go). Failures are left to the appends, which
// open again and answer the error.
func (b *Broker) openMissing(req *brokerop.ProduceReq) {
	var todo []*partition
	for i := range req.Partitions {
		p := b.lookup(req.Partitions[i].Topic, req.Partitions[i].Partition)
		if p == nil || p.replicated() { // a raft group's log is open while it runs
			continue
		}
		p.logMu.RLock()
		missing := p.log == nil && !p.deleted.Load()
		p.logMu.RUnlock()
		if missing {
			todo = append(todo, p) // a partition listed twice is opened once (useLog)
		}
	}
	if len(todo) < 2 {
		return
	}
	work := make(chan *partition)
	var wg sync.WaitGroup
	for range min(len(todo), openConcurrency) {
		wg.Go(func() {
			for p := range work {
				b.useLog(p, true)
				p.logMu.RUnlock()
			}
		})
	}
	for _, p := range todo {
		work <- p
	}
	close(work)
	wg.Wait()
}

// pendingSync is a partition a produce must fsync before it answers.
type pendingSync struct {
	i      int // index in the response
	p      *partition
	l      *wal.Log
	upTo   int64
	stored bool // this produce appended it (false: a retry answered with a stored batch)
}

// syncAll makes the partitions of one produce durable. Their logs share the broker's commit
// journal, whose group commit writes and fsyncs every record appended before it in one order
// (package wal, Commit journal): so one wait for the newest record this produce appended makes
// all its appends durable, and the other partitions are not synced one by one (a member's
// Sync costs a write of its buffer to its file; the flusher does that for them within
// FlushInterval, amortised over every produce meanwhile). A partition answered from a stored
// batch (an idempotent retry) waits on its own, since its record may be newer than ours. If
// the one wait fails, every partition is synced on its own and gets its own answer.
func (b *Broker) syncAll(resp *brokerop.ProduceResp, syncs []pendingSync) {
	if b.store != nil {
		newest := -1
		for j := range syncs {
			if syncs[j].stored {
				newest = j
			}
		}
		if newest >= 0 && syncs[newest].p.sync(syncs[newest].l, syncs[newest].upTo, b.cfg.Now) == nil {
			now := b.cfg.Now().UnixNano()
			for j, s := range syncs {
				switch {
				case s.stored:
					s.p.synced.Store(now) // covered by the newest one's group commit
				case j != newest:
					if err := s.p.sync(s.l, s.upTo, b.cfg.Now); err != nil {
						resp.Partitions[s.i].ErrorCode = b.storageError(s.p, "sync", err)
					}
				}
			}
			return
		}
		for _, s := range syncs {
			if err := s.p.sync(s.l, s.upTo, b.cfg.Now); err != nil {
				resp.Partitions[s.i].ErrorCode = b.storageError(s.p, "sync", err)
			}
		}
		return
	}
	switch len(syncs) {
	case 1:
		s := syncs[0]
		if err := s.p.sync(s.l, s.upTo, b.cfg.Now); err != nil {
			resp.Partitions[s.i].ErrorCode = b.storageError(s.p, "sync", err)
		}
	default:
		var wg sync.WaitGroup
		errs := make([]error, len(syncs))
		for j, s := range syncs {
			wg.Go(func() { errs[j] = s.p.sync(s.l, s.upTo, b.cfg.Now) })
		}
		wg.Wait()
		for j, s := range syncs {
			if errs[j] != nil {
				resp.Partitions[s.i].ErrorCode = b.storageError(s.p, "sync", errs[j])
			}
		}
	}
}

// storageError maps a log error to a Kafka code: the partition went away with its topic, or
// the disk failed.
func (b *Broker) storageError(p *partition, op string, err error) int16 {
	if p.deleted.Load() {
		return kerr.UnknownTopicOrPartition.Code
	}
	if !b.closed.Load() {
		b.log.Error("broker: storage", "op", op, "topic", p.t.name, "partition", p.index, "err", err)
	}
	return kerr.KafkaStorageError.Code
}

// appendRecords appends one partition's validated produce payload to l (the partition's log,
// read under p.logMu) and returns its base offset. A payload of plain batches goes straight to
// the log. An idempotent one is checked against the partition's producer state first: a retry
// of a stored batch returns the stored batch's base offset and stores nothing; a refused one
// returns a *BatchError with the Kafka code. stored says whether this call appended (false
// for a retry answered from the state).
// nowMs is the time (ms) recorded as the producer's last write for an idempotent batch.
// txnAdd: a transactional batch adds p to its producer's transaction (ProduceReq.TxnAdd).
func (b *Broker) appendRecords(p *partition, l *wal.Log, data []byte, sum BatchSummary, nowMs int64, txnAdd bool) (base int64, stored bool, err error) {
	h := readBatchHead(data)
	if h.producerID < 0 && sum.Batches == 1 {
		base, err = l.Append(data, sum.Records, sum.MaxTimestamp)
		return base, err == nil, err
	}
	if sum.Batches > 1 {
		idem := false
		forEachBatch(data, func(batch []byte) { idem = idem || readBatchHead(batch).producerID >= 0 })
		if !idem {
			base, err = l.Append(data, sum.Records, sum.MaxTimestamp)
			return base, err == nil, err
		}
		return -1, false, batchErr(kerr.InvalidRecord, "an idempotent produce must carry exactly one record batch per partition, got %d", sum.Batches)
	}
	s := p.producerState()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(b, p, l); err != nil {
		return -1, false, err
	}
	dup, berr := s.check(h, l.NextOffset() == 0)
	if berr == nil && dup == nil && h.attrs&attrTransactional != 0 {
		berr = b.verifyTxnBatch(context.Background(), p, h, txnAdd) // txn_partition.go; under s.mu, so no marker overtakes it
	}
	if berr != nil {
		return -1, false, berr
	}
	if dup != nil {
		return dup.baseOffset, false, nil
	}
	base, err = l.Append(data, sum.Records, sum.MaxTimestamp)
	if err != nil {
		return -1, false, err
	}
	h.baseOffset, h.seenMs = base, nowMs
	s.update(h)
	s.dirty = true
	return base, true, nil
}

// txnAckedUnsynced says whether a produce of records (one partition's payload) is answered
// without waiting for its fsync: a transactional batch of a Produce v12+ under
// transaction.version 2 (req.TxnAdd) served by this broker's own coordinator on its commit
// journal. Its records matter only once its transaction commits, and the commit cannot be
// answered before they are durable: the PrepareCommit record follows them in the journal and
// EndTxn waits for a group commit that covers it. A crash that loses them keeps the
// transaction from committing: the coordinator aborts every Ongoing transaction after an
// unclean stop (openTxn), and one it lost entirely answers its commit INVALID_TXN_STATE.
// Reads stay on durable data: Fetch and ListOffsets sync before they show records above the
// synced offset. See broker/txn's doc, Durability.
func (b *Broker) txnAckedUnsynced(req *brokerop.ProduceReq, p *partition, records []byte) bool {
	if !req.TxnAdd || len(records) < batchHeaderLen {
		return false
	}
	h := readBatchHead(records)
	if h.attrs&attrTransactional == 0 || h.attrs&attrControl != 0 || h.producerID < 0 || b.TransactionVersion() < 2 {
		return false
	}
	// Still Ongoing now that the batch is appended: the transaction's PrepareCommit, if it
	// comes, is written after the batch, so a durable decision implies the batch. A batch
	// that lost that race (a client that sent EndTxn with this produce unanswered) waits for
	// its fsync, as before.
	return b.txn.Verify(h.producerID, h.epoch, txn.TP{Topic: p.t.name, Partition: p.index}) == 0
}

// asBatchError is the *BatchError in err's chain, or nil.
func asBatchError(err error) *BatchError {
	var be *BatchError
	if errors.As(err, &be) {
		return be
	}
	return nil
}
