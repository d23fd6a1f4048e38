package broker

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// A metadata file is created with its format's mode (credentials: 0600). A failed fsync of
// the new content is a known failure (the old file stays, later stores go on); a failed
// directory fsync after the rename is an unknown outcome, as a failed rename is: every later
// store fails.
func TestMetaFileModeAndOutcomes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scram.credentials")
	users := map[string][]brokerop.ScramCredential{"alice": {{Mechanism: 1, Iterations: 4096, Salt: []byte("s"), StoredKey: []byte("k"), ServerKey: []byte("v")}}}
	if err := (&FileCredentialStore{FS: wal.OSFS(), Path: path}).Store(users); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode: %v %v", fi.Mode(), err)
	}

	crash := waltest.NewCrashFS()
	crash.MkdirAll("d", 0o755)
	fsys := waltest.NewHookFS(crash, nil)
	store := &FileCredentialStore{FS: fsys, Path: "d/scram.credentials"}
	if err := store.Store(users); err != nil {
		t.Fatal(err)
	}
	failOn := func(op string) {
		fsys.SetBefore(func(got, _ string) error {
			if got == op {
				return syscall.EIO
			}
			return nil
		})
	}
	failOn("sync")
	if err := store.Store(nil); err == nil || errors.Is(err, ErrCredentialsFailed) {
		t.Fatalf("store with a failing fsync: %v", err)
	}
	if got, err := store.Load(); err != nil || len(got) != 1 {
		t.Fatalf("after a failed fsync: %v %v", got, err)
	}
	fsys.SetBefore(nil)
	if err := store.Store(users); err != nil {
		t.Fatalf("store after a failed fsync: %v", err)
	}
	failOn("syncdir")
	for range 2 {
		if err := store.Store(nil); !errors.Is(err, ErrCredentialsFailed) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("store after a failed directory fsync: %v", err)
		}
		fsys.SetBefore(nil) // sticky even when the disk recovers
	}
}
