package magicsock

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayhttp"
	"github.com/meshkafka/meshkafka/mesh/stun"
)

// Timings from iroh 0.28.1 (node_state.rs, best_addr.rs, path_state.rs).
const (
	trustBestFor      = 6500 * time.Millisecond // a Pong keeps a best address trusted this long
	stayAliveInterval = 2 * time.Second         // re-ping the best address while active
	activeWindow      = 45 * time.Second        // a node counts as active this long after traffic
	fullPingInterval  = 5 * time.Second         // pings to all candidates + CallMeMaybe at most this often
	pingTimeout       = 5 * time.Second
	heartbeatInterval = 500 * time.Millisecond
	reSTUNMin         = 20 * time.Second // iroh re-STUNs every 20–26 s
	reSTUNMax         = 26 * time.Second
	relayQueueDepth   = 512 // packets queued per relay connection (iroh's per-client depth)
)

// MappedPort is the port of every mapped address.
const MappedPort = 12345

var mappedPrefix = [8]byte{0xfd, 0x15, 0x7e, 0x7f}

// Options configure a Conn.
type Options struct {
	// SecretKey is our node identity (required): it signs relay logins and seals disco.
	SecretKey key.SecretKey
	// UDP is the socket for direct paths; the Conn owns it and closes it. Nil means listen
	// on BindAddr.
	UDP net.PacketConn
	// BindAddr for the UDP socket when UDP is nil. Default "0.0.0.0:0".
	BindAddr string
	// HomeRelay is the relay URL we stay connected to and advertise ("" for none).
	HomeRelay string
	// DialRelay connects to a relay. Default: relayhttp.Dial with default options.
	DialRelay func(ctx context.Context, url string, priv ed25519.PrivateKey) (*relay.Client, error)
	// STUNServers are host:port addresses of STUN servers (a relay's, port 3478) asked for
	// our reflexive address from the UDP socket at start and every 20–26 s (iroh's re-STUN
	// timer); the answer is added to DirectAddrs, which is what CallMeMaybe advertises, so
	// peers behind NATs can punch through.
	STUNServers []string
	// DisableDirect keeps all traffic on relays: no UDP to peers, no disco over UDP, no
	// CallMeMaybe sent, received CallMeMaybe ignored.
	DisableDirect bool
	// Logger; nil discards.
	Logger *slog.Logger
}

type inPacket struct {
	data []byte
	from *net.UDPAddr
}

// pathState is one direct candidate address of a node.
type pathState struct {
	lastPing time.Time
	lastPong time.Time
	latency  time.Duration
}

