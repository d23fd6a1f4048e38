package gateway

// Heartbeat (key 12), v0–4.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleHeartbeat(ctx context.Context, r *Request, req *kmsg.HeartbeatRequest, resp *kmsg.HeartbeatResponse) {
	breq := &brokerop.HeartbeatReq{Group: req.Group, MemberID: req.MemberID, InstanceID: strOrEmpty(req.InstanceID), Generation: req.Generation}
	bresp, code := groupCall(ctx, r, GroupBackend.Heartbeat, breq)
	if code == 0 {
		code = bresp.ErrorCode
	}
	resp.ErrorCode = code
}
