package cluster

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Transactions. The transaction coordinator lives on the controller, with the producer ids
// and the groups (whose offsets a transaction commits): every transaction op goes there (in
// quorum mode to any broker, which routes it to the quorum leader, whose coordinator keeps
// its state on the metadata quorum and writes markers into each partition's leader; see
// broker/controller/txn.go). DescribeProducers goes to each partition's owner.

// InitTxnProducerID asks the controller's transaction coordinator.
func (c *Cluster) InitTxnProducerID(ctx context.Context, req *brokerop.InitTxnProducerIDReq) (*brokerop.InitProducerIDResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).InitTxnProducerID)
}

// AddPartitionsToTxn asks the controller's transaction coordinator.
func (c *Cluster) AddPartitionsToTxn(ctx context.Context, req *brokerop.AddPartitionsToTxnReq) (*brokerop.TxnResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).AddPartitionsToTxn)
}

// AddOffsetsToTxn asks the controller's transaction coordinator.
func (c *Cluster) AddOffsetsToTxn(ctx context.Context, req *brokerop.AddOffsetsToTxnReq) (*brokerop.TxnResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).AddOffsetsToTxn)
}

// TxnOffsetCommit asks the controller's transaction coordinator.
func (c *Cluster) TxnOffsetCommit(ctx context.Context, req *brokerop.TxnOffsetCommitReq) (*brokerop.TxnResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).TxnOffsetCommit)
}

// EndTxn asks the controller's transaction coordinator.
func (c *Cluster) EndTxn(ctx context.Context, req *brokerop.EndTxnReq) (*brokerop.TxnResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).EndTxn)
}

// ListTransactions asks the controller's transaction coordinator.
func (c *Cluster) ListTransactions(ctx context.Context, req *brokerop.ListTransactionsReq) (*brokerop.ListTransactionsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).ListTransactions)
}

// DescribeTransactions asks the controller's transaction coordinator.
func (c *Cluster) DescribeTransactions(ctx context.Context, req *brokerop.DescribeTransactionsReq) (*brokerop.DescribeTransactionsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DescribeTransactions)
}

// DescribeProducers asks each partition's owner and merges the answers in request order.
func (c *Cluster) DescribeProducers(ctx context.Context, req *brokerop.DescribeProducersReq) (*brokerop.DescribeProducersResp, error) {
	if b, ok := c.single(ctx); ok {
		return b.DescribeProducers(ctx, req)
	}
	groups, errs, err := c.split(ctx, len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition })
	if err != nil {
		return nil, err
	}
	resp := &brokerop.DescribeProducersResp{Partitions: make([]brokerop.DescribeProducersPartition, len(req.Partitions))}
	for i, code := range errs {
		resp.Partitions[i] = brokerop.DescribeProducersPartition{Topic: req.Partitions[i].Topic, Partition: req.Partitions[i].Partition, ErrorCode: code}
	}
	for b, idx := range groups {
		sub := &brokerop.DescribeProducersReq{}
		for _, i := range idx {
			sub.Partitions = append(sub.Partitions, req.Partitions[i])
		}
		sresp, err := b.DescribeProducers(ctx, sub)
		if err != nil {
			return nil, err
		}
		for k, i := range idx {
			if k < len(sresp.Partitions) {
				resp.Partitions[i] = sresp.Partitions[k]
			}
		}
	}
	return resp, nil
}

// WriteMarkers is a broker-to-broker op (the coordinator's markers): not served through the
// gateway.
func (c *Cluster) WriteMarkers(ctx context.Context, req *brokerop.WriteMarkersReq) (*brokerop.TxnResp, error) {
	return brokerop.Unimplemented{}.WriteMarkers(ctx, req)
}

// VerifyTxn asks the controller's transaction coordinator.
func (c *Cluster) VerifyTxn(ctx context.Context, req *brokerop.VerifyTxnReq) (*brokerop.TxnResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).VerifyTxn)
}
