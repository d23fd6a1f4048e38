package benchtest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLatenciesReportsPercentiles(t *testing.T) {
	var l Latencies
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			var mine []time.Duration
			for i := range 25 {
				mine = append(mine, time.Duration(100-(w*25+i))*time.Microsecond) // 100..1 µs
			}
			l.Add(mine)
		})
	}
	wg.Wait()
	res := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
		}
		l.Report(b)
	})
	if got := res.Extra["p50-us"]; got != 51 {
		t.Errorf("p50-us = %v, want 51 (the 51st of 1..100 µs)", got)
	}
	if got := res.Extra["p99-us"]; got != 100 {
		t.Errorf("p99-us = %v, want 100", got)
	}
	empty := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
		}
		Report(b, nil)
	})
	if _, ok := empty.Extra["p50-us"]; ok {
		t.Error("Report of no latencies reported p50-us")
	}
}

// Spread runs exactly b.N operations over its workers, hands each worker its index, and
// times every operation into the Latencies.
func TestSpreadRunsBNOperations(t *testing.T) {
	var calls, runs atomic.Int64
	var seen [3]atomic.Bool
	testing.Benchmark(func(b *testing.B) {
		var l Latencies
		runs.Add(1)
		calls.Store(0)
		l.Spread(b, 3, func(w int) func(time.Time) error {
			seen[w].Store(true)
			return func(time.Time) error {
				calls.Add(1)
				time.Sleep(10 * time.Microsecond) // keeps b.N small
				return nil
			}
		})
		l.mu.Lock()
		n := len(l.all)
		l.mu.Unlock()
		if int64(b.N) != calls.Load() || n != b.N {
			t.Errorf("b.N = %d: %d operations run, %d latencies, want b.N of both", b.N, calls.Load(), n)
		}
	})
	if runs.Load() == 0 {
		t.Fatal("the benchmark never ran")
	}
	for w := range seen {
		if !seen[w].Load() {
			t.Errorf("worker %d never made its operation", w)
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := range 100 {
		ds = append(ds, time.Duration(100-i)*time.Millisecond) // 100..1 ms, descending
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("Percentile(1..100 ms, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Percentile sorted its argument")
	}
	if got := Percentile(nil, 0.5); got != 0 {
		t.Errorf("Percentile(nil) = %v, want 0", got)
	}
}
