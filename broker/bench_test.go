package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/benchtest"
)

// benchBroker opens a broker on the real disk (b.TempDir is on the same filesystem as the
// module here; the wal helper checked it is not tmpfs).
func benchBroker(b *testing.B, partitions int32) *Broker {
	b.Helper()
	br := mustOpen(b, Config{Dir: b.TempDir(), RetentionCheckInterval: -1, FlushInterval: -1})
	b.Cleanup(func() { br.Close() })
	resp, _ := br.CreateTopics(context.Background(), &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "bench", NumPartitions: partitions, ReplicationFactor: 1}}})
	if resp.Topics[0].ErrorCode != 0 {
		b.Fatal(resp.Topics[0].ErrorMessage)
	}
	return br
}

// BenchmarkBrokerProduce: acks=all produce straight into the broker (no wire), 8 concurrent
// producers each sending batches of ~16 KiB, so that group commit and the per-batch cost
// (validation, CRC, append, stamp) are what is measured.
func BenchmarkBrokerProduce(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, parts := range []int32{1, 8} {
			b.Run(fmt.Sprintf("rec=%dB/parts=%d/impl=ours", size, parts), func(b *testing.B) {
				br := benchBroker(b, parts)
				perBatch := max(1, 16384/size)
				vs := make([]string, perBatch)
				for i := range vs {
					vs[i] = strings.Repeat("v", size)
				}
				batch := makeBatch(false, vals(time.Now().UnixMilli(), vs...)...)
				const producers = 8
				var lat benchtest.Latencies
				b.SetBytes(int64(len(batch)))
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				var next int64
				var nmu sync.Mutex
				for w := range producers {
					wg.Go(func() {
						var mine []time.Duration
						for {
							nmu.Lock()
							i := next
							next++
							nmu.Unlock()
							if i >= int64(b.N) {
								break
							}
							t0 := time.Now()
							resp, err := br.Produce(context.Background(), &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
								{Topic: "bench", Partition: int32(w) % parts, Records: slices.Clone(batch)}}})
							if err != nil || resp.Partitions[0].ErrorCode != 0 {
								b.Errorf("produce: %v %+v", err, resp)
								return
							}
							mine = append(mine, time.Since(t0))
						}
						lat.Add(mine)
					})
				}
				wg.Wait()
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N*perBatch)/el.Seconds(), "records/s")
				lat.Report(b)
			})
		}
	}
}

// BenchmarkBrokerFetch: reading a partition from the start in 1 MiB fetches.
func BenchmarkBrokerFetch(b *testing.B) {
	br := benchBroker(b, 1)
	vs := make([]string, 160)
	for i := range vs {
		vs[i] = strings.Repeat("v", 100)
	}
	batch := makeBatch(false, vals(1, vs...)...)
	const batches = 512
	for range batches {
		br.Produce(context.Background(), &brokerop.ProduceReq{Acks: 1, Partitions: []brokerop.ProducePartition{{Topic: "bench", Records: slices.Clone(batch)}}})
	}
	b.Run("rec=100B/impl=ours", func(b *testing.B) {
		b.SetBytes(int64(len(batch) * batches))
		records := 0
		start := time.Now()
		for b.Loop() {
			off := int64(0)
			for off < int64(batches*len(vs)) {
				resp, _ := br.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: "bench", Offset: off, MaxBytes: 1 << 20}}})
				n := len(resp.Partitions[0].Records) / len(batch)
				if n == 0 {
					b.Fatal("no progress")
				}
				off += int64(n * len(vs))
				records += n * len(vs)
			}
		}
		b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
	})
}

// BenchmarkBrokerProduceWide: the per-batch cost of a produce request spread over many
// partitions, in the shape kgo sends with 16-byte keys spread over every partition (measured
// by interop/kafka BenchmarkKafkaScaleProduceInProcess: ~4 batches of ~6,000 records at 4
// partitions, ~600 batches of ~40 records at 1,000, ~5,800 batches of ~4 records at
// 10,000). One idempotent producer, acks=-1, requests staged back to back with up to five
// waiting for their fsync (kgo's in-flight limit, as the gateway stages a connection's
// requests); real disk. One op is one request; the requests are built (sequence numbers,
// CRC: the client's work) before the timer starts. Reported: records/s, ns/batch and
// cpu-ns/batch (the process's CPU time, every goroutine and the kernel's share, per batch:
// the figure to compare on a loaded machine).
func BenchmarkBrokerProduceWide(b *testing.B) {
	for _, bc := range []struct {
		parts, batches, recs int
	}{{4, 4, 6000}, {1000, 600, 40}, {10_000, 5800, 4}} {
		b.Run(fmt.Sprintf("parts=%d/batches=%d", bc.parts, bc.batches), func(b *testing.B) {
			br := benchBroker(b, int32(bc.parts))
			ip, err := br.InitProducerID(context.Background(), &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
			if err != nil || ip.ErrorCode != 0 {
				b.Fatal(err, ip.ErrorCode)
			}
			values := make([]string, bc.recs)
			for i := range values {
				values[i] = strings.Repeat("v", 100)
			}
			tmpl := idemBatch(ip.ProducerID, ip.ProducerEpoch, 0, values...)
			seq := make([]int32, bc.parts)
			next := 0 // the next partition to write: requests walk round all partitions
			build := func() *brokerop.ProduceReq {
				req := &brokerop.ProduceReq{Acks: -1, Partitions: make([]brokerop.ProducePartition, bc.batches)}
				for i := range req.Partitions {
					p := next
					next = (next + 1) % bc.parts
					data := slices.Clone(tmpl)
					binary.BigEndian.PutUint32(data[offBaseSequence:], uint32(seq[p]))
					binary.BigEndian.PutUint32(data[offCRC:], crc32.Checksum(data[offAttributes:], castagnoli))
					seq[p] += int32(bc.recs)
					req.Partitions[i] = brokerop.ProducePartition{Topic: "bench", Partition: int32(p), Records: data}
				}
				return req
			}
			check := func(resp *brokerop.ProduceResp, err error) {
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range resp.Partitions {
					if p.ErrorCode != 0 {
						b.Fatalf("partition %d: code %d %s", p.Partition, p.ErrorCode, p.ErrorMessage)
					}
				}
			}
			// Warm up: every partition written once (their logs open).
			for range (bc.parts + bc.batches - 1) / bc.batches {
				check(br.Produce(context.Background(), build()))
			}
			reqs := make([]*brokerop.ProduceReq, b.N) // built beforehand: the CPU figure is the broker's
			for i := range reqs {
				reqs[i] = build()
			}
			const inFlight = 5
			var waits []func() (*brokerop.ProduceResp, error)
			b.ReportAllocs()
			cpu0 := processCPU()
			b.ResetTimer()
			for _, req := range reqs {
				if len(waits) == inFlight {
					check(waits[0]())
					waits = waits[1:]
				}
				waits = append(waits, br.ProduceStaged(context.Background(), req))
			}
			for _, w := range waits {
				check(w())
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N*bc.batches), "cpu-ns/batch")
			b.ReportMetric(float64(b.N*bc.batches*bc.recs)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*bc.batches), "ns/batch")
		})
	}
}
