package repl_test

// Client behaviour through a partition leader's SIGKILL: producers and consumers of the
// client libraries applications use must carry on with no error reaching the application
// beyond their own retries. Covered: kgo (franz-go), kafka-go (segmentio), librdkafka through
// kcat and through confluent-kafka-python, and kafkajs; the last two run as scripts in
// interop/secureclients (failover.py, failover.cjs) and skip when not installed (CI installs
// python3-confluent-kafka and runs npm ci there).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// clientRecords is how many values each client's producer sends; the leader is killed once
// the first third are acknowledged, with the producer held until it is dead.
const clientRecords = 300

// clientNet is where a client library runs: its dialer (Go libraries) and how to run a
// command (kcat, node, python) in the namespace the clients reach the gateways from.
type clientNet struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	command func(ctx context.Context, name string, args ...string) *exec.Cmd
}

// clientNetOf is the hub namespace of a cluster with Netns, the host otherwise.
func clientNetOf(c *cluster.Cluster) clientNet {
	cn := clientNet{dial: c.Dialer(), command: exec.CommandContext}
	if c.Net != nil {
		pid := c.Net.Hub.Pid()
		cn.command = func(ctx context.Context, name string, args ...string) *exec.Cmd {
			return exec.CommandContext(ctx, "nsenter", append([]string{"-t", pid, "-n", "--", name}, args...)...)
		}
	}
	return cn
}

// clientRun is one library's producer and consumer on one topic through one leader kill, and
// what the test saw of them. Every send, read, assignment change and acknowledged commit goes
// to rec (package checker's history); errors that reached the application to appErrs.
type clientRun struct {
	cn                 clientNet
	addr, topic, group string
	n, pauseAt         int
	rec                *checker.Recorder
	producer, consumer string // their names in the history

	paused chan struct{} // closed by the producer once values 0..pauseAt-1 are acknowledged
	resume chan struct{} // closed by the test once the leader is dead: send the rest

	mu      sync.Mutex
	appErrs []string
	read    map[string]bool // distinct values 0..n-1 the consumer read
	// reached is, per partition, the logical time (rec.Begin) the consumer first polled each
	// offset: a script's commits are reported when acknowledged, so their invocation is
	// taken from it (earliestInvoke).
	reached map[int32]map[int64]int64
	// resumeSeq is the first value sent after the kill (pauseAt, unless the producer could
	// not be held); resumed is when a value from there on was first acknowledged.
	resumeSeq int
	resumed   time.Time
	logs      map[string]*tailBuffer // each process's stderr (its library's log), shown on failure
}

// log is a buffer for name's stderr.
func (r *clientRun) log(name string) *tailBuffer {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := &tailBuffer{max: 96 << 10}
	r.logs[name] = b
	return b
}

func (r *clientRun) appError(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.appErrs = append(r.appErrs, fmt.Sprintf(format, args...))
}

func (r *clientRun) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.appErrs)
}

// sent records value seq's outcome (inv from rec.Begin before it was sent, or when its
// outcome was reported for a script that reports outcomes only).
func (r *clientRun) sent(inv int64, seq int, ok bool, partition int32, offset int64, err string) {
	r.rec.AddSend(checker.Send{Producer: r.producer, Seq: int64(seq), Topic: r.topic, Value: strconv.Itoa(seq),
		OK: ok, Partition: partition, Offset: offset, Err: err, Invoke: inv})
	if !ok {
		r.appError("%s: send of %d failed: %s", r.producer, seq, err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq >= r.resumeSeq && r.resumed.IsZero() {
		r.resumed = time.Now()
	}
}

// resumedAt is when a value sent after the kill was first acknowledged (zero: not yet), and
// the first value sent after the kill.
func (r *clientRun) resumedAt() (time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resumed, r.resumeSeq
}

func (r *clientRun) polled(partition int32, offset int64, value string) {
	at := r.rec.Begin()
	r.rec.AddPolls(r.consumer, checker.Poll{TP: checker.TP{Topic: r.topic, Partition: partition}, Offset: offset, Value: value})
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reached == nil {
		r.reached = map[int32]map[int64]int64{}
	}
	if r.reached[partition] == nil {
		r.reached[partition] = map[int64]int64{}
	}
	if _, ok := r.reached[partition][offset]; !ok {
		r.reached[partition][offset] = at
	}
	if i, err := strconv.Atoi(value); err == nil && i >= 0 && i < r.n && value == strconv.Itoa(i) {
		r.read[value] = true
	}
}

// readCount is how many of the values 0..n-1 the consumer has read.
func (r *clientRun) readCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.read)
}

