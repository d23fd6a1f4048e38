package kafka_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A 100,000-partition topic through the gateway with kgo: created, written (idempotent,
// acks=all) on every 1000th partition and 200 more spread at random, and consumed whole by a
// kgo consumer of all 100,000 partitions, every record at its partition and offset.
func TestHundredThousandPartitionsKgo(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 partitions: skipped in -short mode")
	}
	const partitions = 100_000
	bin := buildGateway(t)
	child := startCrashChild(t, bin, t.TempDir(), "127.0.0.1:0")
	t.Cleanup(func() { child.kill(t) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(child.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if r, err := adm.CreateTopic(ctx, partitions, 1, nil, "wide"); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	want := map[int32]int{} // partition -> records
	for p := int32(0); p < partitions; p += 1000 {
		want[p] = 1 + int(p/1000)%3
	}
	for len(want) < partitions/1000+200 {
		want[rng.Int32N(partitions)] = 1 + rng.IntN(3)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(child.addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("wide"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	total := 0
	for p, k := range want {
		for i := range k {
			total++
			prod.Produce(ctx, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)}, func(r *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce to %d: %v", r.Partition, err)
				}
			})
		}
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(child.addr), kgo.ConsumeTopics("wide"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	for len(seen) < total {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", len(seen), total)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		for _, r := range fs.Records() {
			v := fmt.Sprintf("%d-%d", r.Partition, r.Offset)
			if string(r.Value) != v || seen[v] || int(r.Offset) >= want[r.Partition] {
				t.Fatalf("partition %d offset %d holds %q (seen before: %v)", r.Partition, r.Offset, r.Value, seen[v])
			}
			seen[v] = true
		}
	}
}
