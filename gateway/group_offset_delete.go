package gateway

// OffsetDelete (key 47), v0. Offsets of topics the group's consumers subscribe to are refused
// per partition with GROUP_SUBSCRIBED_TO_TOPIC.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleOffsetDelete(ctx context.Context, r *Request, req *kmsg.OffsetDeleteRequest, resp *kmsg.OffsetDeleteResponse) {
	breq := &brokerop.OffsetDeleteReq{Group: req.Group}
	for _, t := range req.Topics {
		bt := brokerop.OffsetDeleteTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			bt.Partitions = append(bt.Partitions, p.Partition)
		}
		breq.Topics = append(breq.Topics, bt)
	}
	bresp, code := groupCall(ctx, r, GroupBackend.OffsetDelete, breq)
	if code == 0 {
		code = bresp.ErrorCode
	}
	resp.ErrorCode = code
	if code != 0 {
		return
	}
	for _, t := range bresp.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, p.ErrorCode
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}
