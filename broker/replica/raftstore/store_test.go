package raftstore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/meshkafka/meshkafka/broker/replica/raftstore"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// makeBatch returns a Kafka RecordBatch v2 of records records (its records section is
// arbitrary bytes: raftstore and the test's describe read headers only) with epoch = term.
func makeBatch(r *rand.Rand, records int32, maxTs int64, term uint64) []byte {
	body := make([]byte, r.IntN(200))
	for i := range body {
		body[i] = byte(r.Uint32())
	}
	b := make([]byte, 61, 61+len(body))
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[12:], uint32(term))
	b[16] = 2
	binary.BigEndian.PutUint32(b[23:], uint32(records-1))
	binary.BigEndian.PutUint64(b[27:], uint64(maxTs-5))
	binary.BigEndian.PutUint64(b[35:], uint64(maxTs))
	binary.BigEndian.PutUint64(b[43:], uint64(r.Int64N(1000)))
	binary.BigEndian.PutUint32(b[57:], uint32(records))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// describe is the test's Options.Describe: record count and max timestamp of a payload of
// batches (as the broker's ValidateBatches reports them), refusing anything else.
func describe(b []byte) (int32, int64, error) {
	var count int32
	maxTs := int64(-1 << 63)
	for off := 0; off < len(b); {
		if len(b)-off < 61 || b[off+16] != 2 {
			return 0, 0, errors.New("not a record batch")
		}
		size := int(binary.BigEndian.Uint32(b[off+8:])) + 12
		if size < 61 || off+size > len(b) {
			return 0, 0, errors.New("bad batch length")
		}
		if crc32.Checksum(b[off+21:off+size], castagnoli) != binary.BigEndian.Uint32(b[off+17:]) {
			return 0, 0, errors.New("bad crc")
		}
		count += int32(binary.BigEndian.Uint32(b[off+57:]))
		maxTs = max(maxTs, int64(binary.BigEndian.Uint64(b[off+35:])))
		off += size
	}
	return count, maxTs, nil
}

// stampOffsets is the broker's wal Stamp: consecutive base offsets into the batches.
func stampOffsets(b []byte, base int64) {
	for off := 0; off+61 <= len(b); {
		binary.BigEndian.PutUint64(b[off:], uint64(base))
		size := int(binary.BigEndian.Uint32(b[off+8:])) + 12
		base += int64(binary.BigEndian.Uint32(b[off+23:])) + 1
		if size <= 12 {
			return
		}
		off += size
	}
}

const root = "/data"

// newFS returns a DirFaultFS holding the data directory and the topic directory, durably (as
// the broker's are before it creates partitions).
func newFS(t testing.TB) *waltest.DirFaultFS {
	fs := waltest.NewDirFaultFS()
	if err := wal.MkdirDurable(fs, root+"/topics/t"); err != nil {
		t.Fatal(err)
	}
	return fs
}

// node is one replica's storage: a wal.Store, the partition's log and the raftstore on it.
type node struct {
	t     testing.TB
	fs    wal.FS
	stamp bool
	big   bool // production-sized segments (benchmarks)
	ws    *wal.Store
	l     *wal.Log
	s     *raftstore.Store
}

func (n *node) logOpts() wal.Options {
	o := wal.Options{SegmentBytes: 2048, IndexIntervalBytes: 200, LazyDir: true}
	if n.big {
		o.SegmentBytes, o.IndexIntervalBytes = 0, 0 // the defaults
	}
	if n.stamp {
		o.Stamp = stampOffsets
	}
	return o
}

// open opens everything; it returns an error rather than failing (crash tests).
func (n *node) open() error {
	so := wal.StoreOptions{FS: n.fs, CheckpointInterval: -1, SegmentBytes: 8192, Replay: n.logOpts()}
	if n.big {
		so.SegmentBytes = 0
	}
	ws, err := wal.OpenStore(root, so)
	if err != nil {
		return err
	}
	n.ws = ws
	l, err := ws.OpenLog(root+"/topics/t/0", n.logOpts())
	if err != nil {
		return err
	}
	n.l = l
	s, err := raftstore.Open(l, raftstore.Options{Describe: describe})
	if err != nil {
		return err
	}
	n.s = s
	return nil
}

