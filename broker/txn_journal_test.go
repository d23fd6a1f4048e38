package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/txn"
)

// The coordinator's records share the partitions' commit journal (txn.WALJournal), so
// AddPartitionsToTxn is answered without an fsync of its own and EndTxn's PrepareCommit,
// markers and CompleteCommit share one. A producer commits and aborts transactions over two
// partitions and the machine loses power after a random answered step (unsynced bytes torn at
// random): after each restart every transaction whose commit was answered is read whole by
// read_committed, nothing else is, and once the producer has re-initialised (which aborts an
// open transaction) no partition holds an open transaction the coordinator does not know
// (the last stable offset is the high watermark). A duplicate marker written by the recovery
// of a transaction whose CompleteCommit was lost must not end the next one early.
//
// TestTxnJournalCrashes/tv2 runs the same with transaction.version 2 (KIP-890 part 2): no
// AddPartitionsToTxn (the produce adds its partition), and each EndTxn bumps the epoch the
// producer continues with.
func TestTxnJournalCrashes(t *testing.T) {
	forTxnVersions(t, txnJournalCrashes)
}

// forTxnVersions runs f as subtests tv1 and tv2 (transaction.version 2: tv2 true).
func forTxnVersions(t *testing.T, f func(t *testing.T, tv2 bool)) {
	t.Run("tv1", func(t *testing.T) { f(t, false) })
	t.Run("tv2", func(t *testing.T) { f(t, true) })
}

func txnJournalCrashes(t *testing.T, tv2 bool) {
	e := txnTopicEnv(t, 2)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(18, 7))
	var want []string
	for cycle := range 12 {
		e.b.TxnCheck(ctx) // finish what the crash left decided
		pid, ep := e.initTxn("c", 60000)
		checkCommitted(t, e, want, cycle)
		var seq [2]int32
		crashAt, step := 1+rng.IntN(12), 0
		crashed := func() bool {
			if step++; step == crashAt {
				e.crash(rng)
				return true
			}
			return false
		}
		for n := 0; ; n++ {
			commit := n%3 != 2
			vals := [2]string{fmt.Sprintf("%d.%d.a", cycle, n), fmt.Sprintf("%d.%d.b", cycle, n)}
			if !tv2 {
				if c := e.addParts("c", pid, ep, "t", 0, 1); c != 0 {
					t.Fatalf("cycle %d: add partitions: %d", cycle, c)
				}
				if crashed() {
					break
				}
			}
			for p := range int32(2) {
				if r := e.produceTxn(tv2, "t", p, txnBatch(pid, ep, seq[p], vals[p])); r.ErrorCode != 0 {
					t.Fatalf("cycle %d: produce: %d %s", cycle, r.ErrorCode, r.ErrorMessage)
				}
				seq[p]++
			}
			if crashed() {
				break
			}
			if tv2 {
				npid, nep, c := e.endTxnV2("c", pid, ep, commit)
				if c != 0 || npid != pid || nep != ep+1 {
					t.Fatalf("cycle %d: end: code %d, producer %d/%d after %d/%d", cycle, c, npid, nep, pid, ep)
				}
				pid, ep, seq = npid, nep, [2]int32{}
			} else if c := e.endTxn("c", pid, ep, commit); c != 0 {
				t.Fatalf("cycle %d: end: %d", cycle, c)
			}
			if commit {
				want = append(want, vals[:]...)
			}
			if crashed() {
				break
			}
		}
	}
	e.b.TxnCheck(ctx)
	e.initTxn("c", 60000)
	checkCommitted(t, e, want, 12)
}

// checkCommitted reads both partitions of "t" with read_committed: exactly want (in any
// order), and no open transaction left (LSO == HW).
func checkCommitted(t *testing.T, e *env, want []string, cycle int) {
	t.Helper()
	var got []string
	for p := range int32(2) {
		vals, lso, hw := e.readIso("t", p, 1)
		if lso != hw {
			d, _ := e.b.DescribeTransactions(context.Background(), &brokerop.DescribeTransactionsReq{TransactionalIDs: []string{"c"}})
			t.Fatalf("cycle %d: partition %d: last stable offset %d below the high watermark %d (coordinator: %+v)", cycle, p, lso, hw, d.Transactions)
		}
		got = append(got, vals...)
	}
	slices.Sort(got)
	w := slices.Sorted(slices.Values(want))
	if !slices.Equal(got, w) {
		t.Fatalf("cycle %d: read_committed %q, want %q", cycle, got, w)
	}
}

