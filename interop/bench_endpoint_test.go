package interop

import (
	"context"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// endpointBenchPeers returns the pairings that involve our Go endpoint: ours (Go to Go),
// ours-rust (Go dials Rust) and rust-ours (Rust dials Go, timed in the driver).
func endpointBenchPeers(ctx context.Context, b *testing.B) map[string]benchPeer {
	discard := func(streamReport) {}
	sinkEndpoint := func() *endpoint.Endpoint {
		ep, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ep.Close() })
		ep.Handle(alpnSink, func(ctx context.Context, c *endpoint.Conn) {
			defer c.Close()
			goServe(ctx, c, irohnode.Sink, discard)
		})
		return ep
	}
	goUpload := func(c *endpoint.Conn) throughputPeer {
		return func(ctx context.Context, streams int) (time.Duration, error) {
			per := int64(benchBytes / streams)
			r, err := goTransfer(ctx, c, irohnode.Transfer{Streams: streams, Bytes: per})
			if err != nil {
				return 0, err
			}
			return r.Elapsed, checkSinkReplies(r.Streams, per)
		}
	}
	peers := map[string]benchPeer{}

	// Go -> Go. Our sender's data packets; the receiving endpoint's small packets are its ACKs.
	server, client := sinkEndpoint(), sinkEndpoint()
	c, err := client.Dial(ctx, server.Addr(), alpnSink)
	if err != nil {
		b.Fatal(err)
	}
	peers["ours"] = benchPeer{
		run:     goUpload(c),
		packets: func() (int64, int64) { return client.SocketStats().TxPackets, server.SocketStats().TxSmall },
		cpu:     func() (time.Duration, time.Duration) { return selfCPU(), 0 },
	}

	// Go -> Rust: our data packets, and the Rust receiver's ACKs as they arrive.
	rust := rustNode(b, irohnode.NodeOptions{ALPNs: testALPNs})
	if err := rust.AddNodeAddr(ctx, irohAddr(client)); err != nil {
		b.Fatal(err)
	}
	rc, err := client.Dial(ctx, meshAddr(b, rust), alpnSink)
	if err != nil {
		b.Fatal(err)
	}
	rustCPU := driverCPU(b, rust.Driver())
	peers["ours-rust"] = benchPeer{
		run: func(ctx context.Context, streams int) (time.Duration, error) {
			d, err := goUpload(rc)(ctx, streams)
			if err != nil {
				return 0, err
			}
			for range streams { // drain the sink's events
				if _, err := rust.WaitStream(ctx, ""); err != nil {
					return 0, err
				}
			}
			return d, nil
		},
		packets: func() (int64, int64) {
			s := client.SocketStats()
			return s.TxPackets - s.TxSmall, s.RxSmall
		},
		cpu: func() (time.Duration, time.Duration) { return selfCPU(), rustCPU() },
	}

	// Rust -> Go: a second Rust node (own driver) uploads to the Go sink. The data packets as
	// they arrive, and our ACKs.
	uploader := rustNode(b, irohnode.NodeOptions{})
	uc, err := uploader.Connect(ctx, irohAddr(server), alpnSink, "")
	if err != nil {
		b.Fatal(err)
	}
	uploaderCPU := driverCPU(b, uploader.Driver())
	peers["rust-ours"] = benchPeer{
		run: func(ctx context.Context, streams int) (time.Duration, error) {
			per := int64(benchBytes / streams)
			r, err := uc.Transfer(ctx, irohnode.Transfer{Streams: streams, Bytes: per})
			if err != nil {
				return 0, err
			}
			return time.Duration(r.MS * float64(time.Millisecond)), checkSinkReplies(r.Streams, per)
		},
		packets: func() (int64, int64) {
			s := server.SocketStats()
			return s.RxPackets - s.RxSmall, s.TxSmall
		},
		cpu: func() (time.Duration, time.Duration) { return uploaderCPU(), selfCPU() },
	}
	return peers
}
