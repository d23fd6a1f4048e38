package group

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/meshkafka/meshkafka/broker/internal/brokertest"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// segLog is the first segment file of generation gen.
func segLog(dir string, gen uint64) string {
	return filepath.Join(genDir(dir, gen), "00000000000000000000.log")
}

func committedOffset(recs []Record, group string, p int32) int64 {
	for _, r := range stateOf(recs) {
		if r.Group == group && r.Partition == p {
			return r.Offset
		}
	}
	return -1
}

// journalFile is the (single) journal segment of the store in dir.
func journalFile(t *testing.T, fs *waltest.CrashFS, dir string) string {
	t.Helper()
	var found []string
	for _, f := range fs.Files() {
		if strings.HasPrefix(f, dir+"/commitlog/") && strings.HasSuffix(f, ".journal") {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		t.Fatalf("journal segments: %v", found)
	}
	return found[0]
}

// flipInRecordOf flips a bit in the data of the first journal record of generation gen.
func flipInRecordOf(t *testing.T, fs *waltest.CrashFS, dir string, gen uint64) {
	t.Helper()
	jf := journalFile(t, fs, dir)
	b, err := fs.ReadFile(jf)
	if err != nil {
		t.Fatal(err)
	}
	name := []byte(filepath.Base(genDir(dir, gen)))
	i := bytes.Index(b, name)
	if i < 0 {
		t.Fatalf("no record of generation %d in %s", gen, jf)
	}
	if err := fs.FlipBit(jf, int64(i+len(name)+2)*8); err != nil {
		t.Fatal(err)
	}
}

// A flipped bit in a generation's snapshot entry, after a crash (the entry is then only in
// the journal), must make Open refuse the store, not delete the generation and start empty.
func TestStoreRefusesDamagedSnapshot(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _ := mustOpen(t, fs)
	for i := range 200 {
		mustAppend(t, s, commitRec("g", "t", 0, int64(i)))
	}
	fs.Crash() // no Close
	flipInRecordOf(t, fs, "/g", 1)
	before := fs.Files()
	_, recs, err := OpenStore("/g", StoreOptions{FS: fs})
	if err == nil {
		t.Fatalf("open of a store whose snapshot is damaged succeeded with %d records (committed offset %d, was 199)",
			len(recs), committedOffset(recs, "g", 0))
	}
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("err = %v, want ErrDamaged", err)
	}
	if after := fs.Files(); !slices.Equal(before, after) {
		t.Fatalf("refused open changed the files:\nbefore %v\nafter  %v", before, after)
	}

}

// The same damage in the partition file after a clean Close (the snapshot entry is then
// below the log's recovery point) is refused too.
func TestStoreRefusesDamagedSnapshotAfterClose(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _ := mustOpen(t, fs)
	for i := range 200 {
		mustAppend(t, s, commitRec("g", "t", 0, int64(i)))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	if err := fs.FlipBit(segLog("/g", 1), 33*8+2); err != nil { // inside the snapshot entry's data
		t.Fatal(err)
	}
	_, recs, err := OpenStore("/g", StoreOptions{FS: fs})
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("err = %v (committed offset %d, was 199), want ErrDamaged", err, committedOffset(recs, "g", 0))
	}
}

// A flipped bit inside an acknowledged commit entry of the current generation, past the log's
// recovery point (the process was killed, the page cache kept everything): the entry is
// repaired from the journal, or the open is refused; the committed offset never silently
// goes back. (A standalone wal.Log took this for a torn tail and cut it: offset 9.)
func TestStoreFlippedCommitPastRecoveryPoint(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _ := mustOpen(t, fs)
	for i := range 200 {
		mustAppend(t, s, commitRec("g", "t", 0, int64(i)))
	}
	// kill -9: no Close. Entry 11 of the log (the commit of offset 10) gets a flipped bit.
	// A flush hands the log's buffered entries to its file (a synced append leaves them
	// buffered: the commit journal holds them), where the page cache keeps them.
	if err := s.log.Flush(); err != nil {
		t.Fatal(err)
	}
	pos := int64(32 + len(AppendEntry(nil, true, nil)))
	for i := range 10 {
		pos += int64(32 + len(AppendEntry(nil, false, []Record{commitRec("g", "t", 0, int64(i))})))
	}
	if err := fs.FlipBit(segLog("/g", 1), (pos+34)*8+3); err != nil {
		t.Fatal(err)
	}
	s2, recs, err := OpenStore("/g", StoreOptions{FS: fs})
	switch {
	case err == nil:
		defer s2.Close()
		if got := committedOffset(recs, "g", 0); got != 199 {
			t.Fatalf("committed offset after reopen = %d, want 199 (repaired) or a refused open", got)
		}
	case errors.Is(err, ErrDamaged):
		t.Logf("refused: %v", err)
	default:
		t.Fatalf("open: %v", err)
	}
	// The killed store is closed last (its files are the ones s2 repaired; its error is moot).
	t.Cleanup(func() { _ = s.Close() })
}