func (n *node) mustOpen() {
	n.t.Helper()
	if err := n.open(); err != nil {
		n.t.Fatalf("open: %v", err)
	}
}

func (n *node) close() error {
	var err error
	if n.l != nil {
		err = n.l.Close()
	}
	if n.ws != nil {
		if cerr := n.ws.Close(); err == nil {
			err = cerr
		}
	}
	n.ws, n.l, n.s = nil, nil, nil
	return err
}

// model is raft.MemoryStorage plus what it does not keep: the application's snapshot data.
type model struct {
	ms      *raft.MemoryStorage
	snapApp []byte
}

func newModel() *model { return &model{ms: raft.NewMemoryStorage()} }

// clone copies the model (entries are immutable; a new MemoryStorage takes the same ones).
func (m *model) clone() *model {
	li, _ := m.ms.LastIndex()
	return m.cloneTo(li)
}

// cloneTo copies the model with only its entries up to index upTo (at or above its
// snapshot's index).
func (m *model) cloneTo(upTo uint64) *model {
	c := newModel()
	snap, _ := m.ms.Snapshot()
	si := snap.GetMetadata().GetIndex()
	fi, _ := m.ms.FirstIndex()
	li, _ := m.ms.LastIndex()
	li = min(li, upTo)
	switch {
	case si == fi-1 && (si > 0 || len(snap.GetMetadata().GetConfState().GetVoters()) > 0):
		c.ms.ApplySnapshot(proto.Clone(snap).(*raftpb.Snapshot))
	case fi > 1:
		// Compacted below a newer snapshot: a stand-in for the compaction point first.
		t, _ := m.ms.Term(fi - 1)
		c.ms.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: new(fi - 1), Term: new(t), ConfState: &raftpb.ConfState{}}})
	}
	if li >= fi {
		ents, _ := m.ms.Entries(fi, li+1, 1<<62)
		c.ms.Append(ents)
	}
	if si > fi-1 {
		if _, err := c.ms.CreateSnapshot(si, snap.GetMetadata().GetConfState(), snap.GetData()); err != nil {
			panic(fmt.Sprintf("clone: CreateSnapshot(%d): %v", si, err))
		}
	}
	hs, _, _ := m.ms.InitialState()
	if hs != nil {
		c.ms.SetHardState(proto.Clone(hs).(*raftpb.HardState))
	}
	c.snapApp = m.snapApp
	return c
}

func cloneEntries(ents []*raftpb.Entry) []*raftpb.Entry {
	out := make([]*raftpb.Entry, len(ents))
	for i, e := range ents {
		out[i] = proto.Clone(e).(*raftpb.Entry)
	}
	return out
}

