package main

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestRenderPanelsAndLines(t *testing.T) {
	ss := []series{
		{Name: "KafkaScaleProduce", Impl: "kfake", Metric: "records/s", Points: []point{{4, 200000}, {1000, 390000}}},
		{Name: "KafkaScaleProduce", Impl: "ours", Metric: "records/s", Points: []point{{4, 190000}, {1000, 37000}}},
		{Name: "KafkaScaleIdle", Impl: "ours", Metric: "heap-bytes/partition", Points: []point{{1000, 120}, {100000, 119}}},
		{Name: "KafkaScaleIdle", Impl: "ours", Metric: "rss-bytes", Points: []point{{4, 1}, {100000, 1000}}},
	}
	panels := group(ss, []string{"records/s", "heap-bytes/partition"})
	if len(panels) != 2 || len(panels[0].lines) != 2 || panels[0].lines[0].Impl != "ours" {
		t.Fatalf("panels: %+v", panels)
	}
	var b strings.Builder
	if err := render(&b, panels); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	// Well-formed XML with one polyline per line and the titles escaped.
	var doc struct{}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if n := strings.Count(out, "<polyline"); n != 3 {
		t.Fatalf("%d polylines, want 3", n)
	}
	for _, want := range []string{"KafkaScaleProduce — records/s", "KafkaScaleIdle — heap-bytes/partition", ">ours<", ">kfake<", ">100k<"} {
		if !strings.Contains(out, want) {
			t.Fatalf("SVG lacks %q", want)
		}
	}
	if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
		t.Fatal("SVG has NaN or Inf coordinates")
	}
}

func TestHuman(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.25: "0.25", 1500: "1.5k", 2e7: "20M", 120: "120"} {
		if got := human(v); got != want {
			t.Errorf("human(%v) = %q, want %q", v, got, want)
		}
	}
}
