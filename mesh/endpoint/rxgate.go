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
// Holding alone starves the sender of its congestion signal: with nothing lost it keeps
// every queue full, the reader waits on the connection at every batch, and Go to Go
// throughput fell by a third to a half (mesh/endpoint BenchmarkQUICThroughput gate=hold). So
// the gate also acts like a router with an ECN-marking queue (RFC 3168): once the backlog
// is above mark it asks the socket to set Congestion Experienced on one ECN-capable
// datagram, and no more than one per markGap bytes and per markEvery. quic-go and quinn
// senders both mark
// their packets ECT(0) and take a CE count rising in the ACKs as a congestion event (the
// window shrinks as for a loss, once per round trip), without a retransmission and
// without quinn's MTU black-hole suspicion, which only lost packets feed. The marks keep
// the sender from growing its window without end; between them it may run into the limit
// and be held (1.6–1.8 holds per MB from a Rust sender, 3–5 per 32 MiB from a quic-go one,
// against 2–3.4 per MB with a gate that only held). The gap matters: a receiver
// ACKs a CE-marked packet at once, and marking every datagram while a backlog lasted (in a
// trial that marked without holding) turned into a collapse with a Rust sender: 240–450
// marks and 120–270 ACKs per MB, throughput down to a tenth.
//
// An rxGate is owned by the socket's single reader; only progress is called concurrently
// with the rest of the endpoint.
type rxGate struct {
	limit, resume uint64        // bytes
	mark          uint64        // bytes; above it admit asks for an ECN mark (0: never)
	markGap       uint64        // bytes handed over between two marks, at least
	markEvery     time.Duration // time between two marks of a source, at least (0: no minimum)
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
	// heldNanos adds up the holds' durations, if set
	heldNanos *atomic.Int64
}

// ledger is one source address's accounting since its last re-base.
type ledger struct {
	delivered uint64 // bytes handed to quic-go since the re-base
	processed uint64 // the connections' processed bytes at the re-base
	gen       uint64
	synced    bool
	nextMark  uint64 // delivered count from which the next mark may be asked for
	lastMark  time.Time
}

// Defaults: quic-go queues 256 datagrams per connection; hold only near that, at 224
// full-size packets (the batch quic-go takes from us, at most 8, still fits), and go on at
// 192, one processing batch lower, which leaves the connection work while the reader fills
// the queue again. Holding is then rare when the connection keeps up. Counting bytes, a
// flood of small datagrams is held later than that; it is not what overflows the queue in
// practice (bulk data is). Marks start one packet below the limit, at most one per 64
// packets handed over: a mark where a hold (or, without the gate, a drop) is about to
// happen. Marking from 96 packets on kept the queue shorter but cost a Rust sender and our
// receiver 10–15% more CPU per MB and 14% more ACKs (the sender's window shrank on marks it
// would otherwise not have had); marking only at the limit left ACKs and CPU as without the
// gate (interop BenchmarkQUICThroughput, 2026-12-07, load 22–33). And at most one mark per
// source per 100 ms: a queue kept near the limit is cheaper than a short one, since
// quic-go's run loop then always finds a full batch (32) and ACKs once per batch. A Rust
// sender was marked every 30–40 ms by the packet gap alone; with 100 ms our receiver sent
// 24.5–25 ACKs per MB instead of 26–28 and spent 7–9% less CPU per MB, the sender 2–6% less
// (session 11, load 5–7). 200 ms saved a little more with a Rust sender (23.5 ACKs per MB)
// but cost Go to Go 5% more CPU per byte (14 interleaved pairs): a quic-go sender marked
// that rarely grows its window into the limit and is held 6–16 times per 32 MiB. With
// 100 ms it is held 3–5 times and spends what it did (medians of 6 interleaved pairs per
// stream count: −0.4% and −2.5%).
const (
	rxGateLimit     = 224 * 1452
	rxGateResume    = 192 * 1452
	rxGateMark      = rxGateLimit - 1452
	rxGateMarkGap   = 64 * 1452
	rxGateMarkEvery = 100 * time.Millisecond
	rxGateStall     = 50 * time.Millisecond
	rxGatePoll      = time.Millisecond // longest pause between looks when no write comes
)

func newRxGate(clk clock.Clock, progress func(netip.AddrPort) (uint64, uint64, bool)) *rxGate {
	return &rxGate{
		limit: rxGateLimit, resume: rxGateResume, mark: rxGateMark, markGap: rxGateMarkGap,
		markEvery: rxGateMarkEvery,
		stall:     rxGateStall, clk: clk, pause: runtime.Gosched, progress: progress,
		srcs: map[netip.AddrPort]*ledger{},
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
// above limit, waits until it is back at resume (or nothing moves for stall). It reports
// whether the caller should mark one of these bytes' ECN-capable datagrams Congestion
// Experienced: when the backlog with them is above mark, at most once per markGap bytes.
func (g *rxGate) admit(from netip.AddrPort, n int) (mark bool) {
	backlog, processed, ok := g.backlog(from)
	if !ok {
		return false
	}
	l := g.srcs[from]
	l.delivered += uint64(n)
	backlog += uint64(n)
	if g.mark > 0 && backlog > g.mark && l.delivered >= l.nextMark {
		now := g.clk.Now()
		if g.markEvery == 0 || l.lastMark.IsZero() || now.Sub(l.lastMark) >= g.markEvery {
			mark, l.nextMark, l.lastMark = true, l.delivered+g.markGap, now
		}
	}
	if backlog <= g.limit {
		return mark
	}
	if g.held != nil {
		g.held.Add(1)
	}
	start := g.clk.Now()
	lastMove := start
	if g.heldNanos != nil {
		defer func() { g.heldNanos.Add(int64(g.clk.Now().Sub(start))) }()
	}
	for {
		g.pause()
		b, p, ok := g.backlog(from)
		if !ok || b <= g.resume {
			return mark
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
			return mark
		}
	}
}

func (l *ledger) rebase(processed uint64) {
	l.delivered, l.processed, l.nextMark = 0, processed, 0
}
