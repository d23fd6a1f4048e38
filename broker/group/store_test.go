package group

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"path"
	"reflect"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

func commitRec(g, topic string, p int32, off int64) Record {
	return Record{Kind: KindCommit, Group: g, Topic: topic, Partition: p, Offset: off, LeaderEpoch: 3, Metadata: "m", CommitMs: 1700000000000}
}

// mustOpen opens the store at /g on fs with default options. The test closes it, or abandons
// it to a simulated crash.
func mustOpen(t *testing.T, fs wal.FS) (*Store, []Record) {
	t.Helper()
	s, recs, err := OpenStore("/g", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	return s, recs
}

// mustAppend appends recs to s.
func mustAppend(t *testing.T, s *Store, recs ...Record) {
	t.Helper()
	if err := s.Append(recs); err != nil {
		t.Fatal(err)
	}
}

// stateOf replays recs into a fresh Machine and returns its snapshot.
func stateOf(recs []Record) []Record {
	m := NewMachine(MachineConfig{})
	m.Apply(recs)
	return m.Snapshot()
}

func TestEntryRoundTrip(t *testing.T) {
	recs := []Record{
		commitRec("g", "orders", 0, 42),
		{Kind: KindDeleteOffset, Group: "g", Topic: "orders", Partition: 7},
		{Kind: KindDeleteGroup, Group: "gone"},
		{Kind: KindCommit, Group: "g2", Topic: "t", Partition: -1, Offset: -1, LeaderEpoch: -1, CommitMs: -5},
		{Kind: KindGeneration, Group: "g", Generation: 1 << 30},
		{Kind: KindMembers, Group: "g", Generation: 7, Members: testMembership()},
		{Kind: KindMembers, Group: "h", Generation: 3, Members: &Membership{Generation: 3, ProtocolType: "consumer"}},
	}
	for _, snap := range []bool{false, true} {
		b := AppendEntry(nil, snap, recs)
		gotSnap, got, err := DecodeEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		if gotSnap != snap || !reflect.DeepEqual(got, recs) {
			t.Fatalf("round trip: got %v %+v, want %v %+v", gotSnap, got, snap, recs)
		}
	}
	if _, recs, err := DecodeEntry(AppendEntry(nil, true, nil)); err != nil || len(recs) != 0 {
		t.Fatalf("empty snapshot: %v %v", recs, err)
	}
}

func TestDecodeEntryRejects(t *testing.T) {
	good := AppendEntry(nil, false, []Record{commitRec("g", "t", 1, 2)})
	cases := map[string][]byte{
		"empty":         nil,
		"version":       append([]byte{2}, good[1:]...),
		"flags":         append([]byte{1, 0x80}, good[2:]...),
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte{}, good...), 0),
		"kind":          {1, 0, 1, 9, 0},
		"huge count":    {1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":   {1, 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"string > left": {1, 0, 1, 3, 5, 'a'},
	}
	for name, b := range cases {
		if _, _, err := DecodeEntry(b); !errors.Is(err, ErrBadEntry) {
			t.Errorf("%s: err = %v, want ErrBadEntry", name, err)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(AppendEntry(nil, false, []Record{commitRec("g", "orders", 0, 42)}))
	f.Add(AppendEntry(nil, true, []Record{{Kind: KindDeleteGroup, Group: "x"}, {Kind: KindDeleteOffset, Group: "g", Topic: "t", Partition: 1}}))
	f.Add([]byte{1, 0, 0})
	f.Add(AppendEntry(nil, true, []Record{{Kind: KindMembers, Group: "g", Generation: 7, Members: testMembership()}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, recs, err := DecodeEntry(data)
		if err != nil {
			if !errors.Is(err, ErrBadEntry) {
				t.Fatalf("error not ErrBadEntry: %v", err)
			}
			return
		}
		// A successful decode re-encodes to the same bytes (the encoding is canonical except
		// for non-minimal uvarints, which Uvarint accepts).
		again := AppendEntry(nil, snap, recs)
		snap2, recs2, err := DecodeEntry(again)
		if err != nil || snap2 != snap || !reflect.DeepEqual(recs, recs2) {
			t.Fatalf("re-decode differs: %v", err)
		}
	})
}

func TestStoreReopen(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, recs, err := OpenStore("/data/groups", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Fatalf("fresh store has %d records", len(recs))
	}
	var want []Record
	for i := range 50 {
		batch := []Record{commitRec("g", "t", int32(i%3), int64(i)), commitRec("h", "u", 0, int64(i*10))}
		if i == 30 {
			batch = append(batch, Record{Kind: KindDeleteOffset, Group: "g", Topic: "t", Partition: 1})
		}
		if err := s.Append(batch); err != nil {
			t.Fatal(err)
		}
		want = append(want, batch...)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, got, err := OpenStore("/data/groups", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened %d records, want %d", len(got), len(want))
	}
}

// Every Append that returned survives a crash (it was fsynced before returning), whatever the
// crash does to unsynced bytes; nothing corrupt is returned.
func TestStoreCrash(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		fs := waltest.NewCrashFS()
		s, _, err := OpenStore("/g", StoreOptions{FS: fs, CompactBytes: 2 << 10})
		if err != nil {
			t.Fatal(err)
		}
		var acked []Record
		n := 1 + r.IntN(80)
		for i := range n {
			rec := commitRec("g", "t", int32(i%4), int64(round*1000+i))
			mustAppend(t, s, rec)
			acked = append(acked, rec)
			if s.NeedsCompaction() {
				if err := s.Compact(stateOf(acked)); err != nil {
					t.Fatal(err)
				}
			}
		}
		fs.CrashTear(r)
		s2, got, err := OpenStore("/g", StoreOptions{FS: fs})
		if err != nil {
			t.Fatalf("round %d: reopen after crash: %v", round, err)
		}
		if !reflect.DeepEqual(stateOf(got), stateOf(acked)) {
			t.Fatalf("round %d: state after crash differs:\ngot  %+v\nwant %+v", round, stateOf(got), stateOf(acked))
		}
		s2.Close()
	}
}

func TestStoreCompaction(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _, err := OpenStore("/g", StoreOptions{FS: fs, CompactBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMachine(MachineConfig{})
	compactions := 0
	for i := range 2000 {
		rec := commitRec("g", "t", int32(i%5), int64(i))
		mustAppend(t, s, rec)
		m.Apply([]Record{rec})
		if s.NeedsCompaction() {
			if err := s.Compact(m.Snapshot()); err != nil {
				t.Fatal(err)
			}
			compactions++
		}
	}
	if compactions < 5 {
		t.Fatalf("only %d compactions", compactions)
	}
	names := genNames(fs, "/g")
	if len(names) != 1 || names[0] != path.Base(genDir("/g", s.gen)) || s.gen < 2 {
		t.Fatalf("directories after compaction: %v (gen %d)", names, s.gen)
	}
	if sz := s.log.Size(); sz > 16<<10 {
		t.Fatalf("log is %d bytes after compaction", sz)
	}
	s.Close()
	_, got := mustOpen(t, fs)
	if !reflect.DeepEqual(stateOf(got), m.Snapshot()) {
		t.Fatalf("state after compaction + reopen differs")
	}
}

// A compaction that crashed before its snapshot was complete leaves a newer generation with no
// (or a partial) snapshot: open falls back to the older log and removes the newer one.
func TestStoreCrashDuringCompaction(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _ := mustOpen(t, fs)
	want := []Record{commitRec("g", "t", 0, 5), commitRec("g", "t", 1, 6)}
	if err := s.Append(want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// generation 2: created but its first entry is not a snapshot
	l, err := wal.Open(genDir("/g", 2), wal.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(AppendEntry(nil, false, []Record{commitRec("g", "t", 0, 99)}), 1, 0); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// generation 3: created, nothing written
	l, err = wal.Open(genDir("/g", 3), wal.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()

	s2, got := mustOpen(t, fs)
	if !reflect.DeepEqual(stateOf(got), stateOf(want)) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	names := genNames(fs, "/g")
	if len(names) != 1 || path.Base(genDir("/g", 1)) != names[0] {
		t.Fatalf("dirs = %v", names)
	}
	// the next compaction must not trip over the removed generations
	if err := s2.Compact(stateOf(got)); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	_, got, err = OpenStore("/g", StoreOptions{FS: fs})
	if err != nil || !reflect.DeepEqual(stateOf(got), stateOf(want)) {
		t.Fatalf("after compaction: %+v %v", got, err)
	}
}

// An intact WAL entry that is not a valid offset entry is reported, and the data is kept.
func TestStoreRejectsBadEntry(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _ := mustOpen(t, fs)
	mustAppend(t, s, commitRec("g", "t", 0, 1))
	if _, err := s.log.Append([]byte{9, 9, 9}, 1, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, _, err := OpenStore("/g", StoreOptions{FS: fs}); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("err = %v, want ErrBadEntry", err)
	}
	if names := genNames(fs, "/g"); len(names) != 1 {
		t.Fatalf("store directory changed: %v", names)
	}
}

// The machine's view of commits is exactly what was applied.
func TestApplyAndSnapshot(t *testing.T) {
	m := NewMachine(MachineConfig{})
	m.Apply([]Record{commitRec("a", "t", 0, 1), commitRec("a", "t", 1, 2), commitRec("b", "t", 0, 3)})
	m.Apply([]Record{{Kind: KindDeleteOffset, Group: "a", Topic: "t", Partition: 0}, {Kind: KindDeleteGroup, Group: "b"}})
	out := m.OffsetFetch(time.Now(), 1, &brokerop.OffsetFetchReq{Group: "a"})
	r := out[0].Resp.(*brokerop.OffsetFetchResp)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 || r.Topics[0].Partitions[0].Offset != 2 {
		t.Fatalf("fetch = %+v", r)
	}
	if snap := m.Snapshot(); len(snap) != 1 || snap[0].Offset != 2 {
		t.Fatalf("snapshot = %+v", snap)
	}
}

// The on-disk entry layout is a format: this pins its bytes (see doc.go).
func TestEntryGolden(t *testing.T) {
	got := AppendEntry(nil, false, []Record{
		{Kind: KindCommit, Group: "g", Topic: "t", Partition: 1, Offset: 2, LeaderEpoch: -1, Metadata: "m", CommitMs: 3},
		{Kind: KindDeleteOffset, Group: "g", Topic: "t", Partition: 1},
		{Kind: KindDeleteGroup, Group: "g"},
	})
	want := []byte{
		1, 0, 3, // version, flags, count
		1, 1, 'g', 1, 't', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 1, 'm', 0, 0, 0, 0, 0, 0, 0, 3,
		2, 1, 'g', 1, 't', 0, 0, 0, 1,
		3, 1, 'g',
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("entry bytes\ngot  %x\nwant %x", got, want)
	}
	if snap := AppendEntry(nil, true, nil); !bytes.Equal(snap, []byte{1, 1, 0}) {
		t.Fatalf("empty snapshot entry %x", snap)
	}
}

// testMembership is a Stable group of two members, one static, with assignments.
func testMembership() *Membership {
	return &Membership{Generation: 7, State: Stable, ProtocolType: "consumer", Protocol: "range", Leader: "a-1",
		Members: []MemberRecord{
			{ID: "a-1", ClientID: "a", ClientHost: "/10.0.0.1", SessionMs: 45000, RebalanceMs: 60000,
				Protocols:  []brokerop.GroupProtocol{{Name: "cooperative-sticky", Metadata: []byte{0, 1}}, {Name: "range", Metadata: []byte{0, 1}}},
				Assignment: []byte("p0")},
			{ID: "b-1", InstanceID: "ib", ClientID: "b", ClientHost: "/10.0.0.2", SessionMs: 10000, RebalanceMs: 10000,
				Protocols: []brokerop.GroupProtocol{{Name: "range"}}},
		}}
}

// A membership decodes to what was encoded; what a Machine could never have is refused.
func TestMembershipEncoding(t *testing.T) {
	ms := testMembership()
	got, err := DecodeMembership(AppendMembership(nil, ms))
	if err != nil {
		t.Fatal(err)
	}
	// Metadata decodes as empty, not nil: compare through a re-encoding.
	if !bytes.Equal(AppendMembership(nil, got), AppendMembership(nil, ms)) || got.Members[1].Assignment != nil || string(got.Members[0].Assignment) != "p0" {
		t.Fatalf("round trip: %+v", got)
	}
	bad := map[string]func(*Membership){
		"state Dead":             func(m *Membership) { m.State = Dead },
		"negative generation":    func(m *Membership) { m.Generation = -1 },
		"Empty with members":     func(m *Membership) { m.State = Empty },
		"Stable without members": func(m *Membership) { m.Members = nil },
		"leader not a member":    func(m *Membership) { m.Leader = "x" },
		"no leader when Stable":  func(m *Membership) { m.Leader = "" },
		"repeated member":        func(m *Membership) { m.Members[1].ID = "a-1" },
		"empty member id":        func(m *Membership) { m.Members[1].ID = "" },
		"repeated instance":      func(m *Membership) { m.Members[0].InstanceID = "ib" },
		"no session":             func(m *Membership) { m.Members[0].SessionMs = 0 },
		"no protocols":           func(m *Membership) { m.Members[0].Protocols = nil },
		"assignment when not Stable": func(m *Membership) {
			m.State = CompletingRebalance
		},
	}
	for name, mut := range bad {
		ms := testMembership()
		mut(ms)
		if _, err := DecodeMembership(AppendMembership(nil, ms)); !errors.Is(err, ErrBadEntry) {
			t.Errorf("%s: err = %v, want ErrBadEntry", name, err)
		}
	}
	b := AppendMembership(nil, testMembership())
	for i := range b {
		if _, err := DecodeMembership(b[:i]); !errors.Is(err, ErrBadEntry) {
			t.Fatalf("truncated at %d: err = %v", i, err)
		}
	}
	if _, err := DecodeMembership(append(b, 0)); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("trailing byte: err = %v", err)
	}
}

func FuzzDecodeMembership(f *testing.F) {
	f.Add(AppendMembership(nil, testMembership()))
	f.Add(AppendMembership(nil, &Membership{Generation: 2, ProtocolType: "consumer"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := DecodeMembership(data)
		if err != nil {
			if !errors.Is(err, ErrBadEntry) {
				t.Fatalf("error not ErrBadEntry: %v", err)
			}
			return
		}
		again, err := DecodeMembership(AppendMembership(nil, ms))
		if err != nil || !reflect.DeepEqual(ms, again) {
			t.Fatalf("re-decode differs: %v", err)
		}
		// A decoded membership restores into a consistent group.
		m := NewMachine(MachineConfig{})
		m.Apply([]Record{{Kind: KindMembers, Group: "g", Generation: ms.Generation, Members: ms}})
		m.RestoreMembers(time.Unix(1, 0))
		if g := m.groups["g"]; ms.State != Empty && (len(g.members) != len(ms.Members) || len(g.order) != len(g.members)) {
			t.Fatalf("restored %d members of %d", len(g.members), len(ms.Members))
		}
	})
}
