package endpoint

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/internal/cputime"
)

const sinkALPN = "/test/sink/0"

// sink reads each bidi stream to EOF, then answers one byte and closes.
func sink(ctx context.Context, c *Conn) {
	defer c.Close()
	c.ServeStreams(ctx, func(s *quic.Stream) {
		if _, err := io.Copy(io.Discard, s); err != nil {
			return
		}
		s.Write([]byte{1})
		s.Close()
	})
}

// send writes n bytes on a new stream and waits for the sink's ack.
func send(ctx context.Context, c *Conn, buf []byte, n int) error {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return err
	}
	for n > 0 {
		k := min(n, len(buf))
		if _, err := s.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	s.Close()
	ack := make([]byte, 1)
	if _, err := io.ReadFull(s, ack); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// BenchmarkQUICThroughput moves 32 MiB per iteration Go to Go over
// loopback, on one connection split over N parallel streams, each to a
// sink that acknowledges the end of its stream. It reports MB/s of payload
// and the CPU time both ends spent per payload byte.
//
// gate=off is the default; gate=on runs both endpoints with the receive gate (Options.RxGate),
// gate=hold with a gate that holds but does not mark (the gate before its ECN mark, kept for
// comparison). held-us/op is the time the server's gate held its reader.
func BenchmarkQUICThroughput(b *testing.B) {
	for _, streams := range []int{1, 16} {
		for _, gate := range []string{"off", "on", "hold"} {
			b.Run(fmt.Sprintf("streams=%d/impl=ours/gate=%s", streams, gate), func(b *testing.B) {
				benchThroughput(b, streams, Options{BindAddr: "127.0.0.1:0", RxGate: gate != "off"}, func(g *rxGate) {
					if gate == "hold" {
						g.mark = 0
					}
				})
			})
		}
	}
}

func benchThroughput(b *testing.B, streams int, opts Options, tune func(*rxGate)) {
	const total = 32 << 20
	a, srv := newEPWith(b, opts), newEPWith(b, opts)
	for _, e := range []*Endpoint{a, srv} {
		if e.sock.gate != nil && tune != nil {
			tune(e.sock.gate)
		}
	}
	srv.Handle(sinkALPN, sink)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := a.Dial(ctx, srv.Addr(), sinkALPN)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	per := total / streams
	b.ReportAllocs()
	start, cpu0 := time.Now(), cputime.Self()
	for b.Loop() {
		var wg sync.WaitGroup
		errs := make(chan error, streams)
		for range streams {
			wg.Go(func() {
				if err := send(ctx, c, buf, per); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	secs := time.Since(start).Seconds()
	moved := float64(total) * float64(b.N)
	b.ReportMetric(moved/secs/1e6, "MB/s")
	// CPU of both ends per payload byte: steadier than MB/s on a
	// shared machine, for tuning.
	if cpu := cputime.Self() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/moved, "cpu-ns/B")
	}
	// Loss on loopback means a queue overflowed: quic-go's per-connection queue of 256
	// datagrams (the receive gate prevents that) or, rarely, the socket buffer. qdrop counts
	// the first: what the server's socket handed to quic-go and its connection never took.
	// quic-go counts every congestion event in PacketsLost, an ECN mark too (with no
	// packet lost): with the gate on, lost-pkts/op is ce-marks/op.
	st := c.QUIC().ConnectionStats()
	b.ReportMetric(float64(st.PacketsLost)/float64(b.N), "lost-pkts/op")
	if processed, _, ok := srv.rxProgress(a.LocalAddr()); ok {
		dropped := srv.SocketStats().RxBytes - int64(processed)
		b.ReportMetric(float64(dropped)/1452/float64(b.N), "qdrop-pkts/op")
	}
	b.ReportMetric(float64(st.BytesSent)/float64(max(st.PacketsSent, 1)), "B/pkt")
	ss := srv.SocketStats()
	b.ReportMetric(float64(ss.RxHeld)/float64(b.N), "held/op")
	b.ReportMetric(float64(ss.RxHeldTime.Microseconds())/float64(b.N), "held-us/op")
	b.ReportMetric(float64(ss.RxGateStalls)/float64(b.N), "stalls/op")
	b.ReportMetric(float64(ss.RxMarked)/float64(b.N), "ce-marks/op")
}
