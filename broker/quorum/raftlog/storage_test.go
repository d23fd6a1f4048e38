package raftlog_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/broker/internal/brokertest"
	"github.com/meshkafka/meshkafka/broker/quorum/raftlog"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// TestMatchesMemoryStorage drives a Log and raft.MemoryStorage with the same random writes
// (Save with entries, hard states and snapshots, CreateSnapshot, Compact, and writes that
// must fail) and compares every answer after each one; now and then the Log is closed and
// reopened, or its filesystem crashed and reopened, which must change nothing (every write
// had returned, so it is durable).
func TestMatchesMemoryStorage(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts raftlog.Options
	}{
		{"defaults", raftlog.Options{}},
		{"small segments", raftlog.Options{SegmentBytes: 300, KeepEntries: 3}},
		{"no compaction on snapshot", raftlog.Options{SegmentBytes: 1000, KeepEntries: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(5) {
				testMatches(t, seed, tc.opts)
			}
		})
	}
}

func testMatches(t *testing.T, seed uint64, opts raftlog.Options) {
	keep := opts.KeepEntries
	if keep == 0 {
		keep = raftlog.DefaultKeepEntries
	}
	m := newModel(keep)
	g := &gen{r: rand.New(rand.NewPCG(seed, 1)), m: m, errs: true}
	cfs := waltest.NewCrashFS()
	l := mustOpen(t, cfs, opts)
	defer func() { l.Close() }()
	id := l.RaftID()
	if id == 0 {
		t.Fatal("raft id 0")
	}
	if got, want := dump(l), dump(m.ms); got != want {
		t.Fatalf("seed %d: new log:\n%s\nMemoryStorage:\n%s", seed, got, want)
	}
	for i := range 300 {
		o := g.next()
		werr := m.apply(o, func() {})
		gerr := o.apply(l)
		if errClass(gerr) != errClass(werr) {
			t.Fatalf("seed %d op %d %v: Log error %v, MemoryStorage %v", seed, i, o, gerr, werr)
		}
		switch g.r.IntN(20) {
		case 0:
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, cfs, opts)
		case 1:
			cfs.Crash()
			l = mustOpen(t, cfs, opts)
		}
		if l.RaftID() != id {
			t.Fatalf("raft id changed from %x to %x", id, l.RaftID())
		}
		if got, want := dump(l), dump(m.ms); got != want {
			t.Fatalf("seed %d op %d %v:\nLog:\n%s\nMemoryStorage:\n%s", seed, i, o, got, want)
		}
	}
}

// TestRaftIDMadeFirst: the raft id is made by the first Open, durably, before anything else,
// and kept by every later Open; a new directory gets a new id; raft state without its id is
// refused.
func TestRaftIDMadeFirst(t *testing.T) {
	d := waltest.NewDirFaultFS()
	// Crash just after the id's directory fsync: the id is durable and nothing else exists.
	c := &crashFS{d: d, crash: d.Crash}
	l, err := raftlog.Open(c, "/node/quorum", raftlog.Options{Rand: &seqRand{}})
	if err != nil {
		t.Fatal(err)
	}
	id := l.RaftID()
	l.Close()
	if id == 0 {
		t.Fatal("raft id 0")
	}
	for at := 1; at <= c.n; at++ {
		d := waltest.NewDirFaultFS()
		c := &crashFS{d: d, at: at, crash: d.Crash}
		l, err := raftlog.Open(c, "/node/quorum", raftlog.Options{Rand: &seqRand{}})
		if err == nil {
			l.Close()
		}
		files := d.Files()
		l2, err := raftlog.Open(d, "/node/quorum", raftlog.Options{Rand: &seqRand{n: 100}})
		if err != nil {
			t.Fatalf("crash at %d: reopen: %v", at, err)
		}
		if slices.Contains(files, "/node/quorum/raft-id") != (l2.RaftID() == id) {
			t.Errorf("crash at %d: files %v, raft id %x (first open made %x)", at, files, l2.RaftID(), id)
		}
		if len(files) > 0 && !slices.Contains(files, "/node/quorum/raft-id") {
			t.Errorf("crash at %d: files %v exist without the raft id", at, files)
		}
		l2.Close()
	}
	// Zero ids are skipped.
	l, err = raftlog.Open(waltest.NewCrashFS(), "/q", raftlog.Options{Rand: &zeroThen{}})
	if err != nil {
		t.Fatal(err)
	}
	if l.RaftID() != 0x0102030405060708 {
		t.Errorf("raft id %x", l.RaftID())
	}
	l.Close()
	// Real randomness: two directories, two ids.
	a, b := mustOpen(t, waltest.NewCrashFS(), raftlog.Options{}), mustOpen(t, waltest.NewCrashFS(), raftlog.Options{})
	if a.RaftID() == b.RaftID() || a.RaftID() == 0 {
		t.Errorf("ids %x and %x", a.RaftID(), b.RaftID())
	}
	a.Close()
	b.Close()

	// State without its id is refused, and left alone.
	cfs := waltest.NewCrashFS()
	l = mustOpen(t, cfs, raftlog.Options{})
	if err := l.Save(hardState(1, 1, 0), nil, nil); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := cfs.Remove("/node/quorum/raft-id"); err != nil {
		t.Fatal(err)
	}
	before := cfs.Files()
	if _, err := raftlog.Open(cfs, "/node/quorum", raftlog.Options{}); !raftlog.IsCorruption(err) {
		t.Fatalf("open without raft-id: %v, want a corruption error", err)
	}
	if after := cfs.Files(); !slices.Equal(before, after) {
		t.Errorf("files changed by a refused open: %v -> %v", before, after)
	}
}

