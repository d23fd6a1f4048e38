package cluster

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/kafkawire"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newEP starts a mesh endpoint on loopback with a fresh identity.
func newEP(t *testing.T) *endpoint.Endpoint { return magicep.Loopback(t) }

// serveKafka runs a gateway with cfg on a loopback port until the test ends, and returns its
// address.
func serveKafka(t *testing.T, cfg gateway.Config) (*gateway.Server, string) {
	t.Helper()
	g := serve.Start(t, cfg, nil)
	return g.Server, g.Addr
}

// startQuorum runs a quorum of n brokers that trusts a gateway endpoint it returns too.
func startQuorum(t *testing.T, n int) (*endpoint.Endpoint, *controllertest.Cluster) {
	t.Helper()
	gw := newEP(t)
	return gw, controllertest.Start(t, n, gw.NodeID())
}

// quorumKafka runs a quorum of n brokers and a gateway in front of all of them (seeded with
// every broker), serving Kafka on a loopback port until the test ends. It returns the
// gateway's address, the quorum and the gateway's endpoint.
func quorumKafka(t *testing.T, n int) (string, *controllertest.Cluster, *endpoint.Endpoint) {
	t.Helper()
	gw, qc := startQuorum(t, n)
	eps := make([]*endpoint.Endpoint, len(qc.Brokers))
	for i, b := range qc.Brokers {
		eps[i] = b.EP
	}
	c := clusterForAddrs(t, gw, eps...)
	_, addr := serveKafka(t, gateway.Config{Backend: c, AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)})
	return addr, qc, gw
}

// createTopic creates topic through adm, again and again (controllertest.Eventually) until it
// is created; TOPIC_ALREADY_EXISTS counts as created (an earlier attempt's answer was lost).
// It returns the last answer other than that one.
func createTopic(t *testing.T, adm *kadm.Client, parts int32, rf int16, configs map[string]*string, topic string) kadm.CreateTopicResponse {
	t.Helper()
	var created kadm.CreateTopicResponse
	eventually(t, "create "+topic, func(ctx context.Context) error {
		r, err := adm.CreateTopic(ctx, parts, rf, configs, topic)
		if errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return nil
		}
		created = r
		return errors.Join(err, r.Err)
	})
	return created
}

// eventually runs try again and again (controllertest.Eventually), each time with a fresh
// controllertest.Context, until it succeeds; else the test fails with what and try's last
// error.
func eventually(t *testing.T, what string, try func(ctx context.Context) error) {
	t.Helper()
	if err := controllertest.Eventually(func() error {
		ctx, cancel := controllertest.Context()
		defer cancel()
		return try(ctx)
	}); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// leaderIndex is the index in qc.Brokers of the quorum's leader.
func leaderIndex(t *testing.T, qc *controllertest.Cluster) int {
	t.Helper()
	li, err := qc.Leader()
	if err != nil {
		t.Fatal(err)
	}
	return li
}

// timeoutCtx is a context that times out after d, cancelled when the test ends.
func timeoutCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// produceRReq is the produce (acks=all) of one record, "v", to partition "r"/0 that the tests
// of fake quorum brokers send.
func produceRReq() *brokerop.ProduceReq {
	return &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "r", Partition: 0, Records: oneRecord([]byte("v"))}}}
}

// oneRecord is a record batch of one record of value v.
func oneRecord(v []byte) []byte {
	return kafkawire.AppendRecordBatch(nil, []kafkawire.BatchRecord{{Timestamp: 1, Value: v}})
}

// fakeData is what a fake quorum broker answers to the data ops on each partition asked:
// as its leader, these offsets (and a record batch of one record of value for Fetch); else
// NOT_LEADER_OR_FOLLOWER with offsets -1.
type fakeData struct {
	baseOffset, listOffset, highWatermark int64
	value                                 []byte
}

func (d fakeData) produce(req *brokerop.ProduceReq, lead bool) *brokerop.ProduceResp {
	r := &brokerop.ProduceResp{}
	for _, p := range req.Partitions {
		pr := brokerop.ProducePartitionResp{Topic: p.Topic, Partition: p.Partition, BaseOffset: d.baseOffset, LogAppendTime: -1}
		if !lead {
			pr.ErrorCode, pr.BaseOffset = errNotLeaderOrFollower, -1
		}
		r.Partitions = append(r.Partitions, pr)
	}
	return r
}

// listOffsets answers the leader's epoch as the partitions' leader epoch.
func (d fakeData) listOffsets(req *brokerop.ListOffsetsReq, lead bool, epoch int32) *brokerop.ListOffsetsResp {
	r := &brokerop.ListOffsetsResp{}
	for _, p := range req.Partitions {
		pr := brokerop.ListOffsetsPartitionResp{Topic: p.Topic, Partition: p.Partition, Offset: d.listOffset, Timestamp: -1, LeaderEpoch: epoch}
		if !lead {
			pr.ErrorCode, pr.Offset, pr.LeaderEpoch = errNotLeaderOrFollower, -1, 0
		}
		r.Partitions = append(r.Partitions, pr)
	}
	return r
}

func (d fakeData) fetch(req *brokerop.FetchReq, lead bool) *brokerop.FetchResp {
	r := &brokerop.FetchResp{}
	for _, p := range req.Partitions {
		pr := brokerop.FetchPartitionResp{Topic: p.Topic, Partition: p.Partition, HighWatermark: d.highWatermark, LastStableOffset: d.highWatermark}
		if lead {
			pr.Records = oneRecord(d.value)
		} else {
			pr.ErrorCode, pr.HighWatermark, pr.LastStableOffset, pr.LogStartOffset = errNotLeaderOrFollower, -1, -1, -1
		}
		r.Partitions = append(r.Partitions, pr)
	}
	return r
}
