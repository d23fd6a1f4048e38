// Command broker is a storage node of the mesh: it owns partition logs (WAL), the durable topic
// registry and consumer-group state, and serves KafkaOps over the iroh-compatible mesh to the
// gateways it trusts.
//
//	go run ./cmd/broker -data ./data/broker -trust <gateway-node-id>
//
// Every flag is also read from MESHKAFKA_<FLAG> (-data from MESHKAFKA_DATA, -addr-file from
// MESHKAFKA_ADDR_FILE): the command line wins, then MESHKAFKA_*, then the Rafka-style names in
// brackets (kept as aliases), then the default. --help prints a summary, examples and the flags,
// and exits 0.
//
// Flags (environment in brackets):
//
//	-data            data directory: identity, topics, groups, SCRAM credentials (scram.credentials)
//	                 (default ./data/broker) [RAFKA_DATA_DIR]
//	-bind            UDP address of the mesh endpoint (default 0.0.0.0:7070) [RAFKA_NODE_BIND_ADDR]
//	-trust           NodeIds allowed to send KafkaOps, comma separated [RAFKA_TRUSTED_NODES]
//	-partitions      partition count of auto-created topics (default 1)
//	-gossip-peers    control-plane bootstrap peers <nodeid>@host:port, comma separated; may be
//	                 empty [RAFKA_SEED_NODES]
//	-mesh-id         control topic of this mesh (default meshkafka) [RAFKA_MESH_ID]
//	-relay           home relay URL, e.g. https://relay.example:443 or http://10.0.0.5:3340 for a
//	                 local cmd/relay; default none (never a public relay) [RAFKA_RELAY_URL]
//	-stun            STUN servers host:port, comma separated, asked for our reflexive address
//	                 (a cmd/relay answers STUN on :3478); default none [RAFKA_STUN_SERVERS]
//	-mdns            publish this broker on the LAN by mDNS (iroh 0.28's local-swarm layout) and
//	                 join mDNS-discovered nodes to the control topic [RAFKA_MDNS=1]
//	-addr-file       write this node's <nodeid>@host:port here once serving
//	-print-node-id   print this node's id (creating the identity if needed) and exit
//	-v               debug logging
//	-quorum-seeds    seed brokers of the metadata quorum, <nodeid>@host:port, comma separated
//	                 (may include this broker); empty: a quorum of one [RAFKA_QUORUM_SEEDS]
//	-quorum-voters   voter target of the quorum (default 3; 1 with no other seed)
//	                 [RAFKA_QUORUM_VOTERS]
//	-admin           loopback HTTP address of the admin API, e.g. 127.0.0.1:9644; default off
//	                 [RAFKA_ADMIN_ADDR]
//	-rack            this broker's rack label; a partition's replicas go to distinct racks
//	                 [RAFKA_RACK]
//	-default-replication-factor  replication factor of topics created with -1 and of
//	                 auto-created ones (default 3, or the live broker count when fewer)
//	                 [RAFKA_DEFAULT_REPLICATION_FACTOR]
//
// The broker's own Kafka listener (the direct data path; off by default; package
// gateway/direct, README "Deployments"):
//
//	-kafka-listen    serve Kafka clients on this TCP address too (PLAINTEXT), e.g. :9093
//	-kafka-listeners Kafka listeners as the gateway's -listeners, e.g.
//	                 SASL_SSL://:9093,PLAINTEXT://:9094 (instead of -kafka-listen)
//	-kafka-advertised  host:port clients dial, registered with the metadata quorum (default:
//	                 the listen host, or localhost for a wildcard, and the port listened on)
//	-tls-cert, -tls-key, -tls-client-ca, -ssl-client-auth, -sasl-mechanisms, -reauth-ms,
//	-sasl-users, -authorizer, -super-users, -allow-everyone-if-no-acl-found, -oauth-*,
//	-failed-auth-delay-ms, -auth-failure-burst, -auth-failure-refill-ms
//	                 the listener's security, exactly as cmd/gateway's flags of the same names
//	                 (MESHKAFKA_<FLAG> only; the RAFKA_* aliases are the gateway's)
//
// With a Kafka listener, Metadata answered by any broker lists every broker that has one at
// its own advertised address and each replicated partition's leader as its leader broker, so
// clients produce to and fetch from the leaders directly; requests for partitions this broker
// leads are served in process, others are carried over the mesh to their leader.
//
// Every broker runs a member of the metadata quorum (package broker/controller): a raft log
// in <data>/quorum, topics, placement, committed group offsets and producer ids on the
// quorum; the quorum leader is the controller and every broker forwards controller ops to
// it. Brokers of one cluster share -quorum-seeds; the seed with the smallest NodeId starts
// the cluster and the others join it (a broker not among the seeds joins once an operator
// allowed it). With no seeds a broker is a quorum of one, as before. A broker's data
// directory from before the quorum is imported when it starts the cluster.
//
// Operator commands talk to a running broker's admin API (-admin):
//
//	broker quorum status [-admin 127.0.0.1:9644]
//	broker quorum allow|disallow|add|remove [-admin 127.0.0.1:9644] <NodeId>
//	broker quorum decommission [-wait] [-admin 127.0.0.1:9644] <NodeId>
//	broker quorum allow|disallow -role gateway|admin [-admin 127.0.0.1:9644] <NodeId>
//
// A gateway is served by a broker when its NodeId is in that broker's -trust list or the
// cluster's metadata gives it the gateway role (allow -role gateway: every broker of the
// cluster then serves it). The admin role lets a node call the operator ops over the mesh.
// With -quorum-seeds, ACLs, SCRAM credentials and client quotas are cluster metadata on the
// quorum (every broker and gateway sees the same ones); without, they are files in -data
// (scram.credentials, acls, client_quotas) as before.
//
// -mesh-authorizer makes the broker authorize, itself, the Kafka principal each gateway call
// acts for (the gateway names it in every KafkaOp; User:ANONYMOUS for an unauthenticated
// client) against the cluster's ACLs, with -mesh-super-users and
// -mesh-allow-everyone-if-no-acl-found as Kafka's super.users and
// allow.everyone.if.no.acl.found: a gateway whose own -authorizer is off cannot let a client
// past the ACLs. Whatever the flag, only a node this broker trusts as a gateway (-trust, or
// the gateway or admin role) may name a principal (package broker/brokermesh, guard.go).
//
// The admin API (loopback only): GET /quorum/status (JSON), POST
// /quorum/{allow,disallow,add,remove,decommission}?node=<NodeId>; see package
// broker/controller. GET /mesh/paths (JSON) lists every live mesh connection with its peer's
// NodeId, ALPN and path: direct (with the peer's UDP address) or relay (with the relay's URL),
// and its RTT; the replica transport's connections (ALPN /meshkafka/replica/0) show how
// replication between brokers travels.
//
// The broker joins its mesh's control topic (gossip, package mesh/meshctl) and announces itself
// there every RAFKA_GOSSIP_INTERVAL_MS (default 2000) with its addresses and partition count, so
// gateways learn it without being configured with it; RAFKA_STALENESS_MS (default 30000) is how
// long a silent node stays in its directory.
//
// With -mdns, gateways started with -mdns find this broker with no address configured (the
// LAN default for deployments; off by default so that nothing is sent to the network unasked).
// With -relay the broker keeps a connection to that relay and is reachable through it from
// nodes that cannot reach it directly, if they use a relay too (the same -relay, normally;
// nodes without one still reach it directly).
//
// Tracing is off unless the standard OTEL_* variables ask for it (see package telemetry).
// MESH_DISABLE_GRO=1 keeps UDP GRO off on the mesh socket (see package mesh/endpoint).
// The identity is the Ed25519 key in <data>/identity.key; the NodeId printed at start-up is
// what gateways put in their seed list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller"
	"github.com/meshkafka/meshkafka/broker/quorum"
	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway/direct"
	"github.com/meshkafka/meshkafka/internal/meshnode"
	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
	"github.com/meshkafka/meshkafka/mesh/ticket"
	"github.com/meshkafka/meshkafka/telemetry"
)

