package endpoint

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// cmsg builds one control message of level and type carrying data, laid out as the kernel
// hands it to recvmsg.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

// ipv4TOS and ipv6TClass build a received datagram's control data carrying its ECN field.
func ipv4TOS(tos byte) []byte { return cmsg(unix.IPPROTO_IP, unix.IP_TOS, []byte{tos}) }

func ipv6TClass(tc uint32) []byte {
	return cmsg(unix.IPPROTO_IPV6, unix.IPV6_TCLASS, binary.NativeEndian.AppendUint32(nil, tc))
}

// markCE sets CE on ECT(0) and ECT(1) datagrams, keeps the rest of the TOS / traffic class,
// and leaves Not-ECT datagrams and control data without an ECN field alone.
func TestMarkCE(t *testing.T) {
	for _, tc := range []struct {
		name     string
		oob      []byte
		marked   bool
		want     []byte
		wantSame bool
	}{
		{"v4 ECT(0)", ipv4TOS(0xb8 | 0x2), true, ipv4TOS(0xb8 | 0x3), false},
		{"v4 ECT(1)", ipv4TOS(0x1), true, ipv4TOS(0x3), false},
		{"v4 CE", ipv4TOS(0x3), true, ipv4TOS(0x3), false},
		{"v4 Not-ECT", ipv4TOS(0xb8), false, nil, true},
		{"v6 ECT(0)", ipv6TClass(0x2e<<2 | 0x2), true, ipv6TClass(0x2e<<2 | 0x3), false},
		{"v6 Not-ECT", ipv6TClass(0x2e << 2), false, nil, true},
		{"GRO only", groCmsg(1200), false, nil, true},
		{"none", nil, false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oob := bytes.Clone(tc.oob)
			if got := markCE(oob); got != tc.marked {
				t.Fatalf("markCE = %v, want %v", got, tc.marked)
			}
			want := tc.want
			if tc.wantSame {
				want = tc.oob
			}
			if !bytes.Equal(oob, want) {
				t.Fatalf("control data %x, want %x", oob, want)
			}
		})
	}
}

// The socket marks one ECN-capable datagram of a run when the gate asks, and counts it.
func TestSockDeliverMarksOne(t *testing.T) {
	s, _ := testSock(t, false)
	fc := newFakeConns()
	fc.set(srcA, 0)
	s.gate, _ = testGate(fc)
	s.gate.limit, s.gate.resume, s.gate.mark, s.gate.markGap = 1<<30, 1<<29, 100, 1<<20
	a := net.UDPAddrFromAddrPort(srcA)
	oobs := [][]byte{ipv4TOS(0), ipv4TOS(0x2), ipv4TOS(0x2)} // Not-ECT first: skipped
	var ms []ipv4.Message
	for _, o := range oobs {
		ms = append(ms, ipv4.Message{N: 100, Addr: a, OOB: bytes.Clone(o), NN: len(o)})
	}
	s.deliver(ms) // backlog 300 > 100: one mark
	want := [][]byte{ipv4TOS(0), ipv4TOS(0x3), ipv4TOS(0x2)}
	for i := range ms {
		if !bytes.Equal(ms[i].OOB[:ms[i].NN], want[i]) {
			t.Fatalf("datagram %d: control data %x, want %x", i, ms[i].OOB[:ms[i].NN], want[i])
		}
	}
	if n := s.stats.rxMarked.Load(); n != 1 {
		t.Fatalf("rxMarked = %d, want 1", n)
	}
}

// groCmsg is the UDP_GRO control message the kernel adds to a coalesced buffer.
func groCmsg(size uint16) []byte {
	return cmsg(unix.IPPROTO_UDP, unix.UDP_GRO, binary.NativeEndian.AppendUint16(nil, size))
}
