package endpoint

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/meshkafka/meshkafka/mesh/discovery"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
)

// RepublishInterval is how often an endpoint with a discovery Publisher
// checks whether its own address changed (a STUN answer, a new interface)
// and publishes again if so.
const RepublishInterval = 5 * time.Second

// wantsPaths reports whether the options ask for a magicsock the endpoint
// builds itself.
func (o *Options) wantsPaths() bool {
	return o.Paths == nil && (o.HomeRelay != "" || len(o.STUNServers) > 0 || o.DisableDirect)
}

// newPaths builds the magicsock the options ask for, on o.Conn if set or
// else on BindAddr.
func newPaths(o *Options, sk key.SecretKey, log *slog.Logger) (PathConn, error) {
	mo := magicsock.Options{
		SecretKey:     sk,
		BindAddr:      o.BindAddr,
		HomeRelay:     o.HomeRelay,
		STUNServers:   slices.Clone(o.STUNServers),
		DisableDirect: o.DisableDirect,
		Logger:        log,
		Clock:         o.Clock,
	}
	if o.Conn != nil {
		mo.UDP = o.Conn
	}
	ms, err := magicsock.New(mo)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	return ms, nil
}

// homeRelay is the PathConn's home relay URL, "" if none.
func (e *Endpoint) homeRelay() string {
	if hr, ok := e.paths.(homeRelayer); ok {
		return hr.HomeRelayURL()
	}
	return ""
}

// LookupTimeoutWithRelay bounds a discovery lookup when the endpoint has a
// home relay: if discovery finds nothing by then, Dial tries the node
// through the home relay.
const LookupTimeoutWithRelay = 2 * time.Second

// resolve asks the discovery service for id's address and adds what it
// finds to the address book. It reports whether it learned anything.
func (e *Endpoint) resolve(ctx context.Context, id key.PublicKey) (bool, error) {
	var cancel context.CancelFunc
	if e.homeRelay() != "" {
		ctx, cancel = context.WithTimeout(ctx, LookupTimeoutWithRelay)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel) // Close aborts lookups
	defer stop()
	da, err := e.disc.Lookup(ctx, id)
	if err != nil {
		if e.ctx.Err() != nil {
			return false, ErrClosed
		}
		return false, fmt.Errorf("endpoint: discovery of %s: %w", id.ShortString(), err)
	}
	if da.ID != id || (len(da.Direct) == 0 && da.RelayURL == "") {
		return false, nil
	}
	e.log.Debug("discovered", "peer", id.ShortString(), "relay", da.RelayURL, "direct", da.Direct)
	e.AddNodeAddr(NodeAddr{ID: id, RelayURL: da.RelayURL, Direct: da.Direct})
	return true, nil
}

// publishable is our address as announced to discovery: loopback
// addresses are left out unless there is nothing else (they only reach
// nodes on this host, which a LAN announcement is not for).
func publishable(a NodeAddr) discovery.NodeAddr {
	out := discovery.NodeAddr{ID: a.ID, RelayURL: a.RelayURL}
	for _, ap := range a.Direct {
		if !ap.Addr().IsLoopback() {
			out.Direct = append(out.Direct, ap)
		}
	}
	if len(out.Direct) == 0 {
		out.Direct = slices.Clone(a.Direct)
	}
	return out
}

// publishLoop publishes our address now and again whenever it changes
// (checked every RepublishInterval) until the endpoint closes.
func (e *Endpoint) publishLoop(p discovery.Publisher) {
	var last discovery.NodeAddr
	publish := func() {
		cur := publishable(e.Addr())
		if cur.RelayURL == last.RelayURL && slices.Equal(cur.Direct, last.Direct) && !last.ID.IsZero() {
			return
		}
		e.log.Debug("publishing address", "relay", cur.RelayURL, "direct", cur.Direct)
		p.Publish(cur)
		last = cur
	}
	publish()
	t := e.clk.NewTicker(RepublishInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C():
			publish()
		}
	}
}
