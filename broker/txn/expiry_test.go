package txn

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/wal/waltest"
)

// Transactional ids expire as Kafka's transactional.id.expiration.ms says: only ids with no
// transaction open, idle for the whole expiration; an expired id's producer id is refused
// and the id starts anew.
func TestMachineExpiredIDs(t *testing.T) {
	m := NewMachine(Config{IDExpiration: time.Hour})
	ids := &pids{}
	t0 := time.Unix(10_000, 0)
	init := func(id string) (int64, int16) {
		r := apply(m, m.InitProducerID(t0, id, 60_000, -1, -1, ids.alloc))
		if r.ErrorCode != 0 {
			t.Fatalf("init %s: %+v", id, r)
		}
		return r.ProducerID, r.Epoch
	}
	pa, ea := init("a") // Empty
	pb, eb := init("b") // committed
	apply(m, m.AddPartitions(t0, "b", pb, eb, []TP{{"t", 0}}))
	if r := apply(m, m.End(t0, "b", pb, eb, true)); r.Markers == nil {
		t.Fatalf("end b: %+v", r)
	}
	m.Apply(m.Complete(t0, "b", eb))
	if got, _ := m.Get("b"); got.State != CompleteCommit {
		t.Fatalf("b: %v", got.State)
	}
	pc, ec := init("c") // Ongoing for longer than the expiration (its timeout is not ours to judge here)
	apply(m, m.AddPartitions(t0, "c", pc, ec, []TP{{"t", 1}}))
	init("d") // touched again later: not idle long enough
	apply(m, m.InitProducerID(t0.Add(30*time.Minute), "d", 60_000, -1, -1, ids.alloc))

	if got := m.ExpiredIDs(t0.Add(59 * time.Minute)); len(got) != 0 {
		t.Fatalf("expired before the expiration: %+v", got)
	}
	dead := m.ExpiredIDs(t0.Add(time.Hour))
	if len(dead) != 2 || dead[0].ID != "a" || dead[1].ID != "b" || dead[0].State != Dead || dead[1].State != Dead {
		t.Fatalf("expired at the expiration: %+v", dead)
	}
	for _, d := range dead {
		m.Apply(d)
	}
	if _, ok := m.Get("a"); ok {
		t.Fatal("a still known after its Dead record")
	}
	if _, ok := m.Get("c"); !ok {
		t.Fatal("c (ongoing) expired")
	}
	if _, ok := m.Get("d"); !ok {
		t.Fatal("d (recently used) expired")
	}
	if got := m.Verify(pb, eb, TP{"t", 0}); got != ErrInvalidProducerIDMapping {
		t.Fatalf("the expired id's producer id: %d, want INVALID_PRODUCER_ID_MAPPING", got)
	}
	if r := m.AddPartitions(t0.Add(time.Hour), "a", pa, ea, []TP{{"t", 0}}); r.ErrorCode != ErrInvalidProducerIDMapping {
		t.Fatalf("AddPartitions with the expired id: %+v", r)
	}
	r := apply(m, m.InitProducerID(t0.Add(time.Hour), "a", 60_000, -1, -1, ids.alloc))
	if r.ErrorCode != 0 || r.ProducerID == pa || r.Epoch != 0 {
		t.Fatalf("init after expiry: %+v (old producer id %d)", r, pa)
	}
	if never := NewMachine(Config{IDExpiration: -1}); len(never.ExpiredIDs(t0.Add(1000*time.Hour))) != 0 {
		t.Fatal("negative expiration expired something")
	}
}

