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

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/readq"
	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock/internal/nodemap"
	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayhttp"
	"github.com/meshkafka/meshkafka/mesh/stun"
)

// Timings of the shell (the path timings live in the core, internal/nodemap).
const (
	heartbeatInterval = 500 * time.Millisecond
	stunTimeout       = 5 * time.Second  // an unanswered STUN request is forgotten after this
	reSTUNMin         = 20 * time.Second // iroh re-STUNs every 20–26 s
	reSTUNMax         = 26 * time.Second
	relayQueueDepth   = 512 // packets queued per relay connection (iroh's per-client depth)
)

// MappedPort is the port of every mapped address.
const MappedPort = nodemap.MappedPort

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
	// Clock drives path decisions (trust, re-ping, fall back are decided at its Now), the
	// 500 ms heartbeat, the relay redial backoff and STUN expiry. Nil: the wall clock.
	// Read deadlines are wall-clock times set by the caller (quic-go), so they are
	// measured by the wall clock, as a socket's are.
	Clock clock.Clock
}

type inPacket struct {
	data []byte
	from *net.UDPAddr
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
//
// It is the shell around an I/O-free core (internal/nodemap.Map) that holds every node's
// path state: each packet written or read, disco message received and heartbeat tick is fed
// to the core as an event, under mu, and the actions it returns are performed here.
type Conn struct {
	// Static after New.
	opts   Options
	log    *slog.Logger
	clock  clock.Clock
	priv   ed25519.PrivateKey
	self   key.PublicKey
	udp    net.PacketConn
	recvq  chan inPacket
	closed chan struct{}
	ctx    context.Context // cancelled by Close; bounds relay dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu guards everything below. Lock order: mu, then nothing (relay queues and recvq
	// are only ever sent to without blocking).
	mu        sync.Mutex
	isClosed  bool
	core      *nodemap.Map
	udpAddrs  map[netip.AddrPort]*net.UDPAddr // mapped address → the one *net.UDPAddr quic-go sees
	secrets   map[key.PublicKey]*disco.Shared // disco keys, computed once per node
	relays    map[string]*relayConn
	stunTx    map[stun.TxID]time.Time
	reflexive map[netip.AddrPort]time.Time // STUN-learned addresses of our UDP socket

	rdl readq.Deadline // ReadFrom's (a wall-clock deadline, see Options.Clock)
}

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
	self := opts.SecretKey.Public()
	core, err := nodemap.New(nodemap.Config{
		Self:          self,
		HomeRelay:     opts.HomeRelay,
		DisableDirect: opts.DisableDirect,
		Rand:          rand.Reader,
		Logger:        log,
	})
	if err != nil {
		return nil, fmt.Errorf("magicsock: %w", err)
	}
	udp := opts.UDP
	if udp == nil {
		addr := opts.BindAddr
		if addr == "" {
			addr = "0.0.0.0:0"
		}
		if udp, err = net.ListenPacket("udp", addr); err != nil {
			return nil, fmt.Errorf("magicsock: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Conn{
		ctx:       ctx,
		cancel:    cancel,
		opts:      opts,
		log:       log,
		clock:     clock.Or(opts.Clock),
		priv:      opts.SecretKey.Ed25519(),
		self:      self,
		udp:       udp,
		recvq:     make(chan inPacket, 1024),
		closed:    make(chan struct{}),
		core:      core,
		udpAddrs:  make(map[netip.AddrPort]*net.UDPAddr),
		secrets:   make(map[key.PublicKey]*disco.Shared),
		relays:    make(map[string]*relayConn),
		stunTx:    make(map[stun.TxID]time.Time),
		reflexive: make(map[netip.AddrPort]time.Time),
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
	slices.SortFunc(out, netip.AddrPort.Compare)
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
	c.handleLocked(nodemap.AddNode{ID: id, RelayURL: relayURL, Direct: direct}, nil, nil)
	m, _ := c.core.Mapped(id)
	return c.udpAddrLocked(m)
}

// MappedAddr returns the mapped address of a known node.
func (c *Conn) MappedAddr(id key.PublicKey) (*net.UDPAddr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.core.Mapped(id)
	if !ok {
		return nil, false
	}
	return c.udpAddrLocked(m), true
}

// NodeForAddr returns the node behind a mapped address.
func (c *Conn) NodeForAddr(a net.Addr) (key.PublicKey, bool) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return key.PublicKey{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.core.NodeFor(ua.AddrPort())
}

// PathInfo describes how a node is reached right now.
type PathInfo struct {
	Direct   netip.AddrPort // trusted direct address, or zero
	RelayURL string
	Latency  time.Duration // of the direct path
}

// Path reports the current path to a node.
func (c *Conn) Path(id key.PublicKey) (PathInfo, bool) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	pi, ok := c.core.Path(now, id)
	return PathInfo(pi), ok
}

// udpAddrLocked returns the one *net.UDPAddr for a mapped address (quic-go keeps the
// address of a connection and compares it; one pointer per node also saves an allocation
// per packet).
func (c *Conn) udpAddrLocked(mapped netip.AddrPort) *net.UDPAddr {
	if ua, ok := c.udpAddrs[mapped]; ok {
		return ua
	}
	ua := net.UDPAddrFromAddrPort(mapped)
	c.udpAddrs[mapped] = ua
	return ua
}

// handleLocked feeds one event to the core and performs its actions. pkt is the packet the
// event is about (nil for none). UDP sends of pkt are appended to udpTo (a buffer of the
// caller's, may be nil) for the caller to do after unlocking (so packet writes do not
// serialise on mu), and the returned address is where a Deliver action says pkt is from
// (nil for none).
func (c *Conn) handleLocked(ev nodemap.Event, pkt []byte, udpTo []netip.AddrPort) (deliverFrom *net.UDPAddr, _ []netip.AddrPort) {
	for _, a := range c.core.Handle(c.clock.Now(), ev) {
		switch a.Kind {
		case nodemap.SendUDP:
			udpTo = append(udpTo, a.Addr)
		case nodemap.SendRelay:
			c.sendRelayLocked(a.Relay, a.Node, pkt)
		case nodemap.Deliver:
			deliverFrom = c.udpAddrLocked(a.Mapped)
		case nodemap.SendDisco:
			c.sendDiscoLocked(a.Node, a.Addr, a.Relay, a.Msg)
		case nodemap.SendCallMeMaybe:
			c.sendDiscoLocked(a.Node, netip.AddrPort{}, a.Relay, &disco.CallMeMaybe{Addrs: c.directAddrsLocked()})
		case nodemap.ForgetMapped:
			delete(c.udpAddrs, a.Mapped)
		}
	}
	return deliverFrom, udpTo
}

func (c *Conn) sharedLocked(id key.PublicKey) (*disco.Shared, error) {
	if sh, ok := c.secrets[id]; ok {
		return sh, nil
	}
	sh, err := disco.NewShared(c.priv, id.Bytes())
	if err != nil {
		return nil, err
	}
	c.secrets[id] = sh
	return sh, nil
}

// --- net.PacketConn ---

// ReadFrom returns the next QUIC packet from any node, with the node's mapped address.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	p, err := readq.Recv(&c.rdl, c.recvq, c.closed)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, nil, &net.OpError{Op: "read", Net: "magicsock", Err: err}
	case err != nil:
		return 0, nil, err
	}
	return copy(b, p.data), p.from, nil
}

