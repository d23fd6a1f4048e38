package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// rlModel is what a replicated log must hold: its start offset, its entries (with tags) and
// its state.
type rlModel struct {
	start int64
	ents  []wal.Batch
	state []byte
}

func (m *rlModel) next() int64 {
	if len(m.ents) == 0 {
		return m.start
	}
	return m.ents[len(m.ents)-1].LastOffset + 1
}

func (m *rlModel) clone() *rlModel {
	return &rlModel{start: m.start, ents: slices.Clone(m.ents), state: slices.Clone(m.state)}
}

func (m *rlModel) lastTag() uint64 {
	if len(m.ents) == 0 {
		return 0
	}
	return m.ents[len(m.ents)-1].Tag
}

// truncate drops the entries from offset off on (an entry boundary).
func (m *rlModel) truncate(off int64) {
	for len(m.ents) > 0 && m.ents[len(m.ents)-1].BaseOffset >= off {
		m.ents = m.ents[:len(m.ents)-1]
	}
}

// offsetForTag is OffsetForTag's answer on the model.
func (m *rlModel) offsetForTag(tag uint64) int64 {
	for _, e := range m.ents {
		if e.Tag >= tag {
			return e.BaseOffset
		}
	}
	return m.next()
}

// check is diff for a running log: a read error is returned (a crash test's I/O fails), a
// difference fails the test (unless dead says the file system crashed meanwhile).
func (m *rlModel) check(t testing.TB, l *wal.Log, what string, dead func() bool) error {
	t.Helper()
	for off := l.StartOffset(); off < l.NextOffset(); {
		bs, err := l.Read(off, 64<<10)
		if err != nil {
			return err
		}
		if len(bs) == 0 {
			break // diff reports it
		}
		off = bs[len(bs)-1].LastOffset + 1
	}
	if d := m.diff(l); d != "" {
		if dead != nil && dead() {
			return errors.New("crashed")
		}
		t.Fatalf("%s: %s", what, d)
	}
	return nil
}

// diff says how l differs from m ("" if it holds exactly m).
func (m *rlModel) diff(l *wal.Log) string {
	if l.StartOffset() != m.start || l.NextOffset() != m.next() {
		return fmt.Sprintf("log [%d,%d), model [%d,%d)", l.StartOffset(), l.NextOffset(), m.start, m.next())
	}
	if st := l.State(); !bytes.Equal(st, m.state) {
		return fmt.Sprintf("state %q, model %q", st, m.state)
	}
	var got []wal.Batch
	for off := l.StartOffset(); off < l.NextOffset(); {
		bs, err := l.Read(off, 64<<10)
		if err != nil || len(bs) == 0 {
			return fmt.Sprintf("Read(%d): %d entries, %v", off, len(bs), err)
		}
		got = append(got, bs...)
		off = bs[len(bs)-1].LastOffset + 1
	}
	if len(got) != len(m.ents) {
		return fmt.Sprintf("%d entries, model %d", len(got), len(m.ents))
	}
	for i, g := range got {
		w := m.ents[i]
		if g.BaseOffset != w.BaseOffset || g.LastOffset != w.LastOffset || g.MaxTimestamp != w.MaxTimestamp ||
			g.Tag != w.Tag || !bytes.Equal(g.Data, w.Data) {
			return fmt.Sprintf("entry %d: [%d,%d] ts %d tag %d len %d, model [%d,%d] ts %d tag %d len %d", i,
				g.BaseOffset, g.LastOffset, g.MaxTimestamp, g.Tag, len(g.Data),
				w.BaseOffset, w.LastOffset, w.MaxTimestamp, w.Tag, len(w.Data))
		}
	}
	return ""
}

