package mdns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/discovery"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Multicast groups and port of mDNS.
var (
	GroupV4 = netip.MustParseAddrPort("224.0.0.251:5353")
	GroupV6 = netip.MustParseAddrPort("[ff02::fb]:5353")
)

// Conn is one socket and the group address announcements and queries are sent to.
type Conn struct {
	PacketConn net.PacketConn
	Group      net.Addr
}

// Config configures a Service.
type Config struct {
	// Self is our node id: our announcements carry it and messages about it are ignored.
	Self key.PublicKey
	// Conns are the sockets to use. Empty means: open the standard mDNS sockets
	// (see the package doc). The Service closes them on Close.
	Conns []Conn
	// Interval between unsolicited announcements and queries. Default 1 s (jittered ±20%).
	Interval time.Duration
	// Expiry forgets a peer not heard from for this long. Default 5 s.
	Expiry time.Duration
	// OnDiscovered, if set, is called (on the service's goroutine; do not block) whenever a
	// peer's address set is new or changed.
	OnDiscovered func(discovery.NodeAddr)
	// Logger; nil discards.
	Logger *slog.Logger
	// Clock drives announcements, queries and expiry. nil: the wall clock.
	Clock clock.Clock
}

type peer struct {
	addrs    []netip.AddrPort
	lastSeen time.Time
}

// Service publishes our addresses and collects the swarm's by mDNS. Create with New, stop
// with Close.
type Service struct {
	// Static after New.
	cfg    Config
	log    *slog.Logger
	selfID string
	conns  []Conn
	query  []byte
	done   chan struct{}
	wg     sync.WaitGroup
	kick   chan struct{} // asks the ticker loop to query now

	// mu guards the fields below.
	mu       sync.Mutex
	closed   bool
	announce []byte // our response message, nil until published
	peers    map[key.PublicKey]*peer
	changed  chan struct{} // closed and replaced whenever peers changes
}

var _ interface {
	discovery.Discovery
	discovery.Watcher
} = (*Service)(nil)

// New starts a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Self.IsZero() {
		return nil, errors.New("mdns: Config.Self is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = 5 * time.Second
	}
	cfg.Clock = clock.Or(cfg.Clock)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conns := cfg.Conns
	if len(conns) == 0 {
		var err error
		if conns, err = openStandardConns(); err != nil {
			return nil, err
		}
	}
	s := &Service{
		cfg:     cfg,
		log:     log,
		selfID:  cfg.Self.String(),
		conns:   conns,
		query:   BuildQuery(),
		done:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		peers:   make(map[key.PublicKey]*peer),
		changed: make(chan struct{}),
	}
	for _, c := range conns {
		s.wg.Go(func() { s.readLoop(c) })
	}
	s.wg.Go(s.tickLoop)
	return s, nil
}

// openStandardConns binds the mDNS sockets the way swarm-discovery does.
func openStandardConns() ([]Conn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	var conns []Conn
	var errs []error
	for _, g := range []struct {
		name, network, addr string
		group               netip.AddrPort
		join                func(net.PacketConn) error
	}{
		{"ipv4", "udp4", "0.0.0.0:5353", GroupV4, func(pc net.PacketConn) error {
			p := ipv4.NewPacketConn(pc)
			return errors.Join(p.JoinGroup(nil, &net.UDPAddr{IP: GroupV4.Addr().AsSlice()}),
				p.SetMulticastLoopback(true), p.SetMulticastTTL(16))
		}},
		{"ipv6", "udp6", "[::]:5353", GroupV6, func(pc net.PacketConn) error {
			p := ipv6.NewPacketConn(pc)
			return errors.Join(p.JoinGroup(nil, &net.UDPAddr{IP: GroupV6.Addr().AsSlice()}),
				p.SetMulticastLoopback(true))
		}},
	} {
		pc, err := lc.ListenPacket(context.Background(), g.network, g.addr)
		if err == nil {
			if err = g.join(pc); err != nil {
				_ = pc.Close()
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.name, err))
			continue
		}
		conns = append(conns, Conn{PacketConn: pc, Group: net.UDPAddrFromAddrPort(g.group)})
	}
	if len(conns) == 0 {
		return nil, fmt.Errorf("mdns: cannot bind ipv4 or ipv6 multicast socket: %w", errors.Join(errs...))
	}
	return conns, nil
}

