package cluster

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Share groups (KIP-932). The share coordinator lives on the controller's broker, like the
// transaction coordinator and the groups: every share op goes there (in quorum mode to any
// broker, which routes it to the leader; see broker/controller/share.go). It reads the
// records it hands out from the controller's own partitions, so share groups consume the
// partitions the controller owns: with one broker, all of them.

// ShareGroupHeartbeat asks the controller's share coordinator.
func (c *Cluster) ShareGroupHeartbeat(ctx context.Context, req *brokerop.ShareGroupHeartbeatReq) (*brokerop.ShareGroupHeartbeatResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).ShareGroupHeartbeat)
}

// ShareGroupDescribe asks the controller's share coordinator.
func (c *Cluster) ShareGroupDescribe(ctx context.Context, req *brokerop.ShareGroupDescribeReq) (*brokerop.ShareGroupDescribeResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).ShareGroupDescribe)
}

// ShareFetch asks the controller's share coordinator.
func (c *Cluster) ShareFetch(ctx context.Context, req *brokerop.ShareFetchReq) (*brokerop.ShareFetchResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).ShareFetch)
}

// ShareAcknowledge asks the controller's share coordinator.
func (c *Cluster) ShareAcknowledge(ctx context.Context, req *brokerop.ShareAcknowledgeReq) (*brokerop.ShareAcknowledgeResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).ShareAcknowledge)
}

// DescribeShareGroupOffsets asks the controller's share coordinator.
func (c *Cluster) DescribeShareGroupOffsets(ctx context.Context, req *brokerop.DescribeShareGroupOffsetsReq) (*brokerop.DescribeShareGroupOffsetsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DescribeShareGroupOffsets)
}

// AlterShareGroupOffsets asks the controller's share coordinator.
func (c *Cluster) AlterShareGroupOffsets(ctx context.Context, req *brokerop.AlterShareGroupOffsetsReq) (*brokerop.AlterShareGroupOffsetsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).AlterShareGroupOffsets)
}

// DeleteShareGroupOffsets asks the controller's share coordinator.
func (c *Cluster) DeleteShareGroupOffsets(ctx context.Context, req *brokerop.DeleteShareGroupOffsetsReq) (*brokerop.DeleteShareGroupOffsetsResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DeleteShareGroupOffsets)
}
