package gateway

// LeaveGroup (key 13), v0–5. v0–2 carry one member id and report its outcome as the
// top-level error; v3+ batch members (static members may leave by instance id) with
// per-member errors.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

const keyLeaveGroup int16 = 13

func init() {
	Register(API{Key: keyLeaveGroup, MinVersion: 0, MaxVersion: 5, Handle: handleLeaveGroup})
}

func handleLeaveGroup(ctx context.Context, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	breq := &brokerop.LeaveGroupReq{Group: req.Group}
	if req.Version < 3 {
		breq.Members = []brokerop.LeaveGroupMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			breq.Members = append(breq.Members, brokerop.LeaveGroupMember{MemberID: m.MemberID, InstanceID: strOrEmpty(m.InstanceID), Reason: strOrEmpty(m.Reason)})
		}
	}
	bresp, code := groupCall(r, func(gb GroupBackend) (*brokerop.LeaveGroupResp, error) { return gb.LeaveGroup(ctx, breq) })
	if code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	resp.ErrorCode = bresp.ErrorCode
	if req.Version < 3 {
		if resp.ErrorCode == 0 && len(bresp.Members) == 1 {
			resp.ErrorCode = bresp.Members[0].ErrorCode
		}
		return resp, nil
	}
	for _, m := range bresp.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, nilIfEmpty(m.InstanceID), m.ErrorCode
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
