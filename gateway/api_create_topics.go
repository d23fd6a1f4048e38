package gateway

// CreateTopics (key 19), v0–7.
//
//   - Replication factor: -1 (the default) or a positive count, which the backend judges (a
//     single broker honours only 1; a quorum of brokers places up to as many replicas as it
//     has live brokers, INVALID_REPLICATION_FACTOR above); 0 or below -1 is
//     INVALID_REPLICATION_FACTOR here. Manual replica assignments are INVALID_REQUEST. Partition count -1 is the broker default; 0 or below -1 is
//     INVALID_PARTITIONS. Name validity and TOPIC_ALREADY_EXISTS are the broker's answer.
//   - v5+ answers carry partition count, replication factor and the topic's configs; v7+
//     the topic id.
//   - A backend failure answers every topic with BackendErrorCode(err).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func handleCreateTopics(ctx context.Context, r *Request, req *kmsg.CreateTopicsRequest, resp *kmsg.CreateTopicsResponse) {
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	breq := &brokerop.CreateTopicsReq{ValidateOnly: req.ValidateOnly}
	var sent []int // index in req.Topics of each topic sent to the backend
	authorized := r.authorizedFn(ctx)
	canCreateAll := authorized(acl.CreateCluster, acl.ClusterName)
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		rt.Default()
		rt.Topic = t.Topic
		switch {
		case !canCreateAll && !authorized(acl.CreateTopic, t.Topic):
			rt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			rt.ErrorMessage = kmsg.StringPtr(kerr.TopicAuthorizationFailed.Message)
		case t.ReplicationFactor == 0 || t.ReplicationFactor < -1:
			rt.ErrorCode = kafkawire.ErrInvalidReplicationFactor
			rt.ErrorMessage = kmsg.StringPtr("Replication factor must be larger than 0, or -1 to use the default value.")
		case len(t.ReplicaAssignment) > 0:
			rt.ErrorCode = kafkawire.ErrInvalidRequest
			rt.ErrorMessage = kmsg.StringPtr("manual replica assignment is not supported")
		case t.NumPartitions == 0 || t.NumPartitions < -1:
			rt.ErrorCode = kafkawire.ErrInvalidPartitions
			rt.ErrorMessage = kmsg.StringPtr("number of partitions must be positive (or -1 for the default)")
		default:
			ct := brokerop.CreateTopic{Name: t.Topic, NumPartitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor}
			if len(t.Configs) > 0 {
				ct.Configs = make(map[string]string, len(t.Configs))
				for _, c := range t.Configs {
					if c.Value != nil {
						ct.Configs[c.Name] = *c.Value
					}
				}
			}
			breq.Topics = append(breq.Topics, ct)
			sent = append(sent, i)
		}
	}
	if len(sent) == 0 {
		return
	}
	bresp, err := r.Server.Backend().CreateTopics(ctx, breq)
	if err == nil && len(bresp.Topics) != len(sent) {
		err = errShortAnswer
	}
	for k, i := range sent {
		rt := &resp.Topics[i]
		if err != nil {
			rt.ErrorCode = BackendErrorCode(err)
			continue
		}
		bt := &bresp.Topics[k]
		rt.ErrorCode, rt.TopicID = bt.ErrorCode, bt.TopicID
		if bt.ErrorMessage != "" {
			rt.ErrorMessage = kmsg.StringPtr(bt.ErrorMessage)
		}
		if bt.ErrorCode == 0 {
			rt.NumPartitions, rt.ReplicationFactor = bt.NumPartitions, max(bt.ReplicationFactor, 1)
			for _, c := range bt.Configs {
				rc := kmsg.NewCreateTopicsResponseTopicConfig()
				rc.Name, rc.Value, rc.ReadOnly, rc.Source, rc.IsSensitive = c.Name, c.Value, c.ReadOnly, c.Source, c.IsSensitive
				rt.Configs = append(rt.Configs, rc)
			}
		}
	}
}
