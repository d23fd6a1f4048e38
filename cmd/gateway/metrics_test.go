package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMetricsEndpoint: with -metrics (here MESHKAFKA_METRICS) the gateway serves Prometheus
// /metrics; after 20 acknowledged produce requests read back by a consumer, the parsed
// scrape counts at least 20 Produce requests answered by the gateway and 20 produce calls of
// the embedded broker, the topic's bytes in and out, and the broker's partition gauge sees
// the topic.
func TestMetricsEndpoint(t *testing.T) {
	got := runGateway(t, map[string]string{"MESHKAFKA_METRICS": "127.0.0.1:0"}, "gateway listening on ", "metrics ")
	addr, url := got["gateway listening on "], got["metrics "]
	ctx := context.Background()
	cl := kgoClient(t, addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("metered"))
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	produceN(t, pctx, cl, 20)
	// Read the 20 records back, so the fetched bytes show too.
	cons := kgoClient(t, addr, kgo.ConsumeTopics("metered"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cons.Close()
	pollN(t, pctx, cons, 20)
	// A group that committed offset 0 on every partition of the topic lags by all 20 records.
	adm := kadm.NewClient(cons)
	ends, err := adm.ListEndOffsets(pctx, "metered")
	if err != nil {
		t.Fatal(err)
	}
	commit := kadm.Offsets{}
	ends.Each(func(o kadm.ListedOffset) {
		commit.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: 0, LeaderEpoch: -1})
	})
	if _, err := adm.CommitOffsets(pctx, "lagged", commit); err != nil {
		t.Fatal(err)
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
	// Per-topic bytes: each produce is one batch of at least 61 bytes (the v2 batch header plus
	// a record); the consumer read all of them.
	topicBytes := map[string]float64{}
	if f := families["meshkafka_topic_bytes_total"]; f != nil {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["topic"] == "metered" {
				topicBytes[labels["direction"]] = m.GetCounter().GetValue()
			}
		}
	}
	if in, out := topicBytes["in"], topicBytes["out"]; in < 20*61 || out < in {
		t.Fatalf("topic bytes of metered: in %v (want >= %d), out %v (want >= in)", in, 20*61, out)
	}
	// Every acknowledged produce waited for a journal group commit.
	for _, name := range []string{"meshkafka_wal_fsync_duration_seconds", "meshkafka_wal_commit_size_bytes"} {
		f := families[name]
		if f == nil || f.GetMetric()[0].GetHistogram().GetSampleCount() < 1 {
			t.Fatalf("%s: %v", name, f)
		}
	}
	if f := families["meshkafka_wal_commit_size_bytes"]; f.GetMetric()[0].GetHistogram().GetSampleSum() < 20*61 {
		t.Fatalf("group commits made %v bytes durable, want >= the %d produced", f.GetMetric()[0].GetHistogram().GetSampleSum(), 20*61)
	}
	lag := -1.0
	if f := families["meshkafka_consumer_lag"]; f != nil {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["group"] == "lagged" && labels["topic"] == "metered" {
				lag = m.GetGauge().GetValue()
			}
		}
	}
	if lag != 20 {
		t.Fatalf("consumer lag of group lagged on metered: %v, want 20", lag)
	}
	if f := families["meshkafka_broker_partitions"]; f == nil || f.GetMetric()[0].GetGauge().GetValue() < 1 {
		t.Fatalf("broker partitions: %v", f)
	}
}
