package gateway

// SyncGroup (key 14), v0–5. Followers block until the leader's SyncGroup arrives; v5 checks
// the protocol type and name against the group's.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

const keySyncGroup int16 = 14

func init() {
	Register(API{Key: keySyncGroup, MinVersion: 0, MaxVersion: 5, Handle: handleSyncGroup})
}

func handleSyncGroup(ctx context.Context, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
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
	bresp, code := groupCall(r, func(gb GroupBackend) (*brokerop.SyncGroupResp, error) { return gb.SyncGroup(ctx, breq) })
	if code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	resp.ErrorCode = bresp.ErrorCode
	resp.MemberAssignment = bresp.Assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	if bresp.ErrorCode == 0 {
		resp.ProtocolType, resp.Protocol = nilIfEmpty(bresp.ProtocolType), nilIfEmpty(bresp.Protocol)
	}
	return resp, nil
}
