package share

import (
	"reflect"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func oneTopic(name string, n int32) Topics {
	return func(t string) (int32, bool) {
		if t == name {
			return n, true
		}
		return 0, false
	}
}

// topicsAB has topic a of 3 partitions and topic b of 1.
func topicsAB(t string) (int32, bool) {
	switch t {
	case "a":
		return 3, true
	case "b":
		return 1, true
	}
	return 0, false
}

// soleMember makes a Machine of cfg with one member, a of group g, subscribed to the topic q
// of one partition and with its share session open: the Machine and q-0.
func soleMember(t *testing.T, cfg Config) (*Machine, TP) {
	t.Helper()
	m := NewMachine(cfg)
	tp := TP{"q", 0}
	join(t, m, t0, "g", "a", oneTopic("q", 1), "q")
	openSession(t, m, t0, "g", "a", 0, tp)
	return m, tp
}

// fullWindow makes soleMember's Machine with a record-lock limit of locks, has member a
// acquire up to hw, checks it got offsets 0 to locks-1 and that no more can be acquired
// (the window is full): the Machine and q-0.
func fullWindow(t *testing.T, locks int, hw int64) (*Machine, TP) {
	t.Helper()
	m, tp := soleMember(t, Config{MaxRecordLocks: locks, AutoOffsetReset: "earliest"})
	if got, want := acquire(m, t0, "g", "a", tp, hw, 0), []AcquiredRun{{0, int64(locks) - 1, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("acquired %v, want %v", got, want)
	}
	if _, ok := m.FetchOffset("g", tp, Bounds{0, hw}); ok {
		t.Fatal("the window is full, yet more can be acquired")
	}
	return m, tp
}

// join joins a member subscribed to topics and opens its share session.
func join(t *testing.T, m *Machine, now time.Time, group, member string, topics Topics, subs ...string) HeartbeatResp {
	t.Helper()
	r := m.Heartbeat(now, HeartbeatReq{Group: group, MemberID: member, Topics: subs}, topics)
	if r.ErrorCode != 0 || !r.HasAssignment {
		t.Fatalf("join %s: %+v", member, r)
	}
	return r
}

func openSession(t *testing.T, m *Machine, now time.Time, group, member string, epoch int32, tps ...TP) {
	t.Helper()
	if code, _ := m.Session(now, group, member, epoch, tps, nil, false); code != 0 {
		t.Fatalf("session %s epoch %d: code %d", member, epoch, code)
	}
}

func acquire(m *Machine, now time.Time, group, member string, tp TP, hwm int64, n int) []AcquiredRun {
	off, ok := m.FetchOffset(group, tp, Bounds{0, hwm})
	if !ok {
		return nil
	}
	return m.Acquire(now, group, member, tp, []Span{{off, hwm - 1}}, n)
}

func TestSimpleAssignor(t *testing.T) {
	m := NewMachine(Config{})
	topics := topicsAB
	r1 := join(t, m, t0, "g", "m1", topics, "a", "b")
	if want := []TP{{"a", 0}, {"a", 1}, {"a", 2}, {"b", 0}}; !reflect.DeepEqual(r1.Assignment, want) {
		t.Fatalf("alone: %v, want %v", r1.Assignment, want)
	}
	r2 := join(t, m, t0, "g", "m2", topics, "a", "b")
	// Two members on three partitions of a: split; one partition of b: shared by both.
	if want := []TP{{"a", 1}, {"b", 0}}; !reflect.DeepEqual(r2.Assignment, want) {
		t.Fatalf("m2: %v, want %v", r2.Assignment, want)
	}
	// m1 learns its new assignment (a0, a2, b0) on its next heartbeat, with a new epoch.
	h := m.Heartbeat(t0, HeartbeatReq{Group: "g", MemberID: "m1", MemberEpoch: r1.MemberEpoch}, topics)
	if h.ErrorCode != 0 || !h.HasAssignment || h.MemberEpoch <= r1.MemberEpoch {
		t.Fatalf("m1 heartbeat: %+v", h)
	}
	if want := []TP{{"a", 0}, {"a", 2}, {"b", 0}}; !reflect.DeepEqual(h.Assignment, want) {
		t.Fatalf("m1: %v, want %v", h.Assignment, want)
	}
	// A steady heartbeat carries no assignment; a stale epoch is fenced.
	if h2 := m.Heartbeat(t0, HeartbeatReq{Group: "g", MemberID: "m1", MemberEpoch: h.MemberEpoch}, topics); h2.HasAssignment || h2.ErrorCode != 0 {
		t.Fatalf("steady: %+v", h2)
	}
	if h3 := m.Heartbeat(t0, HeartbeatReq{Group: "g", MemberID: "m1", MemberEpoch: h.MemberEpoch + 5}, topics); h3.ErrorCode != ErrFencedMemberEpoch {
		t.Fatalf("bad epoch: %+v", h3)
	}
	if h4 := m.Heartbeat(t0, HeartbeatReq{Group: "nope", MemberID: "x", MemberEpoch: 3}, topics); h4.ErrorCode != ErrGroupIDNotFound {
		t.Fatalf("unknown group: %+v", h4)
	}
	// Leaving rebalances: m1 gets everything back.
	if l := m.Heartbeat(t0, HeartbeatReq{Group: "g", MemberID: "m2", MemberEpoch: -1}, topics); l.ErrorCode != 0 || l.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", l)
	}
	h5 := m.Heartbeat(t0, HeartbeatReq{Group: "g", MemberID: "m1", MemberEpoch: h.MemberEpoch}, topics)
	if want := []TP{{"a", 0}, {"a", 1}, {"a", 2}, {"b", 0}}; !reflect.DeepEqual(h5.Assignment, want) {
		t.Fatalf("after leave: %v, want %v", h5.Assignment, want)
	}
	// Topic growth is a metadata change: a new epoch and the new partition.
	grown := func(t string) (int32, bool) {
		if t == "a" {
			return 4, true
		}
		return topics(t)
	}
	h6 := m.Heartbeat(t0, HeartbeatReq{Group: "g", MemberID: "m1", MemberEpoch: h5.MemberEpoch}, grown)
	if !h6.HasAssignment || len(h6.Assignment) != 5 || h6.MemberEpoch <= h5.MemberEpoch {
		t.Fatalf("grown: %+v", h6)
	}
}

func TestMemberSessionExpiryReleasesRecords(t *testing.T) {
	m := NewMachine(Config{SessionTimeout: 10 * time.Second, AutoOffsetReset: "earliest"})
	tp := TP{"q", 0}
	join(t, m, t0, "g", "a", oneTopic("q", 1), "q")
	rb := join(t, m, t0, "g", "b", oneTopic("q", 1), "q")
	openSession(t, m, t0, "g", "a", 0, tp)
	if got := acquire(m, t0, "g", "a", tp, 5, 0); !reflect.DeepEqual(got, []AcquiredRun{{0, 4, 1}}) {
		t.Fatalf("acquired %v", got)
	}
	// b keeps heartbeating, a does not: at 10 s a is gone and its records are available.
	m.Heartbeat(t0.Add(9*time.Second), HeartbeatReq{Group: "g", MemberID: "b", MemberEpoch: rb.MemberEpoch}, oneTopic("q", 1))
	if d := m.NextDeadline(); !d.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("next deadline %v", d)
	}
	m.Tick(t0.Add(10 * time.Second))
	if d, _ := m.Describe("g"); len(d.Members) != 1 || d.Members[0].ID != "b" {
		t.Fatalf("members %+v", d.Members)
	}
	openSession(t, m, t0, "g", "b", 0, tp)
	if got := acquire(m, t0.Add(10*time.Second), "g", "b", tp, 5, 0); !reflect.DeepEqual(got, []AcquiredRun{{0, 4, 2}}) {
		t.Fatalf("b acquired %v", got)
	}
}

