package cluster

import (
	"context"
	"errors"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// InitProducerID asks the controller: its durable counter is the one source of producer ids,
// so ids are unique across the cluster. Sequence state lives with each partition on its
// owning broker, keyed by those ids.
//
// A controller that does not serve the op (a broker from before idempotence: it answers
// StatusUnknownOp, or resets the stream with ErrCodeUnknownOp when it does not know the tag)
// gets producer id -1, epoch -1 and no error: clients then produce without idempotence, as
// against a Kafka broker too old for it, instead of retrying forever.
func (c *Cluster) InitProducerID(ctx context.Context, req *brokerop.InitProducerIDReq) (*brokerop.InitProducerIDResp, error) {
	resp, err := ctlDo(ctx, c, false, req, (*Broker).InitProducerID)
	if err != nil && opUnknown(err) {
		return &brokerop.InitProducerIDResp{ProducerID: -1, ProducerEpoch: -1}, nil
	}
	return resp, err
}

// opUnknown reports whether err says the broker does not serve the op at all.
func opUnknown(err error) bool {
	var ce *brokermesh.CallError
	if errors.As(err, &ce) {
		return ce.Status == brokerop.StatusUnknownOp
	}
	var se *quic.StreamError
	return errors.As(err, &se) && se.Remote && se.ErrorCode == brokermesh.ErrCodeUnknownOp
}
