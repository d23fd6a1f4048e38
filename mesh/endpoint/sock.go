package endpoint

import (
	"net"
	"net/netip"
	"sync/atomic"

	"golang.org/x/net/ipv4"

	"github.com/meshkafka/meshkafka/internal/clock"
)

// packetFilter sees every datagram before quic-go does. It returns true if
// it consumed the packet (quic-go then never sees it). It must not retain b.
type packetFilter func(b []byte, from netip.AddrPort) bool

// sock is the endpoint's UDP socket as quic-go sees it. It embeds the
// *net.UDPConn so quic-go recognises an OOB-capable conn (GSO, ECN, packet
// info) and implements ReadBatch itself, which quic-go prefers over
// unwrapping the file descriptor, so every received datagram passes
// through here: the packet filter (disco today, magicsock later) and, on
// Linux, UDP GRO.
//
// With GRO the kernel hands over runs of same-sized datagrams from one
// sender as one buffer (a loopback or GSO sender's batch is never split at
// all), which makes both the sender's and our receive syscalls far
// cheaper; ReadBatch splits them back into single datagrams in quic-go's
// buffers.
type sock struct {
	*net.UDPConn
	batch  *ipv4.PacketConn
	filter atomic.Pointer[packetFilter] // nil = pass all
	gro    bool                         // UDP_GRO is on
	stats  sockCounters
	// gate, if set, holds batches while quic-go's connection queues are full (see
	// rxGate). Set before the reader starts; owned by the reader.
	gate      *rxGate
	wrote     chan struct{} // a token after a write while the gate's pause waits for one
	waiting   atomic.Bool   // the gate's pause is waiting for a write
	gateTimer clock.Timer   // the pause's poll timer; the reader's

	// Owned by the single reader (quic-go's read loop); GRO only.
	big  []ipv4.Message // our own 64 KiB receive buffers
	oobs [][]byte       // per big message: its control data minus the GRO cmsg
	pend []segment      // datagrams read but not yet handed out
	next int            // index of the next pending datagram
}

// sockCounters count what passes through the socket, for SocketStats.
type sockCounters struct {
	rxPackets, rxBytes, rxSmall           atomic.Int64
	rxReads, rxBufs                       atomic.Int64 // recvmmsg calls, kernel datagrams (GRO: coalesced)
	txPackets, txBytes, txSmall, txWrites atomic.Int64
	rxHeld, rxStalls, rxMarked            atomic.Int64
	rxHeldNanos                           atomic.Int64
}

// smallPacket is the size up to which a datagram counts as small: a 1-RTT
// packet carrying only an ACK (and perhaps a flow-control update) fits, a
// full data packet does not.
const smallPacket = 128

// deliver counts the datagrams about to be handed to quic-go and, with a gate, holds them
// while their connection's queue is full.
func (s *sock) deliver(ms []ipv4.Message) {
	s.countRx(ms)
	if s.gate == nil {
		return
	}
	// Admit per run of datagrams from one source (a GRO buffer's segments share one).
	var from netip.AddrPort
	var fromAddr net.Addr
	run, start := 0, 0
	for i := range ms {
		if a := ms[i].Addr; i == 0 || a != fromAddr {
			ap := addrPortOf(a)
			if i > 0 && ap != from {
				s.admit(from, run, ms[start:i])
				run, start = 0, i
			}
			from, fromAddr = ap, a
		}
		run += ms[i].N
	}
	if len(ms) > 0 {
		s.admit(from, run, ms[start:])
	}
}

// admit passes one source's run of datagrams (n bytes) through the gate and, if it asks
// for a mark, marks the run's first ECN-capable datagram Congestion Experienced.
func (s *sock) admit(from netip.AddrPort, n int, run []ipv4.Message) {
	if !s.gate.admit(from, n) {
		return
	}
	for i := range run {
		if markCE(run[i].OOB[:run[i].NN]) {
			s.stats.rxMarked.Add(1)
			return
		}
	}
}

// countRx counts the datagrams handed to quic-go.
func (s *sock) countRx(ms []ipv4.Message) {
	var n, small, bytes int64
	for i := range ms {
		n++
		bytes += int64(ms[i].N)
		if ms[i].N <= smallPacket {
			small++
		}
	}
	s.stats.rxPackets.Add(n)
	s.stats.rxBytes.Add(bytes)
	s.stats.rxSmall.Add(small)
}

// WriteMsgUDP is the embedded conn's, counting datagrams (GSO segments).
func (s *sock) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	n, oobn, err = s.UDPConn.WriteMsgUDP(b, oob, addr)
	if s.gate != nil && s.waiting.Load() {
		select {
		case s.wrote <- struct{}{}:
		default:
		}
	}
	if err == nil {
		seg := gsoSize(oob)
		pk, small := int64(1), int64(0)
		if seg > 0 && seg < len(b) {
			pk = int64((len(b) + seg - 1) / seg)
		} else if len(b) <= smallPacket {
			small = 1
		}
		s.stats.txPackets.Add(pk)
		s.stats.txBytes.Add(int64(len(b)))
		s.stats.txSmall.Add(small)
		s.stats.txWrites.Add(1)
	}
	return n, oobn, err
}

// segment is one datagram inside a big buffer.
type segment struct {
	data []byte
	oob  []byte
	addr net.Addr
}

const (
	groBatch   = 8
	groBufSize = 1 << 16
	oobSize    = 256
)

// newSock wraps c; with gro it turns UDP GRO on where the kernel has it.
func newSock(c *net.UDPConn, gro bool) *sock {
	return &sock{UDPConn: c, batch: ipv4.NewPacketConn(c), gro: gro && enableGRO(c), wrote: make(chan struct{}, 1)}
}