func TestLocksAcksAndDeliveryLimit(t *testing.T) {
	m := NewMachine(Config{LockDuration: 30 * time.Second, DeliveryLimit: 3, AutoOffsetReset: "earliest", SessionTimeout: time.Hour})
	tp := TP{"q", 0}
	topics := oneTopic("q", 1)
	join(t, m, t0, "g", "a", topics, "q")
	join(t, m, t0, "g", "b", topics, "q")
	openSession(t, m, t0, "g", "a", 0, tp)
	openSession(t, m, t0, "g", "b", 0, tp)

	// Two consumers share the partition: disjoint records.
	if got := acquire(m, t0, "g", "a", tp, 10, 4); !reflect.DeepEqual(got, []AcquiredRun{{0, 3, 1}}) {
		t.Fatalf("a: %v", got)
	}
	if got := acquire(m, t0, "g", "b", tp, 10, 4); !reflect.DeepEqual(got, []AcquiredRun{{4, 7, 1}}) {
		t.Fatalf("b: %v", got)
	}
	// b cannot acknowledge a's records; a's bad batch changes nothing.
	if c := m.Acknowledge(t0, "g", "b", PartAcks{tp, []AckBatch{{0, 0, []int8{AckAccept}}}}, false); c != ErrInvalidRecordState {
		t.Fatalf("b acks a's record: %d", c)
	}
	if c := m.Acknowledge(t0, "g", "a", PartAcks{tp, []AckBatch{{0, 1, []int8{AckAccept}}, {2, 3, []int8{AckAccept, 9}}}}, false); c != ErrInvalidRequest {
		t.Fatalf("bad type: %d", c)
	}
	if c := m.Acknowledge(t0, "g", "a", PartAcks{tp, []AckBatch{{0, 20, []int8{AckAccept}}}}, false); c != ErrInvalidRequest {
		t.Fatalf("past the window: %d", c)
	}
	if s, _ := m.StartOffset("g", tp); s != 0 {
		t.Fatalf("start moved on a refused ack: %d", s)
	}
	// a: accept 0-1, release 2, reject 3. SPSO moves past 0-1 only (2 is available).
	if c := m.Acknowledge(t0, "g", "a", PartAcks{tp, []AckBatch{{0, 3, []int8{AckAccept, AckAccept, AckRelease, AckReject}}}}, false); c != 0 {
		t.Fatalf("ack: %d", c)
	}
	if s, _ := m.StartOffset("g", tp); s != 2 {
		t.Fatalf("SPSO %d, want 2", s)
	}
	// Acknowledging again is INVALID_RECORD_STATE (not held any more).
	if c := m.Acknowledge(t0, "g", "a", PartAcks{tp, []AckBatch{{3, 3, []int8{AckAccept}}}}, false); c != ErrInvalidRecordState {
		t.Fatalf("double ack: %d", c)
	}
	// a fetches again: the released 2 (second delivery), then 8-9.
	if got := acquire(m, t0, "g", "a", tp, 10, 0); !reflect.DeepEqual(got, []AcquiredRun{{2, 2, 2}, {8, 9, 1}}) {
		t.Fatalf("a again: %v", got)
	}
	// b's lock (4-7) expires at 30 s: they are a's on the next fetch, third delivery of none.
	m.Tick(t0.Add(30 * time.Second))
	if got := acquire(m, t0.Add(30*time.Second), "g", "a", tp, 10, 0); !reflect.DeepEqual(got, []AcquiredRun{{2, 2, 3}, {4, 9, 2}}) { // 4-7 b's, 8-9 a's: both locks expired
		t.Fatalf("after expiry: %v", got)
	}
	// b's late acknowledgement of the records it lost fails.
	if c := m.Acknowledge(t0.Add(30*time.Second), "g", "b", PartAcks{tp, []AckBatch{{4, 7, []int8{AckAccept}}}}, false); c != ErrInvalidRecordState {
		t.Fatalf("late ack: %d", c)
	}
	// Record 2 is at the delivery limit (3): released, it is archived and SPSO passes 2-3.
	if c := m.Acknowledge(t0.Add(31*time.Second), "g", "a", PartAcks{tp, []AckBatch{{2, 2, []int8{AckRelease}}}}, false); c != 0 {
		t.Fatalf("release: %d", c)
	}
	if s, _ := m.StartOffset("g", tp); s != 4 {
		t.Fatalf("SPSO %d, want 4 (2 archived at the limit, 3 rejected)", s)
	}
	// Renew needs the v2 flag; with it the lock moves.
	if c := m.Acknowledge(t0.Add(40*time.Second), "g", "a", PartAcks{tp, []AckBatch{{4, 4, []int8{AckRenew}}}}, false); c != ErrInvalidRequest {
		t.Fatalf("renew without flag: %d", c)
	}
	if c := m.Acknowledge(t0.Add(40*time.Second), "g", "a", PartAcks{tp, []AckBatch{{4, 4, []int8{AckRenew}}}}, true); c != 0 {
		t.Fatalf("renew: %d", c)
	}
	m.Tick(t0.Add(61 * time.Second)) // 5-9 expire (locked at 30 s), 4 was renewed to 70 s
	if got := acquire(m, t0.Add(61*time.Second), "g", "b", tp, 10, 0); !reflect.DeepEqual(got, []AcquiredRun{{5, 9, 3}}) {
		t.Fatalf("b after renew: %v", got)
	}
	// Lock expiry at the limit archives: 5-9 were delivered 3 times.
	m.Tick(t0.Add(100 * time.Second)) // 4 expires too (count 2 → available)
	if got := acquire(m, t0.Add(100*time.Second), "g", "b", tp, 10, 0); !reflect.DeepEqual(got, []AcquiredRun{{4, 4, 3}}) {
		t.Fatalf("b at the limit: %v", got)
	}
	if c := m.Acknowledge(t0.Add(100*time.Second), "g", "b", PartAcks{tp, []AckBatch{{4, 4, []int8{AckAccept}}}}, false); c != 0 {
		t.Fatalf("ack 4: %d", c)
	}
	if s, _ := m.StartOffset("g", tp); s != 10 {
		t.Fatalf("SPSO %d, want 10", s)
	}
}

