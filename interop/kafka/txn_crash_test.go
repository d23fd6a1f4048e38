package kafka_test

// Transactions under kill -9: a kgo transactional producer commits transactions of two
// records each (one per partition) in a loop against cmd/gateway (embedded broker) while the
// gateway is killed with SIGKILL at a random moment, then restarted on the same data. After
// each restart a new producer of the same transactional.id fences the old one (its open
// transaction is aborted, a decided one completed), and a read_committed consumer must see
// every transaction whose EndTransaction(commit) returned success, each exactly once, never
// a transaction this test aborted, and every transaction whole or not at all (both records or
// neither). read_uncommitted sees at least as much.
//
// Cycles: 10 by default; KAFKA_TXN_CRASH_CYCLES=N for more.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/interop/cluster"
)

func TestTxnCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	cycles := cluster.EnvCount("KAFKA_TXN_CRASH_CYCLES", 10)
	bin := buildGateway(t)
	dir := t.TempDir()
	addr := cluster.FreeTCP(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	child := startCrashChild(t, bin, dir, addr)
	t.Cleanup(func() { child.cmd.Process.Kill() })
	{
		cl, err := kgo.NewClient(kgo.SeedBrokers(child.addr))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "txcrash")
		cancel()
		cl.Close()
		if err != nil || r.Err != nil {
			t.Fatalf("create topic: %v %v", err, r.Err)
		}
	}
	committed := map[string]bool{} // transaction name → EndTransaction(commit) succeeded
	aborted := map[string]bool{}   // transactions this test aborted
	for cycle := 0; cycle < cycles; cycle++ {
		txnCrashVerify(t, child.addr, committed, aborted, cycle)
		cl, err := kgo.NewClient(kgo.SeedBrokers(child.addr), kgo.TransactionalID("crash-txn"), kgo.DefaultProduceTopic("txcrash"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.TransactionTimeout(60*time.Second),
			kgo.RecordDeliveryTimeout(20*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		killAt := time.After(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("c%d-t%d", cycle, i)
				commit := i%4 != 3 // every fourth transaction is aborted
				if cl.BeginTransaction() != nil {
					return
				}
				var perr error
				for p := int32(0); p < 2; p++ {
					if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("%s/%d", name, p))}).FirstErr(); err != nil {
						perr = err
					}
				}
				if perr != nil {
					return
				}
				if !commit {
					if cl.EndTransaction(ctx, kgo.TryAbort) == nil {
						aborted[name] = true
					}
					continue
				}
				if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
					return // unknown outcome: killed mid-commit
				}
				committed[name] = true
			}
		}()
		<-killAt
		child.kill(t)
		// The next incarnation first: the producer's in-flight requests retry against it (a
		// zombie still running while the next producer of the id starts).
		child = startCrashChild(t, bin, dir, addr)
		cancel()
		<-done
		cl.Close()
	}
	txnCrashVerify(t, child.addr, committed, aborted, cycles)
	if len(committed) < cycles {
		t.Fatalf("only %d transactions committed in %d cycles", len(committed), cycles)
	}
}

// txnCrashVerify checks the topic after a restart (see the file comment). It first runs a
// transaction with a new producer of the id, which fences and ends whatever the kill left.
func txnCrashVerify(t *testing.T, addr string, committed, aborted map[string]bool, cycle int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fence, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("crash-txn"), kgo.DefaultProduceTopic("txcrash"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("fence-%d", cycle)
	if err := fence.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if err := fence.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("%s/%d", name, p))}).FirstErr(); err != nil {
			t.Fatalf("cycle %d: fencing producer: %v", cycle, err)
		}
	}
	if err := fence.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("cycle %d: fencing commit: %v", cycle, err)
	}
	fence.Close()
	committed[name] = true

	// read consumes until every value of want was seen (the deadline only ends a failing
	// run), then polls a few times more to catch anything extra.
	read := func(iso kgo.IsolationLevel, want func(string) bool) map[string]int {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("txcrash"), kgo.FetchIsolationLevel(iso),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		got := map[string]int{}
		missing := func() bool {
			for name := range committed {
				for p := range 2 {
					if v := fmt.Sprintf("%s/%d", name, p); want(v) && got[v] == 0 {
						return true
					}
				}
			}
			return false
		}
		for missing() && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
		}
		if ctx.Err() != nil {
			t.Fatalf("cycle %d: committed records missing (isolation %v)", cycle, iso)
		}
		for range 3 {
			pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
			pcancel()
		}
		return got
	}
	rc := read(kgo.ReadCommitted(), func(string) bool { return true })
	ru := read(kgo.ReadUncommitted(), func(v string) bool { return true })
	txns := map[string]int{}
	for v, n := range rc {
		if n != 1 {
			t.Fatalf("cycle %d: %s read %d times", cycle, v, n)
		}
		txns[v[:strings.LastIndexByte(v, '/')]]++
		if ru[v] != 1 {
			t.Fatalf("cycle %d: %s committed but not in read_uncommitted", cycle, v)
		}
	}
	for name, n := range txns {
		if n != 2 {
			t.Fatalf("cycle %d: transaction %s only partly visible (%d of 2 records)", cycle, name, n)
		}
		if aborted[name] {
			t.Fatalf("cycle %d: aborted transaction %s visible to read_committed", cycle, name)
		}
	}
	for name := range committed {
		if txns[name] != 2 {
			t.Fatalf("cycle %d: committed transaction %s lost (%d of 2 records)", cycle, name, txns[name])
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("cycle %d: timed out", cycle)
	}
}
