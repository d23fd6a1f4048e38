package raftlog_test

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/broker/quorum"
	"github.com/meshkafka/meshkafka/broker/quorum/raftlog"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A Log is the metadata quorum's storage (the import is the test's alone: raftlog itself
// does not know quorum).
var _ quorum.Storage = (*raftlog.Log)(nil)

// dump renders everything a raft.Storage answers about its state (through its getters: the
// protobuf field presence is not compared), so that two storages can be compared.
// reopen opens the log in /node/quorum of fsys, failing the test with what if it cannot.
func reopen(t *testing.T, fsys wal.FS, opts raftlog.Options, what string) *raftlog.Log {
	t.Helper()
	l, err := raftlog.Open(fsys, "/node/quorum", opts)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return l
}

func dump(s raft.Storage) string {
	var b strings.Builder
	first, err1 := s.FirstIndex()
	last, err2 := s.LastIndex()
	fmt.Fprintf(&b, "first=%d last=%d %v %v\n", first, last, err1, err2)
	hs, cs, err := s.InitialState()
	fmt.Fprintf(&b, "hs=%d/%d/%d cs=%s err=%v\n", hs.GetTerm(), hs.GetVote(), hs.GetCommit(), confString(cs), err)
	snap, err := s.Snapshot()
	md := snap.GetMetadata()
	fmt.Fprintf(&b, "snap=%d/%d cs=%s data=%x err=%v\n", md.GetIndex(), md.GetTerm(), confString(md.GetConfState()), snap.GetData(), err)
	lo := uint64(0)
	if first >= 2 {
		lo = first - 2
	}
	for i := lo; i <= last+1; i++ {
		t, err := s.Term(i)
		fmt.Fprintf(&b, "term(%d)=%d %s\n", i, t, errClass(err))
	}
	type rng struct{ lo, hi uint64 }
	ranges := []rng{{first - 1, last + 1}, {first, last + 1}, {first, first}, {last, last + 1}, {last + 1, last + 1}}
	if first < last {
		ranges = append(ranges, rng{first + 1, last})
	}
	for _, r := range ranges {
		if r.lo > r.hi || r.hi > last+1 || r.lo == 0 {
			continue
		}
		for _, max := range []uint64{0, 60, math.MaxUint64} {
			ents, err := s.Entries(r.lo, r.hi, max)
			fmt.Fprintf(&b, "entries[%d,%d)/%d %s:", r.lo, r.hi, max, errClass(err))
			for _, e := range ents {
				fmt.Fprintf(&b, " %d/%d/%d/%x", e.GetIndex(), e.GetTerm(), e.GetType(), e.GetData())
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func confString(cs *raftpb.ConfState) string {
	return fmt.Sprint(cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext(), cs.GetAutoLeave())
}

func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, raft.ErrCompacted):
		return "compacted"
	case errors.Is(err, raft.ErrSnapOutOfDate):
		return "snap-out-of-date"
	case errors.Is(err, raft.ErrUnavailable):
		return "unavailable"
	}
	return "error: " + err.Error()
}

// An op is one write of a workload.
type op struct {
	kind  int // opSave, opSnapshot, opCompact
	hs    *raftpb.HardState
	ents  []*raftpb.Entry
	snap  *raftpb.Snapshot
	index uint64
	cs    *raftpb.ConfState
	data  []byte
}

const (
	opSave = iota
	opSnapshot
	opCompact
)

func (o op) String() string {
	switch o.kind {
	case opSave:
		s := fmt.Sprintf("Save(hs=%d/%d/%d", o.hs.GetTerm(), o.hs.GetVote(), o.hs.GetCommit())
		if len(o.ents) > 0 {
			s += fmt.Sprintf(" ents=%d..%d", o.ents[0].GetIndex(), o.ents[len(o.ents)-1].GetIndex())
		}
		if o.snap != nil {
			s += fmt.Sprintf(" snap=%d/%d", o.snap.GetMetadata().GetIndex(), o.snap.GetMetadata().GetTerm())
		}
		return s + ")"
	case opSnapshot:
		return fmt.Sprintf("CreateSnapshot(%d)", o.index)
	}
	return fmt.Sprintf("Compact(%d)", o.index)
}

func (o op) apply(s quorum.Storage) error {
	switch o.kind {
	case opSave:
		return s.Save(o.hs, o.ents, o.snap)
	case opSnapshot:
		return s.CreateSnapshot(o.index, o.cs, o.data)
	}
	return s.Compact(o.index)
}

// model is raft.MemoryStorage driven as the contract says a Log behaves; keep is
// Options.KeepEntries (negative: CreateSnapshot does not compact).
type model struct {
	ms   *raft.MemoryStorage
	keep int
}

func newModel(keep int) *model { return &model{ms: raft.NewMemoryStorage(), keep: keep} }

// apply applies o to the model, calling step after each part of it that the Log makes
// durable on its own (a crash may leave the state after any of them).
func (m *model) apply(o op, step func()) error {
	switch o.kind {
	case opSave:
		if o.snap != nil && !raft.IsEmptySnap(o.snap) {
			if err := m.ms.ApplySnapshot(o.snap); err != nil {
				return err
			}
			step()
		}
		if err := m.ms.Append(o.ents); err != nil {
			return err
		}
		if !raft.IsEmptyHardState(o.hs) {
			m.ms.SetHardState(o.hs)
		}
	case opSnapshot:
		if _, err := m.ms.CreateSnapshot(o.index, o.cs, o.data); err != nil {
			return err
		}
		first, _ := m.ms.FirstIndex()
		if m.keep < 0 || o.index <= uint64(m.keep) || o.index-uint64(m.keep) <= first-1 {
			break
		}
		step()
		return m.ms.Compact(o.index - uint64(m.keep))
	case opCompact:
		return m.ms.Compact(o.index)
	}
	return nil
}

// gen makes random valid workloads for a model (and, with errs, some writes that must fail
// the same way on both).
type gen struct {
	r    *rand.Rand
	m    *model
	errs bool
	term uint64
	vote uint64
}

func (g *gen) entries(from uint64, n int) []*raftpb.Entry {
	ents := make([]*raftpb.Entry, n)
	for i := range ents {
		data := make([]byte, g.r.IntN(40))
		for j := range data {
			data[j] = byte(g.r.Uint32())
		}
		ents[i] = &raftpb.Entry{Index: new(from + uint64(i)), Term: new(g.term), Type: new(raftpb.EntryType(g.r.IntN(3))), Data: data}
	}
	return ents
}

func (g *gen) hardState(commit uint64) *raftpb.HardState {
	if g.r.IntN(3) == 0 {
		g.term++
		g.vote = 0
	}
	if g.vote == 0 && g.r.IntN(2) == 0 {
		g.vote = 1 + g.r.Uint64N(5)
	}
	return &raftpb.HardState{Term: new(g.term), Vote: new(g.vote), Commit: new(commit)}
}

func (g *gen) confState() *raftpb.ConfState {
	if g.r.IntN(3) == 0 {
		return nil
	}
	var v []uint64
	for i := range 1 + g.r.IntN(4) {
		v = append(v, uint64(i+1))
	}
	return raftpb.EnsureConfState(&raftpb.ConfState{Voters: v, Learners: []uint64{uint64(10 + g.r.IntN(3))}})
}

func (g *gen) next() op {
	first, _ := g.m.ms.FirstIndex()
	last, _ := g.m.ms.LastIndex()
	snap, _ := g.m.ms.Snapshot()
	si := snap.GetMetadata().GetIndex()
	hs, _, _ := g.m.ms.InitialState()
	commit := hs.GetCommit()
	offset := first - 1
	if g.errs && g.r.IntN(20) == 0 {
		switch g.r.IntN(3) {
		case 0:
			return op{kind: opCompact, index: offset - uint64(g.r.IntN(int(min(offset, 2))+1))}
		case 1:
			return op{kind: opSnapshot, index: si - uint64(g.r.IntN(int(min(si, 2))+1)), data: []byte("old")}
		default:
			if si > 0 {
				s := &raftpb.Snapshot{Data: []byte("old"), Metadata: &raftpb.SnapshotMetadata{Index: new(si), Term: new(g.term), ConfState: g.confState()}}
				return op{kind: opSave, snap: raftpb.EnsureSnapshot(s)}
			}
		}
	}
	switch p := g.r.IntN(100); {
	case p < 8:
		// A snapshot from the leader, then entries after it.
		if g.r.IntN(2) == 0 {
			g.term++
			g.vote = 0
		}
		idx := max(si, commit) + 1 + g.r.Uint64N(6)
		s := raftpb.EnsureSnapshot(&raftpb.Snapshot{Data: []byte(fmt.Sprint("snap", idx)),
			Metadata: &raftpb.SnapshotMetadata{Index: new(idx), Term: new(g.term), ConfState: g.confState()}})
		return op{kind: opSave, snap: s, ents: g.entries(idx+1, g.r.IntN(4)), hs: g.hardState(idx)}
	case p < 20 && max(si+1, offset) <= last:
		lo := max(si+1, offset)
		idx := lo + g.r.Uint64N(last-lo+1)
		return op{kind: opSnapshot, index: idx, cs: g.confState(), data: []byte(fmt.Sprint("state", idx))}
	case p < 28 && first <= last:
		return op{kind: opCompact, index: first + g.r.Uint64N(last-first+1)}
	default:
		start := last + 1
		if g.r.IntN(3) == 0 {
			// Overwrite a suffix (a new leader), now and then from below the compaction point.
			back := uint64(g.r.IntN(5))
			start = max(1, last+1-min(back, last))
			g.term++
			g.vote = 0
		}
		n := g.r.IntN(6)
		ents := g.entries(start, n)
		var hs *raftpb.HardState
		if n == 0 || g.r.IntN(3) > 0 {
			newLast := last
			if n > 0 {
				newLast = start + uint64(n) - 1
			}
			c := commit
			if newLast > c {
				c += g.r.Uint64N(newLast - c + 1)
			}
			hs = g.hardState(c)
		}
		return op{kind: opSave, hs: hs, ents: ents}
	}
}

// workload is a sequence of ops with the model states they go through: states[0] is the
// empty state, and op i may leave any of states[start[i]..end[i]] (end[i] after it
// completes; the states between are its parts that are durable on their own).
type workload struct {
	ops        []op
	states     []string
	hs         []*raftpb.HardState // the hard state of each state
	start, end []int
}

func makeWorkload(seed uint64, n, keep int) workload {
	m := newModel(keep)
	g := &gen{r: rand.New(rand.NewPCG(seed, 7)), m: m}
	w := workload{}
	add := func() {
		w.states = append(w.states, dump(m.ms))
		hs, _, _ := m.ms.InitialState()
		w.hs = append(w.hs, hs)
	}
	add()
	for range n {
		o := g.next()
		w.start = append(w.start, len(w.states)-1)
		if err := m.apply(o, add); err != nil {
			panic(fmt.Sprintf("model refused %v: %v", o, err))
		}
		add()
		w.end = append(w.end, len(w.states)-1)
		w.ops = append(w.ops, o)
	}
	return w
}

// crashFS is a wal.FS over a DirFaultFS that crashes it just before its at-th mutating
// operation (file creation or open, write, fsync, truncation, rename, removal, directory
// fsync) and fails everything after that, as a process does not outlive its power cut.
type crashFS struct {
	d     *waltest.DirFaultFS
	at    int // 0: never
	crash func()

	mu      sync.Mutex
	n       int // mutating operations so far
	crashed bool
}

var errPowerCut = errors.New("power cut")

func (c *crashFS) step() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return errPowerCut
	}
	c.n++
	if c.n == c.at {
		c.crashed = true
		c.crash()
		return errPowerCut
	}
	return nil
}

