package gateway

// Group administration: ListGroups, DescribeGroups and DeleteGroups.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// handleListGroups serves ListGroups (key 16), v0–5, with the states (v4) and types (v5)
// filters. Every group is of type "classic".
func handleListGroups(ctx context.Context, r *Request, req *kmsg.ListGroupsRequest, resp *kmsg.ListGroupsResponse) {
	breq := &brokerop.ListGroupsReq{StatesFilter: req.StatesFilter, TypesFilter: req.TypesFilter}
	bresp, code := groupCall(ctx, r, GroupBackend.ListGroups, breq)
	if code == 0 {
		code = bresp.ErrorCode
	}
	resp.ErrorCode = code
	if code != 0 {
		return
	}
	for _, g := range bresp.Groups {
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.Group, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, rg)
	}
}

// handleDescribeGroups serves DescribeGroups (key 15), v0–6. An unknown group is state "Dead"
// with no error up to v5 and GROUP_ID_NOT_FOUND from v6, as in Kafka. Authorized operations
// (v3+) are not computed (there are no ACLs): the field keeps Kafka's "not requested" value.
func handleDescribeGroups(ctx context.Context, r *Request, req *kmsg.DescribeGroupsRequest, resp *kmsg.DescribeGroupsResponse) {
	breq := &brokerop.DescribeGroupsReq{Groups: req.Groups}
	bresp, code := groupCall(ctx, r, GroupBackend.DescribeGroups, breq)
	if code == 0 && len(bresp.Groups) != len(req.Groups) {
		code = kafkawire.ErrUnknownServerError // a backend answer that does not match the request
	}
	for i, name := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = name
		if code != 0 {
			rg.ErrorCode = code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		g := bresp.Groups[i]
		rg.ErrorCode, rg.State, rg.ProtocolType, rg.Protocol = g.ErrorCode, g.State, g.ProtocolType, g.Protocol
		if req.Version >= 6 && g.ErrorCode == 0 && g.State == "Dead" {
			rg.ErrorCode = errGroupIDNotFound
			rg.ErrorMessage = nilIfEmpty("group " + name + " not found")
		}
		for _, m := range g.Members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, nilIfEmpty(m.InstanceID), m.ClientID, m.ClientHost
			rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
			if rm.ProtocolMetadata == nil {
				rm.ProtocolMetadata = []byte{}
			}
			if rm.MemberAssignment == nil {
				rm.MemberAssignment = []byte{}
			}
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
}

// handleDeleteGroups serves DeleteGroups (key 42), v0–2: only groups without members
// (NON_EMPTY_GROUP), unknown groups are GROUP_ID_NOT_FOUND. Their committed offsets are deleted
// durably before the answer.
func handleDeleteGroups(ctx context.Context, r *Request, req *kmsg.DeleteGroupsRequest, resp *kmsg.DeleteGroupsResponse) {
	breq := &brokerop.DeleteGroupsReq{Groups: req.Groups}
	bresp, code := groupCall(ctx, r, GroupBackend.DeleteGroups, breq)
	if code == 0 && len(bresp.Groups) != len(req.Groups) {
		code = kafkawire.ErrUnknownServerError // a backend answer that does not match the request
	}
	for i, name := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = name, code
		if code == 0 {
			rg.ErrorCode = bresp.Groups[i].ErrorCode
		}
		resp.Groups = append(resp.Groups, rg)
	}
}
