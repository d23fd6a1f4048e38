package interop

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// TestKafkaProxyThroughNATs is "Kafka from anywhere": a gateway (embedded broker,
// -kafka-over-mesh) behind one home NAT, `mesh kafka-proxy <its ticket>` behind another, a
// cmd/relay on the internet side between them. Kafka clients on the proxy's host — kgo and,
// when installed, kcat — produce and consume through 127.0.0.1:9092 there, and Metadata names
// the proxy's address. The proxy reports its path to the gateway: it starts through the relay
// and moves to a direct path once disco punches through both NATs (asserted from what the
// proxy prints). Then UDP between the two NATs is blocked, so the mesh falls back to the
// relay (asserted too), and the clients carry on.
func TestKafkaProxyThroughNATs(t *testing.T) {
	irohnode.RequireNamespace(t)
	cluster.RequireNamespaces(t) // root, nft, nsenter, unshare and ip for natTopology
	inet, ha, hb := natTopology(t)
	relayURL := "http://100.64.1.1:3340"
	relay := cluster.StartProc(t, "relay", inet, nil, cluster.Bin(t, "relay"), "-addr", "100.64.1.1:3340", "-stun", "100.64.1.1:3478")
	relay.WaitFor(t, "relay serving", time.Minute, func() bool { return strings.Contains(relay.Stdout.String(), "serving") })

	gw := cluster.StartProc(t, "gateway", hb, nil, cluster.Bin(t, "gateway"), "-data", t.TempDir(), "-listen", "127.0.0.1:9092",
		"-kafka-over-mesh", "-mesh-bind", "10.0.2.2:0", "-relay", relayURL, "-stun", "100.64.1.1:3478")
	const marker = "kafka over mesh: from anywhere, run: mesh kafka-proxy "
	gw.WaitFor(t, "its ticket", time.Minute, func() bool { return strings.Contains(gw.Stdout.String(), marker) })
	_, rest, _ := strings.Cut(gw.Stdout.String(), marker)
	tk := strings.Fields(rest)[0]

	proxy := cluster.StartProc(t, "kafka-proxy", ha, nil, cluster.Bin(t, "mesh"), "kafka-proxy", tk, "-addr", "127.0.0.1:9092",
		"-bind", "10.0.1.2:0", "-relay", relayURL, "-stun", "100.64.1.1:3478")
	proxy.WaitFor(t, "the proxy listening", time.Minute, func() bool { return strings.Contains(proxy.Stdout.String(), "kafka-proxy: Kafka clients use") })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:9092"), kgo.Dialer(ha.DialContext), kgo.AllowAutoTopicCreation(),
		kgo.DefaultProduceTopic("far"), kgo.ConsumeTopics("far"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("r%d", i))}).FirstErr(); err != nil {
				t.Fatalf("produce %d through the proxy: %v\n%s\n%s", i, err, proxy.Tail(20), gw.Tail(20))
			}
		}
	}
	var got []string
	consume := func(want int) {
		t.Helper()
		for len(got) < want {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d: %v", len(got), want, ctx.Err())
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
	}
	produce(0, 10)
	consume(10)
	if bin, err := exec.LookPath("kcat"); err == nil {
		out, err := ha.Output(bin, "-b", "127.0.0.1:9092", "-L", "-t", "far")
		if err != nil || !strings.Contains(string(out), "127.0.0.1:9092") {
			t.Fatalf("kcat -L through the proxy: %v\n%s", err, out)
		}
	}

	// Hole punching: the proxy's path to the gateway becomes direct (through both NATs).
	proxy.WaitFor(t, "a direct path to the gateway", 2*time.Minute, func() bool {
		out := proxy.Stdout.String()
		return strings.Contains(out, "kafka-proxy path: direct") || strings.Contains(out, "-> direct")
	})

	// Direct UDP between the NATs blocked: the mesh goes on through the relay.
	inet.Run(t, "nft", "add rule inet fw filt meta l4proto udp ip daddr != 100.64.1.1 ip saddr != 100.64.1.1 drop")
	produce(10, 20)
	consume(20)
	proxy.WaitFor(t, "the fall back to the relay", 2*time.Minute, func() bool {
		return strings.Contains(proxy.Stdout.String(), "path switched: direct -> relay")
	})
	for i, v := range got {
		if v != fmt.Sprintf("r%d", i) {
			t.Fatalf("record %d is %q: read %q", i, v, got)
		}
	}
}
