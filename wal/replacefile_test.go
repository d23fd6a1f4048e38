package wal_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
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
