package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/kafkawire"
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
	// DisableAutoCreate turns off topic auto-creation on Metadata for every version.
	DisableAutoCreate bool
	// Logger receives connection and request errors (default slog.Default()).
	Logger *slog.Logger
}

// Server serves the Kafka protocol on listeners and connections given to it.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	topics topicIDCache

	mu        sync.Mutex
	closed    bool                      // guarded by mu
	listeners map[net.Listener]struct{} // guarded by mu
	conns     map[net.Conn]struct{}     // guarded by mu
	wg        sync.WaitGroup            // Serve loops and connection goroutines
}

// NewServer returns a Server; it does not listen until Serve or ServeConn is called.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("gateway: Config.Backend is required")
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = kafkawire.DefaultMaxFrame
	}
	if cfg.AdvertisedHost == "" {
		cfg.AdvertisedHost = "localhost"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel,
		listeners: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{},
	}
	s.topics.backend = cfg.Backend
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

// Serve accepts connections on ln until Close (which closes ln) or an accept error.
// When Config.AdvertisedPort is 0 and ln is TCP, the listener's port is advertised.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && s.cfg.AdvertisedPort == 0 {
		s.cfg.AdvertisedPort = int32(a.Port)
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			delete(s.listeners, ln)
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			return err
		}
		s.ServeConn(c)
	}
}

// ServeConn serves one client connection on its own goroutine; the server owns c from now
// on and closes it when the client goes away or the server closes.
func (s *Server) ServeConn(c net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
		if err := s.serve(c); !errors.Is(err, io.EOF) && s.ctx.Err() == nil {
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

// serve runs one connection: read a frame, handle it, write the answer, in order.
func (s *Server) serve(c net.Conn) error {
	fr := kafkawire.NewFrameReader(c, s.cfg.MaxFrameBytes)
	var out []byte
	for {
		frame, err := fr.Next()
		if err != nil {
			return err
		}
		resp, corr, err := s.handle(frame)
		if err != nil {
			return err
		}
		if resp == nil {
			continue
		}
		out = kafkawire.AppendResponse(out[:0], corr, resp)
		if _, err := c.Write(out); err != nil {
			return err
		}
		if cap(out) > 4<<20 {
			out = nil // do not pin a large fetch buffer on an idle connection
		}
	}
}

// handle decodes and dispatches one request frame. A nil response with a nil error means
// no answer is sent.
func (s *Server) handle(frame []byte) (kmsg.Response, int32, error) {
	h, body, err := kafkawire.ParseHeader(frame)
	if err != nil {
		return nil, 0, err
	}
	api, ok := lookupAPI(h.APIKey)
	if !ok {
		return nil, 0, fmt.Errorf("api key %d not served", h.APIKey)
	}
	if h.APIVersion < api.MinVersion || h.APIVersion > api.MaxVersion {
		if h.APIKey == kafkawire.KeyApiVersions {
			// KIP-511: answer in v0 with UNSUPPORTED_VERSION and our ranges.
			return kafkawire.ApiVersionsResponse(h.APIVersion,
				kafkawire.VersionRange{Key: api.Key, Min: api.MinVersion, Max: api.MaxVersion}, APIs()), h.CorrelationID, nil
		}
		return nil, 0, fmt.Errorf("api key %d version %d not served (v%d-%d)", h.APIKey, h.APIVersion, api.MinVersion, api.MaxVersion)
	}
	req, err := kafkawire.DecodeBody(h, body)
	if err != nil {
		return nil, 0, err
	}
	resp, err := api.Handle(s.ctx, &Request{Header: h, Body: req, Server: s})
	if err != nil || resp == nil {
		return nil, 0, err
	}
	if resp.Key() != h.APIKey {
		return nil, 0, fmt.Errorf("handler for key %d answered key %d", h.APIKey, resp.Key())
	}
	resp.SetVersion(h.APIVersion)
	return resp, h.CorrelationID, nil
}
