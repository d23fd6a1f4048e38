package kafka_test

// Transactions through the gateway with the real broker (cmd/gateway: the transaction
// coordinator's records and the markers go through the broker's commit journal, EndTxn is
// answered once they are durable; see broker/txn's doc, Durability), side by side with franz-go's
// kfake (in memory) in the same run, each server its own child process driven by the same kgo
// configuration (see bench_test.go):
//
//	BenchmarkKafkaTxnProduce/size=100B/partitions=N/txn=R/impl=ours|kfake
//	    records/s MB/s txns/s p50-us p99-us server-cpu-ns/record
//
// b.N records of 100 bytes produced by one transactional kgo producer (acks=all, idempotent,
// uncompressed, up to 5 produce requests in flight as kgo allows an idempotent producer,
// round-robin over the partitions, so every transaction spans all of them) in
// transactions of R records: BeginTransaction, R asynchronous produces, Flush,
// EndTransaction(commit). p50/p99 are per-transaction latencies (begin to commit answered).
//
//	BenchmarkKafkaTxnConsume/size=100B/partitions=N/impl=ours|read_uncommitted|kfake
//	    records/s MB/s server-cpu-ns/record
//
// The log holds b.N records written in transactions of 1,000 records of which every tenth was
// aborted; a fresh consumer reads every partition from the start to its end. impl=ours and
// impl=kfake read with read_committed (the aborted records filtered out, with the
// aborted-transaction lists Fetch returns); impl=read_uncommitted is ours read with
// read_uncommitted, so the ratio ours/read_uncommitted in the JSON report is what
// read_committed costs. records/s counts the log's records passed over (delivered or
// filtered), so the three read the same log in the same unit.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/benchtest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// txnBenchProducer is a transactional producer of the bench topic configured like
// benchProducer, with idempotence on (transactions require it).
func txnBenchProducer(b *testing.B, addr, txid string, opts ...kgo.Opt) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.TransactionalID(txid),
		kgo.DefaultProduceTopic(benchTopic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1 << 20),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.TransactionTimeout(time.Minute)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// produceTxns produces n records of value in transactions of per records, committing each
