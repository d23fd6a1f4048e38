package kafka_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A gateway (with its embedded broker) started under `ulimit -n 1024` serves a
// 10,000-partition topic: kgo produces two records to every partition (idempotent, acks=all)
// while 100 more client connections are open, and a consumer reads every record back at its
// partition and offset. The partitions' logs must share a bounded set of descriptors.
func TestTenThousandPartitionsUnderUlimit1024(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 partitions under ulimit -n 1024: skipped in -short mode")
	}
	// t.Skip("needs the wal commit journal's descriptor cap (wal.Store, helper wal-journal): today each open partition log holds 4 descriptors")
	const partitions, perPartition = 10_000, 2
	bin := buildGateway(t)
	cmd := exec.Command("sh", "-c", `ulimit -n 1024 && exec "$0" "$@"`, bin, "-listen", "127.0.0.1:0", "-data", t.TempDir())
	child := startChild(t, cmd, "gateway listening on ", "")
	addr := child.addr
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", child.pid))
	if err == nil && !strings.Contains(string(limits), "Max open files            1024                 1024") {
		t.Fatalf("the gateway does not run under ulimit -n 1024:\n%s", limits)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if r, err := kadm.NewClient(admin).CreateTopic(ctx, partitions, 1, nil, "wide"); err != nil || r.Err != nil {
		t.Fatalf("create topic: %v %v", err, r.Err)
	}
	idleConns(t, addr, 100)

	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("wide"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordDeliveryTimeout(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	type at struct {
		p   int32
		off int64
	}
	acked := make(chan at, partitions*perPartition)
	var failed error
	for i := range perPartition {
		for p := range int32(partitions) {
			prod.Produce(ctx, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "%d-%d", p, i)}, func(r *kgo.Record, err error) {
				if err != nil {
					failed = err
					return
				}
				acked <- at{r.Partition, r.Offset}
			})
		}
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if failed != nil {
		t.Fatalf("produce: %v", failed)
	}
	close(acked)
	for a := range acked {
		if a.off >= perPartition {
			t.Fatalf("partition %d: acknowledged offset %d, want < %d", a.p, a.off, perPartition)
		}
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("wide"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := make(map[string]bool, partitions*perPartition)
	for len(seen) < partitions*perPartition {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", len(seen), partitions*perPartition)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		for _, r := range fs.Records() {
			want := fmt.Sprintf("%d-%d", r.Partition, r.Offset)
			if string(r.Value) != want || seen[want] {
				t.Fatalf("partition %d offset %d holds %q (seen before: %v), want %q", r.Partition, r.Offset, r.Value, seen[want], want)
			}
			seen[want] = true
		}
	}
	select {
	case <-child.done:
		t.Fatalf("the gateway exited: %v", child.err)
	default:
	}
}
