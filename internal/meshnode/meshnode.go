// Package meshnode starts the mesh side of a long-running node (cmd/broker, cmd/gateway): how
// it reaches and finds others (Reach: home relay, STUN servers, mDNS), its endpoint built from
// that, and the mDNS follower that hands every node heard on the LAN to the caller (the control
// plane asks them into its topic).
//
// The binaries fill Reach from their -relay, -stun and -mdns flags (package cmd/internal/cli,
// which also maps RAFKA_RELAY_URL, RAFKA_STUN_SERVERS and RAFKA_MDNS=1 onto them); this package
// registers no flag and reads no environment. Config.Logger is the logger (nil: discard).
package meshnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/discovery"
	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Reach is how a node reaches and finds others. Zero: direct UDP only, nothing contacted
// unasked.
type Reach struct {
	Relay string   // home relay URL (http or https), "" for none; never a public relay
	STUN  []string // STUN servers host:port
	MDNS  bool     // publish and discover on the LAN
}

// Config configures Open.
type Config struct {
	SecretKey key.SecretKey
	BindAddr  string
	Reach     Reach
	Logger    *slog.Logger // nil: discard
	// Clock drives the endpoint, the mDNS service and the follower. nil: the wall clock.
	Clock clock.Clock
	// DisableGRO keeps UDP GRO off on the endpoint's socket (endpoint.Options.DisableGRO).
	DisableGRO bool
	// IdleTimeout replaces the endpoint's connection idle timeout (endpoint.Options.IdleTimeout);
	// zero keeps iroh's 30 s.
	IdleTimeout time.Duration
	// MDNSConns, if set (tests), gives the mDNS sockets instead of the standard ones.
	MDNSConns func() []mdns.Conn
}

// Node is a started mesh endpoint with its optional mDNS service.
type Node struct {
	Endpoint *endpoint.Endpoint
	MDNS     *mdns.Service // nil unless Reach.MDNS
	log      *slog.Logger
	clk      clock.Clock
	kick     chan struct{} // a node was heard on mDNS
}

// Open starts the endpoint (with a relay path when Reach asks for one) and, with Reach.MDNS,
// the mDNS service it publishes to and resolves through.
func Open(cfg Config) (*Node, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{log: log, clk: clock.Or(cfg.Clock), kick: make(chan struct{}, 1)}
	opts := endpoint.Options{SecretKey: cfg.SecretKey, BindAddr: cfg.BindAddr, Logger: log, Clock: n.clk, HomeRelay: cfg.Reach.Relay, STUNServers: cfg.Reach.STUN, DisableGRO: cfg.DisableGRO, IdleTimeout: cfg.IdleTimeout}
	if cfg.Reach.MDNS {
		mc := mdns.Config{Self: cfg.SecretKey.Public(), Logger: log, Clock: n.clk, OnDiscovered: func(discovery.NodeAddr) {
			select {
			case n.kick <- struct{}{}:
			default:
			}
		}}
		if cfg.MDNSConns != nil {
			mc.Conns = cfg.MDNSConns()
		}
		var err error
		if n.MDNS, err = mdns.New(mc); err != nil {
			return nil, fmt.Errorf("mdns: %w", err)
		}
		opts.Discovery = n.MDNS
	}
	ep, err := endpoint.New(opts)
	if err != nil {
		if n.MDNS != nil {
			n.MDNS.Close()
		}
		return nil, fmt.Errorf("mesh endpoint: %w", err)
	}
	n.Endpoint = ep
	return n, nil
}

// FollowMDNS calls join (with a 5 s deadline) for every node heard on mDNS, until the returned
// stop is called; without mDNS it does nothing. stop waits for the follower to end.
func (n *Node) FollowMDNS(join func(ctx context.Context, peers ...endpoint.NodeAddr) error) (stop func()) {
	if n.MDNS == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		discovery.Follow(ctx, n.clk, n.MDNS, time.Second, n.kick, func(p discovery.NodeAddr) {
			n.log.Debug("mdns: found node", "node", p.ID.String(), "addrs", p.Direct)
			jctx, jcancel := context.WithTimeout(ctx, 5*time.Second)
			defer jcancel()
			if err := join(jctx, endpoint.NodeAddr{ID: p.ID, RelayURL: p.RelayURL, Direct: p.Direct}); err != nil {
				n.log.Debug("mdns: control-topic join", "node", p.ID.String(), "err", err)
			}
		})
	}()
	return func() { cancel(); <-done }
}

// Close closes the endpoint, then the mDNS service. Closing twice is harmless.
func (n *Node) Close() error {
	err := n.Endpoint.Close()
	if errors.Is(err, endpoint.ErrClosed) {
		err = nil
	}
	if n.MDNS != nil {
		_ = n.MDNS.Close()
	}
	return err
}
