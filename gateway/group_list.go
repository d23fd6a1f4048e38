package gateway

// ListGroups (key 16), v0–5, with the states (v4) and types (v5) filters. Every group is of
// type "classic".

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

const keyListGroups int16 = 16

func init() {
	Register(API{Key: keyListGroups, MinVersion: 0, MaxVersion: 5, Handle: handleListGroups})
}

func handleListGroups(ctx context.Context, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	breq := &brokerop.ListGroupsReq{StatesFilter: req.StatesFilter, TypesFilter: req.TypesFilter}
	bresp, code := groupCall(r, func(gb GroupBackend) (*brokerop.ListGroupsResp, error) { return gb.ListGroups(ctx, breq) })
	if code == 0 {
		code = bresp.ErrorCode
	}
	resp.ErrorCode = code
	if code != 0 {
		return resp, nil
	}
	for _, g := range bresp.Groups {
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.Group, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}
