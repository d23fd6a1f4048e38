package gateway

// ListOffsets (key 2), v0–7.
//
//   - v0 answers the old offsets[] shape: one offset (the one v1+ would answer) when
//     max_num_offsets is at least 1 and the lookup found one, else an empty list. Kafka's v0
//     could also list older segment base offsets; clients ask for one (librdkafka,
//     kafka-python), so one is what we answer.
//   - Timestamps -1 (latest), -2 (earliest), -3 (max timestamp, v7+) and real timestamps go to
//     the backend as given; it answers offset -1 when no record matches a timestamp.
//   - Leader epoch (v4+) is 0, as in Metadata.
//   - A backend failure answers every partition with BackendErrorCode(err).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleListOffsets(ctx context.Context, r *Request, req *kmsg.ListOffsetsRequest, resp *kmsg.ListOffsetsResponse) {
	breq := &brokerop.ListOffsetsReq{IsolationLevel: req.IsolationLevel}
	// No DESCRIBE: TOPIC_AUTHORIZATION_FAILED.
	denied := topicsDenied(ctx, r, acl.DescribeTopic, len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	for i, t := range req.Topics {
		if denied[i] {
			continue
		}
		for _, p := range t.Partitions {
			breq.Partitions = append(breq.Partitions, brokerop.ListOffsetsPartition{Topic: t.Topic, Partition: p.Partition, Timestamp: p.Timestamp, CurrentLeaderEpoch: p.CurrentLeaderEpoch})
		}
	}
	bresp, errCode := backendCall(len(breq.Partitions), func() (*brokerop.ListOffsetsResp, error) {
		return r.Server.Backend().ListOffsets(ctx, breq)
	}, func(b *brokerop.ListOffsetsResp) int { return len(b.Partitions) })
	k := 0
	for i, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition = p.Partition
			if denied[i] {
				rp.ErrorCode, rp.Timestamp, rp.Offset = kerr.TopicAuthorizationFailed.Code, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			if errCode != 0 {
				rp.ErrorCode, rp.Timestamp, rp.Offset = errCode, -1, -1
			} else {
				bp := &bresp.Partitions[k]
				rp.ErrorCode, rp.Timestamp, rp.Offset, rp.LeaderEpoch = bp.ErrorCode, bp.Timestamp, bp.Offset, 0
			}
			if req.Version == 0 {
				rp.OldStyleOffsets = []int64{}
				if rp.ErrorCode == 0 && rp.Offset >= 0 && p.MaxNumOffsets > 0 {
					rp.OldStyleOffsets = append(rp.OldStyleOffsets, rp.Offset)
				}
			}
			k++
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}
