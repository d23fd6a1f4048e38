package controller

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
)

// ConsumerGroupHeartbeat (KIP-848) runs on the leader's coordinator, like the classic group
// ops: the consumer group lives in the same coordinator as classic groups and offsets.
func (c *Controller) ConsumerGroupHeartbeat(ctx context.Context, req *brokerop.ConsumerGroupHeartbeatReq) (*brokerop.ConsumerGroupHeartbeatResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).ConsumerGroupHeartbeat, brokerop.Service.ConsumerGroupHeartbeat)
}

// ConsumerGroupDescribe runs on the leader's coordinator.
func (c *Controller) ConsumerGroupDescribe(ctx context.Context, req *brokerop.ConsumerGroupDescribeReq) (*brokerop.ConsumerGroupDescribeResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).ConsumerGroupDescribe, brokerop.Service.ConsumerGroupDescribe)
}
