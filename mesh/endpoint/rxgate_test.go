package endpoint

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/meshkafka/meshkafka/internal/clock"
)

// fakeConns stands in for the endpoint's connection table: processed bytes and a
// generation per source address.
type fakeConns struct {
	mu        sync.Mutex
	processed map[netip.AddrPort]uint64
	gen       uint64
}

func newFakeConns() *fakeConns { return &fakeConns{processed: map[netip.AddrPort]uint64{}} }

func (f *fakeConns) progress(from netip.AddrPort) (uint64, uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.processed[from]
	return p, f.gen, ok
}

func (f *fakeConns) set(from netip.AddrPort, processed uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.processed[from] = processed
}

func (f *fakeConns) remove(from netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.processed, from)
	f.gen++
}

var (
	srcA = netip.MustParseAddrPort("127.0.0.1:1000")
	srcB = netip.MustParseAddrPort("127.0.0.1:2000")
)

// testGate is a gate with small round limits on a fake clock (returned, at the Unix
// epoch), whose pause between looks at the progress is one fake millisecond.
// srcAGate is testGate on fake connections from srcA alone, nothing processed yet.
func srcAGate() (*fakeConns, *rxGate, *clock.Fake) {
	fc := newFakeConns()
	fc.set(srcA, 0)
	g, clk := testGate(fc)
	return fc, g, clk
}

func testGate(fc *fakeConns) (*rxGate, *clock.Fake) {
	clk := clock.NewFake(time.Unix(0, 0))
	g := newRxGate(clk, fc.progress)
	g.limit, g.resume, g.stall = 1000, 500, 10*time.Millisecond
	g.pause = func() {
		t := clk.NewTimer(time.Millisecond)
		defer t.Stop()
		<-t.C()
	}
	g.held, g.heldNanos = new(atomic.Int64), new(atomic.Int64)
	return g, clk
}

// wantBacklog fails t unless g's backlog for srcA is want; when says at which point
// ("" for none).
func wantBacklog(t *testing.T, g *rxGate, want uint64, when string) {
	t.Helper()
	if b, _, _ := g.backlog(srcA); b != want {
		if when != "" {
			when = " " + when
		}
		t.Fatalf("backlog%s = %d, want %d", when, b, want)
	}
}

// tick moves clk on by the gate's one-millisecond pause and lets the goroutines of the
// synctest bubble settle.
func tick(clk *clock.Fake) {
	clk.Advance(time.Millisecond)
	synctest.Wait()
}

// admitAsync runs admit in a goroutine and returns a channel closed when it returns.
func admitAsync(g *rxGate, from netip.AddrPort, n int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.admit(from, n)
	}()
	return done
}

func returned(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// Up to the limit nothing waits; the backlog is what was handed over minus what the
// connections processed since.
func TestRxGateBacklogBelowLimit(t *testing.T) {
	fc := newFakeConns()
	fc.set(srcA, 7000) // processed before the gate saw the source: not counted
	g, _ := testGate(fc)
	for _, n := range []int{400, 300, 300} {
		g.admit(srcA, n) // would block forever on the fake clock if it waited
	}
	wantBacklog(t, g, 1000, "")
	fc.set(srcA, 7600)
	wantBacklog(t, g, 400, "after 600 processed")
	if n := g.held.Load(); n != 0 {
		t.Fatalf("held %d times below the limit", n)
	}
}

// Over the limit admit holds until the connections have worked the backlog down to
// resume, and no longer.
func TestRxGateHoldsUntilResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc, g, clk := srcAGate()
		g.admit(srcA, 900)
		done := admitAsync(g, srcA, 300) // backlog 1200 > 1000
		synctest.Wait()
		if returned(done) {
			t.Fatal("admit returned with the backlog over the limit")
		}
		fc.set(srcA, 600) // backlog 600: still above resume
		tick(clk)
		if returned(done) {
			t.Fatal("admit returned with the backlog above resume")
		}
		fc.set(srcA, 700) // backlog 500 = resume
		tick(clk)
		if !returned(done) {
			t.Fatal("admit still holding with the backlog at resume")
		}
		wantBacklog(t, g, 500, "")
		if n := g.held.Load(); n != 1 {
			t.Fatalf("held %d times, want 1", n)
		}
		if d := time.Duration(g.heldNanos.Load()); d != 2*time.Millisecond {
			t.Fatalf("held for %v, want the two fake milliseconds it waited", d)
		}
	})
}

