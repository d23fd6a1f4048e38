package waltest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

const tmpfsMagic = 0x01021994

// DiskDir returns a directory on a real disk for a benchmark whose fsyncs must cost what
// they cost: tb.TempDir unless that is tmpfs, then a directory under the current one (the
// package's, .benchtmp-*), removed when tb ends.
func DiskDir(tb testing.TB) string {
	d := tb.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(d, &st); err != nil || st.Type != tmpfsMagic {
		return d
	}
	d, err := os.MkdirTemp(".", ".benchtmp-")
	if err != nil {
		tb.Fatal(err)
	}
	d, _ = filepath.Abs(d)
	tb.Cleanup(func() { os.RemoveAll(d) })
	return d
}
