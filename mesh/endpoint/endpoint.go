package endpoint

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/discovery"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshtls"
)

// iroh 0.28.1 / quinn 0.11 transport settings; see the package doc.
const (
	IdleTimeout      = 30 * time.Second
	DialKeepAlive    = 1 * time.Second
	MaxIncomingBidi  = 100
	MaxIncomingUni   = 100
	HandshakeTimeout = 10 * time.Second
	// DialStagger is how long Dial waits for an address before also
	// trying the next one (RFC 8305's recommended delay).
	DialStagger = 250 * time.Millisecond
)

// Errors.
var (
	ErrClosed      = errors.New("endpoint: closed")
	ErrNoAddresses = errors.New("endpoint: no usable direct address for node")
)

// Handler serves one accepted connection for a registered ALPN. It owns c
// and should close it when done. ctx is cancelled when the endpoint closes.
type Handler func(ctx context.Context, c *Conn)

// Options configure New. The zero value is usable.
type Options struct {
	// SecretKey is the node identity. Zero: a fresh key is generated.
	SecretKey key.SecretKey
	// BindAddr is the UDP address to bind. Default "0.0.0.0:0". An IPv6
	// unspecified address ("[::]:0") binds a dual-stack socket.
	BindAddr string
	// Logger receives debug and warning logs. Nil: discard.
	Logger *slog.Logger
	// Clock times the dial stagger and the republish check, and drives the
	// magicsock the endpoint builds (HomeRelay, STUNServers, DisableDirect).
	// Nil: the wall clock. (QUIC's own timers are quic-go's and always use the
	// wall clock.)
	Clock clock.Clock
	// Conn, if set, is used instead of binding BindAddr. The endpoint
	// takes ownership and closes it.
	Conn *net.UDPConn
	// Paths, if set, carries every packet instead of a UDP socket of our
	// own: a magicsock-style PacketConn that routes by node (relay or
	// direct, chosen per packet) behind stable mapped addresses. Conn and
	// BindAddr are then ignored. The endpoint takes ownership and closes it.
	Paths PathConn
	// HomeRelay, if set (and Paths is nil), makes the endpoint build its
	// own magicsock (package mesh/magicsock) on Conn or BindAddr: it stays
	// connected to this relay URL, advertises it in Addr, and reaches peers
	// over the relay until a direct path is found. Never a public relay
	// by default: "" means none.
	HomeRelay string
	// STUNServers (host:port), if set, also make the endpoint build its own
	// magicsock, which asks them for its reflexive address (advertised in
	// Addr and sent to peers in disco CallMeMaybe).
	STUNServers []string
	// DisableGRO keeps UDP generic receive offload off on the endpoint's
	// own socket (Linux; elsewhere it is never on). For comparison and as
	// an escape hatch; the binaries set it from MESH_DISABLE_GRO=1.
	DisableGRO bool
	// RxGate turns on the receive gate on the endpoint's own socket (see the package doc):
	// backpressure and an ECN mark that keep quic-go from dropping datagrams when a
	// connection's queue is full, which a Rust (quinn) sender may take for an MTU black hole.
	// Off by default: with it a Rust sender no longer falls back to 1200-byte packets, but Go
	// to Go with 16 streams was about 10% slower (a quic-go sender loses more to its CE marks
	// than to the drops).
	RxGate bool
	// DisableDirect (with a magicsock the endpoint builds) keeps all
	// traffic on relays. For tests and debugging.
	DisableDirect bool
	// Discovery, if set, is asked for a node's address when Dial has no
	// address for it (neither given nor in the address book). If it also
	// implements discovery.Publisher, the endpoint publishes its own
	// address there at start and whenever Addr changes (checked every
	// RepublishInterval). The endpoint does not close it.
	Discovery discovery.Resolver
	// KeyLog, if set, receives TLS secrets in NSS key log format (like
	// iroh's keylog option with SSLKEYLOGFILE), to decrypt captures.
	// Debugging only.
	KeyLog io.Writer
	// QUIC, if set, replaces the iroh-derived quic-go settings (tests use
	// it for short timeouts). Its KeepAlivePeriod applies to dialed
	// connections only.
	QUIC *quic.Config
	// IdleTimeout, if set, replaces the connection idle timeout (iroh's
	// 30 s, IdleTimeout): the time after which a peer that stopped
	// answering (killed, cut off) counts as gone and its connection and
	// streams fail. Dialed connections send keep-alives every
	// DialKeepAlive, so a live idle peer never reaches it; the smaller of
	// the two sides' values applies. The Kafka binaries set a few seconds
	// so that a dead broker is noticed in time for a quorum failover.
	IdleTimeout time.Duration
}

