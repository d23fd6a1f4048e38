package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/porttest"
)

// Options shape a Cluster.
type Options struct {
	Brokers  int // started by Start
	Spares   int // broker identities made (and trusted) up front but not started: StartBroker
	Gateways int
	// Netns puts every broker and gateway in its own network namespace on a Network (root
	// only; the test is skipped otherwise). Without it everything runs on loopback.
	Netns bool
	// NAT (with Netns) puts every broker behind a NAT router of its own (Network.AttachNAT):
	// brokers reach each other only through the relay (Relay) or by hole punching. Gateways
	// stay on the bridge. Broker.Bind is then the broker's private address.
	NAT bool
	// Relay runs cmd/relay (on the hub with Netns, on loopback otherwise) and gives every node
	// -relay and -stun pointing at it.
	Relay bool
	// Quorum makes the Brokers started by Start one metadata quorum: every broker (spares
	// too) gets -quorum-seeds with them, -quorum-voters 3 and its admin listener (-admin, for
	// QuorumStatus). With one broker: only -admin (a quorum of one).
	Quorum bool
	// BrokerArgs adds flags to a broker's command line; called at each start.
	BrokerArgs func(b *Broker) []string
	// GatewayArgs adds flags to a gateway's command line; called at each start.
	GatewayArgs func(g *Gateway) []string
	// Env is added to every child's environment.
	Env []string
	// StartTimeout bounds how long a process may take to come up (default 60 s): a hang
	// bound, not a speed assertion.
	StartTimeout time.Duration
}

// Cluster is a set of broker and gateway processes (and optionally a relay) with their data
// directories and mesh identities, torn down when the test ends. When the test has failed by
// then, the tail of every process's output is logged and the full output is written to the
// test's artifact directory.
type Cluster struct {
	Brokers  []*Broker // started and spare brokers, in creation order
	Gateways []*Gateway
	Net      *Network // nil without Options.Netns
	Relay    *Proc    // nil without Options.Relay
	RelayURL string
	STUN     string

	opts Options
	tb   testing.TB
	root string

	mu    sync.Mutex
	procs []*Proc // every incarnation of every process, for the failure report
}

// Node is what brokers and gateways share: a name, a data directory, a mesh identity and,
// with Options.Netns, a namespace.
type Node struct {
	Name string
	Dir  string   // data directory
	ID   string   // mesh NodeId
	NS   *NetNode // nil without Options.Netns
	P    *Proc    // the current incarnation (nil before the first start)
	c    *Cluster
}

// Broker is a cmd/broker process with a fixed data directory, mesh identity and bind address.
type Broker struct {
	Node
	Index    int
	Bind     string // UDP host:port of the mesh endpoint, the same across restarts
	Admin    string // a free loopback TCP host:port reserved for an admin listener (-admin)
	Seed     string // <nodeid>@host:port from the addr file, after a start
	addrFile string
}

// Gateway is a cmd/gateway process in mesh mode; its Kafka address stays the same across
// restarts.
type Gateway struct {
	Node
	Index  int
	Listen string // where it listens for Kafka clients
	Addr   string // host:port clients dial (after a start)
}

// New makes the nodes' directories, identities and (with Netns) namespaces, and the relay if
// asked for, but starts no broker or gateway: Start does.
func New(tb testing.TB, o Options) *Cluster {
	tb.Helper()
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	c := &Cluster{opts: o, tb: tb, root: tb.TempDir()}
	if o.Netns {
		c.Net = NewNetwork(tb)
	}
	// After the network's teardown is registered (so it runs before it), before any process's
	// (so it runs after they are all dead).
	tb.Cleanup(c.report)
	if o.Relay {
		c.startRelay(tb)
	}
	for i := range o.Brokers + o.Spares {
		c.newBroker(tb, i)
	}
	for i := range o.Gateways {
		c.newGateway(tb, i)
	}
	return c
}

// Start is New followed by starting Options.Brokers brokers, then the gateways.
func Start(tb testing.TB, o Options) *Cluster {
	tb.Helper()
	c := New(tb, o)
	c.StartBrokers(tb, c.Brokers[:o.Brokers]...)
	for _, g := range c.Gateways {
		g.Start(tb)
	}
	return c
}

