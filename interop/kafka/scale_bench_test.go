package kafka_test

// How the servers scale with the partition count, ours (cmd/gateway with its embedded broker,
// data fsynced before an acks=all answer) beside kfake (in memory) in the same run, each
// server a child process driven by the same kgo configuration:
//
//	BenchmarkKafkaScaleProduce/partitions=N/impl=ours|kfake
//	BenchmarkKafkaScaleConsume/partitions=N/impl=ours|kfake      N = 4, 1000, 10000
//	BenchmarkKafkaScaleIdle/partitions=N/impl=ours|kfake         N = 4, 1000, 10000, 100000
//
// Produce: KAFKA_SCALE_RECORDS records (1,000,000 by default, 100,000 with -short) of 100 B
// with 16-byte random keys, so kgo's key hashing spreads them over every partition; acks=all,
// idempotent (kgo's default, with its default of up to 5 produce requests in flight), uncompressed. Reported:
// records/s, MB/s, p50-us and p99-us (latency of the produce requests, from kgo's end-to-end
// broker hook: written to read; see scaleLatencyRequests for which requests), server-cpu-ns/record,
// produce-requests (of the timed phase) and latency-requests, and
// for ours fsyncs/produce-request (the broker's own counters, read by sending the gateway
// SIGUSR1; see cmd/gateway/stats_unix.go); client-cpu-ns/record is the benchmark process's
// CPU (kgo's) over the timed phase: client and server share the machine's cores, so what the
// client spends per record bounds the throughput whatever the server does.
//
// Consume: the same records produced beforehand, then read from the start by a fresh client
// (records/s, server-cpu-ns/record).
//
// Idle: the server's RSS (VmRSS) before and after creating an N-partition topic that is never
// written, per partition (rss-bytes/partition), then after opening 200 idle client
// connections (each sends one ApiVersions request and stays open), per connection
// (rss-bytes/connection). For ours also the live heap after a forced GC, from the broker's
// stats line (heap-bytes/partition, heap-bytes/connection), which unlike RSS does not count
// memory the Go runtime has not yet returned to the system. Last, one record is produced to
// each of the first 2,000 partitions (fewer if there are fewer) and the growth per written
// partition is reported (rss-bytes/written-partition, heap-bytes/written-partition): what a
// partition costs once its log is open and it is idle again. (The client connections opened
// before stay open; kgo's own connections add a few.)

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/internal/benchtest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

const scaleTopic = "scale"

// scaleWrittenPartitions is how many partitions the idle benchmark writes one record to (at
// most), to measure a partition whose log is open but idle.
const scaleWrittenPartitions = 2000

var (
	scalePartitions     = []int32{4, 1000, 10_000}
	scaleIdlePartitions = []int32{4, 1000, 10_000, 100_000}
)

// scaleRecords is how many records a scale benchmark moves per iteration.
func scaleRecords() int {
	if v := cluster.EnvCount("KAFKA_SCALE_RECORDS", 0); v > 0 {
		return v
	}
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

// statsServer is a server child process whose "broker stats:" stdout lines (the gateway's
// answers to SIGUSR1) are kept.
type statsServer struct {
	*childServer
	impl string
}

func startStatsServer(b *testing.B, bin, banner, impl string, args ...string) *statsServer {
	b.Helper()
	return &statsServer{childServer: startChild(b, exec.Command(bin, args...), banner, "broker stats: "), impl: impl}
}

// startScaleServer starts impl with no topic of its own (kfake needs one seed topic: a
// 1-partition one that is never used).
func startScaleServer(b *testing.B, bins benchBins, impl string) *statsServer {
	b.Helper()
	switch impl {
	case "ours":
		return startStatsServer(b, bins.gateway, "gateway listening on ", impl, "-listen", "127.0.0.1:0", "-data", b.TempDir())
	case "kfake":
		return startStatsServer(b, bins.kfake, "kfake listening on ", impl, "-partitions", "1", "-topic", "seed")
	}
	b.Fatalf("unknown impl %q", impl)
	return nil
}

// brokerStats asks the gateway for its broker's counters (ours only; nil for kfake).
func (s *statsServer) brokerStats(b *testing.B) map[string]int64 {
	b.Helper()
	if s.impl != "ours" {
		return nil
	}
	syscall.Kill(s.pid, syscall.SIGUSR1)
	select {
	case line := <-s.lines:
		m := map[string]int64{}
		for _, kv := range strings.Fields(strings.TrimPrefix(line, "broker stats: ")) {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("bad stats line %q", line)
			}
			m[k] = n
		}
		return m
	case <-time.After(time.Minute):
		b.Fatal("no broker stats line within a minute of SIGUSR1")
		return nil
	}
}

// rssBytes is a process's resident set (VmRSS).
func rssBytes(b *testing.B, pid int) int64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				break
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// e2eLatency collects the end-to-end latency of produce requests (kgo hook).
type e2eLatency struct {
	mu  sync.Mutex
	on  bool
	lat []time.Duration
}

