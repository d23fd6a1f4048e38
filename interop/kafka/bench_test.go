package kafka_test

// Throughput and latency through the gateway with the real broker (cmd/gateway, data
// fsynced before an acks=all answer, on the test's temp directory), side by side with
// franz-go's kfake (in memory, no I/O) in the same run. Each server runs as its own child
// process (kfake through interop/kafka/kfakeserver), so the client process, its CPU and its
// garbage collector are the same for both; both are driven by the same kgo configuration:
//
//	BenchmarkKafkaProduce/size=100B/partitions=1/impl=ours|kfake   records/s MB/s p50-us p99-us
//	BenchmarkKafkaConsume/size=100B/partitions=1/impl=ours|kfake   records/s MB/s
//
// (each also reports server-cpu-ns/record, see below).
//
// Produce: b.N records of the given value size, acks=all, produced asynchronously by one
// client with kgo's default batching, up to 5 produce requests in flight per connection
// (what an idempotent kgo producer uses; idempotence itself is off on both sides, so the
// figure is plain acks=all produce). p50/p99 are per-request latencies of 200
// single-record acks=all produces made one after another after the throughput phase.
// Consume: b.N records produced beforehand, then read from the start by a fresh client.
//
// The producer sends uncompressed batches (kgo compresses with snappy by default): with
// compression on, the repetitive values shrink about twentyfold on the client, and the
// servers would see a twentieth of the bytes the MB/s figure claims. Uncompressed, the
// value bytes are what crosses the socket and, for ours, what is written and fsynced.
//
// Both sides also report server-cpu-ns/record: the server process's CPU time (user +
// system, all threads, from /proc on Linux) over the timed phase divided by the records.
// On a machine whose cores the client and server share, this is the figure that says how
// much the server costs, independent of how busy the machine was during the run.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/benchtest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

const benchTopic = "bench"

// benchBins are the server binaries, built once per top-level benchmark.
type benchBins struct{ gateway, kfake string }

func buildBenchBins(b *testing.B) benchBins {
	return benchBins{
		gateway: buildGateway(b),
		kfake:   buildBinary(b, "github.com/meshkafka/meshkafka/interop/kafka/kfakeserver"),
	}
}

// server is a running server process under test.
type server struct {
	addr string
	pid  int
}

// benchTarget starts the implementation under test as a child process and returns it, with
// the bench topic created.
func benchTarget(b *testing.B, bins benchBins, impl string, partitions int32) server {
	b.Helper()
	switch impl {
	case "ours":
		srv := startServerProcess(b, bins.gateway, "gateway listening on ",
			"-listen", "127.0.0.1:0", "-data", b.TempDir())
		createTopic(b, srv.addr, benchTopic, partitions)
		return srv
	case "kfake":
		return startServerProcess(b, bins.kfake, "kfake listening on ", "-partitions", fmt.Sprint(partitions), "-topic", benchTopic)
	}
	b.Fatalf("unknown impl %q", impl)
	return server{}
}

// createTopic creates topic name with the given partitions on the server at addr.
func createTopic(b *testing.B, addr, name string, partitions int32) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, name); err != nil || r.Err != nil {
		b.Fatalf("create topic %s with %d partitions: %v %v", name, partitions, err, r.Err)
	}
}

// reportServerCPU reports the server's CPU time over m's phase per record.
func reportServerCPU(b *testing.B, m *kafkaclients.CPUMeter, records int) {
	if ns, ok := m.Per(records); ok {
		b.ReportMetric(ns, "server-cpu-ns/record")
	}
}

// startServerProcess runs bin and waits for its line "<banner>ADDR ...".
func startServerProcess(b *testing.B, bin, banner string, args ...string) server {
	b.Helper()
	return startChild(b, exec.Command(bin, args...), banner, "").server
}

// childServer is a server child process started by startChild.
type childServer struct {
	server
	stderr *kafkaclients.SyncBuffer
	lines  chan string   // stdout lines after the banner that start with startChild's keep
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's answer, once done is closed
}