// PathConn is a packet conn that reaches nodes by id, as iroh's magicsock
// (mesh/magicsock.Conn implements it). quic-go only sees the mapped
// address AddNodeAddr returns for each node.
type PathConn interface {
	net.PacketConn
	// AddNodeAddr records a node's relay URL and direct addresses ("" and
	// nil keep what is known) and returns the node's mapped address.
	AddNodeAddr(id key.PublicKey, relayURL string, direct []netip.AddrPort) *net.UDPAddr
	// DirectAddrs lists the addresses peers can reach us at directly.
	DirectAddrs() []netip.AddrPort
}

// homeRelayer is optionally implemented by a PathConn that has a home relay.
type homeRelayer interface{ HomeRelayURL() string }

// Endpoint is a node on the mesh. Create it with New; Close it when done.
type Endpoint struct {
	// Static after New.
	sk       key.SecretKey
	id       key.PublicKey
	log      *slog.Logger
	clk      clock.Clock
	cert     tls.Certificate
	sock     *sock    // nil when paths is set
	paths    PathConn // nil unless Options.Paths
	dual     bool     // socket is dual-stack
	tr       *quic.Transport
	ln       *quic.Listener
	dialConf *quic.Config
	keyLog   io.Writer          // or nil
	disc     discovery.Resolver // or nil
	ctx      context.Context    // cancelled by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup // accept loop, handlers, per-conn cleanup

	discoDropped atomic.Int64 // disco packets taken off the socket

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex // guards all following fields
	closed   bool
	handlers map[string]Handler
	alpns    []string // registration order, offered in TLS
	book     map[key.PublicKey]NodeAddr
	pool     map[poolKey]*Conn // live connections we dialed
	dialing  map[poolKey]*dialCall
	conns    map[*Conn]struct{}         // every live connection
	byAddr   map[netip.AddrPort][]*Conn // live connections by remote address (for the receive gate)
	connGen  uint64                     // changes whenever byAddr does
}

type poolKey struct {
	id   key.PublicKey
	alpn string
}

type dialCall struct {
	done chan struct{}
	c    *Conn
	err  error
}