func (r *clientRun) reset(partition int32) {
	r.rec.AddReset(r.consumer, checker.TP{Topic: r.topic, Partition: partition})
}

// earliestInvoke is the earliest moment a commit of offset by the consumer's own library
// (librdkafka's and kafkajs's auto-commits, which a script reports only when acknowledged)
// can have been invoked: when the consumer first polled an offset at or past offset-1, i.e.
// first stood at offset or beyond (0 if it never did). Several such commits are in flight
// at once and may be acknowledged out of order (a commit held up by the coordinator's
// failover, a later one through a new coordinator connection); taking the acknowledgement
// as the invocation would make the checker call that a commit going backwards. With the
// earliest possible invocation a consumer's own commits are never ordered against each
// other (it reaches offset-1 before any higher offset), so for these libraries what the
// checker holds the group to is its OffsetFetch answers: never below an acknowledged commit.
func (r *clientRun) earliestInvoke(partition int32, offset int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := int64(0)
	for o, at := range r.reached[partition] {
		if o >= offset-1 && (first == 0 || at < first) {
			first = at
		}
	}
	return first
}

// committed records a commit acknowledged to the client (inv as for sent).
func (r *clientRun) committed(inv int64, partition int32, offset int64) {
	r.rec.AddCommit(checker.Commit{Group: r.group, TP: checker.TP{Topic: r.topic, Partition: partition}, Offset: offset, OK: true, Invoke: inv})
}

// pause tells the test the first third is acknowledged and waits until the leader is dead.
func (r *clientRun) pause(ctx context.Context) error {
	close(r.paused)
	select {
	case <-r.resume:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// libClient is one client library: its producer sends values 0..n-1 to partition 0 of the
// topic (in order, pausing after pauseAt, retrying as the application configures it) and its
// consumer reads the topic from the start until it has read every value; both record into
// the run and return when done (an error return is one that reached the application).
type libClient struct {
	name string
	// idempotent: the producer dedups its own retries, so every value is stored once.
	// kafka-go's Writer is not: a retried write may be stored twice (logged, not failed).
	idempotent bool
	// group: the consumer is a group member committing offsets (the group's final committed
	// offset is read back and checked too).
	group bool
	// readsControl: the consumer hands control records (the raft no-op each new leader term
	// appends) to the application as messages; see clientsLeaderKill.
	readsControl bool
	available    func() error
	produce      func(ctx context.Context, r *clientRun) error
	consume      func(ctx context.Context, r *clientRun) error
}

func libClients() []libClient {
	scripts, _ := filepath.Abs("../secureclients")
	node := func() error {
		if _, err := exec.LookPath("node"); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(scripts, "node_modules", "kafkajs")); err != nil {
			return fmt.Errorf("kafkajs: %w (cd interop/secureclients && npm ci)", err)
		}
		return nil
	}
	python := func() (string, error) {
		if py := cluster.PythonWith("confluent_kafka"); py != "" {
			return py, nil
		}
		return "", fmt.Errorf("no python3 imports confluent_kafka (apt-get install python3-confluent-kafka)")
	}
	return []libClient{
		{
			name: "kgo", idempotent: true, group: true,
			available: func() error { return nil },
			produce:   kgoProduce,
			consume:   kgoConsume,
		},
		{
			name: "kafka-go", readsControl: true,
			available: func() error { return nil },
			produce:   kafkaGoProduce,
			consume:   kafkaGoConsume,
		},
		{
			name: "kcat", idempotent: true,
			available: func() error {
				_, err := exec.LookPath("kcat")
				return err
			},
			produce: kcatProduce,
			consume: kcatConsume,
		},
		{
			name: "confluent-kafka", idempotent: true, group: true,
			available: func() error { _, err := python(); return err },
			produce: func(ctx context.Context, r *clientRun) error {
				py, _ := python()
				return runScript(ctx, r, r.producer, py, filepath.Join(scripts, "failover.py"), "produce")
			},
			consume: func(ctx context.Context, r *clientRun) error {
				py, _ := python()
				return runScript(ctx, r, r.consumer, py, filepath.Join(scripts, "failover.py"), "consume")
			},
		},
		{
			name: "kafkajs", idempotent: true, group: true,
			available: node,
			produce: func(ctx context.Context, r *clientRun) error {
				return runScript(ctx, r, r.producer, "node", filepath.Join(scripts, "failover.cjs"), "produce")
			},
			consume: func(ctx context.Context, r *clientRun) error {
				return runScript(ctx, r, r.consumer, "node", filepath.Join(scripts, "failover.cjs"), "consume")
			},
		},
	}
}

// kgoClient is a kgo client on the run's gateway that notices leader changes quickly.
func kgoClient(r *clientRun, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(r.addr), kgo.Dialer(r.cn.dial), kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond })}
	return kgo.NewClient(append(base, opts...)...)
}

