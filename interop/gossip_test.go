package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// goSub records the events of one Go subscription.
type goSub struct {
	topic *gossip.Topic

	mu        sync.Mutex
	received  map[string]key.PublicKey // content -> delivered from
	neighbors map[key.PublicKey]bool
	events    []gossip.Event
	changed   chan struct{}
	done      chan struct{}
}

func watchGo(t testing.TB, topic *gossip.Topic) *goSub {
	s := &goSub{topic: topic, received: map[string]key.PublicKey{}, neighbors: map[key.PublicKey]bool{},
		changed: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for e := range topic.Events() {
			s.mu.Lock()
			s.events = append(s.events, e)
			switch e.Kind {
			case gossip.Joined:
				for _, p := range e.Peers {
					s.neighbors[p] = true
				}
			case gossip.NeighborUp:
				s.neighbors[e.Peer] = true
			case gossip.NeighborDown:
				delete(s.neighbors, e.Peer)
			case gossip.Received:
				s.received[string(e.Content)] = e.Peer
			}
			s.mu.Unlock()
			select {
			case s.changed <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = topic.Close(); <-s.done })
	return s
}

// waitUntil waits until pred (called under the lock) holds.
func (s *goSub) waitUntil(ctx context.Context, what string, pred func(*goSub) bool) error {
	for {
		s.mu.Lock()
		ok := pred(s)
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-s.changed:
		case <-s.done:
			return fmt.Errorf("%s: subscription ended", what)
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

func (s *goSub) hasEvent(k gossip.EventKind, peer key.PublicKey) bool {
	for _, e := range s.events {
		if e.Kind == k && e.Peer == peer {
			return true
		}
	}
	return false
}

func mustKey(t testing.TB, s string) key.PublicKey {
	t.Helper()
	k, err := key.ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rustAddrs(t testing.TB, n *irohnode.Node) []netip.AddrPort {
	t.Helper()
	var out []netip.AddrPort
	for _, a := range n.Addr.Addresses {
		if ap, err := netip.ParseAddrPort(a); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

// rustNeighbors replays a Rust subscription's events (taken or not) into its neighbor set.
func rustNeighbors(d *irohnode.Driver, sub *irohnode.Sub) map[string]bool {
	ns := map[string]bool{}
	for _, e := range d.Events() {
		if e.Name != "gossip" || e.Sub != sub.Handle {
			continue
		}
		switch e.Type {
		case "joined":
			for _, p := range e.Peers {
				ns[p] = true
			}
		case "neighborUp":
			ns[e.Peer] = true
		case "neighborDown":
			delete(ns, e.Peer)
		}
	}
	return ns
}

// rustReceiveAll waits until sub has received every content in want.
func rustReceiveAll(ctx context.Context, sub *irohnode.Sub, want []string) error {
	left := map[string]bool{}
	for _, w := range want {
		left[w] = true
	}
	for len(left) > 0 {
		e, err := sub.WaitEvent(ctx, "received", nil)
		if err != nil {
			return fmt.Errorf("still missing %d of %d: %w", len(left), len(want), err)
		}
		delete(left, string(e.Content))
	}
	return nil
}

type mixedSwarm struct {
	d     *irohnode.Driver
	rust  []*irohnode.Node
	rsubs []*irohnode.Sub
	gos   []*goGossipNode
	gsubs []*goSub
	topic proto.TopicID
}

// startMixedSwarm builds nR Rust and nG Go nodes, teaches every node every address, and joins
// them one by one alternating languages: Rust 0 waits, Go 0 bootstraps from Rust 0, Rust 1 from
// Go 0, Go 1 from Rust 1, and so on; each join waits for Joined.
func startMixedSwarm(ctx context.Context, t *testing.T, nR, nG int, topic proto.TopicID, goMod ...func(*gossip.Config)) *mixedSwarm {
	t.Helper()
	m := &mixedSwarm{d: irohnode.Start(t), topic: topic}
	for i := range nR {
		n, err := m.d.NewNode(ctx, irohnode.NodeOptions{Name: fmt.Sprint("r", i)})
		if err != nil {
			t.Fatal(err)
		}
		m.rust = append(m.rust, n)
	}
	for range nG {
		var mod func(*gossip.Config)
		if len(goMod) > 0 {
			mod = goMod[0]
		}
		m.gos = append(m.gos, newGoGossipNode(t, mod))
	}
	for _, g := range m.gos {
		for _, r := range m.rust {
			g.learn(mustKey(t, r.ID), rustAddrs(t, r)...)
			if err := r.AddNodeAddr(ctx, irohnode.NodeAddr{NodeID: g.id.String(), Addresses: []string{g.addrPort().String()}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, h := range m.gos {
			if h != g {
				g.learn(h.id, h.addrPort())
			}
		}
	}
	var last string // id of the last node that joined
	for i := range max(nR, nG) {
		if i < nR {
			var boot []string
			if last != "" {
				boot = []string{last}
			}
			sub, err := m.rust[i].Subscribe(ctx, topic, boot)
			if err != nil {
				t.Fatal(err)
			}
			m.rsubs = append(m.rsubs, sub)
			if last != "" {
				if _, err := sub.WaitEvent(ctx, "joined", nil); err != nil {
					t.Fatalf("rust %d joining through %s: %v", i, last, err)
				}
			}
			last = m.rust[i].ID
		}
		if i < nG {
			var boot []key.PublicKey
			if last != "" {
				boot = []key.PublicKey{mustKey(t, last)}
			}
			topicSub, err := m.gos[i].g.Subscribe(ctx, topic, boot)
			if err != nil {
				t.Fatal(err)
			}
			s := watchGo(t, topicSub)
			m.gsubs = append(m.gsubs, s)
			if last != "" {
				if err := s.waitUntil(ctx, fmt.Sprintf("go %d joining", i), func(s *goSub) bool { return len(s.neighbors) > 0 }); err != nil {
					t.Fatal(err)
				}
			}
			last = m.gos[i].id.String()
		}
	}
	return m
}

// broadcastAll has every listed node broadcast one unique message and checks that every other
// listed node receives all of them.
func (m *mixedSwarm) broadcastAll(ctx context.Context, t *testing.T, tag string, rIdx, gIdx []int) {
	t.Helper()
	nonce := make([]byte, 4)
	_, _ = rand.Read(nonce)
	from := map[string]string{} // content -> sender name
	for _, i := range rIdx {
		c := fmt.Sprintf("%s from rust %d %x", tag, i, nonce)
		from[c] = fmt.Sprint("r", i)
		if err := m.rsubs[i].Broadcast(ctx, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	for _, i := range gIdx {
		c := fmt.Sprintf("%s from go %d %x", tag, i, nonce)
		from[c] = fmt.Sprint("g", i)
		if err := m.gsubs[i].topic.Broadcast(ctx, []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	wantFor := func(name string) []string {
		var w []string
		for c, f := range from {
			if f != name {
				w = append(w, c)
			}
		}
		return w
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(rIdx)+len(gIdx))
	for _, i := range rIdx {
		wg.Go(func() {
			if err := rustReceiveAll(ctx, m.rsubs[i], wantFor(fmt.Sprint("r", i))); err != nil {
				errs <- fmt.Errorf("%s: rust %d: %w", tag, i, err)
			}
		})
	}
	for _, i := range gIdx {
		want := wantFor(fmt.Sprint("g", i))
		wg.Go(func() {
			err := m.gsubs[i].waitUntil(ctx, "receive", func(s *goSub) bool {
				for _, w := range want {
					if _, ok := s.received[w]; !ok {
						return false
					}
				}
				return true
			})
			if err != nil {
				errs <- fmt.Errorf("%s: go %d: %w", tag, i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestGossipMixedSwarm: 3 Go and 3 Rust nodes in one topic, Go bootstrapping from Rust and Rust
// from Go; every broadcast from every node reaches every other node; neighbor-down events fire on
// both sides when a node of the other language leaves; the rest of the swarm carries on.
func TestGossipMixedSwarm(t *testing.T) {
	ctx := nsCtx(t, 3*time.Minute)
	var topic proto.TopicID
	_, _ = rand.Read(topic[:])
	m := startMixedSwarm(ctx, t, 3, 3, topic)
	all := []int{0, 1, 2}
	m.broadcastAll(ctx, t, "round1", all, all)
	if t.Failed() {
		t.FailNow()
	}

	// A Rust node that is a neighbor of some Go node leaves.
	var leaveR, watcherG = -1, -1
	for gi, s := range m.gsubs {
		s.mu.Lock()
		for ri, r := range m.rust {
			if leaveR < 0 && s.neighbors[mustKey(t, r.ID)] {
				leaveR, watcherG = ri, gi
			}
		}
		s.mu.Unlock()
	}
	if leaveR < 0 {
		t.Fatal("no Go node has a Rust neighbor")
	}
	rid := mustKey(t, m.rust[leaveR].ID)
	// Leaving means shutting the node down: the FFI's unsubscribe only stops the event stream, the
	// Rust topic stays joined while the JS sender object is alive.
	if err := m.rust[leaveR].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.gsubs[watcherG].waitUntil(ctx, "NeighborDown of the leaving Rust node", func(s *goSub) bool {
		return s.hasEvent(gossip.NeighborDown, rid)
	}); err != nil {
		t.Fatal(err)
	}

	// A Go node that is a neighbor of some remaining Rust node leaves.
	leaveG, watcherR := -1, -1
	for ri, sub := range m.rsubs {
		if ri == leaveR {
			continue
		}
		ns := rustNeighbors(m.d, sub)
		for gi, g := range m.gos {
			if leaveG < 0 && ns[g.id.String()] {
				leaveG, watcherR = gi, ri
			}
		}
	}
	if leaveG < 0 {
		t.Fatal("no remaining Rust node has a Go neighbor")
	}
	gid := m.gos[leaveG].id.String()
	if err := m.gsubs[leaveG].topic.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.rsubs[watcherR].WaitEvent(ctx, "neighborDown", func(e *irohnode.Event) bool { return e.Peer == gid }); err != nil {
		t.Fatalf("rust %d never saw go %d leave: %v", watcherR, leaveG, err)
	}

	// The remaining two Rust and two Go nodes still reach each other.
	rLeft := slices.DeleteFunc(slices.Clone(all), func(i int) bool { return i == leaveR })
	gLeft := slices.DeleteFunc(slices.Clone(all), func(i int) bool { return i == leaveG })
	m.broadcastAll(ctx, t, "round2", rLeft, gLeft)

	checkRustFrames(t, m.gos, m.rust)
}

// TestGossipRustFrames checks frames written by the real Rust node byte for byte: a broadcast
// of "hi" on topic 00..1f from its originator is exactly the wire doc's example A.
func TestGossipRustFrames(t *testing.T) {
	ctx := nsCtx(t, time.Minute)
	var topic proto.TopicID
	for i := range topic {
		topic[i] = byte(i)
	}
	m := startMixedSwarm(ctx, t, 1, 1, topic)
	if err := m.rsubs[0].Broadcast(ctx, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := m.gsubs[0].waitUntil(ctx, "hi", func(s *goSub) bool { _, ok := s.received["hi"]; return ok }); err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("00000047000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
		"010085052e9aab1b67b6622d94a08441b09fd5b7aca61ee360416d70de5da67d86ca0268690000")
	rid := mustKey(t, m.rust[0].ID)
	frames := m.gos[0].capturedFrames(func(k key.PublicKey) bool { return k == rid })
	found := false
	for _, f := range frames {
		if bytes.Equal(f, want) {
			found = true
		}
	}
	if !found {
		t.Errorf("no Rust frame equals example A; got %d frames", len(frames))
	}
	// And our encoder writes the same bytes for the same message.
	ours, err := proto.AppendFrame(nil, topic, proto.Gossip{ID: proto.IDOf([]byte("hi")), Content: []byte("hi")}, proto.DefaultMaxMessageSize)
	if err != nil || !bytes.Equal(ours, want) {
		t.Errorf("our frame %x, %v", ours, err)
	}
	checkRustFrames(t, m.gos, m.rust)
}

// checkRustFrames decodes every frame a Rust node sent to our Go nodes and re-encodes it: the
// bytes must be identical. With UPDATE_GOLDEN=1 one frame of each message kind is written to
// mesh/gossip/proto/testdata/rust-frames/ for the codec's golden test.
func checkRustFrames(t *testing.T, gos []*goGossipNode, rust []*irohnode.Node) {
	t.Helper()
	isRust := map[key.PublicKey]bool{}
	for _, r := range rust {
		isRust[mustKey(t, r.ID)] = true
	}
	byKind := map[proto.Kind][]byte{}
	n := 0
	for _, g := range gos {
		for _, f := range g.capturedFrames(func(k key.PublicKey) bool { return isRust[k] }) {
			n++
			topic, msg, err := proto.DecodeMessage(f[4:])
			if err != nil {
				t.Errorf("Rust frame %x does not decode: %v", f, err)
				continue
			}
			re, err := proto.AppendFrame(nil, topic, msg, proto.DefaultMaxMessageSize)
			if err != nil || !bytes.Equal(re, f) {
				t.Errorf("Rust frame %v re-encodes differently:\n rust %x\n ours %x (%v)", msg.Kind(), f, re, err)
			}
			if _, ok := byKind[msg.Kind()]; !ok {
				byKind[msg.Kind()] = f
			}
		}
	}
	kinds := []string{}
	for k := range byKind {
		kinds = append(kinds, k.String())
	}
	slices.Sort(kinds)
	t.Logf("checked %d Rust frames; kinds seen: %v", n, kinds)
	if os.Getenv("UPDATE_GOLDEN") != "1" {
		return
	}
	dir := filepath.Join("..", "mesh", "gossip", "proto", "testdata", "rust-frames")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, f := range byKind {
		name := filepath.Join(dir, k.String()+".bin")
		if _, err := os.Stat(name); err == nil {
			continue // keep the first capture
		}
		if err := os.WriteFile(name, f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGossipRustLearnsGoAddress: a Rust node that was never told a Go node's address learns it
// from the PeerData in a ForwardJoin and dials the Go node with it.
func TestGossipRustLearnsGoAddress(t *testing.T) {
	ctx := nsCtx(t, time.Minute)
	var topic proto.TopicID
	_, _ = rand.Read(topic[:])
	d := irohnode.Start(t)
	r0, err := d.NewNode(ctx, irohnode.NodeOptions{Name: "r0"})
	if err != nil {
		t.Fatal(err)
	}
	r1, err := d.NewNode(ctx, irohnode.NodeOptions{Name: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	s0, s1 := subscribeVia(ctx, t, r0, r1, topic)
	if _, err := s1.WaitEvent(ctx, "joined", nil); err != nil {
		t.Fatal(err)
	}
	// Only r1 learns the Go node's address.
	g := newGoGossipNode(t, nil)
	g.learn(mustKey(t, r1.ID), rustAddrs(t, r1)...)
	if err := r1.AddNodeAddr(ctx, irohnode.NodeAddr{NodeID: g.id.String(), Addresses: []string{g.addrPort().String()}}); err != nil {
		t.Fatal(err)
	}
	topicSub, err := g.g.Subscribe(ctx, topic, []key.PublicKey{mustKey(t, r1.ID)})
	if err != nil {
		t.Fatal(err)
	}
	gs := watchGo(t, topicSub)
	// r1 forwards our Join (with our PeerData) to r0, whose active view has one peer, so r0 takes
	// us as a neighbor and dials the address it learnt from gossip.
	r0id := mustKey(t, r0.ID)
	if err := gs.waitUntil(ctx, "r0 as neighbor", func(s *goSub) bool { return s.neighbors[r0id] }); err != nil {
		t.Fatal(err)
	}
	if _, err := s0.WaitEvent(ctx, "", func(e *irohnode.Event) bool {
		return (e.Type == "neighborUp" && e.Peer == g.id.String()) || (e.Type == "joined" && slices.Contains(e.Peers, g.id.String()))
	}); err != nil {
		t.Fatal(err)
	}
	infos, err := r0.RemoteInfos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ri := range infos {
		if ri.NodeID == g.id.String() && slices.Contains(ri.Addrs, g.addrPort().String()) {
			found = true
		}
	}
	if !found {
		t.Fatalf("r0 does not list our address %s: %+v", g.addrPort(), infos)
	}
	// The learnt path carries broadcasts both ways.
	if err := topicSub.Broadcast(ctx, []byte("from go")); err != nil {
		t.Fatal(err)
	}
	if err := rustReceiveAll(ctx, s0, []string{"from go"}); err != nil {
		t.Fatal(err)
	}
}

// TestGossipShuffleWithRust: Go nodes shuffle every 300 ms (instead of 60 s) in a swarm with Rust
// nodes; Rust accepts our Shuffle frames, answers with ShuffleReply (captured and checked byte
// for byte), and the swarm keeps delivering.
func TestGossipShuffleWithRust(t *testing.T) {
	ctx := nsCtx(t, 2*time.Minute)
	var topic proto.TopicID
	_, _ = rand.Read(topic[:])
	fast := func(c *gossip.Config) {
		c.Proto = proto.DefaultConfig()
		c.Proto.Membership.ShuffleInterval = 300 * time.Millisecond
	}
	// Rust 0 <- Go 0 <- Rust 1 <- Go 1: small active views, so shuffle walks end at Rust nodes
	// that answer them (ShuffleReply) as well as pass through Rust nodes that forward them.
	m := startMixedSwarm(ctx, t, 2, 2, topic, fast)
	isRust := map[key.PublicKey]bool{mustKey(t, m.rust[0].ID): true, mustKey(t, m.rust[1].ID): true}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var replies int
		for _, g := range m.gos {
			for _, f := range g.capturedFrames(func(k key.PublicKey) bool { return isRust[k] }) {
				if _, msg, err := proto.DecodeMessage(f[4:]); err == nil && msg.Kind() == proto.KindShuffleReply {
					replies++
				}
			}
		}
		if replies > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ShuffleReply from a Rust node")
		}
		time.Sleep(200 * time.Millisecond)
	}
	m.broadcastAll(ctx, t, "after shuffles", []int{0, 1}, []int{0, 1})
	checkRustFrames(t, m.gos, m.rust)
}

// TestGossipRustEvictsGo: a Rust node whose active view is full evicts a random neighbor for each
// new joiner. When the evicted Go node shares a second topic with it, the 0.28 node keeps the
// connection and its Disconnect frame reaches the wire: we capture it, drop the Rust node from
// that topic only, and keep the other topic working.
func TestGossipRustEvictsGo(t *testing.T) {
	ctx := nsCtx(t, 2*time.Minute)
	var topicA, topicB proto.TopicID
	_, _ = rand.Read(topicA[:])
	_, _ = rand.Read(topicB[:])
	d := irohnode.Start(t)
	r, err := d.NewNode(ctx, irohnode.NodeOptions{Name: "hub"})
	if err != nil {
		t.Fatal(err)
	}
	rid := mustKey(t, r.ID)
	subA, err := r.Subscribe(ctx, topicA, nil)
	if err != nil {
		t.Fatal(err)
	}
	subB, err := r.Subscribe(ctx, topicB, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = subA
	newGo := func() *goGossipNode {
		g := newGoGossipNode(t, nil)
		g.learn(rid, rustAddrs(t, r)...)
		if err := r.AddNodeAddr(ctx, irohnode.NodeAddr{NodeID: g.id.String(), Addresses: []string{g.addrPort().String()}}); err != nil {
			t.Fatal(err)
		}
		return g
	}
	// The watched node joins both topics and receives on both (so Rust counts both topics on the
	// connection).
	w := newGo()
	var subs []*goSub
	for _, tp := range []proto.TopicID{topicA, topicB} {
		ts, err := w.g.Subscribe(ctx, tp, []key.PublicKey{rid})
		if err != nil {
			t.Fatal(err)
		}
		s := watchGo(t, ts)
		if err := s.waitUntil(ctx, "joined", func(s *goSub) bool { return s.neighbors[rid] }); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if err := subB.Broadcast(ctx, []byte("b1")); err != nil {
		t.Fatal(err)
	}
	if err := subs[1].waitUntil(ctx, "b1", func(s *goSub) bool { _, ok := s.received["b1"]; return ok }); err != nil {
		t.Fatal(err)
	}
	// More nodes join topic A through the Rust node until it evicts the watched one.
	evicted := func(s *goSub) bool { return s.hasEvent(gossip.NeighborDown, rid) }
	for i := 0; i < 30; i++ {
		g := newGo()
		ts, err := g.g.Subscribe(ctx, topicA, []key.PublicKey{rid})
		if err != nil {
			t.Fatal(err)
		}
		watchGo(t, ts)
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err = subs[0].waitUntil(sctx, "eviction", evicted)
		cancel()
		if err == nil {
			break
		}
	}
	subs[0].mu.Lock()
	ok := evicted(subs[0])
	subs[0].mu.Unlock()
	if !ok {
		t.Skip("the Rust node never evicted the watched Go node (random choice)")
	}
	var disc []byte
	for _, f := range w.capturedFrames(func(k key.PublicKey) bool { return k == rid }) {
		if tp, msg, err := proto.DecodeMessage(f[4:]); err == nil && msg.Kind() == proto.KindDisconnect && tp == topicA {
			disc = f
			if msg.(proto.Disconnect) != (proto.Disconnect{Alive: true, Respond: false}) {
				t.Errorf("Rust sent %+v, want Disconnect{alive: true, respond: false}", msg)
			}
		}
	}
	if disc == nil {
		t.Fatal("evicted, but no Disconnect frame on the wire")
	}
	// Topic B still has the Rust node and still delivers.
	subs[1].mu.Lock()
	stillB := subs[1].neighbors[rid]
	subs[1].mu.Unlock()
	if !stillB {
		t.Fatal("eviction from topic A also dropped topic B")
	}
	if err := subB.Broadcast(ctx, []byte("b2")); err != nil {
		t.Fatal(err)
	}
	if err := subs[1].waitUntil(ctx, "b2", func(s *goSub) bool { _, ok := s.received["b2"]; return ok }); err != nil {
		t.Fatal(err)
	}
	checkRustFrames(t, []*goGossipNode{w}, []*irohnode.Node{r})
}
