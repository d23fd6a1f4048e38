package wal_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/benchtest"
	"github.com/meshkafka/meshkafka/internal/cputime"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// BenchmarkStoreProduce measures acks=all produce over many partitions of one Store on the
// real disk: 16 concurrent producers, each request appends one 1 KiB batch (16 records) to
// each of 8 partitions (round robin over all of them) and Syncs every one of them, as the
// broker does for a request spread over partitions. Reports records/s, request latency, and
// fsyncs per Sync call and per request (the journal's group commit makes them independent of
// the partition count), and the process's CPU time (user + system) per record. The 10,000-partition case spends a minute or two creating its logs.
func BenchmarkStoreProduce(b *testing.B) {
	batch := make([]byte, 1024)
	for i := range batch {
		batch[i] = byte(i)
	}
	const producers, fan, records = 16, 8, 16
	for _, parts := range []int{4, 1_000, 10_000} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			root := waltest.DiskDir(b)
			s, err := wal.OpenStore(root, wal.StoreOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			logs := make([]*wal.Log, parts)
			for i := range logs {
				if logs[i], err = s.OpenLog(filepath.Join(root, "topics", "t", fmt.Sprint(i)), wal.Options{}); err != nil {
					b.Fatal(err)
				}
				defer logs[i].Close()
			}
			var cursor atomic.Int64
			var lats benchtest.Latencies
			before := s.Stats()
			cpu0 := cputime.Self()
			el := lats.Spread(b, producers, func(int) func(time.Time) error {
				type pending struct {
					l    *wal.Log
					upTo int64
				}
				req := make([]pending, 0, fan)
				return func(t0 time.Time) error {
					req = req[:0]
					first := cursor.Add(fan) - fan
					for k := range min(fan, parts) {
						l := logs[int(first+int64(k))%parts]
						off, err := l.Append(batch, records, t0.UnixMilli())
						if err != nil {
							return err
						}
						req = append(req, pending{l, off + records})
					}
					for _, p := range req {
						if err := p.l.Sync(p.upTo); err != nil {
							return err
						}
					}
					return nil
				}
			})
			cpu := cputime.Self() - cpu0
			b.StopTimer()
			st := s.Stats()
			fsyncs := float64(st.Fsyncs - before.Fsyncs)
			b.ReportMetric(float64(b.N*min(fan, parts)*records)/el.Seconds(), "records/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*min(fan, parts)*records), "cpu-ns/record")
			}
			b.ReportMetric(fsyncs/float64(st.Syncs-before.Syncs), "fsyncs/sync")
			b.ReportMetric(fsyncs/float64(b.N), "fsyncs/request")
			lats.Report(b)
		})
	}
}

// BenchmarkStoreCreateLogs measures creating new partition logs on the real disk the way the
// broker does for a new topic: 32 at a time in one directory (their parent directory's fsync
// is shared). Reports the wall time per new log.
func BenchmarkStoreCreateLogs(b *testing.B) {
	const parallel, perOp = 32, 256
	root := waltest.DiskDir(b)
	s, err := wal.OpenStore(root, wal.StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	start := time.Now()
	for op := range b.N {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				for i := next.Add(1) - 1; i < perOp; i = next.Add(1) - 1 {
					l, err := s.OpenLog(filepath.Join(root, "topics", fmt.Sprint("t", op), fmt.Sprint(i)), wal.Options{})
					if err != nil {
						b.Error(err)
						return
					}
					l.Close()
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N*perOp), "us/log")
}