// A transactional produce of transaction.version 2 is answered before its fsync (the EndTxn
// that commits it makes it durable): power is cut at random points of transactions (between
// the produces into the two partitions, after them, after EndTxn), tearing unsynced tails,
// and in half the cycles the broker is first stopped cleanly somewhere before (the
// transaction goes on: a clean stop made everything durable).
// After each crash the producer, not knowing, sends EndTxn(commit) for the transaction it was
// in: that must fail (the transaction was aborted at the unclean open, or its record was lost
// and the coordinator does not know it), so that no transaction that lost an acknowledged
// record ever commits; every commit answered before the crash is read whole by
// read_committed, nothing else is, and no partition is left with an open transaction. The
// high watermark a reader was shown (ListOffsets, a read_uncommitted fetch) survives the
// crash: it never includes records not yet durable.
func TestTxnUnsyncedProduceCrashes(t *testing.T) {
	e := txnTopicEnv(t, 2)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(890, 2))
	var want []string
	crashes, refused, restarts := 0, 0, 0
	for cycle := range 40 {
		e.b.TxnCheck(ctx) // the abort markers of what the crash left open
		checkCommitted(t, e, want, cycle)
		pid, ep := e.initTxn("u", 60000)
		crashAt, step := 1+rng.IntN(9), 0
		restartAt := rng.IntN(2 * crashAt) // a clean restart before the crash, in half the cycles
		var shown [2]int64                 // high watermarks a reader was shown
		crashed := func() bool {
			if step++; step == restartAt {
				// A clean stop makes everything durable: the transaction goes on (and the
				// clean-stop file is gone again before the next crash).
				e.restart()
				restarts++
			}
			if step != crashAt {
				return false
			}
			e.crash(rng)
			crashes++
			for p := range int32(2) {
				if hw := e.listLatest("t", p, 0); hw < shown[p] {
					t.Fatalf("cycle %d: partition %d: high watermark %d after the crash, %d shown before it", cycle, p, hw, shown[p])
				}
			}
			return true
		}
		for n := 0; ; n++ {
			vals := [2]string{fmt.Sprintf("%d.%d.a", cycle, n), fmt.Sprintf("%d.%d.b", cycle, n)}
			lost := false
			for p := range int32(2) {
				if r := e.produceTxn(true, "t", p, txnBatch(pid, ep, 0, vals[p])); r.ErrorCode != 0 {
					t.Fatalf("cycle %d: produce: %d %s", cycle, r.ErrorCode, r.ErrorMessage)
				}
				if rng.IntN(3) == 0 { // a reader looks: what it is shown is durable
					if rng.IntN(2) == 0 {
						shown[p] = e.listLatest("t", p, 0)
					} else {
						_, _, shown[p] = e.readIso("t", p, 0)
					}
				}
				if lost = crashed(); lost {
					break
				}
			}
			if lost {
				// The producer goes on with the transaction it was in: its commit must fail.
				if _, _, c := e.endTxnV2("u", pid, ep, true); c == 0 {
					t.Fatalf("cycle %d: EndTxn(commit) of a transaction open at the crash succeeded", cycle)
				}
				refused++
				break
			}
			npid, nep, c := e.endTxnV2("u", pid, ep, true)
			if c != 0 {
				t.Fatalf("cycle %d: commit: %d", cycle, c)
			}
			want = append(want, vals[:]...)
			pid, ep = npid, nep
			if crashed() {
				break
			}
		}
	}
	e.b.TxnCheck(ctx)
	checkCommitted(t, e, want, 40)
	if crashes != 40 || refused == 0 || restarts == 0 || len(want) == 0 {
		t.Fatalf("%d crashes, %d commits refused, %d clean restarts, %d records committed: the test did not exercise its cases", crashes, refused, restarts, len(want))
	}
}