type zeroThen struct{ calls int }

func (z *zeroThen) Read(p []byte) (int, error) {
	z.calls++
	for i := range p {
		if z.calls > 1 {
			p[i] = byte(i + 1)
		} else {
			p[i] = 0
		}
	}
	return len(p), nil
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: new(term), Vote: new(vote), Commit: new(commit)}
}

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term), Type: new(raftpb.EntryNormal), Data: []byte(data)}
}

func ents(from, to, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i <= to; i++ {
		out = append(out, ent(i, term, fmt.Sprint("e", i, "t", term)))
	}
	return out
}

// TestSaveRefusesBadInput: input raft never produces fails with nothing written.
func TestSaveRefusesBadInput(t *testing.T) {
	cfs := waltest.NewCrashFS()
	l := mustOpen(t, cfs, raftlog.Options{})
	defer l.Close()
	if err := l.Save(hardState(5, 2, 3), ents(1, 5, 5), nil); err != nil {
		t.Fatal(err)
	}
	before := dump(l)
	cfs.ResetStats()
	for name, save := range map[string]func() error{
		"gap":             func() error { return l.Save(nil, ents(7, 8, 5), nil) },
		"not consecutive": func() error { return l.Save(nil, []*raftpb.Entry{ent(6, 5, ""), ent(8, 5, "")}, nil) },
		"term goes back":  func() error { return l.Save(hardState(4, 2, 3), nil, nil) },
		"second vote":     func() error { return l.Save(hardState(5, 3, 3), nil, nil) },
	} {
		if err := save(); err == nil {
			t.Errorf("%s: Save succeeded", name)
		}
	}
	if err := l.Save(nil, nil, snapshot(0, 5)); err != nil {
		t.Errorf("empty snapshot (nothing to save): %v", err)
	}
	if got := dump(l); got != before {
		t.Errorf("state changed:\n%s\nwant\n%s", got, before)
	}
	if st := cfs.Stats(); st.BytesWritten != 0 || st.Syncs != 0 {
		t.Errorf("refused saves wrote: %+v", st)
	}
	// The log still takes writes.
	if err := l.Save(hardState(5, 2, 4), ents(6, 6, 5), nil); err != nil {
		t.Fatal(err)
	}
	// A snapshot at 10 with entries, then one at 10 again: out of date.
	if err := l.Save(hardState(6, 0, 10), ents(11, 12, 6), snapshot(10, 6)); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(nil, nil, snapshot(10, 6)); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Errorf("same snapshot again: %v", err)
	}
}

func snapshot(index, term uint64) *raftpb.Snapshot {
	return raftpb.EnsureSnapshot(&raftpb.Snapshot{Data: []byte(fmt.Sprint("snap", index)),
		Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}}}})
}

