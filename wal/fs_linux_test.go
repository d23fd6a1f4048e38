//go:build linux

package wal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// On Linux a file of the OS filesystem is synced with fdatasync: a real file syncs (and
// reads back), and a descriptor fdatasync refuses (a pipe) reports that syscall's failure.
func TestOSFileSyncIsFdatasync(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	f, err := OSFS().OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("durable"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if b, err := ReadFile(OSFS(), name); err != nil || string(b) != "durable" {
		t.Fatalf("read back %q, %v", b, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var pe *fs.PathError
	if err := (osFile{r}).Sync(); !errors.As(err, &pe) || pe.Op != "fdatasync" {
		t.Fatalf("sync of a pipe: %v, want the fdatasync failure", err)
	}
}
