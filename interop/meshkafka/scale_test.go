package meshkafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// meshWidePartitions is the partition count of TestMeshTenThousandPartitions, and
// meshWideStride which of them it writes: every meshWideStride-th. Until the wal commit
// journal bounds the descriptors of open partition logs (4 each today), writing all 10,000
// would need 40,000 descriptors in the broker process.
const (
	meshWidePartitions = 10_000
	meshWideStride     = 1
)

// A 10,000-partition topic is created through a gateway and a broker that are separate
// processes talking over the mesh, written (idempotent, acks=all) on every meshWideStride-th
// partition and read back whole by a kgo consumer of all 10,000 partitions.
func TestMeshTenThousandPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 partitions over the mesh: skipped in -short mode")
	}
	_, g := meshPair(t)
	const topic = "wide"
	adm := kadm.NewClient(kafkaclients.KgoClient(t, g.addr))
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute) // a hang bound, not a speed target
	defer cancel()
	if r, err := adm.CreateTopic(ctx, meshWidePartitions, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	prod := kafkaclients.KgoClient(t, g.addr, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(2*time.Minute))
	want := map[int32]string{}
	for p := int32(0); p < meshWidePartitions; p += meshWideStride {
		want[p] = fmt.Sprintf("record of partition %d", p)
	}
	for p, v := range want {
		r := &kgo.Record{Partition: p, Value: []byte(v)}
		prod.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce to %d: %v", r.Partition, err)
			} else if r.Offset != 0 {
				t.Errorf("partition %d: acknowledged at offset %d, want 0", r.Partition, r.Offset)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	// 10,000 partitions' offsets in one request can outlast kgo's request timeout on a loaded
	// machine (a shard error, i/o timeout): ask again, as an application would; ctx bounds it.
	var ends kadm.ListedOffsets
	for {
		var err error
		ends, err = adm.ListEndOffsets(ctx, topic)
		if err == nil && ends.Error() == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("end offsets: %v %v", err, ends.Error())
		}
		t.Logf("end offsets: %v %v; asking again", err, ends.Error())
	}
	n := 0
	ends.Each(func(o kadm.ListedOffset) {
		n++
		if _, written := want[o.Partition]; (o.Offset == 1) != written {
			t.Errorf("partition %d: end offset %d (written: %v)", o.Partition, o.Offset, written)
		}
	})
	if n != meshWidePartitions {
		t.Fatalf("end offsets of %d partitions, want %d", n, meshWidePartitions)
	}
	cons := kafkaclients.KgoClient(t, g.addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	got := map[int32]string{}
	// Its own hang bound: under -race on two loaded cores (a CI rehearsal beside six helpers,
	// load 21) the consumer had read 2,673 of the 10,000 when the create-and-produce context
	// ran out.
	cctx, ccancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer ccancel()
	for len(got) < len(want) {
		fs := cons.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", len(got), len(want))
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		for _, r := range fs.Records() {
			if _, dup := got[r.Partition]; dup || r.Offset != 0 || string(r.Value) != want[r.Partition] {
				t.Fatalf("partition %d offset %d: %q (duplicate: %v), want %q at 0", r.Partition, r.Offset, r.Value, dup, want[r.Partition])
			}
			got[r.Partition] = string(r.Value)
		}
	}
}
