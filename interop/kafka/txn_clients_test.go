package kafka_test

// Transactions with real clients other than the in-process kgo of txn_crash_test.go (issue
// #18's "cross-client" check), against cmd/gateway with its embedded broker as a child
// process:
//
//   - TestTxnETLKill9: a consume-transform-produce pipeline ("txin" → "txout", offsets
//     committed in the transaction, read_committed input) run by a client process — a
//     confluent-kafka-python (librdkafka) loop (interop/secureclients/txn.py) and a kgo
//     GroupTransactSession (this test binary re-run as TestTxnETLChild) — while each cycle
//     SIGKILLs the client, starts a new one (same transactional.id and group.instance.id, so
//     it fences the old one), then SIGKILLs the gateway and restarts it on the same data with
//     the client still running. Then "txout" read with read_committed holds every input
//     record exactly once, and a transaction the client aborted half-way through the run is
//     seen by read_uncommitted and never by read_committed (the confluent run also reads
//     with librdkafka's own read_committed and read_uncommitted consumers, which must agree).
//   - TestTxnKafkajsProduce: kafkajs' transactional producer (sendBatch in a transaction,
//     committed and aborted, interop/secureclients/txn.cjs).
//   - TestTxnKcatProduce: kcat -X transactional.id=…, committing on end of input and aborting
//     on SIGTERM.
//
// Cycles of TestTxnETLKill9: 10 per client by default; KAFKA_TXN_CLIENT_CYCLES=N or
// CHAOS_CYCLES=N (`go tool task chaos`) for more. Each client skips when not installed
// (apt-get install python3-confluent-kafka kcat; cd interop/secureclients && npm ci).
//
// The waits below have deadlines only so that a stuck run fails instead of hanging; the
// kills land at random moments (a random pause after progress was seen), and nothing checked
// depends on when they land.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

const (
	etlIn, etlOut   = "txin", "txout"
	etlPartitions   = 3
	etlPerCycle     = 40 // input records per cycle, half before each kill
	etlAborted      = 15 // records of the aborted (and of the committed) transaction beside the pipeline
	etlTxnID        = "etl"
	etlGroup        = "etl-group"
	etlInstance     = "etl-1"
	etlChildRoleEnv = "MESHKAFKA_TXN_ETL_ROLE"
)

func txnClientCycles() int {
	for _, k := range []string{"KAFKA_TXN_CLIENT_CYCLES", "CHAOS_CYCLES"} {
		if v := cluster.EnvCount(k, 0); v > 0 {
			return v
		}
	}
	return 10
}

// etlClient is one client library's pipeline: how to start it as a process.
type etlClient struct {
	name string
	// skip says why the client cannot run here ("" if it can).
	skip string
	// cmd returns the command running role ("etl" or "abort", see txn.py) with env.
	cmd func(role string, env []string) *exec.Cmd
	// read, if set, reads a topic with the client's own consumer at an isolation level
	// ("read_committed", "read_uncommitted") and returns the values read.
	read func(t *testing.T, addr, topic, isolation string) []string
}

func secureClientsDir(t testing.TB) string {
	dir, err := filepath.Abs("../secureclients")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// pythonWithConfluent returns a python3 that imports confluent_kafka ("" if none): the one on
// PATH, or Debian's (python3-confluent-kafka installs there).
func pythonWithConfluent() string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(py); err == nil && exec.Command(path, "-c", "import confluent_kafka").Run() == nil {
			return path
		}
	}
	return ""
}