func main() {
	cli.Main("broker", func(ctx context.Context, args []string) error { return run(ctx, args, os.Getenv, os.Stdout, os.Stderr) })
}

type options struct {
	quorumSeeds  string
	quorumVoters int
	admin        string
	data         string
	bind         string
	trust        string
	partitions   int
	storage      cli.Storage
	rack         string
	defaultRF    int
	addrFile     string
	gossipPeers  string
	meshID       string
	printNodeID  bool
	verbose      bool
	metrics      string
	kafka        kafkaOptions
	// The authorization of the principals gateways act for (controller.AuthorizerConfig).
	meshAuthorizer bool
	meshSuperUsers string
	meshAllowNoACL bool
	cli.Reach
}

var brokerHelp = cli.Help{
	Summary: "a storage node of the mesh: partition logs, topics, groups and a member of the metadata quorum, serving the gateways it trusts",
	Usage:   "broker [flags]  |  broker quorum status|allow|disallow|add|remove|decommission [-admin host:port] [<NodeId>]",
	Examples: []string{
		"broker -data ./data/broker -trust <gateway-node-id>",
		"broker -data ./data/b1 -bind 127.0.0.1:7071 -quorum-seeds <id1>@127.0.0.1:7071,<id2>@127.0.0.1:7072,<id3>@127.0.0.1:7073 -admin 127.0.0.1:9644",
		"broker quorum status -admin 127.0.0.1:9644",
		"broker quorum decommission -wait -admin 127.0.0.1:9644 <NodeId>   # drain a broker's replicas before removing it",
		"MESHKAFKA_DATA=/var/lib/meshkafka broker -print-node-id",
	},
}

