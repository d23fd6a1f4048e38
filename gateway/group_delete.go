package gateway

// DeleteGroups (key 42), v0–2: only groups without members (NON_EMPTY_GROUP), unknown groups
// are GROUP_ID_NOT_FOUND. Their committed offsets are deleted durably before the answer.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

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