// New binds the socket and starts accepting connections.
func New(opts Options) (*Endpoint, error) {
	sk := opts.SecretKey
	if sk.IsZero() {
		sk = key.GenerateSecretKey()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.wantsPaths() {
		paths, err := newPaths(&opts, sk, log)
		if err != nil {
			return nil, err
		}
		opts.Paths = paths
	}
	uc, dual := opts.Conn, false
	if opts.Paths != nil {
		uc = nil
	} else if uc == nil {
		var err error
		if uc, dual, err = bindUDP(opts.BindAddr); err != nil {
			return nil, err
		}
	} else if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil && la.IP.IsUnspecified() {
		dual = true
	}
	cert, err := meshtls.GenerateCertificate(sk)
	if err != nil {
		if uc != nil {
			uc.Close()
		} else {
			opts.Paths.Close()
		}
		return nil, err
	}
	srvConf, dialConf := quicConfigs(opts.QUIC, opts.IdleTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	e := &Endpoint{
		sk:       sk,
		id:       sk.Public(),
		log:      log,
		clk:      clock.Or(opts.Clock),
		cert:     cert,
		paths:    opts.Paths,
		dual:     dual,
		dialConf: dialConf,
		keyLog:   opts.KeyLog,
		disc:     opts.Discovery,
		ctx:      ctx,
		cancel:   cancel,
		handlers: map[string]Handler{},
		book:     map[key.PublicKey]NodeAddr{},
		pool:     map[poolKey]*Conn{},
		dialing:  map[poolKey]*dialCall{},
		conns:    map[*Conn]struct{}{},
		byAddr:   map[netip.AddrPort][]*Conn{},
	}
	// The stateless-reset key is derived from the node key, so a node that restarts with
	// the same identity can reset connections peers still hold from its previous run:
	// they learn at once that it is gone instead of waiting out the idle timeout. Disco
	// packets never reach quic-go (filtered here or demultiplexed by the PathConn), so
	// they are not answered with resets.
	resetKey := statelessResetKey(sk)
	if e.paths != nil {
		e.tr = &quic.Transport{Conn: e.paths, StatelessResetKey: resetKey}
	} else {
		e.sock = newSock(uc, !opts.DisableGRO)
		if opts.RxGate {
			// Like quic-go's own timers, the gate's pauses run on the wall clock.
			e.sock.setGate(clock.Real(), e.rxProgress)
		}
		// Without a PathConn nobody answers disco: drop it here, quic-go
		// would take it for a short-header packet of an unknown connection.
		e.sock.setFilter(func(p []byte, from netip.AddrPort) bool {
			if !isDisco(p) {
				return false
			}
			e.discoDropped.Add(1)
			return true
		})
		e.tr = &quic.Transport{Conn: e.sock, StatelessResetKey: resetKey}
	}
	srvTLS := meshtls.ServerConfig(cert, e.currentALPNs)
	srvTLS.KeyLogWriter = opts.KeyLog
	e.ln, err = e.tr.Listen(srvTLS, srvConf)
	if err != nil {
		cancel()
		e.tr.Close()
		e.packetConn().Close()
		return nil, fmt.Errorf("endpoint: listen: %w", err)
	}
	e.wg.Go(e.acceptLoop)
	if p, ok := opts.Discovery.(discovery.Publisher); ok {
		e.wg.Go(func() { e.publishLoop(p) })
	}
	log.Debug("endpoint up", "node", e.id.ShortString(), "addr", e.packetConn().LocalAddr().String())
	return e, nil
}

// quicConfigs returns the listener and dialer quic-go configurations.
// bindUDP binds addr (default 0.0.0.0:0): IPv4 addresses get a udp4
// socket, the IPv6 unspecified address a dual-stack one.
func bindUDP(addr string) (*net.UDPConn, bool, error) {
	if addr == "" {
		addr = "0.0.0.0:0"
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("endpoint: bind address %q: %w", addr, err)
	}
	network, dual := "udp4", false
	if ua.IP != nil && ua.IP.To4() == nil {
		network = "udp6"
		if ua.IP.IsUnspecified() {
			network, dual = "udp", true
		}
	}
	uc, err := net.ListenUDP(network, ua)
	if err != nil {
		return nil, false, fmt.Errorf("endpoint: bind %s: %w", addr, err)
	}
	return uc, dual, nil
}

func quicConfigs(override *quic.Config, idle time.Duration) (srv, dial *quic.Config) {
	base := &quic.Config{
		HandshakeIdleTimeout:           HandshakeTimeout,
		MaxIdleTimeout:                 IdleTimeout,
		MaxIncomingStreams:             MaxIncomingBidi,
		MaxIncomingUniStreams:          MaxIncomingUni,
		MaxStreamReceiveWindow:         16 << 20,
		MaxConnectionReceiveWindow:     64 << 20,
		InitialStreamReceiveWindow:     8 << 20,
		InitialConnectionReceiveWindow: 16 << 20,
		KeepAlivePeriod:                DialKeepAlive,
		EnableDatagrams:                true, // quinn accepts datagrams by default; iroh apps use them
	}
	if override != nil {
		base = override.Clone()
	}
	if idle > 0 {
		base.MaxIdleTimeout = idle
	}
	// Stream credit is given back by Conn (AcceptStream, AcceptUniStream), or by a protocol
	// that holds it to save packets (AcceptStreamHeld); streams a handler never accepts keep
	// theirs, as without the option.
	base.RequireStreamCreditRelease = true
	dial = base.Clone()
	srv = base.Clone()
	srv.KeepAlivePeriod = 0 // iroh sets keep-alive only when dialing
	return srv, dial
}

// NodeID returns this node's id.
func (e *Endpoint) NodeID() key.PublicKey { return e.id }

// SecretKey returns this node's secret key.
func (e *Endpoint) SecretKey() key.SecretKey { return e.sk }

// packetConn is what the transport runs on.
func (e *Endpoint) packetConn() net.PacketConn {
	if e.paths != nil {
		return e.paths
	}
	return e.sock
}

// LocalAddr returns the bound socket address (with a PathConn, its own
// mapped placeholder address).
func (e *Endpoint) LocalAddr() netip.AddrPort { return addrPortOf(e.packetConn().LocalAddr()) }

// Addr returns this node's id and direct addresses. A socket bound to the
// unspecified address is listed as 127.0.0.1 (or ::1) and every unicast
// interface address, with the bound port.
func (e *Endpoint) Addr() NodeAddr {
	if e.paths != nil {
		a := NodeAddr{ID: e.id, Direct: e.paths.DirectAddrs()}
		if hr, ok := e.paths.(homeRelayer); ok {
			a.RelayURL = hr.HomeRelayURL()
		}
		return a
	}
	local := e.LocalAddr()
	var ifaddrs []net.Addr
	if local.Addr().IsUnspecified() {
		ifaddrs, _ = net.InterfaceAddrs()
	}
	return NodeAddr{ID: e.id, Direct: expandUnspecified(local, e.dual, ifaddrs)}
}

// Handle registers h for connections negotiating alpn. Registering an
// ALPN again replaces its handler. New handshakes offer the ALPN at once.
func (e *Endpoint) Handle(alpn string, h Handler) {
	if alpn == "" || h == nil {
		panic("endpoint: Handle needs an ALPN and a handler")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.handlers[alpn]; !ok {
		e.alpns = append(e.alpns, alpn)
	}
	e.handlers[alpn] = h
}

func (e *Endpoint) currentALPNs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.alpns)
}

// AddNodeAddr records a's addresses in the address book, merged with what
// is known already.
func (e *Endpoint) AddNodeAddr(a NodeAddr) {
	if a.ID.IsZero() {
		return
	}
	if e.paths != nil {
		e.paths.AddNodeAddr(a.ID, a.RelayURL, a.Direct)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	old, ok := e.book[a.ID]
	if !ok {
		old = NodeAddr{ID: a.ID}
	}
	e.book[a.ID] = old.merge(a)
}

// NodeAddrOf returns what the address book knows about id.
func (e *Endpoint) NodeAddrOf(id key.PublicKey) (NodeAddr, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, ok := e.book[id]
	if ok {
		a.Direct = slices.Clone(a.Direct)
	}
	return a, ok
}

func (e *Endpoint) acceptLoop() {
	for {
		qc, err := e.ln.Accept(e.ctx)
		if err != nil {
			if e.ctx.Err() == nil {
				e.log.Warn("accept loop stopped", "err", err)
			}
			return
		}
		e.accepted(qc)
	}
}

// accepted routes a new incoming connection to its handler.
func (e *Endpoint) accepted(qc *quic.Conn) {
	cs := qc.ConnectionState().TLS
	remote, err := meshtls.PeerID(cs)
	if err != nil { // cannot happen: the TLS verifier already checked
		qc.CloseWithError(1, "no peer id")
		return
	}
	alpn := cs.NegotiatedProtocol
	e.mu.Lock()
	h := e.handlers[alpn]
	e.mu.Unlock()
	if h == nil {
		qc.CloseWithError(1, "no handler for ALPN")
		return
	}
	c := &Conn{qc: qc, remote: remote, alpn: alpn}
	if !e.track(c, nil) {
		return
	}
	e.log.Debug("accepted", "peer", remote.ShortString(), "alpn", alpn, "from", qc.RemoteAddr().String())
	e.wg.Go(func() { h(e.ctx, c) })
}

// track registers a live connection (and, if k is non-nil, as the pooled
// dial for k), arranging its removal when it closes. It returns false and
// closes c if the endpoint is closed.
func (e *Endpoint) track(c *Conn, k *poolKey) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		c.qc.CloseWithError(0, "endpoint closed")
		return false
	}
	e.conns[c] = struct{}{}
	ap := addrPortOf(c.qc.RemoteAddr())
	e.byAddr[ap] = append(e.byAddr[ap], c)
	e.connGen++
	if k != nil {
		e.pool[*k] = c
	}
	e.wg.Add(1)
	context.AfterFunc(c.qc.Context(), func() {
		defer e.wg.Done()
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.conns, c)
		if cs := slices.DeleteFunc(e.byAddr[ap], func(x *Conn) bool { return x == c }); len(cs) > 0 {
			e.byAddr[ap] = cs
		} else {
			delete(e.byAddr, ap)
		}
		e.connGen++
		if k != nil && e.pool[*k] == c {
			delete(e.pool, *k)
		}
	})
	return true
}

