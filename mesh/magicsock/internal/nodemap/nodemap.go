package nodemap

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Timings from iroh 0.28.1 (node_state.rs, best_addr.rs, path_state.rs).
const (
	TrustBestFor      = 6500 * time.Millisecond // a Pong keeps a best address trusted this long
	StayAliveInterval = 2 * time.Second         // re-ping the best address while active
	ActiveWindow      = 45 * time.Second        // a node counts as active this long after traffic
	FullPingInterval  = 5 * time.Second         // pings to all candidates + CallMeMaybe at most this often
	PingTimeout       = 5 * time.Second         // an unanswered ping is forgotten after this
)

// PongOverdue is how long a ping to the trusted best address may go unanswered (no Pong from
// that address since it was sent) before the address loses its trust, at the next heartbeat
// (decision: iroh 0.28 keeps trusting it until TrustBestFor after the last Pong, so a direct
// path that dies carries packets into the void for up to 6.5 s; replication between brokers
// stalls that long before moving to the relay; with the 2 s stay-alive pings it now moves
// within about 3.5 s). A late Pong makes the address trusted again; a false alarm costs
// packets sent over the relay and the old address in parallel meanwhile.
const PongOverdue = time.Second

// MaxUntried bounds the candidates a packet is copied to while no direct path is confirmed.
const MaxUntried = 4

// MaxAnon bounds the anonymous peers remembered; the least recently seen is forgotten first.
const MaxAnon = 1024

// MappedPort is the port of every mapped address.
const MappedPort = 12345

// MappedPrefix opens every mapped address (fd15:7e7f::/32, a ULA range).
var MappedPrefix = [4]byte{0xfd, 0x15, 0x7e, 0x7f}

// Config configures a Map.
type Config struct {
	// Self is our node id; Pings carry it, and disco from it is ignored.
	Self key.PublicKey
	// HomeRelay is the relay URL for nodes with none of their own ("" for none).
	HomeRelay string
	// DisableDirect keeps all traffic on relays.
	DisableDirect bool
	// Rand is the source of ping transaction ids (required).
	Rand io.Reader
	// Logger for path changes; nil discards.
	Logger *slog.Logger
}

// path is one direct candidate address of a node.
type path struct {
	lastPing time.Time
	lastPong time.Time
	latency  time.Duration
}

type node struct {
	id       key.PublicKey
	mapped   netip.AddrPort
	relayURL string
	paths    map[netip.AddrPort]*path

	best        netip.AddrPort // zero if none ever confirmed
	bestUntil   time.Time
	bestLatency time.Duration

	lastFullPing time.Time
	lastActive   time.Time

	quicFrom netip.AddrPort // last direct address QUIC came from (a plain peer answers no disco)
}

func (n *node) bestTrusted(now time.Time) bool {
	return n.best.IsValid() && now.Before(n.bestUntil)
}

// sortedPaths lists the node's candidates in address order (map order would make runs
// irreproducible).
func (n *node) sortedPaths() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(n.paths))
	for a := range n.paths {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.AddrPort.Compare)
	return out
}

type pendingPing struct {
	node *node
	addr netip.AddrPort // zero for a ping over a relay
	sent time.Time
}

// anonPeer is a UDP source that sent QUIC without disco (a peer on a plain socket, not a
// magicsock): it gets its own mapped address and is answered directly.
type anonPeer struct {
	addr     netip.AddrPort
	mapped   netip.AddrPort
	lastSeen time.Time
}

// Map is the path state of every node we know. Create it with New.
type Map struct {
	cfg Config
	log *slog.Logger

	nodes      map[key.PublicKey]*node
	byMapped   map[netip.AddrPort]*node
	byAddr     map[netip.AddrPort]*node
	pings      map[[disco.TxIDLen]byte]pendingPing
	anon       map[netip.AddrPort]*anonPeer
	anonMapped map[netip.AddrPort]*anonPeer
	nextMapped uint64

	out []Action // returned by Handle, reused by the next call
}