func (h *e2eLatency) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key != 0 || e.Err() != nil {
		return
	}
	h.mu.Lock()
	if h.on {
		h.lat = append(h.lat, e.DurationE2E())
	}
	h.mu.Unlock()
}

// count is how many latencies were collected since start.
func (h *e2eLatency) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lat)
}

// scaleLatencyRequests is how many produce requests the latency figures of
// BenchmarkKafkaScaleProduce are taken over at least. One round of 1M records makes only
// 30–40 requests with kgo's batching (each carries up to a MiB per partition), so a p99 over
// one round is its slowest request; the benchmark goes on producing rounds of the same records
// after the timed phase (latency only, at most scaleLatencyRounds more) until this many
// requests were answered, so p99 is a percentile and not one outlier.
const (
	scaleLatencyRequests = 200
	scaleLatencyRounds   = 10
)

func (h *e2eLatency) start() {
	h.mu.Lock()
	h.on, h.lat = true, h.lat[:0]
	h.mu.Unlock()
}

// stop returns the sorted latencies since start.
func (h *e2eLatency) stop() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.on = false
	slices.Sort(h.lat)
	return h.lat
}

// scaleProducer is an idempotent acks=all kgo producer, records spread by key.
func scaleProducer(b *testing.B, addr, topic string, opts ...kgo.Opt) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(1 << 18),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordDeliveryTimeout(2 * time.Minute)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// scaleKeys are 16-byte random keys: records cycle through them.
var scaleKeys = func() [][]byte {
	keys := make([][]byte, 1<<16)
	for i := range keys {
		keys[i] = make([]byte, 16)
		rand.Read(keys[i])
	}
	return keys
}()

func scaleValue() []byte {
	v := make([]byte, 100)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

// eachScaleTarget runs body as a sub-benchmark for every count of scalePartitions and both
// implementations, each on a fresh server whose scale topic has that many partitions.
func eachScaleTarget(b *testing.B, body func(b *testing.B, srv *statsServer, parts int32)) {
	bins := buildBenchBins(b)
	for _, parts := range scalePartitions {
		for _, impl := range []string{"ours", "kfake"} {
			b.Run(fmt.Sprintf("partitions=%d/impl=%s", parts, impl), func(b *testing.B) {
				srv := startScaleServer(b, bins, impl)
				createTopic(b, srv.addr, scaleTopic, parts)
				body(b, srv, parts)
			})
		}
	}
}

// produceTimed resets the benchmark timer, produces b.N rounds of records records (value,
// over scaleKeys) through cl, stops the timer and returns the wall time the rounds took.
func produceTimed(b *testing.B, cl *kgo.Client, records int, value []byte) time.Duration {
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		produceN(b, cl, records, value, scaleKeys)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	return elapsed
}

func BenchmarkKafkaScaleProduce(b *testing.B) {
	eachScaleTarget(b, func(b *testing.B, srv *statsServer, parts int32) {
		lat := &e2eLatency{}
		cl := scaleProducer(b, srv.addr, scaleTopic, kgo.WithHooks(lat))
		value := scaleValue()
		produceN(b, cl, 1000, value, scaleKeys) // warm up: connections, metadata, producer id
		records := scaleRecords()
		before := srv.brokerStats(b)
		cpu, clientCPU := kafkaclients.StartCPU(srv.pid), kafkaclients.StartCPU(os.Getpid())
		lat.start()
		elapsed := produceTimed(b, cl, records, value)
		requests := lat.count()
		total := b.N * records
		reportServerCPU(b, cpu, total)
		if ns, ok := clientCPU.Per(total); ok {
			b.ReportMetric(ns, "client-cpu-ns/record")
		}
		b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(total)*100/elapsed.Seconds()/1e6, "MB/s")
		after := srv.brokerStats(b)
		for round := 0; lat.count() < scaleLatencyRequests && round < scaleLatencyRounds; round++ {
			produceN(b, cl, records, value, scaleKeys)
		}
		l := lat.stop()
		benchtest.Report(b, l)
		b.ReportMetric(float64(requests), "produce-requests")
		b.ReportMetric(float64(len(l)), "latency-requests")
		if after != nil {
			if reqs := after["produce_requests"] - before["produce_requests"]; reqs > 0 {
				b.ReportMetric(float64(after["fsyncs"]-before["fsyncs"])/float64(reqs), "fsyncs/produce-request")
			}
			b.ReportMetric(float64(after["open_logs"]), "open-logs")
			b.ReportMetric(float64(after["open_files"]), "open-files")
		}
	})
}

func BenchmarkKafkaScaleConsume(b *testing.B) {
	eachScaleTarget(b, func(b *testing.B, srv *statsServer, parts int32) {
		records := scaleRecords()
		produceN(b, scaleProducer(b, srv.addr, scaleTopic), records, scaleValue(), scaleKeys)
		cpu := kafkaclients.StartCPU(srv.pid)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			cl, err := kgo.NewClient(kgo.SeedBrokers(srv.addr), kgo.ConsumeTopics(scaleTopic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			kafkaclients.PollN(ctx, b, cl, records)
			cancel()
			cl.Close()
		}
		elapsed := time.Since(start)
		b.StopTimer()
		total := b.N * records
		reportServerCPU(b, cpu, total)
		b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(total)*100/elapsed.Seconds()/1e6, "MB/s")
	})
}

