package natlab

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/internal/readq"
)

// Config configures a Network.
type Config struct {
	// Seed seeds the random source of packet loss.
	Seed uint64
	// Loss is the fraction (0..1) of packets dropped at random between the two sides.
	Loss float64
	// QueueLen is each socket's receive queue in datagrams. Default 1024.
	QueueLen int
}

// Packet is a datagram in flight, as the drop rule sees it.
type Packet struct {
	Src, Dst netip.AddrPort
	Data     []byte
}

// Stats counts packets by fate.
type Stats struct {
	Sent      int // WriteTo calls routed
	Delivered int // put in a socket's queue
	Lost      int // dropped by Config.Loss
	Filtered  int // dropped by the drop rule (SetDrop)
	Blocked   int // dropped by a NAT (down, no mapping, filtering, hairpin) or a firewall
	NoRoute   int // no machine, NAT or socket at the destination, or a private address from outside
	QueueFull int // the destination socket's queue was full
}

// Network is the simulated internet. Create it with New; Close closes every socket.
type Network struct {
	queueLen int

	mu     sync.Mutex
	rnd    *rand.Rand
	loss   float64
	drop   func(Packet) bool
	public map[netip.Addr]any // *Machine or *NAT
	all    []*Machine
	stats  Stats
	closed bool
}

// New returns an empty network.
func New(cfg Config) *Network {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1024
	}
	return &Network{
		queueLen: cfg.QueueLen,
		rnd:      rand.New(rand.NewPCG(cfg.Seed, 0x6e61746c6162)),
		loss:     cfg.Loss,
		public:   make(map[netip.Addr]any),
	}
}

// Close closes every socket of every machine. Idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	n.closed = true
	var conns []*Conn
	for _, m := range n.all {
		for _, c := range m.conns {
			conns = append(conns, c)
		}
	}
	n.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

// SetLoss changes the fraction of packets dropped at random.
func (n *Network) SetLoss(loss float64) {
	n.mu.Lock()
	n.loss = loss
	n.mu.Unlock()
}

// SetDrop installs a rule that drops every packet it returns true for (nil removes it). It
// runs under the Network's lock: it must not call back into the Network.
func (n *Network) SetDrop(drop func(Packet) bool) {
	n.mu.Lock()
	n.drop = drop
	n.mu.Unlock()
}

// Stats returns the packet counters so far.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

func (n *Network) claim(ip netip.Addr, owner any) {
	if !ip.IsValid() {
		panic("natlab: invalid address")
	}
	if _, dup := n.public[ip]; dup {
		panic(fmt.Sprintf("natlab: address %v used twice", ip))
	}
	n.public[ip] = owner
}

// AddMachine adds a machine with a public address to the internet.
func (n *Network) AddMachine(name string, ip netip.Addr) *Machine {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := newMachine(n, name, ip.Unmap(), nil)
	n.claim(m.ip, m)
	return m
}

// Mapping is how a NAT picks public ports.
type Mapping int

// Filtering is what inbound traffic a NAT mapping or a firewall lets through.
type Filtering int

// Mapping and filtering behaviours (RFC 4787 terms).
const (
	EndpointIndependent     = 1 // Mapping or Filtering
	EndpointDependent       = 2 // Mapping only: a new public port per destination ip:port
	AddressDependent        = 3 // Filtering only
	AddressAndPortDependent = 4 // Filtering only
)

// NATConfig configures a NAT. The zero value is an endpoint-independent mapping with
// address-and-port-dependent filtering (a port-restricted cone NAT, the common home router).
type NATConfig struct {
	Mapping      Mapping
	Filtering    Filtering
	PreservePort bool
}

// NAT is a network address translator with a LAN of machines behind it.
type NAT struct {
	n    *Network
	name string
	ip   netip.Addr
	cfg  NATConfig

	// Guarded by n.mu.
	lan       map[netip.Addr]*Machine
	byPrivate map[natKey]*mapping
	byPublic  map[uint16]*mapping
	usedPorts map[uint16]bool // ever handed out (not preserved ones)
	nextPort  uint16
	down      bool
}