// diff compares the node's storage with the model through every raft.Storage method (and
// Offsets/IndexForOffset against the entries' record counts); "" if equal.
func (n *node) diff(m *model, r *rand.Rand) string {
	s, ms := n.s, m.ms
	hs, cs, err := s.InitialState()
	whs, wcs, _ := ms.InitialState()
	if err != nil {
		return fmt.Sprint("InitialState: ", err)
	}
	if !proto.Equal(orEmpty(hs), orEmpty(whs)) || !proto.Equal(cs, wcs) {
		return fmt.Sprintf("InitialState %v %v, model %v %v", hs, cs, whs, wcs)
	}
	fi, _ := s.FirstIndex()
	li, _ := s.LastIndex()
	wfi, _ := ms.FirstIndex()
	wli, _ := ms.LastIndex()
	if fi != wfi || li != wli {
		return fmt.Sprintf("indexes [%d,%d], model [%d,%d]", fi, li, wfi, wli)
	}
	for i := fi - 1; i <= li+1; i++ {
		t, err := s.Term(i)
		wt, werr := ms.Term(i)
		if t != wt || !errors.Is(err, werr) && !(err != nil && werr != nil) {
			return fmt.Sprintf("Term(%d) = %d, %v; model %d, %v", i, t, err, wt, werr)
		}
	}
	if fi > 1 {
		if _, err := s.Term(fi - 2); !errors.Is(err, raft.ErrCompacted) {
			return fmt.Sprintf("Term(%d) below the first index: %v", fi-2, err)
		}
	}
	snap, _ := s.Snapshot()
	wsnap, _ := ms.Snapshot()
	if !proto.Equal(snap.GetMetadata(), wsnap.GetMetadata()) {
		return fmt.Sprintf("snapshot %v, model %v", snap.GetMetadata(), wsnap.GetMetadata())
	}
	if snap.GetMetadata().GetIndex() > 0 {
		_, app, err := raftstore.SnapshotData(snap.GetData())
		if err != nil || !bytes.Equal(app, m.snapApp) {
			return fmt.Sprintf("snapshot data %q (%v), model %q", app, err, m.snapApp)
		}
	}
	if li < fi {
		return ""
	}
	// Every entry, then random ranges and sizes.
	got, err := s.Entries(fi, li+1, 1<<62)
	want, _ := ms.Entries(fi, li+1, 1<<62)
	if err != nil || len(got) != len(want) {
		return fmt.Sprintf("Entries(%d,%d): %d, %v; model %d", fi, li+1, len(got), err, len(want))
	}
	next := int64(-1)
	for k := range got {
		w := want[k]
		idx := w.GetIndex()
		base, end, ok := s.Offsets(idx)
		if !ok || (next >= 0 && base != next) {
			return fmt.Sprintf("Offsets(%d) = %d, %d, %v after %d", idx, base, end, ok, next)
		}
		next = end
		wantCount := int64(1)
		if _, app := raftstore.AppPayload(w.GetData()); w.GetType() == raftpb.EntryType_EntryNormal && len(w.GetData()) > 0 && !app {
			c, _, _ := describe(w.GetData())
			wantCount = int64(c)
		}
		if end-base != wantCount {
			return fmt.Sprintf("entry %d occupies %d offsets, want %d", idx, end-base, wantCount)
		}
		for _, o := range []int64{base, end - 1} {
			if i, ok := s.IndexForOffset(o); !ok || i != idx {
				return fmt.Sprintf("IndexForOffset(%d) = %d, %v; want %d", o, i, ok, idx)
			}
		}
		wd := w.GetData()
		if n.stamp && w.GetType() == raftpb.EntryType_EntryNormal && len(wd) > 0 {
			wd = bytes.Clone(wd)
			stampOffsets(wd, base)
		}
		g := got[k]
		if g.GetType() != w.GetType() || g.GetTerm() != w.GetTerm() || g.GetIndex() != idx || !bytes.Equal(g.GetData(), wd) {
			return fmt.Sprintf("entry %d: %v term %d index %d %d bytes; model %v term %d %d bytes",
				idx, g.GetType(), g.GetTerm(), g.GetIndex(), len(g.GetData()), w.GetType(), w.GetTerm(), len(wd))
		}
	}
	if _, ok := s.IndexForOffset(next); ok {
		return fmt.Sprintf("IndexForOffset(%d) past the last entry is ok", next)
	}
	for range 4 {
		lo := fi + uint64(r.IntN(int(li-fi+1)))
		hi := lo + 1 + uint64(r.IntN(int(li-lo+1)))
		size := uint64(r.IntN(2000))
		got, err := s.Entries(lo, hi, size)
		want, werr := ms.Entries(lo, hi, size)
		if (err != nil) != (werr != nil) || len(got) != len(want) {
			return fmt.Sprintf("Entries(%d,%d,%d): %d, %v; model %d, %v", lo, hi, size, len(got), err, len(want), werr)
		}
		for k := range got {
			if got[k].GetIndex() != want[k].GetIndex() || got[k].GetTerm() != want[k].GetTerm() {
				return fmt.Sprintf("Entries(%d,%d,%d)[%d] differs", lo, hi, size, k)
			}
		}
	}
	return ""
}

