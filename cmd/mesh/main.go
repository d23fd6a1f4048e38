// Command mesh is a small operator tool for the mesh endpoint, in the
// spirit of `iroh doctor`.
//
//	mesh id           [-data DIR] [-bind ADDR] [-mdns [-mdns-wait D]]
//	mesh serve-echo   [-data DIR] [-bind ADDR] [-alpn ALPN] [-relay URL] [-mdns]
//	mesh echo         NODEADDR [-alpn ALPN] [-msg TEXT | -file PATH|-] [-uni | -datagram] [-mdns] [relay flags]
//	mesh ping         NODEADDR [-alpn ALPN] [-count N] [-interval D] [-until-direct] [-mdns] [relay flags]
//	mesh throughput   NODEADDR [-alpn ALPN] [-streams N] [-bytes M] [relay flags]
//	mesh chat         ROOM [NODEADDR ...] [-data DIR] [-bind ADDR] [relay flags]
//
// Relay flags: -relay URL (our home relay), -peer-relay URL (the peer's
// relay, for dialing), -relay-only (no direct UDP to peers). With any of
// them the endpoint runs over mesh/magicsock, which reaches peers through
// the relay until a direct path is confirmed; without them it is plain
// UDP and nothing but the given addresses is contacted.
//
// NODEADDR is "<nodeid>@host:port[,host:port...]" as serve-echo prints it, or the node ticket
// it prints (iroh 0.28's "node…" string: node id, relay URL and addresses in one).
// The echo protocol is ALPN /meshkafka/echo/0 by default: every
// bidirectional stream is echoed back until the dialer finishes its send
// side, every uni stream is answered by a uni stream with the same bytes
// (echo -uni), and every QUIC datagram is sent back (echo -datagram; one
// datagram, resent up to 5 times if no echo comes, so it must fit one QUIC
// packet). echo -file sends a file's bytes (-file - : stdin) and reports
// their size and SHA-256 instead of printing them.
//
// echo, ping, throughput and connect print the path the connection uses
// ("path: direct 192.0.2.1:4433 rtt 1.2ms" or "path: relay URL rtt 30ms";
// connect on stderr): the peer's real UDP address, never magicsock's
// mapped placeholder, and QUIC's smoothed RTT. ping echoes 8 bytes per
// round on a new stream and prints each round's time and path, with a
// "path switched: relay -> direct …" line when the path changes;
// -until-direct stops at the first direct round.
//
// -mdns (id, serve-echo, echo, ping, listen, connect) publishes the node
// and discovers others on the LAN by mDNS (package mesh/discovery/mdns,
// iroh's local swarm discovery); NODEADDR may then be a bare NodeId. id
// -mdns lists the nodes it hears within -mdns-wait. -alpn picks another ALPN (for example a Rust peer's echo protocol
// with the same semantics). throughput sends M bytes on each of N
// parallel streams of one connection, reads the echo back concurrently,
// checks it, and reports MB/s (payload bytes each way / wall time).
//
// chat joins a gossip room (iroh-gossip 0.28 protocol, ALPN /iroh-gossip/0)
// whose topic id is blake3-256 of the room name, bootstrapping from the
// NODEADDRs given (none: wait for others to join through us; a literal word
// "bootstrap" before them is allowed). It prints its own NODEADDR first, then
// a "# room" line once it is in the topic (others can join through it from
// then on), "# neighbor up/down" lines, and every line received as
// "<author short id>: text"; it broadcasts each line typed on stdin. A line
// typed while no neighbor is up reaches nobody. Messages are signed by their
// author (format in chat.go). EOF on stdin stops sending; Ctrl-C quits.
//
// Every flag is also read from MESHKAFKA_<FLAG> (-relay from MESHKAFKA_RELAY); the command line
// wins. `mesh --help` and `mesh <command> --help` print the usage and exit 0.
//
// MESH_DISABLE_GRO=1 keeps UDP GRO off on a plain endpoint's socket (to compare throughput).
//
// Without -data the identity is fresh for each run; with it, the key is
// kept in DIR/identity (0600). No relay or discovery server is contacted.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/mesh/discovery"
	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/kafkapipe"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
	"github.com/meshkafka/meshkafka/mesh/ticket"
)

// statusOut receives what a pipe command says about itself (its ticket): not stdout, which
// carries the pipe's data. Tests replace it.
var statusOut io.Writer = os.Stderr

