package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/wal"
)

type testBroker struct {
	ep *endpoint.Endpoint
	b  *broker.Broker
	g  *group.Coordinator
}

// startBrokers runs n real brokers on loopback mesh endpoints, trusting the given gateways.
func startBrokers(t *testing.T, n int, gateways ...*endpoint.Endpoint) []*testBroker {
	t.Helper()
	var trust brokermesh.TrustList
	for _, g := range gateways {
		trust.Add(g.NodeID())
	}
	var out []*testBroker
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		b, err := broker.Open(broker.Config{Dir: dir, DefaultPartitions: 1})
		if err != nil {
			t.Fatal(err)
		}
		g, err := group.Open(group.Config{Dir: filepath.Join(dir, "groups")})
		if err != nil {
			t.Fatal(err)
		}
		sec, err := broker.OpenFileSecurity(wal.OSFS(), dir)
		if err != nil {
			t.Fatal(err)
		}
		creds, acls := sec.Credentials, sec.ACLs
		ep := newEP(t)
		brokermesh.Serve(ep, brokermesh.NewServer(nil, brokerop.Parts{Data: b, Admin: b, Groups: g, Producers: b, Security: broker.Security{Credentials: creds, ACLs: acls}}), trust, nil)
		t.Cleanup(func() { ep.Close(); g.Close(); b.Close() })
		out = append(out, &testBroker{ep, b, g})
	}
	return out
}

func clusterFor(t *testing.T, gw *endpoint.Endpoint, bs []*testBroker) *Cluster {
	t.Helper()
	var eps []*endpoint.Endpoint
	for _, b := range bs {
		eps = append(eps, b.ep)
	}
	return clusterForAddrs(t, gw, eps...)
}

func clusterForAddrs(t *testing.T, gw *endpoint.Endpoint, brokers ...*endpoint.Endpoint) *Cluster {
	t.Helper()
	var seeds []endpoint.NodeAddr
	for _, b := range brokers {
		seeds = append(seeds, b.Addr())
	}
	c, err := New(seeds, func(a endpoint.NodeAddr) *brokermesh.Caller {
		return brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, a), a.ID.ShortString())
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// These tests run real brokers in this process, under -race on a loaded machine, where a
	// live broker may take seconds to answer a probe: a probe verdict must not decide them.
	// The probes themselves are tested in virtual time (probe_test.go, failover_test.go).
	c.probeTimeout = time.Minute
	return c
}

func TestClusterSpreadsPartitionsAndGatewaysAgree(t *testing.T) {
	gw1, gw2 := newEP(t), newEP(t)
	bs := startBrokers(t, 3, gw1, gw2)
	c1, c2 := clusterFor(t, gw1, bs), clusterFor(t, gw2, bs)
	ctx := timeoutCtx(t, 30*time.Second)

	cr, err := c1.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "orders", NumPartitions: 6, ReplicationFactor: 1}}})
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v %v", cr, err)
	}
	// Produce one record per partition through gateway 1, alternating which gateway places first.
	req := &brokerop.ProduceReq{Acks: -1, TimeoutMs: 5000}
	for p := int32(0); p < 6; p++ {
		req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: "orders", Partition: p,
			Records: encodeRecordBatch([]byte(fmt.Sprint(p)), []byte(fmt.Sprintf("value-%d", p)), time.Now())})
	}
	pr, err := c1.Produce(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pr.Partitions {
		if p.ErrorCode != 0 || p.BaseOffset != 0 {
			t.Fatalf("produce partition %d: %+v", p.Partition, p)
		}
	}
	// Gateway 2 reads every record back and agrees on every owner.
	freq := &brokerop.FetchReq{MaxBytes: 1 << 20}
	for p := int32(0); p < 6; p++ {
		freq.Partitions = append(freq.Partitions, brokerop.FetchPartition{Topic: "orders", Partition: p, MaxBytes: 1 << 20})
	}
	got := map[int32]string{}
	for i := 0; i < 10 && len(got) < 6; i++ {
		fr, err := c2.Fetch(ctx, freq)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range fr.Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("fetch partition %d: error %d", p.Partition, p.ErrorCode)
			}
			decodeRecords(p.Records, func(_ int64, k, v []byte) { got[p.Partition] = string(v) })
		}
	}
	for p := int32(0); p < 6; p++ {
		if got[p] != fmt.Sprintf("value-%d", p) {
			t.Fatalf("partition %d: got %q via gateway 2", p, got[p])
		}
		_, o1, _, _ := c1.owner(ctx, "orders", p)
		_, o2, _, _ := c2.owner(ctx, "orders", p)
		if o1 != o2 {
			t.Fatalf("partition %d: gateways disagree on the owner: %s vs %s", p, o1, o2)
		}
	}
	// The data is spread: every broker holds some partitions, and only its own.
	perBroker := map[string]int{}
	for i, b := range bs {
		id := b.ep.NodeID().String()
		for p := int32(0); p < 6; p++ {
			lo, err := b.b.ListOffsets(ctx, &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: "orders", Partition: p, Timestamp: -1}}})
			if err != nil {
				t.Fatal(err)
			}
			r := lo.Partitions[0]
			_, owner, _, _ := c1.owner(ctx, "orders", p)
			has := r.ErrorCode == 0 && r.Offset > 0
			if has != (owner == id) {
				t.Fatalf("broker %d partition %d: has data %v, but owner is %s (this broker %s)", i, p, has, owner, id)
			}
			if has {
				perBroker[id]++
			}
		}
	}
	if len(perBroker) != 3 {
		t.Fatalf("partitions landed on %d brokers, want 3: %v", len(perBroker), perBroker)
	}
	// The placement topic is hidden from listings; the topic is listed once, with 6 partitions.
	md, err := c2.Metadata(ctx, &brokerop.MetadataReq{})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Name != "orders" || len(md.Topics[0].Partitions) != 6 {
		t.Fatalf("metadata: %+v", md.Topics)
	}
	// Deleting purges the data brokers too.
	if _, err := c2.DeleteTopics(ctx, &brokerop.DeleteTopicsReq{Topics: []string{"orders"}}); err != nil {
		t.Fatal(err)
	}
	for i, b := range bs {
		md, _ := b.b.Metadata(ctx, &brokerop.MetadataReq{Topics: []string{"orders"}})
		if md.Topics[0].ErrorCode != errUnknownTopicOrPartition {
			t.Fatalf("broker %d still has the deleted topic", i)
		}
	}
}

