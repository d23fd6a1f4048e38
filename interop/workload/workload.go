package workload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/interop/checker"
)

// Config shapes a Workload. Zero values take the defaults named.
type Config struct {
	Seeds []string                                                          // Kafka addresses (gateways)
	Dial  func(ctx context.Context, network, addr string) (net.Conn, error) // nil: net.Dialer
	Rec   *checker.Recorder

	Topic      string // produced to, consumed and committed on (default "load")
	Partitions int32  // default 3
	// ReplicationFactor of the topic CreateTopic makes (default 1).
	ReplicationFactor int16
	// TopicConfigs are given to CreateTopic (min.insync.replicas, say).
	TopicConfigs map[string]*string
	Producers    int // idempotent acks=all producers (default 2)
	// MaxInFlight bounds one producer's records awaiting an answer (default 32); a producer at
	// the bound waits, for every partition: a test whose partitions stall one at a time sets it
	// high enough that the others keep going.
	MaxInFlight int
	// NoProduce runs no producer (a test that loses a broker's disk before partitions are
	// replicated checks metadata only).
	NoProduce bool
	// Interval between one actor's operations (default 20 ms for a producer, ten times that
	// for the metadata actors): the load stays light on a shared machine.
	Interval time.Duration
	// OpTimeout bounds one metadata request (default 5 s); a failed one is recorded and the
	// actor goes on.
	OpTimeout time.Duration
	// Metadata turns on the metadata actors: topic creation (topics "<Topic>-meta-N" with a
	// retention.ms config), group offset commits and fetches (group "<Topic>-group") and
	// InitProducerID.
	Metadata bool
	// Consumers read Topic from the start, recording every record (default 0).
	Consumers int
	// GroupConsumers are members of group "<Topic>-cg" consuming Topic from its committed
	// offsets, committing after each poll (recorded, with their assignment changes), while
	// one more actor reads the group's committed offsets back (OffsetFetch) (default 0).
	GroupConsumers int
	// ClientOpts are added to every client the workload makes (MetadataMinAge, say).
	ClientOpts []kgo.Opt
}

// Workload is a set of Kafka clients running against a cluster and recording into a
// checker.Recorder: producers, a consumer, and metadata writers. Stop ends it.
type Workload struct {
	cfg  Config
	tb   testing.TB
	stop chan struct{}
	wg   sync.WaitGroup
	cls  []*kgo.Client

	mu      sync.Mutex
	pending sync.WaitGroup // produce callbacks outstanding
	topics  []string       // created by the topic actor (acknowledged or not)
}

func (c *Config) defaults() {
	if c.Topic == "" {
		c.Topic = "load"
	}
	if c.Partitions == 0 {
		c.Partitions = 3
	}
	if c.Producers == 0 {
		c.Producers = 2
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 32
	}
	if c.Interval == 0 {
		c.Interval = 20 * time.Millisecond
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 5 * time.Second
	}
	if c.Dial == nil {
		var d net.Dialer
		c.Dial = d.DialContext
	}
}

// Client is a kgo client on the workload's seeds and dialer (closed when the test ends).
func (c Config) Client(tb testing.TB, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	c.defaults()
	return c.client(tb, c.Seeds, opts)
}

// ClientOn is a kgo client seeded with only the i-th seed (modulo their number): the
// workload's actors spread over the gateways this way.
func (c Config) ClientOn(tb testing.TB, i int, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	c.defaults()
	return c.client(tb, []string{c.Seeds[i%len(c.Seeds)]}, opts)
}

