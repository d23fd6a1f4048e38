package gossip

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testTopic = proto.TopicID{0x7e, 0x57}

type testNode struct {
	g   *Gossip
	mn  *memNode
	sub *Topic
	id  key.PublicKey
}

func startNode(t *testing.T, net *memNet, mod func(*Config)) *testNode {
	t.Helper()
	sk := key.GenerateSecretKey()
	id := sk.Public()
	mn := net.node(id)
	port := uint16(1000 + len(net.nodes))
	cfg := Config{
		Transport: mn,
		Me:        id,
		Addr: func() proto.AddrInfo {
			return proto.AddrInfo{Direct: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)}}
		},
		CloseGrace: 200 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mn.accept = func(ctx context.Context, c Conn) { _ = g.HandleConn(ctx, c) }
	return &testNode{g: g, mn: mn, id: id}
}

// waitFor reads events until pred holds (or fails the test after d).
func waitFor(t *testing.T, sub *Topic, d time.Duration, what string, pred func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				t.Fatalf("%s: event channel closed", what)
			}
			if pred(e) {
				return e
			}
		case <-timer.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func startSwarm(t *testing.T, n int) (*memNet, []*testNode) {
	t.Helper()
	net := newMemNet()
	var nodes []*testNode
	ctx := t.Context()
	for i := range n {
		tn := startNode(t, net, nil)
		var boot []key.PublicKey
		if i > 0 {
			boot = []key.PublicKey{nodes[(i-1)/2].id}
		}
		sub, err := tn.g.Subscribe(ctx, testTopic, boot)
		if err != nil {
			t.Fatal(err)
		}
		tn.sub = sub
		nodes = append(nodes, tn)
		if i > 0 {
			waitFor(t, sub, 5*time.Second, "Joined", func(e Event) bool { return e.Kind == Joined })
		}
	}
	t.Cleanup(func() {
		for _, tn := range nodes {
			_ = tn.g.Close()
		}
		net.wg.Wait()
	})
	return net, nodes
}

// collect drains every subscription into per-node sets of received content
// until each node has want messages or the deadline passes.
func expectAll(t *testing.T, nodes []*testNode, contents map[string]int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i, tn := range nodes {
		got := map[string]bool{}
		need := 0
		for _, from := range contents {
			if from != i {
				need++
			}
		}
		for len(got) < need {
			select {
			case e, ok := <-tn.sub.Events():
				if !ok {
					t.Fatalf("node %d: events closed", i)
				}
				if e.Kind == Received {
					if from, ok := contents[string(e.Content)]; !ok || from == i {
						t.Fatalf("node %d received unexpected %q", i, e.Content)
					}
					got[string(e.Content)] = true
				}
			case <-deadline:
				t.Fatalf("node %d received %d of %d messages", i, len(got), need)
			}
		}
	}
}