func TestRecordLockLimitAndLogStart(t *testing.T) {
	m, tp := fullWindow(t, 4, 100)
	// Records below a new log start are gone from the window.
	off, ok := m.FetchOffset("g", tp, Bounds{LogStart: 50, HighWatermark: 100})
	if !ok || off != 50 {
		t.Fatalf("after log start moved: %d %v", off, ok)
	}
	if s, _ := m.StartOffset("g", tp); s != 50 {
		t.Fatalf("SPSO %d", s)
	}
}

func TestSessions(t *testing.T) {
	m := NewMachine(Config{MaxSessions: 1})
	tp := TP{"q", 0}
	if c, _ := m.Session(t0, "g", "a", 3, nil, nil, false); c != ErrShareSessionNotFound {
		t.Fatalf("no session: %d", c)
	}
	if c, _ := m.Session(t0, "g", "a", 0, []TP{tp}, nil, true); c != ErrInvalidRequest {
		t.Fatalf("acks on open: %d", c)
	}
	openSession(t, m, t0, "g", "a", 0, tp)
	if c, _ := m.Session(t0, "g", "b", 0, []TP{tp}, nil, false); c != ErrShareSessionLimit {
		t.Fatalf("limit: %d", c)
	}
	if c, _ := m.Session(t0, "g", "a", 2, nil, nil, false); c != ErrInvalidShareSessionEpoch {
		t.Fatalf("epoch 2 before 1: %d", c)
	}
	c, tps := m.Session(t0, "g", "a", 1, []TP{{"r", 1}}, []TP{tp}, false)
	if c != 0 || !reflect.DeepEqual(tps, []TP{{"r", 1}}) {
		t.Fatalf("incremental: %d %v", c, tps)
	}
	if c, _ := m.Session(t0, "g", "a", 1, nil, nil, false); c != ErrInvalidShareSessionEpoch {
		t.Fatalf("replayed epoch: %d", c)
	}
	m.CloseSession(t0, "g", "a")
	openSession(t, m, t0, "g", "b", 0, tp)
}

