//go:build !unix

package cputime

import "time"

// Self returns 0: the CPU time is not measured on this platform.
func Self() time.Duration { return 0 }