// Dial returns a connection to node a.ID negotiating alpn. a's addresses
// are added to the address book first; a.Direct may be empty if the book
// knows the node or Options.Discovery finds it (asked only when neither a
// nor the book has an address). A live connection this endpoint dialed earlier for the
// same (node, ALPN) is returned instead of dialing again.
func (e *Endpoint) Dial(ctx context.Context, a NodeAddr, alpn string) (*Conn, error) {
	if a.ID == e.id {
		return nil, errors.New("endpoint: cannot dial own node id")
	}
	if alpn == "" {
		return nil, errors.New("endpoint: dial needs an ALPN")
	}
	e.AddNodeAddr(a)
	k := poolKey{a.ID, alpn}
	looked := false // asked discovery already
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, ErrClosed
		}
		if c := e.pool[k]; c != nil && c.qc.Context().Err() == nil {
			e.mu.Unlock()
			return c, nil
		}
		if call := e.dialing[k]; call != nil {
			e.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if call.err == nil {
				return call.c, nil
			}
			if errors.Is(call.err, context.Canceled) || errors.Is(call.err, context.DeadlineExceeded) {
				if ctx.Err() == nil {
					continue // the other caller gave up; try ourselves
				}
			}
			return nil, call.err
		}
		book := e.book[a.ID]
		if e.disc != nil && !looked && len(book.Direct) == 0 && book.RelayURL == "" {
			// Nothing known: ask discovery, then look at the pool again.
			looked = true
			e.mu.Unlock()
			if _, err := e.resolve(ctx, a.ID); err != nil && (e.homeRelay() == "" || ctx.Err() != nil || errors.Is(err, ErrClosed)) {
				return nil, err
			} // else: not found, but our home relay may still reach it
			continue
		}
		call := &dialCall{done: make(chan struct{})}
		e.dialing[k] = call
		e.mu.Unlock()

		c, err := e.dial(ctx, book, alpn)
		if err == nil && !e.track(c, &k) {
			err = ErrClosed
			c = nil
		}
		e.mu.Lock()
		delete(e.dialing, k)
		e.mu.Unlock()
		call.c, call.err = c, err
		close(call.done)
		return c, err
	}
}

