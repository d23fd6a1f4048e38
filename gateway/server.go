package gateway

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/kafkawire"
	"github.com/meshkafka/meshkafka/telemetry"
)

// Config configures a Server.
type Config struct {
	// Backend receives every broker op. Required.
	Backend Backend
	// AdvertisedHost and AdvertisedPort are the address clients are told to connect to
	// (Metadata, FindCoordinator). Defaults: "localhost" and the listener's port (9092 when
	// unknown).
	AdvertisedHost string
	AdvertisedPort int32
	// NodeID is the broker id the gateway presents (default 0).
	NodeID int32
	// MaxFrameBytes caps a request frame (default kafkawire.DefaultMaxFrame, 100 MiB); a
	// larger request closes its connection.
	MaxFrameBytes int
	// IdleTimeout closes a connection on which no request arrives for this long (Kafka's
	// connections.max.idle.ms, default 10 minutes; negative: never).
	IdleTimeout time.Duration
	// FetchSessions bounds the fetch-session cache (KIP-227; fetch_session.go).
	FetchSessions FetchSessionConfig
	// DisableAutoCreate turns off topic auto-creation on Metadata for every version.
	DisableAutoCreate bool
	// DirectBrokers makes Metadata list each broker that advertises a Kafka listener of its
	// own (brokerop.BrokerInfo.Kafka) at that address instead of this server's, so clients
	// send each replicated partition's requests straight to its leader broker (the direct
	// data path). Brokers without one stay listed at this server's address. A broker's
	// embedded Kafka listener sets it, with NodeID = the broker's Kafka id; a stand-alone
	// gateway sets it with -direct-brokers.
	DirectBrokers bool
	// TLS is the server TLS config of SSL and SASL_SSL listeners (NewTLSConfig builds one
	// that reloads its certificate). Required to serve those listeners.
	TLS *tls.Config
	// SASL configures SASL_PLAINTEXT and SASL_SSL listeners (sasl.go).
	SASL SASLConfig
	// Quotas configures client quota enforcement (quota.go).
	Quotas QuotaConfig
	// Authorizer turns ACL authorization on (authz.go; off by default).
	Authorizer AuthorizerConfig
	// Logger receives connection and request errors. Nil: discard.
	Logger *slog.Logger
}

// listenerInfo is what a connection knows of the listener it came in on.
type listenerInfo struct {
	proto SecurityProtocol
	port  int32  // advertised port (0: the server's)
	host  string // advertised host ("": the server's)
}

// Server serves the Kafka protocol on listeners and connections given to it.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	topics topicIDCache
	groups coordinatorSupport // whether the backend serves group ops
	txns   coordinatorSupport // whether the backend serves transaction ops

	mu        sync.Mutex
	closed    bool                      // guarded by mu
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[net.Conn]struct{}     // guarded by mu
	wg        sync.WaitGroup            // Serve loops and connection goroutines

	// sessions holds the fetch sessions of all connections (nil: sessions off).
	sessions *fetchSessionCache

	clock    clock.Clock                         // SASL session expiry
	creds    credentials                         // SCRAM credential lookup (the backend's)
	authz    *authorizer                         // ACLs (nil: authorization off)
	authHook func(principal string, reauth bool) // tests: called on every successful authentication
	throttle *authThrottle                       // failed SASL authentications per source (nil: off)
	// quotas enforces client byte-rate quotas (quota.go).
	quotas *quotas
	// metrics are the request instruments (metrics.go).
	metrics *serverMetrics
}

// NewServer returns a Server; it does not listen until Serve or ServeConn is called.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("gateway: Config.Backend is required")
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = kafkawire.DefaultMaxFrame
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.AdvertisedHost == "" {
		cfg.AdvertisedHost = "localhost"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel,
		listeners: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{},
	}
	s.topics.backend = cfg.Backend
	s.clock = clock.Or(cfg.SASL.Clock)
	s.creds = backendCredentials(cfg.Backend)
	s.authz = newAuthorizer(cfg.Authorizer, cfg.Backend)
	if err := checkSASL(cfg.SASL); err != nil {
		cancel()
		return nil, err
	}
	s.throttle = newAuthThrottle(cfg.SASL.BruteForce)
	s.sessions = newFetchSessionCache(cfg.FetchSessions)
	s.quotas = newQuotas(cfg.Backend, cfg.Quotas)
	s.metrics = newServerMetrics()
	return s, nil
}

// Backend returns the backend every op goes to.
func (s *Server) Backend() Backend { return s.cfg.Backend }