// New returns an empty Map.
func New(cfg Config) (*Map, error) {
	if cfg.Rand == nil {
		return nil, errors.New("nodemap: Config.Rand is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Map{
		cfg:        cfg,
		log:        log,
		nodes:      make(map[key.PublicKey]*node),
		byMapped:   make(map[netip.AddrPort]*node),
		byAddr:     make(map[netip.AddrPort]*node),
		pings:      make(map[[disco.TxIDLen]byte]pendingPing),
		anon:       make(map[netip.AddrPort]*anonPeer),
		anonMapped: make(map[netip.AddrPort]*anonPeer),
	}, nil
}

// ---- queries (no state change) ----

// Mapped returns the mapped address of a known node.
func (m *Map) Mapped(id key.PublicKey) (netip.AddrPort, bool) {
	n, ok := m.nodes[id]
	if !ok {
		return netip.AddrPort{}, false
	}
	return n.mapped, true
}

// NodeFor returns the node behind a mapped address (false for anonymous peers and unknown
// addresses).
func (m *Map) NodeFor(mapped netip.AddrPort) (key.PublicKey, bool) {
	n, ok := m.byMapped[mapped]
	if !ok {
		return key.PublicKey{}, false
	}
	return n.id, true
}

// PathInfo describes how a node is reached at some instant.
type PathInfo struct {
	Direct   netip.AddrPort // trusted direct address, or zero
	RelayURL string         // the node's own relay URL ("" if none known)
	Latency  time.Duration  // of the direct path
}

// Path reports how a known node is reached at now.
func (m *Map) Path(now time.Time, id key.PublicKey) (PathInfo, bool) {
	n, ok := m.nodes[id]
	if !ok {
		return PathInfo{}, false
	}
	pi := PathInfo{RelayURL: n.relayURL}
	if n.bestTrusted(now) {
		pi.Direct, pi.Latency = n.best, n.bestLatency
	}
	return pi, true
}

// Candidates lists a known node's direct candidates in address order.
func (m *Map) Candidates(id key.PublicKey) []netip.AddrPort {
	n, ok := m.nodes[id]
	if !ok {
		return nil
	}
	return n.sortedPaths()
}

// PingsInFlight counts the pings sent and neither answered nor timed out.
func (m *Map) PingsInFlight() int { return len(m.pings) }

// ---- Handle ----

// Handle applies one event at time now and returns the actions to perform, in order. The
// returned slice is reused by the next call: perform or copy the actions before calling
// again.
func (m *Map) Handle(now time.Time, ev Event) []Action {
	m.out = m.out[:0]
	switch ev := ev.(type) {
	case AddNode:
		n := m.node(ev.ID)
		if ev.RelayURL != "" {
			n.relayURL = ev.RelayURL
		}
		for _, a := range ev.Direct {
			m.addPath(n, a)
		}
	case SendPacket:
		m.sendPacket(now, ev.To)
	case RecvUDP:
		m.recvUDP(now, ev.Src)
	case RecvRelay:
		if ev.From == m.cfg.Self {
			break
		}
		n := m.node(ev.From)
		if n.relayURL == "" {
			n.relayURL = ev.RelayURL
		}
		n.lastActive = now
		m.emit(Action{Kind: Deliver, Mapped: n.mapped})
	case RecvDisco:
		m.recvDisco(now, ev)
	case Tick:
		m.tick(now)
	}
	return m.out
}

func (m *Map) emit(a Action) { m.out = append(m.out, a) }

func (m *Map) node(id key.PublicKey) *node {
	if n, ok := m.nodes[id]; ok {
		return n
	}
	n := &node{id: id, mapped: m.newMapped(), paths: make(map[netip.AddrPort]*path)}
	m.nodes[id] = n
	m.byMapped[n.mapped] = n
	return n
}

func (m *Map) newMapped() netip.AddrPort {
	m.nextMapped++
	var ip [16]byte
	copy(ip[:], MappedPrefix[:])
	for i := range 8 {
		ip[15-i] = byte(m.nextMapped >> (8 * i))
	}
	return netip.AddrPortFrom(netip.AddrFrom16(ip), MappedPort)
}

// addPath makes a a candidate of n (taking it from any other node that had it) and returns
// its state; nil for an address that cannot be one.
func (m *Map) addPath(n *node, a netip.AddrPort) *path {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if !a.IsValid() || a.Port() == 0 {
		return nil
	}
	p, ok := n.paths[a]
	if !ok {
		p = &path{}
		n.paths[a] = p
	}
	if old := m.byAddr[a]; old != nil && old != n {
		delete(old.paths, a)
	}
	m.byAddr[a] = n
	return p
}

// relayOf is the relay to reach n over: its own relay URL, or, when none is known, our home
// relay (a private mesh usually shares one relay, and addresses learned from seeds,
// control-plane digests or mDNS carry no relay URL). iroh 0.28 would not send then; a relay
// drops packets for a node not connected to it, so guessing costs nothing.
func (m *Map) relayOf(n *node) string {
	if n.relayURL != "" {
		return n.relayURL
	}
	return m.cfg.HomeRelay
}

func (m *Map) sendPacket(now time.Time, to netip.AddrPort) {
	direct := !m.cfg.DisableDirect
	n, ok := m.byMapped[to]
	if !ok {
		if a := m.anonMapped[to]; a != nil && direct {
			m.emit(Action{Kind: SendUDP, Addr: a.addr})
		}
		return
	}
	n.lastActive = now
	if direct && n.bestTrusted(now) {
		m.emit(Action{Kind: SendUDP, Node: n.id, Addr: n.best})
		return
	}
	if direct && now.Sub(n.lastFullPing) >= FullPingInterval {
		m.fullPing(n, now)
	}
	if url := m.relayOf(n); url != "" {
		m.emit(Action{Kind: SendRelay, Node: n.id, Relay: url})
	}
	if !direct {
		return
	}
	switch {
	case n.best.IsValid():
		m.emit(Action{Kind: SendUDP, Node: n.id, Addr: n.best}) // outdated best, in parallel with the relay
	case n.quicFrom.IsValid():
		m.emit(Action{Kind: SendUDP, Node: n.id, Addr: n.quicFrom}) // a peer that answers QUIC but not disco
	default:
		// Nothing confirmed yet: every candidate (decision: iroh 0.28 sends nothing direct
		// before a Pong; a copy to a wrong address is dropped there), so a peer on a plain
		// socket (no disco) is reached too.
		sent := 0
		for _, a := range n.sortedPaths() {
			if sent == MaxUntried {
				break
			}
			m.emit(Action{Kind: SendUDP, Node: n.id, Addr: a})
			sent++
		}
	}
}

func (m *Map) recvUDP(now time.Time, src netip.AddrPort) {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if n := m.byAddr[src]; n != nil {
		n.lastActive = now
		n.quicFrom = src
		m.emit(Action{Kind: Deliver, Node: n.id, Mapped: n.mapped})
		return
	}
	if m.cfg.DisableDirect {
		return
	}
	m.emit(Action{Kind: Deliver, Mapped: m.anonPeer(src, now).mapped})
}

// anonPeer returns the anonymous peer for a UDP source no known node has (creating it, and
// forgetting the least recently seen one beyond MaxAnon).
func (m *Map) anonPeer(src netip.AddrPort, now time.Time) *anonPeer {
	if a, ok := m.anon[src]; ok {
		a.lastSeen = now
		return a
	}
	if len(m.anon) >= MaxAnon {
		var oldest *anonPeer
		for _, a := range m.anon {
			if oldest == nil || a.lastSeen.Before(oldest.lastSeen) ||
				a.lastSeen.Equal(oldest.lastSeen) && a.addr.Compare(oldest.addr) < 0 {
				oldest = a
			}
		}
		delete(m.anon, oldest.addr)
		delete(m.anonMapped, oldest.mapped)
		m.emit(Action{Kind: ForgetMapped, Mapped: oldest.mapped})
	}
	a := &anonPeer{addr: src, mapped: m.newMapped(), lastSeen: now}
	m.anon[src] = a
	m.anonMapped[a.mapped] = a
	m.log.Debug("magicsock: QUIC from an address no known node has; answering it directly", "addr", src)
	return a
}

func (m *Map) recvDisco(now time.Time, ev RecvDisco) {
	viaRelay := ev.RelayURL != ""
	if ev.From == m.cfg.Self || !viaRelay && (m.cfg.DisableDirect || !ev.Src.IsValid()) {
		return
	}
	n := m.node(ev.From)
	switch msg := ev.Msg.(type) {
	case *disco.Ping:
		if viaRelay {
			if n.relayURL == "" {
				n.relayURL = ev.RelayURL
			}
			m.emit(Action{Kind: SendDisco, Node: n.id, Relay: ev.RelayURL, Msg: &disco.Pong{TxID: msg.TxID, RelayURL: ev.RelayURL}})
			return
		}
		src := netip.AddrPortFrom(ev.Src.Addr().Unmap(), ev.Src.Port())
		m.addPath(n, src)
		m.emit(Action{Kind: SendDisco, Node: n.id, Addr: src, Msg: &disco.Pong{TxID: msg.TxID, Addr: src}})
		if !n.bestTrusted(now) {
			m.ping(n, src, now)
		}
	case *disco.Pong:
		pp, ok := m.pings[msg.TxID]
		if !ok || pp.node != n {
			return
		}
		delete(m.pings, msg.TxID)
		if !pp.addr.IsValid() {
			return // a relay ping: nothing to learn for path choice
		}
		ps := m.addPath(n, pp.addr)
		if ps == nil {
			return
		}
		ps.lastPong = now
		ps.latency = now.Sub(pp.sent)
		if !n.bestTrusted(now) || pp.addr == n.best || ps.latency < n.bestLatency {
			if n.best != pp.addr {
				m.log.Debug("magicsock: direct path", "node", n.id.ShortString(), "addr", pp.addr, "latency", ps.latency)
			}
			n.best, n.bestLatency, n.bestUntil = pp.addr, ps.latency, now.Add(TrustBestFor)
		}
	case *disco.CallMeMaybe:
		if !viaRelay || m.cfg.DisableDirect {
			return // accepted only via a relay, as iroh does
		}
		for _, a := range msg.Addrs {
			m.addPath(n, a)
		}
		for _, a := range n.sortedPaths() {
			m.ping(n, a, now)
		}
	}
}

// fullPing pings every direct candidate and sends a CallMeMaybe over the relay.
func (m *Map) fullPing(n *node, now time.Time) {
	n.lastFullPing = now
	for _, a := range n.sortedPaths() {
		m.ping(n, a, now)
	}
	if url := m.relayOf(n); url != "" {
		m.emit(Action{Kind: SendCallMeMaybe, Node: n.id, Relay: url})
	}
}

func (m *Map) ping(n *node, a netip.AddrPort, now time.Time) {
	if m.cfg.DisableDirect {
		return
	}
	ps := m.addPath(n, a)
	if ps == nil {
		return
	}
	ping := &disco.Ping{NodeKey: m.cfg.Self.Bytes()}
	if _, err := io.ReadFull(m.cfg.Rand, ping.TxID[:]); err != nil {
		m.log.Warn("magicsock: no random bytes for a ping", "err", err)
		return
	}
	m.pings[ping.TxID] = pendingPing{node: n, addr: a, sent: now}
	ps.lastPing = now
	m.emit(Action{Kind: SendDisco, Node: n.id, Addr: a, Msg: ping})
}

func (m *Map) tick(now time.Time) {
	for tx, pp := range m.pings {
		if now.Sub(pp.sent) > PingTimeout {
			delete(m.pings, tx)
			continue
		}
		n := pp.node
		if pp.addr.IsValid() && pp.addr == n.best && now.Sub(pp.sent) >= PongOverdue && n.bestTrusted(now) {
			if ps := n.paths[pp.addr]; ps != nil && ps.lastPong.Before(pp.sent) {
				m.log.Debug("magicsock: direct path lost (pong overdue)", "node", n.id.ShortString(), "addr", pp.addr)
				n.bestUntil = now
			}
		}
	}
	if m.cfg.DisableDirect {
		return
	}
	ids := make([]key.PublicKey, 0, len(m.nodes))
	for id, n := range m.nodes {
		if now.Sub(n.lastActive) <= ActiveWindow {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b key.PublicKey) int {
		ab, bb := a.Bytes(), b.Bytes()
		return bytes.Compare(ab[:], bb[:])
	})
	for _, id := range ids {
		n := m.nodes[id]
		switch {
		case n.bestTrusted(now):
			if ps := n.paths[n.best]; ps != nil && now.Sub(ps.lastPing) >= StayAliveInterval {
				m.ping(n, n.best, now)
			}
		case now.Sub(n.lastFullPing) >= FullPingInterval:
			m.fullPing(n, now)
		}
	}
}
