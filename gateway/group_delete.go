package gateway

// DeleteGroups (key 42), v0–2: only groups without members (NON_EMPTY_GROUP), unknown groups
// are GROUP_ID_NOT_FOUND. Their committed offsets are deleted durably before the answer.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

const keyDeleteGroups int16 = 42

func init() {
	Register(API{Key: keyDeleteGroups, MinVersion: 0, MaxVersion: 2, Handle: handleDeleteGroups})
}

func handleDeleteGroups(ctx context.Context, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	breq := &brokerop.DeleteGroupsReq{Groups: req.Groups}
	bresp, code := groupCall(r, func(gb GroupBackend) (*brokerop.DeleteGroupsResp, error) { return gb.DeleteGroups(ctx, breq) })
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
	return resp, nil
}