// kgoProduce: kgo's idempotent producer (its default: acks=all, retrying until the context
// ends), one synchronous send at a time.
func kgoProduce(ctx context.Context, r *clientRun) error {
	cl, err := kgoClient(r, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	for i := range r.n {
		if i == r.pauseAt {
			if err := r.pause(ctx); err != nil {
				return err
			}
		}
		inv := r.rec.Begin()
		res := cl.ProduceSync(ctx, &kgo.Record{Topic: r.topic, Partition: 0, Value: []byte(strconv.Itoa(i))})
		rec, err := res.First()
		if err != nil {
			r.sent(inv, i, false, 0, -1, err.Error())
			return fmt.Errorf("kgo produce %d: %w", i, err)
		}
		r.sent(inv, i, true, rec.Partition, rec.Offset, "")
	}
	return nil
}

// kgoConsume: a kgo group member reading from the start, committing after each poll (with
// rebalances held between a poll and its commit, as package workload does).
func kgoConsume(ctx context.Context, r *clientRun) error {
	cl, err := kgoClient(r, kgo.ConsumerGroup(r.group), kgo.ConsumeTopics(r.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			for _, p := range a[r.topic] {
				r.reset(p)
			}
		}))
	if err != nil {
		return err
	}
	defer cl.Close()
	// Close leaves the group, which waits for a rebalance to be allowed (BlockRebalanceOnPoll):
	// a return between a poll and its AllowRebalance would hang there.
	defer cl.AllowRebalance()
	for r.readCount() < r.n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var errs []string
		fs.EachError(func(t string, p int32, err error) { errs = append(errs, fmt.Sprintf("%s/%d: %v", t, p, err)) })
		if len(errs) > 0 {
			r.appError("kgo consumer: fetch errors: %s", strings.Join(errs, "; "))
		}
		fs.EachRecord(func(rec *kgo.Record) { r.polled(rec.Partition, rec.Offset, string(rec.Value)) })
		if offs := cl.UncommittedOffsets(); len(offs) > 0 {
			inv := r.rec.Begin()
			cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				if err != nil {
					return // retried with the next poll's commit; not acknowledged, not recorded
				}
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if p.ErrorCode == 0 {
							r.committed(inv, p.Partition, offs[t.Topic][p.Partition].Offset)
						}
					}
				}
			})
		}
		cl.AllowRebalance()
	}
	return nil
}

// kafkaGoProduce: kafka-go's Writer (acks=all, retrying up to 1000 times), one synchronous
// write at a time; its Completion callback gives each message's offset.
func kafkaGoProduce(ctx context.Context, r *clientRun) error {
	var inv int64
	var seq int
	w := &segkafka.Writer{Addr: segkafka.TCP(r.addr), Topic: r.topic, RequiredAcks: segkafka.RequireAll,
		Balancer:     segkafka.BalancerFunc(func(segkafka.Message, ...int) int { return 0 }),
		BatchTimeout: time.Millisecond, MaxAttempts: 1000, WriteBackoffMin: 50 * time.Millisecond, WriteBackoffMax: 500 * time.Millisecond,
		Transport: &segkafka.Transport{MetadataTTL: 500 * time.Millisecond, Dial: r.cn.dial},
		Completion: func(ms []segkafka.Message, err error) { // called before WriteMessages returns
			for _, m := range ms {
				if err == nil {
					r.sent(inv, seq, true, int32(m.Partition), m.Offset, "")
				} else {
					r.sent(inv, seq, false, 0, -1, err.Error())
				}
			}
		}}
	defer w.Close()
	for i := range r.n {
		if i == r.pauseAt {
			if err := r.pause(ctx); err != nil {
				return err
			}
		}
		inv, seq = r.rec.Begin(), i
		if err := w.WriteMessages(ctx, segkafka.Message{Value: []byte(strconv.Itoa(i))}); err != nil {
			return fmt.Errorf("kafka-go write %d: %w", i, err)
		}
	}
	return nil
}

// kafkaGoConsume: kafka-go's Reader on partition 0 from the start.
func kafkaGoConsume(ctx context.Context, r *clientRun) error {
	rd := segkafka.NewReader(segkafka.ReaderConfig{Brokers: []string{r.addr}, Topic: r.topic, Partition: 0,
		Dialer:   &segkafka.Dialer{DialFunc: r.cn.dial, Timeout: 10 * time.Second},
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond, MaxAttempts: 1000})
	defer rd.Close()
	r.reset(0)
	for r.readCount() < r.n {
		m, err := rd.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("kafka-go read after %d values: %w", r.readCount(), err)
		}
		r.polled(int32(m.Partition), m.Offset, string(m.Value))
	}
	return nil
}

