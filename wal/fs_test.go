package wal_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

func TestReadFile(t *testing.T) {
	for name, fsys := range map[string]wal.FS{"os": wal.OSFS(), "crashfs": waltest.NewCrashFS()} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if name != "os" {
				dir = "/d"
			}
			if err := fsys.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, content := range []string{"", "x", "hello, whole file"} {
				p := filepath.Join(dir, "f")
				f, err := fsys.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt([]byte(content), 0); err != nil {
					t.Fatal(err)
				}
				got, err := wal.ReadAll(f)
				f.Close()
				if err != nil || string(got) != content {
					t.Fatalf("ReadAll = %q, %v; want %q", got, err, content)
				}
				if got, err := wal.ReadFile(fsys, p); err != nil || string(got) != content {
					t.Fatalf("ReadFile = %q, %v; want %q", got, err, content)
				}
			}
			if _, err := wal.ReadFile(fsys, filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("ReadFile of a missing file = %v, want fs.ErrNotExist", err)
			}
		})
	}
}
