package interop

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// benchBytes is what one benchmark iteration uploads, split evenly over the streams.
const benchBytes = 32 << 20

// throughputPeer uploads benchBytes over `streams` concurrent bi streams to a sink and returns
// the time the transfer took (measured where the upload runs) after checking the sink's reply.
type throughputPeer func(ctx context.Context, streams int) (time.Duration, error)

// BenchmarkQUICThroughput measures QUIC stream upload throughput on loopback inside the private
// namespace, for every pairing in the same run so the figures compare: impl=ours (Go endpoint
// to Go endpoint), impl=rust (Rust node to Rust node, two driver processes, timed in the
// driver), impl=ours-rust (Go dials Rust), impl=rust-ours (Rust dials Go). Each iteration moves
// 32 MiB to a sink that replies with its byte count and sha256, which is checked.
func BenchmarkQUICThroughput(b *testing.B) {
	irohnode.RequireNamespace(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	peers := map[string]throughputPeer{"rust": rustToRustPeer(ctx, b)}
	for name, p := range endpointBenchPeers(ctx, b) {
		peers[name] = p
	}
	for _, streams := range []int{1, 16} {
		for _, impl := range []string{"ours", "rust", "ours-rust", "rust-ours"} {
			p, ok := peers[impl]
			if !ok {
				continue
			}
			b.Run(fmt.Sprintf("streams=%d/impl=%s", streams, impl), func(b *testing.B) {
				var moved int64
				var spent time.Duration
				for b.Loop() {
					d, err := p(ctx, streams)
					if err != nil {
						b.Fatal(err)
					}
					moved += benchBytes
					spent += d
				}
				b.ReportMetric(float64(moved)/1e6/spent.Seconds(), "MB/s")
			})
		}
	}
}

// rustToRustPeer: two Rust nodes in two drivers; the upload is timed inside the driver.
func rustToRustPeer(ctx context.Context, b *testing.B) throughputPeer {
	sinkNode := rustNode(b, irohnode.NodeOptions{ALPNs: testALPNs})
	client := rustNode(b, irohnode.NodeOptions{})
	c, err := client.Connect(ctx, sinkNode.Direct(), alpnSink, "")
	if err != nil {
		b.Fatal(err)
	}
	return func(ctx context.Context, streams int) (time.Duration, error) {
		per := int64(benchBytes / streams)
		r, err := c.Transfer(ctx, irohnode.Transfer{Streams: streams, Bytes: per})
		if err != nil {
			return 0, err
		}
		// Drain the sink's stream events so the driver's event log stays small.
		for range streams {
			if _, err := sinkNode.WaitStream(ctx, ""); err != nil {
				return 0, err
			}
		}
		if err := checkSinkReplies(r.Streams, per); err != nil {
			return 0, err
		}
		return time.Duration(r.MS * float64(time.Millisecond)), nil
	}
}

// checkSinkReplies checks that every stream's reply is the sink's "<n> <sha256>\n" for per
// pattern bytes.
func checkSinkReplies(rs []irohnode.StreamResult, per int64) error {
	want := sinkReplySHA256(per, irohnode.PatternSHA256(per))
	for i, s := range rs {
		if s.SentBytes != per || s.RecvSHA256 != want {
			return fmt.Errorf("stream %d: sent %d bytes, reply hash %s, want %d bytes and %s", i, s.SentBytes, s.RecvSHA256, per, want)
		}
	}
	return nil
}
