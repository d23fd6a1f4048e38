package meshkafka_test

// Process harness: cmd/broker and cmd/gateway as child processes on loopback with random free
// ports (on package interop/cluster's Bins and Proc), every child killed when its test ends.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// bins returns the directory holding the built binaries (package interop/cluster builds them
// once, or takes them from MESHKAFKA_BIN_DIR).
func bins(tb testing.TB) string { return cluster.Bins(tb) }

// proc is one running child process (interop/cluster's).
type proc = cluster.Proc

// startProc starts bin with args, and env added to this process's environment; the process
// is SIGKILLed when tb ends unless stopped before.
func startProc(tb testing.TB, name string, env []string, bin string, args ...string) *proc {
	tb.Helper()
	return cluster.StartProc(tb, name, nil, env, bin, args...)
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
	b := &brokerNode{name: name, dir: filepath.Join(tmp, "data"), bind: cluster.FreeUDP(tb), trust: trust, addrFile: filepath.Join(tmp, "addr"), env: env}
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
		b := &brokerNode{name: fmt.Sprintf("broker-%d", i), dir: filepath.Join(tmp, "data"), bind: cluster.FreeUDP(tb), trust: trust,
			addrFile: filepath.Join(tmp, "addr"), admin: cluster.FreeTCP(tb)}
		out, err := exec.Command(filepath.Join(bins(tb), "broker"), "-data", b.dir, "-print-node-id").Output()
		if err != nil {
			tb.Fatalf("%s: -print-node-id: %v", b.name, err)
		}
		b.id = strings.TrimSpace(string(out))
		seeds = append(seeds, b.id+"@"+b.bind)
		bs = append(bs, b)
	}
	// All brokers start before any is waited for: the seed that founds the cluster does so
	// only once every other seed has answered, and a broker writes its addr file once its
	// quorum member is up.
	for _, b := range bs {
		b.args = []string{"-quorum-seeds", strings.Join(seeds, ","), "-admin", b.admin}
		b.launch(tb)
	}
	for _, b := range bs {
		b.waitAddr(tb)
	}
	voters := min(n, 3)
	bs[0].p.WaitFor(tb, "metadata quorum", 60*time.Second, func() bool {
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

// start runs the broker on its data directory and bind address and waits for its addr file.
func (b *brokerNode) start(tb testing.TB) {
	tb.Helper()
	b.launch(tb)
	b.waitAddr(tb)
}

// launch runs the broker process without waiting for it.
func (b *brokerNode) launch(tb testing.TB) {
	tb.Helper()
	os.Remove(b.addrFile)
	b.p = startProc(tb, b.name, b.env, filepath.Join(bins(tb), "broker"),
		append([]string{"-data", b.dir, "-bind", b.bind, "-trust", strings.Join(b.trust, ","), "-addr-file", b.addrFile}, b.args...)...)
}

// waitAddr waits for the broker's addr file and reads its seed address from it.
func (b *brokerNode) waitAddr(tb testing.TB) {
	tb.Helper()
	b.p.WaitFor(tb, "addr file", 15*time.Second, func() bool {
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

// start (re)starts the gateway with g.args and waits for its banner.
func (g *gatewayNode) start(tb testing.TB) {
	tb.Helper()
	g.p, g.addr = cluster.StartGateway(tb, g.name, nil, g.env, g.listen, 15*time.Second, append([]string{"-advertised-host", "127.0.0.1"}, g.args...)...)
	g.listen = g.addr
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
