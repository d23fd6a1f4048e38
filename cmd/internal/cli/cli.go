package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/internal/meshnode"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
	"github.com/meshkafka/meshkafka/telemetry"
	"github.com/meshkafka/meshkafka/wal"
)

// Environment variables read here (see the package doc).
const (
	EnvRelay       = "RAFKA_RELAY_URL"
	EnvSTUN        = "RAFKA_STUN_SERVERS"
	EnvMDNS        = "RAFKA_MDNS"
	EnvMeshID      = "RAFKA_MESH_ID"
	EnvInterval    = "RAFKA_GOSSIP_INTERVAL_MS"
	EnvStaleness   = "RAFKA_STALENESS_MS"
	EnvDisableGRO  = "MESH_DISABLE_GRO"
	EnvServiceName = "OTEL_SERVICE_NAME"
)

// Main runs a binary: run gets a context cancelled on SIGINT or SIGTERM and the arguments
// after the program name. An error is printed as "name: err" on stderr and exits with 1.
func Main(name string, run func(ctx context.Context, args []string) error) {
	profileOnSignal(name)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0) // help was printed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Parse parses args into fs and refuses positional arguments (no binary takes any).
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

// PartitionsVar registers -partitions, the partition count of auto-created topics (default
// 1); CheckPartitions checks its range once parsed.
func PartitionsVar(fs *flag.FlagSet, p *int) {
	fs.IntVar(p, "partitions", 1, "partition count of auto-created topics")
}

// CheckPartitions refuses a -partitions value outside 1 to 2^20.
func CheckPartitions(n int) error {
	if n < 1 || n > 1<<20 {
		return fmt.Errorf("-partitions %d out of range", n)
	}
	return nil
}

// Getenv reads one environment variable: os.Getenv in main, a map in tests.
type Getenv func(string) string

// Or returns the value of k, or def when it is unset or empty.
func (g Getenv) Or(k, def string) string {
	if v := g(k); v != "" {
		return v
	}
	return def
}

// StringVar registers a string flag whose default is the value of env (def when unset); the
// usage ends in "(env ENV)".
func StringVar(fs *flag.FlagSet, p *string, name string, getenv Getenv, env, def, usage string) {
	fs.StringVar(p, name, getenv.Or(env, def), usage+" (env "+env+")")
}

// Logger is the binaries' logger: text on w, at level, or debug when verbose (-v).
func Logger(w io.Writer, level slog.Level, verbose bool) *slog.Logger {
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Identity loads the node's Ed25519 identity from dir/file, creating dir and the key on first
// use.
func Identity(dir, file string) (key.SecretKey, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return key.SecretKey{}, err
	}
	return key.LoadOrCreate(filepath.Join(dir, file))
}

// OpenBroker opens an embedded broker on dir (auto-created topics get partitions partitions,
// its journal tuned by st)
// and its group coordinator on dir/groups (which receives the offsets committed in the
// broker's transactions), the layout of every binary that embeds one; both
// report a fail-stop to onStop (see FailStop). onCommit, if not nil, sees every journal
// group commit (WALCommitMetrics). closeAll closes both, the coordinator first, and reports
// the first failure (a broker already closed is none).
func OpenBroker(dir string, partitions int, st Storage, log *slog.Logger, onStop func(error), onCommit func(time.Duration, int)) (b *broker.Broker, gc *group.Coordinator, closeAll func() error, err error) {
	cfg := broker.Config{Dir: dir, DefaultPartitions: int32(partitions), Logger: log, OnStop: onStop}
	st.Apply(&cfg)
	cfg.Store.OnCommit = onCommit
	b, err = broker.Open(cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open broker: %w", err)
	}
	gc, err = group.Open(group.Config{Dir: filepath.Join(dir, "groups"), Logger: log, OnStop: onStop})
	if err != nil {
		b.Close()
		return nil, nil, nil, fmt.Errorf("open group coordinator: %w", err)
	}
	b.SetTxnOffsetSink(gc) // offsets committed in transactions reach the groups
	return b, gc, func() error {
		err := gc.Close()
		if cerr := b.Close(); err == nil && cerr != nil && !errors.Is(cerr, broker.ErrClosed) {
			err = cerr
		}
		return err
	}, nil
}

// OpenCredentials opens the SCRAM credentials and the ACLs kept under dir
// (<dir>/scram.credentials, <dir>/acls): the broker's brokerop.SecurityService.
func OpenCredentials(dir string) (broker.Security, error) {
	return broker.OpenFileSecurity(wal.OSFS(), dir)
}

// Reach holds the -relay, -stun and -mdns flags; Check turns them into the meshnode.Reach it
// embeds.
type Reach struct {
	meshnode.Reach
	stunList string
}

