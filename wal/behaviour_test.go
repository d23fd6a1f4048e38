package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fill appends n entries of size bytes with timestamps ts0, ts0+1, ... and returns the model.
func fill(t testing.TB, l *wal.Log, n, size int, ts0 int64) []wal.Batch {
	t.Helper()
	var out []wal.Batch
	for i := range n {
		data := payload(int64(i), size)
		base, err := l.Append(data, 2, ts0+int64(i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, wal.Batch{BaseOffset: base, LastOffset: base + 1, MaxTimestamp: ts0 + int64(i), Data: data})
	}
	return out
}

// TestRecoveryReadsOnlyActiveTail: reopening a log of many segments reads the sealed segments'
// index tails and one index interval of the active segment, not the data.
func TestRecoveryReadsOnlyActiveTail(t *testing.T) {
	cfs := waltest.NewCrashFS()
	const segBytes = 64 << 10
	opts := wal.Options{FS: cfs, SegmentBytes: segBytes, IndexIntervalBytes: 4096}
	l := mustOpen(t, cfs, "/p", opts)
	want := fill(t, l, 4000, 1000, 0) // ~4 MiB in ~62 segments
	total := l.Size()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	cfs.ResetStats()
	l = mustOpen(t, cfs, "/p", opts)
	st := cfs.Stats()
	// Active segment index files (< 1 KiB) + 20 bytes per sealed segment + one entry and one
	// index interval of the active segment.
	if limit := int64(16 << 10); st.BytesRead > limit {
		t.Fatalf("clean reopen of %d bytes read %d bytes, want <= %d", total, st.BytesRead, limit)
	}
	t.Logf("clean reopen: %d bytes of data, %d bytes read", total, st.BytesRead)

	// A Read at any offset is a seek: index load plus about one interval.
	for _, i := range []int{0, 1234, 2500, 3999} {
		cfs.ResetStats()
		bs, err := l.Read(want[i].BaseOffset+1, 1)
		if err != nil || len(bs) != 1 {
			t.Fatalf("Read: %v %v", bs, err)
		}
		sameBatch(t, bs[0], want[i])
		if rd := cfs.Stats().BytesRead; rd > 16<<10 {
			t.Fatalf("Read at entry %d read %d bytes", i, rd)
		}
	}

	// After a crash, the active segment is scanned from its recovery point (written at Open
	// and every 16 MiB of log): at most the active segment.
	fill(t, l, 30, 1000, 5000)
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	cfs.Crash()
	cfs.ResetStats()
	l = mustOpen(t, cfs, "/p", opts)
	defer l.Close()
	if rd := cfs.Stats().BytesRead; rd > segBytes+16<<10 {
		t.Fatalf("reopen after crash read %d bytes, more than the active segment", rd)
	}
}

// TestGroupCommit: concurrent appenders that each Sync their own entry share fsyncs.
func TestGroupCommit(t *testing.T) {
	cfs := waltest.NewCrashFS()
	cfs.SetSyncDelay(2 * time.Millisecond)
	l := mustOpen(t, cfs, "/p", wal.Options{})
	defer l.Close()
	const writers, each = 32, 20
	cfs.ResetStats()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				off, err := l.Append(payload(int64(w*each+i), 100), 1, 0)
				if err == nil {
					err = l.Sync(off + 1)
				}
				if err == nil && l.SyncedOffset() <= off {
					err = errors.New("Sync returned before the entry was durable")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	syncs := cfs.Stats().Syncs
	t.Logf("%d appends+syncs, %d fsyncs", writers*each, syncs)
	if syncs*4 > writers*each {
		t.Fatalf("%d fsyncs for %d synced appends: no group commit", syncs, writers*each)
	}
	if st := l.Stats(); st.Appends != writers*each || st.GroupCommits == 0 || st.GroupCommits > syncs {
		t.Fatalf("Stats() = %+v with %d fsyncs on the filesystem", st, syncs)
	}
	// Everything reported synced survives a crash.
	cfs.Crash()
	l2 := mustOpen(t, cfs, "/p", wal.Options{})
	defer l2.Close()
	if l2.NextOffset() != writers*each {
		t.Fatalf("after crash %d entries, want %d", l2.NextOffset(), writers*each)
	}
}

// TestRetention: time and size retention delete whole sealed segments, never the active one,
// and move StartOffset; reads below it are out of range; it holds across a reopen.
func TestRetention(t *testing.T) {
	cfs := waltest.NewCrashFS()
	now := time.UnixMilli(1_000_000)
	opts := wal.Options{FS: cfs, SegmentBytes: 1100, Now: func() time.Time { return now }}
	l := mustOpen(t, cfs, "/p", opts)
	// 10 entries of 1032 bytes on disk: one per segment. Timestamps 1000..1009 s.
	var want []wal.Batch
	for i := range 10 {
		data := payload(int64(i), 1000)
		base, err := l.Append(data, 1, int64(1000+i)*1000)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, wal.Batch{BaseOffset: base, LastOffset: base, MaxTimestamp: int64(1000+i) * 1000, Data: data})
	}
	if n := len(cfs.FilesWithSuffix(".log")); n != 10 {
		t.Fatalf("%d segments, want 10", n)
	}
	// No limits: nothing goes.
	if n, err := l.Retain(-1, -1); n != 0 || err != nil {
		t.Fatalf("Retain(-1,-1) = %d, %v", n, err)
	}
	// Time: now = 1005.5 s, retention 2 s: segments whose newest record is older than
	// 1003.5 s go (1000..1003).
	now = time.UnixMilli(1_005_500)
	n, err := l.Retain(2000, -1)
	if err != nil || n != 4 {
		t.Fatalf("Retain by time = %d, %v; want 4", n, err)
	}
	if l.StartOffset() != 4 {
		t.Fatalf("StartOffset %d, want 4", l.StartOffset())
	}
	if _, err := l.Read(3, 100); !errors.Is(err, wal.ErrOffsetOutOfRange) {
		t.Fatalf("Read below start: %v", err)
	}
	if bs, err := l.Read(4, 1); err != nil || len(bs) != 1 {
		t.Fatalf("Read(4) = %v, %v", bs, err)
	} else {
		sameBatch(t, bs[0], want[4])
	}
	// Reopen: segment timestamps come back from the index end markers.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, cfs, "/p", opts)
	defer l.Close()
	if l.StartOffset() != 4 || l.NextOffset() != 10 {
		t.Fatalf("after reopen [%d,%d), want [4,10)", l.StartOffset(), l.NextOffset())
	}
	now = time.UnixMilli(1_006_500)
	if n, err := l.Retain(2000, -1); err != nil || n != 1 {
		t.Fatalf("Retain by time after reopen = %d, %v; want 1", n, err)
	}
	// Size: 5 segments of 1032 bytes left (5..9). retention.bytes 2064: delete the oldest while
	// the rest is still >= 2064 -> 3 go, 2 stay (9 is active).
	if n, err := l.Retain(-1, 2*1032); err != nil || n != 3 {
		t.Fatalf("Retain by size = %d, %v; want 3", n, err)
	}
	if l.StartOffset() != 8 || l.Size() != 2*1032 {
		t.Fatalf("StartOffset %d Size %d, want 8 and %d", l.StartOffset(), l.Size(), 2*1032)
	}
	// The active segment is never deleted, whatever the limits.
	now = time.UnixMilli(9_999_999_999)
	if n, err := l.Retain(0, 0); err != nil || n != 1 {
		t.Fatalf("Retain(0,0) = %d, %v; want 1", n, err)
	}
	if l.StartOffset() != 9 || len(cfs.FilesWithSuffix(".log")) != 1 || len(cfs.FilesWithSuffix(".index")) != 1 {
		t.Fatalf("StartOffset %d, files %v", l.StartOffset(), cfs.Files())
	}
	bs, err := l.Read(9, 1)
	if err != nil || len(bs) != 1 {
		t.Fatalf("Read(9) = %v, %v", bs, err)
	}
	sameBatch(t, bs[0], want[9])
}

// TestOffsetForTimestamp compares against a brute-force search over the model, with
// non-monotonic timestamps, across segments, before and after a reopen.
func TestOffsetForTimestamp(t *testing.T) {
	cfs := waltest.NewCrashFS()
	opts := wal.Options{FS: cfs, SegmentBytes: 3000, IndexIntervalBytes: 300}
	l := mustOpen(t, cfs, "/p", opts)
	if _, ok, err := l.OffsetForTimestamp(0); ok || err != nil {
		t.Fatalf("empty log: ok=%v err=%v", ok, err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	var want []wal.Batch
	ts := int64(10_000)
	for i := range 300 {
		ts += int64(r.IntN(50)) - 15
		data := payload(int64(i), 10+r.IntN(90))
		base, err := l.Append(data, int32(1+r.IntN(3)), ts)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, wal.Batch{BaseOffset: base, MaxTimestamp: ts})
	}
	check := func() {
		t.Helper()
		lo, hi := want[0].MaxTimestamp-10, want[len(want)-1].MaxTimestamp+10
		for q := lo; q <= hi+30; q += 3 {
			wantOff, wantOK := int64(0), false
			for _, e := range want {
				if e.MaxTimestamp >= q {
					wantOff, wantOK = e.BaseOffset, true
					break
				}
			}
			got, ok, err := l.OffsetForTimestamp(q)
			if err != nil || ok != wantOK || got != wantOff {
				t.Fatalf("OffsetForTimestamp(%d) = %d, %v, %v; want %d, %v", q, got, ok, err, wantOff, wantOK)
			}
		}
	}
	check()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, cfs, "/p", opts)
	defer l.Close()
	check()
}

// TestStickySyncError: after a failed fsync the log refuses writes; reopening recovers what
// was durable.
func TestStickySyncError(t *testing.T) {
	cfs := waltest.NewCrashFS()
	l := mustOpen(t, cfs, "/p", wal.Options{})
	want := fill(t, l, 5, 50, 0)
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	cfs.SetSyncError(boom)
	fill(t, l, 3, 50, 0)
	if err := l.Sync(l.NextOffset()); !errors.Is(err, boom) {
		t.Fatalf("Sync = %v, want %v", err, boom)
	}
	if _, err := l.Append([]byte("x"), 1, 0); !errors.Is(err, boom) {
		t.Fatalf("Append after failed fsync = %v, want the sticky error", err)
	}
	if err := l.Sync(l.NextOffset()); !errors.Is(err, boom) {
		t.Fatalf("second Sync = %v", err)
	}
	if l.SyncedOffset() != 10 {
		t.Fatalf("SyncedOffset %d, want 10", l.SyncedOffset())
	}
	// Reads still work.
	if bs, err := l.Read(0, 1); err != nil || len(bs) != 1 {
		t.Fatalf("Read after failure: %v %v", bs, err)
	}
	l.Close()
	cfs.SetSyncError(nil)
	cfs.Crash()
	l = mustOpen(t, cfs, "/p", wal.Options{})
	defer l.Close()
	sameBatches(t, "after recovery", readAll(t, l), want)
}

// TestStampAndEntrySizes: Stamp sees the assigned base offset before the bytes are written;
// entries larger than the write buffer and than a segment work; bad arguments are refused.
func TestStampAndEntrySizes(t *testing.T) {
	cfs := waltest.NewCrashFS()
	opts := wal.Options{SegmentBytes: 1 << 20, Stamp: func(b []byte, base int64) {
		if len(b) >= 8 {
			binary.BigEndian.PutUint64(b, uint64(base))
		}
	}}
	l := mustOpen(t, cfs, "/p", opts)
	sizes := []int{8, 3 << 20, 100, 2<<20 + 5, 0, 64}
	for _, n := range sizes {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i)
		}
		if _, err := l.Append(data, 3, 1); err != nil {
			t.Fatal(err)
		}
	}
	check := func() {
		t.Helper()
		got := readAll(t, l)
		if len(got) != len(sizes) {
			t.Fatalf("%d entries, want %d", len(got), len(sizes))
		}
		for i, b := range got {
			if len(b.Data) != sizes[i] || b.BaseOffset != int64(3*i) || b.LastOffset != int64(3*i+2) {
				t.Fatalf("entry %d: base %d last %d len %d", i, b.BaseOffset, b.LastOffset, len(b.Data))
			}
			if len(b.Data) >= 8 {
				if got := int64(binary.BigEndian.Uint64(b.Data)); got != b.BaseOffset {
					t.Fatalf("entry %d: stamped %d, want %d", i, got, b.BaseOffset)
				}
				for j := 8; j < len(b.Data); j++ {
					if b.Data[j] != byte(j) {
						t.Fatalf("entry %d byte %d corrupted", i, j)
					}
				}
			}
		}
		// KIP-74: a small maxBytes still returns the first (large) entry, and only it.
		bs, err := l.Read(3, 10)
		if err != nil || len(bs) != 1 || len(bs[0].Data) != 3<<20 {
			t.Fatalf("Read(3, 10): %d entries, %v", len(bs), err)
		}
	}
	check()
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	cfs.Crash()
	l = mustOpen(t, cfs, "/p", opts)
	defer l.Close()
	check()

	if _, err := l.Append(nil, 0, 0); !errors.Is(err, wal.ErrBadCount) {
		t.Fatalf("count 0: %v", err)
	}
	if _, err := wal.Open("/q", wal.Options{FS: cfs, SegmentBytes: 3 << 30}); err == nil {
		t.Fatal("SegmentBytes 3 GiB accepted")
	}
}

