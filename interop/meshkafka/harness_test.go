package meshkafka_test

// Process harness: builds cmd/broker and cmd/gateway once, runs them as child processes on
// loopback with random free ports, and kills every child when its test ends.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

var (
	buildOnce sync.Once
	buildDir  string // holds "broker" and "gateway"
	buildTemp string // removed by TestMain when we created it
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildTemp != "" {
		os.RemoveAll(buildTemp)
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// bins returns the directory holding the broker and gateway binaries, building them on first
// use (or taking them from MESHKAFKA_BIN_DIR).
func bins(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		if d := os.Getenv("MESHKAFKA_BIN_DIR"); d != "" {
			buildDir = d
			return
		}
		d, err := os.MkdirTemp("", "meshkafka-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildTemp, buildDir = d, d
		cmd := exec.Command("go", "build", "-o", d+string(filepath.Separator),
			"github.com/meshkafka/meshkafka/cmd/broker", "github.com/meshkafka/meshkafka/cmd/gateway")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build cmd/broker cmd/gateway: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildDir
}

// proc is one running child process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *kafkaclients.SyncBuffer
	stderr *kafkaclients.SyncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after done
}

// startProc starts bin with args, and env added to this process's environment; the process
// is SIGKILLed when tb ends unless stopped before.
func startProc(tb testing.TB, name string, env []string, bin string, args ...string) *proc {
	tb.Helper()
	p := &proc{name: name, stdout: &kafkaclients.SyncBuffer{}, stderr: &kafkaclients.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if d := os.Getenv("MESHKAFKA_CHILD_LOG_DIR"); d != "" { // for debugging hangs: logs survive the test
		f, err := os.CreateTemp(d, name+"-*.log")
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(f, "%s %s\n", bin, strings.Join(args, " "))
		tb.Cleanup(func() { f.Close() })
		p.cmd.Stdout, p.cmd.Stderr = io.MultiWriter(p.stdout, f), io.MultiWriter(p.stderr, f)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(p.kill)
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone (idempotent).
func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// signalAndWait sends sig (unless the process has exited) and waits for it to exit, killing it
// after grace; it reports whether it had to.
func (p *proc) signalAndWait(sig syscall.Signal, grace time.Duration) (killed bool) {
	if !p.exited() {
		_ = p.cmd.Process.Signal(sig)
	}
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
		p.kill()
		return true
	}
}

// stop sends SIGTERM and waits (SIGKILL after 10 s); it returns the exit error.
func (p *proc) stop() error {
	if p.signalAndWait(syscall.SIGTERM, 10*time.Second) {
		return fmt.Errorf("%s did not exit within 10s of SIGTERM", p.name)
	}
	return p.err
}

// quit sends SIGQUIT (a Go process prints every goroutine's stack and exits) and waits; for
// diagnosing a stall before the test fails.
func (p *proc) quit() { p.signalAndWait(syscall.SIGQUIT, 5*time.Second) }

// logs is everything the process wrote so far.
func (p *proc) logs() string {
	return fmt.Sprintf("--- %s stdout:\n%s--- %s stderr:\n%s", p.name, p.stdout, p.name, p.stderr)
}

// waitFor polls cond until it holds, the process exits, or timeout passes.
func (p *proc) waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if p.exited() {
			tb.Fatalf("%s exited (%v) before %s\n%s", p.name, p.err, what, p.logs())
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: no %s within %v\n%s", p.name, what, timeout, p.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeUDP returns a loopback UDP address nobody listens on right now.
func freeUDP(tb testing.TB) string {
	tb.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// --- brokers ---

// brokerNode is a cmd/broker process with a fixed data directory and mesh address.
type brokerNode struct {
	name     string
	dir      string
	bind     string
	trust    []string
	addrFile string
	id       string // NodeId
	seed     string // <nodeid>@host:port, as written to the addr file
	env      []string
	args     []string // more flags (the metadata quorum's)
	admin    string   // -admin address, if any
	p        *proc
}

func newBroker(tb testing.TB, name string, trust ...string) *brokerNode {
	return newBrokerEnv(tb, name, nil, trust...)
}

// newBrokerEnv is newBroker whose process gets env added to its environment.
func newBrokerEnv(tb testing.TB, name string, env []string, trust ...string) *brokerNode {
	tb.Helper()
	tmp := tb.TempDir()
	b := &brokerNode{name: name, dir: filepath.Join(tmp, "data"), bind: freeUDP(tb), trust: trust, addrFile: filepath.Join(tmp, "addr"), env: env}
	b.start(tb)
	return b
}

// newQuorumBrokers starts n brokers of one metadata quorum (every one gets all of them as
// -quorum-seeds; each serves its admin API) and waits until the quorum has all n as members,
// min(n, 3) of them voters.
func newQuorumBrokers(tb testing.TB, n int, trust ...string) []*brokerNode {
	tb.Helper()
	var bs []*brokerNode
	var seeds []string
	for i := range n {
		tmp := tb.TempDir()
		b := &brokerNode{name: fmt.Sprintf("broker-%d", i), dir: filepath.Join(tmp, "data"), bind: freeUDP(tb), trust: trust,
			addrFile: filepath.Join(tmp, "addr"), admin: freeTCP(tb)}
		out, err := exec.Command(filepath.Join(bins(tb), "broker"), "-data", b.dir, "-print-node-id").Output()
		if err != nil {
			tb.Fatalf("%s: -print-node-id: %v", b.name, err)
		}
		b.id = strings.TrimSpace(string(out))
		seeds = append(seeds, b.id+"@"+b.bind)
		bs = append(bs, b)
	}
	for _, b := range bs {
		b.args = []string{"-quorum-seeds", strings.Join(seeds, ","), "-admin", b.admin}
		b.start(tb)
	}
	voters := min(n, 3)
	bs[0].p.waitFor(tb, "metadata quorum", 60*time.Second, func() bool {
		resp, err := http.Get("http://" + bs[0].admin + "/quorum/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			Brokers []struct {
				Voter bool `json:"voter"`
			} `json:"brokers"`
			Leader string `json:"leader_node_id"`
		}
		if json.NewDecoder(resp.Body).Decode(&st) != nil || len(st.Brokers) != n || st.Leader == "" {
			return false
		}
		nv := 0
		for _, m := range st.Brokers {
			if m.Voter {
				nv++
			}
		}
		return nv == voters
	})
	return bs
}

// freeTCP returns a loopback TCP address nobody listens on right now.
func freeTCP(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the broker on its data directory and bind address and waits for its addr file.
func (b *brokerNode) start(tb testing.TB) {
	tb.Helper()
	os.Remove(b.addrFile)
	b.p = startProc(tb, b.name, b.env, filepath.Join(bins(tb), "broker"),
		append([]string{"-data", b.dir, "-bind", b.bind, "-trust", strings.Join(b.trust, ","), "-addr-file", b.addrFile}, b.args...)...)
	b.p.waitFor(tb, "addr file", 15*time.Second, func() bool {
		data, err := os.ReadFile(b.addrFile)
		if err != nil || len(data) == 0 {
			return false
		}
		b.seed = strings.TrimSpace(string(data))
		return true
	})
	id, _, ok := strings.Cut(b.seed, "@")
	if !ok {
		tb.Fatalf("%s: addr file %q has no <id>@addr", b.name, b.seed)
	}
	if b.id != "" && b.id != id {
		tb.Fatalf("%s: NodeId changed across restart: %s -> %s", b.name, b.id, id)
	}
	b.id = id
}

// --- gateways ---

// gatewayNode is a cmd/gateway process; its Kafka port stays the same across restarts.
type gatewayNode struct {
	name   string
	dir    string
	id     string // mesh NodeId (from -print-node-id)
	listen string // 127.0.0.1:0 until the first start
	addr   string // host:port clients dial
	args   []string
	env    []string // added to the process's environment
	p      *proc
}

// newGatewayIdentity creates the gateway's data directory and identity, so that brokers can
// be told to trust it before it starts.
func newGatewayIdentity(tb testing.TB, name string) *gatewayNode {
	tb.Helper()
	g := &gatewayNode{name: name, dir: filepath.Join(tb.TempDir(), "data"), listen: "127.0.0.1:0"}
	out, err := exec.Command(filepath.Join(bins(tb), "gateway"), "-data", g.dir, "-print-node-id").Output()
	if err != nil {
		tb.Fatalf("gateway -print-node-id: %v", err)
	}
	g.id = strings.TrimSpace(string(out))
	if g.id == "" {
		tb.Fatal("gateway -print-node-id printed nothing")
	}
	return g
}

func seeds(bs ...*brokerNode) string {
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = b.seed
	}
	return strings.Join(s, ",")
}

// startMesh runs the gateway in mesh mode with the given brokers as seeds.
func (g *gatewayNode) startMesh(tb testing.TB, bs ...*brokerNode) {
	tb.Helper()
	g.args = []string{"-data", g.dir, "-mesh-bind", "127.0.0.1:0", "-brokers", seeds(bs...)}
	g.start(tb)
}

// startEmbedded runs the gateway with its embedded broker (no -brokers).
func (g *gatewayNode) startEmbedded(tb testing.TB) {
	tb.Helper()
	g.args = []string{"-data", g.dir}
	g.start(tb)
}

const banner = "gateway listening on "

// start (re)starts the gateway with g.args and waits for its banner.
func (g *gatewayNode) start(tb testing.TB) {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		args := append([]string{"-listen", g.listen, "-advertised-host", "127.0.0.1"}, g.args...)
		g.p = startProc(tb, g.name, g.env, filepath.Join(bins(tb), "gateway"), args...)
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(g.p.stdout.String(), banner) && !g.p.exited() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		out := g.p.stdout.String()
		if i := strings.Index(out, banner); i >= 0 {
			g.addr = strings.Fields(out[i+len(banner):])[0]
			g.listen = g.addr
			return
		}
		g.p.kill()
		// The previous incarnation's port may take a moment to free.
		if attempt == 50 || !strings.Contains(g.p.stderr.String(), "address already in use") {
			tb.Fatalf("%s did not start\n%s", g.name, g.p.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --- clients ---

func createTopic(tb testing.TB, addr, name string, partitions int32, configs map[string]*string) {
	tb.Helper()
	adm := kadm.NewClient(kafkaclients.KgoClient(tb, addr))
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := adm.CreateTopic(ctx, partitions, 1, configs, name)
	if err != nil || r.Err != nil {
		tb.Fatalf("create topic %s via %s: %v %v", name, addr, err, r.Err)
	}
}

// endOffsets returns each partition's high watermark.
func endOffsets(tb testing.TB, addr, topic string) map[int32]int64 {
	return kafkaclients.EndOffsets(tb, addr, topic)
}

// kgoLog records kgo's log lines (for the retriable-error assertions).
type kgoLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *kgoLog) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (l *kgoLog) Log(level kgo.LogLevel, msg string, kv ...any) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", level, msg)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, " %v=%v", kv[i], kv[i+1])
	}
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
}

func (l *kgoLog) matching(substrs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, s := range l.lines {
		for _, sub := range substrs {
			if !strings.Contains(s, sub) {
				continue next
			}
		}
		out = append(out, s)
	}
	return out
}

// logBytes is the total size of the WAL segment files (*.log) under dir (0 if none).
func logBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".log") {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// partitionBytes sums, per partition, the WAL segment bytes under <data>/topics/<topic>-<id>/<p>/.
func partitionBytes(dataDir, topic string) map[int32]int64 {
	out := map[int32]int64{}
	ents, _ := os.ReadDir(filepath.Join(dataDir, "topics"))
	for _, e := range ents {
		name := e.Name()
		i := strings.LastIndexByte(name, '-')
		if i < 0 || name[:i] != topic {
			continue
		}
		parts, _ := os.ReadDir(filepath.Join(dataDir, "topics", name))
		for _, p := range parts {
			var n int32
			if _, err := fmt.Sscanf(p.Name(), "%d", &n); err != nil || !p.IsDir() {
				continue
			}
			out[n] += logBytes(filepath.Join(dataDir, "topics", name, p.Name()))
		}
	}
	return out
}
