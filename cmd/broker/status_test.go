package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/porttest"
)

// TestBrokerStatusPage: a broker started with -metrics (and no Kafka listener) serves the
// status page at / on that address: its role and mode, the cluster's brokers as a Kafka
// client of it would see them (itself, the controller of its quorum of one), and the mesh
// and trace sections; /metrics stays beside it.
func TestBrokerStatusPage(t *testing.T) {
	addr := porttest.Addr(t)
	startBroker(t, nil, "-metrics", addr)
	var page string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page = string(b)
			if resp.StatusCode == http.StatusOK && strings.Contains(page, "controller") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status page with a controller within 30s (err %v):\n%s", err, page)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"meshkafka broker", "no Kafka listener", `id="brokers"`, "Mesh peers", "Recent traces"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "meshkafka_raft_term") {
		t.Fatalf("/metrics lacks the raft gauges:\n%.2000s", b)
	}
}