// StartBrokers starts the brokers concurrently (a quorum's seeds wait for each other) and
// waits until each is serving.
func (c *Cluster) StartBrokers(tb testing.TB, bs ...*Broker) {
	tb.Helper()
	errs := make([]error, len(bs))
	var wg sync.WaitGroup
	for i, b := range bs {
		b.launch(tb)
		wg.Go(func() { errs[i] = b.waitServing() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func (c *Cluster) startRelay(tb testing.TB) {
	tb.Helper()
	host := "127.0.0.1"
	var ns *Netns
	if c.Net != nil {
		host, ns = c.Net.HubAddr().String(), c.Net.Hub
	}
	httpAddr := host + ":3340"
	stunAddr := host + ":3478"
	if c.Net == nil {
		httpAddr, stunAddr = FreeTCP(tb), FreeUDP(tb)
	}
	c.Relay = c.track(StartProc(tb, "relay", ns, c.opts.Env, Bin(tb, "relay"), "-addr", httpAddr, "-stun", stunAddr))
	c.Relay.WaitFor(tb, "relay banner", c.opts.StartTimeout, func() bool { return strings.Contains(c.Relay.Stdout.String(), "stun: serving") })
	c.RelayURL, c.STUN = "http://"+httpAddr, stunAddr
}

func (c *Cluster) track(p *Proc) *Proc {
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p
}

// report runs at the end of the test: on failure it logs the tail of every process and keeps
// the full output in the artifact directory.
func (c *Cluster) report() {
	if !c.tb.Failed() {
		return
	}
	c.mu.Lock()
	procs := append([]*Proc(nil), c.procs...)
	c.mu.Unlock()
	dir := c.tb.ArtifactDir()
	var b strings.Builder
	latest := map[string]bool{} // the newest incarnation of each node gets its tail logged
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d-%s.log", i, p.Name)), []byte(p.Logs()), 0o644)
		if latest[p.Name] {
			continue
		}
		latest[p.Name] = true
		fmt.Fprintf(&b, "%s (pid %d, exit %v, %d earlier incarnations in the artifacts)\n%s", p.Name, p.Pid(), p.Err(), countName(procs[:i], p.Name), p.Tail(25))
	}
	if c.Net != nil {
		b.WriteString("network rules:\n" + c.Net.Rules())
	}
	c.tb.Logf("process output (full logs in %s):\n%s", dir, b.String())
}

func countName(procs []*Proc, name string) int {
	n := 0
	for _, p := range procs {
		if p.Name == name {
			n++
		}
	}
	return n
}

// reach returns the flags giving a node the relay.
func (c *Cluster) reach() []string {
	if c.Relay == nil {
		return nil
	}
	return []string{"-relay", c.RelayURL, "-stun", c.STUN}
}

// identity creates a data directory's identity with bin -print-node-id and returns the NodeId.
func identity(tb testing.TB, bin, dir string) string {
	tb.Helper()
	out, err := exec.Command(bin, "-data", dir, "-print-node-id").Output()
	id := strings.TrimSpace(string(out))
	if err != nil || id == "" {
		tb.Fatalf("%s -data %s -print-node-id: %v %q", bin, dir, err, out)
	}
	return id
}

func (c *Cluster) newBroker(tb testing.TB, i int) *Broker {
	tb.Helper()
	name := fmt.Sprintf("broker-%d", i)
	b := &Broker{Node: Node{Name: name, Dir: filepath.Join(c.root, name, "data"), c: c}, Index: i,
		addrFile: filepath.Join(c.root, name, "addr")}
	b.ID = identity(tb, Bin(tb, "broker"), b.Dir)
	if c.Net != nil {
		if c.opts.NAT {
			b.NS = c.Net.AttachNAT(name, byte(10+i))
		} else {
			b.NS = c.Net.Attach(name, byte(10+i))
		}
		b.Bind = b.NS.Addr.String() + ":7070"
		b.Admin = "127.0.0.1:9644" // loopback of its own namespace
	} else {
		b.Bind, b.Admin = FreeUDP(tb), FreeTCP(tb)
	}
	c.Brokers = append(c.Brokers, b)
	return b
}

// AddBroker makes one more broker identity (not trusted by the running brokers unless they
// learn it some other way) without starting it.
func (c *Cluster) AddBroker(tb testing.TB) *Broker {
	tb.Helper()
	return c.newBroker(tb, len(c.Brokers))
}

func (c *Cluster) newGateway(tb testing.TB, i int) *Gateway {
	tb.Helper()
	name := fmt.Sprintf("gateway-%d", i)
	g := &Gateway{Node: Node{Name: name, Dir: filepath.Join(c.root, name, "data"), c: c}, Index: i, Listen: "127.0.0.1:0"}
	g.ID = identity(tb, Bin(tb, "gateway"), g.Dir)
	if c.Net != nil {
		g.NS = c.Net.Attach(name, byte(50+i))
		g.Listen = g.NS.Addr.String() + ":9092"
	}
	c.Gateways = append(c.Gateways, g)
	return g
}

// BrokerIDs lists every broker's NodeId (spares included).
func (c *Cluster) BrokerIDs() []string {
	ids := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		ids[i] = b.ID
	}
	return ids
}

// trust is every gateway's and every broker's NodeId: brokers accept KafkaOps from the
// gateways and from each other.
func (c *Cluster) trust() string {
	ids := c.BrokerIDs()
	for _, g := range c.Gateways {
		ids = append(ids, g.ID)
	}
	return strings.Join(ids, ",")
}

// Seeds is "<nodeid>@host:port,..." of the given brokers (their bind addresses, known before
// they start).
func Seeds(bs ...*Broker) string {
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = b.ID + "@" + b.Bind
	}
	return strings.Join(s, ",")
}

// Dialer dials Kafka addresses as the test's clients should: from the hub namespace with
// Netns, directly otherwise. Pass it to kgo.Dialer.
func (c *Cluster) Dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.Net != nil {
		return c.Net.Hub.DialContext
	}
	var d net.Dialer
	return d.DialContext
}

