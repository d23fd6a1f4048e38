package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/benchtest"
)

// BenchmarkGroupCommit: offset commits through the gateway (durable: each answered after the
// offset log's fsync, concurrent commits share fsyncs) next to kfake (in memory), from 1 and 8
// concurrent committers, each with its own client and group.
func BenchmarkGroupCommit(b *testing.B) {
	for _, committers := range []int{1, 8} {
		for _, impl := range []string{"ours", "kfake"} {
			b.Run(fmt.Sprintf("committers=%d/impl=%s", committers, impl), func(b *testing.B) {
				var addr string
				switch impl {
				case "ours":
					addr = grpStart(b, b.TempDir(), "").addr
				case "kfake":
					c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bench"))
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(c.Close)
					addr = c.ListenAddrs()[0]
				}
				ctx := context.Background()
				adms := make([]*kadm.Client, committers)
				for i := range adms {
					cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(cl.Close)
					adms[i] = kadm.NewClient(cl)
					if impl == "ours" && i == 0 {
						if _, err := adms[0].CreateTopics(ctx, 1, 1, nil, "bench"); err != nil {
							b.Fatal(err)
						}
					}
					// warm up: connections, coordinator lookup
					if _, err := adms[i].CommitOffsets(ctx, fmt.Sprintf("bench-%d", i), kadm.OffsetsFromRecords(kgo.Record{Topic: "bench", Offset: 0})); err != nil {
						b.Fatal(err)
					}
				}
				lat := make([][]time.Duration, committers)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for w := range committers {
					n := b.N / committers
					if w < b.N%committers {
						n++
					}
					wg.Go(func() {
						g := fmt.Sprintf("bench-%d", w)
						for i := range n {
							t0 := time.Now()
							r, err := adms[w].CommitOffsets(ctx, g, kadm.OffsetsFromRecords(kgo.Record{Topic: "bench", Offset: int64(i)}))
							if err == nil {
								err = r.Error()
							}
							if err != nil {
								b.Error(err)
								return
							}
							lat[w] = append(lat[w], time.Since(t0))
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				all := slices.Concat(lat...)
				if len(all) == 0 {
					return
				}
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "commits/s")
				benchtest.Report(b, all)
			})
		}
	}
}