type node struct {
	id       key.PublicKey
	mapped   *net.UDPAddr
	shared   *disco.Shared // lazily computed
	relayURL string
	paths    map[netip.AddrPort]*pathState

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

type pendingPing struct {
	node *node
	addr netip.AddrPort // zero for a ping over the relay
	sent time.Time
}

// relayConn is one relay connection, dialed lazily.
type relayConn struct {
	url   string
	home  bool
	sendq chan relayOut // drained by the connection's writer; buffers while dialing
}

type relayOut struct {
	dst  key.PublicKey
	data []byte
}

// Conn is the multipath PacketConn. Create it with New.
type Conn struct {
	// Static after New.
	opts   Options
	log    *slog.Logger
	priv   ed25519.PrivateKey
	self   key.PublicKey
	udp    net.PacketConn
	recvq  chan inPacket
	closed chan struct{}
	ctx    context.Context // cancelled by Close; bounds relay dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards everything below.
	mu         sync.Mutex
	isClosed   bool
	nodes      map[key.PublicKey]*node
	byMapped   map[netip.AddrPort]*node
	byAddr     map[netip.AddrPort]*node
	pings      map[[disco.TxIDLen]byte]pendingPing
	relays     map[string]*relayConn
	nextMapped uint64
	stunTx     map[stun.TxID]time.Time
	reflexive  map[netip.AddrPort]time.Time // STUN-learned addresses of our UDP socket
	rdl        time.Time                    // read deadline
	rdlChanged chan struct{}                // closed when rdl changes
	anon       map[netip.AddrPort]*anonPeer // QUIC senders we know by address only
	anonMapped map[netip.AddrPort]*anonPeer // the same, by mapped address
}

// anonPeer is a UDP source that sent QUIC without disco (a peer on a plain socket, not a
// magicsock): it gets its own mapped address and is answered directly.
type anonPeer struct {
	addr     netip.AddrPort
	mapped   *net.UDPAddr
	lastSeen time.Time
}

// maxAnon bounds the anonymous peers remembered; the least recently seen is forgotten first.
const maxAnon = 1024

// New starts a Conn.
func New(opts Options) (*Conn, error) {
	if opts.SecretKey.IsZero() {
		return nil, errors.New("magicsock: Options.SecretKey is required")
	}
	if opts.DialRelay == nil {
		opts.DialRelay = func(ctx context.Context, url string, priv ed25519.PrivateKey) (*relay.Client, error) {
			return relayhttp.Dial(ctx, url, priv, relayhttp.Options{})
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	udp := opts.UDP
	if udp == nil {
		addr := opts.BindAddr
		if addr == "" {
			addr = "0.0.0.0:0"
		}
		var err error
		if udp, err = net.ListenPacket("udp", addr); err != nil {
			return nil, fmt.Errorf("magicsock: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		ctx:        ctx,
		cancel:     cancel,
		opts:       opts,
		log:        log,
		priv:       opts.SecretKey.Ed25519(),
		self:       opts.SecretKey.Public(),
		udp:        udp,
		recvq:      make(chan inPacket, 1024),
		closed:     make(chan struct{}),
		nodes:      make(map[key.PublicKey]*node),
		byMapped:   make(map[netip.AddrPort]*node),
		byAddr:     make(map[netip.AddrPort]*node),
		pings:      make(map[[disco.TxIDLen]byte]pendingPing),
		relays:     make(map[string]*relayConn),
		rdlChanged: make(chan struct{}),
		stunTx:     make(map[stun.TxID]time.Time),
		reflexive:  make(map[netip.AddrPort]time.Time),
		anon:       make(map[netip.AddrPort]*anonPeer),
		anonMapped: make(map[netip.AddrPort]*anonPeer),
	}
	c.wg.Go(c.udpLoop)
	c.wg.Go(c.heartbeat)
	if opts.HomeRelay != "" {
		c.mu.Lock()
		c.relays[opts.HomeRelay] = c.newRelayLocked(opts.HomeRelay, true)
		c.mu.Unlock()
	}
	return c, nil
}

// Close stops every goroutine and closes the sockets and relay connections. Idempotent.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		c.wg.Wait()
		return nil
	}
	c.isClosed = true
	close(c.closed)
	c.cancel()
	c.mu.Unlock()
	err := c.udp.Close()
	c.wg.Wait()
	return err
}

// NodeID returns our node id.
func (c *Conn) NodeID() key.PublicKey { return c.self }

// HomeRelayURL returns the home relay URL ("" for none); mesh/endpoint puts it in our NodeAddr.
func (c *Conn) HomeRelayURL() string { return c.opts.HomeRelay }

// UDPAddr returns the local address of the direct-path socket.
func (c *Conn) UDPAddr() net.Addr { return c.udp.LocalAddr() }

// DirectAddrs returns the addresses peers can reach our UDP socket at: the reflexive
// addresses STUN reported, then the bound address, or for an unspecified bind address, the
// port on every interface address.
func (c *Conn) DirectAddrs() []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.directAddrsLocked()
}

func (c *Conn) directAddrsLocked() []netip.AddrPort {
	ua, ok := c.udp.LocalAddr().(*net.UDPAddr)
	if !ok {
		return nil
	}
	var out []netip.AddrPort
	for a := range c.reflexive {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	ap := ua.AddrPort()
	if !ap.Addr().IsUnspecified() {
		local := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if !slices.Contains(out, local) {
			out = append(out, local)
		}
		return out
	}
	ifas, _ := net.InterfaceAddrs()
	for _, ifa := range ifas {
		if ipn, ok := ifa.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(ipn.IP); ok {
				a = a.Unmap()
				if a.Is4() || !a.IsLinkLocalUnicast() {
					out = append(out, netip.AddrPortFrom(a, ap.Port()))
				}
			}
		}
	}
	return out
}

// AddNodeAddr records what we know about a node and returns its mapped address, to dial it
// with quic-go. relayURL "" and direct nil keep what was known.
func (c *Conn) AddNodeAddr(id key.PublicKey, relayURL string, direct []netip.AddrPort) *net.UDPAddr {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(id)
	if relayURL != "" {
		n.relayURL = relayURL
	}
	for _, a := range direct {
		c.addPathLocked(n, a)
	}
	return n.mapped
}

// MappedAddr returns the mapped address of a known node.
func (c *Conn) MappedAddr(id key.PublicKey) (*net.UDPAddr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[id]
	if !ok {
		return nil, false
	}
	return n.mapped, true
}

// NodeForAddr returns the node behind a mapped address.
func (c *Conn) NodeForAddr(a net.Addr) (key.PublicKey, bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return key.PublicKey{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.byMapped[ua.AddrPort()]
	if !ok {
		return key.PublicKey{}, false
	}
	return n.id, true
}

// PathInfo describes how a node is reached right now.
type PathInfo struct {
	Direct   netip.AddrPort // trusted direct address, or zero
	RelayURL string
	Latency  time.Duration // of the direct path
}

// Path reports the current path to a node.
func (c *Conn) Path(id key.PublicKey) (PathInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[id]
	if !ok {
		return PathInfo{}, false
	}
	pi := PathInfo{RelayURL: n.relayURL}
	if n.bestTrusted(time.Now()) {
		pi.Direct, pi.Latency = n.best, n.bestLatency
	}
	return pi, true
}

func (c *Conn) nodeLocked(id key.PublicKey) *node {
	if n, ok := c.nodes[id]; ok {
		return n
	}
	c.nextMapped++
	var ip [16]byte
	copy(ip[:], mappedPrefix[:])
	for i := range 8 {
		ip[15-i] = byte(c.nextMapped >> (8 * i))
	}
	n := &node{
		id:     id,
		mapped: &net.UDPAddr{IP: ip[:], Port: MappedPort},
		paths:  make(map[netip.AddrPort]*pathState),
	}
	c.nodes[id] = n
	c.byMapped[n.mapped.AddrPort()] = n
	return n
}

func (c *Conn) addPathLocked(n *node, a netip.AddrPort) *pathState {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if !a.IsValid() || a.Port() == 0 {
		return nil
	}
	p, ok := n.paths[a]
	if !ok {
		p = &pathState{}
		n.paths[a] = p
	}
	if old := c.byAddr[a]; old != nil && old != n {
		delete(old.paths, a)
	}
	c.byAddr[a] = n
	return p
}

func (n *node) sharedKey(priv ed25519.PrivateKey) (*disco.Shared, error) {
	if n.shared == nil {
		sh, err := disco.NewShared(priv, n.id.Bytes())
		if err != nil {
			return nil, err
		}
		n.shared = sh
	}
	return n.shared, nil
}

// --- net.PacketConn ---

// ReadFrom returns the next QUIC packet from any node, with the node's mapped address.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.mu.Lock()
		dl, changed := c.rdl, c.rdlChanged
		c.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, &net.OpError{Op: "read", Net: "magicsock", Err: os.ErrDeadlineExceeded}
			}
			t := time.NewTimer(d)
			timeout = t.C
			defer t.Stop()
		}
		select {
		case p := <-c.recvq:
			return copy(b, p.data), p.from, nil
		case <-c.closed:
			return 0, nil, net.ErrClosed
		case <-timeout:
			return 0, nil, &net.OpError{Op: "read", Net: "magicsock", Err: os.ErrDeadlineExceeded}
		case <-changed:
		}
	}
}

