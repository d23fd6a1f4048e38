package meshkafka_test

// BenchmarkMeshHop: what the mesh hop costs. The same kgo client produces (acks=all) and
// consumes 100-byte records through
//
//	impl=ours-mesh    cmd/gateway -brokers … → mesh → cmd/broker (two processes)
//	impl=ours-inproc  cmd/gateway with its embedded broker (one process)
//	impl=kfake        franz-go's kfake cluster (in memory, in the test process)
//
// One op is one record; records/s and MB/s (value bytes) are reported, and for ours the CPU
// time per record of each server process (gateway-, broker-cpu-ns/record), of both together
// (server-cpu-ns/record) and of the client (this test process). All share the machine's
// cores, so throughput follows the sum; the per-process figures say what each would need on
// a core of its own.
//
// The two mesh processes run with GOMAXPROCS at half the machine's cores each (at least 1),
// the in-process gateway with the default (all of them): co-located server processes each
// get their share, as a CPU limit per container would set it (Go sizes GOMAXPROCS from the
// cgroup limit). With the default in both mesh processes, four Go schedulers compete for two
// cores and spin and wake each other: on 2 cores that cost the mesh ≈20-25% of its
// throughput in our runs.
//
// Produce writes b.N records to a fresh 3-partition topic (deleted afterwards), uncompressed,
// idempotence off (plain acks=all) with up to 5 produce requests in flight per connection, as
// kgo's default idempotent producer runs and as BenchmarkKafkaProduce does (with idempotence
// off kgo would otherwise send one request at a time). Consume reads a fixed set of 200 000
// records from the start as often as b.N needs. Produce-sync writes b.N records one at a
// time (each its own request, acks=all): the per-op cost of the hop.
//
// With MESH_BENCH_PROFILE set to a directory, the two ours-mesh processes write a CPU profile
// of every timed phase there (cmd/internal/cli's CPUProfileEnv, toggled by SIGUSR2) with their
// mesh socket counters beside it (the profiler costs them a little CPU; the in-process
// gateway runs without), and ours-mesh also reports the datagrams that carried the phase,
// per MB of record values: g2b-pkts/MB and g2b-small/MB sent by the gateway (small:
// at most 128 bytes, in bulk transfers almost all ACK-only), b2g-pkts/MB and b2g-small/MB
// sent by the broker, and sends/MB (send syscalls of both).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

const (
	benchRecordSize = 100
	benchPartitions = 3
	benchConsumeSet = 200_000 // records each target's consume topic holds
)

