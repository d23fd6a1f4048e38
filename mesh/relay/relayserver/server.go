package relayserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/relay"
)

// Config configures a Server. Zero values select the documented defaults.
type Config struct {
	// Logger receives connection-level events. Nil discards them.
	Logger *slog.Logger
	// KeepAlive is the interval between KeepAlive frames to each client. Default 60 s.
	KeepAlive time.Duration
	// HandshakeTimeout bounds the wait for the ClientInfo frame. Default 10 s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each flush to a client, and the wait for a client to answer a Ping
	// once Window frames are unconfirmed (measured on Clock); a client that does not read,
	// or reads without answering Pings, is disconnected. Default 10 s.
	WriteTimeout time.Duration
	// SendQueueDepth is the number of packets queued per destination client. Default 512.
	SendQueueDepth int
	// RateLimit is the sustained SendPacket payload rate allowed per client, in bytes per
	// second. Zero means unlimited.
	RateLimit float64
	// RateBurst is the token bucket size in bytes. Default: max(RateLimit/10, 2×64 KiB).
	RateBurst int
	// IPRateLimit is the sustained SendPacket payload rate allowed for all clients connected
	// from one IP address together, in bytes per second (node keys cost nothing to make, so
	// RateLimit alone does not bound one host). Zero means unlimited.
	IPRateLimit float64
	// IPRateBurst is the per-IP token bucket size in bytes. Default:
	// max(IPRateLimit/10, 2×64 KiB).
	IPRateBurst int
	// MaxConnsPerIP bounds the connections one IP address may hold open at once, counted
	// from the moment Accept starts (before the handshake), so a host cannot exhaust the
	// server with connections that never authenticate. ServeHTTP answers a connection past
	// the bound with 429 Too Many Requests before upgrading it. Zero means unlimited.
	MaxConnsPerIP int
	// Clock drives the rate limiter, keep-alives and the wait for Pongs. Nil: the wall
	// clock. (Socket read and write deadlines always use the wall clock: the kernel measures
	// them.)
	Clock clock.Clock
}

// Stats are cumulative counters of a Server.
type Stats struct {
	Accepted        uint64 // connections that completed the handshake
	HandshakeFailed uint64 // connections refused during the handshake (bad signature, version, frame)
	PacketsSent     uint64 // packets queued to a connected destination
	BytesSent       uint64 // payload bytes of PacketsSent
	DroppedNoPeer   uint64 // packets to a node that is not connected
	DroppedQueue    uint64 // packets dropped because the destination's queue was full
	RateLimited     uint64 // times a client's read loop waited for rate-limit tokens
	PeerGoneSent    uint64 // PeerGone frames queued
	WindowWaits     uint64 // times a writer waited for a Pong because Window frames were unconfirmed
	Unpaced         uint64 // accepted connections left out of the window (relay.UnpacedHeader)
	Unresponsive    uint64 // clients disconnected for not answering a Ping within WriteTimeout
	RefusedPerIP    uint64 // connections refused because their IP held MaxConnsPerIP already
	IPRateLimited   uint64 // times a client's read loop waited for its IP's rate-limit tokens
	Current         int64  // clients connected now
}

// Server is a relay server. Create it with New.
type Server struct {
	// Static after construction.
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	// Counters (atomic).
	accepted, handshakeFailed, packetsSent, bytesSent, droppedNoPeer, droppedQueue,
	rateLimited, peerGoneSent, windowWaits, unpaced, unresponsive, refusedPerIP,
	ipRateLimited atomic.Uint64
	current atomic.Int64

	// mu guards the fields below.
	mu      sync.RWMutex
	closed  bool
	clients map[relay.NodeKey]*sclient // authenticated clients by key
	conns   map[net.Conn]struct{}      // every connection inside Accept, for Close
	perIP   map[netip.Addr]*ipState    // connections and shared rate budget per remote IP
	wg      sync.WaitGroup             // Accept calls in progress
}

// New returns a Server with cfg's defaults filled in.
func New(cfg Config) *Server {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 60 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.SendQueueDepth <= 0 {
		cfg.SendQueueDepth = 512
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = max(int(cfg.RateLimit/10), 2*relay.MaxPacketSize)
	}
	if cfg.IPRateBurst <= 0 {
		cfg.IPRateBurst = max(int(cfg.IPRateLimit/10), 2*relay.MaxPacketSize)
	}
	cfg.Clock = clock.Or(cfg.Clock)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:     cfg,
		log:     log,
		ctx:     ctx,
		cancel:  cancel,
		clients: make(map[relay.NodeKey]*sclient),
		conns:   make(map[net.Conn]struct{}),
		perIP:   make(map[netip.Addr]*ipState),
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Accepted:        s.accepted.Load(),
		HandshakeFailed: s.handshakeFailed.Load(),
		PacketsSent:     s.packetsSent.Load(),
		BytesSent:       s.bytesSent.Load(),
		DroppedNoPeer:   s.droppedNoPeer.Load(),
		DroppedQueue:    s.droppedQueue.Load(),
		RateLimited:     s.rateLimited.Load(),
		PeerGoneSent:    s.peerGoneSent.Load(),
		WindowWaits:     s.windowWaits.Load(),
		Unpaced:         s.unpaced.Load(),
		Unresponsive:    s.unresponsive.Load(),
		RefusedPerIP:    s.refusedPerIP.Load(),
		IPRateLimited:   s.ipRateLimited.Load(),
		Current:         s.current.Load(),
	}
}

