package gateway

import "syscall"

// threadCPU is the CPU time (user + system) the calling thread has used, in ns: with the
// goroutine locked to its thread, that goroutine's own work and system calls.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
