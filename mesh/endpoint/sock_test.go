package endpoint

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// ReadBatch drops what the filter claims and hands the rest on in order,
// each with its own bytes and source, inside the caller's buffers.
func TestSockReadBatchCompaction(t *testing.T) {
	s, uc := testSock(t, true)
	s.setFilter(func(p []byte, from netip.AddrPort) bool { return strings.HasPrefix(string(p), "drop") })

	senders := []*net.UDPConn{mustUDP(t), mustUDP(t)}
	defer senders[0].Close()
	defer senders[1].Close()
	var want []string
	var wantFrom []netip.AddrPort
	for i := range 7 {
		msg := fmt.Sprintf("keep-%d", i)
		if i%2 == 0 {
			msg = fmt.Sprintf("drop-%d", i)
		} else {
			want = append(want, msg)
			wantFrom = append(wantFrom, addrPortOf(senders[i%2].LocalAddr()))
		}
		if _, err := senders[i%2].WriteTo([]byte(msg), uc.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // let everything queue on the socket

	ms := recvMsgs(8, 1500)
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []string
	var gotFrom []netip.AddrPort
	for len(got) < len(want) {
		n, err := s.ReadBatch(ms, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("ReadBatch returned an empty batch")
		}
		for _, m := range ms[:n] {
			got = append(got, string(m.Buffers[0][:m.N]))
			gotFrom = append(gotFrom, addrPortOf(m.Addr))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(gotFrom) != fmt.Sprint(wantFrom) {
		t.Fatalf("got %v from %v, want %v from %v", got, gotFrom, want, wantFrom)
	}
	// A batch of only dropped packets is not returned as empty:
	// ReadBatch reads on until something is kept.
	senders[0].WriteTo([]byte("drop-x"), uc.LocalAddr())
	time.Sleep(20 * time.Millisecond)
	type res struct {
		n   int
		err error
	}
	done := make(chan res)
	go func() {
		n, err := s.ReadBatch(ms, 0)
		done <- res{n, err}
	}()
	time.Sleep(50 * time.Millisecond) // ReadBatch consumes drop-x and waits
	senders[1].WriteTo([]byte("keep-x"), uc.LocalAddr())
	r := <-done
	if r.err != nil || r.n != 1 || string(ms[0].Buffers[0][:ms[0].N]) != "keep-x" {
		t.Fatalf("after an all-dropped batch: n=%d err=%v first=%q", r.n, r.err, ms[0].Buffers[0][:ms[0].N])
	}
}

func TestIsDisco(t *testing.T) {
	full := DiscoMagic + strings.Repeat("x", 32+24+16)
	for _, tc := range []struct {
		p    string
		want bool
	}{
		{full, true},
		{full[:len(full)-1], false},
		{"TS" + strings.Repeat("x", 100), false},
		{"", false},
	} {
		if got := isDisco([]byte(tc.p)); got != tc.want {
			t.Errorf("isDisco(%q…) = %v", tc.p[:min(8, len(tc.p))], got)
		}
	}
}

// recvMsgs is n messages for ReadBatch, each with a size-byte buffer and 128 bytes for
// control messages.
func recvMsgs(n, size int) []ipv4.Message {
	ms := make([]ipv4.Message, n)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, size)}
		ms[i].OOB = make([]byte, 128)
	}
	return ms
}
