package gateway

// JoinGroup (key 11), v0–9. v0 has no rebalance timeout (the session timeout is used); v4+
// makes a new dynamic member rejoin with the id it is given (MEMBER_ID_REQUIRED, KIP-394);
// v5+ carries group.instance.id. SkipAssignment (v9) is always false: a static leader that
// rejoins a stable group is told the previous leader id instead (see broker/group).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleJoinGroup(ctx context.Context, r *Request, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse) {
	breq := &brokerop.JoinGroupReq{
		Group:                req.Group,
		MemberID:             req.MemberID,
		InstanceID:           strOrEmpty(req.InstanceID),
		ClientID:             r.Header.ClientID,
		ProtocolType:         req.ProtocolType,
		SessionTimeoutMs:     req.SessionTimeoutMillis,
		RebalanceTimeoutMs:   req.RebalanceTimeoutMillis,
		RequireKnownMemberID: req.Version >= 4,
		Reason:               strOrEmpty(req.Reason),
	}
	if req.Version == 0 {
		breq.RebalanceTimeoutMs = req.SessionTimeoutMillis
	}
	for _, p := range req.Protocols {
		breq.Protocols = append(breq.Protocols, brokerop.GroupProtocol{Name: p.Name, Metadata: p.Metadata})
	}
	bresp, code := groupCall(ctx, r, GroupBackend.JoinGroup, breq)
	if code != 0 {
		resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, req.MemberID
		return
	}
	resp.ErrorCode = bresp.ErrorCode
	resp.Generation = bresp.Generation
	resp.MemberID = bresp.MemberID
	resp.LeaderID = bresp.LeaderID
	if bresp.ErrorCode == 0 {
		resp.ProtocolType = nilIfEmpty(bresp.ProtocolType)
		p := bresp.Protocol
		resp.Protocol = &p
	}
	for _, m := range bresp.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, nilIfEmpty(m.InstanceID), m.Metadata
		resp.Members = append(resp.Members, rm)
	}
}
