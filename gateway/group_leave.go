package gateway

// LeaveGroup (key 13), v0–5. v0–2 carry one member id and report its outcome as the
// top-level error; v3+ batch members (static members may leave by instance id) with
// per-member errors.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleLeaveGroup(ctx context.Context, r *Request, req *kmsg.LeaveGroupRequest, resp *kmsg.LeaveGroupResponse) {
	breq := &brokerop.LeaveGroupReq{Group: req.Group}
	if req.Version < 3 {
		breq.Members = []brokerop.LeaveGroupMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			breq.Members = append(breq.Members, brokerop.LeaveGroupMember{MemberID: m.MemberID, InstanceID: strOrEmpty(m.InstanceID), Reason: strOrEmpty(m.Reason)})
		}
	}
	bresp, code := groupCall(ctx, r, GroupBackend.LeaveGroup, breq)
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	resp.ErrorCode = bresp.ErrorCode
	if req.Version < 3 {
		if resp.ErrorCode == 0 && len(bresp.Members) == 1 {
			resp.ErrorCode = bresp.Members[0].ErrorCode
		}
		return
	}
	for _, m := range bresp.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, nilIfEmpty(m.InstanceID), m.ErrorCode
		resp.Members = append(resp.Members, rm)
	}
}