// WriteTo sends a QUIC packet to the node behind the mapped address addr over its current
// path. Packets to unknown addresses or nodes without any path are dropped (UDP semantics).
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("magicsock: not a mapped address: %v", addr)
	}
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	var buf [nodemap.MaxUntried]netip.AddrPort
	_, udpTo := c.handleLocked(nodemap.SendPacket{To: ua.AddrPort()}, b, buf[:0])
	c.mu.Unlock()
	c.writeUDP(b, udpTo)
	return len(b), nil
}

func (c *Conn) writeUDP(b []byte, to []netip.AddrPort) {
	for _, a := range to {
		if _, err := c.udp.WriteTo(b, net.UDPAddrFromAddrPort(a)); err != nil {
			c.log.Debug("magicsock: udp send failed", "to", a, "err", err)
		}
	}
}

// LocalAddr returns our own mapped address (a placeholder: quic-go only logs it).
func (c *Conn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IP(append(nodemap.MappedPrefix[:], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), Port: MappedPort}
}

// SetDeadline sets the read deadline (writes never block).
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl.Set(t)
	return nil
}

// SetWriteDeadline implements net.PacketConn; writes never block, so it is a no-op.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

func (c *Conn) deliver(from *net.UDPAddr, data []byte) {
	select {
	case c.recvq <- inPacket{data: data, from: from}:
	default:
		c.log.Debug("magicsock: receive queue full, dropping packet")
	}
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
			from, _ := c.handleLocked(nodemap.RecvUDP{Src: src}, p, nil)
			c.mu.Unlock()
			if from != nil {
				c.deliver(from, slices.Clone(p))
			}
		}
	}
}