// WriteTo sends a QUIC packet to the node behind the mapped address addr over its current
// path. Packets to unknown addresses or nodes without any path are dropped (UDP semantics).
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("magicsock: not a mapped address: %v", addr)
	}
	now := time.Now()
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	n, ok := c.byMapped[ua.AddrPort()]
	if !ok {
		a := c.anonMapped[ua.AddrPort()]
		c.mu.Unlock()
		if a != nil && !c.opts.DisableDirect {
			if _, err := c.udp.WriteTo(b, net.UDPAddrFromAddrPort(a.addr)); err != nil {
				c.log.Debug("magicsock: udp send failed", "to", a.addr, "err", err)
			}
		}
		return len(b), nil
	}
	n.lastActive = now
	var udpTo []netip.AddrPort
	var viaRelay string
	direct := !c.opts.DisableDirect
	switch {
	case direct && n.bestTrusted(now):
		udpTo = append(udpTo, n.best)
	default:
		viaRelay = c.relayOfLocked(n)
		if direct {
			switch {
			case n.best.IsValid():
				udpTo = append(udpTo, n.best) // outdated best, in parallel with the relay
			case n.quicFrom.IsValid():
				udpTo = append(udpTo, n.quicFrom) // a peer that answers QUIC but not disco
			default:
				udpTo = c.untriedLocked(n) // nothing confirmed yet: every candidate
			}
		}
		if direct && now.Sub(n.lastFullPing) >= fullPingInterval {
			c.fullPingLocked(n, now)
		}
	}
	if viaRelay != "" {
		c.sendRelayLocked(viaRelay, n.id, b)
	}
	c.mu.Unlock()
	for _, to := range udpTo {
		if _, err := c.udp.WriteTo(b, net.UDPAddrFromAddrPort(to)); err != nil {
			c.log.Debug("magicsock: udp send failed", "to", to, "err", err)
		}
	}
	return len(b), nil
}

