// Package benchtest holds what the benchmarks of several packages report alike: the latency
// percentiles of the operations their concurrent workers time. Test-only (it imports
// testing).
package benchtest

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Latencies collects the operation latencies of a benchmark's concurrent workers. The zero
// value is ready; it is safe for concurrent use.
type Latencies struct {
	mu  sync.Mutex
	all []time.Duration // guarded by mu
}

// Add records a worker's latencies (typically once, when the worker ends).
func (l *Latencies) Add(ds []time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, ds...)
}

// Spread runs b.N operations spread over workers goroutines, timing each into l, and returns
// the wall time they took (b's timer is reset just before they start). newOp makes each
// goroutine's operation (with its own state); an operation's error fails b and ends its
// goroutine.
func (l *Latencies) Spread(b *testing.B, workers int, newOp func(worker int) func(t0 time.Time) error) time.Duration {
	work := make(chan struct{}, b.N)
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		op := newOp(w)
		wg.Go(func() {
			var mine []time.Duration
			for range work {
				t0 := time.Now()
				if err := op(t0); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			l.Add(mine)
		})
	}
	wg.Wait()
	return time.Since(start)
}

// Report reports the recorded latencies' percentiles on b (see Report).
func (l *Latencies) Report(b *testing.B) {
	l.mu.Lock()
	defer l.mu.Unlock()
	Report(b, l.all)
}

// Report sorts lat and reports its 50th and 99th percentiles on b as the metrics p50-us and
// p99-us, in microseconds; nothing when lat is empty.
func Report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}

// Percentile returns the p-th percentile (0 < p ≤ 1) of ds by nearest rank, zero for no ds;
// ds is left as it is.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// ReportMs reports the 50th and 99th percentiles of ds (Percentile) on b as the metrics
// prefix+"p50-ms" and prefix+"p99-ms", in milliseconds.
func ReportMs(b *testing.B, prefix string, ds []time.Duration) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(Percentile(ds, 0.5)), prefix+"p50-ms")
	b.ReportMetric(ms(Percentile(ds, 0.99)), prefix+"p99-ms")
}