type natKey struct {
	private netip.AddrPort
	dst     netip.AddrPort // zero for endpoint-independent mapping
}

type mapping struct {
	private netip.AddrPort
	public  netip.AddrPort
	holes   map[netip.AddrPort]bool // destinations sent to
}

// AddNAT adds a NAT with the public address ip.
func (n *Network) AddNAT(name string, ip netip.Addr, cfg NATConfig) *NAT {
	if cfg.Mapping == 0 {
		cfg.Mapping = EndpointIndependent
	}
	if cfg.Filtering == 0 {
		cfg.Filtering = AddressAndPortDependent
	}
	if cfg.Mapping != EndpointIndependent && cfg.Mapping != EndpointDependent {
		panic(fmt.Sprintf("natlab: mapping %d", cfg.Mapping))
	}
	if cfg.Filtering != EndpointIndependent && cfg.Filtering != AddressDependent && cfg.Filtering != AddressAndPortDependent {
		panic(fmt.Sprintf("natlab: filtering %d", cfg.Filtering))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	nat := &NAT{
		n: n, name: name, ip: ip.Unmap(), cfg: cfg,
		lan:       make(map[netip.Addr]*Machine),
		byPrivate: make(map[natKey]*mapping),
		byPublic:  make(map[uint16]*mapping),
		usedPorts: make(map[uint16]bool),
		nextPort:  49152,
	}
	n.claim(nat.ip, nat)
	return nat
}

// PublicIP is the NAT's public address.
func (t *NAT) PublicIP() netip.Addr { return t.ip }

// AddMachine adds a machine with the private address ip to the NAT's LAN.
func (t *NAT) AddMachine(name string, ip netip.Addr) *Machine {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	ip = ip.Unmap()
	if _, dup := t.lan[ip]; dup {
		panic(fmt.Sprintf("natlab: address %v used twice on %s", ip, t.name))
	}
	m := newMachine(t.n, name, ip, t)
	t.lan[ip] = m
	return m
}

// Mapped returns the public address the NAT currently maps the private ip:port to for
// traffic to dst (dst is ignored with endpoint-independent mapping).
func (t *NAT) Mapped(private, dst netip.AddrPort) (netip.AddrPort, bool) {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	mp, ok := t.byPrivate[t.key(unmap(private), unmap(dst))]
	if !ok {
		return netip.AddrPort{}, false
	}
	return mp.public, true
}

// SetDown drops every packet through the NAT while down (its mappings are kept; see Reboot).
func (t *NAT) SetDown(down bool) {
	t.n.mu.Lock()
	t.down = down
	t.n.mu.Unlock()
}

// Reboot forgets every mapping, and with them every hole punched.
func (t *NAT) Reboot() {
	t.n.mu.Lock()
	clear(t.byPrivate)
	clear(t.byPublic)
	t.n.mu.Unlock()
}

func (t *NAT) key(private, dst netip.AddrPort) natKey {
	if t.cfg.Mapping == EndpointIndependent {
		dst = netip.AddrPort{}
	}
	return natKey{private: private, dst: dst}
}

// outbound translates a packet from a LAN socket to dst; nil when no port is left.
func (t *NAT) outbound(private, dst netip.AddrPort) *mapping {
	k := t.key(private, dst)
	mp, ok := t.byPrivate[k]
	if !ok {
		port, ok := t.allocPort(private.Port())
		if !ok {
			return nil
		}
		mp = &mapping{private: private, public: netip.AddrPortFrom(t.ip, port), holes: make(map[netip.AddrPort]bool)}
		t.byPrivate[k] = mp
		t.byPublic[port] = mp
	}
	mp.holes[dst] = true
	return mp
}

func (t *NAT) allocPort(want uint16) (uint16, bool) {
	if t.cfg.PreservePort && t.byPublic[want] == nil && !t.usedPorts[want] {
		return want, true
	}
	for t.nextPort != 0 { // wraps to 0 after 65535: exhausted
		p := t.nextPort
		t.nextPort++
		if t.byPublic[p] == nil && !t.usedPorts[p] {
			t.usedPorts[p] = true
			return p, true
		}
	}
	return 0, false
}

// inbound finds the LAN socket address for a packet from src to the public port, or false
// when the mapping is missing or its filtering refuses src.
func (t *NAT) inbound(src netip.AddrPort, port uint16) (netip.AddrPort, bool) {
	mp := t.byPublic[port]
	if mp == nil {
		return netip.AddrPort{}, false
	}
	if !allows(t.cfg.Filtering, mp.holes, src) {
		return netip.AddrPort{}, false
	}
	return mp.private, true
}

func allows(f Filtering, holes map[netip.AddrPort]bool, src netip.AddrPort) bool {
	switch f {
	case EndpointIndependent:
		return len(holes) > 0
	case AddressDependent:
		for h := range holes {
			if h.Addr() == src.Addr() {
				return true
			}
		}
		return false
	default:
		return holes[src]
	}
}

// Machine is a host with one address and any number of sockets.
type Machine struct {
	n    *Network
	name string
	ip   netip.Addr
	nat  *NAT // nil on the internet

	// Guarded by n.mu.
	conns    map[uint16]*Conn
	nextPort uint16
	firewall Filtering // 0: none
}

func newMachine(n *Network, name string, ip netip.Addr, nat *NAT) *Machine {
	m := &Machine{n: n, name: name, ip: ip, nat: nat, conns: make(map[uint16]*Conn), nextPort: 32768}
	n.all = append(n.all, m)
	return m
}

// Name is the machine's name.
func (m *Machine) Name() string { return m.name }

// IP is the machine's address (private for a machine behind a NAT).
func (m *Machine) IP() netip.Addr { return m.ip }

// SetFirewall puts a stateful firewall in front of the machine: an inbound packet passes only
// if the socket it is for has sent to its source (AddressAndPortDependent), to its source IP
// (AddressDependent) or to anyone (EndpointIndependent). 0 removes the firewall.
func (m *Machine) SetFirewall(f Filtering) {
	m.n.mu.Lock()
	m.firewall = f
	m.n.mu.Unlock()
}

// ListenPacket opens a UDP socket on port (0 picks a free one from 32768 up).
func (m *Machine) ListenPacket(port uint16) (*Conn, error) {
	m.n.mu.Lock()
	defer m.n.mu.Unlock()
	if m.n.closed {
		return nil, net.ErrClosed
	}
	if port == 0 {
		for m.conns[m.nextPort] != nil {
			m.nextPort++
		}
		port = m.nextPort
		m.nextPort++
	}
	if m.conns[port] != nil {
		return nil, fmt.Errorf("natlab: %s: port %d in use", m.name, port)
	}
	c := &Conn{
		m:      m,
		addr:   netip.AddrPortFrom(m.ip, port),
		in:     make(chan datagram, m.n.queueLen),
		closed: make(chan struct{}),
		sentTo: make(map[netip.AddrPort]bool),
	}
	m.conns[port] = c
	return c, nil
}

type datagram struct {
	from netip.AddrPort
	data []byte
}

// Conn is a UDP socket on a machine. It implements net.PacketConn.
type Conn struct {
	m      *Machine
	addr   netip.AddrPort
	in     chan datagram
	closed chan struct{}
	once   sync.Once

	rdl readq.Deadline

	// Guarded by m.n.mu.
	sentTo   map[netip.AddrPort]bool // for the machine's firewall
	isClosed bool
}

// Addr is the socket's address (private behind a NAT).
func (c *Conn) Addr() netip.AddrPort { return c.addr }

// LocalAddr implements net.PacketConn.
func (c *Conn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addr) }