// LocalAddr returns our own mapped address (a placeholder: quic-go only logs it).
func (c *Conn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IP(append(mappedPrefix[:], 0, 0, 0, 0, 0, 0, 0, 0)), Port: MappedPort}
}

// SetDeadline sets the read deadline (writes never block).
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	close(c.rdlChanged)
	c.rdlChanged = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline implements net.PacketConn; writes never block, so it is a no-op.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

func (c *Conn) deliver(n *node, data []byte) { c.deliverFrom(n.mapped, data) }

func (c *Conn) deliverFrom(from *net.UDPAddr, data []byte) {
	select {
	case c.recvq <- inPacket{data: data, from: from}:
	default:
		c.log.Debug("magicsock: receive queue full, dropping packet")
	}
}

// maxUntried bounds the candidates a packet is copied to while no direct path is confirmed.
const maxUntried = 4

// untriedLocked lists (sorted, at most maxUntried) the direct candidates of a node no
// address of which has answered yet, neither a disco Ping nor with QUIC: a packet goes to
// each of them, so a peer on a plain socket (no disco) can be reached directly. Decision:
// iroh 0.28 sends nothing direct before a Pong; a copy to a wrong address is dropped there.
func (c *Conn) untriedLocked(n *node) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(n.paths))
	for a := range n.paths {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	if len(out) > maxUntried {
		out = out[:maxUntried]
	}
	return out
}

// anonLocked returns the anonymous peer for a UDP source no known node has (creating it,
// and forgetting the least recently seen one beyond maxAnon).
func (c *Conn) anonLocked(src netip.AddrPort, now time.Time) *anonPeer {
	if a, ok := c.anon[src]; ok {
		a.lastSeen = now
		return a
	}
	if len(c.anon) >= maxAnon {
		var oldest *anonPeer
		for _, a := range c.anon {
			if oldest == nil || a.lastSeen.Before(oldest.lastSeen) {
				oldest = a
			}
		}
		delete(c.anon, oldest.addr)
		delete(c.anonMapped, oldest.mapped.AddrPort())
	}
	c.nextMapped++
	var ip [16]byte
	copy(ip[:], mappedPrefix[:])
	for i := range 8 {
		ip[15-i] = byte(c.nextMapped >> (8 * i))
	}
	a := &anonPeer{addr: src, mapped: &net.UDPAddr{IP: ip[:], Port: MappedPort}, lastSeen: now}
	c.anon[src] = a
	c.anonMapped[a.mapped.AddrPort()] = a
	c.log.Debug("magicsock: QUIC from an address no known node has; answering it directly", "addr", src)
	return a
}

// --- UDP ---

