package txn

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

type pids struct{ next int64 }

func (p *pids) alloc() (int64, error) { p.next++; return p.next, nil }

// apply persists a result's record as the shell would.
// newTestMachine returns a Machine of the default Config, a producer-id source and the time
// the test starts at.
func newTestMachine() (*Machine, *pids, time.Time) {
	return NewMachine(Config{}), &pids{}, time.Unix(1000, 0)
}

func apply(m *Machine, r Result) Result {
	if r.Record != nil {
		m.Apply(r.Record)
	}
	return r
}

func TestMachineLifecycle(t *testing.T) {
	m, ids, now := newTestMachine()
	if r := m.InitProducerID(now, "x", int32((16 * time.Minute).Milliseconds()), -1, -1, ids.alloc); r.ErrorCode != ErrInvalidTransactionTimeout {
		t.Fatalf("timeout above the max: %+v", r)
	}
	r := apply(m, m.InitProducerID(now, "x", 1000, -1, -1, ids.alloc))
	if r.ErrorCode != 0 || r.ProducerID != 1 || r.Epoch != 0 {
		t.Fatalf("init: %+v", r)
	}
	pid, ep := r.ProducerID, r.Epoch
	if r := m.End(now, "x", pid, ep, true); r.ErrorCode != ErrInvalidTxnState {
		t.Fatalf("commit with nothing added: %+v", r)
	}
	if r := m.CommitOffsets(now, "x", pid, ep, "g", []Offset{{Topic: "t"}}); r.ErrorCode != ErrInvalidTxnState {
		t.Fatalf("offsets before AddOffsets: %+v", r)
	}
	apply(m, m.AddPartitions(now, "x", pid, ep, []TP{{"t", 1}, {"t", 0}}))
	if r := m.AddPartitions(now, "x", pid, ep, []TP{{"t", 0}}); r.Record != nil {
		t.Fatalf("re-adding a partition wrote a record")
	}
	apply(m, m.AddOffsets(now, "x", pid, ep, "g"))
	apply(m, m.CommitOffsets(now, "x", pid, ep, "g", []Offset{{Topic: "in", Partition: 0, Offset: 5}}))
	apply(m, m.CommitOffsets(now, "x", pid, ep, "g", []Offset{{Topic: "in", Partition: 0, Offset: 7}}))
	if got := m.Verify(pid, ep, TP{"t", 1}); got != 0 {
		t.Fatalf("verify an added partition: %d", got)
	}
	if got := m.Verify(pid, ep, TP{"t", 2}); got != ErrInvalidTxnState {
		t.Fatalf("verify a partition not added: %d", got)
	}
	if got := m.Verify(pid, ep+1, TP{"t", 1}); got != ErrInvalidProducerEpoch {
		t.Fatalf("verify another epoch: %d", got)
	}
	r = apply(m, m.End(now, "x", pid, ep, true))
	if r.Markers == nil || !r.Markers.Commit || !slices.Equal(r.Markers.Partitions, []TP{{"t", 0}, {"t", 1}}) ||
		len(r.Markers.Offsets) != 1 || r.Markers.Offsets[0].Offset != 7 || r.Markers.Offsets[0].Group != "g" {
		t.Fatalf("end: %+v", r.Markers)
	}
	if r := m.AddPartitions(now, "x", pid, ep, []TP{{"t", 0}}); r.ErrorCode != ErrConcurrentTransactions {
		t.Fatalf("add while preparing: %+v", r)
	}
	if len(m.Pending()) != 1 {
		t.Fatalf("pending: %+v", m.Pending())
	}
	m.Apply(m.Complete(now, "x", ep))
	if tx, _ := m.Get("x"); tx.State != CompleteCommit || len(tx.Partitions) != 0 {
		t.Fatalf("after complete: %+v", tx)
	}
	if r := m.End(now, "x", pid, ep, true); r.ErrorCode != 0 || r.Markers != nil {
		t.Fatalf("retried commit: %+v", r)
	}
	if r := m.Complete(now, "x", ep); r != nil {
		t.Fatalf("second complete: %+v", r)
	}
}

