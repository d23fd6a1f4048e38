package gateway

// OffsetFetch (key 9), v0–9. v0 is served like v1. Topics null (v2+) means every committed
// partition of the group. v8+ batch groups (one backend call per group). The member id and
// epoch of v9 belong to the KIP-848 consumer protocol and are ignored for classic groups, as
// Kafka does for a member epoch of -1. A partition without a commit has offset -1.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// fetchGroupOffsets answers one group; topics nil means all.
func fetchGroupOffsets(ctx context.Context, r *Request, group string, topics []brokerop.OffsetFetchTopic, requireStable bool) (*brokerop.OffsetFetchResp, int16) {
	breq := &brokerop.OffsetFetchReq{Group: group, Topics: topics, RequireStable: requireStable}
	bresp, code := groupCall(ctx, r, GroupBackend.OffsetFetch, breq)
	if code == 0 && bresp.ErrorCode != 0 {
		code = bresp.ErrorCode
	}
	if code != 0 {
		// Answer each requested partition with the error (v0–1 have no group-level code).
		bresp = &brokerop.OffsetFetchResp{ErrorCode: code}
		for _, t := range topics {
			bt := brokerop.OffsetFetchTopicResp{Topic: t.Topic}
			for _, p := range t.Partitions {
				bt.Partitions = append(bt.Partitions, brokerop.OffsetFetchPartitionResp{Partition: p, Offset: -1, LeaderEpoch: -1, ErrorCode: code})
			}
			bresp.Topics = append(bresp.Topics, bt)
		}
	}
	return bresp, code
}

func handleOffsetFetch(ctx context.Context, r *Request, req *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse) {
	if req.Version >= 8 {
		for _, g := range req.Groups {
			var topics []brokerop.OffsetFetchTopic
			if g.Topics != nil {
				topics = []brokerop.OffsetFetchTopic{}
				for _, t := range g.Topics {
					topics = append(topics, brokerop.OffsetFetchTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			bresp, code := fetchGroupOffsets(ctx, r, g.Group, topics, req.RequireStable)
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			for _, t := range bresp.Topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.ErrorCode
					md := p.Metadata
					rp.Metadata = &md
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return
	}
	var topics []brokerop.OffsetFetchTopic
	if req.Topics != nil || req.Version < 2 {
		topics = []brokerop.OffsetFetchTopic{}
		for _, t := range req.Topics {
			topics = append(topics, brokerop.OffsetFetchTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	bresp, code := fetchGroupOffsets(ctx, r, req.Group, topics, req.RequireStable)
	resp.ErrorCode = code
	for _, t := range bresp.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.ErrorCode
			md := p.Metadata
			rp.Metadata = &md
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}