// What each step of a transaction costs in fsyncs of the commit journal, the coordinator's
// records included: AddPartitionsToTxn none (its record is made durable by the produce's
// group commit, which follows it in the journal), the produce one, EndTxn one (PrepareCommit,
// the markers and CompleteCommit share it). The record files of the earlier layout are gone.
//
// With transaction.version 2 (/tv2) one: the produce is answered once written (its records
// matter only once the transaction commits), and EndTxn's group commit covers the record of
// its implicit partition add, its batches and the bumped epoch (TestTxnUnsyncedProduceCrashes
// checks that a crash can then never commit a transaction that lost records).
func TestTxnFsyncsPerTransaction(t *testing.T) {
	forTxnVersions(t, txnFsyncsPerTransaction)
}

func txnFsyncsPerTransaction(t *testing.T, tv2 bool) {
	e := txnTopicEnv(t, 2)
	pid, ep := e.initTxn("f", 60000)
	fsyncs := func() int64 { return e.b.store.Stats().Fsyncs }
	for n := range 3 {
		seq := int32(n)
		if tv2 {
			seq = 0
		} else {
			f0 := fsyncs()
			if c := e.addParts("f", pid, ep, "t", 0, 1); c != 0 {
				t.Fatalf("add partitions: %d", c)
			}
			if d := fsyncs() - f0; d != 0 {
				t.Fatalf("transaction %d: AddPartitionsToTxn cost %d fsyncs, want 0", n, d)
			}
		}
		f0 := fsyncs()
		e.produceAll(&brokerop.ProduceReq{Acks: -1, TxnAdd: tv2, Partitions: []brokerop.ProducePartition{
			{Topic: "t", Partition: 0, Records: txnBatch(pid, ep, seq, "a")},
			{Topic: "t", Partition: 1, Records: txnBatch(pid, ep, seq, "b")}}})
		want := int64(1)
		if tv2 {
			want = 0
		}
		if d := fsyncs() - f0; d != want {
			t.Fatalf("transaction %d: produce into two partitions cost %d fsyncs, want %d", n, d, want)
		}
		f0 = fsyncs()
		if tv2 {
			var c int16
			if pid, ep, c = e.endTxnV2("f", pid, ep, true); c != 0 {
				t.Fatalf("commit: %d", c)
			}
		} else if c := e.endTxn("f", pid, ep, true); c != 0 {
			t.Fatalf("commit: %d", c)
		}
		if d := fsyncs() - f0; d != 1 {
			t.Fatalf("transaction %d: EndTxn cost %d fsyncs, want 1", n, d)
		}
	}
	if names, _ := e.fs.ReadDir("/data/txn"); slices.Contains(names, "txn.log") {
		t.Fatalf("txn.log beside the journal: %q", names)
	}
}

