package group

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// ConsumerGroupHeartbeat serves a KIP-848 ConsumerGroupHeartbeat (answered at once: nothing
// of a consumer group's membership is written to the offset log).
func (c *Coordinator) ConsumerGroupHeartbeat(ctx context.Context, req *brokerop.ConsumerGroupHeartbeatReq) (*brokerop.ConsumerGroupHeartbeatResp, error) {
	return doTyped[brokerop.ConsumerGroupHeartbeatReq, brokerop.ConsumerGroupHeartbeatResp](c, ctx, req, (*Machine).ConsumerGroupHeartbeat)
}

// ConsumerGroupDescribe serves a ConsumerGroupDescribe request.
func (c *Coordinator) ConsumerGroupDescribe(ctx context.Context, req *brokerop.ConsumerGroupDescribeReq) (*brokerop.ConsumerGroupDescribeResp, error) {
	return doTyped[brokerop.ConsumerGroupDescribeReq, brokerop.ConsumerGroupDescribeResp](c, ctx, req, (*Machine).ConsumerGroupDescribe)
}
