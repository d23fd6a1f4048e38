//go:build unix

package cputime

import "testing"

func TestSelfGrowsWithWork(t *testing.T) {
	before := Self()
	if before <= 0 {
		t.Fatalf("Self() = %v before any work, want > 0 (a process has used some CPU)", before)
	}
	// Burn CPU until the counter moves (its resolution may be a clock tick): the test ends by
	// the counter, not by a clock.
	x := uint64(1)
	for Self() == before {
		for i := 0; i < 1_000_000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if after := Self(); after < before {
		t.Fatalf("Self() went back from %v to %v (%d)", before, after, x)
	}
}
