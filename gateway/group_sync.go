package gateway

// SyncGroup (key 14), v0–5. Followers block until the leader's SyncGroup arrives; v5 checks
// the protocol type and name against the group's.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleSyncGroup(ctx context.Context, r *Request, req *kmsg.SyncGroupRequest, resp *kmsg.SyncGroupResponse) {
	breq := &brokerop.SyncGroupReq{
		Group:        req.Group,
		MemberID:     req.MemberID,
		InstanceID:   strOrEmpty(req.InstanceID),
		Generation:   req.Generation,
		ProtocolType: strOrEmpty(req.ProtocolType),
		Protocol:     strOrEmpty(req.Protocol),
	}
	for _, a := range req.GroupAssignment {
		breq.Assignments = append(breq.Assignments, brokerop.SyncGroupAssignment{MemberID: a.MemberID, Assignment: a.MemberAssignment})
	}
	bresp, code := groupCall(ctx, r, GroupBackend.SyncGroup, breq)
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	resp.ErrorCode = bresp.ErrorCode
	resp.MemberAssignment = bresp.Assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	if bresp.ErrorCode == 0 {
		resp.ProtocolType, resp.Protocol = nilIfEmpty(bresp.ProtocolType), nilIfEmpty(bresp.Protocol)
	}
}
