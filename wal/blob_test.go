package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// Blobs: written, read back, listed, replaced, removed; they survive Reset, TruncateFrom and
// a reopen, and only Store members have them.
func TestBlobs(t *testing.T) {
	fs := waltest.NewCrashFS()
	solo := mustOpen(t, fs, "/solo", wal.Options{})
	if err := solo.WriteBlob(1, []byte("x")); !errors.Is(err, wal.ErrNotMember) {
		t.Fatalf("WriteBlob on a standalone log: %v", err)
	}
	if err := solo.Commit(); !errors.Is(err, wal.ErrNotMember) {
		t.Fatalf("Commit on a standalone log: %v", err)
	}
	solo.Close()
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	defer s.Close()
	m := mustOpenLog(t, s, partDir(0), wal.Options{LazyDir: true})
	if ids, err := m.Blobs(); err != nil || len(ids) != 0 {
		t.Fatalf("blobs of a new log: %v %v", ids, err)
	}
	if _, err := m.ReadBlob(3); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("ReadBlob of a missing blob: %v", err)
	}
	big := bytes.Repeat([]byte("0123456789"), 10000)
	for id, data := range map[uint64][]byte{3: []byte("three"), 7: big, 12: nil} {
		if err := m.WriteBlob(id, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.WriteBlob(3, []byte("three again")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AppendTagged([]byte("abc"), 3, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := m.Reset(10); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AppendTagged([]byte("d"), 1, 0, 5); err != nil {
		t.Fatal(err)
	}
	if err := m.TruncateFrom(10); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}
	check := func(m *wal.Log, want map[uint64][]byte) {
		t.Helper()
		ids, err := m.Blobs()
		if err != nil {
			t.Fatal(err)
		}
		var wantIDs []uint64
		for id := range want {
			wantIDs = append(wantIDs, id)
		}
		slices.Sort(wantIDs)
		if !slices.Equal(ids, wantIDs) {
			t.Fatalf("blobs %v, want %v", ids, wantIDs)
		}
		for id, data := range want {
			if got, err := m.ReadBlob(id); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("blob %d: %d bytes, %v; want %d bytes", id, len(got), err, len(data))
			}
		}
	}
	check(m, map[uint64][]byte{3: []byte("three again"), 7: big, 12: nil})
	fs.Crash() // every WriteBlob returned: all durable
	m2 := reopenAfterCrash(t, fs)
	check(m2, map[uint64][]byte{3: []byte("three again"), 7: big, 12: nil})
	if err := m2.RemoveBlobs(func(id uint64) bool { return id == 7 }); err != nil {
		t.Fatal(err)
	}
	check(m2, map[uint64][]byte{7: big})
}

// reopenAfterCrash opens the store and partition 0's log again after fs crashed.
func reopenAfterCrash(t *testing.T, fs wal.FS) *wal.Log {
	t.Helper()
	s := mustOpenStore(t, fs, wal.StoreOptions{})
	t.Cleanup(func() { s.Close() })
	m := mustOpenLog(t, s, partDir(0), wal.Options{LazyDir: true})
	t.Cleanup(func() { m.Close() })
	return m
}

// A crash at any operation of WriteBlob (clean, torn or with lost directory operations)
// leaves the blob as it was before the call or as the call wrote it, never anything else,
// and a blob whose WriteBlob returned is never lost; leftover temporary files go with
// RemoveBlobs.
func TestBlobCrashAtEveryOp(t *testing.T) {
	old := bytes.Repeat([]byte("old."), 3000)
	neu := bytes.Repeat([]byte("new!"), 5000)
	run := func(at int64, mode int) int64 {
		base := waltest.NewDirFaultFS()
		if err := wal.MkdirDurable(base, storeRoot+"/topics/t"); err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(at), 7))
		hook, ops := waltest.CrashAt(at, func() { waltest.CrashBy(base, mode, r) })
		hfs := waltest.NewHookFS(base, nil)
		s, err := wal.OpenStore(storeRoot, wal.StoreOptions{FS: hfs, CheckpointInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.OpenLog(partDir(0), wal.Options{LazyDir: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.WriteBlob(1, old); err != nil {
			t.Fatal(err)
		}
		hfs.SetBefore(hook)
		wrote := m.WriteBlob(1, neu) == nil
		if err := m.WriteBlob(2, neu); err == nil && at > 0 {
			t.Fatalf("crash before op %d: a write after the crash succeeded", at)
		}
		if at < 0 {
			n := ops()
			m.Close()
			s.Close()
			return n
		}
		hfs.SetBefore(nil)
		m2 := reopenAfterCrash(t, hfs)
		got, err := m2.ReadBlob(1)
		switch {
		case err != nil:
			t.Fatalf("crash before op %d (mode %d): blob 1: %v", at, mode, err)
		case wrote && !bytes.Equal(got, neu):
			t.Fatalf("crash before op %d (mode %d): blob 1 has %d bytes after WriteBlob returned", at, mode, len(got))
		case !bytes.Equal(got, old) && !bytes.Equal(got, neu):
			t.Fatalf("crash before op %d (mode %d): blob 1 is neither version (%d bytes)", at, mode, len(got))
		}
		if err := m2.RemoveBlobs(func(uint64) bool { return true }); err != nil {
			t.Fatal(err)
		}
		if tmp := base.FilesWithSuffix(".tmp"); len(tmp) > 0 {
			t.Fatalf("crash before op %d: %s left after RemoveBlobs", at, tmp[0])
		}
		return 0
	}
	total := run(-1, 0)
	if total < 4 {
		t.Fatalf("WriteBlob took %d operations", total)
	}
	for at := int64(1); at <= total; at++ {
		t.Run(fmt.Sprint("op=", at), func(t *testing.T) { run(at, int(at%3)) })
	}
}