// unless abortEvery > 0 and it is the abortEvery-th; it returns each transaction's latency.
// It only returns errors (it may run on a goroutine of its own).
func produceTxns(cl *kgo.Client, n, per, abortEvery int, value []byte) ([]time.Duration, error) {
	ctx := context.Background()
	var lat []time.Duration
	for done, i := 0, 0; done < n; i++ {
		t0 := time.Now()
		if err := cl.BeginTransaction(); err != nil {
			return nil, err
		}
		k := min(per, n-done)
		var perr atomic.Value
		for range k {
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					perr.CompareAndSwap(nil, err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			return nil, err
		}
		if err, _ := perr.Load().(error); err != nil {
			return nil, fmt.Errorf("produce in transaction %d: %w", i, err)
		}
		how := kgo.TryCommit
		if abortEvery > 0 && i%abortEvery == abortEvery-1 {
			how = kgo.TryAbort
		}
		if err := cl.EndTransaction(ctx, how); err != nil {
			return nil, fmt.Errorf("end transaction %d: %w", i, err)
		}
		lat = append(lat, time.Since(t0))
		done += k
	}
	return lat, nil
}

func BenchmarkKafkaTxnProduce(b *testing.B) {
	bins := buildBenchBins(b)
	value := make([]byte, 100)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	for _, c := range []struct {
		parts     int32
		per       int
		producers int
	}{{1, 100, 1}, {1, 1000, 1}, {8, 1000, 1}, {8, 1000, 8}} {
		for _, impl := range []string{"ours", "kfake"} {
			b.Run(fmt.Sprintf("size=100B/partitions=%d/txn=%d/producers=%d/impl=%s", c.parts, c.per, c.producers, impl), func(b *testing.B) {
				srv := benchTarget(b, bins, impl, c.parts)
				cls := make([]*kgo.Client, c.producers)
				for i := range cls {
					cls[i] = txnBenchProducer(b, srv.addr, fmt.Sprintf("bench-txn-%d", i))
					// Warm up: producer id, coordinator, connections.
					if _, err := produceTxns(cls[i], 2*c.per, c.per, 0, value); err != nil {
						b.Fatal(err)
					}
				}
				var lats benchtest.Latencies
				var txns atomic.Int64
				cpu := kafkaclients.StartCPU(srv.pid)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				var failed atomic.Value
				for i, cl := range cls {
					n := b.N / c.producers
					if i < b.N%c.producers {
						n++
					}
					wg.Go(func() {
						lat, err := produceTxns(cl, n, c.per, 0, value)
						if err != nil {
							failed.CompareAndSwap(nil, err)
						}
						txns.Add(int64(len(lat)))
						lats.Add(lat)
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(err)
				}
				reportServerCPU(b, cpu, b.N)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
				b.ReportMetric(float64(b.N)*float64(len(value))/elapsed.Seconds()/1e6, "MB/s")
				b.ReportMetric(float64(txns.Load())/elapsed.Seconds(), "txns/s")
				lats.Report(b)
			})
		}
	}
}

func BenchmarkKafkaTxnConsume(b *testing.B) {
	bins := buildBenchBins(b)
	value := make([]byte, 100)
	for _, parts := range []int32{1, 8} {
		for _, impl := range []string{"ours", "read_uncommitted", "kfake"} {
			b.Run(fmt.Sprintf("size=100B/partitions=%d/impl=%s", parts, impl), func(b *testing.B) {
				server, iso := impl, kgo.ReadCommitted()
				if impl == "read_uncommitted" {
					server, iso = "ours", kgo.ReadUncommitted()
				}
				srv := benchTarget(b, bins, server, parts)
				if _, err := produceTxns(txnBenchProducer(b, srv.addr, "bench-fill", kgo.ProducerBatchMaxBytes(consumeBatchBytes)), b.N, 1000, 10, value); err != nil {
					b.Fatal(err)
				}
				ends := txnBenchEnds(b, srv.addr)
				cl, err := kgo.NewClient(kgo.SeedBrokers(srv.addr), kgo.ConsumeTopics(benchTopic), kgo.FetchIsolationLevel(iso),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond), kgo.KeepControlRecords())
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				cpu := kafkaclients.StartCPU(srv.pid)
				b.ResetTimer()
				start := time.Now()
				// Read until every partition delivered the offset before its end: the control
				// records are kept, so that offset (a marker) is always delivered.
				for pending := len(ends); pending > 0; {
					fs := cl.PollFetches(ctx)
					if ctx.Err() != nil {
						b.Fatalf("%d partitions not read to their end", pending)
					}
					fs.EachError(func(t string, p int32, err error) { b.Fatalf("fetch %s/%d: %v", t, p, err) })
					fs.EachRecord(func(r *kgo.Record) {
						if end, ok := ends[r.Partition]; ok && r.Offset >= end-1 {
							delete(ends, r.Partition)
							pending--
						}
					})
				}
				elapsed := time.Since(start)
				b.StopTimer()
				reportServerCPU(b, cpu, b.N)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
				b.ReportMetric(float64(b.N)*float64(len(value))/elapsed.Seconds()/1e6, "MB/s")
			})
		}
	}
}

// txnBenchEnds returns the bench topic's end offsets (partitions holding anything), which
// must be its last stable offsets too: every transaction has ended.
func txnBenchEnds(b *testing.B, addr string) map[int32]int64 {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hwm, lso, err := listStable(ctx, adm, benchTopic)
	if err != nil {
		b.Fatalf("list offsets: %v", err)
	}
	ends := map[int32]int64{}
	hwm.Each(func(o kadm.ListedOffset) {
		if l, _ := lso.Lookup(benchTopic, o.Partition); l.Offset != o.Offset {
			b.Fatalf("partition %d: last stable offset %d, high watermark %d", o.Partition, l.Offset, o.Offset)
		}
		if o.Offset > 0 {
			ends[o.Partition] = o.Offset
		}
	})
	return ends
}
