package controller

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Share groups on a quorum (KIP-932). The share coordinator is the local broker's (package
// broker/share, its state log in the broker's data dir, broker/share_ops.go); every share op
// is routed to the quorum leader and served by the leader's broker, as transaction ops are
// (txn.go; unlike them its state is not on the quorum, see broker/share's doc): the
// coordinator that answers is the one holding the controller role. It reads every partition
// at the broker leading it (shareread.go: the broker's ShareReader), so a share group
// consumes all partitions of its topics wherever they live. Its log is not on the quorum:
// after a failover the new leader starts from its own share state (records in flight on the
// old leader are delivered again).

// ShareGroupHeartbeat runs on the leader's share coordinator.
func (c *Controller) ShareGroupHeartbeat(ctx context.Context, req *brokerop.ShareGroupHeartbeatReq) (*brokerop.ShareGroupHeartbeatResp, error) {
	return route(c, ctx, req, c.b.ShareGroupHeartbeat, brokerop.Service.ShareGroupHeartbeat)
}

// ShareGroupDescribe runs on the leader's share coordinator.
func (c *Controller) ShareGroupDescribe(ctx context.Context, req *brokerop.ShareGroupDescribeReq) (*brokerop.ShareGroupDescribeResp, error) {
	return route(c, ctx, req, c.b.ShareGroupDescribe, brokerop.Service.ShareGroupDescribe)
}

// ShareFetch runs on the leader's share coordinator.
func (c *Controller) ShareFetch(ctx context.Context, req *brokerop.ShareFetchReq) (*brokerop.ShareFetchResp, error) {
	return route(c, ctx, req, c.b.ShareFetch, brokerop.Service.ShareFetch)
}

// ShareAcknowledge runs on the leader's share coordinator.
func (c *Controller) ShareAcknowledge(ctx context.Context, req *brokerop.ShareAcknowledgeReq) (*brokerop.ShareAcknowledgeResp, error) {
	return route(c, ctx, req, c.b.ShareAcknowledge, brokerop.Service.ShareAcknowledge)
}

// DescribeShareGroupOffsets runs on the leader's share coordinator.
func (c *Controller) DescribeShareGroupOffsets(ctx context.Context, req *brokerop.DescribeShareGroupOffsetsReq) (*brokerop.DescribeShareGroupOffsetsResp, error) {
	return route(c, ctx, req, c.b.DescribeShareGroupOffsets, brokerop.Service.DescribeShareGroupOffsets)
}

// AlterShareGroupOffsets runs on the leader's share coordinator.
func (c *Controller) AlterShareGroupOffsets(ctx context.Context, req *brokerop.AlterShareGroupOffsetsReq) (*brokerop.AlterShareGroupOffsetsResp, error) {
	return route(c, ctx, req, c.b.AlterShareGroupOffsets, brokerop.Service.AlterShareGroupOffsets)
}

// DeleteShareGroupOffsets runs on the leader's share coordinator.
func (c *Controller) DeleteShareGroupOffsets(ctx context.Context, req *brokerop.DeleteShareGroupOffsetsReq) (*brokerop.DeleteShareGroupOffsetsResp, error) {
	return route(c, ctx, req, c.b.DeleteShareGroupOffsets, brokerop.Service.DeleteShareGroupOffsets)
}
