package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// BenchmarkKafkaProxy: Kafka from anywhere's cost. One gateway (embedded broker,
// -kafka-over-mesh) on loopback; kgo produces 1 KiB records acks=all and then consumes them,
// once straight to the gateway's TCP listener (impl=tcp) and once through `mesh kafka-proxy`
// (impl=ours: each Kafka connection one QUIC stream over the mesh), same run, so benchjson
// prints the proxy's figure over direct TCP. Reports MB/s for each direction.
func BenchmarkKafkaProxy(b *testing.B) {
	irohnode.RequireNamespace(b)
	gw := cluster.StartProc(b, "gateway", nil, nil, cluster.Bin(b, "gateway"), "-data", b.TempDir(), "-listen", "127.0.0.1:0",
		"-kafka-over-mesh", "-mesh-bind", "127.0.0.1:0")
	const marker = "kafka over mesh: from anywhere, run: mesh kafka-proxy "
	gw.WaitFor(b, "its ticket", time.Minute, func() bool {
		out := gw.Stdout.String()
		return strings.Contains(out, marker) && strings.Contains(out, cluster.GatewayBanner)
	})
	out := gw.Stdout.String()
	_, rest, _ := strings.Cut(out, marker)
	tk := strings.Fields(rest)[0]
	_, rest, _ = strings.Cut(out, cluster.GatewayBanner)
	direct := strings.Fields(rest)[0]
	proxyAddr := cluster.FreeTCP(b)
	proxy := cluster.StartProc(b, "kafka-proxy", nil, nil, cluster.Bin(b, "mesh"), "kafka-proxy", tk, "-addr", proxyAddr, "-bind", "127.0.0.1:0")
	proxy.WaitFor(b, "the proxy listening", time.Minute, func() bool { return strings.Contains(proxy.Stdout.String(), "kafka-proxy: Kafka clients use") })

	const size = 1 << 10
	for _, tc := range []struct{ impl, addr string }{{"tcp", direct}, {"ours", proxyAddr}} {
		for _, dir := range []string{"produce", "consume"} {
			b.Run(dir+"/impl="+tc.impl, func(b *testing.B) {
				topic := "bench-" + tc.impl
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				n := b.N
				cl, err := kgo.NewClient(kgo.SeedBrokers(tc.addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic),
					kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				if err != nil {
					b.Fatal(err)
				}
				defer cl.Close()
				val := make([]byte, size)
				produce := func() {
					for range n {
						cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
							if err != nil {
								b.Error(err)
							}
						})
					}
					if err := cl.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
				if dir == "consume" {
					produce() // the records to read, before the clock starts
				}
				b.SetBytes(size)
				b.ResetTimer()
				if dir == "produce" {
					produce()
					return
				}
				for read := 0; read < n; {
					fs := cl.PollFetches(ctx)
					if err := ctx.Err(); err != nil {
						b.Fatalf("read %d of %d: %v", read, n, err)
					}
					read += fs.NumRecords()
				}
			})
		}
	}
}