// kcatDelivered is kcat's delivery report at verbosity 3 (-v -v).
var kcatDelivered = regexp.MustCompile(`Message delivered to partition (\d+) \(offset (-?\d+)\)`)

// kcatProduce: kcat's idempotent producer (librdkafka: acks=all, retrying within
// message.timeout.ms). kcat 1.7 reads stdin with fread in 1 KiB blocks (fixed in kcat 1.8,
// edenhill/kcat#343), so short lines are produced only once 1 KiB or the end of the input
// has arrived, and it serves delivery reports only from its produce calls: one kcat process
// cannot be paced, nor held mid-stream and still report. So two run, one after the other:
// the first sends values 0 up to two thirds and exits once they are acknowledged (the kill
// waits for the consumer to read the first third, not for these reports: paused is closed
// at once), the second sends the last third once the leader is dead, through the failover
// (its first requests meet the dead leader's partition: metadata refresh,
// NOT_LEADER_OR_FOLLOWER, retries). The consumer, one kcat process, runs through the kill.
// A long-lived librdkafka producer through the kill is confluent-kafka's part.
func kcatProduce(ctx context.Context, r *clientRun) error {
	hold := 2 * r.n / 3
	r.mu.Lock()
	r.resumeSeq = hold // the first process's values are not sent after the kill
	r.mu.Unlock()
	close(r.paused)
	if err := kcatProduceRange(ctx, r, 0, hold); err != nil {
		return err
	}
	select {
	case <-r.resume:
	case <-ctx.Done():
		return ctx.Err()
	}
	return kcatProduceRange(ctx, r, hold, r.n)
}

// kcatProduceRange runs one kcat producer sending values lo..hi-1 (stdin, then EOF) and
// records its delivery reports (stderr, -v -v), which say partition and offset but not which
// message: librdkafka reports deliveries in produce order per partition, so the k-th report
// is value lo+k.
func kcatProduceRange(ctx context.Context, r *clientRun, lo, hi int) error {
	cmd := r.cn.command(ctx, "kcat", "-b", r.addr, "-P", "-t", r.topic, "-p", "0", "-v", "-v",
		"-X", "acks=all", "-X", "enable.idempotence=true", "-X", "message.timeout.ms=150000", "-X", "linger.ms=1",
		"-X", "topic.metadata.refresh.interval.ms=1000")
	var in strings.Builder
	for i := lo; i < hi; i++ {
		fmt.Fprintf(&in, "%d\n", i)
	}
	cmd.Stdin = strings.NewReader(in.String())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	tail := r.log(fmt.Sprintf("kcat producer %d-%d", lo, hi-1))
	sc := bufio.NewScanner(stderr)
	k := lo
	for sc.Scan() {
		line := sc.Text()
		m := kcatDelivered.FindStringSubmatch(line)
		if m == nil {
			fmt.Fprintln(tail, line)
			if strings.Contains(line, "Delivery failed") || strings.Contains(line, "ERROR") {
				r.appError("kcat producer: %s", line)
			}
			continue
		}
		p, _ := strconv.Atoi(m[1])
		off, _ := strconv.ParseInt(m[2], 10, 64)
		r.sent(r.rec.Begin(), k, true, int32(p), off, "")
		k++
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("kcat producer of %d..%d: %v", lo, hi-1, err)
	}
	if k != hi {
		r.appError("kcat producer of %d..%d: %d delivery reports", lo, hi-1, k-lo)
	}
	return nil
}

// kcatConsume: kcat's consumer (librdkafka, partition 0 from the start, no group) printing
// partition, offset and value of each record until it has read n. -u (unbuffered output)
// is what makes it usable here: kcat writes records with stdio, and a stdout that is a pipe
// is fully buffered, so without -u nothing reaches the test until kcat exits (after n
// records, or at a 4 KiB buffer) - the test then waits for a first third that is long read
// and kcat waits for the rest the test holds back (TestKcatStreams).
func kcatConsume(ctx context.Context, r *clientRun) error {
	cmd := r.cn.command(ctx, "kcat", "-b", r.addr, "-C", "-t", r.topic, "-p", "0", "-o", "beginning",
		"-c", strconv.Itoa(r.n), "-f", "%p %o %s\n", "-q", "-u")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := r.log("kcat consumer")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	r.reset(0)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 {
			r.appError("kcat consumer: unexpected line %q", sc.Text())
			continue
		}
		p, _ := strconv.Atoi(f[0])
		off, _ := strconv.ParseInt(f[1], 10, 64)
		r.polled(int32(p), off, f[2])
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("kcat consumer: %v", err)
	}
	if s := stderr.String(); strings.Contains(s, "ERROR") {
		r.appError("kcat consumer: %s", s)
	}
	return nil
}

