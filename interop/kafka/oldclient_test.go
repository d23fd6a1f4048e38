package kafka_test

// Old clients: librdkafka told not to ask ApiVersions (api.version.request=false) and to
// assume a 0.9.0 broker speaks Produce v1, Fetch v1 (magic 0 message sets), ListOffsets v0,
// Metadata v0 and the v0 group APIs. It must produce and consume through the gateway.

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKcatOldBrokerFallback(t *testing.T) {
	bin := kcatBin(t)
	s := rcStart(t, t.TempDir(), "")
	s.createTopic(t, "old", 1)
	old := []string{"-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"}

	const n = 200
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "v%04d\n", i)
	}
	args := append([]string{"-b", s.addr, "-P", "-t", "old", "-z", "gzip"}, old...)
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(in.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P (0.9 fallback): %v\n%s", err, out)
	}
	// A modern producer adds compressed v2 batches with headers: they are down-converted too.
	cl := s.kgo(t, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	for i := n; i < 2*n; i++ {
		r := &kgo.Record{Topic: "old", Value: fmt.Appendf(nil, "v%04d", i), Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}
		if err := cl.ProduceSync(t.Context(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	consume := func(from string) []string {
		args := append([]string{"-b", s.addr, "-C", "-t", "old", "-o", from, "-e", "-f", "%o:%s\n"}, old...)
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -C -o %s (0.9 fallback): %v\n%s", from, err, out)
		}
		var lines []string
		for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
			if strings.Contains(l, ":v") {
				lines = append(lines, l)
			}
		}
		return lines
	}
	got := consume("beginning") // ListOffsets v0 earliest, then Fetch v1
	if len(got) != 2*n {
		t.Fatalf("consumed %d messages, want %d: %q", len(got), 2*n, got)
	}
	for i, l := range got {
		if want := fmt.Sprintf("%d:v%04d", i, i); l != want {
			t.Fatalf("message %d: %q, want %q", i, l, want)
		}
	}
	// An absolute offset inside a batch: records before it are not delivered.
	got = consume("250")
	if len(got) != 2*n-250 || got[0] != "250:v0250" {
		t.Fatalf("from offset 250: %d messages, first %q", len(got), got[:min(1, len(got))])
	}
}
