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
	"github.com/meshkafka/meshkafka/gateway/cluster"
	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshctl"
)

const mdnsMesh = "gw-mdns"

// lanNode is a mesh node on the in-memory LAN: it publishes itself by mDNS and joins the
// control topic with no bootstrap peers (it waits to be joined), as cmd/broker -mdns does.
type lanNode struct {
	ep *endpoint.Endpoint
	b  *broker.Broker // nil for a node that is not a broker
}

func startLANNode(t *testing.T, h *meshtest.Link, role meshctl.Role, gw key.PublicKey) *lanNode {
	t.Helper()
	sk := key.GenerateSecretKey()
	svc, err := mdns.New(mdns.Config{Self: sk.Public(), Conns: h.MDNSConns(), Interval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := endpoint.New(endpoint.Options{SecretKey: sk, BindAddr: "127.0.0.1:0", Discovery: svc})
	if err != nil {
		t.Fatal(err)
	}
	n := &lanNode{ep: ep}
	var closers []func()
	if role == meshctl.RoleBroker {
		b, closeBroker := serveBroker(t, ep, gw)
		n.b = b
		closers = append(closers, closeBroker)
	}
	g, err := gossip.Attach(ep, gossip.Config{CloseGrace: 100 * time.Millisecond, RejoinInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := meshctl.Join(t.Context(), ep, g, meshctl.Config{Role: role, MeshID: mdnsMesh,
		Interval: 100 * time.Millisecond, Staleness: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctl.Close()
		g.Close()
		ep.Close()
		svc.Close()
		for _, c := range closers {
			c()
		}
	})
	return n
}

// startMDNSGateway runs the gateway command with -mdns and no broker address; extra adds
// arguments. It returns the Kafka address once the gateway serves.
func startMDNSGateway(t *testing.T, h *meshtest.Link, dir string, extra ...string) string {
	t.Helper()
	mdnsConns = h.MDNSConns
	t.Cleanup(func() { mdnsConns = nil })
	e := map[string]string{"RAFKA_MESH_ID": mdnsMesh, "RAFKA_GOSSIP_INTERVAL_MS": "100", "RAFKA_STALENESS_MS": "2000"}
	args := append([]string{"-listen", "127.0.0.1:0", "-data", dir, "-mdns", "-mesh-bind", "127.0.0.1:0", "-mdns-wait", "1s"}, extra...)
	return startGateway(t, args, e, 20*time.Second)
}

// produceConsume writes n records to topic through the gateway and reads them back.
func produceConsume(t *testing.T, addr, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr := kgoClient(t, addr, kgo.AllowAutoTopicCreation(), kgo.DisableIdempotentWrite())
	defer pr.Close()
	for i := range n {
		if err := pr.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "rec-%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	co := kgoClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer co.Close()
	var got []string
	for len(got) < n {
		fs := co.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if v != fmt.Sprintf("rec-%d", i) {
			t.Fatalf("record %d = %q", i, v)
		}
	}
}

// holdsPlacements reports whether a broker stores placement records (only the controller does).
func holdsPlacements(t *testing.T, b *broker.Broker) bool {
	return (&meshBroker{b: b}).holds(t, cluster.PlacementTopic, 0)
}

// lanBrokers starts n brokers on h that trust gw, ordered by NodeId text (the Cluster's order).
func lanBrokers(t *testing.T, h *meshtest.Link, gw key.PublicKey, n int) []*lanNode {
	t.Helper()
	var bs []*lanNode
	for range n {
		bs = append(bs, startLANNode(t, h, meshctl.RoleBroker, gw))
	}
	slices.SortFunc(bs, func(a, b *lanNode) int { return strings.Compare(a.ep.NodeID().String(), b.ep.NodeID().String()) })
	return bs
}

// gatewayDir returns a data directory for the gateway command with its identity already in
// it, and the identity's public key (what brokers trust).
func gatewayDir(t *testing.T) (dir string, gw key.PublicKey) {
	t.Helper()
	dir = t.TempDir()
	sk, err := key.LoadOrCreate(filepath.Join(dir, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, sk.Public()
}

// TestGatewayFindsBrokersByMDNS: two brokers and a non-broker node publish themselves on an
// (in-memory) mDNS link; the gateway command, given -mdns and no broker address at all, hears
// of all three, learns from their control-plane digests which two are brokers, makes the one
// with the smaller NodeId the controller, and serves a Kafka produce/consume through them.
func TestGatewayFindsBrokersByMDNS(t *testing.T) {
	var h meshtest.Link
	dir, gw := gatewayDir(t)
	bs := lanBrokers(t, &h, gw, 2)
	decoy := startLANNode(t, &h, meshctl.RoleGateway, gw)
	addr := startMDNSGateway(t, &h, dir)
	produceConsume(t, addr, "found-by-mdns", 20)
	if !holdsPlacements(t, bs[0].b) || holdsPlacements(t, bs[1].b) {
		t.Fatalf("placement log on the wrong broker: smallest %v, other %v", holdsPlacements(t, bs[0].b), holdsPlacements(t, bs[1].b))
	}
	_ = decoy // a non-broker on the LAN: had the gateway used it as a broker, produce would fail
}

// TestGatewayMDNSTrustedController: with -trusted-brokers and no seeds, the controller is the
// smallest trusted NodeId, whichever brokers are found first; an untrusted broker on the LAN
// gets nothing even when its NodeId is smaller.
func TestGatewayMDNSTrustedController(t *testing.T) {
	var h meshtest.Link
	dir, gw := gatewayDir(t)
	bs := lanBrokers(t, &h, gw, 3)
	// Trust the two larger ids: the smallest broker is an intruder.
	trusted := bs[1].ep.NodeID().String() + "," + bs[2].ep.NodeID().String()
	addr := startMDNSGateway(t, &h, dir, "-trusted-brokers", trusted)
	produceConsume(t, addr, "trusted-mdns", 10)
	if !holdsPlacements(t, bs[1].b) {
		t.Fatal("the smallest trusted broker is not the controller")
	}
	for i, b := range []*lanNode{bs[0], bs[2]} {
		if holdsPlacements(t, b.b) {
			t.Fatalf("broker %d holds placements", i)
		}
	}
	if (&meshBroker{b: bs[0].b}).holds(t, "trusted-mdns", 0) {
		t.Fatal("records placed on the untrusted broker")
	}
}

// TestGatewayReachesBrokerViaRelay: a broker reachable only through a relay (its node takes no
// direct path) is given to the gateway by NodeId alone; with -relay the gateway reaches it
// through that relay and serves produce/consume.
func TestGatewayReachesBrokerViaRelay(t *testing.T) {
	srv, url := meshtest.StartRelay(t)
	dir, gw := gatewayDir(t)
	ep, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0", HomeRelay: url, DisableDirect: true})
	if err != nil {
		t.Fatal(err)
	}
	_, closeBroker := serveBroker(t, ep, gw)
	g, err := gossip.Attach(ep, gossip.Config{CloseGrace: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := meshctl.Join(t.Context(), ep, g, meshctl.Config{Role: meshctl.RoleBroker, MeshID: "gw-relay", Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close(); g.Close(); ep.Close(); closeBroker() })

	e := map[string]string{"RAFKA_MESH_ID": "gw-relay", "RAFKA_GOSSIP_INTERVAL_MS": "100", "RAFKA_RELAY_URL": url}
	addr := startGateway(t, []string{"-listen", "127.0.0.1:0", "-data", dir, "-brokers", ep.NodeID().String(), "-mesh-bind", "127.0.0.1:0"}, e, 10*time.Second)
	before := srv.Stats().PacketsSent
	produceConsume(t, addr, "via-relay", 10)
	if got := srv.Stats().PacketsSent - before; got < 20 {
		t.Fatalf("relay forwarded only %d packets", got)
	}
}

func TestReachFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-mdns", "-relay", "ftp://x"},
		{"-mdns", "-stun", "nohostport"},
		{"-mdns", "-mdns-wait", "0s"},
	} {
		err := run(context.Background(), append([]string{"-data", t.TempDir(), "-listen", "127.0.0.1:0"}, args...), env(nil), io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	o, err := parse(nil, env(map[string]string{"RAFKA_MDNS": "1", "RAFKA_RELAY_URL": "http://r:1", "RAFKA_MDNS_WAIT_MS": "1500"}), io.Discard)
	if err != nil || !o.MDNS || !o.meshMode() || o.Relay != "http://r:1" || o.mdnsWait != 1500*time.Millisecond {
		t.Fatalf("from env: %+v %v", o.reachOptions, err)
	}
	o, err = parse(nil, env(nil), io.Discard)
	if err != nil || o.MDNS || o.meshMode() || o.Relay != "" || len(o.STUN) != 0 {
		t.Fatalf("defaults must contact nothing and embed a broker: %+v %v", o.reachOptions, err)
	}
}

// TestGatewayMDNSAddsToSeeds: with -brokers naming one broker and -mdns, the seed stays the
// controller and a broker known only from mDNS (it shares no gossip peer with the seed) is
// learned too: a topic's partitions land on both. These brokers predate the metadata quorum
// (no member list), so the learned one must be in -trusted-brokers (issue #17).
func TestGatewayMDNSAddsToSeeds(t *testing.T) {
	var h meshtest.Link
	dir, gw := gatewayDir(t)
	bs := lanBrokers(t, &h, gw, 2)
	seed := bs[1] // the larger NodeId: it is the controller only because it is the seed
	addr := startMDNSGateway(t, &h, dir, "-brokers", seed.ep.Addr().String(),
		"-trusted-brokers", bs[0].ep.NodeID().String()+","+bs[1].ep.NodeID().String())
	cl := kgoClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite())
	defer cl.Close()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		topic := fmt.Sprint("seeded-", i)
		var recs []*kgo.Record
		for p := range int32(4) {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte("x")})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := kadmCreate(ctx, cl, topic, 4)
		if err == nil {
			err = cl.ProduceSync(ctx, recs...).FirstErr()
		}
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		on0, on1 := false, false
		for p := range int32(4) {
			on0 = on0 || (&meshBroker{b: bs[0].b}).holds(t, topic, p)
			on1 = on1 || (&meshBroker{b: bs[1].b}).holds(t, topic, p)
		}
		if on0 && on1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mDNS-only broker was never used (on0=%v on1=%v)", on0, on1)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !holdsPlacements(t, seed.b) || holdsPlacements(t, bs[0].b) {
		t.Fatal("the seed is not the controller")
	}
}

func kadmCreate(ctx context.Context, cl *kgo.Client, topic string, parts int32) (kadm.CreateTopicResponse, error) {
	return kadm.NewClient(cl).CreateTopic(ctx, parts, 1, nil, topic)
}