func orEmpty(hs *raftpb.HardState) *raftpb.HardState {
	if hs == nil {
		return &raftpb.HardState{}
	}
	return hs
}

// world drives random raft storage operations on a node and a model.
type world struct {
	t     testing.TB
	r     *rand.Rand
	n     *node
	m     *model
	term  uint64
	cands []*model // states a crash may recover to (the first is the committed one)
	// dead reports that the simulated process died (crash tests): operations stop.
	dead func() bool
}

var errDead = errors.New("the process died")

// step runs one random operation on both; it returns the node's error (crash tests).
func (w *world) step() error {
	if w.dead != nil && w.dead() {
		return errDead
	}
	r, s, ms := w.r, w.n.s, w.m.ms
	fi, _ := ms.FirstIndex()
	li, _ := ms.LastIndex()
	p := r.IntN(100)
	if os.Getenv("RAFTSTORE_TRACE") != "" {
		defer func() {
			f, _ := ms.FirstIndex()
			l, _ := ms.LastIndex()
			w.t.Logf("op %d: model [%d,%d] log [%d,%d)", p, f, l, w.n.l.StartOffset(), w.n.l.NextOffset())
		}()
	}
	switch {
	case p < 55: // append, overwriting a suffix sometimes (a new leader's entries)
		start := li + 1
		snap, _ := ms.Snapshot()
		if low := max(fi, snap.GetMetadata().GetIndex()+1); li >= low && r.IntN(4) == 0 {
			start = li + 1 - uint64(r.IntN(int(min(li-low+1, 6))+1))
			w.term++
		} else if r.IntN(10) == 0 {
			w.term++
		}
		if start > 1 {
			if t, err := ms.Term(start - 1); err == nil {
				w.term = max(w.term, t)
			}
		}
		var ents []*raftpb.Entry
		for k := range 1 + r.IntN(5) {
			e := &raftpb.Entry{Index: new(start + uint64(k)), Term: new(w.term)}
			switch q := r.IntN(100); {
			case q < 70:
				var data []byte
				for range 1 + r.IntN(3) {
					data = append(data, makeBatch(r, int32(1+r.IntN(5)), int64(r.IntN(1e6)), w.term)...)
				}
				e.Data = data
			case q < 80:
				// empty normal entry (a leader's no-op)
			case q < 85:
				e.Data = raftstore.AppEntry([]byte(fmt.Sprint("app", r.IntN(100)))) // an application entry
			case q < 93:
				e.Type = raftpb.EntryType_EntryConfChange.Enum()
				e.Data = []byte(fmt.Sprint("cc", r.IntN(100)))
			default:
				e.Type = raftpb.EntryType_EntryConfChangeV2.Enum()
				if r.IntN(2) == 0 {
					e.Data = []byte(fmt.Sprint("cc2-", r.IntN(100)))
				}
			}
			ents = append(ents, e)
		}
		// A crash may keep the truncation and any prefix of the new entries (one journal
		// record each).
		for k := range ents {
			c := w.m.cloneTo(start - 1)
			c.ms.Append(ents[:k])
			w.cands = append(w.cands, c)
		}
		ms.Append(ents)
		w.record()
		return s.Append(cloneEntries(ents))
	case p < 70:
		hs := &raftpb.HardState{Term: new(w.term), Vote: new(uint64(r.IntN(4))), Commit: new(uint64(r.IntN(int(li + 1))))}
		ms.SetHardState(hs)
		w.record()
		if r.IntN(2) == 0 {
			s.Applied(hs.GetCommit()) // only what the cache keeps changes: no answer may
		}
		return s.SetHardState(proto.Clone(hs).(*raftpb.HardState))
	case p < 76: // snapshot at an index after the current one
		snap, _ := ms.Snapshot()
		si := snap.GetMetadata().GetIndex()
		if li <= si || li < fi {
			return nil
		}
		i := si + 1 + uint64(r.IntN(int(li-si)))
		if i < fi-1 {
			return nil
		}
		cs := &raftpb.ConfState{Voters: []uint64{1, 2, uint64(3 + r.IntN(3))}}
		app := snapApp(r, "producer state")
		if _, err := ms.CreateSnapshot(i, cs, app); err != nil {
			w.t.Fatalf("model CreateSnapshot(%d): %v", i, err)
		}
		w.m.snapApp = app
		w.record()
		_, err := s.CreateSnapshot(i, cs, app)
		return err
	case p < 82: // compact up to the snapshot
		snap, _ := ms.Snapshot()
		si := snap.GetMetadata().GetIndex()
		if si < fi {
			return nil
		}
		i := fi + uint64(r.IntN(int(si-fi+1)))
		if err := ms.Compact(i); err != nil {
			w.t.Fatalf("model Compact(%d): %v", i, err)
		}
		w.record()
		return s.Compact(i)
	case p < 86: // install a snapshot from a leader that is ahead
		snap, _ := ms.Snapshot()
		idx := max(li, snap.GetMetadata().GetIndex()) + 1 + uint64(r.IntN(10))
		w.term++
		app := snapApp(r, "leader state")
		next := int64(r.IntN(5000))
		sn := &raftpb.Snapshot{
			Data: append(binary.BigEndian.AppendUint64([]byte{1}, uint64(next)), app...),
			Metadata: &raftpb.SnapshotMetadata{
				ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{uint64(4 + r.IntN(3))}},
				Index:     new(idx), Term: new(w.term),
			},
		}
		if err := ms.ApplySnapshot(proto.Clone(sn).(*raftpb.Snapshot)); err != nil {
			w.t.Fatalf("model ApplySnapshot: %v", err)
		}
		w.m.snapApp = app
		w.record()
		if err := s.ApplySnapshot(sn); err != nil {
			return err
		}
		if got := w.n.l.NextOffset(); got != next {
			w.t.Fatalf("after ApplySnapshot the log continues at %d, want %d", got, next)
		}
	case p < 94:
		if err := w.n.ws.Commit(); err != nil {
			return err
		}
		w.cands = []*model{w.m.clone()}
	case p < 96:
		if err := w.n.ws.Checkpoint(); err != nil {
			return err
		}
	case p < 98: // clean restart
		if err := w.n.close(); err != nil {
			return err
		}
		w.cands = []*model{w.m.clone()}
		if err := w.n.open(); err != nil {
			return err
		}
		if d := w.n.diff(w.m, r); d != "" && (w.dead == nil || !w.dead()) {
			w.t.Fatalf("after a clean restart: %s", d)
		}
	default:
		if d := w.n.diff(w.m, r); d != "" && (w.dead == nil || !w.dead()) {
			w.t.Fatalf("%s", d)
		}
	}
	return nil
}