func TestSwarmBroadcast(t *testing.T) {
	_, nodes := startSwarm(t, 8)
	contents := map[string]int{}
	for i, tn := range nodes {
		c := fmt.Sprintf("hello from %d", i)
		contents[c] = i
		if err := tn.sub.Broadcast(t.Context(), []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	expectAll(t, nodes, contents)
	// Every node learnt addresses of its neighbors from PeerData.
	for i, tn := range nodes {
		ns, err := tn.g.Neighbors(t.Context(), testTopic)
		if err != nil || len(ns) == 0 {
			t.Fatalf("node %d neighbors %v %v", i, ns, err)
		}
		for _, nb := range ns {
			if a, ok := tn.mn.addr(nb); !ok || len(a.Direct) != 1 || a.RelayURL != "" {
				t.Fatalf("node %d has no address for neighbor %s: %+v", i, nb.ShortString(), a)
			}
		}
	}
}

func TestBroadcastNeighborsAndTooLarge(t *testing.T) {
	_, nodes := startSwarm(t, 2)
	if err := nodes[0].sub.BroadcastNeighbors(t.Context(), []byte("near")); err != nil {
		t.Fatal(err)
	}
	e := waitFor(t, nodes[1].sub, 5*time.Second, "neighbors message", func(e Event) bool { return e.Kind == Received })
	if string(e.Content) != "near" || !e.Neighbors || e.Peer != nodes[0].id {
		t.Fatalf("got %+v", e)
	}
	max := nodes[0].g.MaxContentSize()
	if max != 4025 {
		t.Fatalf("MaxContentSize = %d, want 4025 (doc §2.2)", max)
	}
	if err := nodes[0].sub.Broadcast(t.Context(), make([]byte, max+1)); err == nil {
		t.Fatal("oversized broadcast accepted")
	}
	big := bytes.Repeat([]byte{'b'}, max)
	if err := nodes[0].sub.Broadcast(t.Context(), big); err != nil {
		t.Fatal(err)
	}
	e = waitFor(t, nodes[1].sub, 5*time.Second, "largest message", func(e Event) bool { return e.Kind == Received })
	if !bytes.Equal(e.Content, big) {
		t.Fatalf("got %d bytes", len(e.Content))
	}
}

func TestNeighborDownWhenPeerLeaves(t *testing.T) {
	_, nodes := startSwarm(t, 3)
	// Node 2 joined through node 0; closing it must make its neighbors see
	// NeighborDown.
	ns, _ := nodes[2].g.Neighbors(t.Context(), testTopic)
	if len(ns) == 0 {
		t.Fatal("node 2 has no neighbors")
	}
	_ = nodes[2].sub.Close()
	for _, tn := range nodes[:2] {
		if !slices.Contains(ns, tn.id) {
			continue
		}
		waitFor(t, tn.sub, 5*time.Second, "NeighborDown", func(e Event) bool { return e.Kind == NeighborDown && e.Peer == nodes[2].id })
	}
	// The rest still talk.
	_ = nodes[0].sub.Broadcast(t.Context(), []byte("still here"))
	waitFor(t, nodes[1].sub, 5*time.Second, "broadcast", func(e Event) bool { return e.Kind == Received })
}

func TestSlowSubscriberLags(t *testing.T) {
	net := newMemNet()
	a := startNode(t, net, nil)
	b := startNode(t, net, func(c *Config) { c.EventBuffer = 4 })
	defer func() { _ = a.g.Close(); _ = b.g.Close(); net.wg.Wait() }()
	sa, _ := a.g.Subscribe(t.Context(), testTopic, nil)
	sb, _ := b.g.Subscribe(t.Context(), testTopic, []key.PublicKey{a.id})
	waitFor(t, sa, 5*time.Second, "Joined", func(e Event) bool { return e.Kind == Joined })
	// b never reads while a broadcasts 50 messages.
	for i := range 50 {
		if err := sa.Broadcast(t.Context(), []byte(fmt.Sprint("m", i))); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until b's actor has offered every message to the subscriber (delivered or dropped):
	// a message still in flight when the buffer is drained below would refill it and lag the
	// subscriber again, dropping "after". The actor is not blocked meanwhile: a round trip
	// through it still works.
	for {
		ns, err := b.g.Neighbors(t.Context(), testTopic)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) == 1 && countReceived(sb) >= 50 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(sb.Events()) != cap(sb.Events()) {
		t.Fatalf("subscriber buffer %d/%d after 50 unread messages", len(sb.Events()), cap(sb.Events()))
	}
	var kinds []EventKind
	for len(sb.Events()) > 0 {
		kinds = append(kinds, (<-sb.Events()).Kind)
	}
	if kinds[len(kinds)-1] != Lagged || slices.Index(kinds, Lagged) != len(kinds)-1 {
		t.Fatalf("events %v: want exactly one Lagged at the end", kinds)
	}
	// After catching up, events flow again.
	_ = sa.Broadcast(t.Context(), []byte("after"))
	waitFor(t, sb, 5*time.Second, "message after lag", func(e Event) bool { return e.Kind == Received && string(e.Content) == "after" })
}

// countReceived is how many Received events sub's actor has offered it (delivered or dropped).
func countReceived(sub *Topic) int64 { return sub.offeredReceived.Load() }

// rawPeer is a hand-driven peer: it dials a node and writes frames itself.
type rawPeer struct {
	id   key.PublicKey
	conn Conn
	st   Stream
}

func dialRaw(t *testing.T, net *memNet, target key.PublicKey) *rawPeer {
	t.Helper()
	id := key.GenerateSecretKey().Public()
	mn := net.node(id)
	c, err := mn.Dial(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.OpenStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{id: id, conn: c, st: st}
}

func (r *rawPeer) write(t *testing.T, topic proto.TopicID, m proto.Msg) {
	t.Helper()
	f, err := proto.AppendFrame(nil, topic, m, proto.DefaultMaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = r.st.Write(f) }()
}

// next reads frames until one carries a message of kind k.
func (r *rawPeer) next(t *testing.T, k proto.Kind) proto.Msg {
	t.Helper()
	type res struct {
		m   proto.Msg
		err error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			body, err := proto.ReadFrame(r.st, nil, proto.DefaultMaxMessageSize)
			if err != nil {
				ch <- res{err: err}
				return
			}
			_, m, err := proto.DecodeMessage(body)
			if err != nil || m.Kind() == k {
				ch <- res{m, err}
				return
			}
		}
	}()
	select {
	case x := <-ch:
		if x.err != nil {
			t.Fatalf("reading %v: %v", k, x.err)
		}
		return x.m
	case <-time.After(5 * time.Second):
		t.Fatalf("no %v", k)
	}
	return nil
}

func waitClosed(t *testing.T, c Conn) {
	t.Helper()
	mc := c.(*memConn)
	deadline := time.Now().Add(5 * time.Second)
	for !mc.isClosed() {
		if time.Now().After(deadline) {
			t.Fatal("connection not closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBadFramesDropConnection(t *testing.T) {
	net, nodes := startSwarm(t, 2)
	target := nodes[0].id
	cases := []struct {
		name  string
		frame []byte
	}{
		{"garbage", []byte{0, 0, 0, 3, 0xff, 0xff, 0xff}},
		{"unknown tag", append(append([]byte{0, 0, 0, 34}, testTopic[:]...), 2, 0)},
		{"oversize", binary.BigEndian.AppendUint32(nil, proto.DefaultMaxMessageSize+1)},
		{"invalid key", func() []byte {
			bad := proto.Key{2}
			body := append(append(append([]byte{}, testTopic[:]...), 0, 1), bad[:]...)
			body = append(body, 0, 6)
			return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := dialRaw(t, net, target)
			go func() { _, _ = r.st.Write(c.frame) }()
			waitClosed(t, r.conn)
		})
	}
	// The node carries on: the swarm still delivers.
	_ = nodes[1].sub.Broadcast(t.Context(), []byte("after garbage"))
	waitFor(t, nodes[0].sub, 5*time.Second, "broadcast after garbage", func(e Event) bool { return e.Kind == Received })
}

func TestWrongTopicIgnoredAndJoinAnswered(t *testing.T) {
	net, nodes := startSwarm(t, 1)
	r := dialRaw(t, net, nodes[0].id)
	// A frame for a topic the node has not joined is ignored, as in Rust;
	// the connection stays up and a Join for the right topic is answered.
	r.write(t, proto.TopicID{0xee}, proto.Join{})
	r.write(t, testTopic, proto.Join{Data: proto.EncodePeerData(proto.AddrInfo{})})
	m := r.next(t, proto.KindNeighbor).(proto.Neighbor)
	if m.Priority != proto.High || m.Data == nil {
		t.Fatalf("reply %+v", m)
	}
	if a, err := proto.DecodePeerData(m.Data); err != nil || len(a.Direct) != 1 || a.RelayURL != "" {
		t.Fatalf("our PeerData %+v %v", a, err)
	}
	waitFor(t, nodes[0].sub, 5*time.Second, "Joined", func(e Event) bool { return e.Kind == Joined && e.Peer == r.id })
	// A spoofed Gossip is dropped and the connection stays up.
	r.write(t, testTopic, proto.Gossip{ID: proto.IDOf([]byte("x")), Content: []byte("y")})
	good := proto.Gossip{ID: proto.IDOf([]byte("z")), Content: []byte("z")}
	r.write(t, testTopic, good)
	e := waitFor(t, nodes[0].sub, 5*time.Second, "Received", func(e Event) bool { return e.Kind == Received })
	if string(e.Content) != "z" {
		t.Fatalf("received %q", e.Content)
	}
	// A close from the peer (as a 0.28 node does after Disconnect) is a
	// NeighborDown.
	_ = r.conn.Close(0, "close from disconnect")
	waitFor(t, nodes[0].sub, 5*time.Second, "NeighborDown", func(e Event) bool { return e.Kind == NeighborDown && e.Peer == r.id })
}

// TestStuckPeerIsDropped: a peer that stops reading fills its send queue;
// the node drops that connection instead of blocking, and carries on.
func TestStuckPeerIsDropped(t *testing.T) {
	net := newMemNet()
	a := startNode(t, net, func(c *Config) { c.SendQueue = 8 })
	defer func() { _ = a.g.Close(); net.wg.Wait() }()
	sa, err := a.g.Subscribe(t.Context(), testTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, net, a.id)
	r.write(t, testTopic, proto.Join{})
	waitFor(t, sa, 5*time.Second, "Joined", func(e Event) bool { return e.Kind == Joined && e.Peer == r.id })
	// r never reads: every frame a sends it stays queued.
	for i := range 64 {
		if err := sa.Broadcast(t.Context(), []byte(fmt.Sprint("flood ", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, sa, 5*time.Second, "NeighborDown of the stuck peer", func(e Event) bool { return e.Kind == NeighborDown && e.Peer == r.id })
	waitClosed(t, r.conn)
	if _, err := a.g.Neighbors(t.Context(), testTopic); err != nil {
		t.Fatal(err)
	}
}

// TestRejoinWhenAlone: a node whose bootstrap peer was unreachable at
// subscribe time joins once the peer is up, without the application doing
// anything.
func TestRejoinWhenAlone(t *testing.T) {
	net := newMemNet()
	a := startNode(t, net, nil)
	accept := a.mn.accept
	a.mn.accept = nil // a refuses connections for now
	b := startNode(t, net, func(c *Config) { c.RejoinInterval = 100 * time.Millisecond })
	defer func() { _ = a.g.Close(); _ = b.g.Close(); net.wg.Wait() }()
	sa, _ := a.g.Subscribe(t.Context(), testTopic, nil)
	sb, err := b.g.Subscribe(t.Context(), testTopic, []key.PublicKey{a.id})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if ns, _ := b.g.Neighbors(t.Context(), testTopic); len(ns) != 0 {
		t.Fatalf("joined through an unreachable peer: %v", ns)
	}
	net.mu.Lock()
	a.mn.accept = accept
	net.mu.Unlock()
	waitFor(t, sb, 5*time.Second, "Joined after a is up", func(e Event) bool { return e.Kind == Joined && e.Peer == a.id })
	waitFor(t, sa, 5*time.Second, "Joined at a", func(e Event) bool { return e.Kind == Joined && e.Peer == b.id })
}

// TestRejoinWaitsForTheInterval: the rejoin check runs on the injected clock. A node alone in
// a topic (its bootstrap peer refused it) does not ask again before RejoinInterval has passed
// on its clock, and does once it has. synctest.Wait only lets the nodes settle between steps;
// the fake clock decides when the rejoin happens.
func TestRejoinWaitsForTheInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 10 * time.Second
		fake := clock.NewFake(time.Unix(1000, 0))
		net := newMemNet()
		a := startNode(t, net, nil)
		accept := a.mn.accept
		a.mn.accept = nil // a refuses connections for now
		b := startNode(t, net, func(c *Config) { c.RejoinInterval = interval; c.Clock = fake })
		sa, err := a.g.Subscribe(t.Context(), testTopic, nil)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := b.g.Subscribe(t.Context(), testTopic, []key.PublicKey{a.id})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // b's first dial has failed and b has settled
		net.mu.Lock()
		a.mn.accept = accept
		net.mu.Unlock()

		fake.Advance(interval - time.Millisecond) // the rejoin ticker fires (at interval/2) too early
		synctest.Wait()
		if ns, _ := b.g.Neighbors(t.Context(), testTopic); len(ns) != 0 {
			t.Fatalf("rejoined before the interval: %v", ns)
		}
		fake.Advance(time.Millisecond) // the ticker fires at interval: b asks a again
		waitFor(t, sb, 5*time.Second, "Joined after the interval", func(e Event) bool { return e.Kind == Joined && e.Peer == a.id })
		waitFor(t, sa, 5*time.Second, "Joined at a", func(e Event) bool { return e.Kind == Joined && e.Peer == b.id })
		_ = a.g.Close()
		_ = b.g.Close()
		net.wg.Wait()
	})
}
