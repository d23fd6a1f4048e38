package repl_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// TestReplTxnPipeline is exactly-once on replicated partitions across brokers (issues #16
// and #18): three broker processes forming one metadata quorum, two gateways, RF=3 input and
// output topics, and a kgo GroupTransactSession pipeline (consume "txin" read_committed →
// transform → produce to "txout", offsets committed in the transaction). Each cycle
// SIGKILLs the leader of an output partition, then the metadata quorum's leader (the
// transaction coordinator's broker), restarting each once the pipeline has moved on
// without it. Then the output read with read_committed holds every input record exactly
// once; a transaction aborted beside it is never seen by read_committed and is seen by
// read_uncommitted. Cycles: REPL_CYCLES (default 10; `go tool task chaos` runs 100).
func TestReplTxnPipeline(t *testing.T) {
	c := startRepl(t, false)
	in := workload.Config{Seeds: seeds(c), Dial: c.Dialer(), Topic: "txin", Partitions: 3, ReplicationFactor: rf}
	out := in
	out.Topic = "txout"
	createReplicated(t, c, in)
	createReplicated(t, c, out)
	opts := append([]kgo.Opt{kgo.SeedBrokers(seeds(c)...), kgo.Dialer(c.Dialer())}, clientOpts...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const n = 600
	prod, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(in.Topic), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		t.Fatal(err)
	}
	produceIn := func(from, to int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < to; i++ {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("in-%d", i))})
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer pcancel()
		if err := prod.ProduceSync(pctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce input: %v", err)
		}
	}
	produceIn(0, n/3)

	// A transaction aborted on the output topic.
	ab, err := kgo.NewClient(append(opts, kgo.TransactionalID("aborter"), kgo.DefaultProduceTopic(out.Topic))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := ab.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	const aborted = 12
	for i := range aborted {
		if err := ab.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("ab-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("aborted transaction's produce: %v", err)
		}
	}
	if err := ab.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("abort: %v", err)
	}
	ab.Close()

	// The pipeline.
	sess, err := kgo.NewGroupTransactSession(append(opts, kgo.TransactionalID("etl"), kgo.ConsumerGroup("etl-group"),
		kgo.ConsumeTopics(in.Topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic(out.Topic), kgo.TransactionTimeout(20*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	var moved atomic.Int64 // input records in committed transactions
	var aborts atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			fs := sess.PollRecords(ctx, 50)
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
			if len(recs) == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				t.Errorf("begin: %v", err)
				return
			}
			outs := make([]*kgo.Record, len(recs))
			for i, r := range recs {
				outs[i] = &kgo.Record{Key: r.Key, Value: []byte("out-" + strings.TrimPrefix(string(r.Value), "in-"))}
			}
			committed, perr, err := kafkaclients.ProduceAndEnd(ctx, sess, outs)
			switch {
			case committed:
				moved.Add(int64(len(recs)))
			case ctx.Err() == nil:
				aborts.Add(1)
				t.Logf("transaction not committed (%d records; produce error %v; end error %v): the session retries them", len(recs), perr, err)
			}
		}
	})
	defer func() {
		cancel()
		wg.Wait()
		sess.Close()
		prod.Close()
	}()
	waitMoved := func(want int64) {
		t.Helper()
		cluster.WaitFor(t, fmt.Sprintf("the pipeline past %d input records", want), 3*time.Minute, func() (bool, string) {
			m := moved.Load()
			return m >= want, fmt.Sprintf("%d moved, %d transactions not committed", m, aborts.Load())
		})
	}

	cyc := cycles(10)
	per := (n - n/3) / (2 * cyc)
	next := n / 3
	for i := range cyc {
		view := settled(t, c, out, time.Minute)
		victim := view[int32(i)%out.Partitions].LeaderProc
		t.Logf("cycle %d: SIGKILL %s, leader of %s-%d", i, victim.Name, out.Topic, int32(i)%out.Partitions)
		victim.Kill()
		produceIn(next, next+per)
		next += per
		waitMoved(int64(next))
		victim.Start(t)
		allLive(t, c)

		coord, _ := c.QuorumLeader(t, c.Brokers, time.Minute)
		t.Logf("cycle %d: SIGKILL %s, the quorum leader (transaction coordinator)", i, coord.Name)
		coord.Kill()
		last := n
		if i < cyc-1 {
			last = next + per
		}
		produceIn(next, last)
		next = last
		waitMoved(int64(next))
		coord.Start(t)
		allLive(t, c)
	}
	waitMoved(n)

	// The output, read from the start at both isolation levels.
	read := func(iso kgo.IsolationLevel, want func(map[string]int) bool) map[string]int {
		t.Helper()
		cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(out.Topic), kgo.FetchIsolationLevel(iso),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		seen := map[string]int{}
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer rcancel()
		for !want(seen) && rctx.Err() == nil {
			cl.PollFetches(rctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		}
		return seen
	}
	outs := func(seen map[string]int) int {
		k := 0
		for v := range seen {
			if strings.HasPrefix(v, "out-") {
				k++
			}
		}
		return k
	}
	committed := read(kgo.ReadCommitted(), func(s map[string]int) bool { return outs(s) >= n })
	var bad []string
	for i := range n {
		if k := committed[fmt.Sprintf("out-%d", i)]; k != 1 {
			bad = append(bad, fmt.Sprintf("out-%d ×%d", i, k))
		}
	}
	for v := range committed {
		if strings.HasPrefix(v, "ab-") {
			bad = append(bad, "aborted "+v+" read committed")
		}
	}
	if len(bad) > 0 {
		t.Fatalf("read_committed output: %d anomalies: %v", len(bad), bad[:min(len(bad), 20)])
	}
	all := read(kgo.ReadUncommitted(), func(s map[string]int) bool {
		k := 0
		for v := range s {
			if strings.HasPrefix(v, "ab-") {
				k++
			}
		}
		return k >= aborted
	})
	for i := range aborted {
		if all[fmt.Sprintf("ab-%d", i)] != 1 {
			t.Fatalf("read_uncommitted: aborted record ab-%d seen %d times", i, all[fmt.Sprintf("ab-%d", i)])
		}
	}
	t.Logf("%d input records exactly once through %d cycles; %d transactions not committed (retried)", n, cyc, aborts.Load())
}
