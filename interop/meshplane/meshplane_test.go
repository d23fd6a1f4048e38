package meshplane_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// metricsAddr is where every broker and the gateway serve /metrics, on their own namespace's
// loopback.
const metricsAddr = "127.0.0.1:9100"

// env is one cluster in namespaces with the test's misbehaving mesh node.
type env struct {
	c       *cluster.Cluster
	gw      *cluster.Gateway
	fl      *flooder
	brokers []int32 // the brokers Metadata lists before any fault
}

func start(t testing.TB) *env {
	t.Helper()
	cluster.RequireQuorum(t)
	cluster.RequireNamespaces(t)
	withMetrics := func() []string { return []string{"-metrics", metricsAddr} }
	c := cluster.Start(t, cluster.Options{Brokers: 3, Gateways: 1, Quorum: true, Netns: true, Relay: true,
		BrokerArgs:  func(*cluster.Broker) []string { return withMetrics() },
		GatewayArgs: func(*cluster.Gateway) []string { return withMetrics() },
	})
	c.QuorumLeader(t, c.Brokers, time.Minute)
	e := &env{c: c, gw: c.Gateways[0]}
	e.brokers = e.metadataBrokers(t)
	e.fl = newFlooder(t, c)
	return e
}

// TestMeshPlane runs the mesh-plane faults of issue #17 on one cluster, in turn.
func TestMeshPlane(t *testing.T) {
	e := start(t)
	members := e.c.Brokers[:3]
	t.Run("ConnectionPaths", func(t *testing.T) { connectionPaths(t, members) })
	t.Run("RogueBroker", func(t *testing.T) { rogueBroker(t, e, members) })
	t.Run("PhantomDigests", func(t *testing.T) { phantomDigests(t, e, members) })
	t.Run("ControlFlood", func(t *testing.T) { controlFlood(t, e, members) })
	t.Run("RelayConnectionCap", func(t *testing.T) { relayConnectionCap(t, e) })
}

// connectionPaths: every member's /metrics counts its live mesh connections by path, and the
// members (on one bridge, UDP open) reach each other directly.
func connectionPaths(t *testing.T, members []*cluster.Broker) {
	for _, b := range members {
		cluster.WaitFor(t, b.Name+" reporting direct connections", time.Minute, func() (bool, string) {
			f := scrape(t, &b.Node)["meshkafka_mesh_connections"]
			direct := 0.0
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "path" && l.GetValue() == "direct" {
						direct = m.GetGauge().GetValue()
					}
				}
			}
			return direct >= 2, fmt.Sprintf("meshkafka_mesh_connections: %v", f)
		})
	}
}

// rogueBroker: a broker process nobody admitted, seeded with the cluster's brokers.
func rogueBroker(t *testing.T, e *env, members []*cluster.Broker) {
	rogue := e.c.AddBroker(t) // a fresh identity and namespace, trusted by no running broker
	args := []string{"-data", rogue.Dir, "-bind", rogue.Bind, "-quorum-seeds", cluster.Seeds(members...),
		"-quorum-voters", "3", "-trust", strings.Join(append(e.c.BrokerIDs(), e.gw.ID), ","),
		"-relay", e.c.RelayURL, "-stun", e.c.STUN}
	p := cluster.StartProc(t, rogue.Name, rogue.NS.Netns, nil, cluster.Bin(t, "broker"), args...)
	rogue.P = p
	// The members refuse its calls (its QuorumJoin) by name.
	cluster.WaitFor(t, "a member refusing the rogue broker", 2*time.Minute, func() (bool, string) {
		for _, b := range members {
			for _, line := range strings.Split(b.P.Logs(), "\n") {
				if strings.Contains(line, rogue.ID) && strings.Contains(line, "refus") {
					return true, ""
				}
			}
		}
		return false, "no refusal logged yet"
	})
	// A broker that cannot join the quorum does not serve, so it never announces itself on
	// the control topic (the phantom digests below stand for one that would). A new topic is
	// placed on the members only, and Metadata lists the same brokers.
	topic := "after-rogue"
	e.createAndCheck(t, topic, members)
	e.produceConsume(t, topic, 200)
	// Stopped cleanly, a broker writes out every partition it holds (files are made at
	// checkpoint or Close): the rogue has none.
	_ = p.Stop()
	if files := partitionDirs(rogue.Dir); len(files) > 0 {
		t.Fatalf("the rogue broker stored partitions: %v", files)
	}
}