// dial makes a new connection, racing every usable direct address.
func (e *Endpoint) dial(ctx context.Context, a NodeAddr, alpn string) (*Conn, error) {
	var targets []netip.AddrPort
	switch {
	case e.paths != nil:
		// The PathConn picks relay or direct per packet: one mapped address.
		// A node with no address at all is tried through our home relay,
		// where the PathConn sends packets for nodes without a relay URL.
		if len(a.Direct) > 0 || a.RelayURL != "" || e.homeRelay() != "" {
			targets = append(targets, addrPortOf(e.paths.AddNodeAddr(a.ID, a.RelayURL, a.Direct)))
		}
	default:
		for _, ap := range a.Direct {
			if e.canReach(ap.Addr()) {
				targets = append(targets, ap)
			}
		}
	}
	if len(targets) == 0 {
		if e.paths != nil {
			return nil, fmt.Errorf("%w %s (no relay URL either, and no home relay)", ErrNoAddresses, a.ID.ShortString())
		}
		if a.RelayURL != "" {
			return nil, fmt.Errorf("%w %s (relay %s known, but this endpoint has no relay path: set Options.HomeRelay or STUNServers)", ErrNoAddresses, a.ID.ShortString(), a.RelayURL)
		}
		return nil, fmt.Errorf("%w %s", ErrNoAddresses, a.ID.ShortString())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel) // Close aborts dials
	defer stop()

	tlsConf := meshtls.ClientConfig(e.cert, a.ID, alpn)
	tlsConf.KeyLogWriter = e.keyLog
	type result struct {
		qc  *quic.Conn
		err error
	}
	// Happy-eyeballs style: start with the first address and add the next
	// one when an attempt fails or DialStagger passes without an answer,
	// so a peer reachable on several addresses normally gets one
	// connection, not one per address.
	results := make(chan result, len(targets))
	started, pending := 0, 0
	startNext := func() {
		ap := targets[started]
		started++
		pending++
		go func() {
			qc, err := e.tr.Dial(ctx, net.UDPAddrFromAddrPort(ap), tlsConf, e.dialConf)
			if err != nil {
				err = fmt.Errorf("%s: %w", ap, err)
			}
			results <- result{qc, err}
		}()
	}
	startNext()
	stagger := e.clk.NewTimer(DialStagger)
	defer stagger.Stop()
	var (
		winner *quic.Conn
		errs   []error
	)
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			switch {
			case r.err != nil:
				errs = append(errs, r.err)
				if winner == nil && started < len(targets) && ctx.Err() == nil {
					startNext()
					stagger.Reset(DialStagger)
				}
			case winner == nil:
				winner = r.qc
				cancel() // stop the other attempts
			default:
				r.qc.CloseWithError(0, "duplicate")
			}
		case <-stagger.C():
			if winner == nil && started < len(targets) && ctx.Err() == nil {
				startNext()
				stagger.Reset(DialStagger)
			}
		}
	}
	if winner == nil {
		if e.ctx.Err() != nil {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("endpoint: dial %s: %w", a.ID.ShortString(), errors.Join(errs...))
	}
	e.log.Debug("dialed", "peer", a.ID.ShortString(), "alpn", alpn, "addr", winner.RemoteAddr().String())
	return &Conn{qc: winner, remote: a.ID, alpn: alpn}, nil
}

