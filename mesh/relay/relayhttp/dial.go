package relayhttp

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/meshkafka/meshkafka/mesh/relay"
)

// Options configure Dial. The zero value is usable.
type Options struct {
	// DialContext opens the TCP connection. Default: a net.Dialer with a 1.5 s timeout (iroh's
	// TCP connect timeout).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is used for https/wss URLs; ServerName defaults to the URL host. Nil means the
	// system roots.
	TLSConfig *tls.Config
	// Timeout bounds the whole connect: TCP, TLS, upgrade and ClientInfo. Default 10 s.
	Timeout time.Duration
}

// Dial connects to the relay at rawURL and authenticates as priv.
func Dial(ctx context.Context, rawURL string, priv ed25519.PrivateKey, opts Options) (*relay.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("relayhttp: bad relay url %q: %w", rawURL, err)
	}
	var useTLS bool
	switch u.Scheme {
	case "http", "ws":
	case "https", "wss":
		useTLS = true
	default:
		return nil, fmt.Errorf("relayhttp: unsupported relay url scheme %q", u.Scheme)
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	if host == "" {
		return nil, fmt.Errorf("relayhttp: relay url %q has no host", rawURL)
	}
	port := u.Port()
	hostHeader := host
	if strings.Contains(host, ":") {
		hostHeader = "[" + host + "]"
	}
	if port != "" {
		hostHeader += ":" + port
	} else if useTLS {
		port = "443"
	} else {
		port = "80"
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dial := opts.DialContext
	if dial == nil {
		d := &net.Dialer{Timeout: 1500 * time.Millisecond}
		dial = d.DialContext
	}
	conn, err := dial(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("relayhttp: dial %s: %w", rawURL, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	// Abort blocking I/O when ctx ends during the setup.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	c, err := upgrade(ctx, conn, host, hostHeader, useTLS, priv, opts.TLSConfig)
	if !stop() {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		_ = conn.Close()
		if c != nil {
			_ = c.Close()
		}
		return nil, fmt.Errorf("relayhttp: connect %s: %w", rawURL, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

func upgrade(ctx context.Context, conn net.Conn, host, hostHeader string, useTLS bool, priv ed25519.PrivateKey, tcfg *tls.Config) (*relay.Client, error) {
	if useTLS {
		cfg := &tls.Config{}
		if tcfg != nil {
			cfg = tcfg.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		conn = tc
	}
	req := "GET " + relay.HTTPPath + " HTTP/1.1\r\nHost: " + hostHeader + "\r\nUpgrade: " + relay.UpgradeProtocol +
		"\r\n" + relay.UnpacedHeader + ": 1\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, fmt.Errorf("read upgrade response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("upgrade refused: %s", resp.Status)
	}
	return relay.NewClient(priv, conn, br)
}
