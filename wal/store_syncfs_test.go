package wal_test

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// cutSyncFS is a CrashFS whose filesystem sync number cutAt (counting from 1; 0: none) does not happen: only the files
// cutKeeps accepts reach the disk, and the power is cut.
type cutSyncFS struct {
	*waltest.CrashFS
	calls, cutAt int
	cutKeeps     func(name string) bool
}

func (f *cutSyncFS) OpenSyncer(dir string) (wal.Syncer, error) {
	sy, err := f.CrashFS.OpenSyncer(dir)
	if err != nil {
		return nil, err
	}
	return cutSyncer{Syncer: sy, f: f}, nil
}

type cutSyncer struct {
	wal.Syncer
	f *cutSyncFS
}

var errPowerCut = errors.New("power cut during syncfs")

func (s cutSyncer) Sync() error {
	s.f.calls++
	if s.f.calls == s.f.cutAt {
		s.f.SyncWhere(s.f.cutKeeps)
		s.f.Crash()
		return errPowerCut
	}
	return s.Syncer.Sync()
}

// A checkpoint that syncs the filesystem (SyncFSMinLogs) moves a log's recovery point only
// over bytes the first sync made durable: a power cut during the second sync that wrote the
// recovery points and nothing else (syncfs writes files in no promised order) loses no
// acknowledged entry and leaves no recovery point past the data. Without the first sync the
// recovered logs are shorter than their recovery points.
func TestStoreFilesystemSyncCheckpointOrder(t *testing.T) {
	for _, cut := range []int{1, 2} { // the second checkpoint's first or second sync
		t.Run(fmt.Sprintf("sync=%d", cut), func(t *testing.T) {
			fs := &cutSyncFS{CrashFS: waltest.NewCrashFS(),
				cutKeeps: func(name string) bool { return path.Base(name) == "recovery-point" }}
			opts := wal.StoreOptions{SyncFSMinLogs: 2, MaxOpenFiles: -1}
			const parts = 4
			models := make([]*storeModel, parts)
			logs := make([]*wal.Log, parts)
			s := mustOpenStore(t, fs, opts)
			for i := range models {
				models[i] = &storeModel{appended: map[int64]wal.Batch{}}
				logs[i] = mustOpenLog(t, s, partDir(i), wal.Options{})
			}
			write := func(round int) {
				for i, l := range logs {
					for n := range 10 {
						data := []byte(fmt.Sprintf("round %d p%d n%d", round, i, n))
						base, err := l.Append(data, 1, int64(n))
						if err != nil {
							t.Fatal(err)
						}
						models[i].appended[base] = wal.Batch{BaseOffset: base, LastOffset: base, MaxTimestamp: int64(n), Data: data}
						if err := l.Sync(base + 1); err != nil {
							t.Fatal(err)
						}
						models[i].acked = base + 1
					}
				}
			}
			write(0)
			if err := s.Checkpoint(); err != nil { // recovery points exist
				t.Fatal(err)
			}
			if st := s.Stats(); st.FilesystemSyncs == 0 || st.PartitionFsyncs != 0 {
				t.Fatalf("stats %+v: want the checkpoint done by filesystem syncs", st)
			}
			write(1)
			fs.cutAt = fs.calls + cut
			if err := s.Checkpoint(); !errors.Is(err, errPowerCut) {
				t.Fatalf("Checkpoint: %v, want the power cut", err)
			}
			fs.cutAt = 0
			s2 := mustOpenStore(t, fs.CrashFS, opts)
			defer s2.Close()
			for i := range models {
				l := mustOpenLog(t, s2, partDir(i), wal.Options{})
				verifyStoreModel(t, l, models[i], fmt.Sprintf("partition %d", i))
				l.Close()
			}
		})
	}
}

