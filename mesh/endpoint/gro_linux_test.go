package endpoint

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A GSO batch (one sendmsg with UDP_SEGMENT) arrives coalesced under GRO
// and leaves ReadBatch as the original datagrams, in order, across
// several calls, with the filter applied to each.
func TestGROSplit(t *testing.T) {
	s, uc := testSock(t, true)
	if !s.gro {
		t.Skip("UDP GRO not available")
	}
	s.setFilter(func(p []byte, _ netip.AddrPort) bool { return p[0] == 'D' })
	snd := mustUDP(t)
	defer snd.Close()

	const seg = 1200
	var payload []byte
	var want []string
	for i := range 20 {
		b := bytes.Repeat([]byte{byte('a' + i)}, seg)
		if i%5 == 0 {
			b[0] = 'D' // dropped by the filter
		} else {
			want = append(want, string(b))
		}
		payload = append(payload, b...)
	}
	payload = append(payload, []byte("tail")...) // a short last segment
	want = append(want, "tail")
	oob := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgSpace(0):], seg)
	if _, _, err := snd.WriteMsgUDP(payload, oob, uc.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Skipf("GSO send not supported: %v", err)
	}

	ms := recvMsgs(8, 1452)
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []string
	calls := 0
	for len(got) < len(want) {
		n, err := s.ReadBatch(ms, 0)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, m := range ms[:n] {
			got = append(got, string(m.Buffers[0][:m.N]))
			if m.Addr.String() != snd.LocalAddr().String() {
				t.Fatalf("source %v, want %v", m.Addr, snd.LocalAddr())
			}
			// The GRO control message is not passed on.
			if sz, _ := splitGRO(m.OOB[:m.NN], nil); sz != 0 {
				t.Fatal("GRO cmsg leaked to quic-go")
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("datagram %d: %q…, want %q…", i, got[i][:4], want[i][:4])
		}
	}
	if calls < 2 {
		t.Fatalf("%d datagrams in %d call(s) with 8 slots", len(got), calls)
	}
}
