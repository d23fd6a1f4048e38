package gateway

// DescribeQuorum (key 55), v0–2: the metadata quorum (broker/controller's raft group) as
// Kafka's KRaft describes its __cluster_metadata partition 0, from the quorum leader's view
// (brokerop DescribeQuorum):
//
//   - LeaderID is the leader's Kafka broker id (the controller id of Metadata and
//     DescribeCluster), LeaderEpoch its raft term, HighWatermark the raft commit index.
//   - CurrentVoters are the raft voters, Observers the learners, each with its Kafka id and
//     LogEndOffset the last raft index known replicated there (the leader's own: its last
//     index). v1+: LastFetchTimestamp is when the leader last saw it active (Unix ms; -1
//     unknown), LastCaughtUpTimestamp the same for a member whose log reaches the high
//     watermark (else -1). v2: ReplicaDirectoryID is zero (no directory ids), and Nodes lists
//     every voter at the gateway's own advertised address, as Metadata does for brokers.
//   - Another topic or partition is answered UNKNOWN_TOPIC_OR_PARTITION (Kafka answers so
//     for anything but the metadata partition).
//   - DESCRIBE on the cluster is required (CLUSTER_AUTHORIZATION_FAILED otherwise). A
//     backend without a quorum (one embedded broker) answers UNSUPPORTED_VERSION; a backend
//     failure answers BackendErrorCode at the top level.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// MetadataQuorumTopic is the topic name Kafka gives its metadata quorum's log.
const MetadataQuorumTopic = "__cluster_metadata"

func handleDescribeQuorum(ctx context.Context, r *Request, req *kmsg.DescribeQuorumRequest, resp *kmsg.DescribeQuorumResponse) {
	fail := func(code int16, msg string) {
		resp.ErrorCode = code
		if resp.Version >= 2 {
			resp.ErrorMessage = kmsg.StringPtr(msg)
		}
	}
	if clusterRefused(ctx, r, acl.DescribeCluster, fail) {
		return
	}
	wanted := false
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			wanted = wanted || t.Topic == MetadataQuorumTopic && p.Partition == 0
		}
	}
	var q *brokerop.DescribeQuorumResp
	if wanted {
		var err error
		q, err = r.Server.Backend().DescribeQuorum(ctx, &brokerop.DescribeQuorumReq{})
		switch {
		case unsupported(err):
			fail(kerr.UnsupportedVersion.Code, "this cluster runs no metadata quorum")
			return
		case err != nil:
			fail(BackendErrorCode(err), err.Error())
			return
		case q.ErrorCode != 0:
			fail(q.ErrorCode, q.ErrorMessage)
			return
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeQuorumResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeQuorumResponseTopicPartition()
			rp.Partition = p.Partition
			if t.Topic != MetadataQuorumTopic || p.Partition != 0 {
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if resp.Version >= 2 {
					rp.ErrorMessage = kmsg.StringPtr("only " + MetadataQuorumTopic + " partition 0 is a quorum")
				}
				rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = -1, -1, -1
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			rp.LeaderID, rp.LeaderEpoch, rp.HighWatermark = q.LeaderKafkaID, clampInt32(q.Term), clampInt64(q.Commit)
			rp.CurrentVoters = replicaStates(q.Voters, q.Commit)
			rp.Observers = replicaStates(q.Observers, q.Commit)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if q != nil && resp.Version >= 2 {
		host, port := r.Advertised()
		for _, v := range q.Voters {
			n := kmsg.NewDescribeQuorumResponseNode()
			n.NodeID = v.KafkaID
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = "PLAINTEXT", host, uint16(port)
			n.Listeners = append(n.Listeners, l)
			resp.Nodes = append(resp.Nodes, n)
		}
	}
}

func replicaStates(ms []brokerop.QuorumMember, commit uint64) []kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
	out := make([]kmsg.DescribeQuorumResponseTopicPartitionReplicaState, 0, len(ms))
	for _, m := range ms {
		s := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		s.ReplicaID, s.LogEndOffset, s.LastFetchTimestamp = m.KafkaID, clampInt64(m.LogEnd), m.LastContactMs
		if m.LogEnd >= commit {
			s.LastCaughtUpTimestamp = m.LastContactMs
		}
		out = append(out, s)
	}
	return out
}

func clampInt32(v uint64) int32 { return int32(min(v, 1<<31-1)) }
func clampInt64(v uint64) int64 { return int64(min(v, 1<<63-1)) }
