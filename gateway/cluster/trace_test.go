package cluster

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/internal/telemetrytest"
	"github.com/meshkafka/meshkafka/telemetry"
)

// TestSpanChainAcrossTheHop: a Kafka produce and fetch through gateway → mesh → broker form
// one trace each: gateway.kafka.request → mesh.kafkaop.sent → mesh.kafkaop.handle →
// broker.produce.store / broker.fetch.read. The broker side only learns the trace from the
// traceparent carried in the op's header (its handler context comes from the endpoint).
func TestSpanChainAcrossTheHop(t *testing.T) {
	rec, _ := telemetrytest.Record(t)

	gw := newEP(t)
	bEP := newEP(t)
	b, err := broker.Open(broker.Config{Dir: t.TempDir(), DefaultPartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var trust brokermesh.TrustList
	trust.Add(gw.NodeID())
	brokermesh.Serve(bEP, brokermesh.NewServer(nil, brokerop.Parts{Data: brokermesh.StoreSpans{DataService: b}, Admin: b, Producers: b}), trust, nil)
	cl := clusterForAddrs(t, gw, bEP)

	_, addr := serveKafka(t, gateway.Config{Backend: cl, AdvertisedHost: "127.0.0.1"})

	ctx := timeoutCtx(t, 20*time.Second)
	client := kafkaclients.KgoClient(t, addr, kgo.DefaultProduceTopic("traced"),
		kgo.ConsumeTopics("traced"), kgo.AllowAutoTopicCreation(), kgo.DisableIdempotentWrite())
	if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for got := false; !got; {
		fs := client.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = string(r.Value) == "hello" })
	}

	chain := func(leaf string) bool {
		spans := rec.Ended()
		byID := map[string]sdktrace.ReadOnlySpan{}
		for _, s := range spans {
			byID[s.SpanContext().SpanID().String()] = s
		}
		want := []string{leaf, telemetry.SpanKafkaOpHandle, telemetry.SpanKafkaOpSent, telemetry.SpanGatewayRequest}
		for _, s := range spans {
			if s.Name() != leaf {
				continue
			}
			cur, ok := s, true
			i := 0
			for ; ok && i < len(want); i++ {
				if cur.Name() != want[i] || cur.SpanContext().TraceID() != s.SpanContext().TraceID() {
					break
				}
				cur, ok = byID[cur.Parent().SpanID().String()]
			}
			if i == len(want) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(5 * time.Second)
	for !(chain(telemetry.SpanBrokerProduce) && chain(telemetry.SpanBrokerFetch)) {
		if time.Now().After(deadline) {
			var names []string
			for _, s := range rec.Ended() {
				names = append(names, s.Name())
			}
			t.Fatalf("no complete span chain for produce and fetch; spans: %v", names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
