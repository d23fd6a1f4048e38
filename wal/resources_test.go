package wal_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
)

// noSyncFS is the real disk with fsync turned off.
type noSyncFS struct{ wal.FS }

type noSyncFile struct{ wal.File }

func (noSyncFile) Sync() error { return nil }

func (n noSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	f, err := n.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (noSyncFS) SyncDir(string) error { return nil }

// openFDs counts this process's open descriptors (-1 where /proc is missing).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestStoreManyLogsBoundedResources (issue #14 item 2): partition logs on the real disk, each
// written to and synced, then idle: descriptors stay within MaxOpenFiles, an idle log costs
// at most 8 KB of heap and no goroutine. The default suite opens 1,000 logs (about 10 s on a
// loaded 2-core machine); WAL_LOGS=10000 runs the 10,000 (about a minute).
func TestStoreManyLogsBoundedResources(t *testing.T) {
	logs, maxFiles := 1_000, 256
	if v := os.Getenv("WAL_LOGS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("WAL_LOGS: %v", err)
		}
		logs = n
	}
	root := t.TempDir()
	// The real disk's descriptors and memory, without waiting for 50,000 fsyncs: what is
	// measured here is what an idle log holds.
	s, err := wal.OpenStore(root, wal.StoreOptions{FS: noSyncFS{wal.OSFS()}, MaxOpenFiles: maxFiles, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fds0, goroutines0 := openFDs(), runtime.NumGoroutine()
	heap0 := heapAlloc()
	ls := make([]*wal.Log, logs)
	for i := range ls {
		l, err := s.OpenLog(filepath.Join(root, "topics", fmt.Sprintf("t-%d", i/1000), fmt.Sprint(i%1000)), wal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
		if _, err := l.Append(payload(int64(i), 100), 1, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range ls {
		if err := l.Sync(l.NextOffset()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Checkpoint(); err != nil { // every log is idle from here on
		t.Fatal(err)
	}
	perLog := (int64(heapAlloc()) - int64(heap0)) / int64(logs)
	fds := openFDs()
	st := s.Stats()
	t.Logf("%d logs: %d B heap per idle log, %d descriptors (%d before; cap %d; store holds %d, %d reopens)",
		logs, perLog, fds, fds0, maxFiles, st.OpenFiles, st.Reopens)
	if perLog > 8<<10 {
		t.Errorf("an idle log costs %d B of heap, want <= 8 KB", perLog)
	}
	if st.OpenFiles > maxFiles {
		t.Errorf("store holds %d descriptors, cap %d", st.OpenFiles, maxFiles)
	}
	if fds0 >= 0 && fds-fds0 > maxFiles {
		t.Errorf("%d more descriptors open with %d logs, cap %d", fds-fds0, logs, maxFiles)
	}
	if g := runtime.NumGoroutine(); g > goroutines0 {
		t.Errorf("%d goroutines with %d idle logs, %d before", g, logs, goroutines0)
	}
	// Everything still reads back through reopened files.
	for i, l := range ls {
		bs, err := l.Read(0, 1)
		if err != nil || len(bs) != 1 || bs[0].MaxTimestamp != int64(i) {
			t.Fatalf("log %d: Read = %v, %v", i, bs, err)
		}
	}
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	runtime.KeepAlive(ls)
}