// rlWorld drives random operations on a few replicated logs of one Store, keeping a model.
// Every operation's effect is recorded as a candidate; after a successful Commit only the
// states from then on are candidates (what a crash may recover to).
type rlWorld struct {
	t      testing.TB
	r      *rand.Rand
	fs     wal.FS
	sopts  wal.StoreOptions
	lopts  wal.Options
	s      *wal.Store
	logs   []*wal.Log
	models []*rlModel
	// cands[i]: the states log i may be found in after a crash (the first is the committed).
	cands [][]*rlModel
	// checkTags: verify OffsetForTag after each operation.
	checkTags bool
	trace     bool // WAL_TRACE=1: log every operation
	// dead, if set, reports that the file system crashed under running goroutines: a check
	// that fails then is the crash's doing.
	dead func() bool
}

func newRLWorld(t testing.TB, r *rand.Rand, fs wal.FS, nlogs int) *rlWorld {
	w := &rlWorld{t: t, r: r, fs: fs,
		lopts: wal.Options{SegmentBytes: 1024, IndexIntervalBytes: 100, LazyDir: true},
	}
	w.sopts = wal.StoreOptions{FS: fs, SegmentBytes: 4096, CheckpointInterval: -1, Replay: w.lopts}
	for range nlogs {
		w.models = append(w.models, &rlModel{})
		w.cands = append(w.cands, []*rlModel{{}})
	}
	w.trace = os.Getenv("WAL_TRACE") != ""
	return w
}

// open opens the store and every log, checking each against its candidates; it returns an
// error rather than failing (a crash test may crash during open).
func (w *rlWorld) open() error {
	s, err := wal.OpenStore(storeRoot, w.sopts)
	if err != nil {
		return err
	}
	w.s = s
	w.logs = make([]*wal.Log, len(w.models))
	for i := range w.models {
		l, err := s.OpenLog(partDir(i), w.lopts)
		if err != nil {
			return err
		}
		w.logs[i] = l
	}
	return nil
}

// recover matches every log against its candidates after a crash and makes the matching
// state the model (then committed: everything recovered is durable).
func (w *rlWorld) recover(what string) {
	w.t.Helper()
	for i, l := range w.logs {
		cands := w.cands[i]
		if len(cands) == 0 {
			cands = []*rlModel{w.models[i]}
		}
		var diffs []string
		found := -1
		for j, c := range cands {
			d := c.diff(l)
			if d == "" {
				found = j
				break
			}
			diffs = append(diffs, d)
		}
		if found < 0 {
			if cfs, ok := w.fs.(interface{ Files() []string }); ok && os.Getenv("WAL_TRACE") != "" {
				for _, f := range cfs.Files() {
					w.t.Logf("file %s", f)
				}
			}
			w.t.Fatalf("%s: log %d matches none of its %d possible states:\n%v", what, i, len(cands), diffs)
		}
		w.models[i] = cands[found].clone()
		w.cands[i] = []*rlModel{w.models[i].clone()}
	}
}

func (w *rlWorld) closeAll() {
	for _, l := range w.logs {
		if l != nil {
			l.Close()
		}
	}
	if w.s != nil {
		w.s.Close()
	}
	w.logs, w.s = nil, nil
}

// record notes log i's model as a possible crash outcome.
func (w *rlWorld) record(i int) {
	w.cands[i] = append(w.cands[i], w.models[i].clone())
}

// committed: everything so far is durable; only the current models are possible.
func (w *rlWorld) committed() {
	for i := range w.models {
		w.cands[i] = []*rlModel{w.models[i].clone()}
	}
}

// step runs one random operation; it returns the first error of the log or store (a crash
// test stops there). Model updates happen before the call, so a failed call's possible
// effect is a candidate too.
func (w *rlWorld) step() error {
	return w.stepLog(w.r.IntN(len(w.logs)), w.r, false)
}

