package kafka_test

// Crash test: cmd/gateway runs as a child process under acks=all load from several
// producers and is killed with SIGKILL at random moments, then restarted on the same data
// directory. After every restart, every acknowledged record must be present exactly once,
// at the partition and offset its acknowledgement named, each producer's records in produce
// order, and every partition's offsets contiguous from 0.
//
// The producers are idempotent (kgo's default) and outlive each kill: the next incarnation is
// started at once and they retry, against it, every batch the kill left unanswered. A batch
// the killed broker had stored (and fsynced) but not acknowledged must then be recognised
// from the log and not be stored again, so "exactly once" covers retries across kill -9.
//
// Cycles: 20 by default; -crash.cycles=N or KAFKA_CRASH_CYCLES=N for more. The binary is
// built from ./cmd/gateway unless KAFKA_CRASH_GATEWAY_BIN names one.
//
// TestCrashKill9ManyPartitions runs the same over 1,000 partitions (20 cycles, about three
// minutes with -race on 2 cores; CHAOS_CYCLES=N for more).

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

var crashCycles = flag.Int("crash.cycles", 0, "kill -9 cycles in TestCrashKill9 (default 20, or KAFKA_CRASH_CYCLES)")

const (
	crashTopic      = "crash"
	crashPartitions = 4
	crashProducers  = 4
)

// crashChild is one running gateway process.
type crashChild struct {
	cmd   *exec.Cmd
	addr  string
	done  chan error
	stats chan string // the "broker stats: " lines it prints on SIGUSR1
}

// startCrashChild starts the gateway bin on dir and addr, with the extra flags args.
func startCrashChild(t *testing.T, bin, dir, addr string, args ...string) *crashChild {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ { // the killed process's port may linger briefly
		cmd := exec.Command(bin, append([]string{"-listen", addr, "-data", dir, "-partitions", "1"}, args...)...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr := &kafkaclients.SyncBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c := &crashChild{cmd: cmd, done: make(chan error, 1), stats: make(chan string, 1)}
		lines := bufio.NewScanner(out)
		if lines.Scan() && strings.HasPrefix(lines.Text(), "gateway listening on ") {
			c.addr = strings.Fields(strings.TrimPrefix(lines.Text(), "gateway listening on "))[0]
			go func() {
				for lines.Scan() {
					if l := lines.Text(); strings.HasPrefix(l, "broker stats: ") {
						select {
						case c.stats <- l:
						default:
						}
					}
				}
				io.Copy(io.Discard, out)
				c.done <- cmd.Wait()
			}()
			return c
		}
		cmd.Wait()
		lastErr = fmt.Errorf("no banner; stderr: %s", stderr.String())
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway did not start: %v", lastErr)
	return nil
}

// stat asks the gateway for its broker's counters (SIGUSR1) and returns the one named.
func (c *crashChild) stat(t *testing.T, name string) int64 {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGUSR1)
	select {
	case line := <-c.stats:
		for _, kv := range strings.Fields(strings.TrimPrefix(line, "broker stats: ")) {
			if k, v, _ := strings.Cut(kv, "="); k == name {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatalf("stats line %q: %v", line, err)
				}
				return n
			}
		}
		t.Fatalf("stats line %q has no %s", line, name)
	case <-time.After(10 * time.Second):
		t.Fatal("no broker stats line within 10 s of SIGUSR1")
	}
	return 0
}

func (c *crashChild) kill(t *testing.T) {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// ack is an acknowledged record: where the broker said it put it.
type ack struct {
	partition int32
	offset    int64
}

func buildGateway(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("KAFKA_CRASH_GATEWAY_BIN"); bin != "" {
		return bin
	}
	return buildBinary(t, "github.com/meshkafka/meshkafka/cmd/gateway")
}

// buildBinary builds a main package into the test's temp directory.
func buildBinary(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	crashKill9(t, crashPartitions, crashCyclesFrom("KAFKA_CRASH_CYCLES"))
}

// TestCrashKill9ManyPartitions is TestCrashKill9 with the load spread over 1,000 partitions,
// so that every produce request touches many partitions (and, after each restart, the broker
// opens the logs again on first use). Cycles: 20 by default; CHAOS_CYCLES=N (or
// -crash.cycles=N) for more.
func TestCrashKill9ManyPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	crashKill9(t, 1000, crashCyclesFrom("CHAOS_CYCLES"))
}

// crashCyclesFrom is 20, or the environment variable env, or -crash.cycles.
func crashCyclesFrom(env string) int {
	cycles := cluster.EnvCount(env, 20)
	if *crashCycles > 0 {
		cycles = *crashCycles
	}
	return cycles
}