// TestReadMaxBytes: entries are whole, stop before exceeding maxBytes, and may cross segments.
func TestReadMaxBytes(t *testing.T) {
	cfs := waltest.NewCrashFS()
	l := mustOpen(t, cfs, "/p", wal.Options{FS: cfs, SegmentBytes: 500})
	defer l.Close()
	want := fill(t, l, 20, 100, 0) // 132 bytes framed: 3 per segment
	bs, err := l.Read(want[2].BaseOffset, 350)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 3 {
		t.Fatalf("Read(.., 350) = %d entries, want 3 (300 bytes; a 4th would exceed)", len(bs))
	}
	for i, b := range bs {
		sameBatch(t, b, want[2+i])
	}
	bs, err = l.Read(want[2].BaseOffset, 1<<20)
	if err != nil || len(bs) != 18 {
		t.Fatalf("Read everything: %d entries, %v", len(bs), err)
	}
}

// TestRemove deletes the partition directory.
func TestRemove(t *testing.T) {
	cfs := waltest.NewCrashFS()
	l := mustOpen(t, cfs, "/t/p0", wal.Options{SegmentBytes: 300})
	fill(t, l, 10, 100, 0)
	if err := l.Remove(); err != nil {
		t.Fatal(err)
	}
	if f := cfs.Files(); len(f) != 0 {
		t.Fatalf("files left: %v", f)
	}
	if _, err := l.Read(0, 1); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Read after Remove: %v", err)
	}
	cfs.Crash()
	if names, _ := cfs.ReadDir("/t"); len(names) != 0 {
		t.Fatalf("after crash: %v", names)
	}
}