func (e *Endpoint) canReach(ip netip.Addr) bool {
	local := e.LocalAddr().Addr()
	if ip.Is4() || ip.Is4In6() {
		return local.Is4() || e.dual
	}
	return local.Is6()
}

// Close closes every connection, stops accepting, closes the socket and
// waits for every goroutine the endpoint started, including handlers. It
// is safe to call more than once.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		conns := make([]*Conn, 0, len(e.conns))
		for c := range e.conns {
			conns = append(conns, c)
		}
		e.mu.Unlock()
		e.cancel()
		for _, c := range conns {
			c.qc.CloseWithError(0, "endpoint closed")
		}
		e.ln.Close()
		e.closeErr = e.tr.Close()
		if err := e.packetConn().Close(); err != nil && e.closeErr == nil && !errors.Is(err, net.ErrClosed) {
			e.closeErr = err
		}
		e.wg.Wait()
	})
	return e.closeErr
}

// Conn is a QUIC connection to an authenticated peer.
type Conn struct {
	qc     *quic.Conn
	remote key.PublicKey
	alpn   string
}

// RemoteID is the node id the peer proved in the handshake.
func (c *Conn) RemoteID() key.PublicKey { return c.remote }

// ALPN is the negotiated application protocol.
func (c *Conn) ALPN() string { return c.alpn }

// QUIC returns the underlying quic-go connection.
func (c *Conn) QUIC() *quic.Conn { return c.qc }

// RemoteAddr is the peer's current UDP address.
func (c *Conn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

// Context is cancelled when the connection closes.
func (c *Conn) Context() context.Context { return c.qc.Context() }

// OpenStream opens a bidirectional stream, waiting for stream credit.
func (c *Conn) OpenStream(ctx context.Context) (*quic.Stream, error) { return c.qc.OpenStreamSync(ctx) }

// AcceptStream waits for the peer to open a bidirectional stream. The stream's credit goes
// back to the peer as soon as the stream is done (both directions finished or reset), as
// quic-go does by default: the peer may then open another in its place.
func (c *Conn) AcceptStream(ctx context.Context) (*quic.Stream, error) {
	s, err := c.qc.AcceptStream(ctx)
	if err == nil {
		s.ReleaseStreamCredit()
	}
	return s, err
}

// AcceptStreamHeld is AcceptStream for a protocol that gives the stream's credit back itself,
// with s.ReleaseStreamCredit (exactly once per stream; until then the stream counts against
// the MaxIncomingBidi streams the peer may have open). quic-go sends MAX_STREAMS the moment a
// stream is done and its credit released; a request/response protocol with one stream per
// call releases a finished call's credit just before it writes the next answer, so that the
// MAX_STREAMS frame rides in the answer's packet instead of a packet of its own (which would
// also make the peer ACK at once: two ack-eliciting packets). A holder must release within
// a bound it keeps well below MaxIncomingBidi, or the peer runs out of streams.
func (c *Conn) AcceptStreamHeld(ctx context.Context) (*quic.Stream, error) {
	return c.qc.AcceptStream(ctx)
}

// OpenUniStream opens a unidirectional stream, waiting for stream credit.
func (c *Conn) OpenUniStream(ctx context.Context) (*quic.SendStream, error) {
	return c.qc.OpenUniStreamSync(ctx)
}

// AcceptUniStream waits for the peer to open a unidirectional stream.
func (c *Conn) AcceptUniStream(ctx context.Context) (*quic.ReceiveStream, error) {
	s, err := c.qc.AcceptUniStream(ctx)
	if err == nil {
		s.ReleaseStreamCredit()
	}
	return s, err
}

// ServeStreams accepts the peer's bidirectional streams (AcceptStream) until ctx ends or the
// connection closes, runs handle on each in a goroutine of its own, and returns once every
// handle has returned.
func (c *Conn) ServeStreams(ctx context.Context, handle func(*quic.Stream)) {
	serveEach(ctx, c.AcceptStream, handle)
}

// ServeUniStreams is ServeStreams for the peer's unidirectional streams (AcceptUniStream).
func (c *Conn) ServeUniStreams(ctx context.Context, handle func(*quic.ReceiveStream)) {
	serveEach(ctx, c.AcceptUniStream, handle)
}

// serveEach runs handle in a goroutine of its own on each stream accept returns, until it
// fails, and waits for the handlers.
func serveEach[S any](ctx context.Context, accept func(context.Context) (S, error), handle func(S)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s, err := accept(ctx)
		if err != nil {
			return
		}
		wg.Go(func() { handle(s) })
	}
}

