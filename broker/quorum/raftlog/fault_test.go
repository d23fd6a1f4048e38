package raftlog_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"slices"
	"sync"
	"syscall"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/meshkafka/meshkafka/broker/quorum/raftlog"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// faultFS fails its at-th mutating operation the way a disk does, and lets everything else
// through: an fsync fails as on Linux (the pages are marked clean: a later fsync "succeeds"
// without making them durable), a write is short and fails with ENOSPC, a directory fsync
// makes nothing durable, any other operation fails with EIO without doing anything.
type faultFS struct {
	d  *waltest.DirFaultFS
	at int

	mu           sync.Mutex
	n            int
	failed       bool
	removeFailed bool // the failure was a Remove (of an old segment: best effort)
}

func (f *faultFS) hit() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.n == f.at {
		f.failed = true
		return true
	}
	return false
}

func eio(op, name string) error { return &fs.PathError{Op: op, Path: name, Err: syscall.EIO} }

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	if f.hit() {
		return nil, eio("open", name)
	}
	fl, err := f.d.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: fl, f: f}, nil
}

func (f *faultFS) Remove(name string) error {
	if f.hit() {
		f.removeFailed = true
		return eio("remove", name)
	}
	return f.d.Remove(name)
}

func (f *faultFS) RemoveAll(p string) error {
	if f.hit() {
		return eio("removeall", p)
	}
	return f.d.RemoveAll(p)
}

func (f *faultFS) Rename(o, n string) error {
	if f.hit() {
		return eio("rename", o)
	}
	return f.d.Rename(o, n)
}

func (f *faultFS) MkdirAll(p string, perm fs.FileMode) error {
	if f.hit() {
		return eio("mkdir", p)
	}
	return f.d.MkdirAll(p, perm)
}

func (f *faultFS) ReadDir(dir string) ([]string, error) { return f.d.ReadDir(dir) }

func (f *faultFS) SyncDir(dir string) error {
	if f.hit() {
		return eio("syncdir", dir)
	}
	return f.d.SyncDir(dir)
}

type faultFile struct {
	wal.File
	f *faultFS
}

func (x *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if x.f.hit() {
		n, _ := x.File.WriteAt(p[:len(p)/2], off)
		return n, &fs.PathError{Op: "write", Path: "?", Err: syscall.ENOSPC}
	}
	return x.File.WriteAt(p, off)
}

func (x *faultFile) Sync() error {
	if x.f.hit() {
		x.f.d.FailSyncs(1, syscall.EIO)
	}
	return x.File.Sync()
}

func (x *faultFile) Truncate(size int64) error {
	if x.f.hit() {
		return eio("truncate", "?")
	}
	return x.File.Truncate(size)
}

// TestFailEveryPoint runs a workload and fails each of its mutating filesystem operations in
// turn. The failed write returns an error and every later write fails too (sticky: the
// outcome of a failed fsync is unknown) while reads keep serving a state the writes went
// through; an in-process reopen then serves a state after a prefix of the writes (as after a
// crash) and that state is durable: a crash after the reopen changes nothing. Without the
// cut after a failed fsync, the reopen would serve the failed write's bytes from the page
// cache and lose them at the crash (fsyncgate).
func TestFailEveryPoint(t *testing.T) {
	for seed := range uint64(3) {
		for _, opts := range []raftlog.Options{{SegmentBytes: 400, KeepEntries: 2}, {KeepEntries: -1}} {
			t.Run(fmt.Sprintf("seed%d/seg%d", seed, opts.SegmentBytes), func(t *testing.T) {
				testFailEveryPoint(t, seed, opts)
			})
		}
	}
}

