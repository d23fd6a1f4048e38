// Command mesh is a small operator tool for the mesh endpoint, in the
// spirit of `iroh doctor`.
//
//	mesh id           [-data DIR] [-bind ADDR]
//	mesh serve-echo   [-data DIR] [-bind ADDR] [-alpn ALPN] [-relay URL]
//	mesh echo         NODEADDR [-alpn ALPN] [-msg TEXT] [relay flags]
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
// side. -alpn picks another ALPN (for example a Rust peer's echo protocol
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
  mesh id           [-data DIR] [-bind ADDR]
  mesh serve-echo   [-data DIR] [-bind ADDR] [-alpn ALPN] [-relay URL]
  mesh echo         NODEADDR [-alpn ALPN] [-msg TEXT] [-relay URL] [-peer-relay URL] [-relay-only]
  mesh throughput   NODEADDR [-alpn ALPN] [-streams N] [-bytes M] [-relay URL] [-peer-relay URL] [-relay-only]
  mesh chat         ROOM [bootstrap] [NODEADDR ...] [-data DIR] [-bind ADDR] [-relay URL] [-peer-relay URL] [-relay-only]
  mesh listen       [-data DIR] [-bind ADDR] [-relay URL]              (stdin/stdout pipe; dumbpipe's protocol)
  mesh connect      NODEADDR [-relay URL] [-peer-relay URL]           (stdin/stdout pipe)
  mesh listen-tcp   -host HOST:PORT [-data DIR] [-bind ADDR] [-relay URL]   (forward pipes to a TCP service)
  mesh connect-tcp  NODEADDR [-addr 127.0.0.1:PORT] [-relay URL] [-peer-relay URL]   (a local TCP port over the mesh)
  mesh kafka-proxy  GATEWAY [-addr 127.0.0.1:9092] [-advertise HOST:PORT] [-relay URL] [-peer-relay URL]   (Kafka from anywhere: a local :9092 for a gateway run with -kafka-over-mesh)`

const meshExamples = `  mesh id -data ./data/mesh
  mesh serve-echo -bind 127.0.0.1:4433          # prints its NODEADDR
  mesh echo <nodeid>@127.0.0.1:4433 -msg hi
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
	streams := fs.Int("streams", 1, "throughput: parallel streams")
	nbytes := fs.Int64("bytes", 64<<20, "throughput: bytes per stream")
	homeRelay := fs.String("relay", "", "our home relay URL (runs over magicsock)")
	peerRelay := fs.String("peer-relay", "", "the peer's relay URL, for dialing (runs over magicsock)")
	relayOnly := fs.Bool("relay-only", false, "send nothing directly over UDP to peers (runs over magicsock)")
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
	newEP := func() (*endpoint.Endpoint, error) {
		var sk key.SecretKey
		if *data != "" {
			if sk, err = key.LoadOrCreate(filepath.Join(*data, "identity")); err != nil {
				return nil, err
			}
		}
		if *homeRelay == "" && *peerRelay == "" && !*relayOnly {
			return endpoint.New(endpoint.Options{SecretKey: sk, BindAddr: *bind, DisableGRO: cli.DisableGRO(os.Getenv)})
		}
		if sk.IsZero() {
			sk = key.GenerateSecretKey()
		}
		ms, err := magicsock.New(magicsock.Options{SecretKey: sk, BindAddr: *bind, HomeRelay: *homeRelay, DisableDirect: *relayOnly})
		if err != nil {
			return nil, err
		}
		return endpoint.New(endpoint.Options{SecretKey: sk, Paths: ms})
	}
	peer := func() (endpoint.NodeAddr, error) {
		if len(pos) != 1 {
			return endpoint.NodeAddr{}, fmt.Errorf("%s needs exactly one NODEADDR\n%s", cmd, usage)
		}
		a, err := ticket.ParseAddr(pos[0])
		if *peerRelay != "" {
			a.RelayURL = *peerRelay
		}
		return a, err
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
		a, err := peer()
		if err != nil {
			return err
		}
		ep, err := newEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		if cmd == "connect" {
			return pipeConnect(ctx, ep, a, in, out)
		}
		ln, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "forwarding tcp %s to %s over the mesh\n", ln.Addr(), a.ID)
		return tcpConnect(ctx, ep, a, ln)
	case "kafka-proxy":
		a, err := peer()
		if err != nil {
			return err
		}
		ep, err := newEP()
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
		return kafkapipe.Proxy(ctx, ep, a, ln, adv)
	case "echo":
		a, err := peer()
		if err != nil {
			return err
		}
		ep, err := newEP()
		if err != nil {
			return err
		}
		defer ep.Close()
		return echoOnce(ctx, ep, a, *alpn, []byte(*msg), out)
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

// echoHandler echoes every bidi stream until the peer finishes sending.
func echoHandler(ctx context.Context, c *endpoint.Conn) {
	defer c.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() {
			if _, err := io.Copy(s, s); err != nil {
				s.CancelRead(1)
				s.CancelWrite(1)
				return
			}
			s.Close()
		})
	}
}

func echoOnce(ctx context.Context, ep *endpoint.Endpoint, a endpoint.NodeAddr, alpn string, msg []byte, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := ep.Dial(ctx, a, alpn)
	if err != nil {
		return err
	}
	defer c.Close()
	connected := time.Since(start)
	s, err := c.OpenStream(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := s.Write(msg); err != nil {
		return err
	}
	s.Close()
	got, err := io.ReadAll(s)
	if err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo mismatch: sent %q, got %q", msg, got)
	}
	fmt.Fprintf(out, "peer %s via %s (connect %v, echo %v): %s\n",
		c.RemoteID(), c.RemoteAddr(), connected.Round(time.Microsecond), time.Since(t0).Round(time.Microsecond), got)
	return nil
}

func throughput(ctx context.Context, ep *endpoint.Endpoint, a endpoint.NodeAddr, alpn string, streams int, n int64, out io.Writer) error {
	c, err := ep.Dial(ctx, a, alpn)
	if err != nil {
		return err
	}
	defer c.Close()
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
