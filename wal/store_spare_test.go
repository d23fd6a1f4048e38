package wal_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// TestStoreRecycledSegmentLeftovers: a journal segment retired by a checkpoint is reused as a
// later segment's file, and the records of its earlier use that lie after the new records are
// not replayed after a crash. The earlier records are laid out exactly where new ones would
// start (all records the same size), and some name offsets the log has since truncated and
// rewritten with other bytes: replaying them would resurrect data the log no longer holds.
func TestStoreRecycledSegmentLeftovers(t *testing.T) {
	fs := waltest.NewCrashFS()
	const segBytes = 4096
	s := mustOpenStore(t, fs, wal.StoreOptions{SegmentBytes: segBytes})
	l := mustOpenLog(t, s, partDir(0), wal.Options{})
	var m model
	const size = 256 - 48 - len("topics/t/0") // one journal record: 256 bytes, 16 a segment
	for i := range 40 {
		appendSynced(t, l, &m, i, 1, size)
	}
	cut := m.entries[8].BaseOffset
	if err := l.TruncateFrom(cut); err != nil {
		t.Fatal(err)
	}
	m.truncate(t, cut)
	for i := range 20 {
		appendSynced(t, l, &m, 1000+i, 1, size)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	spares := func() int { return len(fs.FilesWithSuffix(".spare")) }
	if n := spares(); n != 2 {
		t.Fatalf("%d spare segment files after the checkpoint, want 2", n)
	}
	for i := range 3 { // the first commit rolls to a spare, the next two write into it
		appendSynced(t, l, &m, 2000+i, 1, size)
	}
	if st := s.Stats(); st.SegmentsRecycled != 1 {
		t.Fatalf("%d segments recycled, want 1", st.SegmentsRecycled)
	}
	fs.Crash()
	l2 := reopenPart(t, fs, 0)
	m.verify(t, l2)
}

// TestStorePreallocatesJournalSegments: a busy Store's checkpointer writes a zero-filled spare
// segment file, the journal rolls to it as soon as it is ready, and later segments reuse
// retired ones; every entry survives a reopen, and the zeros after the records are not
// taken for damage.
func TestStorePreallocatesJournalSegments(t *testing.T) {
	dir := t.TempDir()
	const segBytes = 64 << 10
	s, err := wal.OpenStore(dir, wal.StoreOptions{SegmentBytes: segBytes, CheckpointBytes: 2 * segBytes})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.OpenLog(filepath.Join(dir, "topics", "t", "0"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var m model
	deadline := time.Now().Add(20 * time.Second)
	i := 0
	for st := s.Stats(); st.SparesMade == 0 || st.SegmentsRecycled < 3; st = s.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("no preallocated and recycled segments after %d entries: %+v", i, st)
		}
		appendSynced(t, l, &m, i, 1, 1000)
		i++
	}
	preallocated := false
	ents, _ := os.ReadDir(filepath.Join(dir, "commitlog"))
	for _, e := range ents {
		info, _ := e.Info()
		if strings.HasSuffix(e.Name(), ".journal") && info.Size() >= segBytes {
			preallocated = true
		}
	}
	if !preallocated {
		t.Fatalf("no journal segment file of %d bytes or more: %v", segBytes, ents)
	}
	appendSynced(t, l, &m, i, 1, 1000)
	// Close the Store with the log still open: its entries since the last checkpoint stay
	// in the journal, and the next OpenStore replays them.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	s2, err := wal.OpenStore(dir, wal.StoreOptions{SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	l2, err := s2.OpenLog(filepath.Join(dir, "topics", "t", "0"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	m.verify(t, l2)
}
