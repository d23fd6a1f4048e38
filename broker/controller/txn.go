package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/broker/txn"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Transactions on a quorum (issues #16 and #18).
//
// Decision: the transaction coordinator's durable state lives on the metadata quorum, not in
// a broker's file and not in an internal replicated partition. Each change of a
// transactional id's state (a broker/txn Record: the id's complete new state) is proposed as
// a metadata PutTxn command and answered once applied; the metadata state keeps the latest
// record per id (its snapshot section 12 carries them). The coordinator runs on the quorum
// leader, next to the group coordinator whose offsets a transaction commits and the
// producer-id blocks it allocates from, and, like the group coordinator, belongs to one
// leadership: a new leader starts a new coordinator (txn.New) from the applied records after
// a ReadBarrier, whose first pass carries out every transaction left in PrepareCommit or
// PrepareAbort (markers, then offsets) and aborts Ongoing ones once their
// transaction.timeout.ms has passed (an Ongoing one whose producer is still alive is ended
// by that producer's EndTxn). So the loss of any one broker, the coordinator's included,
// loses no decided transaction. Why not an internal partition (Kafka's
// __transaction_state): the quorum already is the replicated log the coordinator's
// neighbours (groups, producer ids) use, its leader already serves every coordinator op
// (route), and transaction state is small (one record per id).
//
// Every transaction op is routed to the quorum leader (route) and served by the local
// broker's ops with the quorum coordinator installed (broker.SetTxnCoordinator); a broker
// not leading answers COORDINATOR_NOT_AVAILABLE itself. FindCoordinator for a transactional
// id answers the gateway asked (it routes every coordinator op to the leader), as for groups.
//
// Markers go to the broker that leads each partition (replicated: the leader the partition's
// last UpdatePartition named; single-owner: its owner) with the WriteMarkers op, or to the
// local broker; a partition whose leader moved answers NOT_LEADER_OR_FOLLOWER and the
// coordinator retries the transaction's markers on its next pass (a marker written twice is
// harmless: the second finds no open transaction). Transactional batches are verified with
// the coordinator by the VerifyTxn op (broker.SetTxnVerifier), from the partition leader.

// errNoTxnCoordinator fails an op that has no error code of its own on a leader whose
// transaction coordinator is not running yet (retriable: the gateway answers NOT_COORDINATOR).
var errNoTxnCoordinator = errors.New("controller: transaction coordinator not available yet")

// txnPIDTimeout bounds one producer-id block allocation made for the transaction coordinator.
const txnPIDTimeout = 10 * time.Second

// txnOpTimeout bounds one marker write to a broker and one verification.
const txnOpTimeout = 10 * time.Second

// wireTxn points the local broker's transaction ops at the quorum: the broker's own
// coordinator is not used (until this broker leads, the ops answer
// COORDINATOR_NOT_AVAILABLE), and transactional batches are verified with the quorum
// leader's coordinator.
func (c *Controller) wireTxn() {
	c.b.SetProducerIDSource(func() (int64, error) {
		ctx, cancel := context.WithTimeout(c.ctx, txnPIDTimeout)
		defer cancel()
		return c.nextProducerID(ctx)
	})
	c.b.SetTxnOffsetSink(c)
	c.b.SetTxnCoordinator(nil)
	c.b.SetTxnVerifier(c.verifyBatch)
}

// txnState is the optional part of a Replica that holds the coordinator's records
// (QuorumReplica; test fakes without it start every coordinator empty).
type txnState interface{ Txns() map[string][]byte }

// Txns implements txnState.
func (q *QuorumReplica) Txns() map[string][]byte { return q.sm.st.Txns() }

