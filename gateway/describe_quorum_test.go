package gateway_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// quorumBackend answers DescribeQuorum with a fixed quorum (the rest: the in-memory backend).
type quorumBackend struct {
	*gatewaytest.MemBackend
	q *brokerop.DescribeQuorumResp
}

func (b quorumBackend) DescribeQuorum(context.Context, *brokerop.DescribeQuorumReq) (*brokerop.DescribeQuorumResp, error) {
	return b.q, nil
}

// DescribeQuorum through a Kafka client (kadm v1.20 has no helper for it: the kmsg request,
// which kgo sends to the controller): the quorum leader's view becomes Kafka's description of
// __cluster_metadata partition 0, at every version; any other partition is unknown; a
// backend without a quorum answers UNSUPPORTED_VERSION.
func TestDescribeQuorum(t *testing.T) {
	q := &brokerop.DescribeQuorumResp{LeaderKafkaID: 2, Term: 7, Commit: 120,
		Voters: []brokerop.QuorumMember{
			{KafkaID: 2, RaftID: 22, LogEnd: 121, LastContactMs: 5000},
			{KafkaID: 0, RaftID: 10, LogEnd: 120, LastContactMs: 4900},
			{KafkaID: 1, RaftID: 11, LogEnd: 90, LastContactMs: -1},
		},
		Observers: []brokerop.QuorumMember{{KafkaID: 3, RaftID: 33, LogEnd: 100, LastContactMs: 4800}},
	}
	ts := start(t, gateway.Config{Backend: quorumBackend{gatewaytest.NewMem(1), q}})
	raw := dial(t, ts.addr)
	// Each version by hand; then a client's own request (the newest version).
	for _, v := range []int16{0, 1, 2, -1} {
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		for _, p := range []int32{0, 1} {
			rp := kmsg.NewDescribeQuorumRequestTopicPartition()
			rp.Partition = p
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		var resp *kmsg.DescribeQuorumResponse
		if v >= 0 {
			req.SetVersion(v)
			resp = raw.roundTrip(req, int32(v)).(*kmsg.DescribeQuorumResponse)
		} else {
			var err error
			if resp, err = req.RequestWith(context.Background(), kafkaclients.KgoClient(t, ts.addr)); err != nil {
				t.Fatal(err)
			}
			v = resp.Version
		}
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.LeaderID != 2 || p.LeaderEpoch != 7 || p.HighWatermark != 120 {
			t.Fatalf("v%d: partition 0: %+v", v, p)
		}
		if len(p.CurrentVoters) != 3 || len(p.Observers) != 1 {
			t.Fatalf("v%d: voters %+v observers %+v", v, p.CurrentVoters, p.Observers)
		}
		for i, want := range []struct {
			id                 int32
			leo, fetch, caught int64
		}{{2, 121, 5000, 5000}, {0, 120, 4900, 4900}, {1, 90, -1, -1}} {
			s := p.CurrentVoters[i]
			if v == 0 {
				want.fetch, want.caught = -1, -1 // not in v0
			}
			if s.ReplicaID != want.id || s.LogEndOffset != want.leo || s.LastFetchTimestamp != want.fetch || s.LastCaughtUpTimestamp != want.caught {
				t.Fatalf("v%d: voter %d: %+v, want %+v", v, i, s, want)
			}
		}
		// The observer is behind the high watermark: fetched, not caught up.
		if o := p.Observers[0]; o.ReplicaID != 3 || o.LogEndOffset != 100 || v > 0 && (o.LastFetchTimestamp != 4800 || o.LastCaughtUpTimestamp != -1) {
			t.Fatalf("v%d: observer %+v", v, o)
		}
		if p1 := resp.Topics[0].Partitions[1]; p1.Partition != 1 || p1.ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("v%d: partition 1: %+v", v, p1)
		}
		if v >= 2 && (len(resp.Nodes) != 3 || resp.Nodes[0].NodeID != 2 || len(resp.Nodes[0].Listeners) != 1 || resp.Nodes[0].Listeners[0].Host != "127.0.0.1") {
			t.Fatalf("v%d: nodes %+v", v, resp.Nodes)
		}
	}

	// Without a quorum (one in-memory broker): unsupported.
	plain := start(t, gateway.Config{})
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), kafkaclients.KgoClient(t, plain.addr))
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("without a quorum: error %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
}
