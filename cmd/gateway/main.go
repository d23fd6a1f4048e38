// Command gateway serves the Kafka protocol (TCP :9092 by default) in front of an embedded
// broker (topics under -data/topics) and group coordinator (committed offsets under
// -data/groups).
//
//	go run ./cmd/gateway -data ./data
//	kcat -b localhost:9092 -L
//
// Every flag is also read from MESHKAFKA_<FLAG> (-data from MESHKAFKA_DATA, -addr-file from
// MESHKAFKA_ADDR_FILE): the command line wins, then MESHKAFKA_*, then the Rafka-style names in
// brackets (kept as aliases), then the default. --help prints a summary, examples and the flags,
// and exits 0.
//
// Flags (environment in brackets):
//
//	-listen            address to listen on (default ":9092")
//	-data              data directory (default "./data")
//	-partitions        partition count of auto-created topics (default 1)
//	-advertised-host   host clients are told to dial [RAFKA_KAFKA_CLIENT_HOST]
//	                   (default: the listen host, or localhost for a wildcard listen)
//	-advertised-port   port clients are told to dial [RAFKA_KAFKA_CLIENT_PORT]
//	                   (default: the port actually listened on)
//	-max-frame-bytes   largest request accepted (default 100 MiB)
//	-fetch-session-slots       fetch sessions (KIP-227) kept (default 1000; 0: none)
//	-fetch-session-partitions  partitions all fetch sessions may hold (default 1,000,000)
//	-v                 debug logging
//
// Security (Kafka plane; see the README's Security section):
//
//	-listeners         Kafka listeners, e.g. SASL_SSL://:9093,PLAINTEXT://:9092 [RAFKA_LISTENERS]
//	                   (default PLAINTEXT on -listen)
//	-tls-cert, -tls-key  PEM server certificate and key, reloaded when they change
//	                   [RAFKA_TLS_CERT, RAFKA_TLS_KEY]
//	-tls-client-ca     CA bundle for client certificates [RAFKA_TLS_CLIENT_CA]
//	-ssl-client-auth   none, requested or required [RAFKA_SSL_CLIENT_AUTH]
//	-sasl-mechanisms   default SCRAM-SHA-256,SCRAM-SHA-512,PLAIN [RAFKA_SASL_MECHANISMS]
//	-reauth-ms         connections.max.reauth.ms (0: off)
//	-sasl-users        file of user:password lines created at start if absent [RAFKA_SASL_USERS]
//	-oauth-jwks-file   JWKS file; enables OAUTHBEARER [RAFKA_OAUTH_JWKS_FILE], with
//	                   -oauth-issuer, -oauth-audience, -oauth-principal-claim (default sub)
//	                   and -oauth-clock-skew-seconds (default 30); -oauth-unsecured-tokens
//	                   instead accepts unsigned tokens (Kafka's default; development only)
//	-failed-auth-delay-ms  delay of a failed authentication's answer (default 100)
//	-auth-failure-burst, -auth-failure-refill-ms  brute-force lockout per source address
//	                   (default 20 failures, one forgiven every 3 s)
//	-init-secure DIR   write a self-signed CA, server certificate and admin password there
//	                   (as `go tool task up-secure` does) and exit
//
// SIGINT or SIGTERM shuts down cleanly: the listener and connections close, in-flight
// requests finish or are cancelled, and the broker syncs and closes its logs.
//
// Tracing is off unless the standard OTEL_* variables ask for it (see package telemetry).
// MESH_DISABLE_GRO=1 keeps UDP GRO off on the mesh socket in mesh mode (see package
// mesh/endpoint). The flags shared with cmd/broker and their variables are read by package
// cmd/internal/cli.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/kafkawire"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/telemetry"
)

// backend is the embedded broker for topics plus the group coordinator for consumer groups.
// The embedded broker is a cluster of one with no metadata quorum: the quorum ops are not
// served (the gateway never calls them in this mode).
type backend struct {
	*broker.Broker
	*group.Coordinator
	broker.Security
	brokerop.NoQuorum
}

var (
	_ gateway.Backend      = backend{}
	_ gateway.GroupBackend = backend{}
)

func main() {
	cli.Main("gateway", func(ctx context.Context, args []string) error { return run(ctx, args, os.Getenv, os.Stdout, os.Stderr) })
}