// IsConnected reports whether a client with key k is currently connected.
func (s *Server) IsConnected(k relay.NodeKey) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.clients[k]
	return ok
}

// ErrServerClosed is returned by Accept after Close.
var ErrServerClosed = errors.New("relayserver: server closed")

// ErrTooManyConns is returned by Accept for a connection whose IP address already holds
// Config.MaxConnsPerIP connections.
var ErrTooManyConns = errors.New("relayserver: too many connections from this IP address")

// Close disconnects every client and waits until all Accept calls have returned. Idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.cancel()
		for c := range s.conns {
			_ = c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Accept serves one upgraded relay connection: it reads the ClientInfo handshake, registers
// the client and forwards its packets until the connection fails, ctx is cancelled or the
// server is closed. br, if not nil, is a reader that may already hold bytes from conn. Accept
// always closes conn. It returns nil when the client hung up normally. The client is paced
// by the Ping/Pong window (see Window); ServeHTTP leaves it out for a client that sent
// relay.UnpacedHeader.
func (s *Server) Accept(ctx context.Context, conn net.Conn, br *bufio.Reader) error {
	return s.accept(ctx, conn, br, true, nil)
}

// accept serves conn; ip, if not nil, is the per-IP slot ServeHTTP already took for it (so
// the count is exact before the client sees 101), else accept takes one itself.
func (s *Server) accept(ctx context.Context, conn net.Conn, br *bufio.Reader, paced bool, ip *ipState) error {
	s.mu.Lock()
	if s.closed {
		if ip != nil {
			s.releaseIPLocked(ip)
		}
		s.mu.Unlock()
		_ = conn.Close()
		return ErrServerClosed
	}
	if ip == nil {
		var ok bool
		if ip, ok = s.holdIPLocked(remoteIP(conn.RemoteAddr())); !ok {
			s.mu.Unlock()
			_ = conn.Close()
			return ErrTooManyConns
		}
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.releaseIPLocked(ip)
		s.mu.Unlock()
		_ = conn.Close()
		s.wg.Done()
	}()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	if br == nil {
		br = bufio.NewReaderSize(conn, 64<<10)
	}
	key, err := s.handshake(conn, br)
	if err != nil {
		s.handshakeFailed.Add(1)
		s.log.Info("relay handshake refused", "remote", conn.RemoteAddr(), "err", err)
		return err
	}
	c := &sclient{
		s:      s,
		key:    key,
		conn:   conn,
		br:     br,
		sendq:  make(chan packet, s.cfg.SendQueueDepth),
		ctrlq:  make(chan relay.Frame, 64),
		done:   make(chan struct{}),
		ackc:   make(chan struct{}, 1),
		sentTo: make(map[relay.NodeKey]struct{}),
		win:    window{unpaced: !paced},
		bucket: tokenBucket{rate: s.cfg.RateLimit, burst: float64(s.cfg.RateBurst), tokens: float64(s.cfg.RateBurst)},
		ip:     ip,
	}
	s.register(c)
	s.accepted.Add(1)
	if !paced {
		s.unpaced.Add(1)
	}
	s.current.Add(1)
	s.log.Debug("relay client connected", "key", fmt.Sprintf("%x", key[:5]), "remote", conn.RemoteAddr())

	var wg sync.WaitGroup
	wg.Go(c.writeLoop)
	err = c.readLoop()
	close(c.done)
	_ = conn.Close()
	wg.Wait()
	s.unregister(c)
	s.current.Add(-1)
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) handshake(conn net.Conn, br *bufio.Reader) (relay.NodeKey, error) {
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	// The client is untrusted: read its first frame with a small limit.
	f, _, err := relay.ReadFrame(io.LimitReader(br, 4096), nil)
	if err != nil {
		return relay.NodeKey{}, fmt.Errorf("relayserver: read client info: %w", err)
	}
	if f.Type != relay.FrameClientInfo {
		return relay.NodeKey{}, fmt.Errorf("relayserver: first frame is %v, want ClientInfo", f.Type)
	}
	if _, err := relay.VerifyClientInfo(&f); err != nil {
		return relay.NodeKey{}, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return f.Key, nil
}

func (s *Server) register(c *sclient) {
	s.mu.Lock()
	old := s.clients[c.key]
	s.clients[c.key] = c
	s.mu.Unlock()
	if old != nil {
		// The same node reconnected: the newest connection wins.
		old.replaced.Store(true)
		_ = old.conn.Close()
	}
}

func (s *Server) unregister(c *sclient) {
	s.mu.Lock()
	if s.clients[c.key] == c {
		delete(s.clients, c.key)
	}
	gone := c.sentTo
	c.sentTo = nil
	var notify []*sclient
	if !c.replaced.Load() {
		for k := range gone {
			if dst := s.clients[k]; dst != nil {
				notify = append(notify, dst)
			}
		}
	}
	s.mu.Unlock()
	for _, dst := range notify {
		if dst.queueCtrl(relay.Frame{Type: relay.FramePeerGone, Key: c.key}) {
			s.peerGoneSent.Add(1)
		}
	}
}

func (s *Server) lookup(k relay.NodeKey) *sclient {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clients[k]
}

type packet struct {
	src  relay.NodeKey
	data []byte
}

// sclient is the server side of one client connection.
type sclient struct {
	// Static after construction.
	s     *Server
	key   relay.NodeKey
	conn  net.Conn
	br    *bufio.Reader
	sendq chan packet      // packets to deliver to this client
	ctrlq chan relay.Frame // Pong and PeerGone frames to this client
	done  chan struct{}    // closed when the read loop ends
	ackc  chan struct{}    // (capacity 1) signalled when a Pong confirmed more frames

	replaced atomic.Bool // a newer connection with the same key took over
	win      window      // flow control (see Window); its doc says which goroutine owns what

	ip *ipState // shared with every connection from the same address

	// Owned by the Accept goroutine (readLoop, then unregister).
	sentTo    map[relay.NodeKey]struct{}
	bucket    tokenBucket
	preferred bool
}

func (c *sclient) queueCtrl(f relay.Frame) bool {
	select {
	case c.ctrlq <- f:
		return true
	case <-c.done:
	default:
	}
	return false
}

func (c *sclient) readLoop() error {
	var (
		buf []byte
		f   relay.Frame
		err error
	)
	for {
		f, buf, err = relay.ReadFrame(c.br, buf)
		if err != nil {
			return err
		}
		switch f.Type {
		case relay.FrameSendPacket:
			if err := c.limit(len(f.Data)); err != nil {
				return err
			}
			c.forward(f.Key, f.Data)
		case relay.FramePing:
			c.queueCtrl(relay.Frame{Type: relay.FramePong, PingData: f.PingData})
		case relay.FramePong:
			if c.win.pong(f.PingData) {
				select {
				case c.ackc <- struct{}{}:
				default:
				}
			}
		case relay.FrameNotePreferred:
			c.preferred = f.Preferred
		default:
			// Other well-formed frames (Health, …) are ignored, as iroh's server does.
		}
	}
}

// limit blocks until the client's and its IP address's rate limiters grant n bytes or the
// connection ends. Both buckets are charged; the wait is the longer of the two debts.
func (c *sclient) limit(n int) error {
	var wait time.Duration
	now := c.s.cfg.Clock.Now()
	if c.s.cfg.RateLimit > 0 {
		if w := c.bucket.take(now, float64(n)); w > 0 {
			c.s.rateLimited.Add(1)
			wait = w
		}
	}
	if c.s.cfg.IPRateLimit > 0 && c.ip != nil {
		c.ip.mu.Lock()
		w := c.ip.bucket.take(now, float64(n))
		c.ip.mu.Unlock()
		if w > 0 {
			c.s.ipRateLimited.Add(1)
			wait = max(wait, w)
		}
	}
	if wait <= 0 {
		return nil
	}
	t := c.s.cfg.Clock.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-c.s.ctx.Done():
		return ErrServerClosed
	}
}

func (c *sclient) forward(dstKey relay.NodeKey, data []byte) {
	s := c.s
	dst := s.lookup(dstKey)
	if dst == nil {
		s.droppedNoPeer.Add(1)
		return
	}
	p := packet{src: c.key, data: append([]byte(nil), data...)}
	select {
	case dst.sendq <- p:
		s.packetsSent.Add(1)
		s.bytesSent.Add(uint64(len(data)))
		c.sentTo[dstKey] = struct{}{}
	default:
		s.droppedQueue.Add(1)
	}
}

// writeLoop sends queued packets, control frames and keep-alives until the read loop ends,
// flushing whenever the queues run dry or the window (see Window) closes. While the window is
// closed it sends nothing and waits for a Pong; packets queued meanwhile are dropped once the
// queue is full, as for any slow reader.
func (c *sclient) writeLoop() {
	bw := bufio.NewWriterSize(c.conn, 64<<10)
	keepAlive := c.s.cfg.Clock.NewTicker(c.s.cfg.KeepAlive)
	defer keepAlive.Stop()
	var buf []byte
	put := func(f *relay.Frame) bool {
		var err error
		if buf, err = f.AppendTo(buf[:0]); err != nil {
			return true // cannot happen for frames the server builds; skip it
		}
		if _, err = bw.Write(buf); err != nil {
			_ = c.conn.Close()
			return false
		}
		return true
	}
	// write writes f and the Ping that falls due after it (window.full says whether both fit).
	write := func(f *relay.Frame) bool {
		if !put(f) {
			return false
		}
		if ping, due := c.win.wrote(); due {
			return put(&ping)
		}
		return true
	}
	flush := func() bool {
		if err := bw.Flush(); err != nil {
			_ = c.conn.Close()
			return false
		}
		return true
	}
	for {
		if c.win.full() && !c.awaitPong() {
			return
		}
		var f relay.Frame
		select {
		case <-c.done:
			return
		case p := <-c.sendq:
			f = relay.Frame{Type: relay.FrameRecvPacket, Key: p.src, Data: p.data}
		case f = <-c.ctrlq:
		case <-keepAlive.C():
			f = relay.Frame{Type: relay.FrameKeepAlive}
		}
		// The whole batch, including writes that spill the buffer, must finish in time.
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
		if !write(&f) {
			return
		}
		// Drain whatever else is queued (and the window allows) before flushing.
	drain:
		for range 64 {
			if c.win.full() {
				break
			}
			select {
			case p := <-c.sendq:
				f = relay.Frame{Type: relay.FrameRecvPacket, Key: p.src, Data: p.data}
			case f = <-c.ctrlq:
			default:
				break drain
			}
			if !write(&f) {
				return
			}
		}
		if !flush() {
			return
		}
	}
}

// awaitPong waits until a Pong opens the window for the next frame. It returns false
// when the connection ends first; a client that leaves the window closed for WriteTimeout
// (on the server's clock) is disconnected.
func (c *sclient) awaitPong() bool {
	c.s.windowWaits.Add(1)
	t := c.s.cfg.Clock.NewTimer(c.s.cfg.WriteTimeout)
	defer t.Stop()
	for c.win.full() {
		select {
		case <-c.ackc:
		case <-c.done:
			return false
		case <-t.C():
			c.s.unresponsive.Add(1)
			c.s.log.Info("relay client answered no Ping in time; disconnecting", "key", fmt.Sprintf("%x", c.key[:5]), "unconfirmed", c.win.unconfirmed())
			_ = c.conn.Close()
			return false
		}
	}
	return true
}

// ipState is what the connections from one remote IP address share.
type ipState struct {
	addr  netip.Addr // static
	conns int        // guarded by Server.mu

	mu     sync.Mutex // guards bucket
	bucket tokenBucket
}

// remoteIP is a's address without port, IPv4-mapped IPv6 unmapped; the zero Addr when a is
// not an IP address (a net.Pipe in tests): such connections share one entry.
func remoteIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// holdIPLocked counts one more connection from ip, or reports false when ip is at
// MaxConnsPerIP. s.mu must be held.
func (s *Server) holdIPLocked(ip netip.Addr) (*ipState, bool) {
	st := s.perIP[ip]
	if st == nil {
		st = &ipState{addr: ip, bucket: tokenBucket{rate: s.cfg.IPRateLimit, burst: float64(s.cfg.IPRateBurst), tokens: float64(s.cfg.IPRateBurst)}}
		s.perIP[ip] = st
	}
	if s.cfg.MaxConnsPerIP > 0 && st.conns >= s.cfg.MaxConnsPerIP {
		s.refusedPerIP.Add(1)
		return nil, false
	}
	st.conns++
	return st, true
}

// releaseIPLocked undoes holdIPLocked. The entry goes once its last connection does (a host
// that reconnects starts with a full burst again: a reconnect costs a TCP, HTTP and signed
// handshake, and the burst is a tenth of a second's rate). s.mu must be held.
func (s *Server) releaseIPLocked(st *ipState) {
	st.conns--
	if st.conns == 0 {
		delete(s.perIP, st.addr)
	}
}

// holdIP is holdIPLocked for ServeHTTP, which takes the slot before it upgrades.
func (s *Server) holdIP(ip netip.Addr) (*ipState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdIPLocked(ip)
}

// releaseIP is releaseIPLocked for ServeHTTP's paths that never reach accept.
func (s *Server) releaseIP(st *ipState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseIPLocked(st)
}

// tokenBucket is a byte-rate limiter driven by an injected clock.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

// take removes n tokens (allowing the balance to go negative) and returns how long the caller
// must wait until the balance is non-negative again.
func (b *tokenBucket) take(now time.Time, n float64) time.Duration {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}
