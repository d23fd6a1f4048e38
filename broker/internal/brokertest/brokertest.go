// Package brokertest holds test support shared by the broker's packages (broker, broker/group
// and the others under broker/): what their tests would otherwise each write again.
package brokertest

import (
	"os"
	"strconv"
	"testing"
)

// ChaosSeeds runs cycles once per seed 0..n-1, each as a subtest named by its seed: n is def,
// or the value of DURABILITY_CHAOS_SEEDS when it is set (the test fails on one that is not
// a number).
func ChaosSeeds(t *testing.T, def int, cycles func(t *testing.T, seed uint64)) {
	t.Helper()
	n := def
	if v := os.Getenv("DURABILITY_CHAOS_SEEDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("DURABILITY_CHAOS_SEEDS=%q: %v", v, err)
		}
	}
	for seed := range n {
		t.Run(strconv.Itoa(seed), func(t *testing.T) { cycles(t, uint64(seed)) })
	}
}
