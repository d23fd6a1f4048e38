package cluster

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// TestFetchSessionsOverTheMeshSplit: a kgo consumer of a topic whose partitions the Cluster
// spreads over three brokers uses one fetch session on the gateway; the gateway's
// incremental fetches (every session partition, split per broker by the Cluster) deliver
// every record exactly once, and the session stays incremental throughout.
func TestFetchSessionsOverTheMeshSplit(t *testing.T) {
	const parts, rounds = 12, 6
	gw := newEP(t)
	bs := startBrokers(t, 3, gw)
	cl := clusterFor(t, gw, bs)
	srv, addr := serveKafka(t, gateway.Config{Backend: cl, AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)})
	ctx := timeoutCtx(t, 30*time.Second)

	prod := kafkaclients.KgoClient(t, addr, kgo.DefaultProduceTopic("split"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite())
	if r, err := kadm.NewClient(prod).CreateTopic(ctx, parts, 1, nil, "split"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}

	want := map[string]bool{}
	produce := func(p int32, v string) {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want[v] = true
	}
	for p := range int32(parts) {
		produce(p, fmt.Sprintf("first-%d", p))
	}
	on := map[int]bool{}
	for _, h := range holders(t, ctx, bs, "split", parts) {
		on[h] = true
	}
	if len(on) < 2 {
		t.Fatalf("partitions on %d broker(s), want a split", len(on))
	}
	cons := kafkaclients.KgoClient(t, addr, kgo.ConsumeTopics("split"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	got := map[string]bool{}
	consume := func() {
		for len(got) < len(want) {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", len(got), len(want))
			}
			fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if got[string(r.Value)] {
					t.Fatalf("record %q delivered twice", r.Value)
				}
				got[string(r.Value)] = true
			})
		}
	}
	consume()
	for i := range rounds {
		produce(int32(i*5%parts), fmt.Sprintf("round-%d", i))
		consume()
	}
	st := srv.FetchSessionStats()
	if st.Created == 0 || st.IncrementalFetches < rounds || st.SessionErrors != 0 {
		t.Fatalf("session stats %+v: want a session, >= %d incremental fetches, no session errors", st, rounds)
	}
}