// phantomDigests: 300 signed digests of brokers nobody knows.
func phantomDigests(t *testing.T, e *env, members []*cluster.Broker) {
	before := e.gwCounter(t, "meshkafka_control_digests_total", "not_believed")
	const phantoms = 300
	ctx := t.Context()
	for i := range phantoms {
		sk := key.GenerateSecretKey()
		b, err := meshctl.Encode(meshctl.Digest{Node: sk.Public(), Role: meshctl.RoleBroker, MeshID: meshctl.DefaultMeshID,
			Seq: 1, Addrs: []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 99, 0, byte(100 + i%100)}), 7070)}}, sk)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.fl.topic.Broadcast(ctx, b); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Millisecond) // 40/s: under a member's per-peer gossip budget, so all arrive
	}
	cluster.WaitFor(t, "the gateway refusing every phantom", time.Minute, func() (bool, string) {
		n := e.gwCounter(t, "meshkafka_control_digests_total", "not_believed")
		return n-before >= phantoms, fmt.Sprintf("not believed since: %v of %d", n-before, phantoms)
	})
	for _, b := range members {
		if n := counter(t, scrape(t, &b.Node), "meshkafka_control_digests_total", "result", "not_believed"); n < phantoms {
			t.Errorf("%s refused %v digests, want >= %d", b.Name, n, phantoms)
		}
	}
	e.createAndCheck(t, "after-phantoms", members)
	e.produceConsume(t, "after-phantoms", 200)
}

// controlFlood: garbage on the control topic at 5,000 frames/s for a few seconds while a
// producer runs through the gateway.
func controlFlood(t *testing.T, e *env, members []*cluster.Broker) {
	const topic = "during-flood"
	e.createAndCheck(t, topic, members)
	procs := map[string]int{e.gw.Name: e.gw.P.Pid()}
	for _, b := range members {
		procs[b.Name] = b.P.Pid()
	}
	rssBefore := map[string]int64{}
	for n, pid := range procs {
		rssBefore[n] = rss(t, pid)
	}
	droppedBefore := 0.0
	for _, b := range members {
		droppedBefore += counter(t, scrape(t, &b.Node), "meshkafka_gossip_frames_dropped_total", "", "")
	}
	stop := e.fl.flood(t.Context())
	e.produceConsume(t, topic, 2000) // while the flood runs
	sent := stop()
	droppedAfter := 0.0
	for _, b := range members {
		droppedAfter += counter(t, scrape(t, &b.Node), "meshkafka_gossip_frames_dropped_total", "", "")
	}
	if droppedAfter <= droppedBefore {
		t.Errorf("%d junk frames sent and the members' gossip budgets dropped none (%v → %v)", sent, droppedBefore, droppedAfter)
	}
	// Every member fsynced its journal for the acks=all records (replicas too): the group
	// commits show on its /metrics.
	for _, b := range members {
		f := scrape(t, &b.Node)["meshkafka_wal_fsync_duration_seconds"]
		if f == nil || f.GetMetric()[0].GetHistogram().GetSampleCount() == 0 {
			t.Errorf("%s reports no journal fsync: %v", b.Name, f)
		}
	}
	for n, pid := range procs {
		t.Logf("%s RSS %d → %d KiB during a flood of %d frames", n, rssBefore[n], rss(t, pid), sent)
	}
	t.Logf("members' gossip budgets dropped %v frames", droppedAfter-droppedBefore)
}

// relayConnectionCap: cmd/relay's default cap of connections per IP address.
func relayConnectionCap(t *testing.T, e *env) {
	const cap = 256 // cmd/relay's default -max-conns-per-ip
	relayAddr := strings.TrimPrefix(e.c.RelayURL, "http://")
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	status := func() int {
		c, err := e.fl.ns.DialContext(t.Context(), "tcp", relayAddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /relay HTTP/1.1\r\nHost: relay\r\nUpgrade: iroh derp http\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Time{})
		return resp.StatusCode
	}
	for i := range cap {
		if s := status(); s != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d from one address: status %d, want 101", i+1, s)
		}
	}
	if s := status(); s != http.StatusTooManyRequests {
		t.Fatalf("connection %d from one address: status %d, want 429", cap+1, s)
	}
	// The cluster's own nodes, each on its own address, still reach the relay: a fresh
	// upgrade from the gateway's namespace is accepted.
	c, err := e.gw.NS.DialContext(t.Context(), "tcp", relayAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /relay HTTP/1.1\r\nHost: relay\r\nUpgrade: iroh derp http\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("another address while one is at its cap: %v %v", resp, err)
	}
}

// flooder is a mesh node of the test process, in a namespace of its own on the cluster's
// network, subscribed to the control topic through the members.
type flooder struct {
	ns    *cluster.NetNode
	topic *gossip.Topic
}

