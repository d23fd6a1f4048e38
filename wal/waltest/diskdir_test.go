package waltest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDiskDirIsAWritableDirectory(t *testing.T) {
	d := DiskDir(t)
	if !filepath.IsAbs(d) {
		t.Fatalf("DiskDir %q is not absolute", d)
	}
	if err := os.WriteFile(filepath.Join(d, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(d, "f")); err != nil || string(got) != "x" {
		t.Fatalf("read back %q, %v", got, err)
	}
}
