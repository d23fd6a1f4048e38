package meshkafka_test

// The broker process is SIGKILLed and restarted (same data dir, same mesh address) under
// acks=all load from several kgo producers talking to a gateway that stays up. The producers
// must see retriable errors and get every record acknowledged by themselves (kgo retries);
// afterwards every acknowledged record is present exactly once, at the partition and offset
// its acknowledgement named, each producer's records in produce order within a partition,
// and every partition's offsets contiguous from 0.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

const (
	killTopic      = "killload"
	killPartitions = 4
	killProducers  = 4
)

// ack is where an acknowledgement said a record was stored.
type ack struct {
	partition int32
	offset    int64
}

// loadProducer produces "p<id>-<seq>" values as fast as its bounded window allows.
type loadProducer struct {
	id  int
	cl  *kgo.Client
	log *kgoLog
	sem chan struct{} // bounds records in flight

	mu      sync.Mutex
	acked   map[string]ack
	failed  []string
	sent    int
	pending sync.WaitGroup
}

func (lp *loadProducer) run(stop <-chan struct{}) {
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		case lp.sem <- struct{}{}:
		}
		v := fmt.Sprintf("p%d-%07d", lp.id, seq)
		lp.mu.Lock()
		lp.sent++
		lp.mu.Unlock()
		lp.pending.Add(1)
		lp.cl.Produce(context.Background(), &kgo.Record{Topic: killTopic, Value: []byte(v)}, func(r *kgo.Record, err error) {
			lp.mu.Lock()
			if err != nil {
				lp.failed = append(lp.failed, fmt.Sprintf("%s: %v", v, err))
			} else {
				lp.acked[v] = ack{r.Partition, r.Offset}
			}
			lp.mu.Unlock()
			<-lp.sem
			lp.pending.Done()
		})
	}
}

func (lp *loadProducer) ackCount() int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return len(lp.acked)
}

// TestMeshBrokerKill: SIGKILL/restart cycles of the broker (10 by default, MESH_KILL_CYCLES=N
// for more: `go tool task chaos`) under acks=all load from idempotent kgo producers; the load
// resumes after each restart (the restarted broker resets the gateway's old QUIC connection:
// its stateless-reset key derives from its node key), and every acknowledged record is present
// exactly once, in order, with contiguous offsets (idempotent produce deduplicates batches the
// killed broker stored but never acknowledged). How long the load took to resume is logged; the
// test fails only if it never does (a 60 s bound catches a hang: on a loaded 2-core machine the
// time varies too much to be an assertion).
func TestMeshBrokerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("broker kill test skipped in -short mode")
	}
	runBrokerKill(t, cluster.EnvCount("MESH_KILL_CYCLES", 10), 60*time.Second)
}