func (c Config) client(tb testing.TB, seeds []string, opts []kgo.Opt) *kgo.Client {
	tb.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.Dialer(c.Dial),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond })}
	cl, err := kgo.NewClient(append(append(base, c.ClientOpts...), opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates the workload's topic (retrying until it exists; a hang bound of 60 s).
// An answer other than success or "already exists" that is not retriable (such as
// INVALID_REPLICATION_FACTOR) fails tb at once; TryCreateTopic returns it instead.
func (c Config) CreateTopic(tb testing.TB) {
	tb.Helper()
	if err := c.TryCreateTopic(tb); err != nil {
		tb.Fatalf("create topic %s: %v", c.Topic, err)
	}
}

// TryCreateTopic is CreateTopic returning a non-retriable refusal (a kerr.Error) instead of
// failing: a test skips on INVALID_REPLICATION_FACTOR from a tree without replication.
func (c Config) TryCreateTopic(tb testing.TB) error {
	tb.Helper()
	c.defaults()
	adm := kadm.NewClient(c.Client(tb))
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), c.OpTimeout)
		// CreateTopic returns the topic's error (r.Err) as its error too.
		_, err := adm.CreateTopic(ctx, c.Partitions, c.ReplicationFactor, c.TopicConfigs, c.Topic)
		cancel()
		var ke *kerr.Error
		switch {
		case err == nil || errors.Is(err, kerr.TopicAlreadyExists):
			return nil
		case errors.As(err, &ke) && !ke.Retriable && ke != kerr.NotController:
			return err
		}
		if time.Now().After(deadline) {
			tb.Fatalf("create topic %s: %v", c.Topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Start runs the workload until Stop (or the end of the test).
func Start(tb testing.TB, cfg Config) *Workload {
	tb.Helper()
	cfg.defaults()
	w := &Workload{cfg: cfg, tb: tb, stop: make(chan struct{})}
	for i := range cfg.Producers {
		if cfg.NoProduce {
			break
		}
		cl := cfg.ClientOn(tb, i, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.DefaultProduceTopic(cfg.Topic))
		w.cls = append(w.cls, cl)
		name := fmt.Sprintf("p%d", i)
		w.wg.Go(func() { w.produce(name, cl) })
	}
	for i := range cfg.Consumers {
		name := fmt.Sprintf("c%d", i)
		parts := map[int32]kgo.Offset{}
		for p := range cfg.Partitions {
			parts[p] = kgo.NewOffset().AtStart()
		}
		cl := cfg.ClientOn(tb, i, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: parts}), kgo.FetchMaxWait(200*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		w.cls = append(w.cls, cl)
		w.wg.Go(func() { w.consume(name, cl) })
	}
	if cfg.GroupConsumers > 0 {
		group := cfg.Topic + "-cg"
		for i := range cfg.GroupConsumers {
			name := fmt.Sprintf("g%d", i)
			reset := func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				for topic, ps := range m {
					for _, p := range ps {
						cfg.Rec.AddReset(name, checker.TP{Topic: topic, Partition: p})
					}
				}
			}
			cl := cfg.ClientOn(tb, i, kgo.ConsumerGroup(group), kgo.ConsumeTopics(cfg.Topic), kgo.DisableAutoCommit(),
				kgo.BlockRebalanceOnPoll(), kgo.FetchMaxWait(200*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.OnPartitionsAssigned(reset), kgo.OnPartitionsRevoked(reset), kgo.OnPartitionsLost(reset))
			w.cls = append(w.cls, cl)
			w.wg.Go(func() { w.groupConsume(name, group, cl) })
		}
		adm := kadm.NewClient(cfg.Client(tb))
		w.wg.Go(func() { w.fetchGroupOffsets(adm, group) })
	}
	if cfg.Metadata {
		adm := kadm.NewClient(cfg.Client(tb))
		w.wg.Go(func() { w.createTopics(adm) })
		w.wg.Go(func() { w.commitOffsets(adm) })
		pidCl := cfg.Client(tb)
		w.wg.Go(func() { w.initProducerIDs(pidCl) })
	}
	tb.Cleanup(w.Stop)
	return w
}

// Stop ends every actor and waits for the outstanding produce answers (kgo retries them until
// acknowledged or failed; a hang of 60 s fails the test).
func (w *Workload) Stop() {
	select {
	case <-w.stop:
		return
	default:
	}
	close(w.stop)
	w.wg.Wait()
	done := make(chan struct{})
	go func() { w.pending.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		w.tb.Errorf("workload: produce answers still outstanding 60s after the load stopped")
	}
}

func (w *Workload) tick(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.stop:
		return false
	case <-t.C:
		return true
	}
}

// Topics lists the topics the metadata actor tried to create.
func (w *Workload) Topics() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.topics...)
}