// startTxnCoordinator starts the transaction coordinator from the quorum's records (after a
// ReadBarrier) if this node leads and no live one runs; a stale one is stopped first.
func (c *Controller) startTxnCoordinator() {
	c.txnMu.Lock()
	defer c.txnMu.Unlock()
	changed, ok := startingIn(c, &c.txnCo, c.stopTxnLocked, "transaction coordinator")
	if !ok {
		return
	}
	var recs []*txn.Txn
	if ts, ok := c.r.(txnState); ok {
		for id, b := range ts.Txns() {
			t, err := txn.DecodeRecord(b)
			if err != nil || t.ID != id {
				// Never dropped silently: the id stays unknown to this coordinator (its
				// producer's next InitProducerID starts it afresh) and the operator is told.
				c.log.Error("transaction coordinator: undecodable record on the quorum", "transactional_id", id, "err", err)
				continue
			}
			recs = append(recs, t)
		}
	}
	gone := make(chan struct{})
	j := &quorumJournal{c: c, gone: gone}
	co, err := txn.New(txn.CoordinatorConfig{
		Logger: c.cfg.Logger, Now: c.clk.Now,
		NewPID: func() (int64, error) {
			ctx, cancel := context.WithTimeout(c.ctx, txnPIDTimeout)
			defer cancel()
			return c.nextProducerID(ctx)
		},
		Markers:       c,
		CheckInterval: c.cfg.TxnCheckInterval,
	}, j, recs)
	if err != nil {
		c.log.Error("transaction coordinator", "err", err)
		return
	}
	co.SetOffsetSink(broker.NewTxnOffsetSink(c))
	setIn(c, &c.txnCo, co, gone, changed)
	c.b.SetTxnCoordinator(co)
	c.log.Info("transaction coordinator started", "transactional_ids", len(recs))
}

// liveTxn is the running transaction coordinator if it is still valid (its journal has not
// failed, its leadership has not ended), else nil.
func (c *Controller) liveTxn() *txn.Coordinator { return liveIn(c, &c.txnCo) }

// stopTxnCoordinator stops the transaction coordinator, if one runs.
func (c *Controller) stopTxnCoordinator() {
	c.txnMu.Lock()
	defer c.txnMu.Unlock()
	c.stopTxnLocked()
}

func (c *Controller) stopTxnLocked() { stopIn(c, &c.txnCo, func() { c.b.SetTxnCoordinator(nil) }) }

// txnCoordinator is the live transaction coordinator, started (or rebuilt) here if this
// node leads and none is live; nil if this node does not lead.
func (c *Controller) txnCoordinator() *txn.Coordinator {
	return ensureLive(c, &c.txnCo, c.startTxnCoordinator, c.stopTxnCoordinator)
}

// quorumJournal is the coordinator's Journal on the quorum: each record a PutTxn proposal.
// After a failed proposal (its outcome is unknown) gone is closed and the coordinator is
// rebuilt from the quorum's state, so its memory never disagrees with the quorum.
type quorumJournal struct {
	c    *Controller
	gone chan struct{}
	once sync.Once
}

func (j *quorumJournal) Append(recs ...*txn.Txn) error {
	for _, t := range recs {
		ctx, cancel := j.c.opContext()
		res, err := j.c.r.Do(ctx, MetaCommand{putTxn(t)})
		cancel()
		if err == nil {
			if r, ok := res.(*metadata.PutTxnResult); ok && r.Code != 0 {
				err = fmt.Errorf("controller: PutTxn %q: Kafka error %d", t.ID, r.Code)
			}
		}
		if err != nil {
			j.once.Do(func() { close(j.gone) })
			return err
		}
	}
	return nil
}

// putTxn is the quorum command that makes t durable: its record, or for a Dead one (an
// expired transactional id, txn.Machine.ExpiredIDs) none, which removes the id from the
// metadata state.
func putTxn(t *txn.Txn) *metadata.PutTxn {
	if t.State == txn.Dead {
		return &metadata.PutTxn{ID: t.ID}
	}
	return &metadata.PutTxn{ID: t.ID, Record: txn.AppendRecord(nil, t)}
}

// MaybeCompact: the metadata state keeps one record per id, raft snapshots compact the log.
func (j *quorumJournal) MaybeCompact([]*txn.Txn) error { return nil }
func (j *quorumJournal) Close() error                  { return nil }