// mdnsConns, if set (tests), gives the mDNS sockets instead of the standard ones.
var mdnsConns func() []mdns.Conn

func parse(args []string, getenv cli.Getenv, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cli.StringVar(fs, &o.data, "data", getenv, "RAFKA_DATA_DIR", "./data/broker", "data directory")
	cli.StringVar(fs, &o.bind, "bind", getenv, "RAFKA_NODE_BIND_ADDR", "0.0.0.0:7070", "mesh UDP bind address")
	cli.StringVar(fs, &o.trust, "trust", getenv, "RAFKA_TRUSTED_NODES", "", "NodeIds allowed to send KafkaOps, comma separated")
	cli.PartitionsVar(fs, &o.partitions)
	o.storage.Register(fs)
	cli.StringVar(fs, &o.gossipPeers, "gossip-peers", getenv, "RAFKA_SEED_NODES", "", "control-plane bootstrap peers <nodeid>@host:port, comma separated")
	cli.MeshIDVar(fs, &o.meshID, getenv)
	fs.StringVar(&o.addrFile, "addr-file", "", "write <nodeid>@host:port here once serving")
	fs.BoolVar(&o.printNodeID, "print-node-id", false, "print this node's id and exit")
	fs.BoolVar(&o.verbose, "v", false, "debug logging")
	cli.MetricsVar(fs, &o.metrics)
	cli.StringVar(fs, &o.quorumSeeds, "quorum-seeds", getenv, "RAFKA_QUORUM_SEEDS", "", "seed brokers of the metadata quorum <nodeid>@host:port, comma separated; empty: a quorum of one")
	voters := getenv("RAFKA_QUORUM_VOTERS")
	fs.StringVar(&voters, "quorum-voters", voters, "voter target of the metadata quorum (default 3; 1 with no other seed) (env RAFKA_QUORUM_VOTERS)")
	cli.StringVar(fs, &o.admin, "admin", getenv, "RAFKA_ADMIN_ADDR", "", "loopback HTTP address of the admin API (quorum status/allow/add/remove/decommission); default off")
	cli.StringVar(fs, &o.rack, "rack", getenv, "RAFKA_RACK", "", "this broker's rack label: a partition's replicas go to distinct racks")
	rf := getenv("RAFKA_DEFAULT_REPLICATION_FACTOR")
	fs.StringVar(&rf, "default-replication-factor", rf, "replication factor of topics created with -1 and auto-created ones (default 3, or the live broker count when fewer) (env RAFKA_DEFAULT_REPLICATION_FACTOR)")
	o.Reach.Register(fs, getenv, "publish on and discover by mDNS on the LAN")
	o.kafka.register(fs, getenv)
	fs.BoolVar(&o.meshAuthorizer, "mesh-authorizer", false, "authorize the Kafka principal each gateway call acts for against the cluster's ACLs, whatever the gateway decided (the broker's side of the two-plane ACL check)")
	fs.StringVar(&o.meshSuperUsers, "mesh-super-users", "", "with -mesh-authorizer, principals allowed everything, e.g. User:admin;User:ops (Kafka's super.users)")
	fs.BoolVar(&o.meshAllowNoACL, "mesh-allow-everyone-if-no-acl-found", false, "with -mesh-authorizer, allow calls on resources no ACL applies to (Kafka's allow.everyone.if.no.acl.found)")
	if err := cli.ParseEnv(fs, args, getenv, brokerHelp); err != nil {
		return o, err
	}
	if err := o.kafka.check(); err != nil {
		return o, err
	}
	if voters != "" {
		v, err := strconv.Atoi(voters)
		if err != nil || v < 1 || v > 7 {
			return o, fmt.Errorf("-quorum-voters %q: want 1 to 7", voters)
		}
		o.quorumVoters = v
	}
	if rf != "" {
		v, err := strconv.Atoi(rf)
		if err != nil || v < 1 || v > 32 {
			return o, fmt.Errorf("-default-replication-factor %q: want 1 to 32", rf)
		}
		o.defaultRF = v
	}
	if o.admin != "" {
		if err := checkLoopback(o.admin); err != nil {
			return o, fmt.Errorf("-admin: %w", err)
		}
	}
	if err := o.Reach.Check(); err != nil {
		return o, err
	}
	if err := o.storage.Check(); err != nil {
		return o, err
	}
	return o, cli.CheckPartitions(o.partitions)
}