func (c *crashFS) dead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return errPowerCut
	}
	return nil
}

func (c *crashFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	f, err := c.d.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &crashFile{File: f, c: c}, nil
}

func (c *crashFS) Remove(name string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.d.Remove(name)
}

func (c *crashFS) RemoveAll(p string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.d.RemoveAll(p)
}

func (c *crashFS) Rename(o, n string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.d.Rename(o, n)
}

func (c *crashFS) MkdirAll(p string, perm fs.FileMode) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.d.MkdirAll(p, perm)
}

func (c *crashFS) ReadDir(dir string) ([]string, error) {
	if err := c.dead(); err != nil {
		return nil, err
	}
	return c.d.ReadDir(dir)
}

func (c *crashFS) SyncDir(dir string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.d.SyncDir(dir)
}

type crashFile struct {
	wal.File
	c *crashFS
}

func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.c.dead(); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *crashFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.c.step(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *crashFile) Sync() error {
	if err := f.c.step(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *crashFile) Truncate(size int64) error {
	if err := f.c.step(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *crashFile) Size() (int64, error) {
	if err := f.c.dead(); err != nil {
		return 0, err
	}
	return f.File.Size()
}

// seqRand is a deterministic raft-id source.
type seqRand struct{ n byte }

func (s *seqRand) Read(p []byte) (int, error) {
	for i := range p {
		s.n++
		p[i] = s.n
	}
	return len(p), nil
}

func mustOpen(t testing.TB, fsys wal.FS, opts raftlog.Options) *raftlog.Log {
	t.Helper()
	l, err := raftlog.Open(fsys, "/node/quorum", opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}