// WriteTxnMarkers implements txn.MarkerWriter for the quorum coordinator: each partition's
// marker goes to the broker leading (or owning) it.
func (c *Controller) WriteTxnMarkers(ctx context.Context, pid int64, epoch int16, commit bool, parts []txn.TP) error {
	topics := map[string]Topic{}
	for _, t := range c.r.Topics() {
		topics[t.Name] = t
	}
	members := c.r.Brokers()
	self := c.r.RaftID()
	byTarget := map[uint64][]txn.TP{}
	var order []uint64
	for _, tp := range parts {
		t, ok := topics[tp.Topic]
		if !ok || tp.Partition < 0 || tp.Partition >= t.Partitions {
			continue // deleted meanwhile: nothing to end there
		}
		target := partitionTarget(topics, members, tp.Topic, tp.Partition)
		if target == 0 {
			return fmt.Errorf("controller: markers: no leader known for %s-%d", tp.Topic, tp.Partition)
		}
		if _, ok := byTarget[target]; !ok {
			order = append(order, target)
		}
		byTarget[target] = append(byTarget[target], tp)
	}
	var errs []error
	for _, target := range order {
		tps := byTarget[target]
		ctx, cancel := context.WithTimeout(ctx, txnOpTimeout)
		var err error
		if target == self {
			err = c.b.WriteTxnMarkers(ctx, pid, epoch, commit, tps)
		} else {
			err = c.remoteMarkers(ctx, members, target, pid, epoch, commit, tps)
		}
		cancel()
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// remoteMarkers sends one broker its partitions' markers.
func (c *Controller) remoteMarkers(ctx context.Context, members []Member, target uint64, pid int64, epoch int16, commit bool, tps []txn.TP) error {
	for _, m := range members {
		if m.RaftID != target {
			continue
		}
		req := &brokerop.WriteMarkersReq{ProducerID: pid, ProducerEpoch: epoch, Commit: commit}
		for _, tp := range tps {
			req.Partitions = append(req.Partitions, brokerop.TxnPartition{Topic: tp.Topic, Partition: tp.Partition})
		}
		resp, err := c.callerOf(m).WriteMarkers(ctx, req)
		if err != nil {
			return fmt.Errorf("controller: markers to broker %d: %w", target, err)
		}
		if resp.ErrorCode != 0 {
			return fmt.Errorf("controller: markers to broker %d: Kafka error %d", target, resp.ErrorCode)
		}
		return nil
	}
	return fmt.Errorf("controller: markers: partition leader %d is not a registered broker", target)
}

// verifyBatch is the broker's TxnVerifier: the quorum leader's coordinator answers.
func (c *Controller) verifyBatch(ctx context.Context, pid int64, epoch int16, tp txn.TP) int16 {
	ctx, cancel := context.WithTimeout(ctx, txnOpTimeout)
	defer cancel()
	resp, err := c.VerifyTxn(ctx, &brokerop.VerifyTxnReq{ProducerID: pid, ProducerEpoch: epoch, Topic: tp.Topic, Partition: tp.Partition})
	if err != nil {
		c.log.Debug("transactional batch: verification failed", "producer_id", pid, "err", err)
		return txn.ErrCoordinatorNotAvailable
	}
	return resp.ErrorCode
}

// CommitTxnOffsets applies a committed transaction's offsets through the leader's group
// coordinator (broker.TxnOffsetCommitter); errNoCoordinator while this broker does not run
// one, and the transaction coordinator retries.
func (c *Controller) CommitTxnOffsets(ctx context.Context, group string, topics []brokerop.OffsetCommitTopic) error {
	co := c.liveCoordinator()
	if co == nil {
		return errNoCoordinator
	}
	return co.CommitTxnOffsets(ctx, group, topics)
}

// CheckTxnMember fences a transactional offset commit by the group's membership through
// the leader's group coordinator (broker.TxnMemberChecker, KIP-447).
func (c *Controller) CheckTxnMember(ctx context.Context, group string, generation int32, memberID, instanceID string) (int16, error) {
	co := c.coordinator()
	if co == nil {
		return 0, errNoCoordinator
	}
	return co.CheckTxnMember(ctx, group, generation, memberID, instanceID)
}

// txnLocal runs a transaction op on this broker with the live quorum coordinator installed
// (COORDINATOR_NOT_AVAILABLE, which clients retry, while there is none).
func txnLocal[Req, Resp any](c *Controller, op func(context.Context, *Req) (*Resp, error), none *Resp) func(context.Context, *Req) (*Resp, error) {
	return func(ctx context.Context, req *Req) (*Resp, error) {
		if c.txnCoordinator() == nil {
			return none, nil
		}
		return op(ctx, req)
	}
}

func notAvailable() *brokerop.TxnResp {
	return &brokerop.TxnResp{ErrorCode: kerr.CoordinatorNotAvailable.Code}
}

// InitTxnProducerID runs on the leader's transaction coordinator.
func (c *Controller) InitTxnProducerID(ctx context.Context, req *brokerop.InitTxnProducerIDReq) (*brokerop.InitProducerIDResp, error) {
	none := &brokerop.InitProducerIDResp{ErrorCode: kerr.CoordinatorNotAvailable.Code, ProducerID: -1, ProducerEpoch: -1}
	return route(c, ctx, req, txnLocal(c, c.b.InitTxnProducerID, none), brokerop.Service.InitTxnProducerID)
}

// AddPartitionsToTxn runs on the leader's transaction coordinator.
func (c *Controller) AddPartitionsToTxn(ctx context.Context, req *brokerop.AddPartitionsToTxnReq) (*brokerop.TxnResp, error) {
	return route(c, ctx, req, txnLocal(c, c.b.AddPartitionsToTxn, notAvailable()), brokerop.Service.AddPartitionsToTxn)
}

// AddOffsetsToTxn runs on the leader's transaction coordinator.
func (c *Controller) AddOffsetsToTxn(ctx context.Context, req *brokerop.AddOffsetsToTxnReq) (*brokerop.TxnResp, error) {
	return route(c, ctx, req, txnLocal(c, c.b.AddOffsetsToTxn, notAvailable()), brokerop.Service.AddOffsetsToTxn)
}

// TxnOffsetCommit runs on the leader's transaction coordinator.
func (c *Controller) TxnOffsetCommit(ctx context.Context, req *brokerop.TxnOffsetCommitReq) (*brokerop.TxnResp, error) {
	return route(c, ctx, req, txnLocal(c, c.b.TxnOffsetCommit, notAvailable()), brokerop.Service.TxnOffsetCommit)
}

// EndTxn runs on the leader's transaction coordinator.
func (c *Controller) EndTxn(ctx context.Context, req *brokerop.EndTxnReq) (*brokerop.TxnResp, error) {
	return route(c, ctx, req, txnLocal(c, c.b.EndTxn, notAvailable()), brokerop.Service.EndTxn)
}

// ListTransactions runs on the leader's transaction coordinator.
func (c *Controller) ListTransactions(ctx context.Context, req *brokerop.ListTransactionsReq) (*brokerop.ListTransactionsResp, error) {
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.ListTransactionsReq) (*brokerop.ListTransactionsResp, error) {
		if c.txnCoordinator() == nil {
			return nil, errNoTxnCoordinator
		}
		return c.b.ListTransactions(ctx, req)
	}, brokerop.Service.ListTransactions)
}