func TestPlacementFirstRecordWins(t *testing.T) {
	table := map[string]placement{}
	applyPlacement(table, "t", placement{TopicID: "a", Owners: []string{"x", "y"}})
	applyPlacement(table, "t", placement{TopicID: "a", Owners: []string{"y", "x"}})      // racing duplicate
	applyPlacement(table, "t", placement{TopicID: "a", Owners: []string{"y", "x", "z"}}) // bad extension
	if got := table["t"].Owners; len(got) != 2 || got[0] != "x" {
		t.Fatalf("owners %v", got)
	}
	applyPlacement(table, "t", placement{TopicID: "a", Owners: []string{"x", "y", "z"}}) // good extension
	if got := table["t"].Owners; len(got) != 3 {
		t.Fatalf("extension refused: %v", got)
	}
	applyPlacement(table, "t", placement{TopicID: "b", Owners: []string{"z"}}) // re-created topic
	if got := table["t"]; got.TopicID != "b" || len(got.Owners) != 1 {
		t.Fatalf("new incarnation refused: %v", got)
	}
}

func TestRecordBatchRoundTrip(t *testing.T) {
	b := encodeRecordBatch([]byte("k"), []byte("v"), time.UnixMilli(1234))
	b = append(b, encodeRecordBatch(nil, []byte("w"), time.UnixMilli(1235))...)
	var got []string
	next, err := decodeRecords(b, func(off int64, k, v []byte) { got = append(got, fmt.Sprintf("%d:%s=%s", off, k, v)) })
	if err != nil || next != 1 || len(got) != 2 || got[0] != "0:k=v" {
		t.Fatalf("got %v next %d err %v", got, next, err)
	}
	if _, err := decodeRecords(b[:30], func(int64, []byte, []byte) {}); err == nil {
		t.Fatal("truncated batch accepted")
	}
}

// Pipelined produces over the mesh keep their order: every staged send is appended in call
// order, so base offsets follow the calls, with one broker (Caller) and three (Cluster).
func TestStagedProducePipelinedKeepsOrder(t *testing.T) {
	gw := newEP(t)
	bs := startBrokers(t, 3, gw)
	ctx := timeoutCtx(t, 30*time.Second)
	single := brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, bs[0].ep.Addr()), "b0")
	multi := clusterFor(t, gw, bs)
	if cr, err := multi.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "piped", NumPartitions: 3, ReplicationFactor: 1}}}); err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v %v", cr, err)
	}
	for _, tc := range []struct {
		name  string
		stage func(context.Context, *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error)
		topic string
		parts int32
	}{
		{"caller", single.ProduceStaged, "solo", 1},
		{"cluster", multi.ProduceStaged, "piped", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.topic == "solo" {
				single.Metadata(ctx, &brokerop.MetadataReq{Topics: []string{"solo"}, AutoCreate: true})
			}
			const n = 60
			var waits []func() (*brokerop.ProduceResp, error)
			for i := 0; i < n; i++ {
				req := &brokerop.ProduceReq{Acks: -1, TimeoutMs: 5000}
				for p := int32(0); p < tc.parts; p++ {
					req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: tc.topic, Partition: p,
						Records: encodeRecordBatch(nil, []byte(fmt.Sprint(i)), time.Now())})
				}
				waits = append(waits, tc.stage(ctx, req))
			}
			for i, w := range waits {
				r, err := w()
				if err != nil {
					t.Fatalf("produce %d: %v", i, err)
				}
				for _, p := range r.Partitions {
					if p.ErrorCode != 0 || p.BaseOffset != int64(i) {
						t.Fatalf("produce %d partition %d: error %d, base offset %d (want %d)", i, p.Partition, p.ErrorCode, p.BaseOffset, i)
					}
				}
			}
		})
	}
}
