package stun_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/mesh/stun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServerAnswersProbe(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := stun.NewServer(pc, nil)
	go func() { _ = srv.Serve() }()
	defer func() { _ = srv.Close(); <-srv.Done() }()

	client, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// Garbage first: the server ignores it and keeps serving.
	if _, err := client.WriteTo([]byte("not stun at all, just bytes"), pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := stun.Probe(ctx, client, pc.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	if want := client.LocalAddr().(*net.UDPAddr).AddrPort(); got != want {
		t.Fatalf("reflexive address %v, want %v", got, want)
	}
}

func TestIsAndParse(t *testing.T) {
	tx, req := stun.Request()
	if !stun.Is(req) {
		t.Fatal("request not recognised")
	}
	if stun.Is([]byte("TS\xf0\x9f\x92\xac" + string(make([]byte, 40)))) {
		t.Fatal("disco packet taken for STUN")
	}
	src := netip.MustParseAddrPort("203.0.113.7:41641")
	resp, err := stun.Response(req, src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := stun.ParseResponse(resp, tx)
	if err != nil || got != src {
		t.Fatalf("parse: %v %v", got, err)
	}
	var other stun.TxID
	if _, err := stun.ParseResponse(resp, other); err != stun.ErrTxID {
		t.Fatalf("foreign tx: %v", err)
	}
	if _, err := stun.ParseResponse(req, tx); err != stun.ErrNotResponse {
		t.Fatalf("request as response: %v", err)
	}
	if _, err := stun.Response(resp, src); err == nil {
		t.Fatal("answered a response")
	}
	v6 := netip.MustParseAddrPort("[2001:db8::1]:5")
	resp6, _ := stun.Response(req, v6)
	if got, _ := stun.ParseResponse(resp6, tx); got != v6 {
		t.Fatalf("v6: %v", got)
	}
}

func FuzzParseResponse(f *testing.F) {
	tx, req := stun.Request()
	resp, _ := stun.Response(req, netip.MustParseAddrPort("1.2.3.4:5"))
	f.Add(req)
	f.Add(resp)
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = stun.ParseResponse(in, tx)
		if stun.Is(in) {
			_, _ = stun.Response(in, netip.MustParseAddrPort("1.2.3.4:5"))
		}
	})
}
