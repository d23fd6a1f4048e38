//go:build linux

package wal_test

import (
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// allocChecked reports whether the file system under root allocates only what the tests make
// it: ext4 and tmpfs (XFS, say, allocates past an extending write by itself).
func allocChecked(t *testing.T, root string) bool {
	t.Helper()
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(root, &sfs); err != nil {
		t.Fatal(err)
	}
	const ext4Magic, tmpfsMagic = 0xEF53, 0x01021994
	if sfs.Type != ext4Magic && sfs.Type != tmpfsMagic {
		t.Logf("filesystem type %#x: allocation not checked", sfs.Type)
		return false
	}
	return true
}

// appendCheckpointed appends data n times to l, syncs it and checkpoints s (the partition files
// written).
func appendCheckpointed(t *testing.T, s *wal.Store, l *wal.Log, data []byte, n int) {
	t.Helper()
	for range n {
		if _, err := l.Append(data, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
}

// TestLogReservesAheadOnDisk: a busy Store member's active segment has disk blocks allocated
// past what it wrote (its size unchanged, so readers and recovery see only the entries), a
// quiet one does not, and sealing the segment frees the blocks past its end; after a
// reopen every entry reads back.
func TestLogReservesAheadOnDisk(t *testing.T) {
	root := waltest.DiskDir(t)
	checkAlloc := allocChecked(t, root) // elsewhere only the read-back
	s, err := wal.OpenStore(root, wal.StoreOptions{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	const segBytes = 32 << 20
	busy, err := s.OpenLog(filepath.Join(root, "t", "0"), wal.Options{SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := s.OpenLog(filepath.Join(root, "t", "1"), wal.Options{SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	entry := make([]byte, 100<<10) // direct writes
	small := make([]byte, 1000)    // buffered writes
	appendN := func(l *wal.Log, data []byte, n int) { t.Helper(); appendCheckpointed(t, s, l, data, n) }
	// allocated reports the size and the allocated bytes of the log's only or last segment.
	allocated := func(dir string) (size, alloc int64) {
		t.Helper()
		names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		sort.Strings(names)
		if len(names) == 0 {
			t.Fatalf("no segment in %s", dir)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(names[len(names)-1], &st); err != nil {
			t.Fatal(err)
		}
		return st.Size, st.Blocks * 512
	}
	appendN(quiet, small, 100)
	if size, alloc := allocated(filepath.Join(root, "t", "1")); checkAlloc && alloc > size+64<<10 {
		t.Errorf("quiet log: %d bytes allocated for %d written", alloc, size)
	}
	appendN(busy, entry, 60) // 6 MB: past the first 4 MiB
	appendN(busy, small, 300)
	size, alloc := allocated(filepath.Join(root, "t", "0"))
	if checkAlloc && alloc < size+(256<<10) {
		t.Errorf("busy log: %d bytes allocated for %d written: nothing reserved ahead", alloc, size)
	}
	if checkAlloc && alloc > size+(4<<20)+(1<<20) {
		t.Errorf("busy log: %d bytes allocated for %d written: more than a chunk ahead", alloc, size)
	}
	// Fill the segment: it is sealed and its reservation freed.
	appendN(busy, entry, segBytes/len(entry))
	names, _ := filepath.Glob(filepath.Join(filepath.Join(root, "t", "0"), "*.log"))
	sort.Strings(names)
	if len(names) < 2 {
		t.Fatalf("segments %v: no roll", names)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(names[0], &st); err != nil {
		t.Fatal(err)
	}
	if checkAlloc && st.Blocks*512 > st.Size+8<<10 {
		t.Errorf("sealed segment: %d bytes allocated for %d written", st.Blocks*512, st.Size)
	}
	want := busy.NextOffset()
	if err := busy.Close(); err != nil {
		t.Fatal(err)
	}
	quiet.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = wal.OpenStore(root, wal.StoreOptions{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.OpenLog(filepath.Join(root, "t", "0"), wal.Options{SegmentBytes: segBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := l.NextOffset(); got != want {
		t.Fatalf("after reopen: next offset %d, want %d", got, want)
	}
	var n int64
	for off := int64(0); off < want; {
		bs, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		for _, b := range bs {
			if len(b.Data) != len(entry) && len(b.Data) != len(small) {
				t.Fatalf("offset %d: %d bytes", b.BaseOffset, len(b.Data))
			}
			n++
			off = b.LastOffset + 1
		}
	}
	if n != want {
		t.Fatalf("read %d entries, want %d", n, want)
	}
}

// TestLogFreesEarlierRunsReservation: blocks a busy segment had allocated ahead when its log
// was closed (or its process killed) are freed when the reopened segment is sealed, even when
// this run seals it before reserving anything itself (an entry too large for what is left).
func TestLogFreesEarlierRunsReservation(t *testing.T) {
	root := waltest.DiskDir(t)
	if !allocChecked(t, root) {
		t.SkipNow()
	}
	const segBytes = 32 << 20
	dir := filepath.Join(root, "t", "0")
	open := func() (*wal.Store, *wal.Log) {
		t.Helper()
		s, err := wal.OpenStore(root, wal.StoreOptions{CheckpointInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.OpenLog(dir, wal.Options{SegmentBytes: segBytes})
		if err != nil {
			t.Fatal(err)
		}
		return s, l
	}
	s, l := open()
	appendCheckpointed(t, s, l, make([]byte, 100<<10), 60) // 6 MB: blocks reserved ahead
	first, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(first) != 1 {
		t.Fatalf("segments %v", first)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(first[0], &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < st.Size+(256<<10) {
		t.Fatalf("%d bytes allocated for %d written: nothing reserved ahead", st.Blocks*512, st.Size)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, l = open()
	defer s.Close()
	defer l.Close()
	// Too large for the rest of the segment: the reopened segment is sealed at once.
	appendCheckpointed(t, s, l, make([]byte, segBytes-(4<<20)), 1)
	if err := syscall.Stat(first[0], &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > st.Size+8<<10 {
		t.Errorf("sealed segment: %d bytes allocated for %d written", st.Blocks*512, st.Size)
	}
}