func run(ctx context.Context, args []string, getenv cli.Getenv, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "quorum" {
		return quorumCommand(ctx, args[1:], getenv, stdout, stderr)
	}
	o, err := parse(args, getenv, cli.HelpOr(args, stdout, stderr))
	if err != nil {
		return err
	}
	log := cli.Logger(stderr, slog.LevelInfo, o.verbose)
	sk, err := cli.Identity(o.data, "identity.key")
	if err != nil {
		return err
	}
	if o.printNodeID {
		fmt.Fprintln(stdout, sk.Public().String())
		return nil
	}
	peers, err := meshctl.ParsePeers(o.gossipPeers)
	if err != nil {
		return fmt.Errorf("-gossip-peers: %w", err)
	}
	ctlCfg, err := cli.MeshControl(getenv, meshctl.Config{Role: meshctl.RoleBroker})
	if err != nil {
		return err
	}
	ctlCfg.MeshID = o.meshID
	trust, err := brokermesh.ParseTrustList(o.trust)
	if err != nil {
		return err
	}
	if trust.Len() == 0 {
		log.Warn("no trusted NodeIds (-trust / RAFKA_TRUSTED_NODES): every KafkaOp connection will be refused")
	}
	var recent *telemetry.Recent // the last traces, for the status page (with -metrics)
	if o.metrics != "" {
		recent = telemetry.NewRecent(20, 64)
	}
	shutdownTracing, err := cli.SetupTelemetry(ctx, getenv, "meshkafka-broker", recent)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.Background())

	seeds, err := meshctl.ParsePeers(o.quorumSeeds)
	if err != nil {
		return fmt.Errorf("-quorum-seeds: %w", err)
	}
	onStop, stopped := cli.FailStop()
	creds, err := cli.OpenCredentials(o.data)
	if err != nil {
		return err
	}
	node, err := meshnode.Open(meshnode.Config{SecretKey: sk, BindAddr: o.bind, Reach: o.Reach.Reach, Logger: log,
		DisableGRO: cli.DisableGRO(getenv), MDNSConns: mdnsConns, IdleTimeout: cli.PeerIdleTimeout})
	if err != nil {
		return err
	}
	defer node.Close()
	ep := node.Endpoint
	cli.ProfileEndpoint(ep)
	var walCommits cli.CommitObserver // started with the metrics
	bcfg := broker.Config{Dir: o.data, DefaultPartitions: int32(o.partitions), Logger: log, OnStop: onStop}
	o.storage.Apply(&bcfg)
	bcfg.Store.OnCommit = walCommits.OnCommit
	var kl *kafkaListener
	if o.kafka.enabled() {
		if kl, err = openKafka(&o.kafka); err != nil {
			return err
		}
	}
	kafkaAddr := ""
	if kl != nil {
		kafkaAddr = kl.addr()
	}
	qn, err := controller.StartNode(ctx, controller.NodeConfig{
		Broker:   bcfg,
		Endpoint: ep, Seeds: seeds, Voters: o.quorumVoters, Trust: trust.Allows, Logger: log, Security: creds,
		Rack: o.rack, DefaultReplicationFactor: o.defaultRF, ClusterSecurity: clusterMode(seeds, sk.Public()),
		Kafka: kafkaAddr, Authorizer: o.meshAuthorizerConfig(),
	})
	if err != nil {
		if kl != nil {
			kl.close()
		}
		return fmt.Errorf("metadata quorum: %w", err)
	}
	defer qn.Close()
	stopKafka := func() error { return nil }
	var directBE *direct.Backend
	var statusSrv cli.LateServer // answers the status page's requests
	skl := kl
	if skl == nil && o.metrics != "" {
		skl = &kafkaListener{opts: &kafkaOptions{}} // the status page's server only, no listener
	}
	if skl != nil {
		be, stop, err := serveKafka(ctx, skl, qn, ep, log, stdout, &statusSrv)
		if err != nil {
			return err
		}
		if kafkaBackendHook != nil && kl != nil {
			kafkaBackendHook(kl.addr(), be)
		}
		if kl != nil {
			directBE = be
		}
		var once sync.Once
		var stopErr error
		stopKafka = func() error { once.Do(func() { stopErr = stop() }); return stopErr }
		defer stopKafka()
	}
	b := qn.Broker
	var metricsURL string
	if o.metrics != "" {
		var stopMetrics func()
		metricsURL, stopMetrics, err = cli.ServeMetrics(o.metrics, "meshkafka-broker", nil, log, brokerStatusPage(&statusSrv, ep, kl, recent))
		if err != nil {
			return err
		}
		defer stopMetrics()
		raft := func(f func(quorum.Status) uint64) func() int64 {
			return func() int64 { return int64(f(qn.Raft.Status())) }
		}
		walCommits.Start()
		if err := errors.Join(cli.BrokerMetrics(b), cli.EndpointMetrics(ep), directMetrics(directBE), cli.ObserveGauges(map[string]func() int64{
			"meshkafka.raft.term":    raft(func(s quorum.Status) uint64 { return s.Term }),
			"meshkafka.raft.commit":  raft(func(s quorum.Status) uint64 { return s.Commit }),
			"meshkafka.raft.applied": raft(func(s quorum.Status) uint64 { return s.Applied }),
			"meshkafka.raft.leader": raft(func(s quorum.Status) uint64 {
				if s.Leader != 0 && s.Leader == s.ID {
					return 1
				}
				return 0
			}),
		})); err != nil {
			return err
		}
	}
	if o.admin != "" {
		stopAdmin, err := serveAdmin(o.admin, adminHandler(qn.Controller.AdminHandler(), ep), log)
		if err != nil {
			return fmt.Errorf("-admin: %w", err)
		}
		defer stopAdmin()
		log.Info("admin API", "addr", o.admin)
	}

	addr := dialable(ep.Addr())
	g, err := gossip.Attach(ep, gossip.Config{})
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	defer g.Close()
	ctlCfg.Bootstrap = peers
	ctlCfg.Addrs = func() []netip.AddrPort { return dialable(ep.Addr()).Direct }
	ctlCfg.Load = func() (uint64, uint64) { return partitionCount(ctx, b), 0 }
	// Digests are believed only from members: the quorum's brokers (seeds, allowed,
	// registered) and the gateways this broker serves (-trust, gateway role).
	ctlCfg.Believe = func(d meshctl.Digest) bool { return qn.Controller.Trusts(d.Node) || trust.Allows(d.Node) }
	ctlCfg.OnChange = func(c meshctl.Change) {
		log.Info("control plane", "change", c.Kind.String(), "role", c.Digest.Role.String(), "member", c.Digest.Node.String(), "addrs", c.Digest.Addrs)
	}
	ctl, err := meshctl.Join(ctx, ep, g, ctlCfg)
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	defer ctl.Close()
	if o.metrics != "" {
		if err := cli.ControlMetrics(ctl, g); err != nil {
			return err
		}
	}
	// Every node heard on mDNS is asked into the control topic, so brokers and gateways on one
	// LAN form the control plane with no seeds.
	defer node.FollowMDNS(ctl.JoinPeers)()
	fmt.Fprintf(stdout, "broker %s serving KafkaOps (ALPN %s)\n", addr, brokermesh.ALPN)
	printBrokerBanner(stdout, o, addr.String(), ticket.Encode(addr), metricsURL)
	if o.addrFile != "" {
		if err := cli.WriteAddrFile(o.addrFile, addr.String()); err != nil {
			return err
		}
	}
	if o.Relay != "" {
		log.Info("home relay", "url", o.Relay)
	}
	var stopErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-stopped:
		// Fail-stop: serving on would answer errors forever; a supervisor restarts the
		// process and recovery reads whatever state is durable.
		log.Error("broker stopped after a write of unknown outcome (data or group offsets): EXITING so that a restart recovers", "err", err)
		stopErr = fmt.Errorf("broker stopped, restart to recover: %w", err)
	}
	_ = ctl.Close()
	_ = g.Close()
	return errors.Join(stopErr, stopKafka(), qn.Close(), node.Close())
}