// Advertised returns the host and port clients are told to connect to.
func (s *Server) Advertised() (host string, port int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	port = s.cfg.AdvertisedPort
	if port == 0 {
		port = 9092
	}
	return s.cfg.AdvertisedHost, port
}

// NodeID returns the Kafka broker id the gateway presents.
func (s *Server) NodeID() int32 { return s.cfg.NodeID }

// ClusterID returns the cluster id from the backend's last Metadata answer (or "").
func (s *Server) ClusterID() string { return s.topics.clusterID() }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("gateway: server closed")

// Serve accepts PLAINTEXT connections on ln until Close (which closes ln) or an accept
// error. When Config.AdvertisedPort is 0 and ln is TCP, the listener's port is advertised.
func (s *Server) Serve(ln net.Listener) error {
	return s.serveListener(ln, listenerInfo{proto: Plaintext}, true)
}

// ServeListener accepts connections of a Kafka listener with protocol p on ln (a plain TCP
// listener: the server adds TLS for SSL and SASL_SSL from Config.TLS). Metadata and
// FindCoordinator answers on these connections advertise advertisedPort (0: ln's port), so
// that clients stay on the listener they came in on, as Kafka's listener names do.
func (s *Server) ServeListener(ln net.Listener, p SecurityProtocol, advertisedPort int32) error {
	if p.TLS() && s.cfg.TLS == nil {
		ln.Close()
		return fmt.Errorf("gateway: %s listener needs Config.TLS", p)
	}
	if p < Plaintext || p > SASLSSL {
		ln.Close()
		return fmt.Errorf("gateway: unknown security protocol %d", p)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && advertisedPort == 0 {
		advertisedPort = int32(a.Port)
	}
	if p.TLS() {
		ln = tlsListener{ln, s.cfg.TLS}
	}
	return s.serveListener(ln, listenerInfo{proto: p, port: advertisedPort}, false)
}

func (s *Server) serveListener(ln net.Listener, lis listenerInfo, setAdvertised bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && s.cfg.AdvertisedPort == 0 && (setAdvertised || lis.port == 0) {
		s.cfg.AdvertisedPort = int32(a.Port)
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			if closed || !retryableAccept(err) {
				delete(s.listeners, ln)
			}
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if !retryableAccept(err) {
				return err
			}
			// Out of descriptors or memory, or a connection aborted before it was accepted:
			// the listener is fine, so wait and accept again (as net/http does) instead of
			// taking every open connection down with the process. Close closes ln, which ends
			// the wait at the next Accept.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
				s.log.Warn("gateway: accept failed; retrying", "err", err)
			} else {
				backoff = min(2*backoff, time.Second)
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.serveConn(c, lis)
	}
}

// retryableAccept reports whether an Accept error leaves the listener usable: descriptor or
// memory exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM), a connection aborted by its client
// before it was accepted, or a timeout.
func retryableAccept(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || (errors.As(err, &ne) && ne.Timeout())
}

// ServeConn serves one PLAINTEXT client connection on its own goroutine; the server owns c
// from now on and closes it when the client goes away or the server closes.
func (s *Server) ServeConn(c net.Conn) { s.serveConn(c, listenerInfo{proto: Plaintext}) }

// ServeConnAdvertised serves one client connection like ServeConn, with security protocol p,
// and tells this client to dial host:port wherever an answer names a broker (Metadata,
// FindCoordinator, DescribeCluster): for connections that reach the server through a proxy
// the client dials instead (Kafka over the mesh: package mesh/kafkapipe).
func (s *Server) ServeConnAdvertised(c net.Conn, p SecurityProtocol, host string, port int32) {
	s.serveConn(c, listenerInfo{proto: p, host: host, port: port})
}

func (s *Server) serveConn(c net.Conn, lis listenerInfo) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.metrics.conns.Add(context.Background(), 1)
	go func() {
		defer s.wg.Done()
		defer s.metrics.conns.Add(context.Background(), -1)
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
		if err := s.serve(c, lis); !errors.Is(err, io.EOF) && s.ctx.Err() == nil {
			s.log.Debug("gateway: connection closed", "remote", c.RemoteAddr(), "err", err)
		}
	}()
}

// Close stops accepting, closes every connection, cancels running handlers and waits for
// all goroutines. It may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// pending is one request's answer in the connection's ordered queue: either ready (resp,
// err) or still to be finished by the writer.
type pending struct {
	corr    int32
	version int16
	resp    kmsg.Response
	finish  func() (kmsg.Response, error)
	// raw: rawBytes is a SASL token of the v0 raw phase, written with a 4-byte length only.
	raw      bool
	rawBytes []byte
	mute     time.Duration // quota throttle: the connection reads nothing more for this long
	ready    bool          // finish returns at once (Request.finishReady)
}

