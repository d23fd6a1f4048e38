package wal_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const tmpfsMagic = 0x01021994

// benchDir returns a directory on a real disk: b.TempDir unless that is tmpfs, in which case a
// directory under the package (.benchtmp, removed afterwards).
func benchDir(b *testing.B) string {
	d := b.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(d, &st); err != nil || st.Type != tmpfsMagic {
		return d
	}
	d, err := os.MkdirTemp(".", ".benchtmp-")
	if err != nil {
		b.Fatal(err)
	}
	d, _ = filepath.Abs(d)
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// processCPU is the CPU time (user + system) the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
