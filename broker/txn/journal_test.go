package txn

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memJournal is a replicated journal as the coordinators of a cluster share it (the
// metadata quorum): records appended by one coordinator are there for the next.
type memJournal struct {
	mu   sync.Mutex
	recs []*Txn
	fail bool
}

func (j *memJournal) Append(recs ...*Txn) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail {
		return errors.New("no quorum")
	}
	for _, t := range recs {
		j.recs = append(j.recs, t.clone())
	}
	return nil
}

func (j *memJournal) MaybeCompact([]*Txn) error { return nil }
func (j *memJournal) Close() error              { return nil }

func (j *memJournal) records() []*Txn {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]*Txn(nil), j.recs...)
}

// A coordinator takes over from a lost one on the same journal (a new quorum leader): the
// transaction the old one decided to commit but whose markers it never wrote is committed
// (markers, offsets) by the first check; the one left Ongoing stays open (its producer may
// still end it) until transaction.timeout.ms, then it is aborted with the epoch bumped,
// which fences the old producer.
func TestCoordinatorTakeover(t *testing.T) {
	j := &memJournal{}
	ids := &pids{next: 100}
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	lost := &markerRec{fail: true} // the old coordinator's broker dies before its markers land
	cfg := CoordinatorConfig{Now: clock, NewPID: ids.alloc, Markers: lost, CheckInterval: -1}
	a, err := New(cfg, j, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	px, ex, code := a.InitProducerID(ctx, "x", 60000, -1, -1)
	py, ey, code2 := a.InitProducerID(ctx, "y", 60000, -1, -1)
	if code != 0 || code2 != 0 {
		t.Fatalf("init: %d %d", code, code2)
	}
	tp := TP{Topic: "out", Partition: 2}
	if c := a.AddPartitions(ctx, "x", px, ex, []TP{tp}); c != 0 {
		t.Fatalf("add x: %d", c)
	}
	if c := a.AddOffsets(ctx, "x", px, ex, "g"); c != 0 {
		t.Fatalf("add offsets x: %d", c)
	}
	if c := a.CommitOffsets(ctx, "x", px, ex, "g", []Offset{{Topic: "in", Partition: 0, Offset: 41}}); c != 0 {
		t.Fatalf("txn offset commit x: %d", c)
	}
	if c := a.AddPartitions(ctx, "y", py, ey, []TP{tp}); c != 0 {
		t.Fatalf("add y: %d", c)
	}
	if c := a.End(ctx, "x", px, ex, true); c != ErrConcurrentTransactions {
		t.Fatalf("EndTxn with failing markers: %d, want CONCURRENT_TRANSACTIONS", c)
	}
	a.Close() // lost with its broker

	mk, sink := &markerRec{}, &offsetRec{}
	cfg.Markers = mk
	b, err := New(cfg, j, j.records())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetOffsetSink(sink)
	if c := b.Verify(py, ey, tp); c != 0 {
		t.Fatalf("y's ongoing transaction unknown to the new coordinator: %d", c)
	}
	b.Check(ctx)
	if d, _ := b.Describe("x"); d.State != CompleteCommit {
		t.Fatalf("x after takeover: %v", d.State)
	}
	if len(mk.calls) != 1 || !mk.calls[0].Commit || mk.calls[0].ProducerID != px || len(sink.offs) != 1 || sink.offs[0].Offset != 41 {
		t.Fatalf("takeover wrote markers %+v, offsets %+v", mk.calls, sink.offs)
	}
	if d, _ := b.Describe("y"); d.State != Ongoing {
		t.Fatalf("y before its timeout: %v", d.State)
	}
	// EndTxn retried by x's producer against the new coordinator: done already.
	if c := b.End(ctx, "x", px, ex, true); c != 0 {
		t.Fatalf("EndTxn retry after takeover: %d", c)
	}
	now = now.Add(61 * time.Second)
	b.Check(ctx)
	d, _ := b.Describe("y")
	if d.State != CompleteAbort || d.Epoch != ey+1 {
		t.Fatalf("y after its timeout: %v epoch %d", d.State, d.Epoch)
	}
	if last := mk.calls[len(mk.calls)-1]; last.Commit || last.ProducerID != py || last.Epoch != ey+1 {
		t.Fatalf("timeout abort markers %+v", last)
	}
	if c := b.End(ctx, "y", py, ey, true); c != ErrProducerFenced {
		t.Fatalf("fenced producer's EndTxn: %d, want PRODUCER_FENCED", c)
	}
	// A journal that cannot take a record: the coordinator answers
	// COORDINATOR_NOT_AVAILABLE and changes nothing.
	j.fail = true
	if _, _, c := b.InitProducerID(ctx, "z", 60000, -1, -1); c != ErrCoordinatorNotAvailable {
		t.Fatalf("init with a failing journal: %d", c)
	}
	if _, ok := b.Describe("z"); ok {
		t.Fatal("a record the journal refused is in the state")
	}
}