// EchoALPN is the default echo protocol.
const EchoALPN = "/meshkafka/echo/0"

func main() {
	cli.Main("mesh", func(ctx context.Context, args []string) error { return runIO(ctx, args, os.Stdin, os.Stdout) })
}

const usage = `usage:
  mesh id           [-data DIR] [-bind ADDR] [-mdns [-mdns-wait D]]
  mesh serve-echo   [-data DIR] [-bind ADDR] [-alpn ALPN] [-relay URL] [-mdns]
  mesh echo         NODEADDR [-alpn ALPN] [-msg TEXT | -file PATH|-] [-uni | -datagram] [-mdns] [-relay URL] [-peer-relay URL] [-relay-only]
  mesh ping         NODEADDR [-alpn ALPN] [-count N] [-interval D] [-until-direct] [-mdns] [-relay URL] [-peer-relay URL] [-relay-only]
  mesh throughput   NODEADDR [-alpn ALPN] [-streams N] [-bytes M] [-relay URL] [-peer-relay URL] [-relay-only]
  mesh chat         ROOM [bootstrap] [NODEADDR ...] [-data DIR] [-bind ADDR] [-relay URL] [-peer-relay URL] [-relay-only]
  mesh listen       [-data DIR] [-bind ADDR] [-relay URL] [-mdns]            (stdin/stdout pipe; dumbpipe's protocol)
  mesh connect      NODEADDR [-relay URL] [-peer-relay URL]           (stdin/stdout pipe)
  mesh listen-tcp   -host HOST:PORT [-data DIR] [-bind ADDR] [-relay URL]   (forward pipes to a TCP service)
  mesh connect-tcp  NODEADDR [-addr 127.0.0.1:PORT] [-relay URL] [-peer-relay URL]   (a local TCP port over the mesh)
  mesh kafka-proxy  GATEWAY [-addr 127.0.0.1:9092] [-advertise HOST:PORT] [-relay URL] [-stun HOST:PORT] [-peer-relay URL]   (Kafka from anywhere: a local :9092 for a gateway run with -kafka-over-mesh)`

const meshExamples = `  mesh id -data ./data/mesh
  mesh serve-echo -bind 127.0.0.1:4433          # prints its NODEADDR
  mesh echo <nodeid>@127.0.0.1:4433 -msg hi
  mesh echo <ticket> -uni -file ./blob.bin      # or -datagram; -file - reads stdin
  mesh ping <ticket> -relay URL -until-direct    # path and RTT per round
  mesh serve-echo -mdns   then   mesh echo <nodeid> -mdns
  mesh throughput <nodeid>@127.0.0.1:4433 -streams 4 -bytes 67108864
  mesh chat my-room <nodeid>@127.0.0.1:4433
  mesh listen-tcp -host 127.0.0.1:9092          # prints a ticket (on stderr)
  mesh connect-tcp <ticket> -addr 127.0.0.1:19092   # a local port reaching that service
  echo hi | mesh connect <ticket>`

func run(ctx context.Context, args []string, out io.Writer) error {
	return runIO(ctx, args, os.Stdin, out)
}

