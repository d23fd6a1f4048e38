package gossip

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// TestEndpointSwarm runs five gossip nodes over real mesh endpoints (QUIC
// with iroh TLS) on loopback: joins, broadcasts from every node, and a node
// leaving.
func TestEndpointSwarm(t *testing.T) {
	const n = 5
	type node struct {
		ep  *endpoint.Endpoint
		g   *Gossip
		sub *Topic
	}
	var nodes []*node
	defer func() {
		for _, nd := range nodes {
			_ = nd.g.Close()
			_ = nd.ep.Close()
		}
	}()
	for i := range n {
		ep, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		g, err := Attach(ep, Config{CloseGrace: 200 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			_ = ep.Close()
			t.Fatal(err)
		}
		nd := &node{ep: ep, g: g}
		nodes = append(nodes, nd)
		var boot []key.PublicKey
		if i > 0 {
			contact := nodes[(i-1)/2]
			ep.AddNodeAddr(contact.ep.Addr())
			boot = []key.PublicKey{contact.ep.NodeID()}
		}
		nd.sub, err = g.Subscribe(t.Context(), testTopic, boot)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			waitFor(t, nd.sub, 10*time.Second, fmt.Sprint("node ", i, " Joined"), func(e Event) bool { return e.Kind == Joined })
		}
	}
	tns := make([]*testNode, n)
	contents := map[string]int{}
	for i, nd := range nodes {
		tns[i] = &testNode{g: nd.g, sub: nd.sub, id: nd.ep.NodeID()}
		c := fmt.Sprint("over quic from ", i)
		contents[c] = i
		if err := nd.sub.Broadcast(t.Context(), []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	expectAll(t, tns, contents)
	// Nodes learnt each other's addresses from PeerData: the last node only
	// ever got its contact's address by hand, yet knows every neighbor's.
	last := nodes[n-1]
	ns, err := last.g.Neighbors(t.Context(), testTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ns {
		if a, ok := last.ep.NodeAddrOf(p); !ok || len(a.Direct) == 0 {
			t.Fatalf("no address for neighbor %s", p.ShortString())
		}
	}
	// The first node leaves; its neighbors see NeighborDown.
	first := nodes[0]
	fns, _ := first.g.Neighbors(t.Context(), testTopic)
	if err := first.sub.Close(); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes[1:] {
		for _, p := range fns {
			if p == nd.ep.NodeID() {
				waitFor(t, nd.sub, 10*time.Second, "NeighborDown", func(e Event) bool { return e.Kind == NeighborDown && e.Peer == first.ep.NodeID() })
			}
		}
	}
}
