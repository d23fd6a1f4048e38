package mdns_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/mesh/discovery"
	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newService(t *testing.T, h *meshtest.Link, port int, cfg mdns.Config) (*mdns.Service, key.PublicKey) {
	t.Helper()
	if cfg.Self.IsZero() {
		cfg.Self = key.GenerateSecretKey().Public()
	}
	cfg.Conns = []mdns.Conn{{PacketConn: h.Join(port), Group: net.UDPAddrFromAddrPort(mdns.GroupV4)}}
	if cfg.Interval == 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	s, err := mdns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, cfg.Self
}

func TestNodesFindEachOther(t *testing.T) {
	h := &meshtest.Link{}
	const n = 4
	svcs := make([]*mdns.Service, n)
	ids := make([]key.PublicKey, n)
	for i := range n {
		svcs[i], ids[i] = newService(t, h, 1000+i, mdns.Config{})
		svcs[i].Publish(discovery.NodeAddr{ID: ids[i], Direct: []netip.AddrPort{
			netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(4000+i)),
			netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(5000+i)),
		}})
	}
	meshtest.LookupAll(t, svcs, ids, func(j int) []netip.AddrPort {
		return []netip.AddrPort{
			netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(4000+j)),
			netip.AddrPortFrom(netip.MustParseAddr("::1"), uint16(5000+j)),
		}
	})
	// Nobody lists itself.
	for i, s := range svcs {
		for _, p := range s.Peers() {
			if p.ID == ids[i] {
				t.Fatalf("node %d lists itself", i)
			}
		}
	}
}

