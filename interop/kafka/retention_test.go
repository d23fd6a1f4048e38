package kafka_test

// Retention with a real client: with a short retention.ms, old segments are deleted, the log
// start offset moves, and a consumer asking for an offset below it gets OFFSET_OUT_OF_RANGE
// and resets as its policy says (kgo: ConsumeResetOffset).

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
)

func TestRetentionMovesLogStartAndConsumersReset(t *testing.T) {
	b, err := broker.Open(broker.Config{Dir: t.TempDir(), DefaultPartitions: 1,
		RetentionCheckInterval: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g := serve.Start(t, gateway.Config{Backend: b.Service(nil), AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}, nil)
	defer g.Stop() // before the broker closes
	addr := g.Addr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const topic = "short-lived"
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	retention, segment := "1500", "1024"
	r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &retention, "segment.bytes": &segment}, topic)
	if err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(from, n int) {
		for i := from; i < from+n; i++ { // one record per request: many small batches, many segments
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "record-%04d-%0200d", i, i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 40)
	startOffset := func() int64 {
		so, err := adm.ListStartOffsets(ctx, topic)
		if err != nil || so.Error() != nil {
			t.Fatalf("start offsets: %v %v", err, so.Error())
		}
		o, _ := so.Lookup(topic, 0)
		return o.Offset
	}
	if s := startOffset(); s != 0 {
		t.Fatalf("log start offset %d before retention, want 0", s)
	}
	// Let the first records age past retention.ms, then keep writing so they sit in closed
	// segments; the broker's retention loop deletes those.
	time.Sleep(2 * time.Second)
	produce(40, 10)
	var start int64
	for deadline := time.Now().Add(20 * time.Second); ; {
		if start = startOffset(); start >= 40 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log start offset stuck at %d; old segments were not deleted", start)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A consumer asking for offset 0 (now below the log start) resets to the start...
	consumeFirst := func(reset kgo.Offset) int64 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0)}}),
			kgo.ConsumeResetOffset(reset))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatal(err)
			}
			var first int64 = -1
			fs.EachRecord(func(r *kgo.Record) {
				if first < 0 {
					first = r.Offset
				}
			})
			if first >= 0 {
				return first
			}
		}
	}
	if got := consumeFirst(kgo.NewOffset().AtStart()); got != start {
		t.Fatalf("reset to earliest consumed from offset %d, want the new log start %d", got, start)
	}
	// ...or to the end, and then sees only new records.
	produced := make(chan error, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		produced <- prod.ProduceSync(ctx, &kgo.Record{Value: []byte("after the reset")}).FirstErr()
	}()
	got := consumeFirst(kgo.NewOffset().AtEnd())
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	if got != 50 {
		t.Fatalf("reset to latest consumed from offset %d, want 50", got)
	}
}