func (w *Workload) produce(name string, cl *kgo.Client) {
	rec := w.cfg.Rec
	sem := make(chan struct{}, w.cfg.MaxInFlight) // records in flight
	for seq := int64(0); ; seq++ {
		if !w.tick(w.cfg.Interval) {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-w.stop:
			return
		}
		v := name + "-" + strconv.FormatInt(seq, 10)
		inv := rec.Begin()
		w.pending.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
			s := checker.Send{Producer: name, Seq: seq, Topic: w.cfg.Topic, Value: v, Invoke: inv, OK: err == nil, Partition: r.Partition, Offset: r.Offset}
			if err != nil {
				s.Err = err.Error()
			}
			rec.AddSend(s)
			<-sem
			w.pending.Done()
		})
	}
}

func (w *Workload) consume(name string, cl *kgo.Client) { w.pollUntilStopped(name, cl, nil) }

// pollUntilStopped polls cl until w stops, recording each poll's records as name's reads,
// and calls after (if not nil) after each poll is recorded.
func (w *Workload) pollUntilStopped(name string, cl *kgo.Client, after func()) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-w.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		var polls []checker.Poll
		fs.EachRecord(func(r *kgo.Record) {
			polls = append(polls, checker.Poll{TP: checker.TP{Topic: r.Topic, Partition: r.Partition}, Offset: r.Offset, Value: string(r.Value)})
		})
		w.cfg.Rec.AddPolls(name, polls...)
		if after != nil {
			after()
		}
	}
}

// groupConsume polls as a member of group, records what it reads, and commits it (recording
// each partition's outcome) before letting a rebalance happen: with BlockRebalanceOnPoll no
// assignment change falls between a poll and its record, so every reset is recorded between
// the reads it separates.
func (w *Workload) groupConsume(name, group string, cl *kgo.Client) {
	rec := w.cfg.Rec
	w.pollUntilStopped(name, cl, func() {
		if offs := cl.UncommittedOffsets(); len(offs) > 0 {
			inv := rec.Begin()
			cctx, ccancel := w.ctx()
			cl.CommitOffsetsSync(cctx, offs, func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				codes := map[checker.TP]int16{}
				if resp != nil {
					for _, t := range resp.Topics {
						for _, p := range t.Partitions {
							codes[checker.TP{Topic: t.Topic, Partition: p.Partition}] = p.ErrorCode
						}
					}
				}
				for _, t := range req.Topics {
					for _, p := range t.Partitions {
						tp := checker.TP{Topic: t.Topic, Partition: p.Partition}
						c := checker.Commit{Group: group, TP: tp, Offset: p.Offset, Invoke: inv, OK: err == nil && resp != nil}
						if code, ok := codes[tp]; !ok || code != 0 {
							c.OK = false
							c.Err = fmt.Sprintf("error code %d", code)
						}
						if err != nil {
							c.Err = err.Error()
						}
						rec.AddCommit(c)
					}
				}
			})
			ccancel()
		}
		cl.AllowRebalance()
	})
}

// fetchGroupOffsets reads the group's committed offsets back every 10 intervals.
func (w *Workload) fetchGroupOffsets(adm *kadm.Client, group string) {
	rec := w.cfg.Rec
	for w.tick(10 * w.cfg.Interval) {
		inv := rec.Begin()
		ctx, cancel := w.ctx()
		got, err := adm.FetchOffsets(ctx, group)
		cancel()
		if err != nil || got.Error() != nil {
			continue
		}
		got.Each(func(o kadm.OffsetResponse) {
			rec.AddOffsetRead(checker.OffsetRead{Group: group, TP: checker.TP{Topic: o.Topic, Partition: o.Partition}, Offset: o.At, Invoke: inv})
		})
	}
}

func (w *Workload) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), w.cfg.OpTimeout)
}

func (w *Workload) createTopics(adm *kadm.Client) {
	rec := w.cfg.Rec
	for n := 0; w.tick(10 * w.cfg.Interval); n++ {
		name := fmt.Sprintf("%s-meta-%d", w.cfg.Topic, n)
		retention := strconv.Itoa(3_600_000 + n)
		w.mu.Lock()
		w.topics = append(w.topics, name)
		w.mu.Unlock()
		inv := rec.Begin()
		ctx, cancel := w.ctx()
		r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &retention}, name)
		cancel()
		if err == nil {
			err = r.Err
		}
		tc := checker.TopicCreate{Name: name, Partitions: 1, Configs: map[string]string{"retention.ms": retention}, Invoke: inv, OK: err == nil}
		if err != nil {
			tc.Err = err.Error()
		}
		rec.AddTopic(tc)
	}
}