// WriteTo routes p to addr (a *net.UDPAddr). It never blocks; undeliverable datagrams are
// dropped silently, as UDP does.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: errors.New("natlab: not a UDP address")}
	}
	n := c.m.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if c.isClosed {
		return 0, &net.OpError{Op: "write", Net: "udp", Addr: addr, Err: net.ErrClosed}
	}
	n.route(c, unmap(ua.AddrPort()), p)
	return len(p), nil
}

// route delivers one datagram from c to dst. n.mu is held.
func (n *Network) route(c *Conn, dst netip.AddrPort, p []byte) {
	n.stats.Sent++
	m := c.m
	src := c.addr
	if m.nat != nil {
		if peer := m.nat.lan[dst.Addr()]; peer != nil { // same LAN: no NAT
			n.deliverTo(peer, Packet{Src: src, Dst: dst, Data: p}, false)
			return
		}
		if m.nat.down {
			n.stats.Blocked++
			return
		}
		if dst.Addr() == m.nat.ip {
			n.stats.Blocked++ // no hairpinning
			return
		}
		mp := m.nat.outbound(src, dst)
		if mp == nil {
			n.stats.Blocked++
			return
		}
		src = mp.public
	} else {
		c.sentTo[dst] = true
	}
	pkt := Packet{Src: src, Dst: dst, Data: p}
	if n.loss > 0 && n.rnd.Float64() < n.loss {
		n.stats.Lost++
		return
	}
	if n.drop != nil && n.drop(pkt) {
		n.stats.Filtered++
		return
	}
	switch h := n.public[dst.Addr()].(type) {
	case *Machine:
		n.deliverTo(h, pkt, true)
	case *NAT:
		if h.down {
			n.stats.Blocked++
			return
		}
		private, ok := h.inbound(src, dst.Port())
		if !ok {
			n.stats.Blocked++
			return
		}
		n.deliverTo(h.lan[private.Addr()], Packet{Src: src, Dst: private, Data: p}, false)
	default:
		n.stats.NoRoute++
	}
}