func runBrokerKill(t *testing.T, cycles int, recovery time.Duration) {
	b, g := meshPair(t)
	createTopic(t, g.addr, killTopic, killPartitions, nil)

	producers := make([]*loadProducer, killProducers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range producers {
		lp := &loadProducer{id: i, log: &kgoLog{}, sem: make(chan struct{}, 64), acked: map[string]ack{}}
		// Idempotent (kgo's default): batches the killed broker stored but did not answer are
		// recognised when the client retries them, so nothing is stored twice.
		lp.cl = kafkaclients.KgoClient(t, g.addr, kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.ProducerLinger(time.Millisecond), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
			kgo.WithLogger(lp.log), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
		producers[i] = lp
		wg.Go(func() { lp.run(stop) })
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)
	totalAcks := func() int {
		n := 0
		for _, lp := range producers {
			n += lp.ackCount()
		}
		return n
	}
	waitAcks := func(what string, above int, timeout time.Duration) time.Duration {
		start := time.Now()
		for totalAcks() <= above {
			if time.Since(start) > timeout {
				stopLoad()
				t.Fatalf("%s: the load did not resume within %v (%d acks so far)\n%s\n%s", what, timeout, totalAcks(), b.p.Logs(), g.p.Logs())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	waitAcks("initial load", 0, 20*time.Second)
	for cycle := range cycles {
		time.Sleep(time.Duration(200+rng.IntN(500)) * time.Millisecond) // load running
		before := totalAcks()
		b.p.Kill() // SIGKILL in the middle of the load
		down := time.Duration(100+rng.IntN(400)) * time.Millisecond
		time.Sleep(down)
		atRestart := totalAcks()
		b.start(t) // same -data and -bind: same NodeId and address
		rec := waitAcks(fmt.Sprintf("cycle %d: after broker restart", cycle), atRestart, recovery)
		t.Logf("cycle %d: %d acks before the kill, down %v, load resumed %v after the restart", cycle, before, down, rec.Round(time.Millisecond))
	}
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	for _, lp := range producers {
		done := make(chan struct{})
		go func() { lp.pending.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("producer %d: %d records still unacknowledged 30s after the load stopped", lp.id, lp.sent-lp.ackCount())
		}
	}

	acked := map[string]ack{}
	retriable := 0
	for _, lp := range producers {
		lp.cl.Close()
		if len(lp.failed) > 0 {
			t.Errorf("producer %d: %d records failed instead of being retried, first: %s", lp.id, len(lp.failed), lp.failed[0])
		}
		for v, a := range lp.acked {
			acked[v] = a
		}
		// What kgo logs when a produce or metadata request failed and is retried.
		for _, m := range []string{"produce request had retry batches", "read from broker errored", "produce request failed", "err_is_retryable=true"} {
			retriable += len(lp.log.matching(m))
		}
		if bad := lp.log.matching("err_is_retryable=false"); len(bad) > 0 {
			t.Errorf("producer %d saw non-retriable errors: %s", lp.id, bad[0])
		}
	}
	if retriable == 0 {
		t.Errorf("no producer saw a retriable error across %d broker kills", cycles)
	}
	t.Logf("%d records acknowledged over %d kill cycles; producers logged %d retried requests", len(acked), cycles, retriable)
	if dups := verifyAcked(t, g.addr, acked); len(dups) > 0 {
		t.Errorf("%d records stored more than once, e.g. %s", len(dups), dups[0])
	}
}

// verifyAcked reads the whole topic and checks every acknowledged record and the log shape:
// each acknowledged record at its acknowledged place, offsets contiguous from 0, each
// producer's records in order within a partition. It returns the records found twice.
func verifyAcked(t *testing.T, addr string, acked map[string]ack) []string {
	t.Helper()
	total := int64(0)
	for _, o := range endOffsets(t, addr, killTopic) {
		total += o
	}
	cl := kafkaclients.KgoClient(t, addr, kgo.ConsumeTopics(killTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := map[int32]int64{}
	lastSeq := map[int32]map[string]int{}
	seen := map[string]ack{}     // first place each value was read at
	copies := map[string][]ack{} // every place, for values read more than once
	var dups []string
	for got := int64(0); got < total; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", got, total)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		for _, r := range fs.Records() {
			got++
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d (offsets not contiguous)", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			v := string(r.Value)
			if prev, dup := seen[v]; dup {
				dups = append(dups, fmt.Sprintf("%s at %d/%d and %d/%d", v, prev.partition, prev.offset, r.Partition, r.Offset))
				if copies[v] == nil {
					copies[v] = []ack{prev}
				}
				copies[v] = append(copies[v], ack{r.Partition, r.Offset})
				continue
			}
			seen[v] = ack{r.Partition, r.Offset}
			who, seqText, _ := strings.Cut(v, "-")
			seq, _ := strconv.Atoi(seqText)
			if lastSeq[r.Partition] == nil {
				lastSeq[r.Partition] = map[string]int{}
			}
			if last, ok := lastSeq[r.Partition][who]; ok && seq <= last {
				t.Fatalf("partition %d: %s after seq %d (out of order)", r.Partition, v, last)
			}
			lastSeq[r.Partition][who] = seq
		}
	}
	cl.Close()
	lost := 0
	for v, a := range acked {
		if s, ok := seen[v]; !ok {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged record %s (%d/%d) lost", v, a.partition, a.offset)
			}
		} else if s != a && !slices.Contains(copies[v], a) {
			t.Errorf("acknowledged record %s stored at %d/%d, acknowledgement said %d/%d", v, s.partition, s.offset, a.partition, a.offset)
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged records lost", lost)
	}
	t.Logf("%d records read, %d partitions, all %d acknowledged records present at their acknowledged offsets", total, len(next), len(acked))
	return dups
}