// A commit answered with an error (its fsync failed) is never reported committed later: not
// after an in-process reopen of the same files (Linux dropped the failed pages but the page
// cache still shows them), and not after a crash following that reopen.
func TestStoreFailedFsyncNeverCommittedLater(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _ := mustOpen(t, fs)
	mustAppend(t, s, commitRec("g", "t", 0, 4))
	fs.FailSyncs(1, syscall.EIO)
	if err := s.Append([]Record{commitRec("g", "t", 0, 199)}); err == nil {
		t.Fatal("append with a failing fsync succeeded")
	}
	_ = s.Close()
	for round, crash := range []bool{false, true} {
		if crash {
			fs.Crash()
		}
		s2, recs, err := OpenStore("/g", StoreOptions{FS: fs})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if got := committedOffset(recs, "g", 0); got != 4 {
			t.Fatalf("round %d (crash %v): committed offset = %d, want 4 (199 was answered with an error)", round, crash, got)
		}
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A compaction whose removal of the old generation was not durable leaves it behind after a
// crash. If the new generation is then damaged, Open must refuse rather than fall back to the
// old one (which would roll the committed offset back from 199 to 4).
func TestStoreNoFallbackToOlderGeneration(t *testing.T) {
	fs := waltest.NewDirFaultFS()
	if err := fs.MkdirAll("/g", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	s, _ := mustOpen(t, fs)
	mustAppend(t, s, commitRec("g", "t", 0, 4))
	// Fail the directory fsync that would make the old generation's removal durable.
	fs.SetDirSyncFault(func(dir string) error {
		names, _ := fs.CrashFS.ReadDir("/g")
		if dir == "/g" && !slices.Contains(names, filepath.Base(genDir("/g", 1))) {
			return syscall.EIO
		}
		return nil
	})
	_ = s.Compact([]Record{commitRec("g", "t", 0, 4)}) // the new generation is in use either way
	fs.SetDirSyncFault(nil)
	mustAppend(t, s, commitRec("g", "t", 0, 199))
	fs.Crash() // the removal of generation 1 is lost
	if names, _ := fs.ReadDir("/g"); !slices.Contains(names, filepath.Base(genDir("/g", 1))) {
		t.Fatalf("test setup: generation 1 not back after the crash: %v", names)
	}
	flipInRecordOf(t, fs.CrashFS, "/g", 2) // generation 2's snapshot entry
	_, recs, err := OpenStore("/g", StoreOptions{FS: fs})
	if err == nil {
		t.Fatalf("open succeeded with committed offset %d (was 199)", committedOffset(recs, "g", 0))
	}
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("err = %v, want ErrDamaged", err)
	}
}

// The generation CURRENT names is missing (its directory entry was lost or removed by hand):
// Open refuses instead of starting empty.
func TestStoreRefusesMissingGeneration(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _ := mustOpen(t, fs)
	mustAppend(t, s, commitRec("g", "t", 0, 7))
	s.Close()
	if err := fs.RemoveAll(genDir("/g", 1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenStore("/g", StoreOptions{FS: fs}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("err = %v, want ErrDamaged", err)
	}
}

// A directory written before the current-generation file existed (generations only) opens with
// the old rule: the newest generation with a complete snapshot wins.
func TestStoreOpensLegacyLayout(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _ := mustOpen(t, fs)
	want := []Record{commitRec("g", "t", 0, 5)}
	if err := s.Append(want); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := fs.Remove(filepath.Join("/g", currentFile)); err != nil {
		t.Fatal(err)
	}
	s2, got := mustOpen(t, fs)
	if !reflect.DeepEqual(stateOf(got), stateOf(want)) {
		t.Fatalf("got %+v", got)
	}
	mustAppend(t, s2, commitRec("g", "t", 0, 6))
	s2.Close()
	if _, got = mustOpen(t, fs); committedOffset(got, "g", 0) != 6 {
		t.Fatalf("reopen: offset %d", committedOffset(got, "g", 0))
	}
}

// A current-generation file whose outcome is unknown (its directory fsync failed) stops the
// store: later appends and compactions fail, and after a crash the store opens with every
// acknowledged commit whichever way the rename went.
func TestStoreFailStopsOnUnknownCurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 10 {
		fs := waltest.NewDirFaultFS()
		var stops []error
		s, _, err := OpenStore("/g", StoreOptions{FS: fs, OnStop: func(err error) { stops = append(stops, err) }})
		if err != nil {
			t.Fatal(err)
		}
		acked := []Record{commitRec("g", "t", 0, 10)}
		if err := s.Append(acked); err != nil {
			t.Fatal(err)
		}
		// Fail the directory fsync after the rename of the current-generation file.
		fs.SetDirSyncFault(func(dir string) error {
			cur, _ := fs.CrashFS.ReadFile(filepath.Join("/g", currentFile))
			if dir == "/g" && bytes.Equal(cur, encodeCurrent(2)) {
				return syscall.EIO
			}
			return nil
		})
		if err := s.Compact(stateOf(acked)); err == nil {
			t.Fatalf("round %d: compaction with an unknown outcome reported success", round)
		}
		fs.SetDirSyncFault(nil)
		if err := s.Append([]Record{commitRec("g", "t", 0, 11)}); !errors.Is(err, ErrStoreFailed) {
			t.Fatalf("round %d: append after unknown outcome: %v, want ErrStoreFailed", round, err)
		}
		if err := s.Compact(stateOf(acked)); !errors.Is(err, ErrStoreFailed) {
			t.Fatalf("round %d: compact after unknown outcome: %v, want ErrStoreFailed", round, err)
		}
		if len(stops) != 1 || !errors.Is(stops[0], ErrStoreFailed) {
			t.Fatalf("round %d: OnStop calls %v, want one with ErrStoreFailed", round, stops)
		}
		s.Close()
		fs.CrashTear(r)
		s2, got, err := OpenStore("/g", StoreOptions{FS: fs})
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		if !reflect.DeepEqual(stateOf(got), stateOf(acked)) {
			t.Fatalf("round %d: got %+v, want %+v", round, got, acked)
		}
		s2.Close()
	}
}

// Crash cycles on the directory-fault filesystem: appends and compactions with random
// directory-fsync failures and ENOSPC on create, then a crash that loses or keeps each
// unsynced directory operation. Every open succeeds (no false "damaged") with exactly the
// acknowledged commits, possibly plus the one batch whose append failed.
// DURABILITY_CHAOS_SEEDS=n runs it with n seeds (default 1).
func TestStoreCrashCyclesDirFaults(t *testing.T) {
	brokertest.ChaosSeeds(t, 1, storeCrashCycles)
}

func storeCrashCycles(t *testing.T, seed uint64) {
	cycles := 20
	if testing.Short() {
		cycles = 10
	}
	r := rand.New(rand.NewPCG(7, 9+seed)) // seed 0 must exercise every fault (checked below)
	fs := waltest.NewDirFaultFS()
	var acked []Record
	compactions, stopped := 0, 0
	for cycle := range cycles {
		fs.SetDirSyncFault(nil)
		fs.SetCreateFault(nil)
		s, got, err := OpenStore("/g", StoreOptions{FS: fs, CompactBytes: 1 << 10, SegmentBytes: 512})
		if err != nil {
			t.Fatalf("cycle %d: open: %v", cycle, err)
		}
		if !reflect.DeepEqual(stateOf(got), stateOf(acked)) {
			t.Fatalf("cycle %d: state after crash\ngot  %+v\nwant %+v", cycle, stateOf(got), stateOf(acked))
		}
		acked = stateOf(got)
		fault := func(string) error {
			if r.IntN(25) == 0 {
				return syscall.EIO
			}
			return nil
		}
		fs.SetDirSyncFault(fault)
		fs.SetCreateFault(func(string) error {
			if r.IntN(40) == 0 {
				return syscall.ENOSPC
			}
			return nil
		})
		for i := range 150 {
			rec := commitRec("g", "t", int32(i%3), int64(cycle*1000+i))
			if err := s.Append([]Record{rec}); err != nil {
				break // the store is failed (or the log is): stop, as the coordinator would
			}
			acked = append(acked, rec)
			if s.NeedsCompaction() {
				err := s.Compact(stateOf(acked))
				if err == nil {
					compactions++
				}
				if errors.Is(err, ErrStoreFailed) {
					stopped++
					break
				}
			}
		}
		s.Close()
		fs.CrashTear(r)
	}
	if seed == 0 && (compactions == 0 || stopped == 0 || fs.DirSyncFailures() == 0) { // other seeds may not
		t.Fatalf("cycles did not exercise the faults: %d compactions, %d stops, %d failed dir syncs",
			compactions, stopped, fs.DirSyncFailures())
	}
	t.Logf("%d compactions, %d stops, %d failed dir syncs", compactions, stopped, fs.DirSyncFailures())
	fs.SetDirSyncFault(nil)
	fs.SetCreateFault(nil)
	_, got, err := OpenStore("/g", StoreOptions{FS: fs})
	if err != nil || !reflect.DeepEqual(stateOf(got), stateOf(acked)) {
		t.Fatalf("final open: %v\ngot  %+v\nwant %+v", err, stateOf(got), stateOf(acked))
	}
}

// The store's own directory (and its parents) must be durable before a commit is acknowledged:
// a crash that loses every unsynced directory operation keeps the commit.
func TestStoreDirectoryDurable(t *testing.T) {
	fs := waltest.NewDirFaultFS()
	s, _, err := OpenStore("/data/groups", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, commitRec("g", "t", 0, 42))
	fs.Crash()
	_, got, err := OpenStore("/data/groups", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if off := committedOffset(got, "g", 0); off != 42 {
		t.Fatalf("committed offset after crash = %d, want 42", off)
	}
}

// genNames lists the generation directories in dir.
func genNames(fs wal.FS, dir string) []string {
	names, _ := fs.ReadDir(dir)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, logPrefix) {
			out = append(out, n)
		}
	}
	return out
}

// The current-generation file decoder never panics, accepts exactly what encodeCurrent
// writes (round trip) and refuses anything else.
func FuzzDecodeCurrent(f *testing.F) {
	f.Add(encodeCurrent(0))
	f.Add(encodeCurrent(7))
	f.Add([]byte("OG"))
	f.Fuzz(func(t *testing.T, b []byte) {
		gen, err := decodeCurrent(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeCurrent(gen), b) {
			t.Fatalf("accepted %x, which encodes as %x", b, encodeCurrent(gen))
		}
	})
}

func TestCurrentFileRejectsDamage(t *testing.T) {
	b := encodeCurrent(42)
	if g, err := decodeCurrent(b); err != nil || g != 42 {
		t.Fatalf("round trip: %d %v", g, err)
	}
	for bit := range len(b) * 8 {
		c := bytes.Clone(b)
		c[bit/8] ^= 1 << (bit % 8)
		if _, err := decodeCurrent(c); err == nil {
			t.Fatalf("bit %d flipped: accepted", bit)
		}
	}
	if _, err := decodeCurrent(b[:13]); err == nil {
		t.Fatal("short file accepted")
	}
}

// A damaged current-generation file is refused (ErrDamaged), not read as "new store".
func TestStoreRefusesDamagedCurrentFile(t *testing.T) {
	fs := waltest.NewCrashFS()
	s, _ := mustOpen(t, fs)
	s.Close()
	if err := fs.FlipBit(filepath.Join("/g", currentFile), 20); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenStore("/g", StoreOptions{FS: fs}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("err = %v, want ErrDamaged", err)
	}
}

// A groups directory written by the release before the commit journal (standalone wal.Log
// generations, with or without the current-generation file, no commitlog) opens with every
// commit, is migrated (the journal is created), and stays correct across a crash after that.
func TestStoreOpensStandaloneLayout(t *testing.T) {
	for _, withCurrent := range []bool{true, false} {
		fs := waltest.NewCrashFS()
		l, err := wal.Open(genDir("/g", 1), wal.Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(AppendEntry(nil, true, nil), 1, 0); err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			if _, err := l.Append(AppendEntry(nil, false, []Record{commitRec("g", "t", 0, int64(i))}), 1, 0); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Sync(l.NextOffset()); err != nil {
			t.Fatal(err)
		}
		if withCurrent {
			if err := fs.WriteFile("/g/"+currentFile, encodeCurrent(1)); err != nil {
				t.Fatal(err)
			}
		}
		fs.Crash() // power loss under the old release after its last commit was fsynced (l is abandoned)
		if slices.ContainsFunc(fs.Files(), func(f string) bool { return strings.Contains(f, "commitlog") }) {
			t.Fatal("test setup: the old layout has a journal")
		}
		s, got, err := OpenStore("/g", StoreOptions{FS: fs})
		if err != nil {
			t.Fatalf("current file %v: open: %v", withCurrent, err)
		}
		if off := committedOffset(got, "g", 0); off != 199 {
			t.Fatalf("current file %v: committed offset %d, want 199", withCurrent, off)
		}
		mustAppend(t, s, commitRec("g", "t", 0, 200))
		fs.Crash() // s is abandoned (TestMain stops its journal's checkpointer)
		s2, got, err := OpenStore("/g", StoreOptions{FS: fs})
		if err != nil {
			t.Fatalf("current file %v: reopen after migration and crash: %v", withCurrent, err)
		}
		if off := committedOffset(got, "g", 0); off != 200 {
			t.Fatalf("current file %v: committed offset after crash %d, want 200", withCurrent, off)
		}
		s2.Close()
	}
}