func TestLookupUnknownTimesOut(t *testing.T) {
	s, _ := newService(t, &meshtest.Link{}, 1, mdns.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Lookup(ctx, key.GenerateSecretKey().Public())
	if !errors.Is(err, discovery.ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestExpiryAndWithdraw(t *testing.T) {
	h := &meshtest.Link{}
	fake := clock.NewFake(time.Unix(1000, 0))
	a, _ := newService(t, h, 1, mdns.Config{Clock: fake, Expiry: 3 * time.Second, Interval: time.Hour})
	b, idB := newService(t, h, 2, mdns.Config{Interval: time.Hour})
	b.Publish(discovery.NodeAddr{ID: idB, Direct: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:7")}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Lookup(ctx, idB); err != nil {
		t.Fatal(err)
	}
	// b withdraws and stays silent; after Expiry a forgets it.
	b.Publish(discovery.NodeAddr{ID: idB})
	fake.Advance(4 * time.Second)
	if ps := a.Peers(); len(ps) != 0 {
		t.Fatalf("peers after expiry: %v", ps)
	}
}

func TestAnswersQueriesOnlyWhenPublished(t *testing.T) {
	h := &meshtest.Link{}
	probe := h.Join(99)
	s, id := newService(t, h, 1, mdns.Config{Interval: time.Hour})
	drain(probe)
	send := func() { _, _ = probe.WriteTo(mdns.BuildQuery(), net.UDPAddrFromAddrPort(mdns.GroupV4)) }
	send()
	if p := waitResponse(t, probe, 200*time.Millisecond); p != nil {
		t.Fatalf("answered before publishing: %v", p)
	}
	s.Publish(discovery.NodeAddr{ID: id, Direct: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.5:1234")}})
	drain(probe)
	send()
	p := waitResponse(t, probe, 2*time.Second)
	if p == nil || !slices.Equal(p[id.String()], []netip.AddrPort{netip.MustParseAddrPort("192.168.1.5:1234")}) {
		t.Fatalf("answer %v", p)
	}
}

func drain(c *meshtest.LinkConn) { c.Drain() }

func waitResponse(t *testing.T, c *meshtest.LinkConn, d time.Duration) map[string][]netip.AddrPort {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, ok := c.Next(time.Until(deadline))
		if !ok {
			return nil
		}
		p, err := mdns.ParseMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Peers) > 0 {
			return p.Peers
		}
	}
}

// TestResponseLayout checks our announcement field by field against swarm-discovery 0.2.1's
// make_response.
func TestResponseLayout(t *testing.T) {
	id := "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst"
	b, err := mdns.BuildResponse(id, []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:4444"),
		netip.MustParseAddrPort("[::1]:5555"),
		netip.MustParseAddrPort("10.1.2.3:4444"),
	})
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	if m.Id != 0 || !m.Response || !m.Authoritative || m.Opcode != 0 || len(m.Question) != 0 || len(m.Ns) != 0 {
		t.Fatalf("header: %+v", m.MsgHdr)
	}
	if len(m.Answer) != 2 || len(m.Extra) != 3 {
		t.Fatalf("%d answers, %d additionals", len(m.Answer), len(m.Extra))
	}
	for i, port := range []uint16{4444, 5555} {
		srv := m.Answer[i].(*dns.SRV)
		if srv.Hdr.Name != id+"._iroh.local.swarm._udp.local." || srv.Hdr.Class != dns.ClassINET || srv.Hdr.Ttl != 0 ||
			srv.Priority != 0 || srv.Weight != 0 || srv.Port != port || srv.Target != id+"-"+itoa(port)+".local." {
			t.Fatalf("srv %d: %v", i, srv)
		}
	}
	for _, rr := range m.Extra {
		if rr.Header().Ttl != 0 || rr.Header().Class != dns.ClassINET {
			t.Fatalf("additional %v", rr)
		}
	}
	q := new(dns.Msg)
	if err := q.Unpack(mdns.BuildQuery()); err != nil {
		t.Fatal(err)
	}
	// 46 bytes, as observed from iroh.
	if len(mdns.BuildQuery()) != 46 || q.Id != 0 || q.Response || len(q.Question) != 1 ||
		q.Question[0] != (dns.Question{Name: mdns.ServiceName, Qtype: dns.TypePTR, Qclass: dns.ClassINET}) {
		t.Fatalf("query %v (%d bytes)", q, len(mdns.BuildQuery()))
	}
	if _, err := mdns.BuildResponse("bad.label", nil); err == nil {
		t.Fatal("dotted peer id accepted")
	}
}

func itoa(p uint16) string { return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[8:] }

// TestParseRules: records outside swarm-discovery's rules are ignored.
func TestParseRules(t *testing.T) {
	id := "peer1"
	target := "peer1-9.local."
	srv := func(sec string, class uint16) dns.RR {
		return &dns.SRV{Hdr: dns.RR_Header{Name: id + "." + mdns.ServiceName, Rrtype: dns.TypeSRV, Class: class}, Port: 9, Target: target}
	}
	a := func(name string, class uint16) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: class}, A: net.IPv4(1, 2, 3, 4)}
	}
	tests := []struct {
		name   string
		m      dns.Msg
		expect bool
	}{
		{"valid", dns.Msg{Answer: []dns.RR{srv("", dns.ClassINET)}, Extra: []dns.RR{a(target, dns.ClassINET)}}, true},
		{"upper case names", dns.Msg{Answer: []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "PEER1._IROH.local.swarm._udp.LOCAL.", Rrtype: dns.TypeSRV, Class: dns.ClassINET}, Port: 9, Target: "PEER1-9.local."}}, Extra: []dns.RR{a(target, dns.ClassINET)}}, true},
		{"srv in additionals", dns.Msg{Extra: []dns.RR{srv("", dns.ClassINET), a(target, dns.ClassINET)}}, false},
		{"a in answers", dns.Msg{Answer: []dns.RR{srv("", dns.ClassINET), a(target, dns.ClassINET)}}, false},
		{"cache flush class", dns.Msg{Answer: []dns.RR{srv("", dns.ClassINET|0x8000)}, Extra: []dns.RR{a(target, dns.ClassINET)}}, false},
		{"other service", dns.Msg{Answer: []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: "peer1._other._udp.local.", Rrtype: dns.TypeSRV, Class: dns.ClassINET}, Port: 9, Target: target}}, Extra: []dns.RR{a(target, dns.ClassINET)}}, false},
		{"a not under local", dns.Msg{Answer: []dns.RR{&dns.SRV{Hdr: dns.RR_Header{Name: id + "." + mdns.ServiceName, Rrtype: dns.TypeSRV, Class: dns.ClassINET}, Port: 9, Target: "x.y.local."}}, Extra: []dns.RR{a("x.y.local.", dns.ClassINET)}}, false},
	}
	for _, tt := range tests {
		tt.m.Response = true
		b, err := tt.m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		p, err := mdns.ParseMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Equal(p.Peers[id], []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:9")})
		if got != tt.expect {
			t.Errorf("%s: parsed %v", tt.name, p.Peers)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add(mdns.BuildQuery())
	b, _ := mdns.BuildResponse("abc", []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:5"), netip.MustParseAddrPort("[::1]:6")})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := mdns.ParseMessage(in)
		if err != nil {
			return
		}
		for id, addrs := range p.Peers {
			if id == "" || len(addrs) == 0 {
				t.Fatalf("empty peer entry %q %v", id, addrs)
			}
			for _, a := range addrs {
				if !a.IsValid() {
					t.Fatalf("invalid address for %q", id)
				}
			}
		}
	})
}

// TestRealMulticast uses the real mDNS sockets; it needs a multicast-capable interface and
// runs only with INTEROP_MDNS=1 (the interop suite covers it inside a namespace).
func TestRealMulticast(t *testing.T) {
	if os.Getenv("INTEROP_MDNS") != "1" {
		t.Skip("set INTEROP_MDNS=1 to use real multicast sockets")
	}
	a, err := mdns.New(mdns.Config{Self: key.GenerateSecretKey().Public()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	idB := key.GenerateSecretKey().Public()
	b, err := mdns.New(mdns.Config{Self: idB})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Publish(discovery.NodeAddr{ID: idB, Direct: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:4242")}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := a.Lookup(ctx, idB)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Direct, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:4242")}) {
		t.Fatalf("got %v", got.Direct)
	}
}
