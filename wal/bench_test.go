package wal_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/benchtest"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// benchCases: records of 1 KiB and 100 B grouped into ~16 KiB batches (one Append each).
// producers is how many concurrent acks=all producers append to one partition (impl=ours;
// plainfsync is always one sequential writer, the same for every case).
var benchCases = []struct {
	name      string
	record    int
	records   int
	producers int
}{
	{"1KiB", 1024, 16, 16},
	{"100B", 100, 164, 16},
	{"1KiB-1producer", 1024, 16, 1},
}

// BenchmarkWALAppend measures acks=all produce throughput on the real disk:
//
//	impl=ours        `producers` goroutines each Append a batch and Sync it (group commit)
//	impl=plainfsync  one goroutine writes each batch to a plain file and fsyncs it
//
// Each reports MB/s and records/s; ours also reports the Append+Sync latency (p50-us, p99-us).
func BenchmarkWALAppend(b *testing.B) {
	for _, c := range benchCases {
		batch := make([]byte, c.record*c.records)
		for i := range batch {
			batch[i] = byte(i)
		}
		b.Run(c.name+"/impl=ours", func(b *testing.B) {
			dir := waltest.DiskDir(b)
			l, err := wal.Open(filepath.Join(dir, "p0"), wal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var lats benchtest.Latencies
			el := lats.Spread(b, c.producers, func(int) func(time.Time) error {
				return func(t0 time.Time) error {
					off, err := l.Append(batch, int32(c.records), t0.UnixMilli())
					if err == nil {
						err = l.Sync(off + int64(c.records))
					}
					return err
				}
			})
			b.StopTimer()
			report(b, el, len(batch), c.records)
			lats.Report(b)
		})
		b.Run(c.name+"/impl=plainfsync", func(b *testing.B) {
			dir := waltest.DiskDir(b)
			f, err := os.Create(filepath.Join(dir, "plain"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				if _, err := f.Write(batch); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			report(b, el, len(batch), c.records)
		})
	}
}

func report(b *testing.B, el time.Duration, batchBytes, records int) {
	s := el.Seconds()
	b.ReportMetric(float64(b.N)*float64(batchBytes)/1e6/s, "MB/s")
	b.ReportMetric(float64(b.N)*float64(records)/s, "records/s")
}

// BenchmarkWALRead measures sequential fetches of ~1 MiB from a log on disk.
func BenchmarkWALRead(b *testing.B) {
	dir := waltest.DiskDir(b)
	l, err := wal.Open(filepath.Join(dir, "p0"), wal.Options{SegmentBytes: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := make([]byte, 16<<10)
	for range 2048 { // 32 MiB
		if _, err := l.Append(batch, 16, 0); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		b.Fatal(err)
	}
	b.Run("fetch=1MiB/impl=ours", func(b *testing.B) {
		off := int64(0)
		n := 0
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			bs, err := l.Read(off, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			for _, x := range bs {
				n += len(x.Data)
			}
			off = bs[len(bs)-1].LastOffset + 1
			if off >= l.NextOffset() {
				off = 0
			}
		}
		b.ReportMetric(float64(n)/1e6/time.Since(start).Seconds(), "MB/s")
	})
}
