package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/gateway/cluster"
	"github.com/meshkafka/meshkafka/internal/meshnode"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
	"github.com/meshkafka/meshkafka/telemetry"
)

// fullBackend is what the gateway needs: topic ops and group ops.
type fullBackend interface {
	gateway.Backend
	gateway.GroupBackend
}

// meshOptions select mesh mode: with -brokers set, the gateway embeds no broker and forwards
// every op over the mesh to the brokers.
//
//	-brokers        broker seeds <nodeid>@host:port, comma separated [RAFKA_SEED_NODES]
//	-mesh-bind      UDP address of the gateway's mesh endpoint (default 0.0.0.0:0) [RAFKA_NODE_BIND_ADDR]
//	-print-node-id  print the gateway's mesh NodeId (identity in <data>/identity.key) and exit
//	-mesh-id        control topic of this mesh (default meshkafka) [RAFKA_MESH_ID]
//
// In mesh mode the gateway also joins the mesh's control topic (package mesh/meshctl),
// bootstrapping from the broker seeds, and learns brokers from their digests in addition to the
// seeds: new topics are placed on every live broker, and partitions another gateway placed on a
// broker it was not given become reachable. The controller stays the smallest NodeId among the
// seeds. A broker silent for RAFKA_STALENESS_MS (default 30000) gets no new placements.
//
//	-trusted-brokers  NodeIds that may be learned as brokers, comma separated [RAFKA_TRUSTED_BROKERS]
//
// The control topic is open to any node that can reach a member (the mesh id is a name, not a
// secret), so digests are believed only from members: the seeds and the metadata quorum's
// registered brokers (brokers join the quorum only when a seed or an operator admitted them,
// and partitions are placed on registered brokers only). Brokers from before the quorum have
// no member list: then only the seeds and -trusted-brokers are learned; without that list a
// node that joins the topic and calls itself a broker is ignored.
//
// # mDNS
//
// With -mdns (RAFKA_MDNS=1; the LAN default for deployments, off by default so that nothing is
// sent unasked) the gateway publishes itself on mDNS and asks every node it hears of there into
// the control topic: mDNS only says who is on the LAN, the brokers' digests on the control
// topic say which of them are brokers, and those are learned like any other. -mdns selects mesh
// mode even without -brokers. With no seeds, the controller (which must be the same broker for
// every gateway, forever: it holds the topic registry, the groups and the placement log) is
// chosen so:
//
//   - with -trusted-brokers: the smallest NodeId of that list. The gateway waits (before
//     serving Kafka) until that broker has announced itself. Every gateway with the same list
//     picks the same controller whatever it discovered: this is the recommended setup.
//   - without: the smallest NodeId among the brokers heard of within -mdns-wait (default 3 s)
//     after the first one. Gateways agree only if every broker is up when they start; a broker
//     with a smaller NodeId that starts later does not become the controller of gateways already
//     running, but would be for a gateway started after it. Use it for development only.
//
// Seeds, when given, still decide the controller; -mdns then only adds brokers.
// -relay / -stun give the mesh node a relay path (package mesh/magicsock). Brokers behind
// NATs are reached through the relay when both sides use it (normally the same -relay; a node
// whose relay URL is unknown is tried through our own); nodes without one still talk directly.
type meshOptions struct {
	brokers  string
	meshBind string
	// kafkaOverMesh serves Kafka over the mesh too (package mesh/kafkapipe; kafkamesh.go).
	kafkaOverMesh bool
	meshID        string
	printNodeID   bool
	trustedBrk    string
	reachOptions
}

func (m *meshOptions) register(fs *flag.FlagSet, getenv cli.Getenv) {
	fs.StringVar(&m.brokers, "brokers", getenv("RAFKA_SEED_NODES"), "broker seeds <nodeid>@host:port, comma separated (env RAFKA_SEED_NODES); empty: embedded broker")
	cli.StringVar(fs, &m.meshBind, "mesh-bind", getenv, "RAFKA_NODE_BIND_ADDR", "0.0.0.0:0", "UDP address of the mesh endpoint")
	fs.BoolVar(&m.kafkaOverMesh, "kafka-over-mesh", false, "also serve Kafka over the mesh (ALPN /meshkafka/kafka/0): clients anywhere use `mesh kafka-proxy <this gateway's ticket>`; with an embedded broker this starts a mesh endpoint on -mesh-bind")
	cli.MeshIDVar(fs, &m.meshID, getenv)
	fs.StringVar(&m.trustedBrk, "trusted-brokers", getenv("RAFKA_TRUSTED_BROKERS"), "NodeIds that may be learned as brokers, comma separated (env RAFKA_TRUSTED_BROKERS); empty: any")
	fs.BoolVar(&m.printNodeID, "print-node-id", false, "print this gateway's mesh NodeId and exit")
	m.reachOptions.register(fs, getenv)
}

func identity(o options) (key.SecretKey, error) { return cli.Identity(o.data, "identity.key") }

func printNodeID(o options, stdout io.Writer) error {
	sk, err := identity(o)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, sk.Public().String())
	return nil
}