// Close closes the connection with application error code 0.
func (c *Conn) Close() error { return c.qc.CloseWithError(0, "") }

// CloseWithError closes the connection with an application error code and reason.
func (c *Conn) CloseWithError(code uint64, reason string) error {
	return c.qc.CloseWithError(quic.ApplicationErrorCode(code), reason)
}

// statelessResetKey derives the QUIC stateless-reset key from the node's secret key
// (HKDF-SHA256, RFC 9000 §10.3.2's static-key construction), stable across restarts.
func statelessResetKey(sk key.SecretKey) *quic.StatelessResetKey {
	b, err := hkdf.Key(sha256.New, sk.Bytes(), nil, "meshkafka/quic-stateless-reset/v1", 32)
	if err != nil {
		panic(err) // 32 bytes is always within HKDF-SHA256's output limit
	}
	var k quic.StatelessResetKey
	copy(k[:], b)
	return &k
}

// rxProgress reports, for the socket's receive gate, the bytes the live connections with
// remote address from have taken off quic-go's queue, and the generation of the connection
// set.
func (e *Endpoint) rxProgress(from netip.AddrPort) (processed, gen uint64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	cs := e.byAddr[from]
	for _, c := range cs {
		processed += c.qc.ConnectionStats().BytesReceived
	}
	return processed, e.connGen, len(cs) > 0
}

// SocketStats counts the datagrams that passed through the endpoint's own
// UDP socket since New (all zero when it runs on a PathConn). Small
// datagrams (at most 128 bytes) are, during a bulk transfer, almost all
// ACK-only packets, so RxSmall on the sending side and TxSmall on the
// receiving side count the receiver's ACKs.
type SocketStats struct {
	RxPackets, RxBytes, RxSmall int64
	RxReads, RxBuffers          int64         // receive syscalls; datagrams the kernel returned (with GRO: coalesced runs)
	TxPackets, TxBytes, TxSmall int64         // TxPackets counts GSO segments
	TxWrites                    int64         // send syscalls
	RxHeld                      int64         // times the receive gate held a batch (see the package doc)
	RxGateStalls                int64         // holds the gate ended because the connections made no progress
	RxHeldTime                  time.Duration // the time the gate's holds lasted, in all
	RxMarked                    int64         // datagrams the gate marked ECN Congestion Experienced
}

// SocketStats returns the socket counters.
func (e *Endpoint) SocketStats() SocketStats {
	if e.sock == nil {
		return SocketStats{}
	}
	c := &e.sock.stats
	return SocketStats{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(), RxSmall: c.rxSmall.Load(),
		RxReads: c.rxReads.Load(), RxBuffers: c.rxBufs.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(), TxSmall: c.txSmall.Load(),
		TxWrites: c.txWrites.Load(), RxHeld: c.rxHeld.Load(), RxGateStalls: c.rxStalls.Load(),
		RxHeldTime: time.Duration(c.rxHeldNanos.Load()), RxMarked: c.rxMarked.Load(),
	}
}
