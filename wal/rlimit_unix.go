//go:build unix

package wal

import "syscall"

// defaultMaxOpenFiles is half the soft descriptor limit, at least 64.
func defaultMaxOpenFiles() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 || r.Cur > 1<<30 {
		return 512
	}
	return max(64, int(r.Cur/2))
}
