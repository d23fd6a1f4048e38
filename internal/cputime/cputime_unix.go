//go:build unix

package cputime

import (
	"syscall"
	"time"
)

// Self is the CPU time (user + system) this process has used so far; 0 if unknown.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
