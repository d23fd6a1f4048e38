package interop

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/cputime"
	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// endpointBenchPeers returns the pairings that involve our Go endpoint: ours (Go to Go),
// ours-rust (Go dials Rust), rust-ours (Rust dials Go, timed in the driver), and ours-gate
// and rust-ours-gate: Go to Go and Rust to Go with the receive gate on
// (endpoint.Options.RxGate), for comparison.
func endpointBenchPeers(ctx context.Context, b *testing.B) map[string]benchPeer {
	discard := func(streamReport) {}
	// accepted holds each sink endpoint's latest accepted connection.
	accepted := map[*endpoint.Endpoint]*atomic.Pointer[endpoint.Conn]{}
	sinkEndpoint := func(gate bool) *endpoint.Endpoint {
		ep, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0", RxGate: gate})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ep.Close() })
		last := new(atomic.Pointer[endpoint.Conn])
		accepted[ep] = last
		ep.Handle(alpnSink, func(ctx context.Context, c *endpoint.Conn) {
			last.Store(c)
			defer c.Close()
			goServe(ctx, c, irohnode.Sink, discard)
		})
		return ep
	}
	// received counts what a Go sink received from a sender and what quic-go dropped of it.
	received := func(ep *endpoint.Endpoint) packetCounts {
		s := ep.SocketStats()
		pc := packetCounts{data: s.RxPackets - s.RxSmall, acks: s.TxSmall, dataBytes: s.RxBytes, dropped: s.RxBytes, marked: s.RxMarked, held: s.RxHeld}
		if c := accepted[ep].Load(); c != nil {
			pc.dropped -= int64(c.QUIC().ConnectionStats().BytesReceived)
		}
		return pc
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

	// Go -> Go. Each sink endpoint serves one pairing, so its socket counts only that one.
	// ours-gate: the same with the receive gate on both endpoints.
	goToGo := func(gate bool) (benchPeer, *endpoint.Endpoint) {
		server, client := sinkEndpoint(gate), sinkEndpoint(gate)
		c, err := client.Dial(ctx, server.Addr(), alpnSink)
		if err != nil {
			b.Fatal(err)
		}
		return benchPeer{
			run:     goUpload(c),
			packets: func() packetCounts { return received(server) },
			cpu:     func() (time.Duration, time.Duration) { return cputime.Self(), 0 },
		}, client
	}
	var client *endpoint.Endpoint
	peers["ours"], client = goToGo(false)
	peers["ours-gate"], _ = goToGo(true)

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
		packets: func() packetCounts {
			s := client.SocketStats()
			return packetCounts{data: s.TxPackets - s.TxSmall, dataBytes: s.TxBytes, acks: s.RxSmall, dropped: -1, marked: -1, held: -1}
		},
		cpu: func() (time.Duration, time.Duration) { return cputime.Self(), rustCPU() },
	}

	// Rust -> Go: a second Rust node (own driver) uploads to the Go sink. The data packets as
	// they arrive, and our ACKs. rust-ours-gate: the same to a Go sink with the receive gate.
	uploader := rustNode(b, irohnode.NodeOptions{})
	uploaderCPU := driverCPU(b, uploader.Driver())
	rustUpload := func(sink *endpoint.Endpoint) benchPeer {
		uc, err := uploader.Connect(ctx, irohAddr(sink), alpnSink, "")
		if err != nil {
			b.Fatal(err)
		}
		return benchPeer{
			run: func(ctx context.Context, streams int) (time.Duration, error) {
				per := int64(benchBytes / streams)
				r, err := uc.Transfer(ctx, irohnode.Transfer{Streams: streams, Bytes: per})
				if err != nil {
					return 0, err
				}
				return time.Duration(r.MS * float64(time.Millisecond)), checkSinkReplies(r.Streams, per)
			},
			packets: func() packetCounts { return received(sink) },
			cpu:     func() (time.Duration, time.Duration) { return uploaderCPU(), cputime.Self() },
		}
	}
	peers["rust-ours"] = rustUpload(sinkEndpoint(false))
	peers["rust-ours-gate"] = rustUpload(sinkEndpoint(true))
	return peers
}