func etlClients(t *testing.T) []etlClient {
	script := filepath.Join(secureClientsDir(t), "txn.py")
	py := pythonWithConfluent()
	skipPy := ""
	if py == "" {
		skipPy = "no python3 imports confluent_kafka (apt-get install python3-confluent-kafka)"
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []etlClient{
		{
			name: "confluent-kafka-python",
			skip: skipPy,
			cmd: func(role string, env []string) *exec.Cmd {
				cmd := exec.Command(py, script, role)
				cmd.Env = append(os.Environ(), env...)
				return cmd
			},
			read: func(t *testing.T, addr, topic, isolation string) []string {
				cmd := exec.Command(py, script, "read")
				cmd.Env = append(os.Environ(), "BROKER="+addr, "TOPIC="+topic, "ISOLATION="+isolation)
				var stderr kafkaclients.SyncBuffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("txn.py read %s: %v\n%s\nstderr: %s", isolation, err, out, tail(stderr.String(), 4000))
				}
				var ev struct{ Values []string }
				if err := json.Unmarshal(out, &ev); err != nil {
					t.Fatalf("txn.py read %s: %v: %s", isolation, err, out)
				}
				return ev.Values
			},
		},
		{
			name: "kgo",
			cmd: func(role string, env []string) *exec.Cmd {
				cmd := exec.Command(self, "-test.run=^TestTxnETLChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), append(env, etlChildRoleEnv+"="+role)...)
				return cmd
			},
		},
	}
}

// etlProc is a running client process and what it printed (one JSON object a line).
type etlProc struct {
	cmd     *exec.Cmd
	stderr  *kafkaclients.SyncBuffer
	commits atomic.Int64 // committed transactions
	maxIn   atomic.Int64 // the greatest input number in a committed transaction (-1: none)
	aborts  atomic.Int64 // transactions the client aborted after an error
	ready   atomic.Bool
	mu      sync.Mutex
	events  []string // every line printed
	done    chan struct{}
	killed  atomic.Bool
}

func startETLProc(t *testing.T, c etlClient, role string, env ...string) *etlProc {
	t.Helper()
	cmd := c.cmd(role, env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &etlProc{cmd: cmd, stderr: &kafkaclients.SyncBuffer{}, done: make(chan struct{})}
	p.maxIn.Store(-1)
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			var ev struct {
				Op  string
				Max int64
			}
			if json.Unmarshal([]byte(line), &ev) != nil {
				continue // the test framework's own lines in the kgo child
			}
			p.mu.Lock()
			p.events = append(p.events, line)
			p.mu.Unlock()
			switch ev.Op {
			case "ready":
				p.ready.Store(true)
			case "commit":
				p.commits.Add(1)
				if ev.Max > p.maxIn.Load() {
					p.maxIn.Store(ev.Max) // only this goroutine stores
				}
			case "abort":
				p.aborts.Add(1)
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill SIGKILLs the process (if it still runs) and waits for it.
func (p *etlProc) kill() {
	p.killed.Store(true)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// exited reports whether the process ended by itself (a fatal error in the client).
func (p *etlProc) exited() bool {
	select {
	case <-p.done:
		return !p.killed.Load()
	default:
		return false
	}
}

func (p *etlProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.events, "\n")
}

// waitUntil polls cond until it holds; the deadline only ends a stuck run, and a client that
// exited by itself fails the test at once.
func waitUntil(t *testing.T, what string, p *etlProc, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if p != nil && p.exited() {
			t.Fatalf("%s: the client exited\nstdout: %s\nstderr: %s", what, tail(p.output(), 2000), tail(p.stderr.String(), 4000))
		}
		if time.Now().After(deadline) {
			detail := ""
			if p != nil {
				detail = fmt.Sprintf("\nstdout: %s\nstderr: %s", tail(p.output(), 2000), tail(p.stderr.String(), 4000))
			}
			t.Fatalf("timed out waiting for %s%s", what, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTxnETLKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	bin := buildGateway(t)
	for _, c := range etlClients(t) {
		t.Run(c.name, func(t *testing.T) {
			if c.skip != "" {
				t.Skip(c.skip)
			}
			t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
			txnETLKill9(t, bin, c, txnClientCycles())
		})
	}
}

func txnETLKill9(t *testing.T, bin string, c etlClient, cycles int) {
	dir := t.TempDir()
	addr := cluster.FreeTCP(t)
	gw := startCrashChild(t, bin, dir, addr)
	t.Cleanup(func() { gw.kill(t) })
	{
		cl := kafkaclients.KgoClient(t, gw.addr)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for _, topic := range []string{etlIn, etlOut} {
			if r, err := kadm.NewClient(cl).CreateTopic(ctx, etlPartitions, 1, nil, topic); err != nil || r.Err != nil {
				t.Fatalf("create %s: %v %v", topic, err, r.Err)
			}
		}
		cancel()
		cl.Close()
	}
	// The input producer outlives the gateway's restarts (idempotent, retrying).
	prod := kafkaclients.KgoClient(t, gw.addr, kgo.DefaultProduceTopic(etlIn), kgo.RecordDeliveryTimeout(2*time.Minute))
	next := 0
	produceIn := func(n int) {
		t.Helper()
		var rs []*kgo.Record
		for range n {
			rs = append(rs, &kgo.Record{Key: []byte(strconv.Itoa(next)), Value: []byte("in-" + strconv.Itoa(next))})
			next++
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce input: %v", err)
		}
	}
	env := []string{"BROKER=" + gw.addr, "IN=" + etlIn, "OUT=" + etlOut, "GROUP=" + etlGroup,
		"INSTANCE=" + etlInstance, "TXID=" + etlTxnID}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 18))
	pause := func() { time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond) }
	// progress produces half a cycle's input and waits until client p committed a
	// transaction that holds some of it.
	progress := func(p *etlProc, what string) {
		t.Helper()
		first := int64(next)
		produceIn(etlPerCycle / 2)
		waitUntil(t, what, p, func() bool { return p.maxIn.Load() >= first })
	}

	start := time.Now()
	etl := startETLProc(t, c, "etl", env...)
	clientAborts := int64(0)
	for cycle := range cycles {
		if cycle == cycles/2 {
			// The aborted transaction (and a committed one after it) beside the pipeline.
			ab := startETLProc(t, c, "abort", append(env, "TXID=aborter", "N="+strconv.Itoa(etlAborted))...)
			<-ab.done
			if out := ab.output(); !strings.Contains(out, `"committed"`) || !strings.Contains(out, `"aborted"`) {
				t.Fatalf("abort role: %s\nstderr: %s", out, tail(ab.stderr.String(), 4000))
			}
		}
		// Kill the client once it moved part of this cycle's input.
		progress(etl, fmt.Sprintf("cycle %d: the pipeline's progress", cycle))
		pause()
		etl.kill()
		clientAborts += etl.aborts.Load()
		logAborts(t, etl)
		// A new incarnation: it must fence the old one and carry on.
		etl = startETLProc(t, c, "etl", env...)
		// Kill the gateway once the new client moved input; the client stays.
		progress(etl, fmt.Sprintf("cycle %d: the new client's progress", cycle))
		pause()
		gw.kill(t)
		gw = startCrashChild(t, bin, dir, addr)
		t.Logf("cycle %d done at %v", cycle, time.Since(start).Round(time.Millisecond))
	}
	// Everything through: the output holds every input record (checked exactly below).
	total := next
	waitUntil(t, fmt.Sprintf("all %d input records in the output", total), etl, func() bool {
		got := readTxnTopic(t, gw.addr, etlOut, kgo.ReadCommitted())
		return countPrefix(got, "out-") >= total
	})
	etl.kill()
	clientAborts += etl.aborts.Load()
	logAborts(t, etl)

	rc := readTxnTopic(t, gw.addr, etlOut, kgo.ReadCommitted())
	ru := readTxnTopic(t, gw.addr, etlOut, kgo.ReadUncommitted())
	for i := range total {
		if v := "out-" + strconv.Itoa(i); rc[v] != 1 {
			t.Errorf("read_committed: %s read %d times, want exactly once", v, rc[v])
		}
	}
	for i := range etlAborted {
		if v := "ab-" + strconv.Itoa(i); rc[v] != 0 || ru[v] != 1 {
			t.Errorf("aborted %s: read_committed saw it %d times (want 0), read_uncommitted %d (want 1)", v, rc[v], ru[v])
		}
		if v := "cm-" + strconv.Itoa(i); rc[v] != 1 || ru[v] != 1 {
			t.Errorf("committed %s: read_committed saw it %d times, read_uncommitted %d (want 1 and 1)", v, rc[v], ru[v])
		}
	}
	if n := len(rc) - total - etlAborted; n != 0 {
		extra := slices.Sorted(maps.Keys(rc))
		t.Errorf("read_committed holds %d values besides the input's and the committed transaction's: %v", n, tail(fmt.Sprint(extra), 500))
	}
	for v, n := range rc {
		if ru[v] < n {
			t.Errorf("%s: read_committed %d times, read_uncommitted only %d", v, n, ru[v])
		}
	}
	if c.read != nil { // the client's own consumers agree with kgo's
		for iso, want := range map[string]map[string]int{"read_committed": rc, "read_uncommitted": ru} {
			got := map[string]int{}
			for _, v := range c.read(t, gw.addr, etlOut, iso) {
				got[v]++
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s %s consumer read %d distinct values, kgo %d (or counts differ)", c.name, iso, len(got), len(want))
			}
		}
	}
	t.Logf("%d cycles, %d input records exactly once; %d uncommitted (pipeline-aborted) output records in the log; the client aborted %d transactions after errors",
		cycles, total, sumCounts(ru)-sumCounts(rc)-etlAborted, clientAborts)
}

// logAborts logs the transactions p aborted after an error, and why.
func logAborts(t *testing.T, p *etlProc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range p.events {
		if strings.Contains(ev, `"abort"`) {
			t.Logf("client aborted a transaction: %s", ev)
		}
	}
}

func countPrefix(m map[string]int, prefix string) int {
	n := 0
	for v := range m {
		if strings.HasPrefix(v, prefix) {
			n++
		}
	}
	return n
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// readTxnTopic reads every partition of topic from the start to its end at the given
// isolation level — the high watermark for read_uncommitted, the last stable offset for
// read_committed, both from ListOffsets — and counts each value read. Control records are
// kept (and not counted), so the last offset before the end is always delivered and the read
// knows it is complete without waiting for "no more records".
func readTxnTopic(t *testing.T, addr, topic string, iso kgo.IsolationLevel) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords(), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(cl)
	var ends kadm.ListedOffsets
	if iso == kgo.ReadCommitted() {
		ends, err = adm.ListCommittedOffsets(ctx, topic)
	} else {
		ends, err = adm.ListEndOffsets(ctx, topic)
	}
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	pending := map[int32]int64{} // partition → end offset not yet reached
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			pending[o.Partition] = o.Offset
		}
	})
	got := map[string]int{}
	for len(pending) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s: partitions %v not read to their end", topic, pending)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := pending[r.Partition]; ok && r.Offset >= end-1 {
				delete(pending, r.Partition)
			}
			if !r.Attrs.IsControl() {
				got[string(r.Value)]++
			}
		})
	}
	return got
}

