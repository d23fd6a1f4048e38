package gateway

// Log and quota administration: DeleteRecords (key 21, v0–2), OffsetForLeaderEpoch (key 23,
// v0–4), DescribeLogDirs (key 35, v0–4), DescribeClientQuotas (key 48, v0–1) and
// AlterClientQuotas (key 49, v0–1).
//
//   - DeleteRecords moves log start offsets (offset -1: the high watermark); reads below the
//     start answer OFFSET_OUT_OF_RANGE and ListOffsets earliest answers it.
//   - OffsetForLeaderEpoch is answered by the broker holding the partition: a single-owner
//     partition has had leader epoch 0 since it was created (Metadata says so), so epoch 0
//     ends at the log end offset, other epochs are undefined (-1, -1) and a
//     current_leader_epoch (v2+) above 0 is UNKNOWN_LEADER_EPOCH; a replicated partition's
//     epochs are its raft terms and its leader checks current_leader_epoch
//     (FENCED_LEADER_EPOCH below its own, UNKNOWN_LEADER_EPOCH above). Sessionless Fetch and
//     ListOffsets pass current_leader_epoch to the broker the same way.
//   - DescribeLogDirs lists the broker's data directory (with several brokers behind the
//     gateway, each one's), each partition's bytes on disk and offset lag 0.
//   - Client quotas are stored durably by the broker (the controller over the mesh); the
//     gateway enforces producer_byte_rate and consumer_byte_rate (quota.go).
//   - A backend failure answers every entry with BackendErrorCode(err).
//   - Authorization (authz.go), as Kafka: DeleteRecords DELETE and OffsetForLeaderEpoch
//     DESCRIBE on each topic (TOPIC_AUTHORIZATION_FAILED, not sent), DescribeLogDirs DESCRIBE,
//     DescribeClientQuotas DESCRIBE_CONFIGS and AlterClientQuotas ALTER_CONFIGS on the
//     cluster (CLUSTER_AUTHORIZATION_FAILED).

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleDeleteRecords(ctx context.Context, r *Request, req *kmsg.DeleteRecordsRequest, resp *kmsg.DeleteRecordsResponse) {
	breq := &brokerop.DeleteRecordsReq{TimeoutMs: req.TimeoutMillis}
	denied := topicsDenied(ctx, r, acl.DeleteTopic, len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	for i, t := range req.Topics {
		if denied[i] {
			continue
		}
		for _, p := range t.Partitions {
			breq.Partitions = append(breq.Partitions, brokerop.DeleteRecordsPartition{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset})
		}
	}
	bresp, errCode := backendCall(len(breq.Partitions), func() (*brokerop.DeleteRecordsResp, error) {
		return r.Server.Backend().DeleteRecords(ctx, breq)
	}, func(b *brokerop.DeleteRecordsResp) int { return len(b.Partitions) })
	k := 0
	for i, t := range req.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.LowWatermark = p.Partition, -1
			if denied[i] {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			if errCode != 0 {
				rp.ErrorCode = errCode
			} else {
				rp.ErrorCode, rp.LowWatermark = bresp.Partitions[k].ErrorCode, bresp.Partitions[k].LowWatermark
			}
			k++
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func handleOffsetForLeaderEpoch(ctx context.Context, r *Request, req *kmsg.OffsetForLeaderEpochRequest, resp *kmsg.OffsetForLeaderEpochResponse) {
	breq := &brokerop.OffsetForLeaderEpochReq{}
	denied := topicsDenied(ctx, r, acl.DescribeTopic, len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	for i, t := range req.Topics {
		if denied[i] {
			continue
		}
		for _, p := range t.Partitions {
			breq.Partitions = append(breq.Partitions, brokerop.OffsetForLeaderEpochPartition{Topic: t.Topic, Partition: p.Partition, LeaderEpoch: p.LeaderEpoch, CurrentLeaderEpoch: p.CurrentLeaderEpoch})
		}
	}
	bresp, errCode := backendCall(len(breq.Partitions), func() (*brokerop.OffsetForLeaderEpochResp, error) {
		return r.Server.Backend().OffsetForLeaderEpoch(ctx, breq)
	}, func(b *brokerop.OffsetForLeaderEpochResp) int { return len(b.Partitions) })
	k := 0
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.EndOffset = p.Partition, -1, -1
			if denied[i] {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			switch {
			case errCode != 0:
				rp.ErrorCode = errCode
			default: // the broker checks CurrentLeaderEpoch (v2+; -1 before)
				bp := &bresp.Partitions[k]
				rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = bp.ErrorCode, bp.LeaderEpoch, bp.EndOffset
			}
			k++
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func handleDescribeLogDirs(ctx context.Context, r *Request, req *kmsg.DescribeLogDirsRequest, resp *kmsg.DescribeLogDirsResponse) {
	breq := &brokerop.DescribeLogDirsReq{All: req.Topics == nil}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			breq.Partitions = append(breq.Partitions, brokerop.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	if !r.authorizedCluster(ctx, acl.DescribeCluster) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code // v3+; older versions get no directories
		return
	}
	bresp, err := r.Server.Backend().DescribeLogDirs(ctx, breq)
	if err != nil {
		resp.ErrorCode = BackendErrorCode(err) // v3+; older versions get no directories
		return
	}
	for _, d := range bresp.Dirs {
		rd := kmsg.NewDescribeLogDirsResponseDir()
		rd.Dir, rd.ErrorCode, rd.TotalBytes, rd.UsableBytes = d.Path, d.ErrorCode, d.TotalBytes, d.UsableBytes
		byTopic := map[string]int{}
		for _, p := range d.Partitions {
			i, ok := byTopic[p.Topic]
			if !ok {
				i = len(rd.Topics)
				byTopic[p.Topic] = i
				rt := kmsg.NewDescribeLogDirsResponseDirTopic()
				rt.Topic = p.Topic
				rd.Topics = append(rd.Topics, rt)
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size, rp.OffsetLag = p.Partition, p.Size, p.OffsetLag
			rd.Topics[i].Partitions = append(rd.Topics[i].Partitions, rp)
		}
		resp.Dirs = append(resp.Dirs, rd)
	}
}

func handleDescribeClientQuotas(ctx context.Context, r *Request, req *kmsg.DescribeClientQuotasRequest, resp *kmsg.DescribeClientQuotasResponse) {
	breq := &brokerop.DescribeClientQuotasReq{Strict: req.Strict}
	for _, c := range req.Components {
		breq.Components = append(breq.Components, brokerop.QuotaFilterComponent{EntityType: c.EntityType, MatchType: int8(c.MatchType), Match: c.Match})
	}
	if !r.authorizedCluster(ctx, acl.DescribeQuotas) {
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Message)
		return
	}
	bresp, err := r.Server.Backend().DescribeClientQuotas(ctx, breq)
	if err != nil {
		resp.ErrorCode = BackendErrorCode(err)
		return
	}
	resp.ErrorCode = bresp.ErrorCode
	if bresp.ErrorMessage != "" {
		resp.ErrorMessage = kmsg.StringPtr(bresp.ErrorMessage)
	}
	if bresp.ErrorCode != 0 {
		return
	}
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	for _, e := range bresp.Entries {
		re := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, p := range e.Entity {
			ep := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ep.Type, ep.Name = p.Type, p.Name
			re.Entity = append(re.Entity, ep)
		}
		for _, v := range e.Values {
			f, err := strconv.ParseFloat(v.Value, 64)
			if err != nil {
				continue
			}
			rv := kmsg.NewDescribeClientQuotasResponseEntryValue()
			rv.Key, rv.Value = v.Key, f
			re.Values = append(re.Values, rv)
		}
		resp.Entries = append(resp.Entries, re)
	}
}

func handleAlterClientQuotas(ctx context.Context, r *Request, req *kmsg.AlterClientQuotasRequest, resp *kmsg.AlterClientQuotasResponse) {
	breq := &brokerop.AlterClientQuotasReq{ValidateOnly: req.ValidateOnly}
	for _, e := range req.Entries {
		be := brokerop.AlterClientQuotasEntry{}
		for _, p := range e.Entity {
			be.Entity = append(be.Entity, brokerop.QuotaEntityPart{Type: p.Type, Name: p.Name})
		}
		for _, op := range e.Ops {
			be.Ops = append(be.Ops, brokerop.QuotaOp{Key: op.Key, Value: strconv.FormatFloat(op.Value, 'g', -1, 64), Remove: op.Remove})
		}
		breq.Entries = append(breq.Entries, be)
	}
	var bresp *brokerop.AlterClientQuotasResp
	errCode := kerr.ClusterAuthorizationFailed.Code
	if r.authorizedCluster(ctx, acl.AlterQuotas) {
		bresp, errCode = backendCall(len(breq.Entries), func() (*brokerop.AlterClientQuotasResp, error) {
			return r.Server.Backend().AlterClientQuotas(ctx, breq)
		}, func(b *brokerop.AlterClientQuotasResp) int { return len(b.Entries) })
	}
	for i, e := range req.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		for _, p := range e.Entity {
			ep := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ep.Type, ep.Name = p.Type, p.Name
			re.Entity = append(re.Entity, ep)
		}
		if errCode != 0 {
			re.ErrorCode = errCode
		} else {
			re.ErrorCode = bresp.Entries[i].ErrorCode
			if m := bresp.Entries[i].ErrorMessage; m != "" {
				re.ErrorMessage = kmsg.StringPtr(m)
			}
		}
		resp.Entries = append(resp.Entries, re)
	}
	if errCode == 0 && !req.ValidateOnly {
		r.Server.quotas.invalidate() // this gateway enforces the new quotas at once
	}
}
