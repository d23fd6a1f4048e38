//go:build linux

package wal

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// OpenSyncer implements FilesystemSyncer with syncfs(2) on a descriptor of dir kept open
// until Close. Since Linux 5.8 syncfs reports every writeback error of the filesystem since
// the descriptor was opened (the superblock's error sequence, sampled at open), so a Store
// opens it once, before its first write, and a writeback error that an fsync of the file
// itself reported (or that happened while no descriptor of the file was open) still fails
// the next Sync. Kernels before 5.8 report no writeback error from syncfs: there it returns
// an error, and the Store fsyncs each log.
func (osFS) OpenSyncer(dir string) (Syncer, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, err
	}
	if rel := unix.ByteSliceToString(u.Release[:]); !kernelAtLeast(rel, 5, 8) {
		return nil, fmt.Errorf("syncfs reports writeback errors from Linux 5.8 on, this is %s", rel)
	}
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return nil, err
	}
	return osSyncer{d}, nil
}

type osSyncer struct{ d *os.File }

func (s osSyncer) Sync() error { return fdCall(s.d, "syncfs", unix.Syncfs) }

func (s osSyncer) Close() error { return s.d.Close() }

// WriteBack writes the file's dirty pages to the disk and waits for them (sync_file_range(2)
// with SYNC_FILE_RANGE_WAIT_BEFORE|WRITE|WAIT_AFTER): nothing is durable until a Syncer's
// Sync, which then has little left to write.
func (f osFile) WriteBack() error {
	return fdCall(f.File, "sync_file_range", func(fd int) error {
		return unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	})
}

// kernelAtLeast says whether a kernel release string ("6.1.0-18-amd64") is major.minor or
// later; one it cannot read is not.
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if n, _ := fmt.Sscanf(release, "%d.%d", &ma, &mi); n != 2 {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
