package endpoint

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
)

// rxGate is the socket's receive backpressure. quic-go's read loop hands every datagram to
// its connection's queue, and a connection with 256 datagrams queued drops the next ones
// (quic-go's MaxConnUnprocessedPackets). Our reader is much faster than a connection's run
// loop (with GRO it takes up to 80 datagrams per syscall), so under a bulk upload the queue
// overflows whenever the run loop falls behind, and the peer sees loss: a quinn sender halves
// its window and, the lost packets being larger than 1200 bytes, may decide the path MTU
// black-holes and drop to 1200-byte packets for the rest of the connection. The kernel's
// socket buffer (megabytes) would have held those datagrams.
//
// So the reader counts the bytes it hands over per source address, compares them with what
// the connections at that address have processed (quic-go's ConnectionStats.BytesReceived,
// counted as each datagram leaves the queue), and, while the difference is above limit,
// holds the batch it is about to hand over until it falls to resume: the rest waits in the
// kernel. The estimate is re-based to zero when the set of connections at the address
// changes, whenever it goes negative (it can only underestimate by what was queued at the
// last re-base), and when the connections process nothing for stall (datagrams no live
// connection takes, e.g. for a closed one, would otherwise inflate it for good), so a wrong
// estimate costs at most one stall period, never a lost or stuck datagram.
//
// An rxGate is owned by the socket's single reader; only progress is called concurrently
// with the rest of the endpoint.
type rxGate struct {
	limit, resume uint64        // bytes
	stall         time.Duration // give up holding after no progress for this long
	clk           clock.Clock
	// pause runs between two looks at the connections' progress while holding. The socket
	// makes it wait for its next write or a poll interval: a connection sends an ACK after
	// each batch (at most 32) of datagrams it takes off its queue, so a write is the moment
	// to look again. A timer alone would not do: it wakes after about a millisecond at the
	// earliest, when the connection has long run dry; spinning would take the processor
	// from the peer on a small machine.
	pause func()
	// progress returns the bytes the live connections with remote address from have
	// processed so far and a generation that changes whenever that set of connections
	// changes; ok is false when there is none.
	progress func(from netip.AddrPort) (processed, gen uint64, ok bool)

	srcs   map[netip.AddrPort]*ledger
	held   *atomic.Int64 // counts the times admit waited, if set
	stalls *atomic.Int64 // counts the holds ended by the stall rule, if set
}

// ledger is one source address's accounting since its last re-base.
type ledger struct {
	delivered uint64 // bytes handed to quic-go since the re-base
	processed uint64 // the connections' processed bytes at the re-base
	gen       uint64
	synced    bool
}

// Defaults: quic-go queues 256 datagrams per connection; hold only near that, at 224
// full-size packets (the batch quic-go takes from us, at most 8, still fits), and go on at
// 192, one processing batch lower, which leaves the connection work while the reader fills
// the queue again. Holding is then rare when the connection keeps up. Counting bytes, a flood of small datagrams is
// held later than that; it is not what overflows the queue in practice (bulk data is).
const (
	rxGateLimit  = 224 * 1452
	rxGateResume = 192 * 1452
	rxGateStall  = 50 * time.Millisecond
	rxGatePoll   = time.Millisecond // longest pause between looks when no write comes
)

func newRxGate(clk clock.Clock, progress func(netip.AddrPort) (uint64, uint64, bool)) *rxGate {
	return &rxGate{
		limit: rxGateLimit, resume: rxGateResume, stall: rxGateStall,
		clk: clk, pause: runtime.Gosched, progress: progress, srcs: map[netip.AddrPort]*ledger{},
	}
}

// backlog returns the estimated bytes from `from` handed over and not yet processed, and
// the processed count it was computed from; ok is false when no connection has that
// address (nothing to hold for).
func (g *rxGate) backlog(from netip.AddrPort) (backlog, processed uint64, ok bool) {
	processed, gen, ok := g.progress(from)
	l := g.srcs[from]
	if !ok {
		if l != nil {
			delete(g.srcs, from)
		}
		return 0, 0, false
	}
	if l == nil {
		l = &ledger{}
		g.srcs[from] = l
	}
	done := processed - l.processed
	if !l.synced || l.gen != gen || processed < l.processed || done > l.delivered {
		*l = ledger{processed: processed, gen: gen, synced: true}
		return 0, processed, true
	}
	return l.delivered - done, processed, true
}

// admit records n bytes from `from` as handed over and, if that puts the source's backlog
// above limit, waits until it is back at resume (or nothing moves for stall).
func (g *rxGate) admit(from netip.AddrPort, n int) {
	backlog, processed, ok := g.backlog(from)
	if !ok {
		return
	}
	l := g.srcs[from]
	l.delivered += uint64(n)
	backlog += uint64(n)
	if backlog <= g.limit {
		return
	}
	if g.held != nil {
		g.held.Add(1)
	}
	lastMove := g.clk.Now()
	for {
		g.pause()
		b, p, ok := g.backlog(from)
		if !ok || b <= g.resume {
			return
		}
		now := g.clk.Now()
		if p != processed {
			processed, lastMove = p, now
		} else if now.Sub(lastMove) >= g.stall {
			// Nothing processed for a while: the estimate counts datagrams no connection
			// will take. Start again from zero.
			g.srcs[from].rebase(p)
			if g.stalls != nil {
				g.stalls.Add(1)
			}
			return
		}
	}
}

func (l *ledger) rebase(processed uint64) {
	l.delivered, l.processed = 0, processed
}
