package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/replica"
)

// BenchmarkReplicatedProduce: acks=all produce of 100-byte records (batches of 10) into
// partition 0 of a topic with replication factor 1 and 3, in process: brokers on the real
// disk (one data directory each, so each fsyncs its own journal), engines on one
// replica.LocalNet (no network cost), raft logs in raftstore. "single-owner" is today's
// unreplicated partition, for reference. GOMAXPROCS producers, each its own idempotent
// producer id when idem=true.
func BenchmarkReplicatedProduce(b *testing.B) {
	for _, rf := range []int{0, 1, 3} {
		for _, idem := range []bool{false, true} {
			name := fmt.Sprintf("rf=%d/idem=%v", rf, idem)
			if rf == 0 {
				name = fmt.Sprintf("single-owner/idem=%v", idem)
			}
			b.Run(name, func(b *testing.B) { benchReplicated(b, rf, idem) })
		}
	}
}

func benchReplicated(b *testing.B, rf int, idem bool) {
	rec := TopicRecord{Name: "r", ID: TopicID{5}, Partitions: 1}
	if rf > 0 {
		var ids []uint64
		for i := range rf {
			ids = append(ids, uint64(i+1))
		}
		rec.Replicas = [][]uint64{ids}
		if rf == 1 {
			rec.Replicas = [][]uint64{{1, 1}} // one voter, but through raft: listed twice
		}
	}
	net := replica.NewLocalNet()
	b.Cleanup(net.Close)
	brokers := map[uint64]*Broker{}
	n := max(rf, 1)
	for i := range n {
		id := uint64(i + 1)
		br := mustOpen(b, Config{Dir: b.TempDir(), RetentionCheckInterval: -1, FlushInterval: -1,
			ReplicaCheckInterval: -1})
		b.Cleanup(func() { br.Close() })
		if rf > 0 {
			ep := net.Endpoint(id)
			eng, err := replica.New(replica.Config{ID: id, Transport: ep, Sync: br.SyncStorage, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			ep.Attach(eng)
			b.Cleanup(eng.Stop)
			if err := br.SetReplication(eng, id); err != nil {
				b.Fatal(err)
			}
		}
		if err := br.SyncTopics([]TopicRecord{rec}); err != nil {
			b.Fatal(err)
		}
		brokers[id] = br
	}
	leader := brokers[1]
	if rf > 0 {
		deadline := time.Now().Add(30 * time.Second)
		leader = nil
		for leader == nil && time.Now().Before(deadline) {
			for _, br := range brokers {
				if g := br.lookup("r", 0).group.Load(); g != nil {
					if ok, _, _ := g.leaderState(); ok {
						leader = br
					}
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		if leader == nil {
			b.Fatal("no leader")
		}
	}
	vs := make([]string, 10)
	for i := range vs {
		vs[i] = strings.Repeat("v", 100)
	}
	template := makeBatch(false, vals(time.Now().UnixMilli(), vs...)...)
	var pids atomic.Int64
	var failed atomic.Int64
	b.SetBytes(int64(len(template)))
	b.SetParallelism(1) // GOMAXPROCS producers (8 on the 8-core bench machine, 2 here)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		pid := pids.Add(1)
		seq := int32(0)
		for pb.Next() {
			data := template
			if idem {
				data = idemBatch(pid, 0, seq, vs...)
				seq += int32(len(vs))
			}
			resp, err := leader.Produce(context.Background(), &brokerop.ProduceReq{Acks: -1,
				Partitions: []brokerop.ProducePartition{{Topic: "r", Partition: 0, Records: data}}})
			if err != nil || resp.Partitions[0].ErrorCode != 0 {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d produces failed", f)
	}
}