func testFailEveryPoint(t *testing.T, seed uint64, opts raftlog.Options) {
	w := makeWorkload(seed, 30, opts.KeepEntries)
	count := &faultFS{d: waltest.NewDirFaultFS()}
	l := mustOpen(t, count, opts)
	start := count.n
	for _, o := range w.ops {
		if err := o.apply(l); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	total := count.n
	for at := 1; at <= total; at++ {
		d := waltest.NewDirFaultFS()
		f := &faultFS{d: d, at: at}
		l, err := raftlog.Open(f, "/node/quorum", opts)
		if at <= start {
			// A failure while opening a new directory: Open fails, and a reopen finds
			// the empty state (with a raft id made once and kept).
			if err == nil {
				if !f.removeFailed {
					t.Fatalf("fail at %d (in Open): Open succeeded", at)
				}
				l.Close()
			}
			var id uint64
			for range 2 {
				l, err := raftlog.Open(d, "/node/quorum", opts)
				if err != nil {
					t.Fatalf("fail at %d (in Open): reopen: %v", at, err)
				}
				if got := dump(l); got != w.states[0] || l.RaftID() == 0 || id != 0 && l.RaftID() != id {
					t.Fatalf("fail at %d (in Open): reopened with raft id %x (before: %x), state\n%s", at, l.RaftID(), id, got)
				}
				id = l.RaftID()
				l.Close()
				d.Crash()
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := len(w.states)-1, len(w.states)-1
		for i, o := range w.ops {
			err := o.apply(l)
			if err == nil {
				continue
			}
			if !errors.Is(err, syscall.EIO) && !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fail at %d: op %d %v: %v", at, i, o, err)
			}
			lo, hi = w.start[i], w.end[i]
			if got := dump(l); !slices.Contains(w.states[lo:hi+1], got) {
				t.Fatalf("fail at %d: op %d %v failed, and the log serves none of states %d..%d:\n%s", at, i, o, lo, hi, got)
			}
			// Sticky: nothing more is written.
			if i+1 < len(w.ops) {
				if err := w.ops[i+1].apply(l); err == nil {
					t.Fatalf("fail at %d: op %d %v succeeded after a failed write", at, i+1, w.ops[i+1])
				}
			}
			if err := l.Save(hardState(1<<40, 0, 0), nil, nil); err == nil {
				t.Fatalf("fail at %d: a Save succeeded after a failed write", at)
			}
			break
		}
		if err := l.Close(); f.failed != (err != nil) && !f.removeFailed {
			t.Fatalf("fail at %d: failed %v, Close: %v", at, f.failed, err)
		}
		what := fmt.Sprintf("fail at %d/%d", at, total)
		// Reopen in the same process (same page cache).
		l2 := reopen(t, d, opts, what+": reopen")
		got := dump(l2)
		if !slices.Contains(w.states[lo:hi+1], got) {
			t.Fatalf("%s: reopened state is none of states %d..%d:\n%s", what, lo, hi, got)
		}
		l2.Close()
		d.Crash()
		l3 := reopen(t, d, opts, what+": open after a crash")
		if after := dump(l3); after != got {
			t.Fatalf("%s: the reopen served state that was not durable; after a crash:\n%s\nreopen served:\n%s", what, after, got)
		}
		l3.Close()
	}
}

// writeState builds a log with entries, hard states, a snapshot and a compaction.
func writeState(t *testing.T, fsys wal.FS, close bool) (*raftlog.Log, string) {
	t.Helper()
	l := mustOpen(t, fsys, raftlog.Options{KeepEntries: 5})
	for i := uint64(1); i <= 30; i++ {
		if err := l.Save(hardState(1+i/10, 1, i-1), []*raftpb.Entry{ent(i, 1+i/10, fmt.Sprint("entry", i))}, nil); err != nil {
			t.Fatal(err)
		}
		if i == 20 {
			if err := l.CreateSnapshot(18, &raftpb.ConfState{Voters: []uint64{1}}, []byte("state at 18")); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := dump(l)
	if close {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return l, s
}

const segment1 = "/node/quorum/00000000000000000001.rlog"

// TestBitRotRefused flips each bit... one bit of every byte of every file of a closed log:
// damage to durable bytes fails Open with a corruption error and changes no file, except in
// the empty record Close appended last, which is cut as a torn tail (it holds nothing).
func TestBitRotRefused(t *testing.T) {
	cfs := waltest.NewCrashFS()
	_, want := writeState(t, cfs, true)
	files := cfs.Files()
	if !slices.Equal(files, []string{segment1, "/node/quorum/raft-id", "/node/quorum/snapshot"}) {
		t.Fatalf("files %v", files)
	}
	contents := map[string][]byte{}
	for _, f := range files {
		contents[f], _ = cfs.ReadFile(f)
	}
	const sealSize = 24 + 5 // header, flags, entry count
	for _, f := range files {
		size := int64(len(contents[f]))
		for pos := range size {
			if err := cfs.FlipBit(f, pos*8+pos%8); err != nil {
				t.Fatal(err)
			}
			l, err := raftlog.Open(cfs, "/node/quorum", raftlog.Options{})
			inSeal := f == segment1 && pos >= size-sealSize
			switch {
			case inSeal && err != nil:
				t.Fatalf("%s byte %d (the empty last record): %v", f, pos, err)
			case inSeal:
				if got := dump(l); got != want {
					t.Fatalf("%s byte %d (the empty last record): state\n%s\nwant\n%s", f, pos, got, want)
				}
				l.Close()
				// The cut record is gone; put the file back as it was.
				if err := cfs.WriteFile(f, contents[f]); err != nil {
					t.Fatal(err)
				}
				continue
			case err == nil:
				l.Close()
				t.Fatalf("%s byte %d of %d flipped: Open succeeded", f, pos, size)
			case !raftlog.IsCorruption(err):
				t.Fatalf("%s byte %d flipped: %v, not a corruption error", f, pos, err)
			}
			for _, g := range files {
				b, _ := cfs.ReadFile(g)
				if g == f {
					b[pos] ^= 1 << (pos % 8)
				}
				if string(b) != string(contents[g]) {
					t.Fatalf("%s byte %d flipped: the refused Open changed %s", f, pos, g)
				}
			}
			if err := cfs.FlipBit(f, pos*8+pos%8); err != nil {
				t.Fatal(err)
			}
		}
	}
	l := mustOpen(t, cfs, raftlog.Options{})
	if got := dump(l); got != want {
		t.Fatalf("restored files: state\n%s\nwant\n%s", got, want)
	}
	l.Close()
}

// TestBitRotAfterCrash: without a clean Close, damage to any record but the last one
// written is refused (a later record proves it was durable). The last one has no such
// witness and is cut as a torn tail (see doc.go).
func TestBitRotAfterCrash(t *testing.T) {
	cfs := waltest.NewCrashFS()
	writeState(t, cfs, false)
	cfs.Crash()
	data, _ := cfs.ReadFile(segment1)
	recs := recordStarts(t, data)
	last := recs[len(recs)-1]
	for pos := range int64(len(data)) {
		if err := cfs.FlipBit(segment1, pos*8+3); err != nil {
			t.Fatal(err)
		}
		l, err := raftlog.Open(cfs, "/node/quorum", raftlog.Options{})
		if pos >= last {
			if err != nil {
				t.Fatalf("byte %d (in the last record): %v", pos, err)
			}
			if l.Stats().TruncatedBytes != int64(len(data))-last {
				t.Errorf("byte %d: cut %d bytes, want %d", pos, l.Stats().TruncatedBytes, int64(len(data))-last)
			}
			l.Close()
			if err := cfs.WriteFile(segment1, data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !raftlog.IsCorruption(err) {
			t.Fatalf("byte %d of %d (last record at %d): %v, want a corruption error", pos, len(data), last, err)
		}
		if err := cfs.FlipBit(segment1, pos*8+3); err != nil {
			t.Fatal(err)
		}
	}
}

// recordStarts walks the records of a segment by their size fields.
func recordStarts(t *testing.T, b []byte) []int64 {
	var starts []int64
	for pos := int64(0); pos < int64(len(b)); {
		starts = append(starts, pos)
		size := int64(binary.BigEndian.Uint32(b[pos+8:]))
		if size < 24 || pos+size > int64(len(b)) {
			t.Fatalf("bad record at %d", pos)
		}
		pos += size
	}
	return starts
}

// TestTornTailCut: bytes past the last durable record that do not form an intact record (a
// partial header, a partial record, a whole-length record with garbage, zeros) are cut by
// Open, reported in Stats, and the log goes on after them.
func TestTornTailCut(t *testing.T) {
	for name, tail := range map[string]func(good []byte) []byte{
		"partial header": func(good []byte) []byte { return good[:10] },
		"partial record": func(good []byte) []byte { return good[:len(good)-7] },
		"garbage at end": func(good []byte) []byte {
			g := slices.Clone(good)
			copy(g[len(g)-20:], "twenty garbage bytes")
			return g
		},
		"zeros":           func(good []byte) []byte { return make([]byte, 700) },
		"zeroed block":    func(good []byte) []byte { g := slices.Clone(good); clear(g[30:60]); return g },
		"header only":     func(good []byte) []byte { return good[:24] },
		"size field huge": func(good []byte) []byte { g := slices.Clone(good); g[8] = 0xff; return g },
	} {
		t.Run(name, func(t *testing.T) {
			cfs := waltest.NewCrashFS()
			_, want := writeState(t, cfs, true)
			// A real record (a Save) to tear: written by a log, then taken off the file.
			before, _ := cfs.ReadFile(segment1)
			l := mustOpen(t, cfs, raftlog.Options{})
			if err := l.Save(hardState(9, 1, 29), ents(31, 33, 9), nil); err != nil {
				t.Fatal(err)
			}
			l.Close()
			after, _ := cfs.ReadFile(segment1)
			good := after[len(before) : len(after)-29] // the Save's record, without the Close's
			torn := tail(good)
			if err := cfs.WriteFile(segment1, append(slices.Clone(before), torn...)); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, cfs, raftlog.Options{})
			if got := dump(l); got != want {
				t.Fatalf("state\n%s\nwant\n%s", got, want)
			}
			if st := l.Stats(); st.TruncatedBytes != int64(len(torn)) {
				t.Errorf("truncated %d bytes, want %d", st.TruncatedBytes, len(torn))
			}
			if err := l.Save(hardState(9, 1, 29), ents(31, 31, 9), nil); err != nil {
				t.Fatal(err)
			}
			want = dump(l)
			l.Close()
			cfs.Crash()
			l = mustOpen(t, cfs, raftlog.Options{})
			defer l.Close()
			if got := dump(l); got != want {
				t.Fatalf("after a save past the cut: state\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestUnknownVersionRefused: an intact record of a newer format is never cut as a torn
// tail: Open fails and leaves it.
func TestUnknownVersionRefused(t *testing.T) {
	cfs := waltest.NewCrashFS()
	writeState(t, cfs, true)
	data, _ := cfs.ReadFile(segment1)
	rec := make([]byte, 24+3)
	binary.BigEndian.PutUint32(rec[4:], 0x524c4f47)
	binary.BigEndian.PutUint32(rec[8:], uint32(len(rec)))
	rec[12] = 2 // version
	rec[13] = 1
	binary.BigEndian.PutUint64(rec[16:], uint64(len(data)))
	binary.BigEndian.PutUint32(rec[0:], crc32.Checksum(rec[4:], crc32.MakeTable(crc32.Castagnoli)))
	if err := cfs.WriteFile(segment1, append(slices.Clone(data), rec...)); err != nil {
		t.Fatal(err)
	}
	_, err := raftlog.Open(cfs, "/node/quorum", raftlog.Options{})
	if !errors.Is(err, raftlog.ErrUnsupportedVersion) {
		t.Fatalf("Open: %v, want ErrUnsupportedVersion", err)
	}
	if got, _ := cfs.ReadFile(segment1); len(got) != len(data)+len(rec) {
		t.Errorf("segment cut to %d bytes", len(got))
	}
}

// TestLostSegmentRefused: a log whose only segment is a later one with a damaged base (an
// older segment was removed, so the base was durable) is refused; so is a snapshot without
// a log.
func TestLostSegmentRefused(t *testing.T) {
	cfs := waltest.NewCrashFS()
	l := mustOpen(t, cfs, raftlog.Options{SegmentBytes: 200})
	for i := uint64(1); i <= 20; i++ {
		if err := l.Save(hardState(1, 1, i-1), ents(i, i, 1), nil); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	seg := cfs.LastWithSuffix(".rlog")
	if seg == segment1 || seg == "" {
		t.Fatalf("no roll: %v", cfs.Files())
	}
	data, _ := cfs.ReadFile(seg)
	n := binary.BigEndian.Uint32(data[8:])
	if err := cfs.WriteFile(seg, data[:n-1]); err != nil { // only the base, torn
		t.Fatal(err)
	}
	if _, err := raftlog.Open(cfs, "/node/quorum", raftlog.Options{}); !raftlog.IsCorruption(err) {
		t.Errorf("a later segment's base torn: %v", err)
	}
	if err := cfs.Remove(seg); err != nil {
		t.Fatal(err)
	}
	if err := cfs.WriteFile("/node/quorum/snapshot", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := raftlog.Open(cfs, "/node/quorum", raftlog.Options{}); !raftlog.IsCorruption(err) {
		t.Errorf("a snapshot without a log: %v", err)
	}
}
