package waltest

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"
)

func writeSynced(t *testing.T, d *DirFaultFS, name, data string) {
	t.Helper()
	f, err := d.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// durableTree creates /a/b/f with data in d, the file and every directory on its path
// synced.
func durableTree(t *testing.T, d *DirFaultFS, data string) {
	t.Helper()
	if err := d.MkdirAll("/a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	writeSynced(t, d, "/a/b/f", data)
	for _, dir := range []string{"/a/b", "/a", "/"} {
		if err := d.SyncDir(dir); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirFaultMkdirLostWithoutParentSync(t *testing.T) {
	d := NewDirFaultFS()
	if err := d.MkdirAll("/a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	writeSynced(t, d, "/a/b/f", "x")
	if err := d.SyncDir("/a/b"); err != nil { // the file's entry, but not b's own
		t.Fatal(err)
	}
	d.Crash()
	if _, err := d.ReadDir("/a/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("directory b survived a crash without SyncDir(/a): %v", err)
	}
	durableTree(t, d, "x")
	d.Crash()
	if got, err := d.ReadFile("/a/b/f"); err != nil || string(got) != "x" {
		t.Fatalf("synced tree lost: %q %v", got, err)
	}
}

func TestDirFaultRemoveAllLostWithoutParentSync(t *testing.T) {
	d := NewDirFaultFS()
	durableTree(t, d, "data")
	if err := d.RemoveAll("/a/b"); err != nil {
		t.Fatal(err)
	}
	if names, _ := d.ReadDir("/a"); len(names) != 0 {
		t.Fatalf("after RemoveAll: %v", names)
	}
	d.Crash()
	if got, err := d.ReadFile("/a/b/f"); err != nil || string(got) != "data" {
		t.Fatalf("lost RemoveAll did not bring the tree back: %q %v", got, err)
	}
	if err := d.RemoveAll("/a/b"); err != nil {
		t.Fatal(err)
	}
	if err := d.SyncDir("/a"); err != nil {
		t.Fatal(err)
	}
	d.Crash()
	if _, err := d.ReadDir("/a/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("synced RemoveAll undone: %v", err)
	}
}

// A rename whose directory was not synced may or may not survive; both outcomes occur, and the
// file always holds complete synced contents.
func TestDirFaultRenameSurvivesOrNot(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	seen := map[string]bool{}
	for range 40 {
		d := NewDirFaultFS()
		writeSynced(t, d, "/f", "old")
		if err := d.SyncDir("/"); err != nil {
			t.Fatal(err)
		}
		writeSynced(t, d, "/f.tmp", "new")
		if err := d.Rename("/f.tmp", "/f"); err != nil {
			t.Fatal(err)
		}
		d.CrashTear(r)
		got, err := d.ReadFile("/f")
		if err != nil {
			t.Fatal(err)
		}
		seen[string(got)] = true
	}
	if len(seen) != 2 || !seen["old"] || !seen["new"] {
		t.Fatalf("outcomes %v, want both old and new", seen)
	}
}

func TestDirFaultSyncDirErrorKeepsPending(t *testing.T) {
	d := NewDirFaultFS()
	writeSynced(t, d, "/f", "v")
	fail := errors.New("EIO")
	d.SetDirSyncFault(func(string) error { return fail })
	if err := d.SyncDir("/"); !errors.Is(err, fail) {
		t.Fatalf("SyncDir = %v", err)
	}
	if d.Pending() != 1 || d.DirSyncFailures() != 1 {
		t.Fatalf("pending %d, failures %d", d.Pending(), d.DirSyncFailures())
	}
	d.Crash()
	if names := d.Files(); len(names) != 0 {
		t.Fatalf("file survived a failed SyncDir: %v", names)
	}
	d.SetDirSyncFault(nil)
	writeSynced(t, d, "/f", "v")
	if err := d.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	d.Crash()
	if names := d.Files(); !slices.Equal(names, []string{"/f"}) {
		t.Fatalf("files %v", names)
	}
}

func TestDirFaultCreateENOSPC(t *testing.T) {
	d := NewDirFaultFS()
	writeSynced(t, d, "/old", "v")
	d.SetCreateFault(func(string) error { return syscall.ENOSPC })
	if _, err := d.OpenFile("/new", os.O_RDWR|os.O_CREATE, 0o644); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("create = %v", err)
	}
	if err := d.MkdirAll("/dir", 0o755); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("mkdir = %v", err)
	}
	f, err := d.OpenFile("/old", os.O_RDWR|os.O_CREATE, 0o644) // exists: not a creation
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if names := d.Files(); !slices.Equal(names, []string{"/old"}) {
		t.Fatalf("files %v", names)
	}
}