func BenchmarkMeshHop(b *testing.B) {
	var procs []*proc
	logsOf := func() string { // stacks and logs of the child processes, which are stopped
		var sb strings.Builder
		for _, p := range procs {
			p.Quit()
		}
		for _, p := range procs {
			sb.WriteString("\n" + p.Logs())
		}
		return sb.String()
	}
	servers := map[string][]int{} // the server processes of each target, for their CPU time
	profDir := os.Getenv("MESH_BENCH_PROFILE")
	var profEnv []string
	if profDir != "" {
		profEnv = []string{cluster.CPUProfileEnv + "=" + profDir}
	}
	targets := []struct {
		impl  string
		start func(b *testing.B) string
	}{
		{"ours-mesh", func(b *testing.B) string {
			// Two server processes on one machine: each gets its share of the cores.
			share := append([]string{fmt.Sprintf("GOMAXPROCS=%d", max(1, runtime.NumCPU()/2))}, profEnv...)
			g := newGatewayIdentity(b, "gateway")
			g.env = share
			br := newBrokerEnv(b, "broker", share, g.id)
			g.startMesh(b, br)
			procs = append(procs, br.p, g.p)
			servers["ours-mesh"] = []int{g.p.Pid(), br.p.Pid()}
			return g.addr
		}},
		{"ours-inproc", func(b *testing.B) string {
			g := newGatewayIdentity(b, "gateway-inproc")
			g.startEmbedded(b)
			procs = append(procs, g.p)
			servers["ours-inproc"] = []int{g.p.Pid()}
			return g.addr
		}},
		{"kfake", func(b *testing.B) string {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			return c.ListenAddrs()[0]
		}},
	}
	addrs := map[string]string{}
	for _, tg := range targets {
		addrs[tg.impl] = tg.start(b) // once, stopped when the whole benchmark ends
	}
	// Incompressible values, sent uncompressed: the figures measure the path, not a codec.
	value := make([]byte, benchRecordSize)
	rand.NewChaCha8([32]byte{1}).Read(value)
	var seq atomic.Int64
	newTopic := func(b *testing.B, addr string) string {
		topic := fmt.Sprintf("bench-%d", seq.Add(1))
		createTopic(b, addr, topic, benchPartitions, nil)
		return topic
	}
	produce := func(b *testing.B, addr, topic string, n int) {
		cl := kafkaclients.KgoClient(b, addr, kafkaclients.BenchProducerOpts()...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kafkaclients.ProduceAll(ctx, cl, topic, value, n); err != nil {
			b.Fatalf("produce %d records to %s: %v%s", n, addr, err, logsOf())
		}
		cl.Close()
	}
	// meter starts measuring the CPU time of the target's server processes (gateway, then
	// broker) and of this process (the client; for kfake also the server, which runs in it).
	type meters struct {
		client *kafkaclients.CPUMeter
		procs  []*kafkaclients.CPUMeter
	}
	meter := func(impl string) meters {
		m := meters{client: kafkaclients.StartCPU(0)}
		for _, pid := range servers[impl] {
			m.procs = append(m.procs, kafkaclients.StartCPU(pid))
		}
		return m
	}
	report := func(b *testing.B, d time.Duration, m meters) {
		s := d.Seconds()
		b.ReportMetric(float64(b.N)/s, "records/s")
		b.ReportMetric(float64(b.N)*benchRecordSize/1e6/s, "MB/s")
		if len(m.procs) == 0 {
			return
		}
		total, ok := 0.0, true
		for i, pm := range m.procs {
			ns, pok := pm.Per(b.N)
			ok = ok && pok
			total += ns
			if pok {
				b.ReportMetric(ns, []string{"gateway", "broker"}[i]+"-cpu-ns/record")
			}
		}
		if ok {
			b.ReportMetric(total, "server-cpu-ns/record")
		}
		if ns, ok := m.client.Per(b.N); ok {
			b.ReportMetric(ns, "client-cpu-ns/record")
		}
	}
	// measure runs run (b.N records' worth) with the benchmark timer and the CPU meters of
	// impl on, then reports the rates.
	measure := func(b *testing.B, impl string, run func()) {
		profiled := profDir != "" && impl == "ours-mesh"
		profile := func() {
			for _, pid := range servers[impl] {
				syscall.Kill(pid, syscall.SIGUSR2)
			}
		}
		var mark cluster.SocketMark
		if profiled {
			mark = cluster.MarkSockets(profDir, servers[impl]...)
		}
		b.ResetTimer()
		m := meter(impl)
		if profiled {
			profile()
		}
		start := time.Now()
		run()
		d := time.Since(start)
		b.StopTimer()
		if profiled {
			profile()
		}
		report(b, d, m)
		if profiled {
			reportPackets(b, mark, float64(b.N)*benchRecordSize/1e6)
		}
	}
	dropTopic := func(b *testing.B, addr, topic string) { // keeps the disk use bounded
		adm := kadm.NewClient(kafkaclients.KgoClient(b, addr))
		defer adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adm.DeleteTopic(ctx, topic); err != nil {
			b.Fatalf("delete topic %s: %v", topic, err)
		}
	}
	for _, tg := range targets {
		addr := addrs[tg.impl]
		b.Run(fmt.Sprintf("produce-%dB/impl=%s", benchRecordSize, tg.impl), func(b *testing.B) {
			topic := newTopic(b, addr)
			measure(b, tg.impl, func() { produce(b, addr, topic, b.N) })
			dropTopic(b, addr, topic)
		})
	}
	// Produce one record at a time (ProduceSync, acks=all): every record is its own Kafka
	// request and its own op over the mesh, so the figures are the per-op cost.
	for _, tg := range targets {
		addr := addrs[tg.impl]
		b.Run(fmt.Sprintf("produce-sync-%dB/impl=%s", benchRecordSize, tg.impl), func(b *testing.B) {
			topic := newTopic(b, addr)
			cl := kafkaclients.KgoClient(b, addr, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
				kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			measure(b, tg.impl, func() {
				for range b.N {
					if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value}).FirstErr(); err != nil {
						b.Fatalf("produce to %s: %v%s", addr, err, logsOf())
					}
				}
			})
			dropTopic(b, addr, topic)
		})
	}
	// Consume: a fixed set of records per target, read from the start as many times as b.N
	// needs (one op is one record read), so the disk use stays bounded.
	for _, tg := range targets {
		addr := addrs[tg.impl]
		topic := ""
		b.Run(fmt.Sprintf("consume-%dB/impl=%s", benchRecordSize, tg.impl), func(b *testing.B) {
			if topic == "" {
				topic = newTopic(b, addr)
				produce(b, addr, topic, benchConsumeSet)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			measure(b, tg.impl, func() {
				for left := b.N; left > 0; {
					cl := kafkaclients.KgoClient(b, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
						kgo.FetchMaxWait(100*time.Millisecond))
					for pass := min(left, benchConsumeSet); pass > 0; {
						fs := cl.PollFetches(ctx)
						if ctx.Err() != nil {
							b.Fatalf("consumed %d of %d records%s", b.N-left, b.N, logsOf())
						}
						fs.EachError(func(tp string, p int32, err error) { b.Fatalf("fetch %s/%d: %v", tp, p, err) })
						n := fs.NumRecords()
						pass -= n
						left -= n
					}
					cl.Close()
				}
			})
		})
	}
}

// reportPackets reports the mesh datagrams of the last timed phase, per MB of record values,
// from the socket counters that the gateway and the broker (the mark's pids, in that order)
// wrote beside their CPU profiles (see BenchmarkMeshHop).
func reportPackets(b *testing.B, mark cluster.SocketMark, mb float64) {
	b.Helper()
	counts, err := mark.Counters(5 * time.Second)
	if err != nil {
		b.Fatal(err)
	}
	gw, br := counts[0], counts[1]
	b.ReportMetric(float64(gw["tx_packets"])/mb, "g2b-pkts/MB")
	b.ReportMetric(float64(gw["tx_small"])/mb, "g2b-small/MB")
	b.ReportMetric(float64(br["tx_packets"])/mb, "b2g-pkts/MB")
	b.ReportMetric(float64(br["tx_small"])/mb, "b2g-small/MB")
	b.ReportMetric(float64(gw["tx_writes"]+br["tx_writes"])/mb, "sends/MB")
}