func (w *Workload) commitOffsets(adm *kadm.Client) {
	rec := w.cfg.Rec
	group := w.cfg.Topic + "-group"
	tp := checker.TP{Topic: w.cfg.Topic, Partition: 0}
	for off := int64(1); w.tick(10 * w.cfg.Interval); off++ {
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: tp.Topic, Partition: tp.Partition, At: off, LeaderEpoch: -1})
		inv := rec.Begin()
		ctx, cancel := w.ctx()
		resp, err := adm.CommitOffsets(ctx, group, offs)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		c := checker.Commit{Group: group, TP: tp, Offset: off, Invoke: inv, OK: err == nil}
		if err != nil {
			c.Err = err.Error()
		}
		rec.AddCommit(c)

		inv = rec.Begin()
		ctx, cancel = w.ctx()
		got, err := adm.FetchOffsets(ctx, group)
		cancel()
		if err == nil && got.Error() == nil {
			o := checker.OffsetRead{Group: group, TP: tp, Offset: -1, Invoke: inv}
			if r, ok := got.Lookup(tp.Topic, tp.Partition); ok {
				o.Offset = r.At
			}
			rec.AddOffsetRead(o)
		}
	}
}

func (w *Workload) initProducerIDs(cl *kgo.Client) {
	rec := w.cfg.Rec
	for w.tick(10 * w.cfg.Interval) {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionTimeoutMillis = 60_000
		inv := rec.Begin()
		ctx, cancel := w.ctx()
		resp, err := req.RequestWith(ctx, cl)
		cancel()
		if err == nil && resp.ErrorCode == 0 {
			rec.AddProducerID(checker.ProducerID{Client: "pid", ID: resp.ProducerID, Epoch: resp.ProducerEpoch, Invoke: inv})
		}
	}
}

// Recovery is how long after a moment each operation (checker.Op* names) first succeeded.
type Recovery map[string]time.Duration

// Max is the longest of them: by then every operation had succeeded.
func (r Recovery) Max() time.Duration {
	var d time.Duration
	for _, v := range r {
		d = max(d, v)
	}
	return d
}

// WaitOK waits until each of ops (checker.Op* names) has succeeded after since, and returns
// how long after since each first did. The timeout is a hang bound: on expiry the test fails
// with what recovered and what did not; it is not a speed assertion.
func (w *Workload) WaitOK(tb testing.TB, since time.Time, timeout time.Duration, ops ...string) Recovery {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := w.cfg.Rec.FirstOKAfter(since)
		out := Recovery{}
		var missing []string
		for _, op := range ops {
			if at, ok := got[op]; ok {
				out[op] = at.Sub(since)
			} else {
				missing = append(missing, op)
			}
		}
		if len(missing) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			tb.Fatalf("workload: %v did not succeed within %v (recovered: %v)", missing, timeout, out)
		}
		if !w.tick(50 * time.Millisecond) {
			tb.Fatalf("workload stopped while waiting for %v", missing)
		}
	}
}

// WaitSendOK waits until a send to tp has been acknowledged after since and returns how long
// after since the first was. The timeout is a hang bound (the test fails on expiry), not a
// speed assertion.
func (w *Workload) WaitSendOK(tb testing.TB, since time.Time, tp checker.TP, timeout time.Duration) time.Duration {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if at, ok := w.cfg.Rec.FirstSendOKAfter(since, tp); ok {
			return at.Sub(since)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("workload: no send to %s/%d acknowledged within %v", tp.Topic, tp.Partition, timeout)
		}
		if !w.tick(20 * time.Millisecond) {
			tb.Fatalf("workload stopped while waiting for a send to %s/%d", tp.Topic, tp.Partition)
		}
	}
}

// Config returns the workload's configuration with its defaults filled in.
func (w *Workload) Config() Config { return w.cfg }