// DescribeTransactions runs on the leader's transaction coordinator.
func (c *Controller) DescribeTransactions(ctx context.Context, req *brokerop.DescribeTransactionsReq) (*brokerop.DescribeTransactionsResp, error) {
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.DescribeTransactionsReq) (*brokerop.DescribeTransactionsResp, error) {
		if c.txnCoordinator() == nil {
			resp := &brokerop.DescribeTransactionsResp{}
			for _, id := range req.TransactionalIDs {
				resp.Transactions = append(resp.Transactions, brokerop.TxnDescription{TransactionalID: id, ErrorCode: kerr.CoordinatorNotAvailable.Code,
					StartMs: -1, ProducerID: -1, ProducerEpoch: -1})
			}
			return resp, nil
		}
		return c.b.DescribeTransactions(ctx, req)
	}, brokerop.Service.DescribeTransactions)
}

// VerifyTxn runs on the leader's transaction coordinator.
func (c *Controller) VerifyTxn(ctx context.Context, req *brokerop.VerifyTxnReq) (*brokerop.TxnResp, error) {
	return route(c, ctx, req, txnLocal(c, c.b.VerifyTxn, notAvailable()), brokerop.Service.VerifyTxn)
}

// WriteMarkers is a data op: this broker writes the markers into the partitions it leads.
func (c *Controller) WriteMarkers(ctx context.Context, req *brokerop.WriteMarkersReq) (*brokerop.TxnResp, error) {
	return c.b.WriteMarkers(ctx, req)
}

// DescribeProducers is a data op: this broker answers for the partitions it holds (the
// gateway sends each partition to its owner).
func (c *Controller) DescribeProducers(ctx context.Context, req *brokerop.DescribeProducersReq) (*brokerop.DescribeProducersResp, error) {
	return c.b.DescribeProducers(ctx, req)
}