// stepLog runs one random operation on log i with r. own: other goroutines run steps on the
// other logs at the same time (a Commit then vouches only for this log's operations).
func (w *rlWorld) stepLog(i int, r *rand.Rand, own bool) error {
	l, m := w.logs[i], w.models[i]
	p := r.IntN(100)
	if w.trace {
		defer func() { w.t.Logf("log %d op %d -> [%d,%d) %d entries", i, p, m.start, m.next(), len(m.ents)) }()
	}
	switch {
	case p < 50: // append
		data := make([]byte, r.IntN(300))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		count := int32(1 + r.IntN(3))
		ts := int64(r.IntN(1000))
		tag := m.lastTag() + 1 + uint64(r.IntN(2))
		base := m.next()
		m.ents = append(m.ents, wal.Batch{BaseOffset: base, LastOffset: base + int64(count) - 1, MaxTimestamp: ts, Tag: tag, Data: data})
		w.record(i)
		got, err := l.AppendTagged(data, count, ts, tag)
		if err != nil {
			return err
		}
		if got != base {
			w.t.Fatalf("AppendTagged at %d, model %d", got, base)
		}
	case p < 62: // truncate at a random entry boundary (or the end)
		k := len(m.ents) - r.IntN(min(len(m.ents), 4)+1)
		if r.IntN(10) == 0 {
			k = r.IntN(len(m.ents) + 1) // sometimes far back, across segments
		}
		off := m.next()
		if k < len(m.ents) {
			off = m.ents[k].BaseOffset
		}
		m.truncate(off)
		w.record(i)
		if err := l.TruncateFrom(off); err != nil {
			return err
		}
	case p < 63: // reset
		off := m.next() + int64(r.IntN(50)) - 10
		off = max(off, 0)
		m.start, m.ents = off, nil
		w.record(i)
		if err := l.Reset(off); err != nil {
			return err
		}
	case p < 75: // state
		st := make([]byte, r.IntN(64))
		for j := range st {
			st[j] = byte(r.Uint32())
		}
		if r.IntN(20) == 0 {
			st = bytes.Repeat([]byte{byte(r.Uint32())}, wal.MaxStateBytes)
		}
		m.state = st
		w.record(i)
		if err := l.SetState(st); err != nil {
			return err
		}
	case p < 88:
		if err := w.s.Commit(); err != nil {
			return err
		}
		if own {
			w.cands[i] = []*rlModel{m.clone()}
		} else {
			w.committed()
		}
	case p < 93:
		if err := w.s.Checkpoint(); err != nil {
			return err
		}
	case p < 96: // close and reopen one log (clean)
		if err := l.Close(); err != nil {
			return err
		}
		w.cands[i] = []*rlModel{m.clone()} // Close made it durable
		nl, err := w.s.OpenLog(partDir(i), w.lopts)
		if err != nil {
			return err
		}
		w.logs[i] = nl
		if err := m.check(w.t, nl, fmt.Sprintf("log %d after a clean reopen", i), w.dead); err != nil {
			return err
		}
	default: // reads
		if err := m.check(w.t, l, fmt.Sprintf("log %d", i), w.dead); err != nil {
			return err
		}
	}
	if w.checkTags {
		l = w.logs[i]
		for range 3 {
			tag := uint64(r.IntN(int(m.lastTag() + 3)))
			got, err := l.OffsetForTag(tag)
			if err != nil {
				return err
			}
			if want := m.offsetForTag(tag); got != want {
				w.t.Fatalf("log %d: OffsetForTag(%d) = %d, model %d", i, tag, got, want)
			}
		}
	}
	return nil
}

// TestReplicatedLogModel runs random appends (tagged), truncations (some across segments),
// resets, states, commits, checkpoints and clean reopens on three logs of one Store against a
// model, checking every log and OffsetForTag after each step, then crashes (clean, torn or
// reordered, with lost directory operations) after a Commit and checks that recovery finds
// exactly the committed state or a later one.
func TestReplicatedLogModel(t *testing.T) {
	runSeeds(t, 6, func(t *testing.T, seed uint64) {
		r := rand.New(rand.NewPCG(seed, 0x7a6))
		fs := newTopicFS(t)
		w := newRLWorld(t, r, fs, 3)
		w.checkTags = true
		for cycle := range 4 {
			if err := w.open(); err != nil {
				t.Fatalf("cycle %d: open: %v", cycle, err)
			}
			w.recover(fmt.Sprintf("cycle %d", cycle))
			for step := range 150 {
				if err := w.step(); err != nil {
					t.Fatalf("cycle %d step %d: %v", cycle, step, err)
				}
			}
			if mode := r.IntN(4); mode < 3 {
				waltest.CrashBy(fs, mode, r)
			} else {
				w.closeAll()
				w.committed()
			}
			w.logs, w.s = nil, nil
		}
		if err := w.open(); err != nil {
			t.Fatal(err)
		}
		w.recover("final")
		w.closeAll()
	})
}