// A transaction log of the earlier layout (txn/txn.log) is moved into the commit journal at
// the first open: an open transaction in it is still open, and committed by its producer.
func TestTxnLegacyLogMoved(t *testing.T) {
	e, pid, ep := txnEnvWithBatch(t, "old", 60000, "v")
	d0, _ := e.b.DescribeTransactions(context.Background(), &brokerop.DescribeTransactionsReq{TransactionalIDs: []string{"old"}})
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewrite the coordinator's state as the earlier release kept it, and drop the journal.
	st, _, err := txn.OpenStore(e.fs, "/data/txn", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Append(&txn.Txn{ID: "old", ProducerID: pid, Epoch: ep, TimeoutMs: 60000, State: txn.Ongoing,
		StartMs: e.clock.Now().UnixMilli(), UpdateMs: e.clock.Now().UnixMilli(), Partitions: []txn.TP{{Topic: "t", Partition: 0}}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := e.fs.RemoveAll("/data/txn/journal"); err != nil {
		t.Fatal(err)
	}
	e.fs.Crash() // only what is durable
	e.open()
	d, _ := e.b.DescribeTransactions(context.Background(), &brokerop.DescribeTransactionsReq{TransactionalIDs: []string{"old"}})
	if got, want := d.Transactions[0], d0.Transactions[0]; got.State != "Ongoing" || got.ProducerID != want.ProducerID || len(got.Partitions) != 1 {
		t.Fatalf("after the move: %+v, want %+v", got, want)
	}
	if names, _ := e.fs.ReadDir("/data/txn"); slices.Contains(names, "txn.log") {
		t.Fatalf("txn.log still there: %q", names)
	}
	if c := e.endTxn("old", pid, ep, true); c != 0 {
		t.Fatalf("commit: %d", c)
	}
	e.crash(nil)
	if got, lso, hw := e.readIso("t", 0, 1); !slices.Equal(got, []string{"v"}) || lso != hw {
		t.Fatalf("after commit and crash: %q lso %d hw %d", got, lso, hw)
	}
}

// Which produces are answered before their fsync (txnAckedUnsynced): a transactional batch of
// transaction.version 2 whose transaction is Ongoing once it is appended, nothing else. A
// batch whose transaction was decided meanwhile (an EndTxn that overtook the produce) waits:
// its prepare record precedes it in the journal, so a durable decision would not imply it.
func TestTxnAckedUnsynced(t *testing.T) {
	e := txnTopicEnv(t, 1)
	pid, ep := e.initTxn("a", 60000)
	p := e.b.lookup("t", 0)
	tv2 := &brokerop.ProduceReq{Acks: -1, TxnAdd: true}
	batch := txnBatch(pid, ep, 0, "v")
	if r := e.produceTxn(true, "t", 0, batch); r.ErrorCode != 0 {
		t.Fatalf("produce: %d", r.ErrorCode)
	}
	if !e.b.txnAckedUnsynced(tv2, p, batch) {
		t.Fatal("a version 2 transactional batch of an Ongoing transaction waits for its fsync")
	}
	for name, c := range map[string]struct {
		req   *brokerop.ProduceReq
		batch []byte
	}{
		"version 1":      {&brokerop.ProduceReq{Acks: -1}, batch},
		"idempotent":     {tv2, idemBatch(pid, ep, 0, "v")},
		"other epoch":    {tv2, txnBatch(pid, ep+1, 0, "v")},
		"other producer": {tv2, txnBatch(pid+1, 0, 0, "v")},
	} {
		if e.b.txnAckedUnsynced(c.req, p, c.batch) {
			t.Errorf("%s: answered before its fsync", name)
		}
	}
	if _, _, c := e.endTxnV2("a", pid, ep, true); c != 0 {
		t.Fatalf("commit: %d", c)
	}
	if e.b.txnAckedUnsynced(tv2, p, batch) {
		t.Fatal("a batch appended after its transaction was decided is answered before its fsync")
	}
	// In a cluster (an external verifier) nothing changes: TransactionVersion is 1.
	e.b.SetTxnVerifier(func(context.Context, int64, int16, txn.TP) int16 { return 0 })
	pid, ep = e.initTxn("b", 60000)
	if e.b.txnAckedUnsynced(tv2, p, txnBatch(pid, ep, 0, "w")) {
		t.Fatal("answered before its fsync with an external verifier")
	}
}

// ProduceStagedReady says when the wait returns at once: nothing to make durable (a
// transactional batch of transaction.version 2, acks=1), not for acks=all data.
func TestProduceStagedReady(t *testing.T) {
	e := txnTopicEnv(t, 1)
	pid, ep := e.initTxn("r", 60000)
	for _, c := range []struct {
		name  string
		req   *brokerop.ProduceReq
		ready bool
	}{
		{"tv2 transactional", &brokerop.ProduceReq{Acks: -1, TxnAdd: true, Partitions: []brokerop.ProducePartition{{Topic: "t", Records: txnBatch(pid, ep, 0, "a")}}}, true},
		{"acks=all", &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "t", Records: idemBatch(pid+1, 0, 0, "b")}}}, false},
		{"acks=1", &brokerop.ProduceReq{Acks: 1, Partitions: []brokerop.ProducePartition{{Topic: "t", Records: idemBatch(pid+2, 0, 0, "c")}}}, true},
	} {
		wait, ready := e.b.ProduceStagedReady(context.Background(), c.req)
		resp, err := wait()
		if err != nil || resp.Partitions[0].ErrorCode != 0 {
			t.Fatalf("%s: %v %+v", c.name, err, resp)
		}
		if ready != c.ready {
			t.Errorf("%s: ready %v, want %v", c.name, ready, c.ready)
		}
	}
}