func runIO(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	if args[0] == "help" || cli.IsHelp(args[:1]) {
		fmt.Fprintf(out, "mesh: a small operator tool for the iroh-compatible mesh endpoint (identity, echo, throughput, gossip chat)\n\n%s\n\nexamples:\n%s\n", usage, meshExamples)
		return flag.ErrHelp
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", "", "directory keeping the node identity (default: fresh identity)")
	bind := fs.String("bind", "0.0.0.0:0", "UDP address to bind")
	alpn := fs.String("alpn", EchoALPN, "echo protocol ALPN")
	msg := fs.String("msg", "hello from meshkafka", "echo: message to send")
	file := fs.String("file", "", "echo: send this file's bytes instead of -msg (\"-\": read stdin); the echo is checked and summarised, not printed")
	uni := fs.Bool("uni", false, "echo: send on a uni stream; the server echoes on a uni stream back")
	datagram := fs.Bool("datagram", false, "echo: send one QUIC datagram; the server echoes it as a datagram")
	count := fs.Int("count", 4, "ping: rounds (0: until interrupted)")
	interval := fs.Duration("interval", time.Second, "ping: time between rounds")
	untilDirect := fs.Bool("until-direct", false, "ping: stop at the first round on a direct path (fail if none within -count)")
	useMDNS := fs.Bool("mdns", false, "publish and discover on the LAN by mDNS (iroh's local swarm discovery); lets echo/ping/connect dial a bare NodeId")
	mdnsWait := fs.Duration("mdns-wait", 3*time.Second, "id -mdns: how long to listen for other nodes on the LAN")
	streams := fs.Int("streams", 1, "throughput: parallel streams")
	nbytes := fs.Int64("bytes", 64<<20, "throughput: bytes per stream")
	homeRelay := fs.String("relay", "", "our home relay URL (runs over magicsock)")
	peerRelay := fs.String("peer-relay", "", "the peer's relay URL, for dialing (runs over magicsock)")
	relayOnly := fs.Bool("relay-only", false, "send nothing directly over UDP to peers (runs over magicsock)")
	stunServers := fs.String("stun", "", "STUN servers host:port[,host:port] to learn our public address, so that hole punching works behind NATs (runs over magicsock)")
	host := fs.String("host", "", "listen-tcp: host:port every incoming pipe is forwarded to")
	tcpAddr := fs.String("addr", "127.0.0.1:0", "connect-tcp: local TCP address to listen on (kafka-proxy: default 127.0.0.1:9092)")
	advertise := fs.String("advertise", "", "kafka-proxy: host:port Kafka clients are told to dial (default: the -addr listened on)")
	if cli.IsHelp(args) {
		fmt.Fprintf(out, "%s\n\nflags of mesh %s (and of the other commands):\n", usage, cmd)
		fs.SetOutput(out)
		fs.PrintDefaults()
		return flag.ErrHelp
	}
	if err := cli.ApplyEnv(fs, os.Getenv); err != nil {
		return err
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", cmd, err, usage)
	}
	var lan *mdns.Service // with -mdns, once newEP ran
	lanFound := make(chan struct{}, 1)
	defer func() {
		if lan != nil {
			lan.Close()
		}
	}()
	newEP := func() (*endpoint.Endpoint, error) {
		var sk key.SecretKey
		if *data != "" {
			if sk, err = key.LoadOrCreate(filepath.Join(*data, "identity")); err != nil {
				return nil, err
			}
		}
		if sk.IsZero() {
			sk = key.GenerateSecretKey()
		}
		var disc discovery.Resolver
		if *useMDNS {
			cfg := mdns.Config{Self: sk.Public(), OnDiscovered: func(discovery.NodeAddr) {
				select {
				case lanFound <- struct{}{}:
				default:
				}
			}}
			if mdnsConns != nil {
				cfg.Conns, cfg.Interval = mdnsConns(), 50*time.Millisecond
			}
			if lan, err = mdns.New(cfg); err != nil {
				return nil, fmt.Errorf("mdns: %w", err)
			}
			disc = lan
		}
		if *homeRelay == "" && *peerRelay == "" && !*relayOnly && *stunServers == "" {
			return endpoint.New(endpoint.Options{SecretKey: sk, BindAddr: *bind, DisableGRO: cli.DisableGRO(os.Getenv), Discovery: disc})
		}
		mo := magicsock.Options{SecretKey: sk, BindAddr: *bind, HomeRelay: *homeRelay, DisableDirect: *relayOnly}
		if *stunServers != "" {
			mo.STUNServers = strings.Split(*stunServers, ",")
		}
		if udpHook != nil {
			pc, err := net.ListenPacket("udp", *bind)
			if err != nil {
				return nil, err
			}
			mo.UDP = udpHook(pc)
		}
		ms, err := magicsock.New(mo)
		if err != nil {
			return nil, err
		}
		return endpoint.New(endpoint.Options{SecretKey: sk, Paths: ms, Discovery: disc})
	}
	peer := func() (endpoint.NodeAddr, error) {
		if len(pos) != 1 {
			return endpoint.NodeAddr{}, fmt.Errorf("%s needs exactly one NODEADDR\n%s", cmd, usage)
		}
		a, err := parsePeer(pos[0], *useMDNS)
		if *peerRelay != "" {
			a.RelayURL = *peerRelay
		}
		return a, err
	}
	// peerEP is peer then newEP, for the commands that dial one NODEADDR; the caller
	// closes the endpoint.
	peerEP := func() (endpoint.NodeAddr, *endpoint.Endpoint, error) {
		a, err := peer()
		if err != nil {
			return a, nil, err
		}
		ep, err := newEP()
		return a, ep, err
	}
	switch cmd {
	case "id":
		ep, err := newEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		fmt.Fprintf(out, "node id: %s\n", ep.NodeID())
		fmt.Fprintf(out, "hex:     %s\n", ep.NodeID().Hex())
		for _, ap := range ep.Addr().Direct {
			fmt.Fprintf(out, "addr:    %s\n", ap)
		}
		fmt.Fprintf(out, "dial:    %s\n", ep.Addr())
		fmt.Fprintf(out, "ticket:  %s\n", ticketOf(ep, *homeRelay))
		if lan != nil {
			listLAN(ctx, lan, lanFound, *mdnsWait, out)
		}
		return nil
	case "serve-echo":
		ep, err := newEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		ep.Handle(*alpn, echoHandler)
		fmt.Fprintln(out, ep.Addr())
		if *homeRelay != "" {
			fmt.Fprintf(out, "relay: %s\n", *homeRelay)
		}
		fmt.Fprintf(out, "ticket: %s\n", ticketOf(ep, *homeRelay))
		<-ctx.Done()
		return nil
	case "listen", "listen-tcp":
		if cmd == "listen-tcp" && *host == "" {
			return fmt.Errorf("listen-tcp needs -host host:port\n%s", usage)
		}
		ep, err := newEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		ready := func() {
			// The ticket goes to stderr: stdout is the pipe's data.
			fmt.Fprintf(statusOut, "listening on ALPN %s; connect with: mesh %s %s\n", PipeALPN, strings.Replace(cmd, "listen", "connect", 1), ticketOf(ep, *homeRelay))
		}
		if cmd == "listen" {
			return pipeListen(ctx, ep, in, out, ready)
		}
		return tcpListen(ctx, ep, *host, ready)
	case "connect", "connect-tcp":
		a, ep, err := peerEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		if cmd == "connect" {
			return pipeConnect(ctx, ep, a, in, out, func(c *endpoint.Conn) { printPath(statusOut, ep, c) })
		}
		ln, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "forwarding tcp %s to %s over the mesh\n", ln.Addr(), a.ID)
		return tcpConnect(ctx, ep, a, ln)
	case "kafka-proxy":
		a, ep, err := peerEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		listen := *tcpAddr
		if listen == "127.0.0.1:0" {
			listen = "127.0.0.1:9092"
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		adv := *advertise
		if adv == "" {
			adv = ln.Addr().String()
		}
		fmt.Fprintf(out, "kafka-proxy: Kafka clients use %s; it reaches gateway %s over the mesh\n", adv, a.ID)
		pctx, stop := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() { defer close(watched); watchPath(pctx, ep, a.ID, time.Second, out) }()
		err = kafkapipe.Proxy(pctx, ep, a, ln, adv)
		stop()
		<-watched
		return err
	case "echo":
		a, ep, err := peerEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		mode := modeBidi
		switch {
		case *uni && *datagram:
			return errors.New("echo: -uni and -datagram exclude each other")
		case *uni:
			mode = modeUni
		case *datagram:
			mode = modeDatagram
		}
		payload, binary := []byte(*msg), false
		if *file != "" {
			if payload, err = readPayload(*file, in); err != nil {
				return err
			}
			binary = true
		}
		return echoOnce(ctx, ep, a, *alpn, mode, payload, binary, out)
	case "ping":
		a, err := peer()
		if err != nil {
			return err
		}
		if *count < 0 || *interval <= 0 {
			return errors.New("ping: -count must be ≥ 0 and -interval positive")
		}
		ep, err := newEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		return ping(ctx, ep, a, *alpn, *count, *interval, *untilDirect, out)
	case "throughput":
		a, err := peer()
		if err != nil {
			return err
		}
		if *streams < 1 || *nbytes < 0 {
			return errors.New("throughput: -streams must be ≥ 1 and -bytes ≥ 0")
		}
		ep, err := newEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		return throughput(ctx, ep, a, *alpn, *streams, *nbytes, out)
	case "chat":
		if len(pos) == 0 {
			return fmt.Errorf("chat needs a ROOM name\n%s", usage)
		}
		room, rest := pos[0], pos[1:]
		if len(rest) > 0 && rest[0] == "bootstrap" {
			rest = rest[1:]
		}
		var boot []endpoint.NodeAddr
		for _, s := range rest {
			a, err := ticket.ParseAddr(s)
			if err != nil {
				return err
			}
			a.RelayURL = *peerRelay
			boot = append(boot, a)
		}
		ep, err := newEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		return chat(ctx, ep, room, boot, in, out)
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// mdnsConns, if set (tests), gives the mDNS sockets instead of the standard ones (and
// -mdns then announces every 50 ms).
var mdnsConns func() []mdns.Conn

// udpHook, if set (tests), wraps the UDP socket of a magicsock endpoint (to block direct
// paths for a while).
var udpHook func(net.PacketConn) net.PacketConn

// maxPayload bounds what echo -file reads.
const maxPayload = 64 << 20

// readPayload reads echo's binary payload from a file, or from in for "-".
func readPayload(name string, in io.Reader) ([]byte, error) {
	r := in
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("read payload: %w", err)
	}
	if len(b) > maxPayload {
		return nil, fmt.Errorf("payload larger than %d bytes", maxPayload)
	}
	return b, nil
}

// parsePeer parses a NODEADDR or ticket; with mDNS a bare NodeId is enough (the address is
// looked up on the LAN when dialing).
func parsePeer(s string, bareOK bool) (endpoint.NodeAddr, error) {
	if bareOK && !strings.Contains(s, "@") && !ticket.IsTicket(s) {
		id, err := key.ParsePublicKey(s)
		if err != nil {
			return endpoint.NodeAddr{}, fmt.Errorf("%q is neither a NODEADDR, a ticket nor a NodeId: %w", s, err)
		}
		return endpoint.NodeAddr{ID: id}, nil
	}
	return ticket.ParseAddr(s)
}

// listLAN prints the nodes mDNS hears on the LAN, once the first is heard or wait has passed.
func listLAN(ctx context.Context, lan *mdns.Service, found <-chan struct{}, wait time.Duration, out io.Writer) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-found:
	case <-t.C:
	case <-ctx.Done():
	}
	peers := lan.Peers()
	if len(peers) == 0 {
		fmt.Fprintln(out, "lan:     no other node heard by mDNS")
	}
	for _, p := range peers {
		fmt.Fprintf(out, "lan:     %s %v\n", p.ID, p.Direct)
	}
}

