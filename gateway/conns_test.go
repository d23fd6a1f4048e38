package gateway_test

import (
	"log/slog"
	"net"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// raiseFileLimit lifts the soft RLIMIT_NOFILE to at least n (restored when t ends), or
// skips t when the hard limit is lower.
func raiseFileLimit(t testing.TB, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("RLIMIT_NOFILE hard limit %d < %d", lim.Max, n)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// dialMany opens n raw connections to addr; the test closes them.
func dialMany(t testing.TB, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial #%d: %v", len(conns), err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Minute)) // a hung server fails the test instead of hanging it
		conns = append(conns, c)
	}
	return conns
}

// produceOnAll sends one acks=all produce of a one-record batch on every connection before
// reading any answer (so all n requests are in flight at once), then reads every answer and
// returns the base offsets.
func produceOnAll(t testing.TB, conns []net.Conn, topic string, parts int32, corr int32) []int64 {
	t.Helper()
	for i, c := range conns {
		if _, err := c.Write(encode(produceReq(9, topic, int32(i)%parts, batch(1)), corr)); err != nil {
			t.Fatalf("write on connection %d: %v", i, err)
		}
	}
	offsets := make([]int64, len(conns))
	for i, c := range conns {
		frame, err := kafkawire.NewFrameReader(c, 0).Next()
		if err != nil {
			t.Fatalf("answer on connection %d: %v", i, err)
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		if err := resp.ReadFrom(frame[5:]); err != nil { // correlation id, header tags
			t.Fatal(err)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 {
			t.Fatalf("connection %d: produce error %d", i, p.ErrorCode)
		}
		offsets[i] = p.BaseOffset
	}
	return offsets
}

// TestManyConnections: 2,000 client connections open at once on one gateway, each with a
// produce in flight at the same time, are all served; every record lands exactly once
// (per partition, offsets 0..n-1), and every connection still works afterwards.
func TestManyConnections(t *testing.T) {
	const n, parts = 2000, 8
	raiseFileLimit(t, 2*n+256) // both ends of every connection live in this process
	ts := start(t, gateway.Config{Backend: gatewaytest.NewMem(parts)})
	createTopic(t, dial(t, ts.addr), "many-conns", parts)
	conns := dialMany(t, ts.addr, n)
	for round := range 2 {
		offs := produceOnAll(t, conns, "many-conns", parts, int32(round+1))
		byPart := make([][]int64, parts)
		for i, o := range offs {
			byPart[i%parts] = append(byPart[i%parts], o)
		}
		for p, got := range byPart {
			slices.Sort(got)
			for k, o := range got {
				if want := int64(round*n/parts + k); o != want {
					t.Fatalf("round %d partition %d: offsets %v..., want %d at %d", round, p, got[:min(len(got), 8)], want, k)
				}
			}
		}
	}
	if got := ts.mem.Calls("Produce"); got < 2*n {
		t.Fatalf("%d produce calls reached the backend, want %d", got, 2*n)
	}
}

// BenchmarkIdleConnections reports what an idle client connection costs the gateway: live
// heap plus goroutine stacks (and the stacks alone), and goroutines, per connection, after each of 1,000
// connections produced one record and went quiet. The cost of the sockets themselves (both
// ends live in this process) is measured with a plain listener that only accepts and is
// subtracted.
func BenchmarkIdleConnections(b *testing.B) {
	const n = 1000
	raiseFileLimit(b, 2*n+256)
	for b.Loop() {
		base := idleCost(b, n, false)
		gw := idleCost(b, n, true)
		b.ReportMetric((gw.bytes-base.bytes)/n, "bytes/idle-conn")
		b.ReportMetric((gw.stack-base.stack)/n, "stack-bytes/idle-conn")
		b.ReportMetric((gw.goroutines-base.goroutines)/n, "goroutines/idle-conn")
	}
}

type memCost struct{ bytes, stack, goroutines float64 }

// idleCost opens n connections to a gateway (or to a listener that only holds them) and
// returns the memory (heap in use by live objects + stacks) and goroutines they add.
//
// The timer keeps running: with the whole body untimed, b.Loop would never reach the bench
// time and would run forever (`go tool task bench` hung here); the figures are the
// ReportMetric ones, not ns/op.
func idleCost(b *testing.B, n int, viaGateway bool) memCost {
	measure := func() memCost {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return memCost{float64(ms.HeapAlloc + ms.StackInuse), float64(ms.StackInuse), float64(runtime.NumGoroutine())}
	}
	var addr string
	var stop func()
	var held chan net.Conn
	if viaGateway {
		g := serve.Start(b, gateway.Config{Backend: gatewaytest.NewMem(8), Logger: slog.New(slog.DiscardHandler)}, nil)
		addr, stop = g.Addr, g.Stop
		c := dial(b, addr)
		createTopic(b, c, "idle", 8)
		c.c.Close()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		held = make(chan net.Conn, n)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				held <- c
			}
		}()
		addr = ln.Addr().String()
		stop = func() { ln.Close(); <-done }
	}
	before := measure()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	if viaGateway {
		produceOnAll(b, conns, "idle", 8, 2)
	} else {
		for range n {
			conns = append(conns, <-held) // accepted: the server end exists
		}
	}
	after := measure()
	for _, c := range conns {
		c.Close()
	}
	stop()
	return memCost{after.bytes - before.bytes, after.stack - before.stack, after.goroutines - before.goroutines}
}

// failingListener fails its first n Accepts with err, then hands out the real listener's
// connections.
type failingListener struct {
	net.Listener
	err error
	n   int
}

func (l *failingListener) Accept() (net.Conn, error) {
	if l.n > 0 {
		l.n--
		return nil, l.err
	}
	return l.Listener.Accept()
}

// Running out of descriptors (EMFILE) while accepting must not stop the gateway: it waits and
// accepts again, and the connections it already serves and the ones after keep working. Any
// other accept error still ends Serve.
func TestAcceptOutOfDescriptorsKeepsServing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln, err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}, n: 5}
	g := serve.Start(t, gateway.Config{Backend: gatewaytest.NewMem(8), Logger: slog.New(slog.DiscardHandler)}, fl)
	c := dial(t, g.Addr)
	createTopic(t, c, "after-emfile", 1)
	c.c.Close()
	g.Stop() // fails the test unless Serve ends with ErrServerClosed
	if t.Failed() {
		t.FailNow()
	}

	srv2, err := gateway.NewServer(gateway.Config{Backend: gatewaytest.NewMem(8), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	bad := &failingListener{Listener: ln2, err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EINVAL}, n: 1}
	if err := srv2.Serve(bad); err == nil || err == gateway.ErrServerClosed {
		t.Fatalf("Serve with a broken listener: %v, want its error", err)
	}
}
