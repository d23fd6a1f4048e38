package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

type meshBroker struct {
	ep      *endpoint.Endpoint
	b       *broker.Broker
	stopCtl func()
}

// startMeshBroker runs a broker with its control-plane node, trusting gw.
func startMeshBroker(t *testing.T, gw key.PublicKey) *meshBroker {
	t.Helper()
	ep, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	b, closeBroker := serveBroker(t, ep, gw)
	t.Cleanup(func() { ep.Close(); closeBroker() })
	return &meshBroker{ep: ep, b: b}
}

// startGateway runs the gateway command with args and environment e until the test ends, and
// returns the address its banner names; the test fails if no banner comes within wait.
func startGateway(t *testing.T, args []string, e map[string]string, wait time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &lineWriter{lines: make(chan string, 16)}
	go func() { done <- run(ctx, args, env(e), out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	select {
	case line := <-out.lines:
		return strings.Fields(strings.TrimPrefix(line, "gateway listening on "))[0]
	case err := <-done:
		t.Fatalf("gateway exited: %v", err)
	case <-time.After(wait):
		t.Fatalf("gateway printed no banner in %v", wait)
	}
	return ""
}

// serveBroker opens a broker and its group coordinator in a temporary directory, as the
// binaries do (cli.OpenBroker), and serves them over ep to gw. The caller closes ep, then
// calls closeBroker.
func serveBroker(t *testing.T, ep *endpoint.Endpoint, gw key.PublicKey) (b *broker.Broker, closeBroker func()) {
	t.Helper()
	b, gc, closeAll, err := cli.OpenBroker(t.TempDir(), 1, cli.Storage{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var trust brokermesh.TrustList
	trust.Add(gw)
	brokermesh.Serve(ep, brokermesh.NewServer(nil, brokerop.Parts{Data: b, Admin: b, Groups: gc, Producers: b}), trust, nil)
	return b, func() { closeAll() }
}

func (m *meshBroker) joinControl(t *testing.T, seed endpoint.NodeAddr) {
	t.Helper()
	g, err := gossip.Attach(m.ep, gossip.Config{CloseGrace: 100 * time.Millisecond, RejoinInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n, err := meshctl.Join(t.Context(), m.ep, g, meshctl.Config{Role: meshctl.RoleBroker, MeshID: "gw-test",
		Interval: 100 * time.Millisecond, Staleness: time.Second, Bootstrap: []endpoint.NodeAddr{seed}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	m.stopCtl = func() {
		if !stopped {
			stopped = true
			n.Close()
			g.Close()
		}
	}
	t.Cleanup(m.stopCtl)
}

// holds reports whether the broker stores records of topic/partition.
func (m *meshBroker) holds(t *testing.T, topic string, p int32) bool {
	lo, err := m.b.ListOffsets(t.Context(), &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: topic, Partition: p, Timestamp: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	return lo.Partitions[0].ErrorCode == 0 && lo.Partitions[0].Offset > 0
}

// meshSetup runs three brokers announcing on the control topic and the gateway command in mesh
// mode with ONE broker seed (the smallest NodeId); vars (may be nil) adds to its environment.
func meshSetup(t *testing.T, vars func([]*meshBroker) map[string]string) ([]*meshBroker, func(string) map[int]bool) {
	t.Helper()
	dir := t.TempDir()
	sk, err := key.LoadOrCreate(filepath.Join(dir, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	var bs []*meshBroker
	for range 3 {
		bs = append(bs, startMeshBroker(t, sk.Public()))
	}
	slices.SortFunc(bs, func(a, b *meshBroker) int { return strings.Compare(a.ep.NodeID().String(), b.ep.NodeID().String()) })
	seed := bs[0].ep.Addr()
	for _, b := range bs {
		b.joinControl(t, seed)
	}
	e := map[string]string{"RAFKA_MESH_ID": "gw-test", "RAFKA_GOSSIP_INTERVAL_MS": "100", "RAFKA_STALENESS_MS": "1000"}
	if vars != nil {
		for k, v := range vars(bs) {
			e[k] = v
		}
	}
	addr := startGateway(t, []string{"-listen", "127.0.0.1:0", "-data", dir, "-brokers", seed.String(), "-mesh-bind", "127.0.0.1:0"}, e, 10*time.Second)
	ctx := t.Context()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)

	const parts = 6
	// place creates topic with parts partitions, writes one record to each, and returns the
	// set of brokers (indexes) that hold them.
	place := func(topic string) map[int]bool {
		t.Helper()
		tctx, tcancel := context.WithTimeout(ctx, 20*time.Second)
		defer tcancel()
		if _, err := adm.CreateTopic(tctx, parts, 1, nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		var recs []*kgo.Record
		for p := range int32(parts) {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "%s-%d", topic, p)})
		}
		if err := cl.ProduceSync(tctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", topic, err)
		}
		on := map[int]bool{}
		for p := range int32(parts) {
			n := 0
			for i, b := range bs {
				if b.holds(t, topic, p) {
					on[i] = true
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%s/%d stored on %d brokers", topic, p, n)
			}
		}
		return on
	}
	return bs, place
}

// TestMeshGatewayLearnsBrokers: the gateway command in mesh mode with ONE broker seed learns
// the other two brokers (brokers from before the metadata quorum: named in -trusted-brokers)
// from the control topic, and a new topic's partitions land on all three. When one broker
// stops announcing, its digest expires and a newer topic's partitions avoid it.
func TestMeshGatewayLearnsBrokers(t *testing.T) {
	bs, place := meshSetup(t, func(bs []*meshBroker) map[string]string {
		var ids []string
		for _, b := range bs {
			ids = append(ids, b.ep.NodeID().String())
		}
		return map[string]string{"RAFKA_TRUSTED_BROKERS": strings.Join(ids, ",")}
	})
	// Learning takes a gossip round or two; each attempt uses a new topic.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		on := place(fmt.Sprint("learned-", i))
		if len(on) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions still only on brokers %v", on)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Broker 2 stops announcing; after the staleness period new topics avoid it.
	bs[2].stopCtl()
	time.Sleep(1500 * time.Millisecond)
	deadline = time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		on := place(fmt.Sprint("after-", i))
		if !on[2] && len(on) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new partitions still placed on the expired broker: %v", on)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMeshGatewayLearnsNoStrangers: brokers from before the quorum have no member list, so
// without -trusted-brokers the gateway learns no broker from the control topic (issue #17: a
// node that announces itself is not a broker): every partition stays on the seed.
func TestMeshGatewayLearnsNoStrangers(t *testing.T) {
	_, place := meshSetup(t, nil)
	for i := range 3 { // several gossip rounds (100 ms each) apart
		if on := place(fmt.Sprint("strangers-", i)); len(on) != 1 || !on[0] {
			t.Fatalf("partitions placed on %v, want the seed (0) only", on)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestMeshGatewayTrustedBrokers: with RAFKA_TRUSTED_BROKERS naming only broker 1, the gateway
// learns broker 1 but ignores broker 2, which announces itself just the same.
func TestMeshGatewayTrustedBrokers(t *testing.T) {
	_, place := meshSetup(t, func(bs []*meshBroker) map[string]string {
		return map[string]string{"RAFKA_TRUSTED_BROKERS": bs[1].ep.NodeID().String()}
	})
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		on := place(fmt.Sprint("trusted-", i))
		if on[2] {
			t.Fatalf("partitions placed on the untrusted broker: %v", on)
		}
		if len(on) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trusted broker was never learned: %v", on)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Several more gossip rounds: still never on broker 2.
	time.Sleep(500 * time.Millisecond)
	if on := place("trusted-late"); on[2] || len(on) != 2 {
		t.Fatalf("late topic on %v", on)
	}
}

type lineWriter struct {
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := slices.Index(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default:
		}
		w.buf = w.buf[i+1:]
	}
}
