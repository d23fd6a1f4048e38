package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/twmb/franz-go/pkg/kerr"
)

// replProduce is one partition of a produce request that goes to a replicated partition.
type replProduce struct {
	i    int // index in the response
	p    *partition
	data []byte
	sum  BatchSummary
	cfg  *topicConfig
}

// proposeAll proposes the replicated partitions of one produce (concurrently when there are
// several: each Propose waits for an engine round, and the rounds are shared) and returns
// the waits acks=-1 still needs (nil entries: answered).
func (b *Broker) proposeAll(ctx context.Context, acks int16, resp *brokerop.ProduceResp, rs []replProduce) []func() {
	waits := make([]func(), len(rs))
	if len(rs) == 1 {
		waits[0] = b.proposeReplicated(ctx, acks, rs[0], &resp.Partitions[rs[0].i])
		return waits
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, openConcurrency)
	for j, x := range rs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			waits[j] = b.proposeReplicated(ctx, acks, x, &resp.Partitions[x.i])
		})
	}
	wg.Wait()
	return waits
}

// proposeReplicated proposes one partition's validated payload to its raft group and fills
// r with the answer as of the entry being durable here (acks=0/1). With acks=-1 it returns
// the wait for the commit, which completes r.
func (b *Broker) proposeReplicated(ctx context.Context, acks int16, x replProduce, r *brokerop.ProducePartitionResp) func() {
	g := x.p.group.Load()
	if g == nil {
		r.ErrorCode, r.ErrorMessage = kerr.NotLeaderForPartition.Code, "this broker is not a replica of the partition"
		return nil
	}
	serving, leader, term := g.leaderState()
	if !serving {
		notLeader(r, leader)
		return nil
	}
	if acks == -1 && x.cfg.minInsync > 1 {
		if isr, _, _ := g.isr(b.cfg.Now()); len(isr) < x.cfg.minInsync {
			r.ErrorCode = kerr.NotEnoughReplicas.Code
			r.ErrorMessage = fmt.Sprintf("%d in-sync replicas, min.insync.replicas is %d", len(isr), x.cfg.minInsync)
			return nil
		}
	}
	idem, txnl := false, false
	forEachBatch(x.data, func(batch []byte) {
		h := readBatchHead(batch)
		idem = idem || h.producerID >= 0
		txnl = txnl || h.attrs&attrTransactional != 0
	})
	switch {
	case txnl && !idem:
		r.ErrorCode = kerr.InvalidRecord.Code
		r.ErrorMessage = "a transactional batch must carry a producer id"
		return nil
	case idem && x.sum.Batches > 1:
		r.ErrorCode = kerr.InvalidRecord.Code
		r.ErrorMessage = fmt.Sprintf("an idempotent produce must carry exactly one record batch per partition, got %d", x.sum.Batches)
		return nil
	}
	// The engine keeps the entry's bytes (raft's in-memory log, sends to followers) past
	// this call, and the caller may reuse the request's buffer once it returns: copy.
	data := bytes.Clone(x.data)
	setLeaderEpoch(data, term)
	var prop *replica.Proposal
	if idem {
		var wait func()
		prop, wait = g.proposeIdempotent(ctx, acks, term, data, r)
		if prop == nil {
			return wait
		}
	} else {
		var err error
		if prop, err = g.eng.Propose(ctx, g.id, data); err != nil {
			b.proposeFailed(g, r, err)
			return nil
		}
		base, _, ok := g.st.Offsets(prop.Index)
		if !ok {
			b.proposeFailed(g, r, fmt.Errorf("no offsets for proposed entry %d", prop.Index))
			return nil
		}
		r.BaseOffset = base
	}
	r.LogStartOffset = g.logStartOffset()
	if acks != -1 {
		return nil
	}
	return func() {
		select {
		case err := <-prop.Committed:
			if err != nil {
				r.BaseOffset, r.LogStartOffset = -1, -1
				r.ErrorCode = kerr.NotLeaderForPartition.Code
				r.ErrorMessage = "leadership changed before the batch was committed; its outcome is unknown (an idempotent retry is deduplicated)"
				return
			}
			// As in Kafka, the answer comes once the high watermark covers the batch, so a
			// client that reads after its acknowledgement finds it.
			g.waitApplied(ctx, prop.Index)
		case <-ctx.Done():
			r.BaseOffset, r.LogStartOffset = -1, -1
			r.ErrorCode = kerr.RequestTimedOut.Code
		case <-b.closing:
			r.BaseOffset, r.LogStartOffset = -1, -1
			r.ErrorCode = kerr.NotLeaderForPartition.Code
			r.ErrorMessage = "the broker is shutting down"
		}
	}
}

