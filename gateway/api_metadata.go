package gateway

// Metadata (key 3), v0–12.
//
//   - The gateway is the only broker: Brokers = [{NodeID, advertised host, port}], and it
//     leads every partition (leader epoch 0, replicas = ISR = [NodeID], no offline replicas).
//   - Topics: v0 empty list = all topics; v1+ null = all, empty = none. v10+ carries topic
//     ids in the answer; v10+ requests may name a topic by id only (resolved via the cache).
//   - Auto-creation: v0–v3 auto-create (no flag in the request); v4+ honour
//     allow_auto_topic_creation; Config.DisableAutoCreate turns it off for all versions.
//     A missing topic that is not created is UNKNOWN_TOPIC_OR_PARTITION.
//   - Authorized operations (v8+) are not computed: the "not requested" sentinel is sent.
//   - A backend failure answers every requested topic with LEADER_NOT_AVAILABLE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func handleMetadata(ctx context.Context, r *Request, req *kmsg.MetadataRequest, resp *kmsg.MetadataResponse) {
	s := r.Server
	v := req.Version

	breq := &brokerop.MetadataReq{AutoCreate: !s.cfg.DisableAutoCreate && (v < 4 || req.AllowAutoTopicCreation)}
	all := req.Topics == nil || (v == 0 && len(req.Topics) == 0)
	var unknownIDs [][16]byte // requested by id, not found
	if !all {
		breq.Topics = make([]string, 0, len(req.Topics))
		var ids [][16]byte
		for _, t := range req.Topics {
			if t.Topic != nil && *t.Topic != "" {
				breq.Topics = append(breq.Topics, *t.Topic)
			} else {
				ids = append(ids, t.TopicID)
			}
		}
		if len(ids) > 0 {
			for i, n := range s.topics.names(ctx, ids) {
				if n == "" {
					unknownIDs = append(unknownIDs, ids[i])
				} else {
					breq.Topics = append(breq.Topics, n)
				}
			}
		}
	}

	host, port := r.Advertised()
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = s.NodeID(), host, port
	resp.Brokers = append(resp.Brokers, b)
	resp.ControllerID = s.NodeID()

	var bresp *brokerop.MetadataResp
	if all || len(breq.Topics) > 0 {
		var err error
		bresp, err = s.Backend().Metadata(ctx, breq)
		if err != nil {
			code := BackendErrorCode(err)
			if code == kafkawire.ErrNotLeaderOrFollower {
				code = kafkawire.ErrLeaderNotAvailable
			}
			for _, name := range breq.Topics {
				t := kmsg.NewMetadataResponseTopic()
				t.Topic, t.ErrorCode = kmsg.StringPtr(name), code
				resp.Topics = append(resp.Topics, t)
			}
			return
		}
		s.topics.observe(bresp)
		if bresp.ClusterID != "" {
			resp.ClusterID = kmsg.StringPtr(bresp.ClusterID)
		}
	}
	if resp.ClusterID == nil {
		if id := s.ClusterID(); id != "" {
			resp.ClusterID = kmsg.StringPtr(id)
		}
	}
	if bresp != nil {
		resp.Topics = make([]kmsg.MetadataResponseTopic, 0, len(bresp.Topics)+len(unknownIDs))
		for i := range bresp.Topics {
			bt := &bresp.Topics[i]
			t := kmsg.NewMetadataResponseTopic()
			t.Topic, t.TopicID, t.IsInternal, t.ErrorCode = kmsg.StringPtr(bt.Name), bt.TopicID, bt.Internal, bt.ErrorCode
			t.Partitions = make([]kmsg.MetadataResponseTopicPartition, 0, len(bt.Partitions))
			for _, bp := range bt.Partitions {
				p := kmsg.NewMetadataResponseTopicPartition()
				p.Partition, p.ErrorCode, p.LeaderEpoch = bp.Partition, bp.ErrorCode, 0
				// One gateway fronts every broker: clients always dial the gateway.
				p.Leader = s.NodeID()
				p.Replicas, p.ISR, p.OfflineReplicas = []int32{s.NodeID()}, []int32{s.NodeID()}, []int32{}
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
	}
	for _, id := range unknownIDs {
		t := kmsg.NewMetadataResponseTopic()
		t.TopicID, t.ErrorCode = id, kafkawire.ErrUnknownTopicID
		resp.Topics = append(resp.Topics, t)
	}
}