// maxSpareFrame: a produce frame up to this capacity is kept to read the connection's next
// request into (serve).
const maxSpareFrame = 64 << 20

// maxPipelined bounds the answers queued on one connection (Kafka clients keep at most 5
// produce requests in flight per connection by default).
const maxPipelined = 16

// serve runs one connection. The reader (this goroutine) reads, decodes and dispatches
// requests in order, queueing answers; a writer goroutine finishes and writes them in the
// same order (an answer that needs no finishing, found nothing queued, the reader writes
// itself). Staged APIs (Produce) therefore overlap their slow part with the reading and
// staging of the next request, while every answer still leaves in request order.
func (s *Server) serve(c net.Conn, lis listenerInfo) error {
	cs := &connState{lis: lis, principal: AnonymousPrincipal, authed: !lis.proto.SASL(), host: remoteHost(c)}
	if tc, ok := c.(*tls.Conn); ok {
		// Handshake before the first frame, bounded, so that the principal of a client
		// certificate is known and a plaintext client on a TLS port is closed at once.
		c.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			return fmt.Errorf("gateway: TLS handshake: %w", err)
		}
		c.SetDeadline(time.Time{})
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 && !lis.proto.SASL() {
			cs.principal = "User:" + certs[0].Subject.String()
			s.log.Debug("gateway: TLS client authenticated", "principal", cs.principal, "remote", c.RemoteAddr())
			if s.authHook != nil {
				s.authHook(cs.principal, false)
			}
		}
	}
	queue := make(chan pending, maxPipelined)
	// queued counts the answers handed to the writer goroutine and not yet written. At zero
	// the writer is idle and the reader writes an answer that needs no finishing itself
	// (dispatch), as it does a staged one whose finish returns at once (pending.ready): a
	// hand-off to the writer costs a goroutine wake-up, tens of microseconds on
	// a loaded machine, on every request of a client that waits for each answer (EndTxn,
	// metadata, group and offset requests). Only the reader adds to queued, so once it reads
	// zero the writer stays idle until the reader queues again: the two never write at once,
	// and answers keep the request order.
	var queued atomic.Int32
	w := s.newConnWriter(c)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		w.writeLoop(queue, &queued)
	}()
	dispatch := func(p pending) {
		if (p.finish == nil || p.ready) && queued.Load() == 0 {
			w.send(p)
			return
		}
		queued.Add(1)
		queue <- p
	}

	fr := kafkawire.NewFrameReader(c, s.cfg.MaxFrameBytes)
	cs.setMax = fr.SetMax
	if !cs.authed {
		fr.SetMax(min(saslMaxReceive, s.cfg.MaxFrameBytes))
	}
	var err error
	var spare []byte // a produce frame's memory, free again once its stage returned
	for {
		var frame []byte
		if s.cfg.IdleTimeout > 0 && fr.Buffered() == 0 {
			c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		}
		if frame, err = fr.NextReuse(spare); err != nil {
			break
		}
		spare = nil
		var p pending
		if cs.raw {
			if p, err = s.rawSASL(cs, frame); err != nil {
				break
			}
			dispatch(p)
			continue
		}
		if p, err = s.handleSafe(frame, cs); err != nil {
			break
		}
		// Backends keep no reference to produce records once Produce (or ProduceStaged)
		// returned, and the finish step only reads the decoded copies, so a produce frame
		// can carry the next request. Frames of other APIs may be retained (group
		// metadata), so they are never recycled. Decision (measured): up to 64 MiB, as a
		// producer spread over many partitions sends requests of 1-20 MiB (kgo puts every
		// partition's batch in one request); with a 16 MiB bound such a connection
		// allocated and zeroed a new frame, grown by doubling, for half its requests, which
		// cost the server more CPU per record than validating the records. A connection so
		// keeps its largest recent produce frame while it lives.
		if len(frame) >= 2 && int16(frame[0])<<8|int16(frame[1]) == kafkawire.KeyProduce && cap(frame) <= maxSpareFrame {
			spare = frame
		}
		if p.resp != nil || p.finish != nil {
			dispatch(p)
			if cs.closing != nil {
				err = cs.closing // answered; now closed, as Kafka closes after a failed authentication
				break
			}
		}
		if p.mute > 0 && !s.muteFor(p.mute) {
			err = net.ErrClosed
			break
		}
	}
	close(queue)
	<-writerDone
	if werr := w.failed; werr != nil && (errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)) {
		err = werr
	}
	return err
}