func TestMachineFencingAndTimeout(t *testing.T) {
	m, ids, now := newTestMachine()
	r := apply(m, m.InitProducerID(now, "x", 1000, -1, -1, ids.alloc))
	pid, ep := r.ProducerID, r.Epoch
	apply(m, m.AddPartitions(now, "x", pid, ep, []TP{{"t", 0}}))
	// A new producer of the id: the open transaction is aborted at a bumped epoch first.
	r = apply(m, m.InitProducerID(now, "x", 1000, -1, -1, ids.alloc))
	if !r.Retry || r.Markers == nil || r.Markers.Commit || r.Markers.Epoch != ep+1 {
		t.Fatalf("init over an open transaction: %+v", r)
	}
	m.Apply(m.Complete(now, "x", ep+1))
	r = apply(m, m.InitProducerID(now, "x", 1000, -1, -1, ids.alloc))
	if r.ErrorCode != 0 || r.ProducerID != pid || r.Epoch != ep+2 {
		t.Fatalf("init after the abort: %+v", r)
	}
	if r := m.AddPartitions(now, "x", pid, ep, nil); r.ErrorCode != ErrProducerFenced {
		t.Fatalf("old epoch: %+v", r)
	}
	if r := m.AddPartitions(now, "x", pid+7, ep+2, nil); r.ErrorCode != ErrInvalidProducerIDMapping {
		t.Fatalf("wrong producer id: %+v", r)
	}
	ep += 2
	apply(m, m.AddPartitions(now, "x", pid, ep, []TP{{"t", 0}}))
	if d, ok := m.NextTimeout(); !ok || !d.Equal(now.Add(time.Second)) {
		t.Fatalf("next timeout %v %v", d, ok)
	}
	if rs := m.Expired(now.Add(999*time.Millisecond), ids.alloc); len(rs) != 0 {
		t.Fatalf("expired early: %+v", rs)
	}
	rs := m.Expired(now.Add(time.Second), ids.alloc)
	if len(rs) != 1 || rs[0].Markers.Commit || rs[0].Record.Epoch != ep+1 || rs[0].Record.State != PrepareAbort {
		t.Fatalf("expired: %+v", rs)
	}
	apply(m, rs[0])
	if r := m.End(now, "x", pid, ep, true); r.ErrorCode != ErrProducerFenced {
		t.Fatalf("commit after the timeout abort: %+v", r)
	}
}

func TestMachineEpochExhaustion(t *testing.T) {
	m, ids, now := newTestMachine()
	m.Apply(&Txn{ID: "x", ProducerID: 50, Epoch: math.MaxInt16 - 1, TimeoutMs: 1000, State: CompleteCommit})
	r := apply(m, m.InitProducerID(now, "x", 1000, -1, -1, ids.alloc))
	if r.ProducerID != 1 || r.Epoch != 0 {
		t.Fatalf("epoch exhausted: %+v, want a new producer id at epoch 0", r)
	}
	if r := m.Verify(50, math.MaxInt16-1, TP{"t", 0}); r != ErrInvalidProducerIDMapping {
		t.Fatalf("old producer id still mapped: %d", r)
	}
	fail := func() (int64, error) { return 0, errors.New("disk") }
	if r := m.InitProducerID(now, "y", 1000, -1, -1, fail); r.ErrorCode != ErrCoordinatorNotAvailable {
		t.Fatalf("allocation failure: %+v", r)
	}
}