// TestReplicatedLogConcurrentCrash: one goroutine per log runs random appends, truncations,
// resets, states, commits, checkpoints and clean reopens at the same time, until the power is
// cut (cleanly, torn or reordered, with lost directory operations) at a random point; every
// log then recovers to the state of its own last successful Commit or of an operation after
// it. Each seed runs 4 crash cycles.
func TestReplicatedLogConcurrentCrash(t *testing.T) {
	runSeeds(t, 4, func(t *testing.T, seed uint64) {
		r := rand.New(rand.NewPCG(seed, 0xc0c))
		fs := newTopicFS(t)
		// After the crash the process is dead: the goroutines still running may not
		// change the file system (it would be a zombie writing after the reboot).
		hfs := waltest.NewHookFS(fs, nil)
		const nlogs = 3
		w := newRLWorld(t, r, hfs, nlogs)
		for cycle := range 4 {
			if err := w.open(); err != nil {
				t.Fatalf("cycle %d: open: %v", cycle, err)
			}
			w.recover(fmt.Sprintf("cycle %d", cycle))
			var ops atomic.Int64
			crashAt := int64(30 + r.IntN(200))
			mode := r.IntN(3)
			var once sync.Once
			var crashed atomic.Bool
			w.dead = crashed.Load
			hfs.SetBefore(func(op, name string) error {
				if crashed.Load() {
					return waltest.ErrCrashed
				}
				return nil
			})
			crash := func() {
				hfs.Exclusive(func() {
					crashed.Store(true)
					switch mode {
					case 0:
						fs.Crash()
					case 1:
						fs.CrashTear(rand.New(rand.NewPCG(seed, uint64(cycle))))
					default:
						fs.CrashReorder(rand.New(rand.NewPCG(seed, uint64(cycle))))
					}
				})
			}
			var wg sync.WaitGroup
			for i := range nlogs {
				gr := rand.New(rand.NewPCG(seed, uint64(cycle*10+i)))
				wg.Go(func() {
					for ops.Load() < crashAt+500 {
						if err := w.stepLog(i, gr, true); err != nil {
							return // the crash
						}
						if ops.Add(1) == crashAt {
							once.Do(crash)
						}
					}
				})
			}
			wg.Wait()
			once.Do(crash)
			w.logs, w.s = nil, nil
			hfs.SetBefore(nil)
		}
		if err := w.open(); err != nil {
			t.Fatal(err)
		}
		w.recover("final")
		w.closeAll()
	})
}

