package nodemap

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/key"
)

var fuzzAddrs = []netip.AddrPort{addrX, addrY, ap("10.0.0.1:1"), ap("[2001:db8::1]:9"), ap("[::ffff:192.0.2.1]:41641")}

// FuzzHandle drives a Map with an event sequence read from the input (nodes, addresses and
// time steps from small sets, pongs answering pings it sent) and checks its invariants after
// every event.
func FuzzHandle(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 5, 0, 0, 2, 3, 0, 6, 0, 30})
	f.Add([]byte{4, 1, 1, 1, 1, 1, 5, 0, 2, 3, 2, 0, 6, 70, 0, 1, 2, 2})
	f.Add([]byte{2, 0, 0, 2, 1, 0, 2, 2, 3, 0, 4, 5, 1, 0, 0, 6, 255, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		disable := len(data) > 0 && data[0]&0x80 != 0
		h := newHarness(t, Config{HomeRelay: relayR, DisableDirect: disable}, "B", "C", "D")
		peers := []key.PublicKey{h.ids["B"], h.ids["C"], h.ids["D"], h.self}
		var pings []Action // every ping sent, to answer
		now := t0
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		for steps := 0; len(data) > 0 && steps < 500; steps++ {
			op, p, a := next()%8, peers[int(next())%len(peers)], fuzzAddrs[int(next())%len(fuzzAddrs)]
			var ev Event
			switch op {
			case 0:
				relay := ""
				if a.Port()%2 == 1 {
					relay = relayR
				}
				ev = AddNode{ID: p, RelayURL: relay, Direct: []netip.AddrPort{a}}
			case 1:
				to, ok := h.m.Mapped(p)
				if !ok {
					to = a // not a mapped address: dropped
				}
				ev = SendPacket{To: to}
			case 2:
				ev = RecvUDP{Src: a}
			case 3:
				ev = RecvRelay{RelayURL: relayR, From: p}
			case 4:
				ev = RecvDisco{From: p, Src: a, Msg: &disco.Ping{TxID: [12]byte{byte(steps)}}}
			case 5:
				ev = RecvDisco{From: p, RelayURL: relayR, Msg: &disco.CallMeMaybe{Addrs: []netip.AddrPort{a}}}
			case 6:
				now = now.Add(time.Duration(next()) * 100 * time.Millisecond)
				ev = Tick{}
			case 7:
				if len(pings) == 0 {
					continue
				}
				pa := pings[int(next())%len(pings)]
				from := pa.Addr
				if next()%4 == 0 {
					from = a // answered from elsewhere
				}
				ev = RecvDisco{From: pa.Node, Src: from, Msg: &disco.Pong{TxID: pa.Msg.(*disco.Ping).TxID, Addr: from}}
			}
			acts := h.handle(now, ev)
			if rd, ok := ev.(RecvDisco); ok && rd.From == h.self && len(acts) > 0 {
				t.Fatalf("disco from ourselves answered: %v", acts)
			}
			for _, act := range acts {
				checkAction(t, h, act, disable)
				if _, ok := act.Msg.(*disco.Ping); ok {
					pings = append(pings, act)
				}
			}
			if sp, ok := ev.(SendPacket); ok {
				if id, ok := h.m.NodeFor(sp.To); ok && !disable {
					if pi, _ := h.m.Path(now, id); pi.Direct.IsValid() && (len(acts) != 1 || acts[0].Kind != SendUDP || acts[0].Addr != pi.Direct) {
						t.Fatalf("packet to a node with trusted %v: %v", pi.Direct, acts)
					}
				}
			}
			if _, ok := ev.(Tick); ok {
				for tx, pp := range h.m.pings {
					if now.Sub(pp.sent) > PingTimeout {
						t.Fatalf("ping %x outlived its timeout", tx)
					}
				}
			}
			checkInvariants(t, h.m, now)
		}
	})
}

func checkAction(t *testing.T, h *harness, a Action, disable bool) {
	t.Helper()
	switch a.Kind {
	case SendUDP:
		if disable || !a.Addr.IsValid() || a.Addr.Port() == 0 {
			t.Fatalf("udp send %v (direct disabled %v)", a.Addr, disable)
		}
	case SendRelay, SendCallMeMaybe:
		if a.Relay == "" || a.Node.IsZero() {
			t.Fatalf("%v without a relay or node: %+v", a.Kind, a)
		}
		if a.Kind == SendCallMeMaybe && disable {
			t.Fatal("CallMeMaybe with direct disabled")
		}
	case SendDisco:
		if a.Relay == "" && (disable || !a.Addr.IsValid()) {
			t.Fatalf("udp disco to %v (direct disabled %v)", a.Addr, disable)
		}
	case Deliver:
		_, known := h.m.NodeFor(a.Mapped)
		_, anon := h.m.anonMapped[a.Mapped]
		if !known && !anon {
			t.Fatalf("deliver from unknown mapped %v", a.Mapped)
		}
	case ForgetMapped:
	default:
		t.Fatalf("unknown action %v", a.Kind)
	}
}

func checkInvariants(t *testing.T, m *Map, now time.Time) {
	t.Helper()
	fail := func(format string, args ...any) { t.Helper(); t.Fatalf("%s", fmt.Sprintf(format, args...)) }
	for a, n := range m.byAddr {
		if n.paths[a] == nil {
			fail("byAddr %v → node without that path", a)
		}
	}
	for id, n := range m.nodes {
		if n.id != id || m.byMapped[n.mapped] != n {
			fail("node %v not indexed by its mapped address", id.ShortString())
		}
		for a := range n.paths {
			if m.byAddr[a] != n {
				fail("path %v of %v not in byAddr", a, id.ShortString())
			}
		}
		if n.bestUntil.After(now.Add(TrustBestFor)) {
			fail("trust until %v, beyond now+6.5s", n.bestUntil)
		}
		if n.best.IsValid() && n.best.Addr().Is4In6() {
			fail("best %v is v4-mapped", n.best)
		}
	}
	if len(m.byMapped) != len(m.nodes) || len(m.anon) != len(m.anonMapped) || len(m.anon) > MaxAnon {
		fail("index sizes: byMapped %d nodes %d anon %d anonMapped %d", len(m.byMapped), len(m.nodes), len(m.anon), len(m.anonMapped))
	}
	for mapped := range m.anonMapped {
		if m.byMapped[mapped] != nil {
			fail("mapped %v is both a node and an anonymous peer", mapped)
		}
	}
}
