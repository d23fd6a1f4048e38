package gateway

// Consumer-group membership: JoinGroup, SyncGroup, Heartbeat and LeaveGroup.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// handleJoinGroup serves JoinGroup (key 11), v0–9. v0 has no rebalance timeout (the session
// timeout is used); v4+ makes a new dynamic member rejoin with the id it is given
// (MEMBER_ID_REQUIRED, KIP-394); v5+ carries group.instance.id. SkipAssignment (v9) is always
// false: a static leader that rejoins a stable group is told the previous leader id instead
// (see broker/group).
func handleJoinGroup(ctx context.Context, r *Request, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse) {
	if !r.Authorized(ctx, acl.GroupMember, req.Group) {
		resp.ErrorCode, resp.Generation, resp.MemberID = kerr.GroupAuthorizationFailed.Code, -1, req.MemberID
		return
	}
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

// handleSyncGroup serves SyncGroup (key 14), v0–5. Followers block until the leader's SyncGroup
// arrives; v5 checks the protocol type and name against the group's.
func handleSyncGroup(ctx context.Context, r *Request, req *kmsg.SyncGroupRequest, resp *kmsg.SyncGroupResponse) {
	if !r.Authorized(ctx, acl.GroupMember, req.Group) {
		resp.ErrorCode, resp.MemberAssignment = kerr.GroupAuthorizationFailed.Code, []byte{}
		return
	}
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

// handleHeartbeat serves Heartbeat (key 12), v0–4.
func handleHeartbeat(ctx context.Context, r *Request, req *kmsg.HeartbeatRequest, resp *kmsg.HeartbeatResponse) {
	if !r.Authorized(ctx, acl.GroupMember, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return
	}
	breq := &brokerop.HeartbeatReq{Group: req.Group, MemberID: req.MemberID, InstanceID: strOrEmpty(req.InstanceID), Generation: req.Generation}
	bresp, code := groupCall(ctx, r, GroupBackend.Heartbeat, breq)
	if code == 0 {
		code = bresp.ErrorCode
	}
	resp.ErrorCode = code
}

// handleLeaveGroup serves LeaveGroup (key 13), v0–5. v0–2 carry one member id and report its
// outcome as the top-level error; v3+ batch members (static members may leave by instance id)
// with per-member errors.
func handleLeaveGroup(ctx context.Context, r *Request, req *kmsg.LeaveGroupRequest, resp *kmsg.LeaveGroupResponse) {
	if !r.Authorized(ctx, acl.GroupMember, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return
	}
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
