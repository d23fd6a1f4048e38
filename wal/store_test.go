package wal_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

const storeRoot = "/data"

func partDir(i int) string { return fmt.Sprintf("%s/topics/t/%d", storeRoot, i) }

func mustOpenStore(t testing.TB, fs wal.FS, opts wal.StoreOptions) *wal.Store {
	t.Helper()
	opts.FS = fs
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = -1 // tests checkpoint explicitly unless they say otherwise
	}
	s, err := wal.OpenStore(storeRoot, opts)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

// newCrashStore opens a Store with default options on a new CrashFS.
func newCrashStore(t testing.TB) (*waltest.CrashFS, *wal.Store) {
	t.Helper()
	fs := waltest.NewCrashFS()
	return fs, mustOpenStore(t, fs, wal.StoreOptions{})
}

func mustOpenLog(t testing.TB, s *wal.Store, dir string, opts wal.Options) *wal.Log {
	t.Helper()
	l, err := s.OpenLog(dir, opts)
	if err != nil {
		t.Fatalf("OpenLog %s: %v", dir, err)
	}
	return l
}

// reopenPart opens the store on fs again and partition i's log in it, as a restarted process
// would. Both stay open until the test ends (a crash test may cut the power under them and
// open a third instance); t.Cleanup closes them then.
func reopenPart(t testing.TB, fs wal.FS, i int) *wal.Log {
	t.Helper()
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	t.Cleanup(func() { s.Close() })
	l := mustOpenLog(t, s, partDir(i), wal.Options{})
	t.Cleanup(func() { l.Close() })
	return l
}

func appendOne(t testing.TB, l *wal.Log, m *model, i int, size int) {
	t.Helper()
	data := payload(int64(i), size)
	base, err := l.Append(data, int32(1+i%3), int64(i))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	m.entries = append(m.entries, wal.Batch{BaseOffset: base, LastOffset: base + int64(i%3), MaxTimestamp: int64(i), Data: data})
}