// TestReplicatedLogCrashAtEveryOp runs a fixed random workload of appends, truncations,
// resets, states, commits and checkpoints, once to count its file system operations, then
// once per operation with the power cut just before it (the process dies there: that
// operation and every later one fail), alternating clean, torn and reordered crashes with lost
// directory operations. Recovery must find each log in the state of its last successful
// Commit or of an operation after it, and a crash during that recovery (at a random
// operation) must not change that.
func TestReplicatedLogCrashAtEveryOp(t *testing.T) {
	steps := 60
	if v, err := strconv.Atoi(os.Getenv("WAL_STEPS")); err == nil {
		steps = v // a longer soak
	}
	runSeeds(t, 2, func(t *testing.T, seed uint64) {
		run := func(n int64, mode int) int64 {
			r := rand.New(rand.NewPCG(seed, 0xc0ffee))
			base := newTopicFS(t)
			cr := rand.New(rand.NewPCG(seed, uint64(n)))
			hook, ops := waltest.CrashAt(n, func() { waltest.CrashBy(base, mode, cr) })
			hfs := waltest.NewHookFS(base, hook)
			w := newRLWorld(t, r, hfs, 2)
			w.sopts.MaxOpenFiles = -1
			if err := w.open(); err != nil {
				if n < 0 {
					t.Fatal(err)
				}
			} else {
				for range steps {
					if err := w.step(); err != nil {
						if n < 0 {
							t.Fatalf("counting run: %v", err)
						}
						break
					}
				}
			}
			if n < 0 {
				w.closeAll()
				return ops()
			}
			// The process died; a new one opens the (crashed) filesystem, and
			// maybe dies again during recovery.
			w.logs, w.s = nil, nil
			if n%3 == 0 {
				h2, _ := waltest.CrashAt(1+cr.Int64N(40), func() { base.Crash() })
				hfs.SetBefore(h2)
				if err := w.open(); err == nil {
					w.recover(fmt.Sprintf("op %d (mode %d), recovery not crashed", n, mode))
					w.closeAll()
				}
				w.logs, w.s = nil, nil
			}
			hfs.SetBefore(nil)
			if err := w.open(); err != nil {
				t.Fatalf("crash before op %d (mode %d): open: %v", n, mode, err)
			}
			w.recover(fmt.Sprintf("crash before op %d (mode %d)", n, mode))
			w.closeAll()
			return 0
		}
		total := run(-1, 0)
		t.Logf("%d operations", total)
		for n := int64(1); n <= total; n++ {
			run(n, int(n%3))
			if t.Failed() {
				return
			}
		}
	})
}