// snapApp is the application's data of a snapshot: none, a few bytes, or more than a wal
// state could hold (all kept in the log's blob).
func snapApp(r *rand.Rand, what string) []byte {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		b := fmt.Appendf(nil, "%s %d ", what, r.IntN(1000))
		for len(b) < wal.MaxStateBytes+1+r.IntN(20000) {
			b = binary.BigEndian.AppendUint64(b, r.Uint64())
		}
		return b
	}
	return fmt.Appendf(nil, "%s %d", what, r.IntN(1000))
}

func (w *world) record() { w.cands = append(w.cands, w.m.clone()) }

// recovered matches the reopened node against the candidates and adopts the match.
func (w *world) recovered(what string) {
	w.t.Helper()
	var diffs []string
	for k := len(w.cands) - 1; k >= 0; k-- {
		d := w.n.diff(w.cands[k], w.r)
		if d == "" {
			w.m = w.cands[k].clone()
			w.cands = []*model{w.m.clone()}
			fi, _ := w.m.ms.FirstIndex()
			if li, _ := w.m.ms.LastIndex(); li >= fi {
				t, _ := w.m.ms.Term(li)
				w.term = max(w.term, t)
			}
			return
		}
		diffs = append(diffs, d)
	}
	w.t.Fatalf("%s: the storage matches none of the %d possible states: %v", what, len(w.cands), diffs)
}