func crashKill9(t *testing.T, partitions int32, cycles int) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	bin := buildGateway(t)
	dir := t.TempDir()
	addr := cluster.FreeTCP(t) // one port for every incarnation

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := map[string]ack{} // value -> where
	total := 0
	// Checkpoints run during the load (every 250 ms instead of 30 s), so kills fall in them
	// too; with 1,000 partitions they sync the whole filesystem (wal.StoreOptions.SyncFSMinLogs).
	flags := []string{"-wal-checkpoint-interval", "250ms"}
	var fsSyncs int64
	child := startCrashChild(t, bin, dir, addr, flags...)
	t.Cleanup(func() { child.cmd.Process.Kill() })
	for cycle := 0; cycle < cycles; cycle++ {
		if cycle == 0 {
			cl, err := kgo.NewClient(kgo.SeedBrokers(child.addr))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, crashTopic)
			cancel()
			cl.Close()
			if err != nil || r.Err != nil {
				t.Fatalf("create topic: %v %v", err, r.Err)
			}
		}
		// Everything acknowledged so far survived the previous kill.
		crashVerify(t, child.addr, acked, cycle)

		// Load: several producers, acks=all, until the kill.
		var mu sync.Mutex
		newAcks, failed := 0, 0
		var firstErr error
		var wg sync.WaitGroup
		stop := make(chan struct{})
		clients := make([]*kgo.Client, crashProducers)
		for p := range clients {
			cl, err := kgo.NewClient(kgo.SeedBrokers(child.addr), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerLinger(time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			clients[p] = cl
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := 0; ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					v := fmt.Sprintf("p%d-c%03d-%07d", p, cycle, seq)
					cl.Produce(context.Background(), &kgo.Record{Topic: crashTopic, Value: []byte(v)}, func(r *kgo.Record, err error) {
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							failed++
							if firstErr == nil {
								firstErr = err
							}
							return
						}
						acked[v] = ack{r.Partition, r.Offset}
						newAcks++
					})
					if seq%4 == 3 {
						time.Sleep(time.Millisecond) // a steady load, bounded so verification stays quick
					}
				}
			}()
		}
		time.Sleep(time.Duration(150+rng.IntN(900)) * time.Millisecond)
		fsSyncs += child.stat(t, "filesystem_syncs")
		child.kill(t) // SIGKILL in the middle of the load
		close(stop)
		wg.Wait()
		// Restart at once; the producers retry what the kill left unanswered.
		child = startCrashChild(t, bin, dir, addr, flags...)
		t.Cleanup(func() { child.cmd.Process.Kill() })
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		for _, cl := range clients {
			if err := cl.Flush(ctx); err != nil {
				t.Fatalf("cycle %d: producers did not finish their retries after the restart: %v", cycle, err)
			}
			cl.Close()
		}
		cancel()
		mu.Lock()
		if newAcks == 0 {
			t.Fatalf("cycle %d: no record acknowledged before the kill (%d failed, the first with %v)", cycle, failed, firstErr)
		}
		total += newAcks
		mu.Unlock()
	}
	// The last incarnation: verify, then a clean SIGTERM shutdown exits 0.
	crashVerify(t, child.addr, acked, cycles)
	child.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-child.done; err != nil {
		t.Fatalf("SIGTERM shutdown: %v", err)
	}
	if partitions >= 64 && fsSyncs == 0 {
		t.Fatalf("%d partitions: no checkpoint synced the filesystem during the load", partitions)
	}
	t.Logf("%d kill -9 cycles over %d partitions, %d acknowledged records, all present exactly once (%d filesystem syncs by checkpoints)", cycles, partitions, total, fsSyncs)
}

// crashVerify reads the whole topic and checks every acknowledged record and the log shape.
func crashVerify(t *testing.T, addr string, acked map[string]ack, cycle int) {
	t.Helper()
	if cycle == 0 {
		return
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(crashTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, crashTopic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("cycle %d: end offsets: %v %v", cycle, err, ends.Error())
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	next := map[int32]int64{}             // partition -> next expected offset
	lastSeq := map[int32]map[string]int{} // partition -> producer/cycle -> last seq
	seen := map[string]ack{}
	for got := int64(0); got < want; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("cycle %d: read %d of %d records", cycle, got, want)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("cycle %d: fetch %s/%d: %v", cycle, tp, p, err) })
		for _, r := range fs.Records() {
			got++
			if r.Offset != next[r.Partition] {
				t.Fatalf("cycle %d: partition %d: offset %d, want %d (offsets not contiguous)", cycle, r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			v := string(r.Value)
			if prev, dup := seen[v]; dup {
				t.Fatalf("cycle %d: %s stored twice (%v and %d/%d)", cycle, v, prev, r.Partition, r.Offset)
			}
			seen[v] = ack{r.Partition, r.Offset}
			who, seqText, _ := strings.Cut(v[strings.IndexByte(v, '-')+1:], "-")
			who = v[:strings.IndexByte(v, '-')] + "-" + who
			seq, _ := strconv.Atoi(seqText)
			if lastSeq[r.Partition] == nil {
				lastSeq[r.Partition] = map[string]int{}
			}
			if last, ok := lastSeq[r.Partition][who]; ok && seq <= last {
				t.Fatalf("cycle %d: partition %d: %s after seq %d (out of order)", cycle, r.Partition, v, last)
			}
			lastSeq[r.Partition][who] = seq
		}
	}
	for v, a := range acked {
		if s, ok := seen[v]; !ok {
			t.Fatalf("cycle %d: acknowledged record %s (%d/%d) lost", cycle, v, a.partition, a.offset)
		} else if s != a {
			t.Fatalf("cycle %d: acknowledged record %s at %d/%d, acknowledgement said %d/%d", cycle, v, s.partition, s.offset, a.partition, a.offset)
		}
	}
}
