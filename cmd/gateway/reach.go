package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway/cluster"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

// reachOptions are how the gateway's mesh node reaches and finds others (mesh mode only):
//
//	-relay      home relay URL; default none (never a public relay) [RAFKA_RELAY_URL]
//	-stun       STUN servers host:port, comma separated; default none [RAFKA_STUN_SERVERS]
//	-mdns       find brokers on the LAN by mDNS and publish this node there [RAFKA_MDNS=1];
//	            selects mesh mode, with or without -brokers
//	-mdns-wait  with -mdns, no -brokers and no -trusted-brokers: how long to keep collecting
//	            brokers after the first one is found before choosing the controller (default 3s)
//	            [RAFKA_MDNS_WAIT_MS]
type reachOptions struct {
	cli.Reach
	mdnsWait time.Duration
}

// mdnsConns, if set (tests), gives the mDNS sockets instead of the standard ones.
var mdnsConns func() []mdns.Conn

func (r *reachOptions) register(fs *flag.FlagSet, getenv cli.Getenv) {
	r.Reach.Register(fs, getenv, "find brokers on the LAN by mDNS; selects mesh mode")
	wait := 3 * time.Second
	if v := getenv("RAFKA_MDNS_WAIT_MS"); v != "" {
		var ms int
		if _, err := fmt.Sscanf(v, "%d", &ms); err == nil && ms > 0 {
			wait = time.Duration(ms) * time.Millisecond
		}
	}
	fs.DurationVar(&r.mdnsWait, "mdns-wait", wait, "with -mdns and no seeds: collect brokers this long after the first before choosing the controller (env RAFKA_MDNS_WAIT_MS)")
}

// check validates the parsed values.
func (r *reachOptions) check() error {
	if err := r.Reach.Check(); err != nil {
		return err
	}
	if r.mdnsWait <= 0 {
		return errors.New("-mdns-wait must be positive")
	}
	return nil
}

// meshMode reports whether the gateway forwards to brokers over the mesh (seeds given, or
// brokers to be found by mDNS) rather than embedding one.
func (m *meshOptions) meshMode() bool { return m.brokers != "" || m.MDNS }

// brokerView feeds control-plane changes to the Cluster; before the Cluster exists (no seeds:
// brokers are being found by mDNS) it collects the brokers heard of.
type brokerView struct {
	log     *slog.Logger
	mu      sync.Mutex
	cluster *cluster.Cluster                    // nil until attach
	pending map[key.PublicKey]endpoint.NodeAddr // brokers up before attach
	changed chan struct{}                       // closed and replaced when pending changes
}

func newBrokerView(log *slog.Logger) *brokerView {
	return &brokerView{log: log, pending: map[key.PublicKey]endpoint.NodeAddr{}, changed: make(chan struct{})}
}

// change applies one control-plane change (already filtered by trust).
func (v *brokerView) change(ch meshctl.Change) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cluster != nil {
		if v.cluster.Learn(ch) {
			v.log.Warn("broker digest expired: no new placements on it until it announces itself again", "broker", ch.Digest.Node.String())
		}
		return
	}
	if ch.Digest.Role != meshctl.RoleBroker {
		return
	}
	switch ch.Kind {
	case meshctl.Up, meshctl.Updated:
		v.pending[ch.Digest.Node] = endpoint.NodeAddr{ID: ch.Digest.Node, Direct: ch.Digest.Addrs}
	case meshctl.Down:
		delete(v.pending, ch.Digest.Node)
	}
	close(v.changed)
	v.changed = make(chan struct{})
}

// attached returns the cluster once attach ran (nil before).
func (v *brokerView) attached() *cluster.Cluster {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.cluster
}

// snapshot returns the brokers heard of so far, sorted by NodeId, and a channel closed at the
// next change.
func (v *brokerView) snapshot() ([]endpoint.NodeAddr, <-chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]endpoint.NodeAddr, 0, len(v.pending))
	for _, a := range v.pending {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b endpoint.NodeAddr) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return out, v.changed
}

// attach hands the view to c: brokers heard of meanwhile and not among c's seeds are added.
func (v *brokerView) attach(c *cluster.Cluster) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cluster = c
	for _, a := range v.pending {
		c.AddBroker(a)
	}
	v.pending = nil
}

// smallestTrusted is the smallest NodeId (in text order, as the Cluster sorts) of a
// -trusted-brokers list, or zero for an empty list.
func smallestTrusted(list string) (key.PublicKey, error) {
	var best key.PublicKey
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		id, err := key.ParsePublicKey(f)
		if err != nil {
			return key.PublicKey{}, err
		}
		if best.IsZero() || id.String() < best.String() {
			best = id
		}
	}
	return best, nil
}

// discoverSeeds waits for the brokers that make up the gateway's initial cluster when no seeds
// were given (the package doc of cmd/gateway, "mDNS", has the rule):
//
//   - with -trusted-brokers, the controller is the smallest NodeId of that list: wait until it
//     has announced itself; the seeds are every (trusted) broker heard of by then;
//   - otherwise wait for the first broker, keep collecting for wait, then the seeds are every
//     broker heard of and the controller the smallest NodeId among them.
//
// clk times the wait and the reminders (nil: the wall clock).
func discoverSeeds(ctx context.Context, clk clock.Clock, v *brokerView, controller key.PublicKey, wait time.Duration, log *slog.Logger) ([]endpoint.NodeAddr, error) {
	clk = clock.Or(clk)
	remind := clk.NewTicker(5 * time.Second)
	defer remind.Stop()
	var settle <-chan time.Time
	for {
		found, changed := v.snapshot()
		if !controller.IsZero() {
			if slices.ContainsFunc(found, func(a endpoint.NodeAddr) bool { return a.ID == controller }) {
				return found, nil
			}
		} else if len(found) > 0 && settle == nil {
			log.Info("mdns: first broker found; collecting others before choosing the controller", "wait", wait)
			t := clk.NewTimer(wait)
			defer t.Stop()
			settle = t.C()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for brokers on mDNS: %w", ctx.Err())
		case <-changed:
		case <-settle:
			found, _ = v.snapshot()
			if len(found) > 0 {
				return found, nil
			}
			settle = nil // the brokers went away meanwhile: wait again
		case <-remind.C():
			if controller.IsZero() {
				log.Info("mdns: waiting for brokers to announce themselves", "found", len(found))
			} else {
				log.Info("mdns: waiting for the controller (smallest -trusted-brokers NodeId)", "controller", controller.String(), "found", len(found))
			}
		}
	}
}