// --- disco ---

// handleDisco opens a disco packet that came from a UDP source (src valid) or over the
// relay relayURL from node relayFrom, and feeds the message to the core.
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
	c.mu.Lock()
	sh := c.secrets[sender]
	c.mu.Unlock()
	fresh := sh == nil
	if fresh {
		if sh, err = disco.NewShared(c.priv, sender.Bytes()); err != nil {
			return
		}
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
	if fresh {
		c.secrets[sender] = sh // kept only for senders whose box opened
	}
	c.handleLocked(nodemap.RecvDisco{From: sender, Src: src, RelayURL: relayURL, Msg: msg}, nil, nil)
}

// sendDiscoLocked seals m for node id and sends it to a UDP address or over a relay.
func (c *Conn) sendDiscoLocked(id key.PublicKey, to netip.AddrPort, relayURL string, m disco.Message) {
	sh, err := c.sharedLocked(id)
	if err != nil {
		return
	}
	pkt := disco.Encode(c.self.Bytes(), sh, m)
	if relayURL != "" {
		c.sendRelayLocked(relayURL, id, pkt)
		return
	}
	// UDP writes do not block; doing it under the lock keeps ordering simple.
	if _, err := c.udp.WriteTo(pkt, net.UDPAddrFromAddrPort(to)); err != nil {
		c.log.Debug("magicsock: disco send failed", "to", to, "err", err)
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
		c.stunTx[tx] = c.clock.Now()
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
	c.reflexive[ap] = c.clock.Now()
}

// --- heartbeat ---

func (c *Conn) heartbeat() {
	t := c.clock.NewTicker(heartbeatInterval)
	defer t.Stop()
	c.sendSTUN()
	nextSTUN := c.clock.Now().Add(reSTUNInterval())
	for {
		select {
		case <-c.closed:
			return
		case <-t.C():
		}
		now := c.clock.Now()
		if len(c.opts.STUNServers) > 0 && (now.After(nextSTUN) || c.noReflexive()) {
			c.sendSTUN()
			nextSTUN = now.Add(reSTUNInterval())
		}
		c.mu.Lock()
		for tx, sent := range c.stunTx {
			if now.Sub(sent) > stunTimeout {
				delete(c.stunTx, tx)
			}
		}
		for a, seen := range c.reflexive {
			if now.Sub(seen) > 3*reSTUNMax {
				delete(c.reflexive, a)
			}
		}
		if !c.isClosed {
			c.handleLocked(nodemap.Tick{}, nil, nil)
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
