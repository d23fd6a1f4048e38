package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
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
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	result := make(chan error, 1)
	go func() {
		result <- run(ctx, []string{"-listen", "127.0.0.1:0", "-data", t.TempDir()},
			env(map[string]string{"MESHKAFKA_METRICS": "127.0.0.1:0"}), pw, io.Discard)
		pw.Close()
	}()
	defer func() {
		cancel()
		if err := <-result; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	sc := bufio.NewScanner(pr)
	var addr, url string
	for url == "" && sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "gateway listening on "); ok {
			addr = strings.Fields(rest)[0]
		}
		if f := strings.Fields(line); len(f) == 2 && f[0] == "metrics" {
			url = f[1]
		}
	}
	go io.Copy(io.Discard, pr)
	if addr == "" || url == "" {
		t.Fatalf("no listen address (%q) or metrics URL (%q) printed", addr, url)
	}
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
