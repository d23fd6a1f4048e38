package wal_test

import (
	"errors"
	"path"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// newTopicFS returns a DirFaultFS in which the store root and the topic directory of partDir
// exist durably (the broker makes a topic's directory durable before its partitions).
func newTopicFS(t *testing.T) *waltest.DirFaultFS {
	t.Helper()
	fs := waltest.NewDirFaultFS()
	topic := path.Dir(partDir(0))
	if err := fs.MkdirAll(topic, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := topic; ; d = path.Dir(d) {
		if err := fs.SyncDir(path.Dir(d)); err != nil {
			t.Fatal(err)
		}
		if d == "/" || path.Dir(d) == "/" {
			break
		}
	}
	return fs
}

// openLogsAtOnce opens the logs of partitions 0..n-1 of s concurrently and runs then on each
// one opened; errs[i] is partition i's OpenLog error, else what then returned.
func openLogsAtOnce(s *wal.Store, n int, then func(i int, l *wal.Log) error) (errs []error) {
	errs = make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			l, err := s.OpenLog(partDir(i), wal.Options{})
			if err == nil {
				err = then(i, l)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errs
}

// TestStoreConcurrentNewLogsSurviveCrash: members created concurrently in one directory share
// the fsync of that directory, and each OpenLog still returns only once its own directory
// entry is durable: after a crash that loses every namespace change not fsynced, every log
// is there with its synced entry.
func TestStoreConcurrentNewLogsSurviveCrash(t *testing.T) {
	fs := newTopicFS(t)
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	const n = 12
	errs := openLogsAtOnce(s, n, func(i int, l *wal.Log) error {
		off, err := l.Append(payload(int64(i), 50), 1, int64(i))
		if err == nil {
			err = l.Sync(off + 1)
		}
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("partition %d: %v", i, err)
		}
	}
	fs.Crash() // kill -9 and power cut: no Close, pending directory changes are lost
	checkSyncedEntries(t, fs, n)
	t.Cleanup(func() { _ = s.Close() })
}

// TestStoreSharedParentSyncFailureFailsEveryOpen: when the shared fsync of the parent
// directory fails, every OpenLog waiting for it fails (none reports a log whose directory
// may not survive a crash).
func TestStoreSharedParentSyncFailureFailsEveryOpen(t *testing.T) {
	fs := newTopicFS(t)
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s.Close()
	eio := errors.New("EIO")
	topic := path.Dir(partDir(0))
	fs.SetDirSyncFault(func(dir string) error {
		if dir == topic {
			return eio
		}
		return nil
	})
	errs := openLogsAtOnce(s, 8, func(_ int, l *wal.Log) error {
		l.Close()
		return nil
	})
	for i, err := range errs {
		if !errors.Is(err, eio) {
			t.Errorf("partition %d: OpenLog error %v, want the parent directory's fsync error", i, err)
		}
	}
	if fs.DirSyncFailures() == 0 {
		t.Fatal("no failed directory fsync")
	}
}

// TestStoreParentSyncFailureFailsCheckpoint: new LazyDir members create no directory entry
// on the produce path; their first checkpoint makes their directories durable. When that fsync of the
// parent directory fails, the checkpoint fails the Store (the journal keeps their records),
// and after a crash that loses every namespace change not fsynced, every synced entry is
// there again.
func TestStoreParentSyncFailureFailsCheckpoint(t *testing.T) {
	fs := newTopicFS(t)
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	eio := errors.New("EIO")
	topic := path.Dir(partDir(0))
	const n = 8
	for i := range n {
		l := mustOpenLog(t, s, partDir(i), wal.Options{LazyDir: true})
		off, err := l.Append(payload(int64(i), 50), 1, int64(i))
		if err == nil {
			err = l.Sync(off + 1)
		}
		if err != nil {
			t.Fatalf("partition %d: %v", i, err)
		}
	}
	fs.SetDirSyncFault(func(dir string) error {
		if dir == topic {
			return eio
		}
		return nil
	})
	if err := s.Checkpoint(); !errors.Is(err, eio) {
		t.Fatalf("Checkpoint = %v, want the parent directory's fsync error", err)
	}
	if fs.DirSyncFailures() == 0 {
		t.Fatal("no failed directory fsync")
	}
	if _, err := s.OpenLog(partDir(n), wal.Options{}); !errors.Is(err, eio) {
		t.Fatalf("OpenLog after the failed checkpoint = %v, want the Store's error", err)
	}
	fs.SetDirSyncFault(nil)
	fs.Crash()
	checkSyncedEntries(t, fs, n)
}

// checkSyncedEntries reopens the store on fs after a crash and checks that each of the n
// partitions holds exactly its one synced entry (payload(i, 50)).
func checkSyncedEntries(t *testing.T, fs wal.FS, n int) {
	t.Helper()
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s.Close()
	for i := range n {
		l := mustOpenLog(t, s, partDir(i), wal.Options{})
		bs, err := l.Read(0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != 1 || string(bs[0].Data) != string(payload(int64(i), 50)) {
			t.Fatalf("partition %d after the crash: %d entries, want its synced entry", i, len(bs))
		}
		l.Close()
	}
}
