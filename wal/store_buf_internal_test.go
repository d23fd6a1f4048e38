package wal

import (
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// openTestStore opens a Store at root, closed when the test ends.
func openTestStore(t *testing.T, root string, opts StoreOptions) *Store {
	t.Helper()
	s, err := OpenStore(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openTestLog opens s's member log in dir, closed when the test ends (before the Store).
func openTestLog(t *testing.T, s *Store, dir string, opts Options) *Log {
	t.Helper()
	l, err := s.OpenLog(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestCheckpointKeepsWriteBufferOfBusyLog: a checkpoint empties a member's write buffer but
// leaves it to the log while the log keeps being written (no regrowing it every round); the
// first checkpoint that finds the log not written since the previous one releases it, and so
// does releaseIdleBufs when nothing at all was written. A log written again after a
// checkpoint is dirty again (one map insert per log per round, Store.gen).
func TestCheckpointKeepsWriteBufferOfBusyLog(t *testing.T) {
	root := t.TempDir()
	s := openTestStore(t, root, StoreOptions{CheckpointInterval: -1})
	busy := openTestLog(t, s, filepath.Join(root, "busy"), Options{})
	idle := openTestLog(t, s, filepath.Join(root, "idle"), Options{})
	appendTo := func(l *Log) {
		t.Helper()
		if _, err := l.Append(make([]byte, 3000), 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	state := func(l *Log) (buffered, capacity int, dirty bool) {
		s.mu.Lock()
		_, dirty = s.dirty[l]
		s.mu.Unlock()
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.buf.len(), l.buf.cap(), dirty
	}
	checkpoint := func() {
		t.Helper()
		if err := s.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(busy)
	appendTo(idle)
	checkpoint()
	for _, l := range []*Log{busy, idle} {
		if n, c, d := state(l); n != 0 || c == 0 || d {
			t.Fatalf("after the first checkpoint: %d bytes buffered, capacity %d, dirty %v; want 0, kept, clean", n, c, d)
		}
	}
	appendTo(busy)
	if _, _, d := state(busy); !d {
		t.Fatal("a log written after a checkpoint is not dirty")
	}
	checkpoint()
	if n, c, _ := state(busy); n != 0 || c == 0 {
		t.Fatalf("busy log after its second checkpoint: %d bytes buffered, capacity %d; want 0 and kept", n, c)
	}
	if _, c, _ := state(idle); c != 0 {
		t.Fatalf("idle log kept a write buffer of %d bytes after a checkpoint found it cold", c)
	}
	// Nothing written since: the checkpointer's idle round releases what is left.
	s.releaseIdleBufs()
	if _, c, _ := state(busy); c != 0 {
		t.Fatalf("busy log kept a write buffer of %d bytes once nothing was written", c)
	}
	// Both entries of busy are there, in order, after a reopen.
	appendTo(busy)
	if err := busy.Sync(busy.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if bs, err := busy.Read(0, 1<<20); err != nil || len(bs) != 3 {
		t.Fatalf("busy log reads %d entries (%v), want 3", len(bs), err)
	}
}

// TestCheckpointerReleasesIdleBuffers: the checkpointer, ticking with nothing to checkpoint
// after a checkpoint that left write buffers, releases them (an idle log holds no buffer).
func TestCheckpointerReleasesIdleBuffers(t *testing.T) {
	root := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		tick := make(chan time.Time)
		s := openTestStore(t, root, StoreOptions{CheckpointInterval: time.Hour,
			NewTicker: func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }})
		l := openTestLog(t, s, filepath.Join(root, "p"), Options{})
		if _, err := l.Append(make([]byte, 3000), 1, 0); err != nil {
			t.Fatal(err)
		}
		capacity := func() int {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.buf.cap()
		}
		tick <- time.Now() // checkpoint: the log was written
		synctest.Wait()
		if capacity() == 0 {
			t.Fatal("the checkpoint of a log written in its round released the log's write buffer")
		}
		tick <- time.Now() // nothing written since: release
		synctest.Wait()
		if c := capacity(); c != 0 {
			t.Fatalf("an idle log still holds a %d-byte write buffer after an idle checkpointer round", c)
		}
	})
}

// TestOffsetsAgreesWithGetters: Offsets is StartOffset, NextOffset and SyncedOffset at once.
func TestOffsetsAgreesWithGetters(t *testing.T) {
	root := t.TempDir()
	st := openTestStore(t, root, StoreOptions{CheckpointInterval: -1})
	l := openTestLog(t, st, filepath.Join(root, "p"), Options{SegmentBytes: 4096})
	check := func() {
		t.Helper()
		s, n, y := l.Offsets()
		if s != l.StartOffset() || n != l.NextOffset() || y != l.SyncedOffset() {
			t.Fatalf("Offsets %d %d %d, getters %d %d %d", s, n, y, l.StartOffset(), l.NextOffset(), l.SyncedOffset())
		}
	}
	check()
	for i := range 20 {
		if _, err := l.Append(make([]byte, 1000), 3, 0); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			if err := l.Sync(l.NextOffset()); err != nil {
				t.Fatal(err)
			}
		}
		check()
	}
	if err := l.Reset(100); err != nil {
		t.Fatal(err)
	}
	if s, n, _ := l.Offsets(); s != 100 || n != 100 {
		t.Fatalf("after Reset(100): start %d next %d", s, n)
	}
	check()
}