// connWriter writes a connection's answers, one at a time: the writer goroutine's queued
// ones, or one the reader writes itself when nothing is queued (serve). After a failure it
// closes the connection (which stops the reader) and only drains: staged requests still
// finish, so the backend completes them.
type connWriter struct {
	s      *Server
	c      net.Conn
	out    []byte
	fw     kafkawire.FetchWriter
	rb     *recordBatcher // on a TLS connection of our listeners: each answer as one batch of TLS records
	failed error
}

func (s *Server) newConnWriter(c net.Conn) *connWriter {
	return &connWriter{s: s, c: c, fw: kafkawire.FetchWriter{RefMin: fetchRefMin}, rb: tlsBatcher(c)}
}

func (w *connWriter) write(b []byte) error {
	if w.rb != nil {
		return w.rb.writeAnswer(w.c, b)
	}
	_, err := w.c.Write(b)
	return err
}

func (w *connWriter) fail(err error) {
	w.failed = err
	w.c.Close()
}

// send finishes p (a staged request) and writes its answer.
func (w *connWriter) send(p pending) {
	if p.raw && w.failed == nil {
		w.out = binary.BigEndian.AppendUint32(w.out[:0], uint32(len(p.rawBytes)))
		w.out = append(w.out, p.rawBytes...)
		if err := w.write(w.out); err != nil {
			w.fail(err)
		}
		return
	}
	if w.failed != nil {
		if p.finish != nil {
			w.s.finishSafe(p.finish) // let the backend complete; the answer has nowhere to go
		}
		if fa, ok := p.resp.(fetchAnswer); ok {
			fa.release()
		}
		return
	}
	resp := p.resp
	var release func()
	if fa, ok := resp.(fetchAnswer); ok {
		resp, release = fa.FetchResponse, fa.release
	}
	if p.finish != nil {
		var err error
		if resp, err = w.s.finishSafe(p.finish); err != nil {
			w.fail(err)
			return
		}
		if resp == nil {
			return // acks=0
		}
		resp.SetVersion(p.version)
	}
	if fr, ok := resp.(*kmsg.FetchResponse); ok {
		// Fetch: the stored record sets go to the socket as they are (one writev),
		// not copied into an encode buffer first.
		if frame, ok := w.fw.Frame(p.corr, fr); ok {
			var err error
			if w.rb != nil {
				// Each slice is sealed straight from where it is (the stored record sets
				// are not copied into out first); the records leave in one batch.
				err = w.rb.writeAnswer(w.c, frame...)
			} else {
				_, err = frame.WriteTo(w.c)
			}
			w.fw.Release(1 << 20)
			if release != nil {
				release() // the kernel has the bytes; the backend may reuse its buffers
			}
			if err != nil {
				w.fail(err)
			}
			return
		}
	}
	w.out = kafkawire.AppendResponse(w.out[:0], p.corr, resp)
	if release != nil {
		release() // copied into out
	}
	if err := w.write(w.out); err != nil {
		w.fail(err)
		return
	}
	if cap(w.out) > 4<<20 {
		w.out = nil // do not pin a large fetch buffer on an idle connection
	}
}

// writeLoop finishes and writes queued answers in order, counting each out of queued once
// it is written.
func (w *connWriter) writeLoop(queue <-chan pending, queued *atomic.Int32) {
	for p := range queue {
		w.send(p)
		queued.Add(-1)
	}
}

// tlsListener is tls.NewListener with a recordBatcher under each connection.
type tlsListener struct {
	net.Listener
	cfg *tls.Config
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newTLSServerConn(c, l.cfg), nil
}

// tlsHandshakeTimeout bounds a TLS handshake on an SSL or SASL_SSL listener.
const tlsHandshakeTimeout = 10 * time.Second

// fetchRefMin is the smallest record set of a Fetch answer written from the backend's own
// bytes (writev) rather than copied into the connection's encode buffer.
const fetchRefMin = 4 << 10

// errPanic reports a handler or backend panic; the connection is closed, the server lives on.
var errPanic = errors.New("gateway: request handler panicked")

// handleSafe is handle with a panic (a handler or backend bug) turned into an error that
// closes only this connection.
func (s *Server) handleSafe(frame []byte, cs *connState) (p pending, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("gateway: request handler panicked", "panic", v, "stack", string(debug.Stack()))
			p, err = pending{}, fmt.Errorf("%w: %v", errPanic, v)
		}
	}()
	return s.handle(frame, cs)
}

