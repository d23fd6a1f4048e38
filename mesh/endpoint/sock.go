package endpoint

import (
	"net"
	"net/netip"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// packetFilter sees every datagram before quic-go does. It returns true if
// it consumed the packet (quic-go then never sees it). It must not retain b.
type packetFilter func(b []byte, from netip.AddrPort) bool

// sock is the endpoint's UDP socket as quic-go sees it. It embeds the
// *net.UDPConn so quic-go recognises an OOB-capable conn (GSO, ECN, packet
// info) and implements ReadBatch itself, which quic-go prefers over
// unwrapping the file descriptor, so every received datagram passes
// through here. A magicsock layer will demultiplex disco and relay traffic
// in filter.
type sock struct {
	*net.UDPConn
	batch  *ipv4.PacketConn
	filter atomic.Pointer[packetFilter] // nil = pass all
}

func newSock(c *net.UDPConn) *sock {
	return &sock{UDPConn: c, batch: ipv4.NewPacketConn(c)}
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
// Kept packets are compacted to the front by copying their bytes into the
// consumed slots' buffers (each buffer is a full-size packet buffer owned
// by quic-go, so the message/buffer pairing quic-go relies on is kept).
func (s *sock) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	for {
		n, err := s.batch.ReadBatch(ms, flags)
		fp := s.filter.Load()
		if err != nil || fp == nil {
			return n, err
		}
		filter := *fp
		kept := 0
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
			return kept, nil
		}
	}
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