// deliverTo queues pkt on the machine's socket at pkt.Dst's port, through its firewall when
// the packet comes from the internet.
func (n *Network) deliverTo(m *Machine, pkt Packet, fromInternet bool) {
	if m == nil {
		n.stats.NoRoute++
		return
	}
	c := m.conns[pkt.Dst.Port()]
	if c == nil {
		n.stats.NoRoute++
		return
	}
	if fromInternet && m.firewall != 0 && !allows(m.firewall, c.sentTo, pkt.Src) {
		n.stats.Blocked++
		return
	}
	select {
	case c.in <- datagram{from: pkt.Src, data: append([]byte(nil), pkt.Data...)}:
		n.stats.Delivered++
	default:
		n.stats.QueueFull++
	}
}

// ReadFrom implements net.PacketConn.
func (c *Conn) ReadFrom(p []byte) (int, net.Addr, error) {
	d, err := readq.Recv(&c.rdl, c.in, c.closed)
	if err != nil {
		return 0, nil, &net.OpError{Op: "read", Net: "udp", Addr: c.LocalAddr(), Err: err}
	}
	return copy(p, d.data), net.UDPAddrFromAddrPort(d.from), nil
}

// Close unbinds the socket and ends pending and future reads. Idempotent.
func (c *Conn) Close() error {
	n := c.m.n
	n.mu.Lock()
	if !c.isClosed {
		c.isClosed = true
		if c.m.conns[c.addr.Port()] == c {
			delete(c.m.conns, c.addr.Port())
		}
	}
	n.mu.Unlock()
	c.once.Do(func() { close(c.closed) })
	return nil
}

// SetDeadline sets the read deadline (writes never block).
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline implements net.PacketConn.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl.Set(t)
	return nil
}

// SetWriteDeadline is a no-op: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