func (c *Conn) udpLoop() {
	buf := make([]byte, 65535)
	for {
		nb, from, err := c.udp.ReadFrom(buf)
		if err != nil {
			select {
			case <-c.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			c.log.Warn("magicsock: udp read failed", "err", err)
			return
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		p := buf[:nb]
		switch {
		case stun.Is(p):
			c.handleSTUN(p)
		case disco.LooksLikeDisco(p):
			if !c.opts.DisableDirect {
				c.handleDisco(p, src, "", key.PublicKey{})
			}
		default:
			c.mu.Lock()
			n := c.byAddr[src]
			var from *net.UDPAddr
			switch {
			case n != nil:
				n.lastActive = time.Now()
				n.quicFrom = src
				from = n.mapped
			case !c.opts.DisableDirect:
				from = c.anonLocked(src, time.Now()).mapped
			}
			c.mu.Unlock()
			if from != nil {
				c.deliverFrom(from, slices.Clone(p))
			}
		}
	}
}

// --- disco ---

// handleDisco processes a disco packet that came from a UDP source (src valid) or over the
// relay relayURL from node relayFrom.
func (c *Conn) handleDisco(p []byte, src netip.AddrPort, relayURL string, relayFrom key.PublicKey) {
	senderRaw, box, _ := disco.Source(p)
	sender, err := key.PublicKeyFromBytes(senderRaw[:])
	if err != nil {
		return
	}
	if relayURL != "" && sender != relayFrom {
		c.log.Debug("magicsock: disco sender differs from relay source; dropped")
		return
	}
	if sender == c.self {
		return
	}
	now := time.Now()
	c.mu.Lock()
	n := c.nodeLocked(sender)
	sh, err := n.sharedKey(c.priv)
	c.mu.Unlock()
	if err != nil {
		return
	}
	pt, err := sh.Open(box)
	if err != nil {
		c.log.Debug("magicsock: disco box does not open", "from", sender.ShortString())
		return
	}
	msg, err := disco.ParseMessage(pt)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed {
		return
	}
	switch m := msg.(type) {
	case *disco.Ping:
		if relayURL != "" {
			if n.relayURL == "" {
				n.relayURL = relayURL
			}
			c.sendDiscoLocked(n, netip.AddrPort{}, relayURL, &disco.Pong{TxID: m.TxID, RelayURL: relayURL})
			return
		}
		c.addPathLocked(n, src)
		c.sendDiscoLocked(n, src, "", &disco.Pong{TxID: m.TxID, Addr: src})
		if !n.bestTrusted(now) {
			c.pingLocked(n, src, now)
		}
	case *disco.Pong:
		pp, ok := c.pings[m.TxID]
		if !ok || pp.node != n {
			return
		}
		delete(c.pings, m.TxID)
		if !pp.addr.IsValid() {
			return // a relay ping: nothing to learn for path choice
		}
		ps := c.addPathLocked(n, pp.addr)
		if ps == nil {
			return
		}
		ps.lastPong = now
		ps.latency = now.Sub(pp.sent)
		if !n.bestTrusted(now) || pp.addr == n.best || ps.latency < n.bestLatency {
			if n.best != pp.addr {
				c.log.Debug("magicsock: direct path", "node", n.id.ShortString(), "addr", pp.addr, "latency", ps.latency)
			}
			n.best, n.bestLatency, n.bestUntil = pp.addr, ps.latency, now.Add(trustBestFor)
		}
	case *disco.CallMeMaybe:
		if relayURL == "" || c.opts.DisableDirect {
			return // accepted only via a relay, as iroh does
		}
		for _, a := range m.Addrs {
			c.addPathLocked(n, a)
		}
		for a := range n.paths {
			c.pingLocked(n, a, now)
		}
	}
}

// relayOfLocked is the relay to reach n over: its own relay URL, or, when none is known,
// our home relay (a private mesh usually shares one relay, and addresses learned from
// seeds, control-plane digests or mDNS carry no relay URL). iroh 0.28 would not send
// then; a relay drops packets for a node not connected to it, so guessing costs nothing.
func (c *Conn) relayOfLocked(n *node) string {
	if n.relayURL != "" {
		return n.relayURL
	}
	return c.opts.HomeRelay
}

// fullPingLocked pings every direct candidate and sends a CallMeMaybe over the relay.
func (c *Conn) fullPingLocked(n *node, now time.Time) {
	n.lastFullPing = now
	for a := range n.paths {
		c.pingLocked(n, a, now)
	}
	if url := c.relayOfLocked(n); url != "" {
		c.sendDiscoLocked(n, netip.AddrPort{}, url, &disco.CallMeMaybe{Addrs: c.directAddrsLocked()})
	}
}

func (c *Conn) pingLocked(n *node, a netip.AddrPort, now time.Time) {
	if c.opts.DisableDirect {
		return
	}
	ps := c.addPathLocked(n, a)
	if ps == nil {
		return
	}
	ping := &disco.Ping{NodeKey: c.self.Bytes()}
	_, _ = rand.Read(ping.TxID[:])
	c.pings[ping.TxID] = pendingPing{node: n, addr: a, sent: now}
	ps.lastPing = now
	c.sendDiscoLocked(n, a, "", ping)
}

// sendDiscoLocked seals m for n and sends it to a UDP address or over a relay.
func (c *Conn) sendDiscoLocked(n *node, to netip.AddrPort, relayURL string, m disco.Message) {
	sh, err := n.sharedKey(c.priv)
	if err != nil {
		return
	}
	pkt := disco.Encode(c.self.Bytes(), sh, m)
	if relayURL != "" {
		c.sendRelayLocked(relayURL, n.id, pkt)
		return
	}
	// UDP writes do not block; doing it under the lock keeps ordering simple.
	if _, err := c.udp.WriteTo(pkt, net.UDPAddrFromAddrPort(to)); err != nil {
		c.log.Debug("magicsock: disco send failed", "to", to, "err", err)
	}
}

// --- relays ---

func (c *Conn) relayLocked(url string) *relayConn {
	rc, ok := c.relays[url]
	if ok {
		return rc
	}
	rc = c.newRelayLocked(url, false)
	c.relays[url] = rc
	return rc
}

func (c *Conn) newRelayLocked(url string, home bool) *relayConn {
	rc := &relayConn{url: url, home: home, sendq: make(chan relayOut, relayQueueDepth)}
	c.wg.Go(func() { c.runRelay(rc) })
	return rc
}

// sendRelayLocked queues one datagram to dst over the relay url, dialing it if needed. It
// never blocks: when the queue is full the datagram is dropped.
func (c *Conn) sendRelayLocked(url string, dst key.PublicKey, b []byte) {
	rc := c.relayLocked(url)
	select {
	case rc.sendq <- relayOut{dst: dst, data: slices.Clone(b)}:
	default:
		c.log.Debug("magicsock: relay queue full, dropping", "relay", url)
	}
}

// runRelay dials the relay, runs a writer for its queue and reads until the connection
// fails, then starts over with backoff (10 ms doubling to 5 s, as iroh's home relay) until
// Close. Like iroh 0.28 (whose idle check never fires), relay connections are kept for the
// Conn's life.
func (c *Conn) runRelay(rc *relayConn) {
	backoff := 10 * time.Millisecond
	for {
		cl, err := c.opts.DialRelay(c.ctx, rc.url, c.priv)
		if err == nil {
			backoff = 10 * time.Millisecond
			if rc.home {
				_ = cl.NotePreferred(true)
			}
			done := make(chan struct{})
			var w sync.WaitGroup
			w.Go(func() { c.relayWriter(rc, cl, done) })
			stop := context.AfterFunc(c.ctx, func() { _ = cl.Close() })
			c.readRelay(rc, cl)
			stop()
			_ = cl.Close()
			close(done)
			w.Wait()
		} else {
			c.log.Debug("magicsock: relay dial failed", "relay", rc.url, "err", err)
		}
		select {
		case <-c.closed:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// relayWriter sends queued datagrams until done. Like iroh's magicsock it packs every
// datagram already queued for the same destination into one SendPacket payload (each with
// its u16-LE length, up to 64 KiB − 32 bytes). Besides saving frames, this matters for
// interop: iroh 0.28.1's relay client stalls for good when more than 64 received frames
// queue up between its connection actor and its relay actor (the relay actor awaits an
// is_connected round trip to the connection actor, which is itself blocked handing it the
// 65th frame), and one frame per QUIC packet in a burst gets there.
func (c *Conn) relayWriter(rc *relayConn, cl *relay.Client, done <-chan struct{}) {
	var (
		payload []byte
		pending *relayOut
	)
	for {
		var first relayOut
		if pending != nil {
			first, pending = *pending, nil
		} else {
			select {
			case first = <-rc.sendq:
			case <-done:
				return
			}
		}
		payload, _ = relay.AppendDatagram(payload[:0], first.data)
	batch:
		for len(payload) < relay.MaxDatagramsPayload {
			select {
			case o := <-rc.sendq:
				if o.dst != first.dst || len(payload)+2+len(o.data) > relay.MaxDatagramsPayload {
					pending = &o
					break batch
				}
				payload, _ = relay.AppendDatagram(payload, o.data)
			default:
				break batch
			}
		}
		if err := cl.Send(first.dst.Bytes(), payload); err != nil {
			c.log.Debug("magicsock: relay send failed", "relay", rc.url, "err", err)
			_ = cl.Close()
			return
		}
	}
}

func (c *Conn) readRelay(rc *relayConn, cl *relay.Client) {
	var items [][]byte
	for {
		f, err := cl.Recv()
		if err != nil {
			return
		}
		if f.Type != relay.FrameRecvPacket {
			continue
		}
		from, err := key.PublicKeyFromBytes(f.Key[:])
		if err != nil {
			continue
		}
		items, err = relay.SplitDatagrams(f.Data, items[:0])
		if err != nil {
			c.log.Debug("magicsock: truncated relay payload", "from", from.ShortString(), "err", err)
		}
		for _, it := range items {
			if disco.LooksLikeDisco(it) {
				c.handleDisco(it, netip.AddrPort{}, rc.url, from)
				continue
			}
			c.mu.Lock()
			n := c.nodeLocked(from)
			if n.relayURL == "" {
				n.relayURL = rc.url
			}
			n.lastActive = time.Now()
			c.mu.Unlock()
			c.deliver(n, slices.Clone(it))
		}
	}
}

// --- STUN ---

// sendSTUN asks every STUN server for our reflexive address.
func (c *Conn) sendSTUN() {
	for _, s := range c.opts.STUNServers {
		ua, err := net.ResolveUDPAddr("udp", s)
		if err != nil {
			c.log.Debug("magicsock: bad STUN server", "server", s, "err", err)
			continue
		}
		tx, req := stun.Request()
		c.mu.Lock()
		c.stunTx[tx] = time.Now()
		c.mu.Unlock()
		if _, err := c.udp.WriteTo(req, ua); err != nil {
			c.log.Debug("magicsock: STUN send failed", "server", s, "err", err)
		}
	}
}

func (c *Conn) handleSTUN(p []byte) {
	if len(p) < 20 {
		return
	}
	var tx stun.TxID
	copy(tx[:], p[8:20])
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.stunTx[tx]; !ok {
		return
	}
	ap, err := stun.ParseResponse(p, tx)
	if err != nil {
		return
	}
	delete(c.stunTx, tx)
	if _, known := c.reflexive[ap]; !known {
		c.log.Debug("magicsock: reflexive address", "addr", ap)
	}
	c.reflexive[ap] = time.Now()
}

// --- heartbeat ---

func (c *Conn) heartbeat() {
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	c.sendSTUN()
	nextSTUN := time.Now().Add(reSTUNInterval())
	for {
		select {
		case <-c.closed:
			return
		case <-t.C:
		}
		now := time.Now()
		if len(c.opts.STUNServers) > 0 && (now.After(nextSTUN) || c.noReflexive()) {
			c.sendSTUN()
			nextSTUN = now.Add(reSTUNInterval())
		}
		c.mu.Lock()
		for tx, sent := range c.stunTx {
			if now.Sub(sent) > pingTimeout {
				delete(c.stunTx, tx)
			}
		}
		for a, seen := range c.reflexive {
			if now.Sub(seen) > 3*reSTUNMax {
				delete(c.reflexive, a)
			}
		}
		for tx, pp := range c.pings {
			if now.Sub(pp.sent) > pingTimeout {
				delete(c.pings, tx)
			}
		}
		if !c.opts.DisableDirect {
			for _, n := range c.nodes {
				if now.Sub(n.lastActive) > activeWindow {
					continue
				}
				switch {
				case n.bestTrusted(now):
					if ps := n.paths[n.best]; ps != nil && now.Sub(ps.lastPing) >= stayAliveInterval {
						c.pingLocked(n, n.best, now)
					}
				case now.Sub(n.lastFullPing) >= fullPingInterval:
					c.fullPingLocked(n, now)
				}
			}
		}
		c.mu.Unlock()
	}
}

// SetReadBuffer sets the receive buffer of the UDP socket (quic-go asks for 7 MiB); relays
// need none. It is a no-op for sockets that cannot do it.
func (c *Conn) SetReadBuffer(n int) error {
	if s, ok := c.udp.(interface{ SetReadBuffer(int) error }); ok {
		return s.SetReadBuffer(n)
	}
	return nil
}

// SetWriteBuffer sets the send buffer of the UDP socket, like SetReadBuffer.
func (c *Conn) SetWriteBuffer(n int) error {
	if s, ok := c.udp.(interface{ SetWriteBuffer(int) error }); ok {
		return s.SetWriteBuffer(n)
	}
	return nil
}

func reSTUNInterval() time.Duration {
	return reSTUNMin + time.Duration(mrand.Int64N(int64(reSTUNMax-reSTUNMin)))
}

func (c *Conn) noReflexive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.reflexive) == 0
}
