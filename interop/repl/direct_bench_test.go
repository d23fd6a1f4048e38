package repl_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// BenchmarkDirectPath: the direct data path (issue #16 item 4) against the gateway, same run.
// Three brokers (one metadata quorum), each with its own Kafka listener (-kafka-listen), and
// one gateway, on loopback; one 3-partition RF=3 topic; one kgo client:
//
//	impl=ours     bootstrapped at broker-0's listener: Metadata names each partition's
//	              leader broker at its own listener, so the client talks to the leaders
//	impl=gateway  bootstrapped at the gateway: every request crosses gateway → mesh → broker
//
// produce-100B-acks=all: b.N incompressible 100-byte records, acks=all, idempotence off, up to
// 5 requests in flight per connection (as BenchmarkReplProduce); consume-100B: a fresh
// consumer reads back the records that produce wrote (b.N of them, produced first, untimed);
// records/s, MB/s and the CPU time per record of the processes (gateway, brokers) and client.
// All processes share the machine's cores (GOMAXPROCS half of them each): report the load
// average with the figures.
func BenchmarkDirectPath(b *testing.B) {
	cluster.RequireQuorum(b)
	share := fmt.Sprintf("GOMAXPROCS=%d", max(1, runtime.NumCPU()/2))
	var mu sync.Mutex
	kafka := map[string]string{} // broker name → its Kafka listener, kept across restarts
	c := cluster.Start(b, cluster.Options{Brokers: 3, Gateways: 1, Quorum: true, Env: []string{share},
		BrokerArgs: func(br *cluster.Broker) []string {
			mu.Lock()
			defer mu.Unlock()
			if kafka[br.Name] == "" {
				kafka[br.Name] = cluster.FreeTCP(b)
			}
			return []string{"-kafka-listen", kafka[br.Name]}
		}})
	b.Cleanup(func() { idCache.Delete(c) })
	allLive(b, c)
	seeds := map[string]string{"ours": kafka[c.Brokers[0].Name], "gateway": c.Gateways[0].Addr}
	const topicName = "bench-direct"
	createReplicated(b, c, workload.Config{Seeds: []string{c.Gateways[0].Addr}, Topic: topicName, Partitions: 3, ReplicationFactor: 3, ClientOpts: clientOpts})
	value := make([]byte, benchRecordSize)
	rand.NewChaCha8([32]byte{2}).Read(value)
	pids, names := serverProcs(c)
	// measure runs fn (b.N records) between CPU readings and reports the figures.
	measure := func(b *testing.B, fn func(ctx context.Context)) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		client := kafkaclients.StartCPU(0)
		procs := make([]*kafkaclients.CPUMeter, len(pids))
		for i, pid := range pids {
			procs[i] = kafkaclients.StartCPU(pid)
		}
		b.ResetTimer()
		start := time.Now()
		fn(ctx)
		d := time.Since(start)
		b.StopTimer()
		reportThroughput(b, b.N, benchRecordSize, d)
		reportCPU(b, names, procs, client)
	}
	// produce writes n records through seed.
	produce := func(b *testing.B, ctx context.Context, seed string, n int) {
		cl := kafkaclients.KgoClient(b, seed, kafkaclients.BenchProducerOpts()...)
		defer cl.Close()
		if err := kafkaclients.ProduceAll(ctx, cl, topicName, value, n); err != nil {
			b.Fatal(err)
		}
	}
	for _, impl := range []string{"ours", "gateway"} {
		b.Run("produce-100B-acks=all/impl="+impl, func(b *testing.B) {
			measure(b, func(ctx context.Context) { produce(b, ctx, seeds[impl], b.N) })
		})
	}
	for _, impl := range []string{"ours", "gateway"} {
		b.Run("consume-100B/impl="+impl, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			// The records to read: the end offsets now, after producing b.N more (untimed).
			adm := kafkaclients.KgoClient(b, seeds[impl])
			startOffs := listEnds(b, ctx, adm, topicName)
			produce(b, ctx, seeds[impl], b.N)
			measure(b, func(ctx context.Context) {
				cl := kafkaclients.KgoClient(b, seeds[impl], kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topicName: startOffs}),
					kgo.FetchMaxBytes(16<<20))
				defer cl.Close()
				for got := 0; got < b.N; {
					fs := cl.PollFetches(ctx)
					if ctx.Err() != nil {
						b.Fatalf("consumed %d of %d: %v", got, b.N, ctx.Err())
					}
					if errs := fs.Errors(); len(errs) > 0 {
						b.Logf("fetch: %v", errs[0].Err)
					}
					got += fs.NumRecords()
				}
			})
		})
	}
}

// listEnds returns each partition's end offset as the offset to start consuming at.
func listEnds(b *testing.B, ctx context.Context, cl *kgo.Client, topic string) map[int32]kgo.Offset {
	b.Helper()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		b.Fatalf("list offsets: %v", err)
	}
	out := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = kgo.NewOffset().At(o.Offset) })
	return out
}