// idleConns opens n connections to addr that each make one ApiVersions round trip and
// then stay open until the benchmark ends.
func idleConns(b testing.TB, addr string, n int) {
	b.Helper()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("idle"))
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 0
		if _, err := c.Write(f.AppendRequest(nil, req, int32(i))); err != nil {
			b.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			b.Fatal(err)
		}
		n := int(size[0])<<24 | int(size[1])<<16 | int(size[2])<<8 | int(size[3])
		if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKafkaScaleIdle(b *testing.B) {
	bins := buildBenchBins(b)
	const conns = 200
	for _, parts := range scaleIdlePartitions {
		for _, impl := range []string{"ours", "kfake"} {
			b.Run(fmt.Sprintf("partitions=%d/impl=%s", parts, impl), func(b *testing.B) {
				for range b.N {
					srv := startScaleServer(b, bins, impl)
					createTopic(b, srv.addr, "warmup", 1) // both servers have served an admin request
					rss0, heap0 := rssBytes(b, srv.pid), srv.brokerStats(b)
					createTopic(b, srv.addr, "idle", parts)
					rss1, heap1 := rssBytes(b, srv.pid), srv.brokerStats(b)
					idleConns(b, srv.addr, conns)
					rss2, heap2 := rssBytes(b, srv.pid), srv.brokerStats(b)
					// Then one record to each of the first written partitions: what a
					// partition costs once its log is open and it has gone idle again.
					written := min(parts, scaleWrittenPartitions)
					wcl := scaleProducer(b, srv.addr, "idle", kgo.RecordPartitioner(kgo.ManualPartitioner()))
					ctx := context.Background()
					for p := range written {
						wcl.Produce(ctx, &kgo.Record{Partition: p, Value: scaleValue()}, nil)
					}
					if err := wcl.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					wcl.Close()
					rss3, heap3 := rssBytes(b, srv.pid), srv.brokerStats(b)
					b.ReportMetric(float64(rss3-rss2)/float64(written), "rss-bytes/written-partition")
					if heap3 != nil {
						b.ReportMetric(float64(heap3["heap_bytes"]-heap2["heap_bytes"])/float64(written), "heap-bytes/written-partition")
					}
					// Per-partition figures of a few partitions are noise (a page of RSS, a GC
					// cycle's leftovers): reported from 1,000 partitions on.
					if parts >= 1000 {
						b.ReportMetric(float64(rss1-rss0)/float64(parts), "rss-bytes/partition")
						if heap0 != nil {
							b.ReportMetric(float64(heap1["heap_bytes"]-heap0["heap_bytes"])/float64(parts), "heap-bytes/partition")
						}
					}
					b.ReportMetric(float64(rss2-rss1)/conns, "rss-bytes/connection")
					b.ReportMetric(float64(rss1), "rss-bytes")
					if heap0 != nil {
						b.ReportMetric(float64(heap2["heap_bytes"]-heap1["heap_bytes"])/conns, "heap-bytes/connection")
						b.ReportMetric(float64(heap2["goroutines"]-heap1["goroutines"])/conns, "goroutines/connection")
						b.ReportMetric(float64(heap1["open_logs"]), "open-logs")
					}
				}
			})
		}
	}
}

// batchShape counts the record batches kgo wrote and the records in them (kgo hook).
type batchShape struct{ batches, records atomic.Int64 }

func (h *batchShape) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.batches.Add(1)
	h.records.Add(int64(m.NumRecords))
}

// BenchmarkKafkaScaleProduceInProcess is BenchmarkKafkaScaleProduce against ours only, with
// the gateway and broker in the benchmark's process (rcStart), so that -cpuprofile and
// -memprofile see the server's produce path (the client's CPU is in the profile too: focus on
// the gateway, broker and wal packages). Besides the produce figures it reports the shape of
// the traffic: record batches per produce request and records per batch.
func BenchmarkKafkaScaleProduceInProcess(b *testing.B) {
	for _, parts := range scalePartitions {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			s := rcStart(b, b.TempDir(), "")
			createTopic(b, s.addr, scaleTopic, parts)
			lat, shape := &e2eLatency{}, &batchShape{}
			cl := scaleProducer(b, s.addr, scaleTopic, kgo.WithHooks(lat, shape))
			value := scaleValue()
			produceN(b, cl, 1000, value, scaleKeys)
			records := scaleRecords()
			lat.start()
			b0, r0 := shape.batches.Load(), shape.records.Load()
			elapsed := produceTimed(b, cl, records, value)
			l := lat.stop()
			total := b.N * records
			b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
			benchtest.Report(b, l)
			if len(l) > 0 {
				batches := shape.batches.Load() - b0
				b.ReportMetric(float64(batches)/float64(len(l)), "batches/request")
				b.ReportMetric(float64(shape.records.Load()-r0)/float64(batches), "records/batch")
			}
		})
	}
}
