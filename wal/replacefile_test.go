package wal_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// ReplaceFile puts the new content in place of the old, leaves no temporary file, and returns
// the new file open for more writes.
func TestReplaceFile(t *testing.T) {
	dir := t.TempDir()
	fsys := wal.OSFS()
	if err := os.WriteFile(filepath.Join(dir, "log"), []byte("old content, longer"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := wal.ReplaceFile(fsys, dir, "log", []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("+more"), 3); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil || string(got) != "new+more" {
		t.Fatalf("content %q, %v; want %q", got, err, "new+more")
	}
	if _, err := os.Stat(filepath.Join(dir, "log.tmp")); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
}

// A failure before the rename leaves the old file and is not ErrReplaceUnknown; a failed
// rename or directory fsync is. A new file gets the mode ReplaceFileMode is given.
func TestReplaceFileFailures(t *testing.T) {
	crash := waltest.NewCrashFS()
	crash.MkdirAll("/d", 0o755)
	crash.WriteFile("/d/f", []byte("old"))
	for _, op := range []string{"write", "sync", "rename", "syncdir"} {
		fsys := waltest.NewHookFS(crash, nil)
		fail := errors.New("injected " + op)
		fsys.SetBefore(func(got, _ string) error {
			if got == op {
				return fail
			}
			return nil
		})
		_, err := wal.ReplaceFile(fsys, "/d", "f", []byte("new"))
		if !errors.Is(err, fail) {
			t.Fatalf("%s failing: %v", op, err)
		}
		unknown := op == "rename" || op == "syncdir"
		if errors.Is(err, wal.ErrReplaceUnknown) != unknown {
			t.Fatalf("%s failing: %v; unknown outcome %v", op, err, !unknown)
		}
		if b, _ := crash.ReadFile("/d/f"); !unknown && string(b) != "old" {
			t.Fatalf("%s failing replaced the file: %q", op, b)
		}
	}
	dir := t.TempDir()
	f, err := wal.ReplaceFileMode(wal.OSFS(), dir, "secret", []byte("x"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, err := os.Stat(filepath.Join(dir, "secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode of a new file: %v %v", fi.Mode(), err)
	}
}
