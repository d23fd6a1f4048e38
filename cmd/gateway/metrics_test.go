package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMetricsEndpoint: with -metrics (here MESHKAFKA_METRICS) the gateway serves Prometheus
// /metrics; after 20 acknowledged produce requests, the parsed scrape counts at least 20
// Produce requests answered by the gateway and 20 produce calls of the embedded broker, and
// the broker's partition gauge sees the topic.
func TestMetricsEndpoint(t *testing.T) {
	got := runGateway(t, map[string]string{"MESHKAFKA_METRICS": "127.0.0.1:0"}, "gateway listening on ", "metrics ")
	addr, url := got["gateway listening on "], got["metrics "]
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("metered"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	for i := range 20 {
		if err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape does not parse as Prometheus text: %v", err)
	}
	produced := -1.0
	if f := families["kafka_server_request_duration_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kafka_api" && l.GetValue() == "Produce" {
					produced = float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	if produced < 20 {
		names := make([]string, 0, len(families))
		for n := range families {
			names = append(names, n)
		}
		t.Fatalf("Produce requests counted %v, want >= 20; families: %v", produced, names)
	}
	if f := families["meshkafka_broker_produce_requests_total"]; f == nil || f.GetMetric()[0].GetCounter().GetValue() < 20 {
		t.Fatalf("broker produce requests: %v", f)
	}
	if f := families["meshkafka_broker_partitions"]; f == nil || f.GetMetric()[0].GetGauge().GetValue() < 1 {
		t.Fatalf("broker partitions: %v", f)
	}
}
