package gateway

// Heartbeat (key 12), v0–4.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

const keyHeartbeat int16 = 12

func init() {
	Register(API{Key: keyHeartbeat, MinVersion: 0, MaxVersion: 4, Handle: handleHeartbeat})
}

func handleHeartbeat(ctx context.Context, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	breq := &brokerop.HeartbeatReq{Group: req.Group, MemberID: req.MemberID, InstanceID: strOrEmpty(req.InstanceID), Generation: req.Generation}
	bresp, code := groupCall(r, func(gb GroupBackend) (*brokerop.HeartbeatResp, error) { return gb.Heartbeat(ctx, breq) })
	if code == 0 {
		code = bresp.ErrorCode
	}
	resp.ErrorCode = code
	return resp, nil
}