// finishSafe runs a staged request's finish step, turning a panic into an error.
func (s *Server) finishSafe(finish func() (kmsg.Response, error)) (resp kmsg.Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("gateway: request finish panicked", "panic", v, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("%w: %v", errPanic, v)
		}
	}()
	return finish()
}

// handle decodes and dispatches one request frame. A zero pending with a nil error means
// no answer is sent.
func (s *Server) handle(frame []byte, cs *connState) (pending, error) {
	h, body, err := kafkawire.ParseHeader(frame)
	if err != nil {
		return pending{}, err
	}
	if err := s.gate(cs, h.APIKey); err != nil {
		return pending{}, err
	}
	api, ok := lookupAPI(h.APIKey)
	if !ok {
		return pending{}, fmt.Errorf("api key %d not served", h.APIKey)
	}
	p := pending{corr: h.CorrelationID, version: h.APIVersion}
	start := time.Now()
	s.metrics.request(h.APIKey, len(frame))
	if h.APIVersion < api.MinVersion || h.APIVersion > api.MaxVersion {
		if h.APIKey == kafkawire.KeyApiVersions {
			// KIP-511: answer in v0 with UNSUPPORTED_VERSION and only our ApiVersions
			// range, as Kafka does: the client retries at that version on this
			// connection and so learns our features too (a v0 answer has none).
			own := kafkawire.VersionRange{Key: api.Key, Min: api.MinVersion, Max: api.MaxVersion}
			p.resp = kafkawire.ApiVersionsResponse(h.APIVersion, own, []kafkawire.VersionRange{own})
			return p, nil
		}
		return pending{}, fmt.Errorf("api key %d version %d not served (v%d-%d)", h.APIKey, h.APIVersion, api.MinVersion, api.MaxVersion)
	}
	req, err := kafkawire.DecodeBody(h, body)
	if err != nil {
		return pending{}, err
	}
	r := &Request{Header: h, Body: req, Server: s, conn: cs}
	// One gateway.kafka.request span per Kafka request: the root of the trace that follows the
	// request over the mesh. With tracing off this is a no-op span and no attributes are built.
	ctx, span := telemetry.Tracer().Start(s.ctx, telemetry.SpanGatewayRequest, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("kafka.api_key", int(h.APIKey)), attribute.Int("kafka.api_version", int(h.APIVersion)),
			attribute.Int("kafka.correlation_id", int(h.CorrelationID)))
		span.SetAttributes(attribute.String("kafka.client_id", h.ClientID))
	}
	// Every backend call of the request acts for its principal: the brokers check it too
	// (authz.go).
	ctx = r.acting(ctx)
	if api.Stage != nil {
		finish, err := api.Stage(ctx, r)
		if err != nil || finish == nil {
			span.End()
			return p, err
		}
		if h.APIKey == kafkawire.KeyProduce {
			p.mute = s.quotas.record(ctx, quotaProduce, quotaUser(cs.principal), h.ClientID, len(frame))
		}
		throttle := throttleMillis(p.mute)
		p.ready = r.finishReady
		p.finish = func() (kmsg.Response, error) {
			defer span.End()
			defer s.metrics.answered(h.APIKey, start)
			resp, err := finish()
			pr, _ := resp.(*kmsg.ProduceResponse)
			if pr != nil && throttle > 0 {
				pr.ThrottleMillis = throttle
			}
			if preq, ok := r.Body.(*kmsg.ProduceRequest); ok && err == nil {
				s.metrics.produced(preq, pr)
			}
			return resp, err
		}
		return p, nil
	}
	resp, err := api.Handle(ctx, r)
	span.End()
	s.metrics.answered(h.APIKey, start)
	if err != nil || resp == nil {
		return pending{}, err
	}
	if resp.Key() != h.APIKey {
		return pending{}, fmt.Errorf("handler for key %d answered key %d", h.APIKey, resp.Key())
	}
	resp.SetVersion(h.APIVersion)
	p.resp = resp
	if h.APIKey == kafkawire.KeyFetch {
		p.mute = s.throttleFetch(ctx, quotaUser(cs.principal), h.ClientID, resp)
		switch fr := resp.(type) {
		case *kmsg.FetchResponse:
			s.metrics.fetched(fr, s.topics.lookup)
		case fetchAnswer: // record sets in pooled buffers
			s.metrics.fetched(fr.FetchResponse, s.topics.lookup)
		}
	}
	return p, nil
}

// remoteHost is the connection's peer IP address ("" when it has none).
func remoteHost(c net.Conn) string {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap().String()
	}
	return ""
}
