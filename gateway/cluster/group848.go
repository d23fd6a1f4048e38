package cluster

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// ConsumerGroupHeartbeat goes to the group coordinator, as the classic group ops do.
func (c *Cluster) ConsumerGroupHeartbeat(ctx context.Context, req *brokerop.ConsumerGroupHeartbeatReq) (*brokerop.ConsumerGroupHeartbeatResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).ConsumerGroupHeartbeat)
}

// ConsumerGroupDescribe goes to the group coordinator.
func (c *Cluster) ConsumerGroupDescribe(ctx context.Context, req *brokerop.ConsumerGroupDescribeReq) (*brokerop.ConsumerGroupDescribeResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).ConsumerGroupDescribe)
}
