package nodemap

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/key"
)

var t0 = time.Unix(1_000_000, 0)

// counter is a deterministic Rand: ping tx ids 1, 2, 3, ...
type counter struct{ n uint64 }

func (c *counter) Read(p []byte) (int, error) {
	c.n++
	clear(p)
	binary.BigEndian.PutUint64(p[len(p)-8:], c.n)
	return len(p), nil
}

// harness is a Map with named nodes, so transcripts read "ping B 1.1.1.1:1".
type harness struct {
	t     testing.TB
	m     *Map
	self  key.PublicKey
	names map[key.PublicKey]string
	ids   map[string]key.PublicKey
	last  []Action // copy of the last Handle's actions
}

const relayR = "http://relay.test"

func newHarness(t testing.TB, cfg Config, peers ...string) *harness {
	t.Helper()
	h := &harness{t: t, names: map[key.PublicKey]string{}, ids: map[string]key.PublicKey{}}
	h.self = key.GenerateSecretKey().Public()
	h.names[h.self] = "self"
	for _, p := range peers {
		id := key.GenerateSecretKey().Public()
		h.names[id], h.ids[p] = p, id
	}
	cfg.Self = h.self
	if cfg.Rand == nil {
		cfg.Rand = &counter{}
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	return h
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func (h *harness) handle(now time.Time, ev Event) []Action {
	h.last = append(h.last[:0], h.m.Handle(now, ev)...)
	return h.last
}

// line renders one action.
func (h *harness) line(a Action) string {
	name := h.names[a.Node]
	if a.Node.IsZero() {
		name = "anon"
	}
	switch a.Kind {
	case SendUDP:
		return "udp " + a.Addr.String()
	case SendRelay:
		return "relay " + name
	case Deliver:
		if id, ok := h.m.NodeFor(a.Mapped); ok {
			return "deliver " + h.names[id]
		}
		return "deliver anon"
	case SendDisco:
		via := a.Addr.String()
		if a.Relay != "" {
			via = "relay"
		}
		switch m := a.Msg.(type) {
		case *disco.Ping:
			return fmt.Sprintf("ping %s %s", name, via)
		case *disco.Pong:
			return fmt.Sprintf("pong %s %s", name, via)
		default:
			return fmt.Sprintf("disco %T", m)
		}
	case SendCallMeMaybe:
		return "callmemaybe " + name
	case ForgetMapped:
		return "forget"
	}
	return a.Kind.String()
}

func (h *harness) want(got []Action, lines ...string) {
	h.t.Helper()
	var g []string
	for _, a := range got {
		g = append(g, h.line(a))
	}
	if gs, ws := strings.Join(g, "\n"), strings.Join(lines, "\n"); gs != ws {
		h.t.Fatalf("actions:\n%s\nwant:\n%s", gs, ws)
	}
}

// ping returns the Ping in the last actions sent to addr.
func (h *harness) ping(addr netip.AddrPort) *disco.Ping {
	h.t.Helper()
	for _, a := range h.last {
		if p, ok := a.Msg.(*disco.Ping); ok && a.Addr == addr {
			return p
		}
	}
	h.t.Fatalf("no ping to %v in %v", addr, h.last)
	return nil
}

// pong feeds the answer of node name to ping p.
func (h *harness) pong(now time.Time, name string, p *disco.Ping, from netip.AddrPort) []Action {
	return h.handle(now, RecvDisco{From: h.ids[name], Src: from, Msg: &disco.Pong{TxID: p.TxID, Addr: from}})
}

func (h *harness) send(now time.Time, name string) []Action {
	h.t.Helper()
	m, ok := h.m.Mapped(h.ids[name])
	if !ok {
		h.t.Fatalf("%s unknown", name)
	}
	return h.handle(now, SendPacket{To: m})
}

func (h *harness) direct(now time.Time, name string) netip.AddrPort {
	pi, _ := h.m.Path(now, h.ids[name])
	return pi.Direct
}

var (
	addrX = ap("192.0.2.1:41641")
	addrY = ap("198.51.100.7:1234")
)

// TestTrustWindow: a Pong makes its address the best path for exactly 6.5 s; within the
// window a packet goes only over UDP to it, after it over the relay plus UDP to the outdated
// best address.
func TestTrustWindow(t *testing.T) {
	h := newHarness(t, Config{}, "B")
	h.handle(t0, AddNode{ID: h.ids["B"], RelayURL: relayR, Direct: []netip.AddrPort{addrY, addrX}})
	h.want(h.send(t0, "B"),
		"ping B 192.0.2.1:41641", "ping B 198.51.100.7:1234", "callmemaybe B",
		"relay B", "udp 192.0.2.1:41641", "udp 198.51.100.7:1234")
	p := h.ping(addrX)
	rtt := 12 * time.Millisecond
	h.want(h.pong(t0.Add(rtt), "B", p, addrX))
	pongAt := t0.Add(rtt)
	if pi, _ := h.m.Path(pongAt, h.ids["B"]); pi.Direct != addrX || pi.Latency != rtt || pi.RelayURL != relayR {
		t.Fatalf("path after pong %+v", pi)
	}
	for _, d := range []time.Duration{0, time.Second, TrustBestFor - time.Nanosecond} {
		h.want(h.send(pongAt.Add(d), "B"), "udp 192.0.2.1:41641")
	}
	if got := h.direct(pongAt.Add(TrustBestFor-time.Nanosecond), "B"); got != addrX {
		t.Fatalf("direct just before 6.5 s: %v", got)
	}
	end := pongAt.Add(TrustBestFor)
	if got := h.direct(end, "B"); got.IsValid() {
		t.Fatalf("still direct at 6.5 s: %v", got)
	}
	// Outdated: relay plus the old best address, and a full ping (the last was > 5 s ago).
	h.want(h.send(end, "B"),
		"ping B 192.0.2.1:41641", "ping B 198.51.100.7:1234", "callmemaybe B",
		"relay B", "udp 192.0.2.1:41641")
	// A full ping is not repeated within 5 s.
	h.want(h.send(end.Add(FullPingInterval-time.Nanosecond), "B"), "relay B", "udp 192.0.2.1:41641")
}

// TestStayAlive: while the node is active the heartbeat re-pings the best address every 2 s,
// and as long as the pongs come the path never leaves direct; once the node is idle for 45 s
// nothing is pinged and trust runs out.
func TestStayAlive(t *testing.T) {
	h := newHarness(t, Config{}, "B")
	h.handle(t0, AddNode{ID: h.ids["B"], RelayURL: relayR, Direct: []netip.AddrPort{addrX}})
	h.send(t0, "B")
	h.pong(t0, "B", h.ping(addrX), addrX)

	rtt := 5 * time.Millisecond
	var pingTimes []time.Duration
	now := t0
	for now.Before(t0.Add(20 * time.Second)) {
		now = now.Add(500 * time.Millisecond) // heartbeat
		h.send(now, "B")                      // traffic keeps the node active
		if got := h.direct(now, "B"); got != addrX {
			t.Fatalf("at +%v: direct %v, want %v", now.Sub(t0), got, addrX)
		}
		acts := h.handle(now, Tick{})
		if len(acts) == 0 {
			continue
		}
		h.want(acts, "ping B 192.0.2.1:41641")
		pingTimes = append(pingTimes, now.Sub(t0))
		h.pong(now.Add(rtt), "B", h.ping(addrX), addrX)
	}
	want := []time.Duration{}
	for s := 2 * time.Second; s <= 20*time.Second; s += 2 * time.Second {
		want = append(want, s)
	}
	if fmt.Sprint(pingTimes) != fmt.Sprint(want) {
		t.Fatalf("stay-alive pings at %v, want %v", pingTimes, want)
	}
	if h.m.PingsInFlight() != 0 {
		t.Fatalf("%d pings in flight after all were answered", h.m.PingsInFlight())
	}

	// Idle: the last packet was at +20 s. Pings go on until 45 s after it, then stop.
	lastActive := now
	var last time.Time
	for now.Before(lastActive.Add(60 * time.Second)) {
		now = now.Add(500 * time.Millisecond)
		if acts := h.handle(now, Tick{}); len(acts) > 0 {
			last = now
			if acts[0].Kind == SendDisco {
				if p, ok := acts[0].Msg.(*disco.Ping); ok && acts[0].Addr == addrX {
					h.pong(now, "B", p, addrX)
				}
			}
		}
	}
	if last.After(lastActive.Add(ActiveWindow)) || last.Before(lastActive.Add(ActiveWindow-StayAliveInterval)) {
		t.Fatalf("last ping at +%v after the last packet, want within 2 s before %v", last.Sub(lastActive), ActiveWindow)
	}
	if got := h.direct(now, "B"); got.IsValid() {
		t.Fatalf("idle node still direct after 60 s: %v", got)
	}
}

// TestUpgradeAndFallback: a node known by relay only moves to a direct path once a
// CallMeMaybe gives us a candidate that answers; when the pongs stop, it falls back to the
// relay at the first heartbeat after a stay-alive ping has gone unanswered for PongOverdue
// (well before the 6.5 s trust window ends), full pings run every 5 s, and the first pong
// afterwards makes it direct again.
func TestUpgradeAndFallback(t *testing.T) {
	h := newHarness(t, Config{HomeRelay: relayR}, "B")
	// B reached us over the relay first: QUIC, then its CallMeMaybe.
	h.want(h.handle(t0, RecvRelay{RelayURL: relayR, From: h.ids["B"]}), "deliver B")
	h.want(h.send(t0, "B"), "callmemaybe B", "relay B")
	h.want(h.handle(t0, RecvDisco{From: h.ids["B"], RelayURL: relayR, Msg: &disco.CallMeMaybe{Addrs: []netip.AddrPort{addrX}}}),
		"ping B 192.0.2.1:41641")
	px := h.ping(addrX)
	h.want(h.send(t0, "B"), "relay B", "udp 192.0.2.1:41641") // untried candidate, in parallel
	h.pong(t0.Add(time.Millisecond), "B", px, addrX)
	up := t0.Add(time.Millisecond)
	h.want(h.send(up, "B"), "udp 192.0.2.1:41641")

	// The path goes dead: pings go unanswered.
	now := up
	var fellBack, stayAlive time.Time
	var fullPings []time.Duration
	for now.Before(up.Add(30 * time.Second)) {
		now = now.Add(500 * time.Millisecond)
		acts := h.send(now, "B")
		if fellBack.IsZero() && acts[0].Kind != SendUDP {
			fellBack = now
		}
		for _, a := range append(acts, h.handle(now, Tick{})...) {
			if a.Kind == SendCallMeMaybe {
				fullPings = append(fullPings, now.Sub(up))
			}
			if a.Kind == SendDisco && a.Addr == addrX && stayAlive.IsZero() && fellBack.IsZero() {
				stayAlive = now
			}
		}
	}
	// The heartbeat at stayAlive+PongOverdue ends the trust: the packet after it goes over
	// the relay.
	if stayAlive.IsZero() || stayAlive.Sub(up) > StayAliveInterval+500*time.Millisecond {
		t.Fatalf("stay-alive ping at +%v", stayAlive.Sub(up))
	}
	if want := stayAlive.Add(PongOverdue); fellBack.Before(want) || fellBack.After(want.Add(500*time.Millisecond)) {
		t.Fatalf("fell back at +%v, want the first packet after +%v (the stay-alive ping at +%v unanswered for %v)", fellBack.Sub(up), want.Sub(up), stayAlive.Sub(up), PongOverdue)
	}
	if fellBack.Sub(up) >= TrustBestFor {
		t.Fatalf("fell back at +%v: not before the trust window's end", fellBack.Sub(up))
	}
	// Full pings every 5 s.
	for i := 1; i < len(fullPings); i++ {
		if d := fullPings[i] - fullPings[i-1]; d != FullPingInterval {
			t.Fatalf("full pings at %v: gap %v, want %v", fullPings, d, FullPingInterval)
		}
	}
	// The first one once 5 s have passed since the last (at t0), not before the fallback.
	if first := max(fellBack.Sub(up), FullPingInterval); len(fullPings) < 4 || fullPings[0] != first {
		t.Fatalf("full pings at %v, fell back at +%v: want the first at +%v", fullPings, fellBack.Sub(up), first)
	}
	h.want(h.send(now, "B"), "relay B", "udp 192.0.2.1:41641")

	// The path comes back: answer the next full ping.
	now = up.Add(fullPings[len(fullPings)-1]).Add(FullPingInterval)
	h.want(h.handle(now, Tick{}), "ping B 192.0.2.1:41641", "callmemaybe B")
	h.pong(now.Add(2*time.Millisecond), "B", h.ping(addrX), addrX)
	h.want(h.send(now.Add(2*time.Millisecond), "B"), "udp 192.0.2.1:41641")
}

// TestPongOverdue: a stay-alive ping answered within PongOverdue keeps the path direct; one
// unanswered that long ends the trust at the next heartbeat (not 6.5 s after the last pong);
// a late Pong to it makes the address trusted again.
func TestPongOverdue(t *testing.T) {
	h, _ := trustedDirectB(t)
	x := addrX
	now := t0
	tickUntilPing := func() *disco.Ping {
		t.Helper()
		for range 20 {
			now = now.Add(500 * time.Millisecond)
			h.send(now, "B")
			for _, a := range h.handle(now, Tick{}) {
				if p, ok := a.Msg.(*disco.Ping); ok && a.Addr == x {
					return p
				}
			}
		}
		t.Fatal("no stay-alive ping within 10 s")
		return nil
	}
	// Answered in 900 ms: still direct.
	p := tickUntilPing()
	sent := now
	h.handle(sent.Add(PongOverdue-100*time.Millisecond), Tick{})
	h.pong(sent.Add(PongOverdue-100*time.Millisecond), "B", p, x)
	now = sent.Add(PongOverdue)
	h.handle(now, Tick{})
	if got := h.direct(now, "B"); got != x {
		t.Fatalf("a pong within %v: direct %v, want %v", PongOverdue, got, x)
	}
	// Unanswered: trusted until the heartbeat at PongOverdue, not after.
	p = tickUntilPing()
	sent = now
	h.handle(sent.Add(PongOverdue-time.Nanosecond), Tick{})
	if got := h.direct(sent.Add(PongOverdue-time.Nanosecond), "B"); got != x {
		t.Fatalf("before %v: direct %v", PongOverdue, got)
	}
	lost := sent.Add(PongOverdue)
	h.handle(lost, Tick{})
	if got := h.direct(lost, "B"); got.IsValid() {
		t.Fatalf("ping unanswered for %v: still direct over %v", PongOverdue, got)
	}
	acts := h.send(lost, "B")
	if len(acts) < 2 || acts[0].Kind != SendRelay || acts[1].Kind != SendUDP || acts[1].Addr != x {
		t.Fatalf("send after the trust ended: %+v", acts)
	}
	// The late Pong (within PingTimeout): direct again.
	h.pong(lost.Add(time.Second), "B", p, x)
	if got := h.direct(lost.Add(time.Second), "B"); got != x {
		t.Fatalf("after the late pong: direct %v, want %v", got, x)
	}
}

// TestPingOverUDP: a Ping over UDP registers its source, is answered there, and is pinged
// back unless we already trust a best address; a Ping over a relay is answered over it.
func TestPingOverUDP(t *testing.T) {
	h := newHarness(t, Config{}, "B")
	p := &disco.Ping{TxID: [12]byte{9}}
	h.want(h.handle(t0, RecvDisco{From: h.ids["B"], Src: addrX, Msg: p}), "pong B 192.0.2.1:41641", "ping B 192.0.2.1:41641")
	if got := h.last[0].Msg.(*disco.Pong); got.TxID != p.TxID || got.Addr != addrX {
		t.Fatalf("pong %+v", got)
	}
	back := h.ping(addrX)
	h.want(h.handle(t0, RecvUDP{Src: addrX}), "deliver B") // now a known address
	h.pong(t0, "B", back, addrX)
	h.want(h.handle(t0, RecvDisco{From: h.ids["B"], Src: addrX, Msg: p}), "pong B 192.0.2.1:41641")
	h.want(h.handle(t0, RecvDisco{From: h.ids["B"], RelayURL: relayR, Msg: p}), "pong B relay")
	if got := h.last[0].Msg.(*disco.Pong); got.RelayURL != relayR {
		t.Fatalf("relay pong %+v", got)
	}
	if pi, _ := h.m.Path(t0, h.ids["B"]); pi.RelayURL != relayR {
		t.Fatalf("a ping over a relay did not give B that relay: %+v", pi)
	}
}

// TestPongRules: a Pong counts only for a ping we sent to that node and not yet timed out;
// a faster candidate replaces the best address, a slower one does not while it is trusted.
func TestPongRules(t *testing.T) {
	h := newHarness(t, Config{}, "B", "C")
	h.handle(t0, AddNode{ID: h.ids["B"], RelayURL: relayR, Direct: []netip.AddrPort{addrX, addrY}})
	h.handle(t0, AddNode{ID: h.ids["C"], RelayURL: relayR})
	h.send(t0, "B")
	px, py := h.ping(addrX), h.ping(addrY)

	h.want(h.handle(t0, RecvDisco{From: h.ids["B"], Src: addrX, Msg: &disco.Pong{TxID: [12]byte{0xff}}}))
	h.pong(t0, "C", px, addrX) // C answering B's ping: ignored
	if h.direct(t0, "B").IsValid() || h.direct(t0, "C").IsValid() {
		t.Fatal("a pong from the wrong node counted")
	}
	h.pong(t0.Add(30*time.Millisecond), "B", py, addrY)
	if got := h.direct(t0.Add(30*time.Millisecond), "B"); got != addrY {
		t.Fatalf("best %v, want %v", got, addrY)
	}
	h.pong(t0.Add(10*time.Millisecond), "B", px, addrX) // lower latency: replaces Y
	if pi, _ := h.m.Path(t0.Add(31*time.Millisecond), h.ids["B"]); pi.Direct != addrX || pi.Latency != 10*time.Millisecond {
		t.Fatalf("faster candidate: %+v", pi)
	}
	h.pong(t0, "B", px, addrX) // the same tx id twice: the second is unknown
	// A slower pong does not replace a trusted best address.
	now := t0.Add(6 * time.Second)
	h.handle(now, Tick{}) // expire the old pings
	h.send(now, "B")      // trusted: no pings
	acts := h.handle(now, RecvDisco{From: h.ids["B"], Src: addrY, Msg: &disco.Ping{}})
	h.want(acts, "pong B 198.51.100.7:1234") // trusted: no ping back
	// Time a ping to Y out.
	h.handle(now.Add(time.Second), CallMeMaybeFrom(h.ids["B"]))
	py2 := h.ping(addrY)
	h.handle(now.Add(time.Second+PingTimeout+time.Nanosecond), Tick{})
	h.pong(now.Add(time.Second+PingTimeout+2*time.Nanosecond), "B", py2, addrY)
	if pi, _ := h.m.Path(now.Add(time.Second+PingTimeout+2*time.Nanosecond), h.ids["B"]); pi.Direct == addrY {
		t.Fatalf("a pong after the ping timed out counted: %+v", pi)
	}
}

// CallMeMaybeFrom is a CallMeMaybe from id over relayR without addresses (every known
// candidate gets pinged).
func CallMeMaybeFrom(id key.PublicKey) Event {
	return RecvDisco{From: id, RelayURL: relayR, Msg: &disco.CallMeMaybe{}}
}

// TestCallMeMaybeOnlyOverRelay: a CallMeMaybe that came over UDP is ignored.
func TestCallMeMaybeOnlyOverRelay(t *testing.T) {
	h := newHarness(t, Config{}, "B")
	h.want(h.handle(t0, RecvDisco{From: h.ids["B"], Src: addrY, Msg: &disco.CallMeMaybe{Addrs: []netip.AddrPort{addrX}}}))
	if c := h.m.Candidates(h.ids["B"]); len(c) != 0 {
		t.Fatalf("candidates %v from a CallMeMaybe over UDP", c)
	}
	// Disco from ourselves is ignored whatever it says.
	h.want(h.handle(t0, RecvDisco{From: h.self, RelayURL: relayR, Msg: &disco.CallMeMaybe{Addrs: []netip.AddrPort{addrX}}}))
}

// TestUntriedCandidates: before any Pong a packet goes to at most 4 candidates in address
// order; once QUIC came from one address, only there.
func TestUntriedCandidates(t *testing.T) {
	h := newHarness(t, Config{}, "B")
	var direct []netip.AddrPort
	for i := 6; i >= 1; i-- {
		direct = append(direct, ap(fmt.Sprintf("10.0.0.%d:7", i)), netip.AddrPort{}, ap("10.9.9.9:0"))
	}
	h.handle(t0, AddNode{ID: h.ids["B"], Direct: direct})
	if c := h.m.Candidates(h.ids["B"]); len(c) != 6 {
		t.Fatalf("candidates %v: invalid addresses and port 0 must be skipped", c)
	}
	h.want(h.send(t0, "B"),
		"ping B 10.0.0.1:7", "ping B 10.0.0.2:7", "ping B 10.0.0.3:7", "ping B 10.0.0.4:7", "ping B 10.0.0.5:7", "ping B 10.0.0.6:7",
		"udp 10.0.0.1:7", "udp 10.0.0.2:7", "udp 10.0.0.3:7", "udp 10.0.0.4:7") // no relay known: none
	h.want(h.handle(t0, RecvUDP{Src: ap("[::ffff:10.0.0.5]:7")}), "deliver B")
	h.want(h.send(t0, "B"), "udp 10.0.0.5:7")
}

// TestAnonymousPeers: QUIC from an unknown address gets its own mapped address, answered
// directly; the least recently seen is forgotten beyond MaxAnon.
func TestAnonymousPeers(t *testing.T) {
	h := newHarness(t, Config{}, "B")
	first := ap("10.1.0.0:1")
	acts := h.handle(t0, RecvUDP{Src: first})
	h.want(acts, "deliver anon")
	firstMapped := acts[0].Mapped
	h.want(h.handle(t0, SendPacket{To: firstMapped}), "udp 10.1.0.0:1")
	h.want(h.handle(t0, SendPacket{To: ap("[fd15:7e7f::99]:12345")})) // unknown: dropped
	for i := 1; i < MaxAnon; i++ {
		h.handle(t0.Add(time.Duration(i)), RecvUDP{Src: ap(fmt.Sprintf("10.1.%d.%d:1", i/256, i%256))})
	}
	h.handle(t0.Add(time.Hour), RecvUDP{Src: first}) // seen again: now the most recent
	acts = h.handle(t0.Add(2*time.Hour), RecvUDP{Src: ap("10.2.0.0:1")})
	h.want(acts, "forget", "deliver anon")
	if acts[0].Mapped == firstMapped {
		t.Fatal("forgot the most recently seen peer")
	}
	h.want(h.handle(t0, SendPacket{To: firstMapped}), "udp 10.1.0.0:1")
	h.want(h.handle(t0, SendPacket{To: acts[0].Mapped})) // forgotten: dropped
}

// TestDisableDirect: nothing goes over UDP, and UDP disco and QUIC from strangers are ignored.
func TestDisableDirect(t *testing.T) {
	h := newHarness(t, Config{DisableDirect: true, HomeRelay: relayR}, "B")
	h.handle(t0, AddNode{ID: h.ids["B"], Direct: []netip.AddrPort{addrX}})
	h.want(h.send(t0, "B"), "relay B")
	h.want(h.handle(t0, RecvDisco{From: h.ids["B"], Src: addrX, Msg: &disco.Ping{}}))
	h.want(h.handle(t0, RecvDisco{From: h.ids["B"], RelayURL: relayR, Msg: &disco.CallMeMaybe{Addrs: []netip.AddrPort{addrY}}}))
	h.want(h.handle(t0, RecvDisco{From: h.ids["B"], RelayURL: relayR, Msg: &disco.Ping{}}), "pong B relay")
	h.want(h.handle(t0, RecvUDP{Src: addrY}))
	h.want(h.handle(t0, RecvUDP{Src: addrX}), "deliver B") // a known node's address still counts
	h.want(h.handle(t0.Add(time.Second), Tick{}))
}

// TestAddressMoves: an address another node claims (NAT rebinding) moves to it.
func TestAddressMoves(t *testing.T) {
	h := newHarness(t, Config{}, "B", "C")
	h.handle(t0, AddNode{ID: h.ids["B"], Direct: []netip.AddrPort{addrX}})
	h.handle(t0, RecvDisco{From: h.ids["C"], Src: addrX, Msg: &disco.Ping{}})
	if b, c := h.m.Candidates(h.ids["B"]), h.m.Candidates(h.ids["C"]); len(b) != 0 || len(c) != 1 {
		t.Fatalf("candidates B %v, C %v", b, c)
	}
	h.want(h.handle(t0, RecvUDP{Src: addrX}), "deliver C")
}

func TestNewNeedsRand(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without Rand succeeded")
	}
}

// trustedDirectB is a map (home relay relayR) that knows B at addrX and trusts that direct
// path (B answered a ping on it), and B's mapped address.
func trustedDirectB(tb testing.TB) (*harness, netip.AddrPort) {
	h := newHarness(tb, Config{HomeRelay: relayR}, "B")
	h.handle(t0, AddNode{ID: h.ids["B"], Direct: []netip.AddrPort{addrX}})
	h.send(t0, "B")
	h.pong(t0, "B", h.ping(addrX), addrX)
	to, _ := h.m.Mapped(h.ids["B"])
	return h, to
}

// TestSendPacketAllocs: the per-packet path on a trusted direct path does not allocate.
func TestSendPacketAllocs(t *testing.T) {
	h, to := trustedDirectB(t)
	h.m.Handle(t0, SendPacket{To: to})
	if n := testing.AllocsPerRun(100, func() { h.m.Handle(t0, SendPacket{To: to}) }); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
	if n := testing.AllocsPerRun(100, func() { h.m.Handle(t0, RecvUDP{Src: addrX}) }); n != 0 {
		t.Fatalf("%v allocations per received packet", n)
	}
}

// BenchmarkHandle: the per-packet events, sending on a trusted direct path and receiving from
// a known address.
func BenchmarkHandle(b *testing.B) {
	h, to := trustedDirectB(b)
	b.Run("SendPacket", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.m.Handle(t0, SendPacket{To: to})
		}
	})
	b.Run("RecvUDP", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.m.Handle(t0, RecvUDP{Src: addrX})
		}
	})
}
