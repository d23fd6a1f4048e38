package controller

import (
	"context"
	"errors"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Share groups on a quorum (KIP-932). Every share op is routed to the quorum leader and
// served by its broker's share ops with the quorum's share coordinator installed
// (sharestate.go: its state is on the quorum, so a new leader serves every share group from
// where the lost one left it), as transaction ops are (txn.go). The coordinator reads every
// partition at the broker leading it (shareread.go: the broker's ShareReader), so a share
// group consumes all partitions of its topics wherever they live.

// errNoShareCoordinator fails a share op on a leader whose share coordinator is not running
// yet (retriable).
var errNoShareCoordinator = errors.New("controller: share coordinator not available yet")

// shareLocal runs a share op on this broker with the live quorum share coordinator
// installed.
func shareLocal[Req, Resp any](c *Controller, op func(context.Context, *Req) (*Resp, error)) func(context.Context, *Req) (*Resp, error) {
	return func(ctx context.Context, req *Req) (*Resp, error) {
		if c.shareCoordinator() == nil {
			return nil, errNoShareCoordinator
		}
		return op(ctx, req)
	}
}

// ShareGroupHeartbeat runs on the leader's share coordinator.
func (c *Controller) ShareGroupHeartbeat(ctx context.Context, req *brokerop.ShareGroupHeartbeatReq) (*brokerop.ShareGroupHeartbeatResp, error) {
	return route(c, ctx, req, shareLocal(c, c.b.ShareGroupHeartbeat), brokerop.Service.ShareGroupHeartbeat)
}

// ShareGroupDescribe runs on the leader's share coordinator.
func (c *Controller) ShareGroupDescribe(ctx context.Context, req *brokerop.ShareGroupDescribeReq) (*brokerop.ShareGroupDescribeResp, error) {
	return route(c, ctx, req, shareLocal(c, c.b.ShareGroupDescribe), brokerop.Service.ShareGroupDescribe)
}

// ShareFetch runs on the leader's share coordinator.
func (c *Controller) ShareFetch(ctx context.Context, req *brokerop.ShareFetchReq) (*brokerop.ShareFetchResp, error) {
	return route(c, ctx, req, shareLocal(c, c.b.ShareFetch), brokerop.Service.ShareFetch)
}

// ShareAcknowledge runs on the leader's share coordinator.
func (c *Controller) ShareAcknowledge(ctx context.Context, req *brokerop.ShareAcknowledgeReq) (*brokerop.ShareAcknowledgeResp, error) {
	return route(c, ctx, req, shareLocal(c, c.b.ShareAcknowledge), brokerop.Service.ShareAcknowledge)
}

// DescribeShareGroupOffsets runs on the leader's share coordinator.
func (c *Controller) DescribeShareGroupOffsets(ctx context.Context, req *brokerop.DescribeShareGroupOffsetsReq) (*brokerop.DescribeShareGroupOffsetsResp, error) {
	return route(c, ctx, req, shareLocal(c, c.b.DescribeShareGroupOffsets), brokerop.Service.DescribeShareGroupOffsets)
}

// AlterShareGroupOffsets runs on the leader's share coordinator.
func (c *Controller) AlterShareGroupOffsets(ctx context.Context, req *brokerop.AlterShareGroupOffsetsReq) (*brokerop.AlterShareGroupOffsetsResp, error) {
	return route(c, ctx, req, shareLocal(c, c.b.AlterShareGroupOffsets), brokerop.Service.AlterShareGroupOffsets)
}

// DeleteShareGroupOffsets runs on the leader's share coordinator.
func (c *Controller) DeleteShareGroupOffsets(ctx context.Context, req *brokerop.DeleteShareGroupOffsetsReq) (*brokerop.DeleteShareGroupOffsetsResp, error) {
	return route(c, ctx, req, shareLocal(c, c.b.DeleteShareGroupOffsets), brokerop.Service.DeleteShareGroupOffsets)
}