// clusterMode reports whether the broker is started as part of a cluster (seeds other than
// itself): its security metadata then lives on the quorum rather than in files.
func clusterMode(seeds []endpoint.NodeAddr, self key.PublicKey) bool {
	for _, s := range seeds {
		if s.ID != self {
			return true
		}
	}
	return false
}

// partitionCount is the load the broker announces: the partitions it holds.
func partitionCount(ctx context.Context, b *broker.Broker) uint64 {
	md, err := b.Metadata(ctx, &brokerop.MetadataReq{})
	if err != nil {
		return 0
	}
	var n uint64
	for _, t := range md.Topics {
		n += uint64(len(t.Partitions))
	}
	return n
}

// dialable puts loopback first so that the printed address works on this machine.
func dialable(a endpoint.NodeAddr) endpoint.NodeAddr {
	var lo, rest []netip.AddrPort
	for _, d := range a.Direct {
		if d.Addr().IsLoopback() {
			lo = append(lo, d)
		} else {
			rest = append(rest, d)
		}
	}
	a.Direct = append(lo, rest...)
	return a
}

// printBrokerBanner says what this broker is, where its data is, what it trusts and joins,
// and what to run next.
func printBrokerBanner(w io.Writer, o options, addr, tk, metricsURL string) {
	quorum := "a quorum of one (no -quorum-seeds)"
	if o.quorumSeeds != "" {
		quorum = "seeds " + o.quorumSeeds
	}
	trust := o.trust
	if trust == "" {
		trust = "no gateway yet (add one with -trust <gateway node id>)"
	}
	admin := "off (-admin 127.0.0.1:9644 to use `broker quorum status`)"
	if o.admin != "" {
		admin = "http://" + o.admin + " (broker quorum status -admin " + o.admin + ")"
	}
	cli.Banner(w,
		[2]string{"role", "broker (partition logs, topics, groups; a member of the metadata quorum)"},
		[2]string{"address", addr},
		[2]string{"ticket", tk + " (accepted wherever an address is)"},
		[2]string{"data", o.data},
		[2]string{"quorum", quorum},
		[2]string{"trusts", trust},
		[2]string{"admin", admin},
		cli.StatusPageRow(metricsURL),
		[2]string{"metrics", metricsURL},
		[2]string{"next", "gateway -brokers " + addr + "   (then a Kafka client at the gateway, e.g. kcat -b localhost:9092 -L)"},
		[2]string{"stop", "Ctrl-C or SIGTERM (logs are synced first)"})
}

// meshAuthorizerConfig is the broker's authorization of gateways' principals (-mesh-authorizer).
func (o *options) meshAuthorizerConfig() controller.AuthorizerConfig {
	var su []string
	for _, p := range strings.FieldsFunc(o.meshSuperUsers, func(r rune) bool { return r == ';' || r == ',' }) {
		if p = strings.TrimSpace(p); p != "" {
			su = append(su, p)
		}
	}
	return controller.AuthorizerConfig{Enabled: o.meshAuthorizer, SuperUsers: su, AllowIfNoACL: o.meshAllowNoACL}
}
