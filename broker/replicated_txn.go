package broker

// Transactions on replicated partitions.
//
// A transactional batch is proposed like any idempotent batch, after the coordinator
// verified it (Verify, or the TxnVerifier set with SetTxnVerifier when the coordinator runs
// on another broker) while the group's propMu is held. A marker is a raft application entry
// (encodeMarkerEntry: producer id, epoch, commit/abort; stored as one raftstore control
// batch, one offset that clients skip) that the leader proposes under the same propMu, so a
// verified batch is always before its transaction's marker in the raft log. A batch verified
// by an old leader at an old term either reached the new leader's log before the new
// leader's marker, or is never committed.
//
// Every replica applies committed entries to the partition's producer state
// (replGroup.Apply): a transactional batch opens its producer's transaction at its offset,
// a marker closes it (an abort records (producer, first offset, marker offset) in the
// aborted list), exactly as producer_state.go replays a single-owner partition's log. The
// last stable offset (smallest first offset of an open transaction, or the high watermark)
// and the aborted list are therefore the same on every replica at the same applied index,
// and a new leader serves read_committed from its own applied state. The raft snapshot
// carries the open transactions (each producer's first offset) and the aborted
// transactions whose markers are at or after the new log start (replicated_retention.go),
// so a replica that installs one, or restarts from one, has them too.

import (
	"context"
	"errors"
	"fmt"

	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/broker/txn"
)

// TxnVerifier answers whether producer pid at epoch may append a transactional batch to tp
// (its transaction is Ongoing at that epoch and includes tp): 0, or the coordinator's error
// code (txn.ErrInvalidProducerEpoch, txn.ErrInvalidProducerIDMapping, txn.ErrInvalidTxnState,
// txn.ErrCoordinatorNotAvailable when it could not be asked).
type TxnVerifier func(ctx context.Context, pid int64, epoch int16, tp txn.TP) int16

// SetTxnVerifier makes transactional batches be verified with fn instead of this broker's
// own transaction coordinator: in a cluster the coordinator serving the transaction may run
// on another broker (broker/controller sets it). nil restores the local coordinator.
func (b *Broker) SetTxnVerifier(fn TxnVerifier) {
	if fn == nil {
		b.txnVerify.Store(nil)
		return
	}
	b.txnVerify.Store(&fn)
}

// ErrNotPartitionLeader is returned (wrapped) by WriteTxnMarkers for a replicated partition
// this broker does not lead (or does not serve yet): the marker must go to the leader.
var ErrNotPartitionLeader = errors.New("broker: not the partition leader")

// awaitCommitted waits for a proposal to be committed: its Committed error, ctx's error, or
// ErrClosed when the broker closes first. err is Propose's: a failed proposal is not waited for.
func (b *Broker) awaitCommitted(ctx context.Context, prop *replica.Proposal, err error) error {
	if err != nil {
		return err
	}
	select {
	case err = <-prop.Committed:
	case <-ctx.Done():
		err = ctx.Err()
	case <-b.closing:
		err = ErrClosed
	}
	return err
}

// writeReplicatedMarker proposes a transaction marker into replicated partition p and
// returns once it is committed and applied here (the partition's LSO has moved past it).
func (b *Broker) writeReplicatedMarker(ctx context.Context, p *partition, pid int64, epoch int16, commit bool) error {
	g := p.group.Load()
	if g == nil {
		return fmt.Errorf("%w: %s-%d is not replicated here", ErrNotPartitionLeader, p.t.name, p.index)
	}
	data := encodeMarkerEntry(txnMarker{pid: pid, epoch: epoch, commit: commit, ts: b.cfg.Now().UnixMilli()})
	g.propMu.Lock()
	g.mu.Lock()
	ready, leader := g.ready, g.leader
	g.mu.Unlock()
	if !ready {
		g.propMu.Unlock()
		return fmt.Errorf("%w: %s-%d (leader: replica %d)", ErrNotPartitionLeader, p.t.name, p.index, leader)
	}
	prop, err := g.eng.Propose(ctx, g.id, data)
	g.propMu.Unlock()
	err = b.awaitCommitted(ctx, prop, err)
	if err != nil {
		if errors.Is(err, replica.ErrNotLeader) || errors.Is(err, replica.ErrUnknownGroup) {
			return fmt.Errorf("%w: %s-%d: %w", ErrNotPartitionLeader, p.t.name, p.index, err)
		}
		return fmt.Errorf("marker into %s-%d: %w", p.t.name, p.index, err)
	}
	g.waitApplied(ctx, prop.Index)
	g.mu.Lock()
	applied := g.applied >= prop.Index
	g.mu.Unlock()
	if !applied {
		return fmt.Errorf("marker into %s-%d: committed but not applied here: %w", p.t.name, p.index, context.Cause(ctx))
	}
	p.wake()
	return nil
}

// stable returns the group's last stable offset at high watermark hw and the aborted
// transactions whose markers are at or after from.
func (g *replGroup) stable(hw, from int64) (int64, []abortedTxn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.prods.txn {
		return hw, nil
	}
	return g.prods.stable(hw, from)
}

// abortedFrom returns (a copy of) the aborted transactions whose markers are at or after
// from, oldest first.
func (s *producerState) abortedFrom(from int64) []abortedTxn {
	i := len(s.aborted)
	for i > 0 && s.aborted[i-1].last >= from {
		i--
	}
	if i == len(s.aborted) {
		return nil
	}
	return append([]abortedTxn(nil), s.aborted[i:]...)
}