// TestEntriesNotShared: the caller owns the slice Entries returns and may append to it.
func TestEntriesNotShared(t *testing.T) {
	l := mustOpen(t, waltest.NewCrashFS(), raftlog.Options{})
	defer l.Close()
	if err := l.Save(hardState(1, 1, 0), ents(1, 10, 1), nil); err != nil {
		t.Fatal(err)
	}
	got, err := l.Entries(2, 5, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got, ent(99, 9, "x"))
	e5, err := l.Entries(5, 6, 1<<20)
	if err != nil || e5[0].GetIndex() != 5 {
		t.Fatalf("entry 5 after an append to a returned slice: %v %v", e5, err)
	}
	if _, err := l.Entries(3, 12, 1<<20); !errors.Is(err, raft.ErrUnavailable) {
		t.Errorf("entries past the last index: %v", err)
	}
}

// TestConcurrentReads: readers never see a half-applied write and never wait for a
// write's fsync (they run while Saves go on; -race checks the copy-on-write).
func TestConcurrentReads(t *testing.T) {
	cfs := waltest.NewCrashFS()
	l := mustOpen(t, cfs, raftlog.Options{SegmentBytes: 2000, KeepEntries: 5})
	defer l.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for range 3 {
		brokertest.Repeat(&wg, stop, func() bool {
			first, _ := l.FirstIndex()
			last, _ := l.LastIndex()
			if first > last {
				return true
			}
			es, err := l.Entries(first, last+1, 1<<30)
			if errors.Is(err, raft.ErrCompacted) {
				return true // compacted between the two calls
			}
			if err != nil {
				errs <- err
				return false
			}
			for i, e := range es {
				if e.GetIndex() != first+uint64(i) || e.GetTerm() != 1+e.GetIndex()/7 {
					errs <- fmt.Errorf("entry %d: %d/%d", i, e.GetIndex(), e.GetTerm())
					return false
				}
			}
			return true
		})
	}
	var hs *raftpb.HardState
	for i := uint64(1); i <= 300; i++ {
		term := 1 + i/7
		hs = hardState(term, 1, i-1)
		if err := l.Save(hs, []*raftpb.Entry{ent(i, term, "x")}, nil); err != nil {
			t.Fatal(err)
		}
		if i%25 == 0 {
			if err := l.CreateSnapshot(i-3, nil, []byte("s")); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if h, _, _ := l.InitialState(); !proto.Equal(h, hs) {
		t.Errorf("hard state %v, want %v", h, hs)
	}
}

// TestSegmentsBounded: compaction gives disk space back at the next roll, and the
// directory holds one segment once a roll completes.
func TestSegmentsBounded(t *testing.T) {
	cfs := waltest.NewCrashFS()
	opts := raftlog.Options{SegmentBytes: 4096, KeepEntries: 10}
	l := mustOpen(t, cfs, opts)
	data := string(make([]byte, 100))
	for i := uint64(1); i <= 2000; i++ {
		if err := l.Save(hardState(1, 1, i-1), []*raftpb.Entry{ent(i, 1, data)}, nil); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if err := l.CreateSnapshot(i, nil, []byte("s")); err != nil {
				t.Fatal(err)
			}
		}
		var total int64
		var segs int
		for _, f := range cfs.Files() {
			if b, _ := cfs.ReadFile(f); len(f) > 5 && f[len(f)-5:] == ".rlog" {
				total += int64(len(b))
				segs++
			}
		}
		// Live entries: up to 60 of ~115 bytes; the active segment rolls past
		// max(4096, 2 × their base record) after at most one more record. Without
		// rolls it would reach 2000 × 140 bytes.
		if total > 2*60*130+4096 || segs != 1 {
			t.Fatalf("after %d saves: %d segments, %d bytes", i, segs, total)
		}
	}
	if st := l.Stats(); st.Rolls < 10 {
		t.Errorf("stats %+v: expected rolls", st)
	}
	l.Close()
	l = mustOpen(t, cfs, opts)
	defer l.Close()
	if first, _ := l.FirstIndex(); first != 1991 {
		t.Errorf("first index %d after reopen, want 1991", first)
	}
}

var _ wal.FS = (*crashFS)(nil)
