package gateway

// ListGroups (key 16), v0–5, with the states (v4) and types (v5) filters. Every group is of
// type "classic".

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

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