func newFlooder(t testing.TB, c *cluster.Cluster) *flooder {
	t.Helper()
	ns := c.Net.Attach("flooder", 90)
	var ep *endpoint.Endpoint
	if err := ns.Do(func() (err error) {
		ep, err = endpoint.New(endpoint.Options{BindAddr: ns.Addr.String() + ":0"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	g, err := gossip.Attach(ep, gossip.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	var boot []key.PublicKey
	for _, b := range c.Brokers {
		id, err := key.ParsePublicKey(b.ID)
		if err != nil {
			t.Fatal(err)
		}
		ep.AddNodeAddr(endpoint.NodeAddr{ID: id, Direct: []netip.AddrPort{netip.MustParseAddrPort(b.Bind)}})
		boot = append(boot, id)
	}
	topic, err := g.Subscribe(t.Context(), meshctl.TopicFor(meshctl.DefaultMeshID), boot)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topic.Close() })
	// Wait for a neighbor, then keep draining events so the topic never lags.
	up := make(chan struct{})
	go func() {
		once := false
		for ev := range topic.Events() {
			if ev.Kind == gossip.NeighborUp && !once {
				once = true
				close(up)
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(time.Minute):
		t.Fatal("the flooder found no neighbor on the control topic")
	}
	return &flooder{ns: ns, topic: topic}
}

// flood broadcasts 1,000-byte junk frames on the control topic at about 5,000 a second
// until the returned func is called; it returns how many were sent.
func (f *flooder) flood(ctx context.Context) (stop func() int) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		sent := 0
		junk := make([]byte, 1000)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				done <- sent
				return
			case <-tick.C:
			}
			for range 5 { // 5 per millisecond
				junk[0], junk[1] = byte(sent), byte(sent>>8)
				if f.topic.Broadcast(ctx, junk) == nil {
					sent++
				}
			}
		}
	}()
	return func() int { cancel(); return <-done }
}

// createAndCheck creates a 6-partition topic through the gateway and checks that every
// replica of every partition is one of members (by Kafka id: the quorum's ids of the members).
func (e *env) createAndCheck(t testing.TB, topic string, members []*cluster.Broker) {
	t.Helper()
	adm := kadm.NewClient(e.client(t))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 6, -1, nil, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	allowed := map[int32]bool{}
	st, err := members[0].QuorumStatus()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range members {
		m, ok := st.Member(b.ID)
		if !ok {
			t.Fatalf("%s is not in the quorum status: %+v", b.Name, st)
		}
		allowed[m.KafkaID] = true
	}
	cluster.WaitFor(t, "the topic's partitions placed", time.Minute, func() (bool, string) {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		got := md.Brokers.NodeIDs()
		slices.Sort(got)
		if !slices.Equal(got, e.brokers) {
			t.Fatalf("Metadata lists brokers %v, before the faults %v", got, e.brokers)
		}
		td := md.Topics[topic]
		if len(td.Partitions) != 6 {
			return false, fmt.Sprintf("%d partitions", len(td.Partitions))
		}
		// The gateway names itself as every partition's leader and lists no other broker;
		// the quorum's placement (a broker's admin API) has the real leader, a member, and
		// the same replicas.
		placed, err := members[0].Partitions(topic)
		if err != nil {
			return false, err.Error()
		}
		for _, pv := range placed {
			p, ok := td.Partitions[pv.Partition]
			if !ok || !slices.Equal(p.Replicas, pv.Replicas) || !allowed[pv.Leader] || p.Leader != e.brokers[0] {
				return false, fmt.Sprintf("partition %d: Metadata %+v, quorum %+v", pv.Partition, p, pv)
			}
		}
		for _, p := range td.Partitions {
			for _, r := range p.Replicas {
				if !allowed[r] {
					t.Fatalf("partition %d of %s placed on broker %d, not a member (%v)", p.Partition, topic, r, allowed)
				}
			}
		}
		return true, ""
	})
}

// produceConsume writes n records acks=all through the gateway and reads them all back.
func (e *env) produceConsume(t *testing.T, topic string, n int) {
	t.Helper()
	cl := e.client(t, kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(seen), n, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
}

// metadataBrokers is the sorted list of broker ids a Metadata request through the gateway
// answers.
func (e *env) metadataBrokers(t testing.TB) []int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	md, err := kadm.NewClient(e.client(t)).Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := md.Brokers.NodeIDs()
	slices.Sort(ids)
	return ids
}

func (e *env) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.gw.Addr), kgo.Dialer(e.c.Dialer()),
		kgo.RequiredAcks(kgo.AllISRAcks())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (e *env) gwCounter(t *testing.T, name, result string) float64 {
	return counter(t, scrape(t, &e.gw.Node), name, "result", result)
}

func scrape(t testing.TB, n *cluster.Node) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := n.HTTPClient().Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", n.Name, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", n.Name, err)
	}
	return fams
}

// counter sums the family's counters whose label has value ("" label: all of them); a
// family not exported yet counts 0.
func counter(t testing.TB, fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	t.Helper()
	sum := 0.0
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.GetMetric() {
		if label != "" {
			ok := false
			for _, l := range m.GetLabel() {
				ok = ok || (l.GetName() == label && l.GetValue() == value)
			}
			if !ok {
				continue
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// rss is a process's resident set in KiB.
func rss(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// partitionDirs lists the partition directories under a broker's data directory
// (<data>/topics/<topic>-<id>/<partition>).
func partitionDirs(dir string) []string {
	var out []string
	topics, _ := os.ReadDir(filepath.Join(dir, "topics"))
	for _, tp := range topics {
		parts, _ := os.ReadDir(filepath.Join(dir, "topics", tp.Name()))
		for _, p := range parts {
			out = append(out, tp.Name()+"/"+p.Name())
		}
	}
	return out
}