// proposeIdempotent checks an idempotent batch against the applied producer state plus the
// batches in flight, and proposes it unless it is a retry. It returns the proposal (nil:
// r is answered, possibly after the returned wait for an in-flight original with acks=-1).
// propMu is held from the check until the proposal is in the in-flight list, so one
// producer's batches enter the log in the order they were checked.
func (g *replGroup) proposeIdempotent(ctx context.Context, acks int16, term uint64, data []byte, r *brokerop.ProducePartitionResp) (*replica.Proposal, func()) {
	h := readBatchHead(data)
	g.propMu.Lock()
	defer g.propMu.Unlock()
	g.mu.Lock()
	if !g.ready || g.term != term {
		leader := g.leader
		g.mu.Unlock()
		notLeader(r, leader)
		return nil, nil
	}
	dup, in, berr := g.checkLocked(h)
	g.mu.Unlock()
	if berr == nil && dup == nil && h.attrs&attrTransactional != 0 {
		// Under propMu, which a marker's proposal takes too: a batch the coordinator
		// accepts enters the log before its transaction's marker (replicated_txn.go).
		berr = g.b.verifyTxnBatch(ctx, g.p, h, false)
	}
	if berr != nil {
		r.ErrorCode, r.ErrorMessage = berr.Code, berr.Msg
		return nil, nil
	}
	if dup != nil {
		r.BaseOffset, r.LogStartOffset = dup.baseOffset, g.logStartOffset()
		if in == nil || acks != -1 {
			return nil, nil
		}
		return nil, func() { // the original is not committed yet: answer with its outcome
			select {
			case <-in.done:
				if in.err != nil {
					r.BaseOffset, r.LogStartOffset = -1, -1
					notLeader(r, 0)
				}
			case <-ctx.Done():
				r.BaseOffset, r.LogStartOffset = -1, -1
				r.ErrorCode = kerr.RequestTimedOut.Code
			}
		}
	}
	// Not cancelled with the request: the proposal's index must be known whatever
	// happens, or a retry could not be recognised while it is in flight.
	prop, err := g.eng.Propose(context.WithoutCancel(ctx), g.id, data)
	if err != nil {
		g.b.proposeFailed(g, r, err)
		return nil, nil
	}
	base, _, ok := g.st.Offsets(prop.Index)
	if !ok {
		g.b.proposeFailed(g, r, fmt.Errorf("no offsets for proposed entry %d", prop.Index))
		return nil, nil
	}
	r.BaseOffset = base
	h.baseOffset, h.seenMs = base, g.b.cfg.Now().UnixMilli()
	g.mu.Lock()
	// Applied already (a group of one commits at once): the applied state has it. Leadership
	// changed meanwhile: the next term's state comes from the log.
	if prop.Index > g.applied && g.leader == g.self && g.term == prop.Term {
		g.inflight = append(g.inflight, &inflightBatch{h: h, index: prop.Index, done: make(chan struct{})})
	}
	g.mu.Unlock()
	return prop, nil
}

// checkLocked applies Kafka's sequence rules to h against the applied producer state plus
// the batches in flight. It returns the batch h retries (and its in-flight entry if it is
// not applied yet), or the error refusing h. Callers hold g.mu.
func (g *replGroup) checkLocked(h batchHead) (*seqBatch, *inflightBatch, *BatchError) {
	tmp := producerState{producers: map[int64]*producerEntry{}}
	if e := g.prods.producers[h.producerID]; e != nil {
		c := *e
		c.batches = slices.Clone(e.batches)
		tmp.producers[h.producerID] = &c
	}
	for _, in := range g.inflight {
		if in.h.producerID == h.producerID {
			tmp.update(in.h)
		}
	}
	dup, berr := tmp.check(h, !g.dataSeen && len(g.inflight) == 0)
	if dup == nil || berr != nil {
		return nil, nil, berr
	}
	for _, in := range g.inflight {
		if in.h.producerID == h.producerID && in.h.baseOffset == dup.baseOffset {
			return dup, in, nil
		}
	}
	return dup, nil, nil
}

// proposeFailed answers a failed Propose: NOT_LEADER_OR_FOLLOWER when leadership was lost
// (retriable), KAFKA_STORAGE_ERROR otherwise.
func (b *Broker) proposeFailed(g *replGroup, r *brokerop.ProducePartitionResp, err error) {
	r.BaseOffset, r.LogStartOffset = -1, -1
	var nl *replica.NotLeaderError
	switch {
	case errors.As(err, &nl):
		notLeader(r, nl.Leader)
	case errors.Is(err, replica.ErrNotLeader), errors.Is(err, replica.ErrUnknownGroup):
		notLeader(r, 0)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		r.ErrorCode = kerr.RequestTimedOut.Code
	case errors.Is(err, replica.ErrDropped):
		// The leader's uncommitted tail is full (followers lag): back off and retry.
		r.ErrorCode, r.ErrorMessage = kerr.NotEnoughReplicas.Code, "too much data not yet replicated (followers lag); nothing was written, retry"
	default:
		if !b.closed.Load() {
			b.log.Error("broker: propose", "topic", g.p.t.name, "partition", g.p.index, "err", err)
		}
		r.ErrorCode, r.ErrorMessage = kerr.KafkaStorageError.Code, "the replicated append failed"
	}
}

// notLeader answers NOT_LEADER_OR_FOLLOWER naming the leader's raft id if known.
func notLeader(r *brokerop.ProducePartitionResp, leader uint64) {
	r.ErrorCode = kerr.NotLeaderForPartition.Code
	if leader != 0 {
		r.ErrorMessage = fmt.Sprintf("not the partition leader (the leader is replica %d)", leader)
	} else {
		r.ErrorMessage = "not the partition leader (no leader known)"
	}
}

// setLeaderEpoch writes the raft term, as the Kafka leader epoch, into each batch's
// partitionLeaderEpoch field (outside the batch CRC).
func setLeaderEpoch(data []byte, term uint64) {
	epoch := uint32(min(term, math.MaxInt32))
	forEachBatch(data, func(batch []byte) { binary.BigEndian.PutUint32(batch[12:], epoch) })
}

// waitApplied returns once entry index is applied here (the high watermark covers it), or
// when ctx ends, the broker closes or the group stops. Apply follows the commit within the
// engine's round, so this wait is short.
func (g *replGroup) waitApplied(ctx context.Context, index uint64) {
	applied := func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.applied >= index || g.removed
	}
	if applied() {
		return
	}
	wake := make(chan struct{}, 1)
	g.p.addWaiter(wake) // before the check: an Apply between them is not missed
	defer g.p.removeWaiter(wake)
	for !applied() {
		select {
		case <-wake:
		case <-ctx.Done():
			return
		case <-g.b.closing:
			return
		}
	}
}
