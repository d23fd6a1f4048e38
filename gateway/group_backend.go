package gateway

// Consumer-group APIs (files group_*.go). They reach the coordinator by type-asserting the
// server's Backend to GroupBackend; when the Backend has no group support, every group API
// answers COORDINATOR_NOT_AVAILABLE, and a Go error from a GroupBackend call is answered with
// NOT_COORDINATOR, which makes clients look the coordinator up again and retry.
//
// Versions served (the flexible ones current clients negotiate included):
// FindCoordinator v0–6, JoinGroup v0–9, SyncGroup v0–5, Heartbeat v0–4, LeaveGroup v0–5,
// OffsetCommit v0–9, OffsetFetch v0–9, ListGroups v0–5, DescribeGroups v0–6,
// DeleteGroups v0–2, OffsetDelete v0. OffsetCommit and OffsetFetch v10 (topic ids) are not
// advertised. v0 OffsetCommit/OffsetFetch (ZooKeeper-era) are served like v1 with a
// generation-less "simple" commit. The gateway is every group's coordinator.

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// GroupBackend is what the group APIs need from the backend (broker/group.Coordinator
// implements it). JoinGroup and SyncGroup block until the rebalance step completes.
type GroupBackend interface {
	JoinGroup(ctx context.Context, req *brokerop.JoinGroupReq) (*brokerop.JoinGroupResp, error)
	SyncGroup(ctx context.Context, req *brokerop.SyncGroupReq) (*brokerop.SyncGroupResp, error)
	Heartbeat(ctx context.Context, req *brokerop.HeartbeatReq) (*brokerop.HeartbeatResp, error)
	LeaveGroup(ctx context.Context, req *brokerop.LeaveGroupReq) (*brokerop.LeaveGroupResp, error)
	OffsetCommit(ctx context.Context, req *brokerop.OffsetCommitReq) (*brokerop.OffsetCommitResp, error)
	OffsetFetch(ctx context.Context, req *brokerop.OffsetFetchReq) (*brokerop.OffsetFetchResp, error)
	ListGroups(ctx context.Context, req *brokerop.ListGroupsReq) (*brokerop.ListGroupsResp, error)
	DescribeGroups(ctx context.Context, req *brokerop.DescribeGroupsReq) (*brokerop.DescribeGroupsResp, error)
	DeleteGroups(ctx context.Context, req *brokerop.DeleteGroupsReq) (*brokerop.DeleteGroupsResp, error)
	OffsetDelete(ctx context.Context, req *brokerop.OffsetDeleteReq) (*brokerop.OffsetDeleteResp, error)
}

// Kafka error codes used only by the group APIs.
const (
	errGroupIDNotFound int16 = 69
)

// groupBackend returns the server's GroupBackend, or ok=false when it has none.
func groupBackend(r *Request) (GroupBackend, bool) {
	gb, ok := r.Server.Backend().(GroupBackend)
	return gb, ok
}

// groupCall runs one GroupBackend call and reduces "no group support" and call failures to
// the Kafka error code to answer with (0 when resp is valid).
func groupCall[Resp any](r *Request, call func(GroupBackend) (*Resp, error)) (*Resp, int16) {
	gb, ok := groupBackend(r)
	if !ok {
		return nil, kafkawire.ErrCoordinatorNotAvailable
	}
	resp, err := call(gb)
	if err != nil {
		r.Server.Logger().Debug("group backend call failed", "key", r.Header.APIKey, "err", err)
		return nil, kafkawire.ErrNotCoordinator
	}
	return resp, 0
}

func strOrEmpty(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