// TestTxnETLChild is the kgo client process of TestTxnETLKill9 (which runs this test binary
// again with MESHKAFKA_TXN_ETL_ROLE set); by itself it skips. Roles and output as txn.py's:
// "etl" is a GroupTransactSession pipeline, "abort" one aborted and one committed transaction.
func TestTxnETLChild(t *testing.T) {
	role := os.Getenv(etlChildRoleEnv)
	if role == "" {
		t.Skip("the kgo client process of TestTxnETLKill9")
	}
	out := func(o map[string]any) {
		b, _ := json.Marshal(o)
		os.Stdout.Write(append(b, '\n'))
	}
	fatal := func(what string, err error) {
		out(map[string]any{"op": "fatal", "err": fmt.Sprintf("%s: %v", what, err)})
		os.Exit(3)
	}
	base := []kgo.Opt{kgo.SeedBrokers(os.Getenv("BROKER")), kgo.DefaultProduceTopic(os.Getenv("OUT")),
		kgo.TransactionalID(os.Getenv("TXID")), kgo.TransactionTimeout(20 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond })}
	ctx := context.Background()
	switch role {
	case "etl":
		sess, err := kgo.NewGroupTransactSession(append(base, kgo.ConsumerGroup(os.Getenv("GROUP")),
			kgo.InstanceID(os.Getenv("INSTANCE")), kgo.SessionTimeout(10*time.Second),
			kgo.ConsumeTopics(os.Getenv("IN")), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...) // kgo asks for stable offsets (KIP-447) always
		if err != nil {
			fatal("session", err)
		}
		out(map[string]any{"op": "ready"})
		for {
			fs := sess.PollRecords(ctx, 50)
			fs.EachError(func(topic string, p int32, err error) { fmt.Fprintf(os.Stderr, "fetch %s/%d: %v\n", topic, p, err) })
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
			if len(recs) == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				fatal("begin", err)
			}
			maxIn := -1
			outs := make([]*kgo.Record, 0, len(recs))
			for _, r := range recs {
				v, ok := strings.CutPrefix(string(r.Value), "in-")
				n, err := strconv.Atoi(v)
				if !ok || err != nil {
					fatal("transform", fmt.Errorf("unexpected input %q", r.Value))
				}
				maxIn = max(maxIn, n)
				outs = append(outs, &kgo.Record{Key: r.Key, Value: []byte("out-" + v)})
			}
			committed, perr, err := kafkaclients.ProduceAndEnd(ctx, sess, outs)
			if committed {
				out(map[string]any{"op": "commit", "n": len(recs), "max": maxIn})
			} else {
				out(map[string]any{"op": "abort", "n": len(recs), "err": fmt.Sprint(err, " ", perr)})
			}
		}
	case "abort":
		n, _ := strconv.Atoi(os.Getenv("N"))
		cl, err := kgo.NewClient(base...)
		if err != nil {
			fatal("client", err)
		}
		for _, how := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
			prefix, op := "ab", "aborted"
			if how == kgo.TryCommit {
				prefix, op = "cm", "committed"
			}
			if err := cl.BeginTransaction(); err != nil {
				fatal("begin", err)
			}
			for i := range n {
				if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}).FirstErr(); err != nil {
					fatal("produce", err)
				}
			}
			if err := cl.EndTransaction(ctx, how); err != nil {
				fatal("end", err)
			}
			out(map[string]any{"op": op, "n": n})
		}
		cl.Close()
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// listStable lists topic's high watermarks and last stable offsets.
func listStable(ctx context.Context, adm *kadm.Client, topic string) (hwm, lso kadm.ListedOffsets, err error) {
	hwm, err = adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = hwm.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("high watermarks: %w", err)
	}
	lso, err = adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = lso.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("last stable offsets: %w", err)
	}
	return hwm, lso, nil
}

