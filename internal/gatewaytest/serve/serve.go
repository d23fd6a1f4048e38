// Package serve runs a gateway.Server on loopback for tests: the start-up and the shutdown
// check (Serve must end with gateway.ErrServerClosed) that the gateway's, the cluster's and
// the interop tests share. Test-only, like its parent gatewaytest (which the gateway's own
// tests import, so the helper that imports gateway lives here).
package serve

import (
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/gateway"
)

// Gateway is a gateway serving on a loopback port.
type Gateway struct {
	Server *gateway.Server
	Addr   string // host:port of its listener

	tb   testing.TB
	done chan error
	once sync.Once
}

// Start runs a gateway with cfg on ln (nil: a new listener on 127.0.0.1:0) until Stop or the
// end of the test.
func Start(tb testing.TB, cfg gateway.Config, ln net.Listener) *Gateway {
	tb.Helper()
	return start(tb, cfg, ln, (*gateway.Server).Serve)
}

// StartProtocol runs a gateway with cfg on a new loopback listener that speaks p (with the
// TLS and SASL cfg sets up) until Stop or the end of the test.
func StartProtocol(tb testing.TB, cfg gateway.Config, p gateway.SecurityProtocol) *Gateway {
	tb.Helper()
	return start(tb, cfg, nil, func(srv *gateway.Server, ln net.Listener) error { return srv.ServeListener(ln, p, 0) })
}

func start(tb testing.TB, cfg gateway.Config, ln net.Listener, serve func(*gateway.Server, net.Listener) error) *Gateway {
	tb.Helper()
	srv, err := gateway.NewServer(cfg)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		tb.Fatal(err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			tb.Fatal(err)
		}
	}
	g := &Gateway{Server: srv, Addr: ln.Addr().String(), tb: tb, done: make(chan error, 1)}
	go func() { g.done <- serve(srv, ln) }()
	tb.Cleanup(g.Stop)
	return g
}

// Stop closes the gateway and waits for Serve to return; an error other than
// gateway.ErrServerClosed fails the test. Calls after the first do nothing.
func (g *Gateway) Stop() {
	g.once.Do(func() {
		g.Server.Close()
		if err := <-g.done; !errors.Is(err, gateway.ErrServerClosed) {
			g.tb.Errorf("gateway Serve: %v", err)
		}
	})
}