// TestReplay: the records Drain hands out rebuild the durable state (SPSO, acknowledged,
// archived and delivery counts; held records come back available).
func TestReplay(t *testing.T) {
	m := NewMachine(Config{AutoOffsetReset: "earliest", DeliveryLimit: 5})
	tp := TP{"q", 0}
	var log []*Record
	step := func() { log = append(log, m.Drain()...) }
	join(t, m, t0, "g", "a", oneTopic("q", 1), "q")
	openSession(t, m, t0, "g", "a", 0, tp)
	acquire(m, t0, "g", "a", tp, 10, 0)
	step()
	m.Acknowledge(t0, "g", "a", PartAcks{tp, []AckBatch{{0, 5, []int8{AckAccept, AckRelease, AckReject, AckAccept, AckRelease, AckAccept}}}}, false)
	step()
	m.SetConfig("g", "share.record.lock.duration.ms", ptr("5000"))
	step()
	for _, r := range log { // through the codec
		d, err := DecodeRecord(AppendRecord(nil, r))
		if err != nil || !reflect.DeepEqual(d, r) {
			t.Fatalf("codec: %v\n%+v\n%+v", err, d, r)
		}
	}
	m2 := NewMachine(Config{DeliveryLimit: 5})
	for _, r := range log {
		m2.Apply(r)
	}
	if s, _ := m2.StartOffset("g", tp); s != 1 {
		t.Fatalf("replayed SPSO %d", s)
	}
	if m2.LockDuration("g") != 5*time.Second {
		t.Fatalf("replayed config: %v", m2.LockDuration("g"))
	}
	join(t, m2, t0, "g", "b", oneTopic("q", 1), "q")
	openSession(t, m2, t0, "g", "b", 0, tp)
	// 1 (released), 4 (released), 6-9 (held by a at the crash) come back, second delivery.
	got := acquire(m2, t0, "g", "b", tp, 10, 0)
	if want := []AcquiredRun{{1, 1, 2}, {4, 4, 2}, {6, 9, 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after replay: %v, want %v", got, want)
	}
	if !reflect.DeepEqual(m2.State(), stateOf(t, m2)) {
		t.Fatal("State is not stable")
	}
}

func stateOf(t *testing.T, m *Machine) []*Record {
	t.Helper()
	return m.State()
}

func ptr(s string) *string { return &s }

func TestAlterDeleteOffsets(t *testing.T) {
	m := NewMachine(Config{})
	tp := TP{"q", 0}
	if c := m.AlterOffset("g", tp, 7); c != 0 {
		t.Fatalf("alter: %d", c)
	}
	if s, ok := m.StartOffset("g", tp); !ok || s != 7 {
		t.Fatalf("start %d %v", s, ok)
	}
	join(t, m, t0, "g", "a", oneTopic("q", 1), "q")
	if c := m.AlterOffset("g", tp, 1); c != ErrNonEmptyGroup {
		t.Fatalf("alter with members: %d", c)
	}
	if c := m.DeleteOffsets("g", "q"); c != ErrNonEmptyGroup {
		t.Fatalf("delete with members: %d", c)
	}
	m.Heartbeat(t0, HeartbeatReq{Group: "g", MemberID: "a", MemberEpoch: -1}, oneTopic("q", 1))
	if c := m.DeleteOffsets("g", "q"); c != 0 {
		t.Fatalf("delete: %d", c)
	}
	if _, ok := m.StartOffset("g", tp); ok {
		t.Fatal("state survived DeleteOffsets")
	}
	if c := m.DeleteGroup("g"); c != 0 || m.HasGroup("g") {
		t.Fatalf("delete group: %d", c)
	}
}

// Offsets outside every batch read (compaction, aborted batches) are never acquired: with
// records still unfinished before such a gap acquisition stops at it; once SPSO reaches it,
// SPSO jumps over it.
func TestAcquireSkipsGaps(t *testing.T) {
	m, tp := soleMember(t, Config{AutoOffsetReset: "earliest"})
	m.FetchOffset("g", tp, Bounds{0, 1_000_000})
	got := m.Acquire(t0, "g", "a", tp, []Span{{0, 1}, {500_000, 500_001}}, 0)
	if !reflect.DeepEqual(got, []AcquiredRun{{0, 1, 1}}) {
		t.Fatalf("before the gap: %v", got)
	}
	if c := m.Acknowledge(t0, "g", "a", PartAcks{tp, []AckBatch{{0, 1, []int8{AckAccept}}}}, false); c != 0 {
		t.Fatalf("ack: %d", c)
	}
	off, ok := m.FetchOffset("g", tp, Bounds{0, 1_000_000})
	if !ok || off != 2 {
		t.Fatalf("fetch offset %d %v", off, ok)
	}
	got = m.Acquire(t0, "g", "a", tp, []Span{{500_000, 500_001}}, 0)
	if !reflect.DeepEqual(got, []AcquiredRun{{500_000, 500_001, 1}}) {
		t.Fatalf("after the gap: %v", got)
	}
	if s, _ := m.StartOffset("g", tp); s != 500_000 {
		t.Fatalf("SPSO %d, want 500000", s)
	}
	if recs := m.Drain(); len(recs) == 0 {
		t.Fatal("the jump is not made durable")
	}
}

// TestFreedRecordsAndLockDeadline: every way records become acquirable again without an
// append is reported by Freed (a ShareFetch waiting at the end of the input must wake for
// it), and NextLockDeadline says when Tick will free the next locked ones. Also the orders
// around a lock expiry: an acknowledgement after it is refused and leaves the record to its
// next holder; a member leaving with records frees them with their delivery counted.
func TestFreedRecordsAndLockDeadline(t *testing.T) {
	m := NewMachine(Config{LockDuration: 10 * time.Second, DeliveryLimit: 3, AutoOffsetReset: "earliest", SessionTimeout: time.Hour})
	tp, topics := TP{"q", 0}, oneTopic("q", 1)
	join(t, m, t0, "g", "a", topics, "q")
	join(t, m, t0, "g", "b", topics, "q")
	openSession(t, m, t0, "g", "a", 0, tp)
	openSession(t, m, t0, "g", "b", 0, tp)
	freed := func(want bool) {
		t.Helper()
		if got := m.Freed(); (len(got) == 1 && got[0] == "g") != want || len(got) > 1 {
			t.Fatalf("Freed() = %v, want freed %v", got, want)
		}
	}
	if got := acquire(m, t0, "g", "a", tp, 5, 0); !reflect.DeepEqual(got, []AcquiredRun{{0, 4, 1}}) {
		t.Fatalf("a: %v", got)
	}
	freed(false)
	// b is caught up: a holds every record of the log.
	if _, ok := m.FetchOffset("g", tp, Bounds{0, 5}); ok {
		t.Fatal("b can fetch while a holds everything")
	}
	if d := m.NextLockDeadline("g", []TP{tp}); !d.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("next lock deadline %v", d)
	}
	if d := m.NextLockDeadline("g", []TP{{"q", 1}}); !d.IsZero() {
		t.Fatalf("lock deadline of a partition without state: %v", d)
	}

	// Accepting frees nothing; releasing does, and the record is b's.
	if c := m.Acknowledge(t0, "g", "a", PartAcks{tp, []AckBatch{{0, 0, []int8{AckAccept}}}}, false); c != 0 {
		t.Fatalf("accept: %d", c)
	}
	freed(false)
	if c := m.Acknowledge(t0, "g", "a", PartAcks{tp, []AckBatch{{1, 1, []int8{AckRelease}}}}, false); c != 0 {
		t.Fatalf("release: %d", c)
	}
	freed(true)
	freed(false) // reported once
	if got := acquire(m, t0.Add(time.Second), "g", "b", tp, 5, 0); !reflect.DeepEqual(got, []AcquiredRun{{1, 1, 2}}) {
		t.Fatalf("b after the release: %v", got)
	}

	// a's locks (2-4) expire at 10 s: nothing before, then freed.
	m.Tick(t0.Add(10*time.Second - time.Nanosecond))
	freed(false)
	m.Tick(t0.Add(10 * time.Second))
	freed(true)
	if d := m.NextLockDeadline("g", []TP{tp}); !d.Equal(t0.Add(11 * time.Second)) { // b's lock on 1
		t.Fatalf("next lock deadline %v", d)
	}
	if got := acquire(m, t0.Add(10*time.Second), "g", "b", tp, 5, 2); !reflect.DeepEqual(got, []AcquiredRun{{2, 3, 2}}) {
		t.Fatalf("b after the expiry: %v", got)
	}
	// a's acknowledgement after its lock expired is refused, whatever it says, and changes
	// nothing: 2-3 stay b's, 4 stays available.
	for _, typ := range []int8{AckAccept, AckRelease, AckReject} {
		if c := m.Acknowledge(t0.Add(10*time.Second), "g", "a", PartAcks{tp, []AckBatch{{2, 4, []int8{typ}}}}, false); c != ErrInvalidRecordState {
			t.Fatalf("late ack %d: %d", typ, c)
		}
	}
	freed(false)
	if c := m.Acknowledge(t0.Add(10*time.Second), "g", "b", PartAcks{tp, []AckBatch{{1, 3, []int8{AckAccept}}}}, false); c != 0 {
		t.Fatalf("b accepts: %d", c)
	}
	if s, _ := m.StartOffset("g", tp); s != 4 {
		t.Fatalf("SPSO %d, want 4", s)
	}

	// b leaves holding 4: freed, and a gets it with both deliveries counted.
	if got := acquire(m, t0.Add(12*time.Second), "g", "b", tp, 5, 0); !reflect.DeepEqual(got, []AcquiredRun{{4, 4, 2}}) {
		t.Fatalf("b takes 4: %v", got)
	}
	if l := m.Heartbeat(t0.Add(12*time.Second), HeartbeatReq{Group: "g", MemberID: "b", MemberEpoch: -1}, topics); l.ErrorCode != 0 {
		t.Fatalf("b leaves: %+v", l)
	}
	freed(true)
	if got := acquire(m, t0.Add(12*time.Second), "g", "a", tp, 5, 0); !reflect.DeepEqual(got, []AcquiredRun{{4, 4, 3}}) {
		t.Fatalf("a after b left: %v", got)
	}
	// At the delivery limit a release archives: nothing is freed.
	if c := m.Acknowledge(t0.Add(12*time.Second), "g", "a", PartAcks{tp, []AckBatch{{4, 4, []int8{AckRelease}}}}, false); c != 0 {
		t.Fatalf("release at the limit: %d", c)
	}
	freed(false)

	// A closed session frees what its member held.
	if got := acquire(m, t0.Add(13*time.Second), "g", "a", tp, 7, 0); !reflect.DeepEqual(got, []AcquiredRun{{5, 6, 1}}) {
		t.Fatalf("a: %v", got)
	}
	m.CloseSession(t0.Add(13*time.Second), "g", "a")
	freed(true)
}

// TestFreedWhenFullWindowMoves: with the window at its record-lock limit a caught-up fetch
// cannot acquire the records past it; when acknowledgements move SPSO they can be, which
// Freed reports.
func TestFreedWhenFullWindowMoves(t *testing.T) {
	m, tp := fullWindow(t, 3, 10)
	if c := m.Acknowledge(t0, "g", "a", PartAcks{tp, []AckBatch{{0, 0, []int8{AckAccept}}}}, false); c != 0 {
		t.Fatalf("accept: %d", c)
	}
	if got := m.Freed(); !reflect.DeepEqual(got, []string{"g"}) {
		t.Fatalf("Freed() = %v", got)
	}
	if off, ok := m.FetchOffset("g", tp, Bounds{0, 10}); !ok || off != 3 {
		t.Fatalf("FetchOffset = %d, %v", off, ok)
	}
}
