package controller

import (
	"context"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Transactions on a quorum. The transaction coordinator is the local broker's (package
// broker/txn, its log in the broker's data dir); every transaction op is routed to the
// quorum leader and served by the leader's broker, so the coordinator that answers is the
// one that holds the controller role, as the group coordinator is. Its producer ids come from
// the quorum's blocks (SetProducerIDSource), never from a broker's own counter, and the
// offsets of a committed transaction go to the leader's group coordinator, whose commits are
// quorum proposals. Markers are written into the leader broker's own partitions only: a
// transaction spans the partitions the leader owns (all of them with one broker). The
// coordinator's log is not on the quorum: after a failover a new leader does not know the
// transactions the old one had open (their producers get an error and start over).

// txnPIDTimeout bounds one producer-id block allocation made for the transaction coordinator.
const txnPIDTimeout = 10 * time.Second

// wireTxn points the local broker's transaction coordinator at the quorum.
func (c *Controller) wireTxn() {
	c.b.SetProducerIDSource(func() (int64, error) {
		ctx, cancel := context.WithTimeout(c.ctx, txnPIDTimeout)
		defer cancel()
		return c.nextProducerID(ctx)
	})
	c.b.SetTxnOffsetSink(c)
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

// InitTxnProducerID runs on the leader's transaction coordinator.
func (c *Controller) InitTxnProducerID(ctx context.Context, req *brokerop.InitTxnProducerIDReq) (*brokerop.InitProducerIDResp, error) {
	return route(c, ctx, req, c.b.InitTxnProducerID, brokerop.Service.InitTxnProducerID)
}

// AddPartitionsToTxn runs on the leader's transaction coordinator.
func (c *Controller) AddPartitionsToTxn(ctx context.Context, req *brokerop.AddPartitionsToTxnReq) (*brokerop.TxnResp, error) {
	return route(c, ctx, req, c.b.AddPartitionsToTxn, brokerop.Service.AddPartitionsToTxn)
}

// AddOffsetsToTxn runs on the leader's transaction coordinator.
func (c *Controller) AddOffsetsToTxn(ctx context.Context, req *brokerop.AddOffsetsToTxnReq) (*brokerop.TxnResp, error) {
	return route(c, ctx, req, c.b.AddOffsetsToTxn, brokerop.Service.AddOffsetsToTxn)
}

// TxnOffsetCommit runs on the leader's transaction coordinator.
func (c *Controller) TxnOffsetCommit(ctx context.Context, req *brokerop.TxnOffsetCommitReq) (*brokerop.TxnResp, error) {
	return route(c, ctx, req, c.b.TxnOffsetCommit, brokerop.Service.TxnOffsetCommit)
}

// EndTxn runs on the leader's transaction coordinator.
func (c *Controller) EndTxn(ctx context.Context, req *brokerop.EndTxnReq) (*brokerop.TxnResp, error) {
	return route(c, ctx, req, c.b.EndTxn, brokerop.Service.EndTxn)
}

// ListTransactions runs on the leader's transaction coordinator.
func (c *Controller) ListTransactions(ctx context.Context, req *brokerop.ListTransactionsReq) (*brokerop.ListTransactionsResp, error) {
	return route(c, ctx, req, c.b.ListTransactions, brokerop.Service.ListTransactions)
}

// DescribeTransactions runs on the leader's transaction coordinator.
func (c *Controller) DescribeTransactions(ctx context.Context, req *brokerop.DescribeTransactionsReq) (*brokerop.DescribeTransactionsResp, error) {
	return route(c, ctx, req, c.b.DescribeTransactions, brokerop.Service.DescribeTransactions)
}

// DescribeProducers is a data op: this broker answers for the partitions it holds (the
// gateway sends each partition to its owner).
func (c *Controller) DescribeProducers(ctx context.Context, req *brokerop.DescribeProducersReq) (*brokerop.DescribeProducersResp, error) {
	return c.b.DescribeProducers(ctx, req)
}