// On the real filesystem (syncfs(2) on Linux) a checkpoint of several logs is two filesystem
// syncs and no fsync of a log, and the logs reopen with their entries.
func TestStoreFilesystemSyncOnDisk(t *testing.T) {
	root := t.TempDir()
	opts := wal.StoreOptions{SyncFSMinLogs: 2, CheckpointInterval: -1}
	s, err := wal.OpenStore(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	const parts = 3
	var logs []*wal.Log
	for i := range parts {
		l, err := s.OpenLog(fmt.Sprintf("%s/t/%d", root, i), wal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
		base, err := l.Append([]byte(fmt.Sprint("entry ", i)), 1, 0)
		if err == nil {
			err = l.Sync(base + 1)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if _, ok := wal.OSFS().(wal.FilesystemSyncer); !ok {
		t.Skipf("no syncfs here: %+v", st)
	}
	if st.FilesystemSyncs != 2 || st.PartitionFsyncs != 0 {
		t.Fatalf("stats %+v: want two filesystem syncs and no partition fsync", st)
	}
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = wal.OpenStore(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range parts {
		l, err := s.OpenLog(fmt.Sprintf("%s/t/%d", root, i), wal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		bs, err := l.Read(0, 1<<20)
		if err != nil || len(bs) != 1 || string(bs[0].Data) != fmt.Sprint("entry ", i) {
			t.Fatalf("log %d after reopen: %v, %v", i, bs, err)
		}
		l.Close()
	}
}

// wbFS is a CrashFS whose files can be written back (as sync_file_range(2) does: nothing
// durable); failWB makes WriteBack of a segment file fail.
type wbFS struct {
	*waltest.CrashFS
	mu     sync.Mutex
	wb     map[string]int
	failWB error
}

func (f *wbFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	file, err := f.CrashFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &wbFile{File: file, fs: f, name: name}, nil
}

type wbFile struct {
	wal.File
	fs   *wbFS
	name string
}

func (w *wbFile) WriteBack() error {
	w.fs.mu.Lock()
	defer w.fs.mu.Unlock()
	w.fs.wb[w.name]++
	return w.fs.failWB
}

// A checkpoint that syncs the filesystem first writes back every dirty log's segment file
// (through the descriptor cap's lazy files too), and a failed write-back fails the
// checkpoint and the Store as a failed fsync would: nothing acknowledged is lost.
func TestStoreFilesystemSyncWritesBackSegments(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			fs := &wbFS{CrashFS: waltest.NewCrashFS(), wb: map[string]int{}}
			opts := wal.StoreOptions{SyncFSMinLogs: 2, MaxOpenFiles: 16}
			s := mustOpenStore(t, fs, opts)
			const parts = 4
			models := make([]*storeModel, parts)
			for i := range models {
				models[i] = &storeModel{appended: map[int64]wal.Batch{}}
				l := mustOpenLog(t, s, partDir(i), wal.Options{})
				data := []byte(fmt.Sprint("entry ", i))
				base, err := l.Append(data, 1, 0)
				if err == nil {
					err = l.Sync(base + 1)
				}
				if err != nil {
					t.Fatal(err)
				}
				models[i].appended[base] = wal.Batch{BaseOffset: base, LastOffset: base, Data: data}
				models[i].acked = base + 1
			}
			if fail {
				fs.failWB = errors.New("EIO")
			}
			err := s.Checkpoint()
			if fail != (err != nil) || fail != (s.Err() != nil) {
				t.Fatalf("Checkpoint: %v, Store: %v (write-back failing: %v)", err, s.Err(), fail)
			}
			fs.mu.Lock()
			for i := range parts {
				n := 0
				for name, c := range fs.wb {
					if strings.HasPrefix(name, partDir(i)+"/") && strings.HasSuffix(name, ".log") {
						n += c
					}
				}
				if n != 1 {
					t.Errorf("partition %d: %d segment write-backs, want 1 (%v)", i, n, fs.wb)
				}
			}
			fs.mu.Unlock()
			fs.Crash()
			fs.failWB = nil
			s2 := mustOpenStore(t, fs, opts)
			defer s2.Close()
			for i := range models {
				l := mustOpenLog(t, s2, partDir(i), wal.Options{})
				verifyStoreModel(t, l, models[i], fmt.Sprintf("partition %d", i))
				l.Close()
			}
		})
	}
}