// setGate installs the receive gate (before the reader starts), pausing on clk.
func (s *sock) setGate(clk clock.Clock, progress func(netip.AddrPort) (uint64, uint64, bool)) {
	g := newRxGate(clk, progress)
	g.held, g.stalls, g.heldNanos = &s.stats.rxHeld, &s.stats.rxStalls, &s.stats.rxHeldNanos
	g.pause = func() { s.pauseForWrite(clk) }
	s.gate = g
}

// pauseForWrite waits for the next write on the socket (or a token a write left while it
// was waiting before), or rxGatePoll. Writes signal only while it waits: a write racing the
// start of a wait is missed, and the wait then ends at the next write or the poll.
func (s *sock) pauseForWrite(clk clock.Clock) {
	if s.gateTimer == nil {
		s.gateTimer = clk.NewTimer(rxGatePoll)
	} else {
		s.gateTimer.Reset(rxGatePoll)
	}
	s.waiting.Store(true)
	select {
	case <-s.wrote:
	case <-s.gateTimer.C():
	}
	s.waiting.Store(false)
	s.gateTimer.Stop()
}

// setFilter installs (or, with nil, removes) the packet filter.
func (s *sock) setFilter(f packetFilter) {
	if f == nil {
		s.filter.Store(nil)
		return
	}
	s.filter.Store(&f)
}

// ReadBatch reads datagrams into ms and drops those the filter consumes.
// It never returns an empty batch without an error.
func (s *sock) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	if s.gro {
		return s.readGRO(ms, flags)
	}
	for {
		n, err := s.batch.ReadBatch(ms, flags)
		if err == nil {
			s.stats.rxReads.Add(1)
			s.stats.rxBufs.Add(int64(n))
		}
		fp := s.filter.Load()
		if err != nil || fp == nil {
			if err == nil {
				s.deliver(ms[:n])
			}
			return n, err
		}
		filter := *fp
		kept := 0
		// Kept packets are compacted to the front by copying their bytes
		// into the consumed slots' buffers (each a full-size packet buffer
		// owned by quic-go, so the message/buffer pairing quic-go relies
		// on is kept).
		for i := range n {
			m := &ms[i]
			if filter(m.Buffers[0][:m.N], addrPortOf(m.Addr)) {
				continue
			}
			if kept != i {
				moveMessage(&ms[kept], m)
			}
			kept++
		}
		if kept > 0 {
			s.deliver(ms[:kept])
			return kept, nil
		}
	}
}

func (s *sock) readGRO(ms []ipv4.Message, flags int) (int, error) {
	for {
		if s.next == len(s.pend) {
			if err := s.fill(flags); err != nil {
				return 0, err
			}
		}
		var filter packetFilter
		if fp := s.filter.Load(); fp != nil {
			filter = *fp
		}
		k := 0
		for k < len(ms) && s.next < len(s.pend) {
			seg := s.pend[s.next]
			s.next++
			if filter != nil && filter(seg.data, addrPortOf(seg.addr)) {
				continue
			}
			m := &ms[k]
			m.N = copy(m.Buffers[0][:cap(m.Buffers[0])], seg.data)
			m.NN = copy(m.OOB[:cap(m.OOB)], seg.oob)
			m.Addr = seg.addr
			m.Flags = 0
			k++
		}
		if k > 0 {
			s.deliver(ms[:k])
			return k, nil
		}
	}
}

// fill reads one batch into the big buffers and splits it into pend.
func (s *sock) fill(flags int) error {
	if s.big == nil {
		s.big = make([]ipv4.Message, groBatch)
		s.oobs = make([][]byte, groBatch)
		for i := range s.big {
			s.big[i].Buffers = [][]byte{make([]byte, groBufSize)}
			s.big[i].OOB = make([]byte, oobSize)
			s.oobs[i] = make([]byte, 0, oobSize)
		}
	}
	n, err := s.batch.ReadBatch(s.big, flags)
	if err != nil {
		return err
	}
	s.stats.rxReads.Add(1)
	s.stats.rxBufs.Add(int64(n))
	s.pend, s.next = s.pend[:0], 0
	for i := range n {
		m := &s.big[i]
		size, oob := splitGRO(m.OOB[:m.NN], s.oobs[i][:0])
		s.oobs[i] = oob
		data := m.Buffers[0][:m.N]
		if size <= 0 || size >= len(data) {
			s.pend = append(s.pend, segment{data, oob, m.Addr})
			continue
		}
		for off := 0; off < len(data); off += size {
			s.pend = append(s.pend, segment{data[off:min(off+size, len(data))], oob, m.Addr})
		}
	}
	return nil
}

func moveMessage(dst, src *ipv4.Message) {
	dst.N = copy(dst.Buffers[0][:cap(dst.Buffers[0])], src.Buffers[0][:src.N])
	dst.NN = copy(dst.OOB[:cap(dst.OOB)], src.OOB[:src.NN])
	dst.Addr = src.Addr
	dst.Flags = src.Flags
}

// DiscoMagic starts every iroh disco packet ("TS" and U+1F4AC).
const DiscoMagic = "TS💬"

// isDisco reports whether p is an iroh disco packet: the magic, the
// sender's 32-byte key and at least a nonce and a tag.
func isDisco(p []byte) bool {
	return len(p) >= len(DiscoMagic)+32+24+16 && string(p[:len(DiscoMagic)]) == DiscoMagic
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ua, ok := a.(*net.UDPAddr); ok {
		ap := ua.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