func TestMachineFilter(t *testing.T) {
	m, ids, now := newTestMachine()
	for _, id := range []string{"a", "b"} {
		r := apply(m, m.InitProducerID(now, id, 60000, -1, -1, ids.alloc))
		if id == "a" {
			apply(m, m.AddPartitions(now, id, r.ProducerID, r.Epoch, []TP{{"t", 0}}))
		}
	}
	later := now.Add(time.Minute)
	if got := m.Filter(later, []string{"ongoing"}, nil, -1, ""); len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("by state: %+v", got)
	}
	if got := m.Filter(later, nil, []int64{2}, -1, ""); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("by producer: %+v", got)
	}
	if got := m.Filter(later, nil, nil, 61000, ""); len(got) != 0 {
		t.Fatalf("by duration: %+v", got)
	}
	if got := m.Filter(later, nil, nil, 60000, ""); len(got) != 1 {
		t.Fatalf("by duration: %+v", got)
	}
}

// transaction.version 2 ends (EndV2) at the epoch's limit: the prepare record decides the
// new producer id, a crash that loses the completion redoes it with the same pair (replay of
// the encoded records), a retry by the old producer id answers that pair, and the old id no
// longer maps to the transaction. TxnOffsetCommit v5's implicit group add is in one record.
func TestMachineEndV2Rollover(t *testing.T) {
	m, ids, now := newTestMachine()
	r := apply(m, m.InitProducerID(now, "x", 1000, -1, -1, ids.alloc))
	pid := r.ProducerID
	tx, _ := m.Get("x")
	tx.Epoch = math.MaxInt16 - 1 // the last epoch a producer may hold
	m.Apply(tx)
	ep := tx.Epoch
	apply(m, m.AddByProduce(now, pid, ep, TP{"t", 0}))
	if r := apply(m, m.AddAndCommitOffsets(now, "x", pid, ep, "g", []Offset{{Topic: "in", Offset: 3}})); r.ErrorCode != 0 {
		t.Fatalf("offsets with the implicit group add: %+v", r)
	}
	r = m.EndV2(now, "x", pid, ep, true, ids.alloc)
	if r.ErrorCode != 0 || r.ProducerID == pid || r.Epoch != 0 || r.Markers.ProducerID != pid || r.Markers.Epoch != math.MaxInt16 || len(r.Markers.Offsets) != 1 {
		t.Fatalf("EndV2 at the epoch limit: %+v markers %+v", r, r.Markers)
	}
	next := r.ProducerID
	// Replay the encoded prepare record on a fresh machine (the completion lost in a crash).
	prep, err := DecodeRecord(AppendRecord(nil, r.Record))
	if err != nil || !prep.V2 || prep.NextProducerID != next {
		t.Fatalf("prepare record round trip: %v %+v", err, prep)
	}
	m2 := NewMachine(Config{})
	m2.Apply(prep)
	if p := m2.Pending(); len(p) != 1 || p[0].Epoch != math.MaxInt16 {
		t.Fatalf("pending after replay: %+v", p)
	}
	done := m2.Complete(now, "x", math.MaxInt16)
	if done == nil || done.ProducerID != next || done.Epoch != 0 || done.PrevProducerID != pid || done.PrevEpoch != ep {
		t.Fatalf("completion redone: %+v", done)
	}
	c, err := DecodeRecord(AppendRecord(nil, done))
	if err != nil || c.ProducerID != next || c.PrevProducerID != pid || c.PrevEpoch != ep {
		t.Fatalf("completion record round trip: %v %+v", err, c)
	}
	m2.Apply(c)
	if r := m2.EndV2(now, "x", pid, ep, true, ids.alloc); r.ErrorCode != 0 || r.ProducerID != next || r.Epoch != 0 || r.Record != nil {
		t.Fatalf("retried EndV2: %+v", r)
	}
	if r := m2.AddByProduce(now, pid, ep, TP{"t", 0}); r.ErrorCode != ErrInvalidProducerIDMapping {
		t.Fatalf("the old producer id after the rollover: %+v", r)
	}
	if r := apply(m2, m2.AddByProduce(now, next, 0, TP{"t", 0})); r.ErrorCode != 0 || r.Record == nil || r.Record.V2 {
		t.Fatalf("the new producer id begins a transaction: %+v", r)
	}
}
