package benchtest

import (
	"sync"
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
