package gateway

// OffsetCommit (key 8), v0–9. v0 (ZooKeeper-era, no generation) is a generation-less
// "simple" commit. The per-partition retention (v2–4) and commit timestamp (v1) are ignored:
// committed offsets do not expire. The response is sent once the offsets are durable.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func handleOffsetCommit(ctx context.Context, r *Request, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse) {
	breq := &brokerop.OffsetCommitReq{Group: req.Group, MemberID: req.MemberID, InstanceID: strOrEmpty(req.InstanceID), Generation: req.Generation}
	if req.Version == 0 {
		breq.MemberID, breq.Generation = "", -1
	}
	for _, t := range req.Topics {
		bt := brokerop.OffsetCommitTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if req.Version < 6 {
				epoch = -1
			}
			bt.Partitions = append(bt.Partitions, brokerop.OffsetCommitPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: epoch, Metadata: strOrEmpty(p.Metadata)})
		}
		breq.Topics = append(breq.Topics, bt)
	}
	bresp, code := groupCall(ctx, r, GroupBackend.OffsetCommit, breq)
	if code == 0 && !sameShape(bresp, req) {
		code = kafkawire.ErrUnknownServerError // a backend answer that does not match the request
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = code
			if code == 0 {
				rp.ErrorCode = bresp.Topics[i].Partitions[j].ErrorCode
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func sameShape(bresp *brokerop.OffsetCommitResp, req *kmsg.OffsetCommitRequest) bool {
	if len(bresp.Topics) != len(req.Topics) {
		return false
	}
	for i := range req.Topics {
		if len(bresp.Topics[i].Partitions) != len(req.Topics[i].Partitions) {
			return false
		}
	}
	return true
}