// Close stops the service and closes its sockets. Idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	var errs []error
	for _, c := range s.conns {
		errs = append(errs, c.PacketConn.Close())
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// Publish implements discovery.Publisher: it announces addr's direct addresses (iroh's
// local discovery carries no relay URL) right away and then every Interval. An addr without
// direct addresses withdraws the announcement.
func (s *Service) Publish(addr discovery.NodeAddr) {
	var msg []byte
	if len(addr.Direct) > 0 {
		var err error
		if msg, err = BuildResponse(s.selfID, addr.Direct); err != nil {
			s.log.Warn("mdns: cannot build announcement", "err", err)
			return
		}
	}
	s.mu.Lock()
	s.announce = msg
	s.mu.Unlock()
	if msg != nil {
		s.send(msg)
	}
}

// Lookup implements discovery.Resolver: it returns the node's addresses as last announced,
// sending a query and waiting for an announcement when the node is not known yet.
func (s *Service) Lookup(ctx context.Context, id key.PublicKey) (discovery.NodeAddr, error) {
	asked := false
	for {
		s.mu.Lock()
		s.expireLocked()
		p, ok := s.peers[id]
		var addr discovery.NodeAddr
		if ok {
			addr = discovery.NodeAddr{ID: id, Direct: slices.Clone(p.addrs)}
		}
		changed, closed := s.changed, s.closed
		s.mu.Unlock()
		if ok {
			return addr, nil
		}
		if closed {
			return discovery.NodeAddr{}, fmt.Errorf("%w: mdns service closed", discovery.ErrNotFound)
		}
		if !asked {
			asked = true
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
		select {
		case <-changed:
		case <-s.done:
		case <-ctx.Done():
			return discovery.NodeAddr{}, fmt.Errorf("%w: %s: %w", discovery.ErrNotFound, id.ShortString(), ctx.Err())
		}
	}
}

// Peers implements discovery.Watcher.
func (s *Service) Peers() []discovery.NodeAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	out := make([]discovery.NodeAddr, 0, len(s.peers))
	for id, p := range s.peers {
		out = append(out, discovery.NodeAddr{ID: id, Direct: slices.Clone(p.addrs)})
	}
	slices.SortFunc(out, func(a, b discovery.NodeAddr) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return out
}

func (s *Service) expireLocked() {
	now := s.cfg.Clock.Now()
	for id, p := range s.peers {
		if now.Sub(p.lastSeen) > s.cfg.Expiry {
			delete(s.peers, id)
		}
	}
}

func (s *Service) send(msg []byte) {
	for _, c := range s.conns {
		if _, err := c.PacketConn.WriteTo(msg, c.Group); err != nil {
			s.log.Debug("mdns: send failed", "group", c.Group, "err", err)
		}
	}
}

func (s *Service) tickLoop() {
	t := s.cfg.Clock.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-s.kick:
			s.send(s.query)
			continue
		case <-t.C():
		}
		s.mu.Lock()
		msg := s.announce
		s.mu.Unlock()
		if msg != nil {
			s.send(msg)
		}
		s.send(s.query)
		jitter := time.Duration(rand.Int64N(int64(s.cfg.Interval)*2/5)) - s.cfg.Interval/5
		t.Reset(s.cfg.Interval + jitter)
	}
}

func (s *Service) readLoop(c Conn) {
	buf := make([]byte, 9000)
	for {
		n, from, err := c.PacketConn.ReadFrom(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.log.Warn("mdns: read failed, stopping this socket", "err", err)
			return
		}
		p, err := ParseMessage(buf[:n])
		if err != nil {
			s.log.Debug("mdns: bad packet", "from", from, "err", err)
			continue
		}
		if p.Query {
			s.mu.Lock()
			msg := s.announce
			s.mu.Unlock()
			if msg != nil {
				if _, err := c.PacketConn.WriteTo(msg, c.Group); err != nil {
					s.log.Debug("mdns: answer failed", "err", err)
				}
			}
			continue
		}
		s.learn(p.Peers)
	}
}

func (s *Service) learn(peers map[string][]netip.AddrPort) {
	var news []discovery.NodeAddr
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	for label, addrs := range peers {
		if label == s.selfID {
			continue
		}
		id, err := key.ParsePublicKey(label)
		if err != nil {
			s.log.Debug("mdns: ignoring peer with bad id", "id", label, "err", err)
			continue
		}
		slices.SortFunc(addrs, func(a, b netip.AddrPort) int { return a.Compare(b) })
		p := s.peers[id]
		if p == nil {
			p = &peer{}
			s.peers[id] = p
		}
		if !slices.Equal(p.addrs, addrs) {
			p.addrs = addrs
			news = append(news, discovery.NodeAddr{ID: id, Direct: slices.Clone(addrs)})
		}
		p.lastSeen = now
	}
	if len(news) > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.mu.Unlock()
	if s.cfg.OnDiscovered != nil {
		for _, n := range news {
			s.cfg.OnDiscovered(n)
		}
	}
}
