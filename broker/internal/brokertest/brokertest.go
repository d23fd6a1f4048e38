// Package brokertest holds test support shared by the broker's packages (broker, broker/group
// and the others under broker/): what their tests would otherwise each write again.
package brokertest

import (
	"os"
	"reflect"
	"strconv"
	"sync"
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

// FuzzReDecodes fuzzes decode: what it accepts encodes to bytes that decode again, to a value
// same reports the same as the first (nil same: any value).
func FuzzReDecodes[T any](f *testing.F, decode func([]byte) (T, error), encode func(T) ([]byte, error), same func(a, b T) bool) {
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decode(b)
		if err != nil {
			return
		}
		again, err := encode(v)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := decode(again)
		if err != nil || same != nil && !same(v, v2) {
			t.Fatalf("re-encoded %+v decodes to %+v: %v", v, v2, err)
		}
	})
}

// DeepEqual is reflect.DeepEqual for two values of one type (a same for FuzzReDecodes).
func DeepEqual[T any](a, b T) bool { return reflect.DeepEqual(a, b) }

// Repeat runs f on a new goroutine of wg again and again while it returns true, until stop
// is closed (looked at before each call): the busy reader or writer of a concurrency test.
func Repeat(wg *sync.WaitGroup, stop <-chan struct{}, f func() bool) {
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !f() {
				return
			}
		}
	})
}
