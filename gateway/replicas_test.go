package gateway_test

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// replicatedBackend is a MemBackend whose Metadata reports three brokers (Kafka ids 1–3) and
// topic "r" as replicated: partition p is led by broker p%3+1 at epoch 5+p, replicas
// [p%3+1, …] in order, broker 3 out of sync and offline.
type replicatedBackend struct{ *gatewaytest.MemBackend }

func (b replicatedBackend) Metadata(ctx context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	r, err := b.MemBackend.Metadata(ctx, req)
	if err != nil {
		return nil, err
	}
	r.Brokers = []brokerop.BrokerInfo{{NodeID: 1}, {NodeID: 2}, {NodeID: 3}}
	for i := range r.Topics {
		if r.Topics[i].Name != "r" {
			continue
		}
		for j := range r.Topics[i].Partitions {
			bp := &r.Topics[i].Partitions[j]
			p := bp.Partition
			reps := []int32{p%3 + 1, (p+1)%3 + 1, (p+2)%3 + 1}
			bp.Leader, bp.LeaderEpoch, bp.Replicas = reps[0], 5+p, reps
			bp.ISR = slices.DeleteFunc(slices.Clone(reps), func(id int32) bool { return id == 3 })
			bp.OfflineReplicas = []int32{3}
		}
	}
	return r, nil
}

// Metadata shows a replicated partition's leader epoch, replicas, ISR and offline replicas in
// Kafka ids, with the gateway as the leader clients dial and as the only broker listed (several
// ids at one host:port break kafkajs and librdkafka), and single-owner topics as before; kgo
// produces to and consumes from the replicated topic through it.
func TestMetadataShowsReplicas(t *testing.T) {
	be := replicatedBackend{gatewaytest.NewMem(1)}
	ts := start(t, gateway.Config{Backend: be})
	c := dial(t, ts.addr)
	createTopic(t, c, "r", 3)
	createTopic(t, c, "single", 1)
	for _, v := range []int16{0, 1, 5, 7, 9, 12} {
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(v)
		for _, n := range []string{"r", "single"} {
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(n)
			md.Topics = append(md.Topics, mt)
		}
		r := c.roundTrip(md, int32(v)+10).(*kmsg.MetadataResponse)
		var ids []int32
		for _, b := range r.Brokers {
			if b.Host != "127.0.0.1" || b.Port != r.Brokers[0].Port {
				t.Errorf("v%d: broker %+v not at the gateway's address", v, b)
			}
			ids = append(ids, b.NodeID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []int32{0}) {
			t.Errorf("v%d: brokers %v, want only the gateway (0)", v, ids)
		}
		if len(r.Topics) != 2 {
			t.Fatalf("v%d: topics %+v", v, r.Topics)
		}
		for _, tp := range r.Topics {
			for _, p := range tp.Partitions {
				if *tp.Topic == "single" {
					if p.Leader != 0 || !slices.Equal(p.Replicas, []int32{0}) || !slices.Equal(p.ISR, []int32{0}) || p.LeaderEpoch != 0 && v >= 7 {
						t.Errorf("v%d single-owner partition: %+v", v, p)
					}
					continue
				}
				wantReps := []int32{p.Partition%3 + 1, (p.Partition+1)%3 + 1, (p.Partition+2)%3 + 1}
				if p.Leader != 0 || !slices.Equal(p.Replicas, wantReps) || slices.Contains(p.ISR, 3) || len(p.ISR) != 2 {
					t.Errorf("v%d partition %d: leader %d replicas %v isr %v", v, p.Partition, p.Leader, p.Replicas, p.ISR)
				}
				if v >= 7 && p.LeaderEpoch != 5+p.Partition {
					t.Errorf("v%d partition %d: leader epoch %d, want %d", v, p.Partition, p.LeaderEpoch, 5+p.Partition)
				}
				if v >= 5 && !slices.Equal(p.OfflineReplicas, []int32{3}) {
					t.Errorf("v%d partition %d: offline %v", v, p.Partition, p.OfflineReplicas)
				}
			}
		}
	}
	// A client sends each partition to its leader: this gateway.
	cl := kafkaclients.KgoClient(t, ts.addr, kgo.DefaultProduceTopic("r"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(3) {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Partition: p, Value: []byte{byte('a' + p)}}).FirstErr(); err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}
	got := consumeAll(t, ts.addr, "r", 3)
	if len(got) != 3 {
		t.Fatalf("consumed %d records", len(got))
	}
}

// directBackend is a replicatedBackend whose brokers 1 and 2 advertise Kafka listeners of
// their own (broker 3 has none, and broker 2's address is malformed).
type directBackend struct{ replicatedBackend }

func (b directBackend) Metadata(ctx context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	r, err := b.replicatedBackend.Metadata(ctx, req)
	if err != nil {
		return nil, err
	}
	r.Brokers = []brokerop.BrokerInfo{{NodeID: 1, Kafka: "broker-1.example:19093"}, {NodeID: 2, Kafka: "no-port"}, {NodeID: 3}}
	return r, nil
}

// With DirectBrokers, a broker that advertises a Kafka listener is listed at it and named as
// the leader of the partitions it leads; the others (no listener, a malformed one) are not
// listed, and the server stands in as the leader of their partitions; without it only the
// server is listed and leads every partition. The server presenting Kafka id 1 (a broker's
// embedded listener) lists itself at the address the client dialled.
func TestMetadataDirectBrokers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     gateway.Config
		direct  map[int32]string // broker id → host:port expected when not the server's
		leaders []int32          // of partitions 0–2 (led by brokers 1, 2, 3)
	}{
		{"gateway", gateway.Config{}, nil, []int32{0, 0, 0}},
		{"direct gateway", gateway.Config{DirectBrokers: true}, map[int32]string{1: "broker-1.example:19093"}, []int32{1, 0, 0}},
		{"broker 1 itself", gateway.Config{DirectBrokers: true, NodeID: 1}, nil, []int32{1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Backend = directBackend{replicatedBackend{gatewaytest.NewMem(1)}}
			ts := start(t, tc.cfg)
			c := dial(t, ts.addr)
			createTopic(t, c, "r", 3)
			md := kmsg.NewPtrMetadataRequest()
			md.SetVersion(12)
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr("r")
			md.Topics = append(md.Topics, mt)
			r := c.roundTrip(md, 7).(*kmsg.MetadataResponse)
			self := ts.addr
			got := map[int32]string{}
			for _, b := range r.Brokers {
				if hp := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))); hp != self {
					got[b.NodeID] = hp
				}
			}
			if !maps.Equal(got, tc.direct) && !(len(got) == 0 && len(tc.direct) == 0) {
				t.Errorf("brokers not at the server's address %s: %v, want %v (all: %+v)", self, got, tc.direct, r.Brokers)
			}
			if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 3 {
				t.Fatalf("topics %+v", r.Topics)
			}
			listed := map[int32]bool{}
			for _, b := range r.Brokers {
				listed[b.NodeID] = true
			}
			for _, p := range r.Topics[0].Partitions {
				if p.Leader != tc.leaders[p.Partition] || !listed[p.Leader] {
					t.Errorf("partition %d: leader %d (listed: %v), want %d", p.Partition, p.Leader, listed[p.Leader], tc.leaders[p.Partition])
				}
			}
			if len(r.Brokers) != 1+len(tc.direct) {
				t.Errorf("brokers %+v: want the server and %v only", r.Brokers, tc.direct)
			}
		})
	}
}