// TestStoreCommitOneFsyncForManyLogs: appends to many logs, a truncation, a reset and state
// changes are all made durable by one Commit, which costs one journal fsync and no partition
// fsync; a crash after it loses none of them.
func TestStoreCommitOneFsyncForManyLogs(t *testing.T) {
	fs := waltest.NewCrashFS()
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	const n = 20
	var logs []*wal.Log
	for i := range n {
		logs = append(logs, mustOpenLog(t, s, partDir(i), wal.Options{}))
	}
	// Make everything so far durable, including the logs' creation.
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	before, fsBefore := s.Stats(), fs.Stats()
	for i, l := range logs {
		for j := range 3 {
			if _, err := l.AppendTagged(payload(int64(j), 50), 1, int64(j), uint64(j+1)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.SetState([]byte(fmt.Sprint("state ", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := logs[0].TruncateFrom(1); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	after, fsAfter := s.Stats(), fs.Stats()
	if got := after.Fsyncs - before.Fsyncs; got != 1 {
		t.Fatalf("Commit of %d logs cost %d journal fsyncs, want 1", n, got)
	}
	if got := fsAfter.Syncs - fsBefore.Syncs; got != 1 {
		t.Fatalf("Commit cost %d file fsyncs, want 1 (the journal's)", got)
	}
	if err := s.Commit(); err != nil { // nothing new: no fsync
		t.Fatal(err)
	}
	if got := s.Stats().Fsyncs - after.Fsyncs; got != 0 {
		t.Fatalf("an idle Commit cost %d fsyncs", got)
	}
	fs.Crash()
	s2 := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s2.Close()
	for i := range n {
		l := mustOpenLog(t, s2, partDir(i), wal.Options{})
		want := int64(3)
		if i == 0 {
			want = 1
		}
		if l.NextOffset() != want || string(l.State()) != fmt.Sprint("state ", i) {
			t.Fatalf("log %d after the crash: next %d state %q", i, l.NextOffset(), l.State())
		}
		bs, err := l.Read(0, 1<<20)
		if err != nil || int64(len(bs)) != want || bs[0].Tag != 1 {
			t.Fatalf("log %d: %v %v", i, bs, err)
		}
		l.Close()
	}
}

// TestStoreCommitSharesFsyncs: Commit callers that arrive while a journal fsync runs all wait
// for the next one, which covers them all: 1 + 1 fsyncs for 1 + k callers.
func TestStoreCommitSharesFsyncs(t *testing.T) {
	cfs := waltest.NewCrashFS()
	var mu sync.Mutex
	block := false
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	hfs := waltest.NewHookFS(cfs, nil)
	s := mustOpenStore(t, hfs, wal.StoreOptions{})
	defer s.Close()
	var logs []*wal.Log
	for i := range 8 {
		logs = append(logs, mustOpenLog(t, s, partDir(i), wal.Options{}))
	}
	hfs.SetBefore(func(op, name string) error {
		mu.Lock()
		b := block
		mu.Unlock()
		if b && op == "sync" && bytes.HasSuffix([]byte(name), []byte(".journal")) {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	before, syncsBefore := s.Stats().Fsyncs, s.Stats().Syncs
	mu.Lock()
	block = true
	mu.Unlock()
	if _, err := logs[0].Append([]byte("first"), 1, 0); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	go func() { errs <- s.Commit() }()
	<-entered // the first commit's fsync is running (blocked)
	const k = 7
	for i := 1; i <= k; i++ {
		if _, err := logs[i].Append([]byte("later"), 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= k; i++ {
		go func() { errs <- s.Commit() }()
	}
	// Wait (on a counter, not a clock) until every caller is in: they queue behind the
	// blocked fsync.
	for s.Stats().Syncs < syncsBefore+k+1 {
		runtime.Gosched()
	}
	mu.Lock()
	block = false
	mu.Unlock()
	close(release)
	for range k + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats().Fsyncs - before; got != 2 {
		t.Fatalf("%d Commit callers cost %d fsyncs, want 2 (the blocked one, then one for all the others)", k+1, got)
	}
}

// TestReplicatedOpsNeedStore: a standalone log has no journal to make a truncation, reset or
// state crash-safe, and says so; a state larger than MaxStateBytes and a truncation inside an
// entry are refused without changing anything.
func TestReplicatedOpsNeedStore(t *testing.T) {
	fs := waltest.NewCrashFS()
	l := mustOpen(t, fs, "/solo", wal.Options{})
	defer l.Close()
	if err := l.TruncateFrom(0); !errors.Is(err, wal.ErrNotMember) {
		t.Fatalf("TruncateFrom on a standalone log: %v", err)
	}
	if err := l.Reset(5); !errors.Is(err, wal.ErrNotMember) {
		t.Fatalf("Reset on a standalone log: %v", err)
	}
	if err := l.SetState([]byte("x")); !errors.Is(err, wal.ErrNotMember) {
		t.Fatalf("SetState on a standalone log: %v", err)
	}
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s.Close()
	m := mustOpenLog(t, s, partDir(0), wal.Options{})
	defer m.Close()
	if _, err := m.AppendTagged([]byte("abc"), 3, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.SetState(make([]byte, wal.MaxStateBytes+1)); !errors.Is(err, wal.ErrStateTooLarge) {
		t.Fatalf("SetState too large: %v", err)
	}
	if err := m.TruncateFrom(1); !errors.Is(err, wal.ErrNotBoundary) {
		t.Fatalf("TruncateFrom inside an entry: %v", err)
	}
	if err := m.TruncateFrom(4); !errors.Is(err, wal.ErrOffsetOutOfRange) {
		t.Fatalf("TruncateFrom past the end: %v", err)
	}
	if m.NextOffset() != 3 || m.State() != nil {
		t.Fatalf("refused operations changed the log: next %d state %q", m.NextOffset(), m.State())
	}
	if _, err := m.Append([]byte("untagged"), 1, 0); err != nil {
		t.Fatal(err)
	}
	bs, err := m.Read(0, 1<<20)
	if err != nil || len(bs) != 2 || bs[0].Tag != 1 || bs[1].Tag != 0 || string(bs[1].Data) != "untagged" {
		t.Fatalf("mixed tagged/untagged read: %+v %v", bs, err)
	}
}
