// Command gateway serves the Kafka protocol (TCP :9092 by default) in front of an embedded
// broker (topics under -data/topics) and group coordinator (committed offsets under
// -data/groups).
//
//	go run ./cmd/gateway -data ./data
//	kcat -b localhost:9092 -L
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

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// backend is the embedded broker for topics plus the group coordinator for consumer groups.
type backend struct {
	*broker.Broker
	*group.Coordinator
}

// The embedded broker is a cluster of one with no metadata quorum: the quorum ops are not
// served (the gateway never calls them in this mode).
var noQuorum brokerop.Unimplemented

func (backend) ClusterBrokers(ctx context.Context, req *brokerop.ClusterBrokersReq) (*brokerop.ClusterBrokersResp, error) {
	return noQuorum.ClusterBrokers(ctx, req)
}

func (backend) Placement(ctx context.Context, req *brokerop.PlacementReq) (*brokerop.PlacementResp, error) {
	return noQuorum.Placement(ctx, req)
}

func (backend) QuorumJoin(ctx context.Context, req *brokerop.QuorumJoinReq) (*brokerop.QuorumJoinResp, error) {
	return noQuorum.QuorumJoin(ctx, req)
}

func (backend) QuorumAdmin(ctx context.Context, req *brokerop.QuorumAdminReq) (*brokerop.QuorumAdminResp, error) {
	return noQuorum.QuorumAdmin(ctx, req)
}

var (
	_ gateway.Backend      = backend{}
	_ gateway.GroupBackend = backend{}
)

func main() {
	cli.Main("gateway", func(ctx context.Context, args []string) error { return run(ctx, args, os.Getenv, os.Stdout, os.Stderr) })
}

// options are the parsed flags and environment.
type options struct {
	listen         string
	data           string
	partitions     int
	advertisedHost string
	advertisedPort int
	maxFrame       int
	sessionSlots   int
	sessionParts   int
	verbose        bool
	meshOptions
}

func parse(args []string, getenv cli.Getenv, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", ":9092", "address to listen on")
	fs.StringVar(&o.data, "data", "./data", "data directory")
	cli.PartitionsVar(fs, &o.partitions)
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
	o.meshOptions.register(fs, getenv)
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	if o.sessionSlots < 0 || o.sessionParts < 1 {
		return o, fmt.Errorf("-fetch-session-slots %d / -fetch-session-partitions %d out of range", o.sessionSlots, o.sessionParts)
	}
	if o.sessionSlots == 0 {
		o.sessionSlots = -1 // gateway.FetchSessionConfig: negative turns sessions off
	}
	if err := cli.CheckPartitions(o.partitions); err != nil {
		return o, err
	}
	if o.advertisedPort < 0 || o.advertisedPort > 65535 {
		return o, fmt.Errorf("-advertised-port %d out of range", o.advertisedPort)
	}
	return o, nil
}

// run serves until ctx is done. It prints the bound address and how to connect on stdout.
func run(ctx context.Context, args []string, getenv cli.Getenv, stdout, stderr io.Writer) error {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := cli.Logger(stderr, slog.LevelInfo, o.verbose)

	if o.printNodeID {
		return printNodeID(o, stdout)
	}
	var be fullBackend
	var closeBackend func() error
	var stopped <-chan error     // embedded broker's fail-stop (nil in mesh mode)
	var inProcess *broker.Broker // the embedded broker (nil in mesh mode), for its stats
	if o.meshMode() {
		if be, closeBackend, err = openMeshBackend(ctx, o, getenv, log); err != nil {
			return err
		}
	} else {
		shutdownTracing, err := cli.SetupTelemetry(ctx, getenv, "meshkafka-gateway")
		if err != nil {
			return err
		}
		defer shutdownTracing(context.Background())
		var onStop func(error)
		onStop, stopped = cli.FailStop()
		b, gc, closeAll, err := cli.OpenBroker(o.data, o.partitions, log, onStop)
		if err != nil {
			return err
		}
		be, closeBackend, inProcess = backend{b, gc}, closeAll, b
	}
	defer closeBackend()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := o.advertisedHost
	if host == "" {
		host = "localhost"
		if h, _, err := net.SplitHostPort(o.listen); err == nil && h != "" {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				host = h
			}
		}
	}
	port := o.advertisedPort
	if port == 0 {
		port = addr.Port
	}
	srv, err := gateway.NewServer(gateway.Config{
		Backend: be, AdvertisedHost: host, AdvertisedPort: int32(port),
		MaxFrameBytes: o.maxFrame, Logger: log,
		FetchSessions: gateway.FetchSessionConfig{Slots: o.sessionSlots, MaxPartitions: o.sessionParts},
	})
	if err != nil {
		ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	fmt.Fprintf(stdout, "gateway listening on %s (advertised %s), data in %s\n", addr, hp, o.data)
	fmt.Fprintf(stdout, "try: kcat -b %s -L\n", hp)
	if inProcess != nil {
		defer printStatsOnSignal(inProcess, stdout)()
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
