package interop

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// benchBytes is what one benchmark iteration uploads, split evenly over the streams.
const benchBytes = 32 << 20

// throughputPeer uploads benchBytes over `streams` concurrent bi streams to a sink and returns
// the time the transfer took (measured where the upload runs) after checking the sink's reply.
type throughputPeer func(ctx context.Context, streams int) (time.Duration, error)

// benchPeer is one pairing of the throughput benchmark.
type benchPeer struct {
	run throughputPeer
	// packets, if set, returns cumulative packet counts of this pairing as our sockets saw
	// them (see endpoint.SocketStats).
	packets func() packetCounts
	// cpu returns cumulatively the CPU time of the sending and the receiving process. When
	// both ends are in this process (Go to Go), recv is zero and send holds both.
	cpu func() (send, recv time.Duration)
}

// packetCounts are a pairing's packets so far.
type packetCounts struct {
	data, dataBytes int64 // data packets (over 128 bytes) and their bytes
	acks            int64 // the receiver's small packets: its ACKs
	// dropped is what a Go receiver's socket handed to quic-go but its connection never
	// processed (quic-go drops datagrams when 256 wait in a connection's queue), in bytes;
	// -1 when the receiver is not ours.
	dropped int64
	// marked counts the datagrams a Go receiver's receive gate marked ECN Congestion
	// Experienced; -1 when the receiver is not ours.
	marked int64
	held   int64 // times a Go receiver's receive gate held its reader; -1 when not ours
}

// BenchmarkQUICThroughput measures QUIC stream upload throughput on loopback inside the private
// namespace, for every pairing in the same run so the figures compare: impl=ours (Go endpoint
// to Go endpoint), impl=rust (Rust node to Rust node, two driver processes, timed in the
// driver), impl=ours-rust (Go dials Rust), impl=rust-ours (Rust dials Go). Each iteration moves
// 32 MiB to a sink that replies with its byte count and sha256, which is checked.
//
// Besides MB/s it reports the CPU time the sending and the receiving process spent per MB
// (send-ms/MB, recv-ms/MB; for ours both ends are one process, in send-ms/MB), which is what
// decides throughput once the machine is loaded, and, where a Go endpoint is at either end,
// the data packets and the receiver's ACK packets per MB and the data packets' mean size as
// our socket counted them, and, where the receiver is ours, the packets its quic-go dropped
// per MB, and the datagrams its receive gate marked ECN Congestion Experienced and the times
// it held its reader, per MB.
// impl=ours-gate and impl=rust-ours-gate are ours and rust-ours with the receive gate on
// (endpoint.Options.RxGate).
func BenchmarkQUICThroughput(b *testing.B) {
	irohnode.RequireNamespace(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	peers := map[string]benchPeer{"rust": rustToRustPeer(ctx, b)}
	for name, p := range endpointBenchPeers(ctx, b) {
		peers[name] = p
	}
	for _, streams := range []int{1, 16} {
		for _, impl := range []string{"ours", "ours-gate", "rust", "ours-rust", "rust-ours", "rust-ours-gate"} {
			p, ok := peers[impl]
			if !ok {
				continue
			}
			b.Run(fmt.Sprintf("streams=%d/impl=%s", streams, impl), func(b *testing.B) {
				var moved int64
				var spent time.Duration
				var pc0 packetCounts
				if p.packets != nil {
					pc0 = p.packets()
				}
				send0, recv0 := p.cpu()
				for b.Loop() {
					d, err := p.run(ctx, streams)
					if err != nil {
						b.Fatal(err)
					}
					moved += benchBytes
					spent += d
				}
				send1, recv1 := p.cpu()
				mb := float64(moved) / 1e6

				b.ReportMetric(mb/spent.Seconds(), "MB/s")
				b.ReportMetric(float64((send1-send0).Milliseconds())/mb, "send-ms/MB")
				b.ReportMetric(float64((recv1-recv0).Milliseconds())/mb, "recv-ms/MB")
				if p.packets != nil {
					pc1 := p.packets()
					data := pc1.data - pc0.data
					b.ReportMetric(float64(data)/mb, "pkts/MB")
					b.ReportMetric(float64(pc1.acks-pc0.acks)/mb, "acks/MB")
					b.ReportMetric(float64(pc1.dataBytes-pc0.dataBytes)/float64(max(data, 1)), "B/pkt")
					if pc1.dropped >= 0 {
						b.ReportMetric(float64(pc1.dropped-pc0.dropped)/1452/mb, "qdrop-pkts/MB")
					}
					if pc1.marked >= 0 {
						b.ReportMetric(float64(pc1.marked-pc0.marked)/mb, "ce-marks/MB")
						b.ReportMetric(float64(pc1.held-pc0.held)/mb, "held/MB")
					}
				}
			})
		}
	}
}

// driverCPU returns a function reading a driver process's CPU time; a read failure (the
// process is gone) fails the benchmark.
func driverCPU(b *testing.B, d *irohnode.Driver) func() time.Duration {
	return func() time.Duration {
		t, err := procCPU(d.PID())
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
}

// rustToRustPeer: two Rust nodes in two drivers; the upload is timed inside the driver.
func rustToRustPeer(ctx context.Context, b *testing.B) benchPeer {
	sinkNode := rustNode(b, irohnode.NodeOptions{ALPNs: testALPNs})
	client := rustNode(b, irohnode.NodeOptions{})
	c, err := client.Connect(ctx, sinkNode.Direct(), alpnSink, "")
	if err != nil {
		b.Fatal(err)
	}
	sendCPU, recvCPU := driverCPU(b, client.Driver()), driverCPU(b, sinkNode.Driver())
	run := func(ctx context.Context, streams int) (time.Duration, error) {
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
	return benchPeer{run: run, cpu: func() (time.Duration, time.Duration) { return sendCPU(), recvCPU() }}
}

// sinkReplies caches the expected sink reply hash per stream size: hashing 32 MiB of
// pattern per iteration would add to this process's CPU figures.
var sinkReplies sync.Map // int64 -> string

// checkSinkReplies checks that every stream's reply is the sink's "<n> <sha256>\n" for per
// pattern bytes.
func checkSinkReplies(rs []irohnode.StreamResult, per int64) error {
	w, ok := sinkReplies.Load(per)
	if !ok {
		w, _ = sinkReplies.LoadOrStore(per, sinkReplySHA256(per, irohnode.PatternSHA256(per)))
	}
	want := w.(string)
	for i, s := range rs {
		if s.SentBytes != per || s.RecvSHA256 != want {
			return fmt.Errorf("stream %d: sent %d bytes, reply hash %s, want %d bytes and %s", i, s.SentBytes, s.RecvSHA256, per, want)
		}
	}
	return nil
}
