package wal_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// TestStoreNewMemberFiles: a new member's first write creates no directory or file and fsyncs
// nothing (the journal holds the entry); its first checkpoint creates the directory, the
// segment file and the recovery point; its index files appear once the active segment
// reaches 1 MiB.
func TestStoreNewMemberFiles(t *testing.T) {
	fs, s := newCrashStore(t)
	defer s.Close()
	dir := partDir(0)
	syncsBefore := fs.Stats().DirSyncs
	l := mustOpenLog(t, s, dir, wal.Options{LazyDir: true})
	defer l.Close()
	if _, err := l.Append(payload(0, 100), 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if got := fs.Stats().DirSyncs - syncsBefore; got != 0 {
		t.Errorf("a new member's first write cost %d directory fsyncs, want none", got)
	}
	files := func() []string {
		var out []string
		for _, f := range fs.Files() {
			if path.Dir(f) == dir {
				out = append(out, path.Base(f))
			}
		}
		slices.Sort(out)
		return out
	}
	// A read is served from a copy of the write buffer: it creates no file either.
	bs, err := l.Read(0, 1<<20)
	if err != nil || len(bs) != 1 || !bytes.Equal(bs[0].Data, payload(0, 100)) {
		t.Fatalf("Read before any file exists: %v %v", bs, err)
	}
	if _, err := l.Append(payload(1, 100), 1, 0); err != nil {
		t.Fatal(err)
	}
	if bs, err := l.Read(1, 1<<20); err != nil || len(bs) != 1 || !bytes.Equal(bs[0].Data, payload(1, 100)) {
		t.Fatalf("Read of a later append: %v %v", bs, err)
	}
	if got := files(); len(got) != 0 {
		t.Fatalf("files after the first write and reads: %v, want none (the journal holds the entries)", got)
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if got, want := files(), []string{"00000000000000000000.log", "recovery-point"}; !slices.Equal(got, want) {
		t.Fatalf("files after the first checkpoint: %v, want %v", got, want)
	}
	for i := range 20 {
		if _, err := l.Append(payload(int64(i), 60<<10), 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	want := []string{"00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex", "recovery-point"}
	if got := files(); !slices.Equal(got, want) {
		t.Fatalf("files past 1 MiB: %v, want %v", got, want)
	}
}

// TestStoreLazyFilesSurviveCrashes: members are created in every cycle, written with small
// and large entries (so index files are created lazily, and segments roll), synced and
// checkpointed at random, and the filesystem then crashes with the directory-operation failure
// model (every namespace change not fsynced may be lost, reordered): every acknowledged entry
// is there after recovery, exactly once, and nothing that was never appended.
func TestStoreLazyFilesSurviveCrashes(t *testing.T) {
	runSeeds(t, 6, lazyFilesCrash)
}

func lazyFilesCrash(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x1a27))
	fs := newTopicFS(t)
	logOpts := wal.Options{SegmentBytes: 3 << 20, IndexIntervalBytes: 4096}
	if seed%3 == 0 {
		logOpts.SegmentBytes = 256 << 10 // rolls: sealed segments get their index files then
	}
	logOpts.LazyDir = seed%4 != 0
	storeOpts := wal.StoreOptions{Replay: logOpts}
	if seed%2 == 1 {
		storeOpts.MaxOpenFiles = 8
	}
	if seed%5 < 3 {
		// Small journal segments: rolls, and checkpoints retiring segments as spares that
		// later rolls rename back, under lost and reordered directory operations.
		storeOpts.SegmentBytes = 4096
	}
	if seed%3 == 1 {
		// Checkpoints sync the whole filesystem (syncfs), which makes every pending
		// directory change durable too, instead of fsyncing each log and directory.
		storeOpts.SyncFSMinLogs = 1
	}
	var fsSyncs int64
	models := map[int]*storeModel{}
	removed := map[int]bool{}
	var recycled int64
	const cycles = 4
	for cycle := range cycles {
		s := mustOpenStore(t, fs, storeOpts)
		logs := map[int]*wal.Log{}
		for p, m := range models {
			logs[p] = mustOpenLog(t, s, partDir(p), logOpts)
			verifyStoreModel(t, logs[p], m, fmt.Sprintf("seed %d cycle %d partition %d", seed, cycle, p))
		}
		// Two new partitions per cycle.
		for p := 2 * cycle; p < 2*cycle+2; p++ {
			models[p] = &storeModel{appended: map[int64]wal.Batch{}}
			logs[p] = mustOpenLog(t, s, partDir(p), logOpts)
		}
		ops := 20 + r.IntN(60)
		for n := range ops {
			p := r.IntN(2 * (cycle + 1))
			if removed[p] {
				continue
			}
			l, m := logs[p], models[p]
			size := 50 + r.IntN(400)
			if r.IntN(4) == 0 {
				size = 40<<10 + r.IntN(60<<10) // direct writes, past 1 MiB soon
			}
			data := append([]byte(fmt.Sprintf("c%d n%d p%d|", cycle, n, p)), bytes.Repeat([]byte{byte(n)}, size)...)
			base, err := l.Append(data, 1, int64(n))
			if err != nil {
				t.Fatal(err)
			}
			m.appended[base] = wal.Batch{BaseOffset: base, LastOffset: base, MaxTimestamp: int64(n), Data: data}
			if r.IntN(3) == 0 {
				if err := l.Sync(base + 1); err != nil {
					t.Fatal(err)
				}
				m.acked = base + 1
			}
			if r.IntN(15) == 0 {
				if err := s.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			if r.IntN(60) == 0 {
				// Topic deletion: the log and its directory go, and must not come back.
				if err := l.Remove(); err != nil {
					t.Fatal(err)
				}
				removed[p] = true
				delete(models, p)
				delete(logs, p)
				continue
			}
			if r.IntN(25) == 0 {
				// A clean close and reopen of one member in-process.
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				logs[p] = mustOpenLog(t, s, partDir(p), logOpts)
			}
		}
		recycled += s.Stats().SegmentsRecycled
		fsSyncs += s.Stats().FilesystemSyncs
		waltest.CrashAny(fs, r)
	}
	if storeOpts.SyncFSMinLogs == 1 && fsSyncs == 0 {
		t.Fatalf("seed %d: no checkpoint synced the filesystem", seed)
	}
	if storeOpts.SegmentBytes > 0 && recycled == 0 {
		t.Fatalf("seed %d: no journal segment was recycled", seed)
	}
	s := mustOpenStore(t, fs, storeOpts)
	defer s.Close()
	for p := range removed {
		for _, f := range fs.Files() {
			if strings.HasPrefix(f, partDir(p)+"/") {
				t.Fatalf("seed %d: removed partition %d came back: %s", seed, p, f)
			}
		}
	}
	for p, m := range models {
		l := mustOpenLog(t, s, partDir(p), logOpts)
		verifyStoreModel(t, l, m, fmt.Sprintf("seed %d final partition %d", seed, p))
		l.Close()
	}
}

// A crash before the first checkpoint of many new LazyDir members loses their directories;
// OpenStore recreates each from the journal and says so in one line, not one per partition.
func TestStoreRecreatedDirsLoggedOnce(t *testing.T) {
	fs := waltest.NewCrashFS()
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	const parts = 20
	for i := range parts {
		l := mustOpenLog(t, s, partDir(i), wal.Options{LazyDir: true})
		if _, err := l.Append(payload(int64(i), 100), 1, 0); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(l.NextOffset()); err != nil {
			t.Fatal(err)
		}
	}
	fs.Crash()
	var logBuf bytes.Buffer
	s2, err := wal.OpenStore(storeRoot, wal.StoreOptions{FS: fs, CheckpointInterval: -1,
		Logger: slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	out := logBuf.String()
	if n := strings.Count(out, "recreated log directories"); n != 1 || !strings.Contains(out, fmt.Sprintf("logs=%d", parts)) {
		t.Fatalf("want one line naming %d recreated directories, got:\n%s", parts, out)
	}
	if strings.Contains(out, "recreating a log directory") {
		t.Fatalf("a line per partition at info level:\n%s", out)
	}
	for i := range parts {
		l := mustOpenLog(t, s2, partDir(i), wal.Options{LazyDir: true})
		if bs, err := l.Read(0, 1<<20); err != nil || len(bs) != 1 || !bytes.Equal(bs[0].Data, payload(int64(i), 100)) {
			t.Fatalf("partition %d after the crash: %v %v", i, bs, err)
		}
		l.Close()
	}
}