// Progress that keeps coming, however slowly, keeps admit holding past the stall period;
// a stall period without any progress ends the hold and re-bases the estimate.
func TestRxGateStallRebases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fc, g, clk := srcAGate()
		done := admitAsync(g, srcA, 5000)
		for i := range 15 { // 15 ms, 1 byte processed per ms: slow but moving
			fc.set(srcA, uint64(i+1))
			tick(clk)
			if returned(done) {
				t.Fatalf("admit returned after %d ms although the connection was making progress", i+1)
			}
		}
		for range 10 { // now nothing for the stall period
			tick(clk)
		}
		if !returned(done) {
			t.Fatal("admit still holding after a stall period without progress")
		}
		wantBacklog(t, g, 0, "after stall (re-based)")
	})
}

// A change in the set of connections, an estimate below zero, or no connection at all
// each reset the accounting instead of holding on a stale figure.
func TestRxGateRebase(t *testing.T) {
	fc := newFakeConns()
	fc.set(srcA, 100)
	fc.set(srcB, 0)
	g, _ := testGate(fc)
	g.admit(srcA, 800)
	g.admit(srcB, 800)

	fc.remove(srcB) // srcB's connection closes; srcA's generation changes too
	if _, _, ok := g.backlog(srcB); ok {
		t.Fatal("backlog for an address without connections")
	}
	if _, ok := g.srcs[srcB]; ok {
		t.Fatal("ledger kept for an address without connections")
	}
	wantBacklog(t, g, 0, "after the connection set changed")

	g.admit(srcA, 300)
	fc.set(srcA, 100+500) // processed more than we handed over since the re-base
	wantBacklog(t, g, 0, "after an underestimate")
	g.admit(srcA, 200)
	wantBacklog(t, g, 200, "")

	// No connection from srcB at all: admit never holds.
	g.admit(srcB, 1<<20)
	if _, ok := g.srcs[srcB]; ok {
		t.Fatal("ledger made for an address without connections")
	}
}

// The socket consults the gate for every datagram it hands over, with the datagram's
// source and size, in runs per source.
func TestSockDeliverAdmitsPerSource(t *testing.T) {
	s, _ := testSock(t, false)
	type admitted struct {
		from netip.AddrPort
		n    int
	}
	var got []admitted
	fc := newFakeConns()
	a, b := net.UDPAddrFromAddrPort(srcA), net.UDPAddrFromAddrPort(srcB)
	fc.set(srcA, 0)
	fc.set(srcB, 0)
	s.gate, _ = testGate(fc)
	s.gate.limit = 1 << 30
	ms := []ipv4.Message{
		{N: 10, Addr: a}, {N: 20, Addr: net.UDPAddrFromAddrPort(srcA)}, {N: 30, Addr: b}, {N: 40, Addr: a},
	}
	s.deliver(ms)
	for _, src := range []netip.AddrPort{srcA, srcB} {
		if l := s.gate.srcs[src]; l != nil {
			got = append(got, admitted{src, int(l.delivered)})
		}
	}
	want := []admitted{{srcA, 70}, {srcB, 30}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("admitted %v, want %v", got, want)
	}
	if st := s.stats.rxPackets.Load(); st != 4 {
		t.Fatalf("rxPackets = %d, want 4", st)
	}
}

// The endpoint's side of the gate: rxProgress finds the connections at a remote address,
// reports what quic-go has processed of theirs, and changes generation when one goes; the
// socket counters see the traffic.
func TestEndpointRxProgress(t *testing.T) {
	a, b := newEP(t), newEP(t)
	accepted := make(chan *Conn, 1)
	b.Handle(echoALPN, func(ctx context.Context, c *Conn) {
		accepted <- c
		echo(ctx, c)
	})
	c, err := a.Dial(ctxT(t), b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 256<<10)
	roundTrip(t, c, msg)
	sc := <-accepted

	from := a.LocalAddr()
	processed, gen, ok := b.rxProgress(from)
	if !ok {
		t.Fatalf("no connection from %v", from)
	}
	if min := uint64(len(msg)); processed < min {
		t.Fatalf("processed %d bytes, want at least the %d echoed", processed, min)
	}
	if _, _, ok := b.rxProgress(netip.MustParseAddrPort("127.0.0.1:1")); ok {
		t.Fatal("progress for an address with no connection")
	}
	st := b.SocketStats()
	if st.RxPackets == 0 || st.RxBytes < int64(processed) || st.TxPackets == 0 || st.RxReads == 0 {
		t.Fatalf("socket stats %+v after %d bytes processed", st, processed)
	}

	c.Close()
	<-sc.Context().Done()
	b.Close() // waits for the connection's cleanup
	if _, gen2, ok := b.rxProgress(from); ok || gen2 == gen {
		t.Fatalf("after close: ok %v, generation %d (was %d)", ok, gen2, gen)
	}
}

