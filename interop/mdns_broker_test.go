package interop

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// buildCmd compiles ./cmd/<name> of this module into dir.
func buildCmd(t *testing.T, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "../cmd/"+name)
	cmd.Env = append(os.Environ(), "GOPROXY=off") // the namespace has no network; the module cache has everything
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, b)
	}
	return out
}

// startCmd runs a command until the test ends and returns its stdout lines.
func startCmd(t *testing.T, env []string, bin string, args ...string) <-chan string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), filepath.Base(bin)+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
		}
		<-done
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", filepath.Base(bin), b)
		}
	})
	return lines
}

// TestMDNSGatewayFindsBroker: in the private namespace with multicast on loopback, the real
// broker and gateway commands find each other by mDNS with no broker address given anywhere:
// the broker runs with RAFKA_MDNS=1, the gateway with -mdns and no -brokers; a Kafka client
// then produces and consumes through the gateway.
func TestMDNSGatewayFindsBroker(t *testing.T) {
	if err := irohnode.EnableLoopbackMulticast(); err != nil {
		if os.Getenv(irohnode.RequiredEnv) == "1" {
			t.Fatal(err)
		}
		t.Skipf("needs a private network namespace: %v", err)
	}
	dir := t.TempDir()
	bin := t.TempDir()
	brokerBin, gatewayBin := buildCmd(t, bin, "broker"), buildCmd(t, bin, "gateway")
	gwData := filepath.Join(dir, "gw")
	idOut, err := exec.Command(gatewayBin, "-data", gwData, "-print-node-id").Output()
	if err != nil {
		t.Fatal(err)
	}
	gwID := strings.TrimSpace(string(idOut))
	common := []string{"RAFKA_MESH_ID=mdns-interop", "RAFKA_GOSSIP_INTERVAL_MS=200"}

	bl := startCmd(t, append(common, "RAFKA_MDNS=1"), brokerBin, "-data", filepath.Join(dir, "broker"), "-bind", "127.0.0.1:0", "-trust", gwID)
	select {
	case l := <-bl:
		t.Logf("broker: %s", l)
	case <-time.After(30 * time.Second):
		t.Fatal("broker did not start")
	}
	start := time.Now()
	gl := startCmd(t, common, gatewayBin, "-data", gwData, "-listen", "127.0.0.1:0", "-mdns", "-mdns-wait", "500ms", "-mesh-bind", "127.0.0.1:0")
	var addr string
	select {
	case l := <-gl:
		addr = strings.Fields(strings.TrimPrefix(l, "gateway listening on "))[0]
		t.Logf("gateway serving after %v: %s", time.Since(start).Round(time.Millisecond), l)
	case <-time.After(30 * time.Second):
		t.Fatal("gateway found no broker by mDNS in 30s")
	}

	ctx := ctxFor(t, 60*time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DisableIdempotentWrite(), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("mdns-topic"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 50
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "mdns-topic", Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	var got []string
	for len(got) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != n {
		t.Fatalf("consumed %d of %d records", len(got), n)
	}
	for i, v := range got {
		if v != fmt.Sprintf("v%d", i) {
			t.Fatalf("record %d = %q", i, v)
		}
	}
}