// The coordinator forgets expired ids at its sweep, durably: after a power cut the journal
// replays without them; ids still in use survive; the sweep runs at most once per
// ExpiredIDsInterval.
func TestCoordinatorExpiresIDsDurably(t *testing.T) {
	fs := waltest.NewCrashFS()
	st, j, recs := openWALJournal(t, fs)
	now := time.Unix(50_000, 0)
	clock := func() time.Time { return now }
	cfg := CoordinatorConfig{Logger: nil, Now: clock, NewPID: (&pids{}).alloc, Markers: &markerRec{}, CheckInterval: -1,
		Machine: Config{IDExpiration: 24 * time.Hour}, ExpiredIDsInterval: time.Hour}
	c, err := New(cfg, j, recs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pid, _, code := c.InitProducerID(ctx, "old", 60_000, -1, -1)
	if code != 0 {
		t.Fatalf("init: %d", code)
	}
	c.Check(ctx) // the first sweep: nothing idle yet
	now = now.Add(23 * time.Hour)
	if _, _, code := c.InitProducerID(ctx, "busy", 60_000, -1, -1); code != 0 {
		t.Fatalf("init busy: %d", code)
	}
	now = now.Add(90 * time.Minute) // "old" idle 24.5 h, "busy" 1.5 h
	c.Check(ctx)
	if _, ok := c.Describe("old"); ok {
		t.Fatal("old not expired after 24.5 idle hours")
	}
	if _, ok := c.Describe("busy"); !ok {
		t.Fatal("busy expired")
	}
	if code := c.VerifyAdd(pid, 0, TP{"t", 0}); code == 0 {
		t.Fatal("the expired id's producer id still verifies")
	}
	c.Close()
	st.Close()
	fs.Crash()
	st, j, recs = openWALJournal(t, fs)
	defer st.Close()
	c, err = New(cfg, j, recs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.Describe("old"); ok {
		t.Fatal("old back after a power cut: its expiry was not durable")
	}
	if _, ok := c.Describe("busy"); !ok {
		t.Fatal("busy lost after a power cut")
	}
	// A reopened coordinator sweeps at its first Check.
	now = now.Add(25 * time.Hour)
	c.Check(ctx)
	if _, ok := c.Describe("busy"); ok {
		t.Fatal("busy not expired at the reopened coordinator's first sweep")
	}
	if _, _, code := c.InitProducerID(ctx, "new", 60_000, -1, -1); code != 0 {
		t.Fatalf("init new: %d", code)
	}
	now = now.Add(25 * time.Hour)
	c.Check(ctx) // the last sweep was 25 h ago
	if _, ok := c.Describe("new"); ok {
		t.Fatal("new not expired")
	}
}

// The sweep for expired ids runs at most once per ExpiredIDsInterval, and expires at most
// maxExpiredIDs per Check (the next Check takes the rest at once).
func TestCoordinatorExpirySweepInterval(t *testing.T) {
	now := time.Unix(50_000, 0)
	j := &memJournal{}
	c, err := New(CoordinatorConfig{Now: func() time.Time { return now }, NewPID: (&pids{}).alloc, Markers: &markerRec{}, CheckInterval: -1,
		Machine: Config{IDExpiration: time.Minute}, ExpiredIDsInterval: time.Hour}, j, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	c.Check(ctx) // sweeps (nothing yet)
	for i := range maxExpiredIDs + 5 {
		if _, _, code := c.InitProducerID(ctx, fmt.Sprintf("id-%04d", i), 60_000, -1, -1); code != 0 {
			t.Fatalf("init: %d", code)
		}
	}
	now = now.Add(30 * time.Minute) // every id expirable, but the last sweep was 30 min ago
	c.Check(ctx)
	if got := len(c.List(nil, nil, -1, "")); got != maxExpiredIDs+5 {
		t.Fatalf("%d ids left after a Check within the sweep interval, want all %d", got, maxExpiredIDs+5)
	}
	now = now.Add(31 * time.Minute)
	c.Check(ctx)
	if got := len(c.List(nil, nil, -1, "")); got != 5 {
		t.Fatalf("%d ids left after the first sweep, want 5 (at most %d per Check)", got, maxExpiredIDs)
	}
	c.Check(ctx) // at once: the rest
	if got := len(c.List(nil, nil, -1, "")); got != 0 {
		t.Fatalf("%d ids left after the second Check", got)
	}
	dead := 0
	for _, r := range j.records() {
		if r.State == Dead {
			dead++
		}
	}
	if dead != maxExpiredIDs+5 {
		t.Fatalf("%d Dead records in the journal, want %d", dead, maxExpiredIDs+5)
	}
}