// TestOSFS runs a short append/sync/reopen cycle on the real disk, including a torn tail
// written by hand and a stray index file.
func TestOSFS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p0")
	opts := wal.Options{SegmentBytes: 4096, IndexIntervalBytes: 512}
	l, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := fill(t, l, 100, 100, 0)
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := os.ReadDir(dir)
	last := ""
	for _, n := range names {
		if strings.HasSuffix(n.Name(), ".log") {
			last = n.Name()
		}
	}
	// Torn tail: half an entry of garbage; an orphaned index of a deleted segment.
	f, err := os.OpenFile(filepath.Join(dir, last), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte{0xAB}, 50))
	f.Close()
	os.WriteFile(filepath.Join(dir, "00000000000000099999.index"), []byte("junk"), 0o644)

	l, err = wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sameBatches(t, "read", readAll(t, l), want)
	if _, err := os.Stat(filepath.Join(dir, "00000000000000099999.index")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("orphan index not removed: %v", err)
	}
}

// TestCrashRecoveryBoundedByRecoveryPoint: with regular Syncs, a crash in the middle of a large
// active segment costs a scan from the last recovery point (written every 16 MiB of log), not
// of the whole segment.
func TestCrashRecoveryBoundedByRecoveryPoint(t *testing.T) {
	cfs := waltest.NewCrashFS()
	opts := wal.Options{FS: cfs} // 1 GiB segments: everything stays in the active segment
	l := mustOpen(t, cfs, "/p", opts)
	data := make([]byte, 64<<10)
	const n = 640 // 40 MiB
	for i := range n {
		off, err := l.Append(data, 1, int64(i))
		if err == nil {
			err = l.Sync(off + 1)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	total := l.Size()
	cfs.Crash()
	cfs.ResetStats()
	l = mustOpen(t, cfs, "/p", opts)
	defer l.Close()
	rd := cfs.Stats().BytesRead
	t.Logf("crash recovery of a %d-byte active segment read %d bytes", total, rd)
	if rd > 17<<20 {
		t.Fatalf("recovery read %d bytes of %d", rd, total)
	}
	if l.NextOffset() != n {
		t.Fatalf("NextOffset %d, want %d", l.NextOffset(), n)
	}
}

// TestAppendAllocs: the append path allocates nothing per entry in steady state (buffer and
// index growth are amortised).
func TestAppendAllocs(t *testing.T) {
	l, err := wal.Open(filepath.Join(t.TempDir(), "p"), wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	data := make([]byte, 16<<10)
	for range 200 { // warm up: buffer at full size
		l.Append(data, 16, 0)
	}
	if a := testing.AllocsPerRun(500, func() {
		if _, err := l.Append(data, 16, 0); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("%v allocations per Append", a)
	}
}

// TestStickyWriteError: a failed flush makes the log refuse writes; reads serve what reached
// the file and never report the lost buffer as corruption.
func TestStickyWriteError(t *testing.T) {
	cfs := waltest.NewCrashFS()
	l := mustOpen(t, cfs, "/p", wal.Options{})
	want := fill(t, l, 5, 50, 0)
	if _, err := l.Read(0, 1); err != nil { // hands the first five to the file
		t.Fatal(err)
	}
	fill(t, l, 3, 50, 0) // buffered only
	boom := errors.New("EIO")
	cfs.SetWriteError(boom)
	if err := l.Sync(l.NextOffset()); !errors.Is(err, boom) {
		t.Fatalf("Sync = %v, want %v", err, boom)
	}
	if _, err := l.Append([]byte("x"), 1, 0); !errors.Is(err, boom) {
		t.Fatalf("Append = %v, want the sticky error", err)
	}
	bs, err := l.Read(0, 1<<20)
	if err != nil || len(bs) != len(want) {
		t.Fatalf("Read = %d entries, %v; want %d", len(bs), err, len(want))
	}
	for i := range want {
		sameBatch(t, bs[i], want[i])
	}
	if bs, err := l.Read(want[4].LastOffset+1, 100); err != nil || len(bs) != 0 {
		t.Fatalf("Read of the lost buffer = %v, %v; want nothing", bs, err)
	}
	cfs.SetWriteError(nil)
	if err := l.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close = %v, want the sticky error", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestFsyncgateStandalone: after a failed fsync with Linux semantics (the failed pages stay
// in the page cache but are no longer dirty, so a retried fsync succeeds without writing
// them), neither an in-process reopen nor a crash serves the entries that were never durable
// as if they were.
func TestFsyncgateStandalone(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprint("crash=", crash), func(t *testing.T) {
			cfs := waltest.NewCrashFS()
			l := mustOpen(t, cfs, "/p", wal.Options{})
			want := fill(t, l, 5, 50, 0)
			if err := l.Sync(l.NextOffset()); err != nil {
				t.Fatal(err)
			}
			fill(t, l, 3, 50, 0)
			cfs.FailSyncs(1, errors.New("EIO"))
			if err := l.Sync(l.NextOffset()); err == nil {
				t.Fatal("Sync succeeded over a failed fsync")
			}
			if err := l.Close(); err == nil {
				t.Fatal("Close of a failed log returned nil")
			}
			if crash {
				cfs.Crash()
			}
			l = mustOpen(t, cfs, "/p", wal.Options{})
			got := readAll(t, l)
			l.Close()
			cfs.Crash()
			l = mustOpen(t, cfs, "/p", wal.Options{})
			defer l.Close()
			after := readAll(t, l)
			if len(got) != len(want) || len(after) != len(want) {
				t.Fatalf("served %d entries after the failed fsync, %d after a power cut; %d were durable", len(got), len(after), len(want))
			}
			for i := range want {
				sameBatch(t, after[i], want[i])
			}
		})
	}
}