func seeds(t *testing.T, n int) []uint64 {
	if v, err := strconv.Atoi(os.Getenv("RAFTSTORE_SEEDS")); err == nil {
		n = v
	}
	if v, err := strconv.ParseUint(os.Getenv("RAFTSTORE_SEED"), 10, 64); err == nil {
		return []uint64{v}
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// TestMatchesMemoryStorage runs random appends (with overwritten suffixes and every entry
// type), hard states, snapshots, compactions, installed snapshots, commits, checkpoints and
// clean restarts against raft.MemoryStorage, comparing every raft.Storage answer (and the
// Kafka offsets each entry occupies) after each step; half the seeds run with the broker's
// offset Stamp, half with tiny memory bounds (entries looked up in the log). Every 40 steps the power is cut (cleanly, torn or reordered with lost
// directory operations) and the reopened storage must equal the model at the last commit or
// at a step after it.
func TestMatchesMemoryStorage(t *testing.T) {
	nseeds := 8
	if raceOn {
		nseeds = 4
	}
	for _, seed := range seeds(t, nseeds) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x4af7))
			if seed%4 >= 2 {
				// Tiny memory bounds: most lookups go to the log, the cache evicts all
				// the time.
				defer raftstore.SetLimitsForTest(8, 1024, 3)()
			}
			fs := newFS(t)
			n := &node{t: t, fs: fs, stamp: seed%2 == 0}
			n.mustOpen()
			w := &world{t: t, r: r, n: n, m: newModel(), term: 1}
			w.cands = []*model{w.m.clone()}
			for step := range 400 {
				if err := w.step(); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if step%40 == 39 {
					waltest.CrashAny(fs, r)
					n.ws, n.l, n.s = nil, nil, nil
					n.mustOpen()
					w.recovered(fmt.Sprintf("crash after step %d", step))
				}
			}
			n.close()
		})
	}
}

// TestCrashAtEveryOp runs a fixed random workload once to count its file system operations,
// then once per operation with the power cut just before it (the process dies: that and every
// later operation fail), alternating clean, torn and reordered crashes. The reopened storage
// must equal raft.MemoryStorage at the last successful commit or at a later step.
func TestCrashAtEveryOp(t *testing.T) {
	steps, nseeds := 80, 2
	if raceOn {
		steps, nseeds = 40, 1
	}
	if v, err := strconv.Atoi(os.Getenv("RAFTSTORE_STEPS")); err == nil {
		steps = v
	}
	for _, seed := range seeds(t, nseeds) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			run := func(at int64, mode int) int64 {
				base := newFS(t)
				cr := rand.New(rand.NewPCG(seed, uint64(at)))
				var died atomic.Bool
				hook, ops := waltest.CrashAt(at, func() {
					died.Store(true)
					waltest.CrashBy(base, mode, cr)
				})
				hfs := waltest.NewHookFS(base, hook)
				n := &node{t: t, fs: hfs, stamp: true}
				w := &world{t: t, r: rand.New(rand.NewPCG(seed, 0xbeef)), n: n, m: newModel(), term: 1, dead: died.Load}
				w.cands = []*model{w.m.clone()}
				if err := n.open(); err == nil {
					for range steps {
						if err := w.step(); err != nil {
							break
						}
					}
				} else if at < 0 {
					t.Fatal(err)
				}
				if at < 0 {
					n.close()
					return ops()
				}
				hfs.SetBefore(nil)
				n.ws, n.l, n.s = nil, nil, nil
				if err := n.open(); err != nil {
					t.Fatalf("crash before op %d (mode %d): open: %v", at, mode, err)
				}
				w.recovered(fmt.Sprintf("crash before op %d (mode %d)", at, mode))
				n.close()
				return 0
			}
			total := run(-1, 0)
			t.Logf("%d operations", total)
			for at := int64(1); at <= total && !t.Failed(); at++ {
				run(at, int(at%3))
			}
		})
	}
}