var gatewayHelp = cli.Help{
	Summary: "the Kafka front door (TCP :9092): serves Kafka clients from an embedded broker, or from brokers over the mesh with -brokers",
	Usage:   "gateway [flags]",
	Examples: []string{
		"gateway -data ./data                      # embedded broker: one process, data under ./data",
		"gateway -data ./data/gateway -brokers <broker-node-id>@127.0.0.1:7070   # brokers over the mesh",
		"gateway -listen :19092 -data ./data",
		"gateway -data ./data/gateway -print-node-id",
	},
}

// options are the parsed flags and environment.
type options struct {
	listen         string
	data           string
	partitions     int
	storage        cli.Storage
	advertisedHost string
	advertisedPort int
	maxFrame       int
	sessionSlots   int
	sessionParts   int
	verbose        bool
	metrics        string
	meshOptions
	security cli.KafkaSecurity
	// -init-secure, -init-secure-hosts (initsecure.go)
	initSecure, initSecureHost string
	directBrokers              bool
}

func parse(args []string, getenv cli.Getenv, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", ":9092", "address to listen on")
	fs.StringVar(&o.data, "data", "./data", "data directory")
	cli.PartitionsVar(fs, &o.partitions)
	o.storage.Register(fs)
	cli.StringVar(fs, &o.advertisedHost, "advertised-host", getenv, "RAFKA_KAFKA_CLIENT_HOST", "", "host clients are told to dial")
	port := 0
	if p := getenv("RAFKA_KAFKA_CLIENT_PORT"); p != "" {
		var err error
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return o, fmt.Errorf("RAFKA_KAFKA_CLIENT_PORT=%q is not a port", p)
		}
	}
	fs.IntVar(&o.advertisedPort, "advertised-port", port, "port clients are told to dial (env RAFKA_KAFKA_CLIENT_PORT)")
	fs.IntVar(&o.maxFrame, "max-frame-bytes", kafkawire.DefaultMaxFrame, "largest request accepted")
	fs.IntVar(&o.sessionSlots, "fetch-session-slots", 1000, "fetch sessions kept (Kafka's max.incremental.fetch.session.cache.slots; 0: none)")
	fs.IntVar(&o.sessionParts, "fetch-session-partitions", 1_000_000, "partitions all fetch sessions together may hold (~80 bytes each)")
	fs.BoolVar(&o.verbose, "v", false, "debug logging")
	cli.MetricsVar(fs, &o.metrics)
	o.meshOptions.register(fs, getenv)
	o.security.Register(fs, getenv, "listeners", "listen", true)
	fs.StringVar(&o.initSecure, "init-secure", "", "create a self-signed CA, a server certificate and an admin password in this directory (files kept if present), print the flags that use them, and exit")
	fs.StringVar(&o.initSecureHost, "init-secure-hosts", "", "extra comma-separated host names or IPs for the -init-secure server certificate (localhost, 127.0.0.1, ::1 and the hostname are always in it)")
	fs.BoolVar(&o.directBrokers, "direct-brokers", false, "list brokers that advertise a Kafka listener of their own (broker -kafka-listen) at that address in Metadata, so clients send each partition's requests to its leader broker directly; off: every broker is listed at this gateway, which routes over the mesh")
	if err := cli.ParseEnv(fs, args, getenv, gatewayHelp); err != nil {
		return o, err
	}
	if o.sessionSlots < 0 || o.sessionParts < 1 {
		return o, fmt.Errorf("-fetch-session-slots %d / -fetch-session-partitions %d out of range", o.sessionSlots, o.sessionParts)
	}
	if o.sessionSlots == 0 {
		o.sessionSlots = -1 // gateway.FetchSessionConfig: negative turns sessions off
	}
	if err := o.storage.Check(); err != nil {
		return o, err
	}
	if err := cli.CheckPartitions(o.partitions); err != nil {
		return o, err
	}
	if o.advertisedPort < 0 || o.advertisedPort > 65535 {
		return o, fmt.Errorf("-advertised-port %d out of range", o.advertisedPort)
	}
	listenSet := false
	fs.Visit(func(f *flag.Flag) { listenSet = listenSet || f.Name == "listen" })
	if err := o.security.Check(o.listen, listenSet, o.advertisedPort); err != nil {
		return o, err
	}
	return o, nil
}