// Register adds -relay, -stun and -mdns to fs, with defaults from RAFKA_RELAY_URL,
// RAFKA_STUN_SERVERS and RAFKA_MDNS=1. mdnsUsage describes -mdns for this binary.
func (r *Reach) Register(fs *flag.FlagSet, getenv Getenv, mdnsUsage string) {
	fs.StringVar(&r.Relay, "relay", getenv(EnvRelay), "home relay URL; default none (env RAFKA_RELAY_URL)")
	fs.StringVar(&r.stunList, "stun", getenv(EnvSTUN), "STUN servers host:port, comma separated (env RAFKA_STUN_SERVERS)")
	fs.BoolVar(&r.MDNS, "mdns", getenv(EnvMDNS) == "1", mdnsUsage+" (env RAFKA_MDNS=1)")
}

// Check validates and splits the parsed values: the relay must be an http(s) URL with a host,
// every STUN server a host:port.
func (r *Reach) Check() error {
	r.STUN = nil
	for f := range strings.SplitSeq(r.stunList, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(f); err != nil || port == "" {
			return fmt.Errorf("-stun %q: want host:port", f)
		}
		r.STUN = append(r.STUN, f)
	}
	if r.Relay != "" {
		u, err := url.Parse(r.Relay)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-relay %q: want an http:// or https:// URL", r.Relay)
		}
	}
	return nil
}

// MeshIDVar registers -mesh-id (the control topic's name), default RAFKA_MESH_ID or
// meshctl.DefaultMeshID.
func MeshIDVar(fs *flag.FlagSet, p *string, getenv Getenv) {
	fs.StringVar(p, "mesh-id", getenv.Or(EnvMeshID, meshctl.DefaultMeshID), "mesh id naming the control topic (env RAFKA_MESH_ID)")
}

// MeshControl fills c's MeshID, Interval and Staleness from RAFKA_MESH_ID,
// RAFKA_GOSSIP_INTERVAL_MS and RAFKA_STALENESS_MS (unset: c's values, whose zero means
// meshctl's defaults).
func MeshControl(getenv Getenv, c meshctl.Config) (meshctl.Config, error) {
	if v := getenv(EnvMeshID); v != "" {
		c.MeshID = v
	}
	for _, e := range []struct {
		name string
		dst  *time.Duration
	}{{EnvInterval, &c.Interval}, {EnvStaleness, &c.Staleness}} {
		v := getenv(e.name)
		if v == "" {
			continue
		}
		ms, err := strconv.ParseUint(v, 10, 32)
		if err != nil || ms == 0 {
			return c, fmt.Errorf("%s=%q: want a positive number of milliseconds", e.name, v)
		}
		*e.dst = time.Duration(ms) * time.Millisecond
	}
	return c, nil
}

// PeerIdleTimeout is the mesh connection idle timeout of the Kafka binaries (broker and
// gateway): a broker or gateway that stops answering (SIGKILL, a cut link) is taken for gone
// after this long, and the calls on its connection fail and are retried elsewhere, instead of
// hanging for iroh's 30 s. Dialers send keep-alives every second, so a live idle peer never
// reaches it. Five seconds bounds a quorum failover's worst case while leaving room for a
// loaded machine's pauses.
const PeerIdleTimeout = 5 * time.Second

// DisableGRO reports whether MESH_DISABLE_GRO asks to keep UDP GRO off (a true value as
// strconv.ParseBool reads it).
func DisableGRO(getenv Getenv) bool {
	off, _ := strconv.ParseBool(getenv(EnvDisableGRO))
	return off
}

// Telemetry is the tracing configuration the OTEL_* variables ask for: export on or off
// (telemetry.Enabled), and the service name (OTEL_SERVICE_NAME, else defaultService).
func Telemetry(getenv Getenv, defaultService string) telemetry.Config {
	return telemetry.Config{Export: telemetry.Enabled(getenv), ServiceName: getenv.Or(EnvServiceName, defaultService)}
}

// SetupTelemetry runs telemetry.Setup with Telemetry(getenv, defaultService); recent, if not
// nil, keeps the last traces in process for the status page.
func SetupTelemetry(ctx context.Context, getenv Getenv, defaultService string, recent *telemetry.Recent) (shutdown func(context.Context) error, err error) {
	cfg := Telemetry(getenv, defaultService)
	cfg.Recent = recent
	shutdown, err = telemetry.Setup(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return shutdown, nil
}

// WriteAddrFile writes line to path through a temporary file renamed into place, so a reader
// never sees half of it.
func WriteAddrFile(path, line string) error {
	if path == "" {
		return errors.New("no address file")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(line+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// FailStop returns a function for broker.Config.OnStop and the channel that receives the
// first error it is called with (later ones are dropped; it never blocks). A binary selects on
// the channel next to its shutdown signal and exits non-zero when it fires: a write of unknown
// outcome stops the broker, and only a restart (recovery from what is durable) resumes it.
func FailStop() (onStop func(error), stopped <-chan error) {
	ch := make(chan error, 1)
	return func(err error) {
		select {
		case ch <- err:
		default:
		}
	}, ch
}