// Running reports whether the node's current incarnation is alive.
func (n *Node) Running() bool { return n.P != nil && !n.P.Exited() }

// Kill SIGKILLs the node and waits until it is gone.
func (n *Node) Kill() {
	if n.P != nil {
		n.P.Kill()
	}
}

// Pause SIGSTOPs the node; Resume SIGCONTs it.
func (n *Node) Pause()  { n.P.Signal(syscall.SIGSTOP) }
func (n *Node) Resume() { n.P.Signal(syscall.SIGCONT) }

// Stop SIGTERMs the node and waits (SIGKILL after 10 s).
func (n *Node) Stop() error {
	if n.P == nil {
		return nil
	}
	return n.P.Stop()
}

// Wipe deletes the node's data directory while it is down, keeping only its identity when
// keepIdentity is set (a replaced disk, same NodeId).
func (n *Node) Wipe(tb testing.TB, keepIdentity bool) {
	tb.Helper()
	if n.Running() {
		tb.Fatalf("%s: wipe while running", n.Name)
	}
	var key []byte
	if keepIdentity {
		var err error
		if key, err = os.ReadFile(filepath.Join(n.Dir, "identity.key")); err != nil {
			tb.Fatalf("%s: keep identity: %v", n.Name, err)
		}
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		tb.Fatal(err)
	}
	if keepIdentity {
		if err := os.MkdirAll(n.Dir, 0o700); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "identity.key"), key, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// DialContext dials from the node's namespace (its loopback is its own), or directly.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if n.NS != nil {
		return n.NS.DialContext(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// HTTPClient is an HTTP client whose connections are dialled from the node's namespace (for
// an admin listener on its loopback).
func (n *Node) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

// Exec runs the node's own binary with args (a subcommand such as `broker quorum status`) in
// the node's namespace and returns its combined output.
func (n *Node) Exec(ctx context.Context, bin string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if n.NS != nil {
		cmd = exec.CommandContext(ctx, "nsenter", append([]string{"-t", n.NS.Pid(), "-n", "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	return cmd.CombinedOutput()
}

// Start runs the broker on its data directory and bind address and waits until it has
// written its addr file.
func (b *Broker) Start(tb testing.TB) {
	tb.Helper()
	b.launch(tb)
	if err := b.waitServing(); err != nil {
		tb.Fatal(err)
	}
}

// Restart SIGKILLs the broker (if running) and starts it again.
func (b *Broker) Restart(tb testing.TB) {
	tb.Helper()
	b.Kill()
	b.Start(tb)
}

func (b *Broker) launch(tb testing.TB) {
	tb.Helper()
	c := b.c
	os.Remove(b.addrFile)
	args := []string{"-data", b.Dir, "-bind", b.Bind, "-trust", c.trust(), "-addr-file", b.addrFile}
	args = append(args, c.reach()...)
	if c.opts.Quorum {
		if c.opts.Brokers > 1 {
			args = append(args, "-quorum-seeds", Seeds(c.Brokers[:c.opts.Brokers]...), "-quorum-voters", "3")
		}
		args = append(args, "-admin", b.Admin)
	}
	if c.opts.BrokerArgs != nil {
		args = append(args, c.opts.BrokerArgs(b)...)
	}
	var ns *Netns
	if b.NS != nil {
		ns = b.NS.Netns
	}
	b.P = c.track(startProc(tb, c.tb, b.Name, ns, c.opts.Env, Bin(tb, "broker"), args...)) // lives as long as the cluster
}

func (b *Broker) waitServing() error {
	deadline := time.Now().Add(b.c.opts.StartTimeout)
	for {
		if data, err := os.ReadFile(b.addrFile); err == nil && len(data) > 0 {
			seed := strings.TrimSpace(string(data))
			id, _, ok := strings.Cut(seed, "@")
			if !ok || id != b.ID {
				return fmt.Errorf("%s: addr file %q does not name NodeId %s", b.Name, seed, b.ID)
			}
			b.Seed = seed
			return nil
		}
		if b.P.Exited() {
			return fmt.Errorf("%s exited (%v) before serving\n%s", b.Name, b.P.Err(), b.P.Tail(40))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not serving within %v\n%s", b.Name, b.c.opts.StartTimeout, b.P.Tail(40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GatewayBanner is what cmd/gateway prints once it accepts Kafka connections.
const GatewayBanner = "gateway listening on "

// Start (re)starts the gateway in mesh mode with every started broker as a seed, and waits
// for its banner.
func (g *Gateway) Start(tb testing.TB) {
	tb.Helper()
	c := g.c
	var seeds []*Broker
	for _, b := range c.Brokers {
		if b.Seed != "" {
			seeds = append(seeds, b)
		}
	}
	meshBind, host := "127.0.0.1:0", "127.0.0.1"
	var ns *Netns
	if g.NS != nil {
		meshBind, host, ns = g.NS.Addr.String()+":0", g.NS.Addr.String(), g.NS.Netns
	}
	args := []string{"-advertised-host", host, "-data", g.Dir, "-mesh-bind", meshBind, "-brokers", Seeds(seeds...)}
	args = append(args, c.reach()...)
	if c.opts.GatewayArgs != nil {
		args = append(args, c.opts.GatewayArgs(g)...)
	}
	g.P, g.Addr = startGateway(tb, c.tb, g.Name, ns, c.opts.Env, g.Listen, c.opts.StartTimeout, args...) // lives as long as the cluster
	c.track(g.P)
	g.Listen = g.Addr
}

// StartGateway starts the gateway binary listening on listen (host:0 for a free port) with
// args, inside ns (nil: here), waits up to timeout for its banner and returns the process and
// the address it listens on. A port the previous incarnation still holds is retried.
func StartGateway(tb testing.TB, name string, ns *Netns, env []string, listen string, timeout time.Duration, args ...string) (*Proc, string) {
	tb.Helper()
	return startGateway(tb, tb, name, ns, env, listen, timeout, args...)
}

func startGateway(tb, owner testing.TB, name string, ns *Netns, env []string, listen string, timeout time.Duration, args ...string) (*Proc, string) {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		p := startProc(tb, owner, name, ns, env, Bin(tb, "gateway"), append([]string{"-listen", listen}, args...)...)
		deadline := time.Now().Add(timeout)
		for !strings.Contains(p.Stdout.String(), GatewayBanner) && !p.Exited() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		out := p.Stdout.String()
		if i := strings.Index(out, GatewayBanner); i >= 0 {
			return p, strings.Fields(out[i+len(GatewayBanner):])[0]
		}
		p.Kill()
		// The previous incarnation's port may take a moment to free.
		if attempt == 50 || !strings.Contains(p.Stderr.String(), "address already in use") {
			tb.Fatalf("%s did not start\n%s", name, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeUDP returns a loopback UDP address nobody listens on right now, kept from every other
// process's bind(0) and every other test binary until this one exits (internal/porttest).
func FreeUDP(tb testing.TB) string {
	tb.Helper()
	return porttest.Addr(tb)
}

// FreeTCP is FreeUDP for a TCP listener.
func FreeTCP(tb testing.TB) string {
	tb.Helper()
	return porttest.Addr(tb)
}