// While the gate holds, the socket's pause ends at the next write (a connection's ACK after
// it took a batch off its queue), with no timer needed.
func TestSockPauseEndsOnWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, uc := testSock(t, false)
		clk := clock.NewFake(time.Unix(0, 0)) // never advanced: only a write can end the pause
		s.setGate(clk, newFakeConns().progress)
		// A write while nobody waits leaves nothing behind for a later pause.
		if _, _, err := s.WriteMsgUDP([]byte("ack"), nil, uc.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.gate.pause()
		}()
		synctest.Wait() // the pause is waiting
		if returned(done) {
			t.Fatal("pause ended before a write while it waited")
		}
		if _, _, err := s.WriteMsgUDP([]byte("ack"), nil, uc.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		<-done
		if st := s.stats.txPackets.Load(); st != 2 {
			t.Fatalf("txPackets = %d, want 2", st)
		}
	})
}

// Above mark the gate asks for a mark, then not again until markGap more bytes were handed
// over; below mark never; a re-base re-arms it.
func TestRxGateMarks(t *testing.T) {
	fc, g, _ := srcAGate()
	g.limit, g.resume, g.mark, g.markGap, g.markEvery = 1<<30, 1<<29, 1000, 500, 0
	var got []bool
	for range 8 { // backlog 300, 600, ..., 2400
		got = append(got, g.admit(srcA, 300))
	}
	// Over 1000 from the 4th admit (1200); the next marks at delivered >= 1200+500 (1800),
	// then >= 2300 (2400).
	want := []bool{false, false, false, true, false, true, false, true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("marks %v, want %v", got, want)
	}
	fc.set(srcA, 2400) // all processed: backlog 0
	if g.admit(srcA, 300) {
		t.Fatal("mark asked for below the mark threshold")
	}
	fc.remove(srcA) // a new connection set re-bases
	fc.set(srcA, 0)
	for range 3 {
		g.admit(srcA, 300)
	}
	if !g.admit(srcA, 300) {
		t.Fatal("no mark over the threshold after a re-base")
	}
}

// With the gate on, bulk data still arrives whole and in order (whether and how
// often the gate holds or marks depends on scheduling; that it does so correctly is tested
// above).
func TestRxGateEndToEnd(t *testing.T) {
	opts := Options{BindAddr: "127.0.0.1:0", RxGate: true}
	a, b := newEPWith(t, opts), newEPWith(t, opts)
	if a.sock.gate == nil || b.sock.gate == nil {
		t.Fatal("RxGate: no receive gate")
	}
	b.Handle(echoALPN, echo)
	c, err := a.Dial(ctxT(t), b.Addr(), echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 2<<20)
	for i := range msg {
		msg[i] = byte(i * 7 / 13)
	}
	roundTrip(t, c, msg)
	if st := b.SocketStats(); st.RxPackets < int64(len(msg)/1500) {
		t.Fatalf("server socket counted %d packets for %d bytes", st.RxPackets, len(msg))
	}
}

// Without RxGate the socket has no gate: nothing is held or marked.
func TestRxGateOffByDefault(t *testing.T) {
	if e := newEP(t); e.sock.gate != nil {
		t.Fatal("the socket has a receive gate by default")
	}
}

// A source is marked at most once per markEvery, however many bytes go by.
func TestRxGateMarkEvery(t *testing.T) {
	_, g, clk := srcAGate()
	g.limit, g.resume, g.mark, g.markGap, g.markEvery = 1<<30, 1<<29, 1000, 300, 200*time.Millisecond
	var got []bool
	for range 6 { // backlog 300 ... 1800: over the mark from the 4th admit on
		got = append(got, g.admit(srcA, 300))
	}
	if want := []bool{false, false, false, true, false, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("marks %v, want %v", got, want)
	}
	clk.Advance(199 * time.Millisecond)
	if g.admit(srcA, 300) {
		t.Fatal("marked again before markEvery passed")
	}
	clk.Advance(time.Millisecond)
	if !g.admit(srcA, 300) {
		t.Fatal("no mark once markEvery passed")
	}
}