// appendSynced appends entries from to from+n-1 of size bytes to l (and m) and syncs them.
func appendSynced(t testing.TB, l *wal.Log, m *model, from, n, size int) {
	t.Helper()
	for i := range n {
		appendOne(t, l, m, from+i, size)
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
}

// TestStoreOneFsyncPerCommit: one Sync makes every partition's appends durable with one
// journal fsync, and no partition file is fsynced on the produce path.
func TestStoreOneFsyncPerCommit(t *testing.T) {
	fs := waltest.NewCrashFS()
	var commits, committed int // OnCommit's view, for metrics
	s := mustOpenStore(t, fs, wal.StoreOptions{OnCommit: func(_ time.Duration, bytes int) { commits++; committed += bytes }})
	const parts = 100
	logs := make([]*wal.Log, parts)
	models := make([]model, parts)
	for i := range logs {
		logs[i] = mustOpenLog(t, s, partDir(i), wal.Options{})
	}
	fs.ResetStats()
	before := s.Stats()
	for i, l := range logs {
		appendOne(t, l, &models[i], i, 100)
	}
	for _, l := range logs {
		if err := l.Sync(l.NextOffset()); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if got := st.Fsyncs - before.Fsyncs; got != 1 {
		t.Fatalf("%d journal fsyncs for one commit over %d partitions, want 1", got, parts)
	}
	if got := fs.Stats().Syncs; got != 1 {
		t.Fatalf("%d file fsyncs in all, want 1 (the journal's)", got)
	}
	if int64(commits) != st.Fsyncs || int64(committed) != st.JournalBytes || committed < parts*100 {
		t.Fatalf("OnCommit saw %d commits of %d bytes; the store counts %d fsyncs, %d journal bytes", commits, committed, st.Fsyncs, st.JournalBytes)
	}
	// Durable without any partition fsync: crash and recover from the journal.
	fs.Crash()
	s2 := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s2.Close()
	if got := s2.Stats().Replayed; got != parts {
		t.Fatalf("replayed %d entries, want %d", got, parts)
	}
	for i := range logs {
		l := mustOpenLog(t, s2, partDir(i), wal.Options{})
		models[i].verify(t, l)
		l.Close()
	}
}

// TestStoreConcurrentSyncsShareFsyncs: concurrent Syncs over many partitions share journal
// fsyncs (far fewer fsyncs than Sync calls).
func TestStoreConcurrentSyncsShareFsyncs(t *testing.T) {
	_, s := newCrashStore(t)
	defer s.Close()
	const parts, rounds = 50, 20
	logs := make([]*wal.Log, parts)
	for i := range logs {
		logs[i] = mustOpenLog(t, s, partDir(i), wal.Options{})
		defer logs[i].Close()
	}
	// Every round appends to all partitions first, then syncs them all concurrently: the
	// first Sync's commit covers every append of the round.
	before := s.Stats()
	for r := range rounds {
		for i, l := range logs {
			if _, err := l.Append(payload(int64(r*parts+i), 64), 1, 0); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, l := range logs {
			wg.Go(func() {
				if err := l.Sync(l.NextOffset()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	st := s.Stats()
	if got := st.Fsyncs - before.Fsyncs; got != rounds {
		t.Fatalf("%d journal fsyncs for %d rounds of %d partition Syncs, want one per round", got, rounds, parts)
	}
}

// TestStoreCheckpointDropsJournal: a checkpoint fsyncs the partitions, moves the journal
// checkpoint and deletes journal segments below it; recovery afterwards replays nothing
// that is older.
func TestStoreCheckpointDropsJournal(t *testing.T) {
	fs := waltest.NewCrashFS()
	s := mustOpenStore(t, fs, wal.StoreOptions{SegmentBytes: 4096})
	const parts = 4
	logs := make([]*wal.Log, parts)
	models := make([]model, parts)
	for i := range logs {
		logs[i] = mustOpenLog(t, s, partDir(i), wal.Options{SegmentBytes: 2048})
	}
	journals := func() int { return len(fs.FilesWithSuffix(".journal")) }
	for i := range 200 {
		l := logs[i%parts]
		appendOne(t, l, &models[i%parts], i, 50)
		if err := l.Sync(l.NextOffset()); err != nil {
			t.Fatal(err)
		}
	}
	if journals() < 3 {
		t.Fatalf("%d journal segments after ~20 KB with 4 KB segments", journals())
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if got := journals(); got != 1 {
		t.Fatalf("%d journal segments after a checkpoint, want only the active one", got)
	}
	appendSynced(t, logs[0], &models[0], 1000, 10, 50)
	fs.Crash()
	s2 := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s2.Close()
	if st := s2.Stats(); st.Replayed+st.Verified != 10 {
		t.Fatalf("recovery looked at %d+%d journal entries, want only the 10 after the checkpoint", st.Replayed, st.Verified)
	}
	for i := range logs {
		l := mustOpenLog(t, s2, partDir(i), wal.Options{SegmentBytes: 2048})
		models[i].verify(t, l)
		l.Close()
	}
}

// TestStoreBitFlipIsRepairedNotCut (issue #14 item 6): 1,000 synced entries, one bit flipped
// in entry 10 of the partition file. The per-partition log of the previous release cut the
// log there and handed offsets 10.. out again. With the journal the entry is repaired.
func TestStoreBitFlipIsRepairedNotCut(t *testing.T) {
	fs, s := newCrashStore(t)
	l := mustOpenLog(t, s, partDir(0), wal.Options{})
	var m model
	for i := range 1000 {
		data := payload(int64(i), 20)
		base, err := l.Append(data, 1, int64(i))
		if err != nil {
			t.Fatal(err)
		}
		m.entries = append(m.entries, wal.Batch{BaseOffset: base, LastOffset: base, MaxTimestamp: int64(i), Data: data})
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	// A flush hands the partition's buffered bytes to its file (page cache; Sync leaves them
	// buffered, the journal holds them), and here they reach the disk too.
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	seg := partDir(0) + "/00000000000000000000.log"
	f, _ := fs.OpenFile(seg, os.O_RDWR, 0)
	f.Sync()
	f.Close()
	fs.SyncDir(partDir(0)) // and the new file's directory entry (a member does not fsync it before a checkpoint)
	fs.Crash()             // kill -9 before any checkpoint
	entry := int64(wal.HeaderSizeForTest + 20)
	if err := fs.FlipBit(seg, (10*entry+wal.HeaderSizeForTest+3)*8); err != nil {
		t.Fatal(err)
	}
	l2 := reopenPart(t, fs, 0)
	if l2.NextOffset() != 1000 {
		t.Fatalf("NextOffset %d after a bit flip in entry 10, want 1000 (never reuse acknowledged offsets)", l2.NextOffset())
	}
	m.verify(t, l2)
}

// TestStoreBitFlipBelowCheckpointIsCorruption: once a checkpoint made the partition durable
// and the journal forgot the entries, a bit flip in them cannot be repaired: OpenLog fails
// with a corruption error and cuts nothing.
func TestStoreBitFlipBelowCheckpointIsCorruption(t *testing.T) {
	fs, s := newCrashStore(t)
	l := mustOpenLog(t, s, partDir(0), wal.Options{IndexIntervalBytes: 1 << 20})
	for i := range 100 {
		if _, err := l.Append(payload(int64(i), 20), 1, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	seg := partDir(0) + "/00000000000000000000.log"
	entry := int64(wal.HeaderSizeForTest + 20)
	if err := fs.FlipBit(seg, (10*entry+wal.HeaderSizeForTest+3)*8); err != nil {
		t.Fatal(err)
	}
	before, _ := fs.ReadFile(seg)
	s2 := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s2.Close()
	if l, err := s2.OpenLog(partDir(0), wal.Options{IndexIntervalBytes: 1 << 20}); !wal.IsCorruption(err) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("OpenLog = %v, want a corruption error", err)
	}
	if after, _ := fs.ReadFile(seg); len(after) != len(before) {
		t.Fatalf("OpenLog cut the damaged partition: %d -> %d bytes", len(before), len(after))
	}
}

// TestStoreJournalBitFlipBelowDurablePoint: damage inside a durable journal record (a later
// record proves the journal was fsynced past it) fails OpenStore instead of being cut as a
// torn tail.
func TestStoreJournalBitFlipBelowDurablePoint(t *testing.T) {
	fs, s := newCrashStore(t)
	l := mustOpenLog(t, s, partDir(0), wal.Options{})
	for i := range 20 {
		if _, err := l.Append(payload(int64(i), 30), 1, int64(i)); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(l.NextOffset()); err != nil {
			t.Fatal(err)
		}
	}
	fs.Crash()
	journal := fs.LastWithSuffix(".journal")
	if err := fs.FlipBit(journal, 100*8); err != nil { // inside the second record
		t.Fatal(err)
	}
	if s2, err := wal.OpenStore(storeRoot, wal.StoreOptions{FS: fs, CheckpointInterval: -1}); !wal.IsCorruption(err) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("OpenStore = %v, want a corruption error", err)
	}
}

// TestStoreFsyncgate: after a failed journal fsync (Linux semantics: the page cache keeps the
// bytes, a retried fsync succeeds without writing them), the Store fails stop, and neither an
// in-process reopen nor a crash brings the unacknowledged entries back as durable.
func TestStoreFsyncgate(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprint("crash=", crash), func(t *testing.T) {
			fs, s := newCrashStore(t)
			l := mustOpenLog(t, s, partDir(0), wal.Options{})
			var m model
			appendSynced(t, l, &m, 0, 5, 40)
			acked := len(m.entries)
			for i := range 5 {
				appendOne(t, l, &m, 100+i, 40)
			}
			fs.FailSyncs(1, errors.New("EIO"))
			if err := l.Sync(l.NextOffset()); err == nil {
				t.Fatal("Sync succeeded over a failed fsync")
			}
			// Fail-stop: no retry declares the lost bytes durable.
			if err := l.Sync(l.NextOffset()); err == nil {
				t.Fatal("a retried Sync succeeded after a failed fsync")
			}
			if _, err := l.Append(payload(7, 10), 1, 0); err == nil {
				t.Fatal("Append accepted after a failed fsync")
			}
			if err := l.Close(); err == nil {
				t.Fatal("Close of a log whose store failed returned nil")
			}
			if err := s.Close(); err == nil {
				t.Fatal("Close of a failed store returned nil")
			}
			if crash {
				fs.Crash()
			}
			l2 := reopenPart(t, fs, 0)
			m.entries = m.entries[:acked]
			m.verify(t, l2)
			// And what is there now is really durable.
			fs.Crash()
			l3 := reopenPart(t, fs, 0)
			m.verify(t, l3)
		})
	}
}

// TestStoreRemoveSkipsJournal: records of a removed log are skipped at replay.
func TestStoreRemoveSkipsJournal(t *testing.T) {
	fs, s := newCrashStore(t)
	a := mustOpenLog(t, s, partDir(0), wal.Options{})
	b := mustOpenLog(t, s, partDir(1), wal.Options{})
	var mb model
	for i := range 10 {
		if _, err := a.Append(payload(int64(i), 10), 1, 0); err != nil {
			t.Fatal(err)
		}
		appendOne(t, b, &mb, i, 10)
	}
	if err := b.Sync(b.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	s2 := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s2.Close()
	if slices.ContainsFunc(fs.Files(), func(f string) bool { return strings.HasPrefix(f, partDir(0)+"/") }) {
		t.Fatalf("replay recreated the removed log: %v", fs.Files())
	}
	l := mustOpenLog(t, s2, partDir(1), wal.Options{})
	defer l.Close()
	mb.verify(t, l)
}

// TestStoreOpenLogChecks: a log outside the root, or opened twice, is refused.
func TestStoreOpenLogChecks(t *testing.T) {
	_, s := newCrashStore(t)
	defer s.Close()
	if _, err := s.OpenLog("/elsewhere/p", wal.Options{}); err == nil {
		t.Fatal("OpenLog outside the store root succeeded")
	}
	if _, err := s.OpenLog(storeRoot+"/commitlog", wal.Options{}); err == nil {
		t.Fatal("OpenLog on the journal directory succeeded")
	}
	l := mustOpenLog(t, s, partDir(0), wal.Options{})
	defer l.Close()
	if _, err := s.OpenLog(partDir(0), wal.Options{}); err == nil {
		t.Fatal("second OpenLog of the same directory succeeded")
	}
}

// TestStoreOpensLegacyLayout: a data directory written by the per-partition layout of the
// previous release (testdata/legacy-v1, written with wal.Open) opens through a Store and
// serves its records; partition 1 was never closed, so its synced tail lies past its
// recovery point and must be kept.
func TestStoreOpensLegacyLayout(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", "legacy-v1"))); err != nil {
		t.Fatal(err)
	}
	s, err := wal.OpenStore(root, wal.StoreOptions{CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for p := range 2 {
		dir := filepath.Join(root, "topics", "t-00", fmt.Sprint(p))
		l, err := s.OpenLog(dir, wal.Options{SegmentBytes: 300, IndexIntervalBytes: 64})
		if err != nil {
			t.Fatal(err)
		}
		var m model
		for i := range 12 {
			data := []byte(fmt.Sprintf("legacy p%d entry %02d %s", p, i, string(make([]byte, i*3))))
			count := int64(1 + i%2)
			m.entries = append(m.entries, wal.Batch{BaseOffset: m.next(), LastOffset: m.next() + count - 1, MaxTimestamp: 1_700_000_000_000 + int64(i), Data: data})
		}
		m.verify(t, l)
		// And it takes new appends through the journal.
		if _, err := l.Append([]byte("new"), 1, 1); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(l.NextOffset()); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStoreCheckpointer: the background checkpointer runs on its injected ticker and stops
// with Close (goleak checks the goroutine is gone).
func TestStoreCheckpointer(t *testing.T) {
	fs := waltest.NewCrashFS()
	tick := make(chan time.Time)
	s := mustOpenStore(t, fs, wal.StoreOptions{
		CheckpointInterval: time.Hour,
		NewTicker:          func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} },
	})
	l := mustOpenLog(t, s, partDir(0), wal.Options{})
	if _, err := l.Append([]byte("x"), 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(1); err != nil {
		t.Fatal(err)
	}
	tick <- time.Time{} // received: the checkpointer is running it
	tick <- time.Time{} // received only after the first checkpoint finished
	if got := s.Stats().Checkpoints; got != 1 {
		t.Fatalf("%d checkpoints after two ticks with one dirty log, want 1 (the second found nothing)", got)
	}
	l.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestStoreRefusesJournalNameOutsideRoot: a journal record (with a valid CRC) naming a
// directory outside the store is corruption; replay writes nothing outside the root.
func TestStoreRefusesJournalNameOutsideRoot(t *testing.T) {
	fs, s := newCrashStore(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	journal := fs.LastWithSuffix(".journal")
	rec := wal.EncodeJournalRecordForTest(0, "../outside", []byte("x"), 0, 1, 0)
	if err := fs.WriteFile(journal, rec); err != nil {
		t.Fatal(err)
	}
	fs.MkdirAll("/outside", 0o755)
	if s2, err := wal.OpenStore(storeRoot, wal.StoreOptions{FS: fs, CheckpointInterval: -1}); !wal.IsCorruption(err) {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("OpenStore = %v, want a corruption error", err)
	}
	for _, f := range fs.Files() {
		if strings.HasPrefix(f, "/outside/") {
			t.Fatalf("replay wrote %s outside the store", f)
		}
	}
}

// TestStoreDiskFull: the disk fills up (a short journal write, then ENOSPC): the Store fails
// stop, nothing unacknowledged is served as durable afterwards, and everything acknowledged
// survives once there is space again.
func TestStoreDiskFull(t *testing.T) {
	fs, s := newCrashStore(t)
	l := mustOpenLog(t, s, partDir(0), wal.Options{})
	var m model
	appendSynced(t, l, &m, 0, 20, 100)
	acked := len(m.entries)
	fs.SetWriteLimit(300)
	var err error
	for i := 0; err == nil && i < 100; i++ {
		appendOne(t, l, &m, 100+i, 100)
		err = l.Sync(l.NextOffset())
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Sync on a full disk = %v, want ENOSPC", err)
	}
	if _, err := l.Append([]byte("x"), 1, 0); err == nil {
		t.Fatal("Append accepted after the journal failed")
	}
	l.Close()
	s.Close()
	fs.SetWriteLimit(-1)
	s2 := mustOpenStore(t, fs, wal.StoreOptions{})
	l2 := mustOpenLog(t, s2, partDir(0), wal.Options{})
	// Every Sync that succeeded before the disk filled up is there; of the rest, whatever is
	// served must survive a crash.
	got := readAll(t, l2)
	if len(got) < acked {
		t.Fatalf("%d entries after the disk filled up, %d were acknowledged", len(got), acked)
	}
	for i, b := range got {
		sameBatch(t, b, m.entries[i])
	}
	l2.Close()
	s2.Close()
	fs.Crash()
	l3 := reopenPart(t, fs, 0)
	if after := readAll(t, l3); len(after) != len(got) {
		t.Fatalf("%d entries served after the disk filled up, %d after a crash", len(got), len(after))
	}
}

// TestStoreFsyncgatePartition: a checkpoint's fsync of a partition file fails (Linux
// semantics: the page cache keeps the bytes, they are no longer dirty). The Store fails stop;
// an in-process reopen must not verify the journal against those cached bytes, fsync them
// "successfully" and let the journal forget them: after a later power cut every acknowledged
// entry is still there.
func TestStoreFsyncgatePartition(t *testing.T) {
	fs, s := newCrashStore(t)
	l := mustOpenLog(t, s, partDir(0), wal.Options{})
	var m model
	appendSynced(t, l, &m, 0, 30, 60)
	// The journal is durable already, so the checkpoint's first fsync is the partition's.
	fs.FailSyncs(1, errors.New("EIO"))
	if err := s.Checkpoint(); err == nil {
		t.Fatal("Checkpoint succeeded over a failed partition fsync")
	}
	if _, err := l.Append([]byte("x"), 1, 0); err == nil {
		t.Fatal("Append accepted after the store failed")
	}
	l.Close()
	s.Close()
	s2 := mustOpenStore(t, fs, wal.StoreOptions{}) // replays, fsyncs, checkpoints
	l2 := mustOpenLog(t, s2, partDir(0), wal.Options{})
	m.verify(t, l2)
	l2.Close()
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	s3 := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s3.Close()
	l3, err := s3.OpenLog(partDir(0), wal.Options{})
	if err != nil {
		t.Fatalf("OpenLog after a power cut: %v", err)
	}
	defer l3.Close()
	m.verify(t, l3)
}

// TestStoreNewLogCost: creating a LazyDir partition log through a Store costs no fsync and
// creates no file (its first checkpoint makes it durable), and its synced entry survives a
// crash right after.
func TestStoreNewLogCost(t *testing.T) {
	fs, s := newCrashStore(t)
	fs.ResetStats()
	l := mustOpenLog(t, s, partDir(0), wal.Options{LazyDir: true})
	st := fs.Stats()
	if n := st.Syncs + st.DirSyncs; n != 0 {
		t.Fatalf("creating a log took %d file and %d directory fsyncs, want none (its first checkpoint makes it durable)", st.Syncs, st.DirSyncs)
	}
	if files := fs.Files(); slices.ContainsFunc(files, func(f string) bool { return strings.HasPrefix(f, partDir(0)) }) {
		t.Fatalf("creating a log created files: %v", files)
	}
	var m model
	appendOne(t, l, &m, 1, 10)
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	l2 := reopenPart(t, fs, 0)
	m.verify(t, l2)
}

// TestStoreColdLogDropsSealedIndexes: a checkpoint drops the in-memory indexes of sealed
// segments of logs not appended to since the previous one; the next read reloads them from
// the index files and still finds every entry.
func TestStoreColdLogDropsSealedIndexes(t *testing.T) {
	fs, s := newCrashStore(t)
	defer s.Close()
	opts := wal.Options{SegmentBytes: 4096, IndexIntervalBytes: 256}
	l := mustOpenLog(t, s, partDir(0), opts)
	defer l.Close()
	var m model
	appendSynced(t, l, &m, 0, 200, 60)
	if l.Stats().Segments < 3 {
		t.Fatalf("%d segments, want several sealed ones", l.Stats().Segments)
	}
	// The active segment's file exists (before, reads would copy the buffer instead of
	// reading the file, and the byte counts below would differ for that reason).
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	readIndexBytes := func() int64 {
		fs.ResetStats()
		m.verify(t, l)
		return fs.Stats().BytesRead
	}
	first := readIndexBytes()              // loads what is not loaded yet
	warm := readIndexBytes()               // everything in memory: only entry bytes are read
	if err := s.Checkpoint(); err != nil { // l was dirty: indexes stay
		t.Fatal(err)
	}
	if got := readIndexBytes(); got != warm {
		t.Fatalf("read %d bytes after a checkpoint of a dirty log, %d warm", got, warm)
	}
	if err := s.Checkpoint(); err != nil { // l is cold now: sealed indexes are dropped
		t.Fatal(err)
	}
	if got := readIndexBytes(); got <= warm {
		t.Fatalf("read %d bytes after the log went cold, %d warm (first %d): indexes not reloaded", got, warm, first)
	}
}
