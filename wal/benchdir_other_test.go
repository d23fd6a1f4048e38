//go:build !linux

package wal_test

import (
	"testing"
	"time"
)

func benchDir(b *testing.B) string { return b.TempDir() }

// processCPU is not measured on this platform (the cpu-ns/record metric is left out).
func processCPU() time.Duration { return 0 }