// TestAppendRefusesBadInput: a payload Describe refuses, a data entry that starts with a
// control batch, a gap and a term beyond Kafka's epoch are refused, and nothing is stored.
func TestAppendRefusesBadInput(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := &node{t: t, fs: waltest.NewCrashFS()}
	n.mustOpen()
	defer n.close()
	good := &raftpb.Entry{Index: new(uint64(1)), Term: new(uint64(1)), Data: makeBatch(r, 2, 5, 1)}
	if err := n.s.Append([]*raftpb.Entry{good}); err != nil {
		t.Fatal(err)
	}
	ctrl := makeBatch(r, 1, 5, 1)
	ctrl[22] |= 0x20 // control attribute
	binary.BigEndian.PutUint32(ctrl[17:], crc32.Checksum(ctrl[21:], castagnoli))
	for name, ents := range map[string][]*raftpb.Entry{
		"garbage":   {{Index: new(uint64(2)), Term: new(uint64(1)), Data: []byte("not a batch")}},
		"control":   {{Index: new(uint64(2)), Term: new(uint64(1)), Data: ctrl}},
		"gap":       {{Index: new(uint64(4)), Term: new(uint64(1))}},
		"term":      {{Index: new(uint64(2)), Term: new(uint64(1 << 31))}},
		"unordered": {{Index: new(uint64(2)), Term: new(uint64(1))}, {Index: new(uint64(4)), Term: new(uint64(1))}},
	} {
		if err := n.s.Append(ents); err == nil {
			t.Errorf("%s: Append accepted it", name)
		}
	}
	if li, _ := n.s.LastIndex(); li != 1 || n.l.NextOffset() != 2 {
		t.Fatalf("refused appends changed the log: last index %d, next offset %d", li, n.l.NextOffset())
	}
}

// TestRetentionMovesFirstIndex: wal retention deleting whole segments moves FirstIndex to the
// entry at the log's new start (past the compaction point); the entries before it are
// compacted for raft (Entries, Term before the entry ahead of it, Offsets), the rest reads as
// before, and a restart finds the same.
func TestRetentionMovesFirstIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	n := &node{t: t, fs: newFS(t)}
	n.mustOpen()
	defer n.close()
	var ents []*raftpb.Entry
	for i := uint64(1); i <= 200; i++ {
		ents = append(ents, &raftpb.Entry{Index: new(i), Term: new(uint64(1 + i/50)), Data: makeBatch(r, 1, int64(i), 1+i/50)})
	}
	if err := n.s.Append(ents); err != nil {
		t.Fatal(err)
	}
	if _, err := n.s.CreateSnapshot(120, &raftpb.ConfState{Voters: []uint64{1}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := n.s.Compact(100); err != nil {
		t.Fatal(err)
	}
	if err := n.s.Compact(121); !errors.Is(err, raftstore.ErrNotSnapshotted) {
		t.Fatalf("Compact past the snapshot: %v", err)
	}
	if fi, _ := n.s.FirstIndex(); fi != 101 {
		t.Fatalf("FirstIndex after Compact(100) = %d", fi)
	}
	// Retention keeps about the newer half of the log (from below the snapshot's offset).
	if _, err := n.l.Retain(-1, n.l.Size()/2); err != nil {
		t.Fatal(err)
	}
	start := n.l.StartOffset()
	if start <= 0 {
		t.Fatal("retention deleted nothing: the test tests nothing")
	}
	check := func(what string) {
		t.Helper()
		phys, ok := n.s.IndexForOffset(start)
		if !ok {
			t.Fatalf("%s: no entry at the log start %d", what, start)
		}
		if b, _, ok := n.s.Offsets(phys); !ok || b != start {
			t.Fatalf("%s: Offsets(%d) = %d, %v; the log starts at %d", what, phys, b, ok, start)
		}
		want := max(phys, 101)
		if fi, _ := n.s.FirstIndex(); fi != want {
			t.Fatalf("%s: FirstIndex %d, want %d", what, fi, want)
		}
		if _, err := n.s.Entries(want-1, want+1, 1<<20); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("%s: Entries below the first index: %v", what, err)
		}
		if want > 101 {
			if _, err := n.s.Term(want - 2); !errors.Is(err, raft.ErrCompacted) {
				t.Fatalf("%s: Term(%d): %v", what, want-2, err)
			}
			if _, _, ok := n.s.Offsets(phys - 1); ok {
				t.Fatalf("%s: Offsets of a deleted entry", what)
			}
		}
		got, err := n.s.Entries(want, 201, 1<<30)
		if err != nil || len(got) != int(201-want) {
			t.Fatalf("%s: Entries(%d, 201): %d, %v", what, want, len(got), err)
		}
		for i, e := range got {
			w := ents[want-1+uint64(i)]
			if e.GetIndex() != w.GetIndex() || e.GetTerm() != w.GetTerm() || !bytes.Equal(e.GetData(), w.GetData()) {
				t.Fatalf("%s: entry %d differs", what, e.GetIndex())
			}
		}
	}
	check("after retention")
	if err := n.close(); err != nil {
		t.Fatal(err)
	}
	n.mustOpen()
	check("after a restart")
}