// parseSeeds parses the broker seeds as meshctl.ParsePeers reads RAFKA_SEED_NODES for
// cmd/broker too ("<id>@host:port,…"; an item without '@' or id is another address of the
// previous seed); at least one seed is required.
func parseSeeds(s string) ([]endpoint.NodeAddr, error) {
	out, err := meshctl.ParsePeers(s)
	if err != nil {
		return nil, fmt.Errorf("broker seeds: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("no broker seeds")
	}
	return out, nil
}

// openMeshBackend starts the gateway's mesh endpoint and returns a backend that carries every
// op to the brokers.
func openMeshBackend(ctx context.Context, o options, getenv cli.Getenv, log *slog.Logger, recent *telemetry.Recent, epOut **endpoint.Endpoint) (_ fullBackend, _ func() error, err error) {
	var seeds []endpoint.NodeAddr
	if o.brokers != "" || !o.MDNS {
		if seeds, err = parseSeeds(o.brokers); err != nil {
			return nil, nil, err
		}
	}
	if err := o.reachOptions.check(); err != nil {
		return nil, nil, err
	}
	controller, err := smallestTrusted(o.trustedBrk)
	if err != nil {
		return nil, nil, fmt.Errorf("-trusted-brokers: %w", err)
	}
	ctlCfg, err := cli.MeshControl(getenv, meshctl.Config{Role: meshctl.RoleGateway})
	if err != nil {
		return nil, nil, err
	}
	ctlCfg.MeshID = o.meshID
	allowed, err := brokermesh.ParseTrustList(o.trustedBrk)
	if err != nil {
		return nil, nil, fmt.Errorf("-trusted-brokers: %w", err)
	}
	sk, err := identity(o)
	if err != nil {
		return nil, nil, err
	}
	// undo runs the cleanups registered so far, last first; on success it is the close func.
	var cleanups []func() error
	undo := func() error {
		var first error
		for i := len(cleanups) - 1; i >= 0; i-- {
			if err := cleanups[i](); err != nil && first == nil && !errors.Is(err, endpoint.ErrClosed) {
				first = err
			}
		}
		cleanups = nil
		return first
	}
	defer func() {
		if err != nil {
			_ = undo()
		}
	}()
	shutdownTracing, err := cli.SetupTelemetry(ctx, getenv, "meshkafka-gateway", recent)
	if err != nil {
		return nil, nil, err
	}
	cleanups = append(cleanups, func() error { shutdownTracing(context.Background()); return nil })

	node, err := meshnode.Open(meshnode.Config{SecretKey: sk, BindAddr: o.meshBind, Reach: o.Reach.Reach, Logger: log,
		DisableGRO: cli.DisableGRO(getenv), MDNSConns: mdnsConns, IdleTimeout: cli.PeerIdleTimeout})
	if err != nil {
		return nil, nil, err
	}
	cleanups = append(cleanups, node.Close)
	ep := node.Endpoint
	*epOut = ep
	log.Info("gateway mesh node", "node", sk.Public().String(), "brokers", len(seeds), "mdns", o.MDNS, "relay", o.Relay)
	g, err := gossip.Attach(ep, gossip.Config{})
	if err != nil {
		return nil, nil, fmt.Errorf("gossip: %w", err)
	}
	cleanups = append(cleanups, func() error { _ = g.Close(); return nil })
	ctlCfg.Bootstrap = seeds
	for _, sd := range seeds {
		if allowed.Len() > 0 {
			allowed.Add(sd.ID) // seeds are trusted by configuration
		}
	}
	view := newBrokerView(log)
	// Digests are believed only from members (issue #17): the cluster's seeds and registered
	// brokers once the cluster view exists; while brokers are being discovered (mDNS, no
	// seeds), brokers in -trusted-brokers, or any broker without that list (development).
	ctlCfg.Believe = func(d meshctl.Digest) bool {
		if allowed.Len() > 0 && allowed.Allows(d.Node) {
			return true
		}
		if c := view.attached(); c != nil {
			return c.Believes(d.Node)
		}
		return d.Role == meshctl.RoleBroker && allowed.Len() == 0
	}
	ctlCfg.OnChange = func(c meshctl.Change) {
		if allowed.Len() > 0 && !allowed.Allows(c.Digest.Node) {
			if c.Kind == meshctl.Up && c.Digest.Role == meshctl.RoleBroker {
				log.Warn("ignoring a broker not in -trusted-brokers", "broker", c.Digest.Node.String())
			}
			return
		}
		view.change(c)
	}
	ctl, err := meshctl.Join(ctx, ep, g, ctlCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("control plane: %w", err)
	}
	cleanups = append(cleanups, func() error { _ = ctl.Close(); return nil })
	if o.metrics != "" {
		if err := cli.ControlMetrics(ctl, g); err != nil {
			return nil, nil, err
		}
	}
	// Every node heard on mDNS is asked into the control topic; the digests then tell which
	// are brokers (view.change).
	stopFollow := node.FollowMDNS(ctl.JoinPeers)
	cleanups = append(cleanups, func() error { stopFollow(); return nil })
	if len(seeds) == 0 {
		if seeds, err = discoverSeeds(ctx, nil, view, controller, o.mdnsWait, log); err != nil {
			return nil, nil, err
		}
		log.Info("mdns: brokers found", "controller", seeds[0].ID.String(), "brokers", len(seeds))
	}
	// A broker that refuses this gateway (not in its -trust list, no gateway role in the
	// cluster's metadata) is logged once, with how to admit it; clients get
	// CLUSTER_AUTHORIZATION_FAILED meanwhile.
	notice := &brokermesh.RefusalNotice{Log: log, Self: sk.Public()}
	be, err := cluster.New(seeds, func(a endpoint.NodeAddr) *brokermesh.Caller {
		cl := brokermesh.NewCaller(brokermesh.NewMeshOpener(ep, a), a.ID.String())
		cl.NoticeRefusals(notice)
		return cl
	}, log)
	if err != nil {
		return nil, nil, err
	}
	be.EnableLearning()
	if allowed.Len() > 0 {
		be.TrustLearned() // OnChange passes only -trusted-brokers
	}
	view.attach(be)
	return be, undo, nil
}