// ticketOf is ep's node ticket, with relay as its relay URL when the endpoint names none.
func ticketOf(ep *endpoint.Endpoint, relay string) string {
	a := ep.Addr()
	if a.RelayURL == "" {
		a.RelayURL = relay
	}
	return ticket.Encode(a)
}

// parseInterleaved parses flags that may come before or after positional
// arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func throughput(ctx context.Context, ep *endpoint.Endpoint, a endpoint.NodeAddr, alpn string, streams int, n int64, out io.Writer) error {
	c, err := ep.Dial(ctx, a, alpn)
	if err != nil {
		return err
	}
	defer c.Close()
	printPath(out, ep, c)
	buf := make([]byte, 64<<10)
	rand.Read(buf)
	var wg sync.WaitGroup
	errs := make([]error, streams)
	start := time.Now()
	for i := range streams {
		wg.Go(func() { errs[i] = echoStream(ctx, c, buf, n) })
	}
	wg.Wait()
	el := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	total := float64(n) * float64(streams)
	fmt.Fprintf(out, "peer %s: %d streams × %d bytes each way in %v: %.1f MB/s\n",
		c.RemoteID().ShortString(), streams, n, el.Round(time.Millisecond), total/el.Seconds()/1e6)
	return nil
}

// echoStream writes n bytes (buf repeated) and checks the echo by SHA-256.
func echoStream(ctx context.Context, c *endpoint.Conn, buf []byte, n int64) error {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return err
	}
	want := sha256.New()
	werr := make(chan error, 1)
	go func() {
		left := n
		for left > 0 {
			k := min(left, int64(len(buf)))
			if _, err := s.Write(buf[:k]); err != nil {
				werr <- err
				return
			}
			want.Write(buf[:k])
			left -= k
		}
		werr <- s.Close()
	}()
	got := sha256.New()
	m, rerr := io.Copy(got, s)
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read: %w", rerr)
	}
	if m != n || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		return fmt.Errorf("echo corrupt: sent %d bytes, got %d (checksum match %v)", n, m, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	return nil
}