// scriptEvent is one line a client script (interop/secureclients/failover.*) prints.
type scriptEvent struct {
	Op        string `json:"op"`
	Seq       int    `json:"seq"`
	Value     string `json:"value"`
	OK        bool   `json:"ok"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Err       string `json:"err"`
}

// runScript runs a client script in the clients' namespace with the run's settings and
// records what it prints as it prints it: sends, reads, assignment changes, acknowledged
// commits, errors that reached the application; on "paused" it waits for the leader's kill
// and tells the script to go on. The script's stderr (the library's own log of its retries)
// is kept for the failure message.
func runScript(ctx context.Context, r *clientRun, name, bin string, args ...string) error {
	cmd := r.cn.command(ctx, "env", append([]string{"BROKER=" + r.addr, "TOPIC=" + r.topic, "GROUP=" + r.group,
		"N=" + strconv.Itoa(r.n), "PAUSE_AT=" + strconv.Itoa(r.pauseAt), bin}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := r.log(name)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer in.Close()
	done := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var e scriptEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			r.appError("%s: unexpected output %q", name, sc.Text())
			continue
		}
		switch e.Op {
		case "send":
			if e.Value != strconv.Itoa(e.Seq) {
				r.appError("%s: send #%d of value %q", name, e.Seq, e.Value)
			}
			r.sent(r.rec.Begin(), e.Seq, e.OK, e.Partition, e.Offset, e.Err)
		case "poll":
			r.polled(e.Partition, e.Offset, e.Value)
		case "reset":
			r.reset(e.Partition)
		case "commit":
			r.committed(r.earliestInvoke(e.Partition, e.Offset), e.Partition, e.Offset)
		case "error":
			r.appError("%s: %s", name, e.Err)
		case "paused":
			if err := r.pause(ctx); err != nil {
				_ = cmd.Process.Kill()
			} else if _, err := io.WriteString(in, "go\n"); err != nil {
				r.appError("%s: resume: %v", name, err)
			}
		case "done":
			done = true
		default:
			r.appError("%s: unknown event %q", name, sc.Text())
		}
	}
	err = cmd.Wait()
	if err == nil && !done {
		err = fmt.Errorf("exited without saying done")
	}
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

// tailBuffer keeps the first and the last max/2 bytes written to it.
type tailBuffer struct {
	mu         sync.Mutex
	max        int
	head, tail []byte
	cut        bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	written := len(p)
	if n := min(len(p), t.max/2-len(t.head)); n > 0 {
		t.head = append(t.head, p[:n]...)
		p = p[n:]
	}
	t.tail = append(t.tail, p...)
	if len(t.tail) > t.max/2 {
		t.tail, t.cut = t.tail[len(t.tail)-t.max/2:], true
	}
	return written, nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return string(t.head) + "\n[…]\n" + string(t.tail)
	}
	return string(t.head) + string(t.tail)
}

// clientsLeaderKill: for each client library, on a fresh 1-partition RF=3 topic, a producer
// sends 300 values while a consumer of the same library reads the topic from the start. Once
// the first third is acknowledged and read, the partition's leader at that moment is
// SIGKILLed while the producer is held (kcat's sends two thirds, and a second kcat process
// the rest after the kill: see kcatProduce); the
// producer then sends the rest through the failover, and the killed broker is restarted (for
// the rest of the phase) once a value sent after the kill is acknowledged. Then:
//   - no error reached the application (a failed send, a consumer error, a script or kcat
//     exiting non-zero or reporting one): retries inside the library are fine;
//   - every value was acknowledged, and the consumer read every value;
//   - package checker finds no anomaly in the history (sends with their acknowledged offsets,
//     the consumer's reads and assignment changes, a group consumer's acknowledged commits
//     and the group's final committed offset, the partition drained with kgo): every
//     acknowledged record stored exactly once at its offset, in send order, consumers reading
//     what the log holds in order, commits never going backwards.
//
// Whether the victim also leads the metadata quorum (the group coordinators' home) is chosen,
// not left to chance: the libraries alternate, kgo, kcat and kafkajs having their partition
// led by the quorum's leader and kafka-go and confluent-kafka by another broker, the other
// way round in odd rounds (see leadPartition). Killing the quorum's leader moves the group
// coordinator too; membership is durable (broker/group), so the members keep their ids and
// no UNKNOWN_MEMBER_ID reaches them (kgo handed it to the application before). With
// FaultsEnv=1 (chaos) leadership is not moved: the victim is whichever broker leads then.
//
// Two library limitations are logged instead of failed: kafka-go's Writer is not idempotent
// (a retried write may be stored twice: duplicate), and kafka-go's Reader (v0.4.51) does not
// skip control batches (segmentio/kafka-go#1446), so it hands the raft no-op each new leader
// term appends to the application as a message (control-value); those reads are taken out
// before the check and counted.
func clientsLeaderKill(t *testing.T, c *cluster.Cluster) {
	cn := clientNetOf(c)
	outer := t
	rounds := max(1, cycles(10)/10)
	for round := range rounds {
		for i, lc := range libClients() {
			name := lc.name
			if rounds > 1 {
				name = fmt.Sprintf("%s-%d", lc.name, round)
			}
			clientLeaderKill(t, outer, c, cn, lc, name, (i+round)%2 == 0)
		}
	}
}

// clientLeaderKill is one library's run of clientsLeaderKill, as subtest name of t (outer
// owns the restarted victim). The victim leads the metadata quorum too when onQuorumLeader
// (unless FaultsEnv=1: then whoever leads).
func clientLeaderKill(t, outer *testing.T, c *cluster.Cluster, cn clientNet, lc libClient, name string, onQuorumLeader bool) {
	t.Run(name, func(t *testing.T) {
		if err := lc.available(); err != nil {
			t.Skipf("%s not installed (%v): not covered in this run", lc.name, err)
		}
		allLive(t, c) // a previous client's victim may still be rejoining
		cfg := workload.Config{Seeds: seeds(c), Dial: c.Dialer(), Rec: checker.NewRecorder(nil),
			Topic: "clients-" + name, Partitions: 1, ReplicationFactor: rf, ClientOpts: clientOpts}
		createReplicated(t, c, cfg)
		if os.Getenv(FaultsEnv) != "1" {
			leadPartition(t, c, cfg, onQuorumLeader) // most moves happen here, before the clients start
		}
		var victim *cluster.Broker // the partition's leader at the kill
		// The restarted victim must outlive this subtest: a process is killed when the
		// test that started it ends (cluster.StartProc), and the next client needs it.
		restart := func() { victim.Start(cleanupOn{TB: t, owner: outer}) }
		defer deleteTopic(t, cfg)
		defer func() { // the next client needs three live brokers, whatever happened here
			if victim != nil && !victim.Running() {
				restart()
			}
		}()

		r := &clientRun{cn: cn, addr: c.Gateways[0].Addr, topic: cfg.Topic, group: cfg.Topic + "-group",
			n: clientRecords, pauseAt: clientRecords / 3, rec: cfg.Rec,
			producer: lc.name + "-producer", consumer: lc.name + "-consumer",
			resumeSeq: clientRecords / 3, paused: make(chan struct{}), resume: make(chan struct{}), read: map[string]bool{}, logs: map[string]*tailBuffer{}}
		defer func() {
			if t.Failed() {
				r.mu.Lock()
				defer r.mu.Unlock()
				for _, name := range slices.Sorted(maps.Keys(r.logs)) {
					t.Logf("%s stderr (its start and end):\n%s", name, r.logs[name])
				}
			}
		}()
		// A hang bound, not a speed assertion: failovers take 5–25 s today.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		var prodErr, consErr error
		prodDone, consDone := make(chan struct{}), make(chan struct{})
		wg.Go(func() { defer close(prodDone); prodErr = lc.produce(ctx, r) })
		wg.Go(func() { defer close(consDone); consErr = lc.consume(ctx, r) })
		defer wg.Wait()
		defer cancel()

		select {
		case <-r.paused:
		case <-prodDone:
			t.Fatalf("%s producer ended before the kill: %v; %v", lc.name, prodErr, r.errors())
		case <-ctx.Done():
			t.Fatalf("%s producer: its first %d values not acknowledged in time: %v", lc.name, r.pauseAt, r.errors())
		}
		cluster.WaitFor(t, "the consumer reading the first third", 2*time.Minute, func() (bool, string) {
			select {
			case <-consDone:
				t.Fatalf("%s consumer ended before the kill: %v; %v", lc.name, consErr, r.errors())
			default:
			}
			n := r.readCount()
			return n >= r.pauseAt, fmt.Sprintf("%d values read", n)
		})

		// The leader now (it may have moved since the topic settled: an election under load,
		// or the quorum's leadership).
		var cur partition
		if os.Getenv(FaultsEnv) == "1" {
			cur = settled(t, c, cfg, time.Minute)[0]
		} else {
			cur = leadPartition(t, c, cfg, onQuorumLeader)
		}
		victim = cur.LeaderProc
		quorumLeader, _ := c.QuorumLeader(t, c.Brokers, time.Minute)
		role := "not the metadata quorum's leader"
		if quorumLeader == victim {
			role = "also the metadata quorum's leader (the group coordinator's home)"
		}
		at := time.Now()
		victim.Kill()
		close(r.resume)
		var first time.Time
		cluster.WaitFor(t, "a record sent after the kill acknowledged", 3*time.Minute, func() (bool, string) {
			var from int
			first, from = r.resumedAt()
			ok := !first.IsZero() || from >= r.n
			if !ok {
				if ps, err := metadata(c, 0, cfg.Topic); err == nil {
					return false, fmt.Sprintf("%v; errors %v", ps[0], r.errors())
				}
			}
			return ok, fmt.Sprint(r.errors())
		})
		now := "?"
		if ps, err := metadata(c, 0, cfg.Topic); err == nil {
			now = ps[0].String()
		}
		t.Logf("killed %s, leader of %s/0 (%v), %s; the first record acknowledged %v later (not asserted); now %s", victim.Name, cfg.Topic, cur, role, first.Sub(at).Round(time.Millisecond), now)
		restart()
		wg.Wait()
		if prodErr != nil {
			t.Errorf("%s producer: %v", lc.name, prodErr)
		}
		if consErr != nil {
			t.Errorf("%s consumer: %v", lc.name, consErr)
		}
		for _, e := range r.errors() {
			t.Errorf("reached the application: %s", e)
		}

		if lc.group {
			fetchGroupOffset(t, cfg, r)
		}
		workload.Final(t, cfg, nil)
		checkClientRun(t, lc, r, cfg.Rec.History())
	})
}

// leadPartition makes partition 0 of cfg's topic led by the metadata quorum's leader when
// onQuorumLeader, by another broker otherwise: the chosen replica is put first
// (AlterPartitionReassignments to the same replicas, which only changes the preferred
// leader) and elected (ElectLeaders, preferred). It returns the partition as it then settled.
// ClientsLeaderKill kills the partition's leader; the quorum's leader is also the group
// coordinators' home, so killing it moves the coordinator of the consumers' group too, which
// kgo once failed (a new coordinator knew no member, and kgo hands UNKNOWN_MEMBER_ID to the
// application as ErrGroupSession) until membership became durable (broker/group). It is
// called once the topic settles and again just before the kill, since leadership (the
// partition's or the quorum's) may move in between.
func leadPartition(t *testing.T, c *cluster.Cluster, cfg workload.Config, onQuorumLeader bool) partition {
	t.Helper()
	adm := kadm.NewClient(cfg.Client(t))
	call := func(f func(ctx context.Context) error) func() (bool, string) {
		return func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := f(ctx)
			return err == nil, fmt.Sprint(err)
		}
	}
	want := "not the quorum's leader"
	if onQuorumLeader {
		want = "the quorum's leader"
	}
	for attempt := 0; ; attempt++ {
		ql, _ := c.QuorumLeader(t, c.Brokers, time.Minute)
		cur := settled(t, c, cfg, time.Minute)[0]
		if (cur.LeaderProc == ql) == onQuorumLeader {
			return cur
		}
		if attempt == 3 { // a hang bound: each move takes about a second
			t.Fatalf("%s/0 led by %v, still not %s (%s) after %d moves", cfg.Topic, cur, want, ql.Name, attempt)
		}
		ids, err := kafkaIDs(c)
		if err != nil {
			t.Fatal(err)
		}
		target := slices.Clone(cur.Replicas)
		i := slices.IndexFunc(target, func(id int32) bool {
			return id != cur.Leader && (ids[id] == ql) == onQuorumLeader
		})
		if i < 0 {
			t.Fatalf("%s/0 (%v): no replica is %s (%s)", cfg.Topic, cur, want, ql.Name)
		}
		target[0], target[i] = target[i], target[0]
		cluster.WaitFor(t, fmt.Sprintf("%s/0 reassigned to %v (the preferred leader only)", cfg.Topic, target), time.Minute, call(func(ctx context.Context) error {
			var req kadm.AlterPartitionAssignmentsReq
			req.Assign(cfg.Topic, 0, target)
			res, err := adm.AlterPartitionAssignments(ctx, req)
			if err == nil {
				err = res[cfg.Topic][0].Err
			}
			return err
		}))
		cluster.WaitFor(t, fmt.Sprintf("%s/0 led by broker %d, %s", cfg.Topic, target[0], want), time.Minute, call(func(ctx context.Context) error {
			ps, err := metadata(c, 0, cfg.Topic)
			if err == nil && ps[0].Leader == target[0] {
				return nil
			}
			res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{cfg.Topic: {0: {}}})
			if err == nil {
				err = res[cfg.Topic][0].Err
			}
			return fmt.Errorf("elect %d: %v; now %v", target[0], err, ps[0])
		}))
	}
}

// cleanupOn is TB with its cleanups registered on owner, a test that outlives TB.
type cleanupOn struct {
	testing.TB
	owner testing.TB
}

func (c cleanupOn) Cleanup(f func()) { c.owner.Cleanup(f) }

// fetchGroupOffset records the group's committed offset of partition 0 once its consumer is
// done (it must be one the consumer had acknowledged, and not below any).
func fetchGroupOffset(t *testing.T, cfg workload.Config, r *clientRun) {
	t.Helper()
	adm := kadm.NewClient(cfg.Client(t))
	cluster.WaitFor(t, "the group's committed offsets", time.Minute, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		inv := cfg.Rec.Begin()
		res, err := adm.FetchOffsets(ctx, r.group)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			return false, err.Error()
		}
		off := int64(-1)
		if o, ok := res.Lookup(r.topic, 0); ok {
			off = o.At
		}
		cfg.Rec.AddOffsetRead(checker.OffsetRead{Group: r.group, TP: checker.TP{Topic: r.topic, Partition: 0}, Offset: off, Invoke: inv})
		return true, ""
	})
}

// checkClientRun checks one client's history (see clientsLeaderKill).
func checkClientRun(t *testing.T, lc libClient, r *clientRun, h checker.History) {
	t.Helper()
	acked := map[int64]bool{}
	for _, s := range h.Sends {
		if s.OK {
			acked[s.Seq] = true
		}
	}
	if len(acked) != r.n {
		t.Errorf("%s: %d of %d values acknowledged", lc.name, len(acked), r.n)
	}
	var missing []string
	for i := range r.n {
		if v := strconv.Itoa(i); !r.read[v] {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s consumer: %d values never read: %s", lc.name, len(missing), abbreviate(missing))
	}

	if lc.readsControl { // take out reads of control records (see clientsLeaderKill)
		control := map[int64]bool{}
		for _, d := range h.Drains {
			for _, rec := range d.Records {
				if rec.Control {
					control[rec.Offset] = true
				}
			}
		}
		var kept []checker.Poll
		var at []int64
		for _, p := range h.Polls {
			if control[p.Offset] {
				at = append(at, p.Offset)
			} else {
				kept = append(kept, p)
			}
		}
		if len(at) > 0 {
			t.Logf("%s consumer handed %d control records to the application as messages, at offsets %v (kafka-go does not skip control batches)", lc.name, len(at), at)
		}
		h.Polls = kept
	}
	rep := checker.Check(h)
	var failed []string
	for _, a := range rep.Anomalies {
		if a.Kind == checker.Duplicate && !lc.idempotent {
			t.Logf("%s (a non-idempotent producer's retry): %s", a.Kind, a.Detail)
			continue
		}
		failed = append(failed, fmt.Sprintf("%s: %s", a.Kind, a.Detail))
	}
	if len(failed) > 0 {
		workload.KeepHistory(t, h)
		t.Errorf("%s: checker: %d anomalies:\n%s", lc.name, len(failed), strings.Join(failed, "\n"))
	}
	t.Logf("%s checker: %s", lc.name, rep.String())
}

func abbreviate(vs []string) string {
	if len(vs) <= 20 {
		return fmt.Sprint(vs)
	}
	return fmt.Sprintf("%v … %v", vs[:10], vs[len(vs)-10:])
}

// TestEarliestInvokeKeepsReorderedAutoCommits: two auto-commits in flight at once, the lower
// one acknowledged last (as librdkafka's were once around a coordinator failover), are not
// a commit going backwards (with the acknowledgement taken as the invocation they were).
func TestEarliestInvokeKeepsReorderedAutoCommits(t *testing.T) {
	r := &clientRun{topic: "t", group: "g", consumer: "c", rec: checker.NewRecorder(nil)}
	for o := range int64(305) {
		r.polled(0, o, strconv.FormatInt(o, 10))
	}
	r.committed(r.earliestInvoke(0, 305), 0, 305)
	r.committed(r.earliestInvoke(0, 104), 0, 104) // invoked once 103 was polled
	if rep := checker.Check(r.rec.History()); !rep.OK() {
		t.Errorf("reordered acknowledgements of concurrent commits: %v", rep.Anomalies)
	}
}