// run serves until ctx is done. It prints the bound address and how to connect on stdout.
func run(ctx context.Context, args []string, getenv cli.Getenv, stdout, stderr io.Writer) error {
	o, err := parse(args, getenv, cli.HelpOr(args, stdout, stderr))
	if err != nil {
		return err
	}
	log := cli.Logger(stderr, slog.LevelInfo, o.verbose)

	if o.printNodeID {
		return printNodeID(o, stdout)
	}
	if o.initSecure != "" {
		return initSecure(o.initSecure, o.initSecureHost, stdout)
	}
	var be fullBackend
	var closeBackend func() error
	var stopped <-chan error          // embedded broker's fail-stop (nil in mesh mode)
	var inProcess *broker.Broker      // the embedded broker (nil in mesh mode), for its stats
	var meshEP *endpoint.Endpoint     // the gateway's mesh endpoint (mesh mode, or -kafka-over-mesh)
	var walCommits cli.CommitObserver // the embedded broker's group commits, once metrics run
	var recent *telemetry.Recent      // the last traces, for the status page (with -metrics)
	if o.metrics != "" {
		recent = telemetry.NewRecent(20, 64)
	}
	if o.meshMode() {
		if be, closeBackend, err = openMeshBackend(ctx, o, getenv, log, recent, &meshEP); err != nil {
			return err
		}
		cli.ProfileEndpoint(meshEP)
	} else {
		shutdownTracing, err := cli.SetupTelemetry(ctx, getenv, "meshkafka-gateway", recent)
		if err != nil {
			return err
		}
		defer shutdownTracing(context.Background())
		var onStop func(error)
		onStop, stopped = cli.FailStop()
		b, gc, closeAll, err := cli.OpenBroker(o.data, o.partitions, o.storage, log, onStop, walCommits.OnCommit)
		if err != nil {
			return err
		}
		creds, err := cli.OpenCredentials(o.data)
		if err != nil {
			closeAll()
			return err
		}
		be, closeBackend, inProcess = backend{Broker: b, Coordinator: gc, Security: creds}, closeAll, b
	}
	defer closeBackend()
	var metricsURL string
	var statusSrv cli.LateServer // the status page's server, once it exists
	if o.metrics != "" {
		var stopMetrics func()
		metricsURL, stopMetrics, err = cli.ServeMetrics(o.metrics, "meshkafka-gateway", nil, log, statusPage(o, &statusSrv, meshEP, recent))
		if err != nil {
			return err
		}
		defer stopMetrics()
		if inProcess != nil {
			err = cli.BrokerMetrics(inProcess)
			walCommits.Start()
		} else if meshEP != nil {
			err = cli.EndpointMetrics(meshEP)
		}
		if err = errors.Join(err, lagMetrics(&statusSrv)); err != nil {
			return err
		}
	}

	var users []cli.UserPassword
	if o.security.SASLUsers != "" {
		if users, err = cli.ReadUsers(o.security.SASLUsers); err != nil {
			return err
		}
	}
	bootCtx, stopBoot := context.WithCancel(ctx)
	booted := make(chan struct{})
	defer func() { stopBoot(); <-booted }()
	if inProcess != nil {
		close(booted)
		if err := cli.BootstrapUsers(ctx, be, users, log); err != nil {
			return err
		}
	} else {
		// Mesh mode: the brokers may not be reachable yet; keep trying in the background.
		go func() {
			defer close(booted)
			cli.BootstrapUsersUntilDone(bootCtx, be, users, log, time.Second)
		}()
	}

	specs := o.security.Listeners
	lns := make([]net.Listener, len(specs))
	for i, l := range specs {
		if lns[i], err = net.Listen("tcp", l.Addr); err != nil {
			for _, ln := range lns[:i] {
				ln.Close()
			}
			return fmt.Errorf("listener %s: %w", l, err)
		}
	}
	addr := lns[0].Addr().(*net.TCPAddr)
	host := o.advertisedHost
	if host == "" {
		host = "localhost"
		if h, _, err := net.SplitHostPort(specs[0].Addr); err == nil && h != "" {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				host = h
			}
		}
	}
	port := o.advertisedPort
	if port == 0 {
		port = addr.Port
	}
	cfg := gateway.Config{
		Backend: be, AdvertisedHost: host, AdvertisedPort: int32(port),
		MaxFrameBytes: o.maxFrame, Logger: log,
		FetchSessions: gateway.FetchSessionConfig{Slots: o.sessionSlots, MaxPartitions: o.sessionParts},
		DirectBrokers: o.directBrokers,
	}
	err = o.security.ServerConfig(&cfg, log)
	var srv *gateway.Server
	if err == nil {
		srv, err = gateway.NewServer(cfg)
	}
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	statusSrv.Set(srv, net.JoinHostPort(host, strconv.Itoa(port)))
	served := make(chan error, len(lns))
	for i, ln := range lns {
		adv := int32(ln.Addr().(*net.TCPAddr).Port)
		if i == 0 {
			adv = int32(port)
		}
		go func() { served <- srv.ServeListener(ln, specs[i].Protocol, adv) }()
	}
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	fmt.Fprintf(stdout, "gateway listening on %s (advertised %s), data in %s\n", addr, hp, o.data)
	fmt.Fprintf(stdout, "try: kcat -b %s%s -L\n", hp, cli.KcatHint(specs[0].Protocol))
	for i, l := range specs {
		fmt.Fprintf(stdout, "listener %s://%s\n", l.Protocol, lns[i].Addr())
	}
	printGatewayBanner(stdout, o, hp, specs[0].Protocol, metricsURL)
	if inProcess != nil {
		defer printStatsOnSignal(inProcess, stdout)()
	}
	if o.kafkaOverMesh {
		stopKafkaMesh, err := serveKafkaOverMesh(ctx, o, getenv, log, srv, meshEP, stdout)
		if err != nil {
			srv.Close()
			return err
		}
		defer stopKafkaMesh()
	}

	var stopErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-served:
	case serr := <-stopped:
		// Fail-stop: serving on would answer errors forever; a supervisor restarts the
		// process and recovery reads whatever state is durable.
		log.Error("embedded broker stopped after a write of unknown outcome (data or group offsets): EXITING so that a restart recovers", "err", serr)
		stopErr = fmt.Errorf("broker stopped, restart to recover: %w", serr)
	}
	srv.Close()
	for range len(lns) - 1 {
		if e := <-served; err == nil && !errors.Is(e, gateway.ErrServerClosed) {
			err = e
		}
	}
	if err == nil {
		err = <-served
	}
	if errors.Is(err, gateway.ErrServerClosed) {
		err = nil
	}
	if stopErr != nil {
		err = stopErr
	}
	if cerr := closeBackend(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// printGatewayBanner says what this gateway is: its mode (loudly when it runs an embedded
// broker), NodeId, data, and what to run next.
func printGatewayBanner(w io.Writer, o options, hp string, protocol gateway.SecurityProtocol, metricsURL string) {
	rows := [][2]string{{"role", "gateway (Kafka front door)"}}
	if o.meshMode() {
		id := "?"
		if sk, err := identity(o); err == nil {
			id = sk.Public().String()
		}
		brokers := o.brokers
		if brokers == "" {
			brokers = "found by mDNS"
		}
		rows = append(rows,
			[2]string{"mode", "mesh: Kafka requests go to brokers over the mesh"},
			[2]string{"node id", id + " (brokers must trust it: broker -trust <this id>)"},
			[2]string{"brokers", brokers},
			[2]string{"data", o.data + " (this gateway's identity only; records live on the brokers)"})
	} else {
		fmt.Fprintln(w, "NOTE: no -brokers given, so this gateway runs an EMBEDDED BROKER: topics and groups are stored by this process.")
		rows = append(rows,
			[2]string{"mode", "embedded broker, one process, no mesh (to use brokers: -brokers <nodeid>@host:port, or `go tool task up`)"},
			[2]string{"data", o.data + " (topics, consumer groups, credentials)"})
	}
	rows = append(rows,
		cli.StatusPageRow(metricsURL),
		[2]string{"metrics", metricsURL},
		[2]string{"next", "kcat -b " + hp + cli.KcatHint(protocol) + " -L"},
		[2]string{"stop", "Ctrl-C or SIGTERM (data is synced first)"})
	cli.Banner(w, rows...)
}
