package wal_test

import (
	"testing"

	"github.com/meshkafka/meshkafka/wal"
)

// RetainBelow deletes exactly the sealed segments whose entries all lie below the offset
// (never the active one); Segments describes what is left, and a reopen after a crash finds
// the same start (the segments were checkpointed: entries the journal still holds would be
// replayed).
func TestRetainBelow(t *testing.T) {
	fs, s := newCrashStore(t)
	m := mustOpenLog(t, s, partDir(0), wal.Options{SegmentBytes: 200})
	for i := range 40 {
		if _, err := m.AppendTagged(make([]byte, 40), 2, int64(i), uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Checkpoint(); err != nil { // the segments are files (and the journal forgets them)
		t.Fatal(err)
	}
	segs := m.Segments()
	if len(segs) < 4 || segs[len(segs)-1].Sealed || !segs[0].Sealed {
		t.Fatalf("segments %+v", segs)
	}
	for k := 1; k < len(segs); k++ {
		if segs[k].Base != segs[k-1].Next {
			t.Fatalf("segments not contiguous: %+v", segs)
		}
	}
	if n, err := m.RetainBelow(segs[1].Base - 1); err != nil || n != 0 {
		t.Fatalf("RetainBelow inside the first segment removed %d, %v", n, err)
	}
	if n, err := m.RetainBelow(segs[2].Base + 1); err != nil || n != 2 || m.StartOffset() != segs[2].Base {
		t.Fatalf("RetainBelow: removed %d, %v; start %d, want 2 and %d", n, err, m.StartOffset(), segs[2].Base)
	}
	if n, err := m.RetainBelow(m.NextOffset() + 100); err != nil || m.StartOffset() != segs[len(segs)-1].Base {
		t.Fatalf("RetainBelow past the end: removed %d, %v; start %d, want the active segment's %d", n, err, m.StartOffset(), segs[len(segs)-1].Base)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	start, next := m.StartOffset(), m.NextOffset()
	fs.Crash()
	m2 := reopenAfterCrash(t, fs)
	if m2.StartOffset() != start || m2.NextOffset() != next {
		t.Fatalf("after a crash: [%d, %d), want [%d, %d)", m2.StartOffset(), m2.NextOffset(), start, next)
	}
}