// startChild starts cmd, waits for its first stdout line "<banner>ADDR ..." and stops it when
// the test ends (SIGTERM, then SIGKILL after 30 s), showing its stderr if the test failed.
// Later stdout lines that start with keep (none if keep is "") are sent to lines, dropped
// while nobody reads them. The child is killed if the test process dies.
func startChild(tb testing.TB, cmd *exec.Cmd, banner, keep string) *childServer {
	tb.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	c := &childServer{stderr: &kafkaclients.SyncBuffer{}, lines: make(chan string, 16), done: make(chan struct{})}
	cmd.Stderr = c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		for sc.Scan() {
			if keep != "" && strings.HasPrefix(sc.Text(), keep) {
				select {
				case c.lines <- sc.Text():
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
		c.err = cmd.Wait()
		close(c.done)
	}()
	name := strings.Join(cmd.Args, " ")
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-c.done
		}
		if tb.Failed() {
			tb.Logf("%s: stderr (tail): %s", name, tail(c.stderr.String(), 4000))
		}
	})
	line := <-first
	if !strings.HasPrefix(line, banner) {
		tb.Fatalf("%s did not start (%q)", name, line)
	}
	c.addr = strings.Fields(strings.TrimPrefix(line, banner))[0]
	c.pid = cmd.Process.Pid
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func benchProducer(b *testing.B, addr string, opts ...kgo.Opt) *kgo.Client {
	b.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.DefaultProduceTopic(benchTopic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1 << 20),
		kgo.MaxProduceRequestsInflightPerBroker(5), kgo.ProducerBatchCompression(kgo.NoCompression())}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// produceN produces n records of value (shared, read-only), keyed by keys[i%len(keys)] if
// there are keys, and waits for every ack.
func produceN(b *testing.B, cl *kgo.Client, n int, value []byte, keys [][]byte) {
	b.Helper()
	ctx := context.Background()
	errs := make(chan error, 1)
	cb := func(_ *kgo.Record, err error) {
		if err != nil {
			select {
			case errs <- err:
			default:
			}
		}
	}
	for i := range n {
		r := &kgo.Record{Value: value}
		if len(keys) > 0 {
			r.Key = keys[i%len(keys)]
		}
		cl.Produce(ctx, r, cb)
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

var benchSizes = []struct {
	name string
	size int
}{{"100B", 100}, {"1KiB", 1024}}

// eachBenchTarget runs f as a sub-benchmark against a fresh server for every record size,
// partition count (1, 8) and implementation (ours, kfake).
func eachBenchTarget(b *testing.B, f func(b *testing.B, srv server, size int)) {
	bins := buildBenchBins(b)
	for _, sz := range benchSizes {
		for _, parts := range []int32{1, 8} {
			for _, impl := range []string{"ours", "kfake"} {
				b.Run(fmt.Sprintf("size=%s/partitions=%d/impl=%s", sz.name, parts, impl), func(b *testing.B) {
					f(b, benchTarget(b, bins, impl, parts), sz.size)
				})
			}
		}
	}
}

func BenchmarkKafkaProduce(b *testing.B) {
	eachBenchTarget(b, func(b *testing.B, srv server, size int) {
		cl := benchProducer(b, srv.addr)
		value := make([]byte, size)
		for i := range value {
			value[i] = byte('a' + i%26)
		}
		produceN(b, cl, 100, value, nil) // warm up: connections, metadata
		cpu := kafkaclients.StartCPU(srv.pid)
		b.ResetTimer()
		start := time.Now()
		produceN(b, cl, b.N, value, nil)
		elapsed := time.Since(start)
		b.StopTimer()
		reportServerCPU(b, cpu, b.N)
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(b.N)*float64(size)/elapsed.Seconds()/1e6, "MB/s")

		lat := make([]time.Duration, 200)
		ctx := context.Background()
		for i := range lat {
			t0 := time.Now()
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(t0)
		}
		benchtest.Report(b, lat)
	})
}

func BenchmarkKafkaConsume(b *testing.B) {
	eachBenchTarget(b, func(b *testing.B, srv server, size int) {
		value := make([]byte, size)
		produceN(b, benchProducer(b, srv.addr, kgo.ProducerBatchMaxBytes(consumeBatchBytes)), b.N, value, nil)
		cl, err := kgo.NewClient(kgo.SeedBrokers(srv.addr), kgo.ConsumeTopics(benchTopic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cpu := kafkaclients.StartCPU(srv.pid)
		b.ResetTimer()
		start := time.Now()
		kafkaclients.PollN(ctx, b, cl, b.N)
		elapsed := time.Since(start)
		b.StopTimer()
		reportServerCPU(b, cpu, b.N)
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(b.N)*float64(size)/elapsed.Seconds()/1e6, "MB/s")
	})
}

// consumeBatchBytes caps the batches the consume benchmarks store. The batches a kgo
// producer cuts under kgo's default 1 MB cap depend on how fast the server acknowledged
// while they were produced, so with the default the two servers would hold different batch
// layouts and the consume figures would carry the produce phase's timing. With a cap well
// below the backlog the producer builds, every batch is full in both servers and both are
// read from the same layout.
const consumeBatchBytes = 64 << 10