// endsAgree fails the test unless topic's last stable offsets equal its high watermarks
// (no transaction is left open).
func endsAgree(t *testing.T, addr, topic string) {
	t.Helper()
	adm := kadm.NewClient(kafkaclients.KgoClient(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hwm, lso, err := listStable(ctx, adm, topic)
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	hwm.Each(func(o kadm.ListedOffset) {
		if l, _ := lso.Lookup(topic, o.Partition); l.Offset != o.Offset {
			t.Errorf("%s/%d: last stable offset %d, high watermark %d: a transaction is still open", topic, o.Partition, l.Offset, o.Offset)
		}
	})
}

// checkTxnValues checks read_committed (rc) and read_uncommitted (ru) counts against the
// values of committed and of aborted transactions: each committed value once in both, each
// aborted value once in ru and never in rc, nothing else.
func checkTxnValues(t *testing.T, what string, rc, ru map[string]int, committed, aborted []string) {
	t.Helper()
	for _, v := range committed {
		if rc[v] != 1 || ru[v] != 1 {
			t.Errorf("%s: committed %s read %d times with read_committed, %d with read_uncommitted (want 1 and 1)", what, v, rc[v], ru[v])
		}
	}
	for _, v := range aborted {
		if rc[v] != 0 || ru[v] != 1 {
			t.Errorf("%s: aborted %s read %d times with read_committed (want 0), %d with read_uncommitted (want 1)", what, v, rc[v], ru[v])
		}
	}
	if len(rc) != len(committed) || len(ru) != len(committed)+len(aborted) {
		t.Errorf("%s: %d values read_committed, %d read_uncommitted; want %d and %d", what, len(rc), len(ru), len(committed), len(committed)+len(aborted))
	}
}

// TestTxnKafkajsProduce: kafkajs' transactional producer commits and aborts transactions of
// one sendBatch each, over three partitions; read_committed sees exactly the committed ones,
// read_uncommitted all, before and after a restart of the stack.
func TestTxnKafkajsProduce(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	scripts := secureClientsDir(t)
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	if _, err := os.Stat(filepath.Join(scripts, "node_modules", "kafkajs")); err != nil {
		t.Skip("kafkajs not installed (cd interop/secureclients && npm ci)")
	}
	const topic, txns, n, parts = "js-txn", 6, 20, 3
	s := rcStart(t, t.TempDir(), "")
	s.createTopic(t, topic, parts)
	cmd := exec.Command("node", filepath.Join(scripts, "txn.cjs"))
	cmd.Env = append(os.Environ(), "KAFKAJS_NO_PARTITIONER_WARNING=1", "BROKER="+s.addr, "TOPIC="+topic, "TXID=kafkajs-txn",
		"TXNS="+strconv.Itoa(txns), "N="+strconv.Itoa(n), "PARTITIONS="+strconv.Itoa(parts))
	var stderr kafkaclients.SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("txn.cjs: %v\n%s\nstderr: %s", err, out, tail(stderr.String(), 4000))
	}
	var committed, aborted []string
	for tx := range txns {
		how := "commit"
		if tx%3 == 2 {
			how = "abort"
		}
		if !strings.Contains(string(out), fmt.Sprintf(`{"op":%q,"txn":%d,"n":%d}`, how, tx, n)) {
			t.Fatalf("txn.cjs did not report transaction %d (%s):\n%s", tx, how, out)
		}
		for i := range n {
			v := fmt.Sprintf("js-%d-%d-%s", tx, i, how)
			if how == "commit" {
				committed = append(committed, v)
			} else {
				aborted = append(aborted, v)
			}
		}
	}
	for _, restarted := range []bool{false, true} {
		if restarted {
			s = s.restart()
		}
		what := fmt.Sprintf("kafkajs (restarted: %v)", restarted)
		endsAgree(t, s.addr, topic)
		checkTxnValues(t, what, readTxnTopic(t, s.addr, topic, kgo.ReadCommitted()), readTxnTopic(t, s.addr, topic, kgo.ReadUncommitted()), committed, aborted)
	}
}

// TestTxnKcatProduce: kcat -X transactional.id=… produces its input in one transaction,
// committed at the end of the input; a second kcat, sent SIGTERM once its records are in the
// log, aborts its transaction. read_committed (kgo's and kcat's own consumer) sees exactly
// the committed records, read_uncommitted both, before and after a restart of the stack.
func TestTxnKcatProduce(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	bin := kcatBin(t)
	const topic, parts = "kcat-txn", 3
	s := rcStart(t, t.TempDir(), "")
	s.createTopic(t, topic, parts)

	// Committed: the whole input in one transaction, committed on end of input.
	var committed []string
	var in strings.Builder
	for i := range 50 {
		v := fmt.Sprintf("kc-commit-%d", i)
		committed = append(committed, v)
		in.WriteString(v + "\n")
	}
	cmd := exec.Command(bin, "-b", s.addr, "-P", "-t", topic, "-X", "transactional.id=kcat-commit")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Transaction successfully committed") {
		t.Fatalf("kcat transactional produce: %v\n%s", err, out)
	}

	// Aborted: kcat 1.7 reads its input 1,024 bytes at a time (fread), so 128 lines of 16
	// bytes are produced in full, after which it waits for more input. There it gets SIGTERM
	// and, once its input ends, aborts the transaction.
	var aborted []string
	in.Reset()
	for i := range 128 {
		v := fmt.Sprintf("kc-abort-%06d", i)
		aborted = append(aborted, v)
		in.WriteString(v + "\n")
	}
	if in.Len() != 2048 {
		t.Fatalf("input of %d bytes, want 2048", in.Len())
	}
	cmd = exec.Command(bin, "-b", s.addr, "-P", "-t", topic, "-X", "transactional.id=kcat-abort", "-X", "linger.ms=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var kout kafkaclients.SyncBuffer
	cmd.Stdout, cmd.Stderr = &kout, &kout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if _, err := io.WriteString(stdin, in.String()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "kcat's 128 records in the log", nil, func() bool {
		return countPrefix(readTxnTopic(t, s.addr, topic, kgo.ReadUncommitted()), "kc-abort-") == len(aborted)
	})
	cmd.Process.Signal(syscall.SIGTERM)
	stdin.Close()
	cmd.Wait()
	if !strings.Contains(kout.String(), "Aborting transaction due to termination signal") {
		t.Fatalf("kcat did not abort:\n%s", kout.String())
	}

	for _, restarted := range []bool{false, true} {
		if restarted {
			s = s.restart()
		}
		what := fmt.Sprintf("kcat (restarted: %v)", restarted)
		endsAgree(t, s.addr, topic)
		rc := readTxnTopic(t, s.addr, topic, kgo.ReadCommitted())
		checkTxnValues(t, what, rc, readTxnTopic(t, s.addr, topic, kgo.ReadUncommitted()), committed, aborted)
		// kcat's own read_committed consumer (librdkafka) reads the same.
		out, err := exec.Command(bin, "-b", s.addr, "-C", "-t", topic, "-e", "-q", "-f", "%s\n", "-X", "isolation.level=read_committed").Output()
		if err != nil {
			t.Fatalf("kcat read_committed consume: %v\n%s", err, out)
		}
		got := map[string]int{}
		for v := range strings.FieldsSeq(string(out)) {
			got[v]++
		}
		if !maps.Equal(got, rc) {
			t.Errorf("%s: kcat's read_committed consumer read %d distinct values, kgo's %d (or counts differ)", what, len(got), len(rc))
		}
	}
}