// fixBatch recomputes the batch length and CRC of single-batch data entries whose records
// section was replaced (benchmarks).
func fixBatch(ents []*raftpb.Entry) {
	for _, e := range ents {
		d := e.GetData()
		binary.BigEndian.PutUint32(d[8:], uint32(len(d)-12))
		binary.BigEndian.PutUint32(d[17:], crc32.Checksum(d[21:], castagnoli))
	}
}

// TestCacheKeepsUnappliedEntries: entries not applied yet stay cached beyond the applied
// entries' bounds (raft reads each back once committed, to apply it); once applied, the
// cache shrinks to those bounds, and Entries answers the same either way.
func TestCacheKeepsUnappliedEntries(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	n := &node{t: t, fs: newFS(t), big: true}
	n.mustOpen()
	defer n.close()
	batch := makeBatch(r, 16, 1, 1)
	batch = append(batch[:61:61], make([]byte, 64<<10-61)...) // 64 KiB entries
	var want []*raftpb.Entry
	for i := uint64(1); i <= 8; i++ { // 8 × 64 KiB: twice the applied entries' bound
		e := &raftpb.Entry{Index: new(i), Term: new(uint64(1)), Data: append([]byte(nil), batch...)}
		fixBatch([]*raftpb.Entry{e})
		want = append(want, proto.Clone(e).(*raftpb.Entry))
		if err := n.s.Append([]*raftpb.Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.ws.Commit(); err != nil {
		t.Fatal(err)
	}
	check := func(wantFirst uint64, wantN int) {
		t.Helper()
		if first, k := n.s.CachedForTest(); first != wantFirst || k != wantN {
			t.Errorf("cache holds %d entries from %d, want %d from %d", k, first, wantN, wantFirst)
		}
		got, err := n.s.Entries(1, 9, math.MaxUint64)
		if err != nil || len(got) != len(want) {
			t.Fatalf("Entries: %d entries, %v", len(got), err)
		}
		for i := range got {
			// Append stamped the leader epoch into the cached entries; compare past it.
			if got[i].GetIndex() != want[i].GetIndex() || !bytes.Equal(got[i].GetData()[61:], want[i].GetData()[61:]) {
				t.Fatalf("entry %d differs", i+1)
			}
		}
	}
	check(1, 8) // nothing applied: all cached
	n.s.Applied(6)
	check(5, 4) // 7 and 8 unapplied, 5 and 6 the newest applied within 256 KiB
	n.s.Applied(8)
	check(5, 4)
}
