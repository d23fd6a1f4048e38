//go:build !linux

package wal_test

import "time"

// processCPU is not measured on this platform (the cpu-ns/record metric is left out).
func processCPU() time.Duration { return 0 }
