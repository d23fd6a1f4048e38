package brokermesh

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// InitProducerID asks the controller: its durable counter is the one source of producer ids,
// so ids are unique across the cluster. Sequence state lives with each partition on its
// owning broker, keyed by those ids.
func (c *Cluster) InitProducerID(ctx context.Context, req *brokerop.InitProducerIDReq) (*brokerop.InitProducerIDResp, error) {
	return c.ctl().InitProducerID(ctx, req)
}
