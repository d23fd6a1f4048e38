package gateway

// Group administration: ListGroups, DescribeGroups and DeleteGroups.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// handleListGroups serves ListGroups (key 16), v0–5, with the states (v4) and types (v5)
// filters. A group is of type "classic" or, for KIP-848 groups, "consumer".
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
	// Authorization: DESCRIBE on the cluster lists every group; otherwise only the groups
	// the principal may DESCRIBE.
	authorized := r.authorizedFn(ctx)
	all := authorized(acl.DescribeCluster, acl.ClusterName)
	for _, g := range bresp.Groups {
		if !all && !authorized(acl.DescribeGroup, g.Group) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.Group, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, rg)
	}
}

// handleDescribeGroups serves DescribeGroups (key 15), v0–6. An unknown group is state "Dead"
// with no error up to v5 and GROUP_ID_NOT_FOUND from v6, as in Kafka. Authorized operations
// (v3+) are the principal's bitfield for the group when asked for, else Kafka's "not
// requested" value.
func handleDescribeGroups(ctx context.Context, r *Request, req *kmsg.DescribeGroupsRequest, resp *kmsg.DescribeGroupsResponse) {
	// Authorization: DESCRIBE on each group (else GROUP_AUTHORIZATION_FAILED, not sent).
	breq := &brokerop.DescribeGroupsReq{}
	sentAt, bresp, code := perGroupCall(ctx, r, acl.DescribeGroup, req.Groups, breq, &breq.Groups, GroupBackend.DescribeGroups,
		func(b *brokerop.DescribeGroupsResp) int { return len(b.Groups) })
	for i, name := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = name
		if sentAt[i] < 0 {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		if code != 0 {
			rg.ErrorCode = code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		g := bresp.Groups[sentAt[i]]
		rg.ErrorCode, rg.State, rg.ProtocolType, rg.Protocol = g.ErrorCode, g.State, g.ProtocolType, g.Protocol
		if req.IncludeAuthorizedOperations && req.Version >= 3 {
			rg.AuthorizedOperations = r.authorizedOps(ctx, acl.ResourceGroup, name)
		}
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
	// Authorization: DELETE on each group (else GROUP_AUTHORIZATION_FAILED, not sent).
	breq := &brokerop.DeleteGroupsReq{}
	sentAt, bresp, code := perGroupCall(ctx, r, acl.DeleteGroup, req.Groups, breq, &breq.Groups, GroupBackend.DeleteGroups,
		func(b *brokerop.DeleteGroupsResp) int { return len(b.Groups) })
	for i, name := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = name, code
		switch {
		case sentAt[i] < 0:
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case code == 0:
			rg.ErrorCode = bresp.Groups[sentAt[i]].ErrorCode
		}
		resp.Groups = append(resp.Groups, rg)
	}
}

// perGroupCall serves the per-group ops (DescribeGroups, DeleteGroups,
// ConsumerGroupDescribe): it appends to sent (breq's group list) the groups the principal
// may have need (a group one) on, sends breq through op when there are any (no call when
// none is allowed), and expects one answer per group sent (answers counts them). sentAt is,
// for each group, its index in sent (-1: refused, GROUP_AUTHORIZATION_FAILED); code is the
// call's (0: bresp has the answers).
func perGroupCall[Req, Resp any](ctx context.Context, r *Request, need acl.Need, groups []string, breq *Req, sent *[]string,
	op func(GroupBackend, context.Context, *Req) (*Resp, error), answers func(*Resp) int) (sentAt []int, bresp *Resp, code int16) {
	authorized := r.authorizedFn(ctx)
	sentAt = make([]int, len(groups))
	for i, g := range groups {
		sentAt[i] = -1
		if authorized(need, g) {
			sentAt[i] = len(*sent)
			*sent = append(*sent, g)
		}
	}
	if len(*sent) == 0 {
		return sentAt, new(Resp), 0
	}
	bresp, code = oneEach(len(*sent), answers)(groupCall(ctx, r, op, breq))
	return sentAt, bresp, code
}
