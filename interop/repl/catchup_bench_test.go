package repl_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// BenchmarkReplCatchUp: how fast a replica whose disk was replaced catches up (issue #16's
// "catch-up rate of a wiped replica"). Three brokers (one metadata quorum) and one gateway on
// loopback; a 1-partition RF=3 topic holding REPL_CATCHUP_MB (default 64) MB of incompressible
// 1 KiB records, written acks=all. Each iteration kills a follower of the partition, deletes
// its data directory (identity kept), restarts it and times from the restart to the partition's
// full in-sync replica set in the gateway's Metadata: the new replica is added under a new raft
// id and sent the whole log. Reported: catch-up-MB/s (record bytes over that time) and
// catch-up-s per replica. No peer figure: the time includes the process start, the quorum's
// membership change and the transfer, as an operator sees it.
func BenchmarkReplCatchUp(b *testing.B) {
	mb := cluster.EnvCount("REPL_CATCHUP_MB", 64)
	const size = 1024
	cluster.RequireQuorum(b)
	c := cluster.Start(b, cluster.Options{Brokers: 3, Gateways: 1, Quorum: true})
	b.Cleanup(func() { idCache.Delete(c) })
	allLive(b, c)
	cfg := workload.Config{Seeds: seeds(c), Topic: "bench-catchup", Partitions: 1, ReplicationFactor: 3, ClientOpts: clientOpts}
	createReplicated(b, c, cfg)

	value := make([]byte, size)
	rand.NewChaCha8([32]byte{2}).Read(value)
	cl := kafkaclients.KgoClient(b, c.Gateways[0].Addr, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(1<<14),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.DefaultProduceTopic(cfg.Topic))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := mb << 20 / size
	produceTimed(b, ctx, cl, cfg.Topic, value, n)
	cl.Close()

	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		p := settled(b, c, cfg, 2*time.Minute)[0]
		fs := followers(b, c, p)
		victim := fs[i%len(fs)]
		victim.Kill()
		victim.Wipe(b, true)
		b.StartTimer()
		at := time.Now()
		victim.Start(b)
		settled(b, c, cfg, 10*time.Minute)
		total += time.Since(at)
	}
	b.StopTimer()
	per := total / time.Duration(b.N)
	b.ReportMetric(float64(n*size)/1e6/per.Seconds(), "catch-up-MB/s")
	b.ReportMetric(per.Seconds(), "catch-up-s")
}
