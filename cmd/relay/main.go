// Command relay runs an iroh-0.28.1-compatible relay server (relay protocol v3 over the
// "iroh derp http" upgrade) plus a STUN responder, so nodes never depend on someone else's
// relay.
//
//	relay [-addr :3340] [-cert cert.pem -key key.pem] [-stun :3478] [-rate-limit BYTES/s]
//
// Without -cert/-key it serves plain HTTP, which is for local use: an iroh node reaches it
// when a peer's address carries relay URL http://HOST:PORT. With both it serves HTTPS (TLS
// 1.2+). -stun "" disables STUN. On start it prints one line per listener:
//
//	relay: serving http://127.0.0.1:3340
//	stun: serving udp 127.0.0.1:3478
//
// SIGINT/SIGTERM shut it down cleanly.
//
// Every flag is also read from MESHKAFKA_<FLAG> (-addr from MESHKAFKA_ADDR, -rate-limit from
// MESHKAFKA_RATE_LIMIT); the command line wins. --help prints a summary, examples and the flags.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
	"github.com/meshkafka/meshkafka/mesh/stun"
)

// The limits a relay holds by default: generous for a node (a QUIC stream through the relay
// moves about 300 MB/s on loopback, replication far less), and they bound what one host can
// take from everyone else however many node keys it makes.
const (
	defaultKeyRate    = 64 << 20  // bytes/s per node key
	defaultIPRate     = 256 << 20 // bytes/s per IP address, all its keys together
	defaultConnsPerIP = 256
)

func main() {
	cli.Main("relay", func(ctx context.Context, args []string) error { return run(ctx, args, os.Stdout, os.Stderr) })
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":3340", "HTTP(S) listen address")
	certFile := fs.String("cert", "", "TLS certificate (PEM); with -key, serve HTTPS")
	keyFile := fs.String("key", "", "TLS private key (PEM)")
	stunAddr := fs.String("stun", fmt.Sprintf(":%d", stun.DefaultPort), "STUN UDP listen address (empty disables)")
	rateLimit := fs.Int64("rate-limit", defaultKeyRate, "per-client (per node key) send limit in bytes/s (0 = unlimited)")
	rateBurst := fs.Int("rate-burst", 0, "per-client burst in bytes (default max(rate/10, 128 KiB))")
	ipRate := fs.Int64("ip-rate-limit", defaultIPRate, "send limit in bytes/s for all clients from one IP address together; node keys are free, so this is what bounds one host (0 = unlimited)")
	ipBurst := fs.Int("ip-rate-burst", 0, "per-IP burst in bytes (default max(ip-rate-limit/10, 128 KiB))")
	maxConnsIP := fs.Int("max-conns-per-ip", defaultConnsPerIP, "connections one IP address may hold open, handshaking ones included; more get HTTP 429 (0 = unlimited)")
	keepAlive := fs.Duration("keepalive", 60*time.Second, "interval between KeepAlive frames")
	verbose := fs.Bool("v", false, "log connection events")
	var metricsAddr string
	cli.MetricsVar(fs, &metricsAddr)
	if err := cli.ParseEnv(fs, args, os.Getenv, cli.Help{
		Summary: "an iroh-0.28.1-compatible relay server (DERP over HTTP(S)) plus a STUN responder, so nodes never depend on someone else's relay",
		Usage:   "relay [flags]",
		Examples: []string{
			"relay -addr 127.0.0.1:3340 -stun 127.0.0.1:3478",
			"relay -addr :443 -cert cert.pem -key key.pem -rate-limit 1000000",
			"MESHKAFKA_ADDR=:3340 relay",
		},
		Out: stdout,
	}); err != nil {
		return err
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("-cert and -key go together")
	}
	log := cli.Logger(stderr, slog.LevelWarn, *verbose)

	var tlsCfg *tls.Config
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("load TLS key pair: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"}}
	}

	srv := relayserver.New(relayserver.Config{
		Logger: log, KeepAlive: *keepAlive, RateLimit: float64(*rateLimit), RateBurst: *rateBurst,
		IPRateLimit: float64(*ipRate), IPRateBurst: *ipBurst, MaxConnsPerIP: *maxConnsIP,
	})
	defer srv.Close()
	if metricsAddr != "" {
		_, stopMetrics, err := cli.ServeMetrics(metricsAddr, "meshkafka-relay", stdout, log, nil)
		if err != nil {
			return err
		}
		defer stopMetrics()
		u := func(f func(relayserver.Stats) uint64) func() int64 {
			return func() int64 { return int64(f(srv.Stats())) }
		}
		if err := cli.Observe(map[string]func() int64{
			"meshkafka.relay.connections.accepted":   u(func(s relayserver.Stats) uint64 { return s.Accepted }),
			"meshkafka.relay.handshakes.failed":      u(func(s relayserver.Stats) uint64 { return s.HandshakeFailed }),
			"meshkafka.relay.packets.sent":           u(func(s relayserver.Stats) uint64 { return s.PacketsSent }),
			"meshkafka.relay.bytes.sent":             u(func(s relayserver.Stats) uint64 { return s.BytesSent }),
			"meshkafka.relay.packets.dropped_nopeer": u(func(s relayserver.Stats) uint64 { return s.DroppedNoPeer }),
			"meshkafka.relay.packets.dropped_queue":  u(func(s relayserver.Stats) uint64 { return s.DroppedQueue }),
			"meshkafka.relay.rate_limited":           u(func(s relayserver.Stats) uint64 { return s.RateLimited }),
			"meshkafka.relay.ip_rate_limited":        u(func(s relayserver.Stats) uint64 { return s.IPRateLimited }),
			"meshkafka.relay.refused_per_ip":         u(func(s relayserver.Stats) uint64 { return s.RefusedPerIP }),
		}); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		ln = tls.NewListener(ln, tlsCfg)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "relay: serving %s://%s\n", scheme, ln.Addr())

	var stunSrv *stun.Server
	if *stunAddr != "" {
		pc, err := net.ListenPacket("udp", *stunAddr)
		if err != nil {
			_ = hs.Close()
			<-httpDone
			return err
		}
		stunSrv = stun.NewServer(pc, log)
		go func() { _ = stunSrv.Serve() }()
		fmt.Fprintf(stdout, "stun: serving udp %s\n", pc.LocalAddr())
	}

	select {
	case <-ctx.Done():
	case err = <-httpDone:
		httpDone <- err
	}
	// Shut down: stop accepting, disconnect relay clients (hijacked connections are not
	// tracked by http.Server), then wait for everything.
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Close()
	_ = hs.Shutdown(shutCtx)
	serveErr := <-httpDone
	if stunSrv != nil {
		_ = stunSrv.Close()
		<-stunSrv.Done()
	}
	if ctx.Err() == nil && serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}
