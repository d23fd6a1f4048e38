package proto

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// A seeded discrete-event simulator over the protocol core. Peers are small
// integers; connections, latency, crashes and partitions are modelled well
// enough to exercise the failure paths of HyParView and Plumtree:
//   - a message to a peer with no connection dials it; the dial fails (the
//     sender sees PeerDisconnected) if the peer is down or unreachable;
//   - messages on a connection arrive in order after 1-10 ms and are lost if
//     the connection was closed meanwhile;
//   - DisconnectPeer closes the connection, the remote side sees
//     PeerDisconnected after what was already in flight;
//   - a crash or a partition breaks connections and both live ends see
//     PeerDisconnected.

var simEpoch = time.Unix(1_700_000_000, 0)

type simEvent struct {
	at   time.Duration
	seq  uint64
	node int
	inc  int // node incarnation the event belongs to
	in   Input[int]
	gen  uint64 // connection generation a message travels on (0: not a message)
	peer int    // remote end of that connection
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type pair struct{ a, b int }

func mkpair(a, b int) pair {
	if a > b {
		a, b = b, a
	}
	return pair{a, b}
}

type simNode struct {
	st    *State[int]
	alive bool
	inc   int
	got   map[MessageID]bool
}

type sim struct {
	t       testing.TB
	rng     *rand.Rand
	now     time.Duration
	seq     uint64
	q       eventQueue
	nodes   []*simNode
	conns   map[pair]uint64 // live connections and their generation
	gen     uint64
	group   []int                    // partition group per node
	lastArr map[[2]int]time.Duration // FIFO per directed pair
	topic   TopicID
	cfg     Config
	sent    int
}

func newSim(t testing.TB, seed uint64, n int) *sim {
	s := &sim{
		t:       t,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		conns:   make(map[pair]uint64),
		lastArr: make(map[[2]int]time.Duration),
		topic:   TopicID{1, 2, 3},
		cfg:     DefaultConfig(),
	}
	for range n {
		s.addNode()
	}
	return s
}

func (s *sim) addNode() int {
	id := len(s.nodes)
	s.nodes = append(s.nodes, &simNode{})
	s.group = append(s.group, 0)
	return id
}

func (s *sim) push(e *simEvent) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

func (s *sim) latency() time.Duration {
	return time.Millisecond + time.Duration(s.rng.IntN(9000))*time.Microsecond
}

func (s *sim) reachable(a, b int) bool {
	return s.nodes[b].alive && s.group[a] == s.group[b]
}

// start (re)starts node id and joins the topic through bootstrap.
func (s *sim) start(id int, bootstrap []int) {
	n := s.nodes[id]
	n.inc++
	n.alive = true
	n.got = make(map[MessageID]bool)
	n.st = New(id, PeerData(fmt.Sprintf("addr-%d", id)), s.cfg, rand.New(rand.NewPCG(s.rng.Uint64(), uint64(id))))
	s.handle(id, JoinTopic[int]{Topic: s.topic, Peers: bootstrap})
}

func (s *sim) crash(id int) {
	n := s.nodes[id]
	n.alive = false
	n.inc++
	for _, p := range s.sortedConns() {
		if p.a == id || p.b == id {
			s.breakConn(p, id)
		}
	}
}

func (s *sim) sortedConns() []pair {
	ps := make([]pair, 0, len(s.conns))
	for p := range s.conns {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(x, y pair) int {
		if x.a != y.a {
			return x.a - y.a
		}
		return x.b - y.b
	})
	return ps
}

// breakConn removes a connection; live ends other than skip see
// PeerDisconnected.
func (s *sim) breakConn(p pair, skip int) {
	delete(s.conns, p)
	for _, end := range [][2]int{{p.a, p.b}, {p.b, p.a}} {
		if end[0] != skip && s.nodes[end[0]].alive {
			s.push(&simEvent{at: s.now + s.latency(), node: end[0], inc: s.nodes[end[0]].inc, in: PeerDisconnected[int]{Peer: end[1]}})
		}
	}
}

func (s *sim) partition(groups func(id int) int) {
	for i := range s.nodes {
		s.group[i] = groups(i)
	}
	for _, p := range s.sortedConns() {
		if s.group[p.a] != s.group[p.b] {
			s.breakConn(p, -1)
		}
	}
}

func (s *sim) handle(id int, in Input[int]) {
	n := s.nodes[id]
	outs := n.st.Handle(simEpoch.Add(s.now), in)
	for _, o := range outs {
		switch o := o.(type) {
		case SendMessage[int]:
			s.send(id, o)
		case ScheduleTimer[int]:
			s.push(&simEvent{at: s.now + o.Delay, node: id, inc: n.inc, in: TimerExpired[int]{Timer: o.Timer}})
		case DisconnectPeer[int]:
			p := mkpair(id, o.Peer)
			if gen, ok := s.conns[p]; ok {
				delete(s.conns, p)
				// The remote end sees the close after what is in flight.
				at := max(s.now+s.latency(), s.lastArr[[2]int{id, o.Peer}]+time.Microsecond)
				if s.nodes[o.Peer].alive {
					s.push(&simEvent{at: at, node: o.Peer, inc: s.nodes[o.Peer].inc, in: PeerDisconnected[int]{Peer: id}, gen: gen, peer: id})
				}
			}
		case EmitEvent[int]:
			if o.Event.Kind == Received {
				n.got[IDOf(o.Event.Content)] = true
			}
		case LearnPeerData[int]:
			if want := fmt.Sprintf("addr-%d", o.Peer); string(o.Data) != want {
				s.t.Errorf("node %d learned data %q for %d", id, o.Data, o.Peer)
			}
		}
	}
}

func (s *sim) send(from int, m SendMessage[int]) {
	s.sent++
	// Every message must encode within the frame limit once keys are real.
	if m.Msg.Kind() == KindIHave && len(m.Msg.(IHaves)) > 116 {
		s.t.Errorf("IHave batch of %d entries exceeds one frame", len(m.Msg.(IHaves)))
	}
	p := mkpair(from, m.To)
	gen, ok := s.conns[p]
	if !ok {
		if !s.reachable(from, m.To) {
			// Dial fails after a timeout.
			s.push(&simEvent{at: s.now + 50*time.Millisecond, node: from, inc: s.nodes[from].inc, in: PeerDisconnected[int]{Peer: m.To}})
			return
		}
		s.gen++
		gen = s.gen
		s.conns[p] = gen
	}
	k := [2]int{from, m.To}
	at := max(s.now+s.latency(), s.lastArr[k]+time.Microsecond)
	s.lastArr[k] = at
	s.push(&simEvent{at: at, node: m.To, inc: s.nodes[m.To].inc, in: RecvMessage[int]{From: from, Topic: m.Topic, Msg: m.Msg}, gen: gen, peer: from})
}

// runFor advances the simulation by d. Once per simulated second it plays
// the application's part: a live node with no neighbors and no pending
// request re-joins through two random live peers (iroh-gossip leaves this to
// the application, as in JoinPeers).
func (s *sim) runFor(d time.Duration) {
	end := s.now + d
	for s.now < end {
		step := min(end, (s.now/time.Second+1)*time.Second)
		s.runUntil(step)
		if s.now%time.Second == 0 {
			for _, id := range s.alive() {
				t := s.nodes[id].st.topics[s.topic]
				if t != nil && t.swarm.active.len() == 0 && len(t.swarm.pending) == 0 {
					s.handle(id, JoinTopic[int]{Topic: s.topic, Peers: s.randomAlive(2, id)})
				}
			}
		}
	}
}

func (s *sim) runUntil(end time.Duration) {
	for s.q.Len() > 0 && s.q[0].at <= end {
		e := heap.Pop(&s.q).(*simEvent)
		s.now = e.at
		n := s.nodes[e.node]
		if !n.alive || e.inc != n.inc {
			continue
		}
		if e.gen != 0 {
			if _, isMsg := e.in.(RecvMessage[int]); isMsg && s.conns[mkpair(e.node, e.peer)] != e.gen {
				continue // the connection closed while the message was in flight
			}
		}
		s.handle(e.node, e.in)
	}
	s.now = end
}

func (s *sim) alive() []int {
	var ids []int
	for i, n := range s.nodes {
		if n.alive {
			ids = append(ids, i)
		}
	}
	return ids
}

func (s *sim) randomAlive(k int, not int) []int {
	ids := slices.DeleteFunc(s.alive(), func(i int) bool { return i == not })
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids[:min(k, len(ids))]
}

// components returns the connected components of the active-view graph over
// live nodes.
func (s *sim) components() [][]int {
	seen := map[int]bool{}
	var comps [][]int
	for _, start := range s.alive() {
		if seen[start] {
			continue
		}
		var comp []int
		stack := []int{start}
		seen[start] = true
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			comp = append(comp, x)
			for _, y := range s.nodes[x].st.ActiveView(s.topic) {
				if !seen[y] && s.nodes[y].alive {
					seen[y] = true
					stack = append(stack, y)
				}
			}
		}
		comps = append(comps, comp)
	}
	return comps
}

func (s *sim) checkSymmetric() {
	s.t.Helper()
	for _, a := range s.alive() {
		av := s.nodes[a].st.ActiveView(s.topic)
		if len(av) > s.cfg.Membership.ActiveViewCapacity {
			s.t.Errorf("node %d active view %d > capacity", a, len(av))
		}
		if pv := s.nodes[a].st.PassiveView(s.topic); len(pv) > s.cfg.Membership.PassiveViewCapacity {
			s.t.Errorf("node %d passive view %d > capacity", a, len(pv))
		}
		eager, lazy := s.nodes[a].st.EagerLazy(s.topic)
		// Eager and lazy partition the active view.
		if len(eager)+len(lazy) != len(av) {
			s.t.Errorf("node %d: eager %v + lazy %v != active %v", a, eager, lazy, av)
		}
		for _, b := range av {
			if !s.nodes[b].alive {
				s.t.Errorf("node %d has dead node %d in its active view", a, b)
				continue
			}
			if !slices.Contains(s.nodes[b].st.ActiveView(s.topic), a) {
				s.t.Errorf("asymmetric: %d has %d active, not the reverse (%v)", a, b, s.nodes[b].st.ActiveView(s.topic))
			}
			if !slices.Contains(eager, b) && !slices.Contains(lazy, b) {
				s.t.Errorf("node %d: active %d neither eager nor lazy", a, b)
			}
		}
	}
}

// broadcastAll has k random live nodes broadcast, then checks that every live
// node connected to the sender (its component of the active-view graph)
// received each message, and that the overlay did not fall apart (the largest
// component holds at least 90% of the live nodes).
func (s *sim) broadcastAll(k int, tag string) {
	s.t.Helper()
	comps := s.components()
	compOf := map[int]int{}
	largest := 0
	sizes := []int{}
	for ci, c := range comps {
		for _, x := range c {
			compOf[x] = ci
		}
		largest = max(largest, len(c))
		sizes = append(sizes, len(c))
	}
	if len(comps) > 1 {
		s.t.Logf("%s: overlay has components of sizes %v", tag, sizes)
	}
	if live := len(s.alive()); largest*10 < live*9 {
		s.t.Errorf("%s: largest overlay component %d of %d live nodes (%v)", tag, largest, live, sizes)
	}
	var ids []MessageID
	var senders []int
	for i, from := range s.randomAlive(k, -1) {
		content := []byte(fmt.Sprintf("%s-%d-%d", tag, i, from))
		ids = append(ids, IDOf(content))
		senders = append(senders, from)
		s.handle(from, Broadcast[int]{Topic: s.topic, Content: content})
		s.runFor(3 * time.Millisecond)
	}
	s.runFor(2 * time.Second)
	for i, id := range ids {
		missing := 0
		for _, a := range s.alive() {
			if compOf[a] != compOf[senders[i]] {
				continue // not connected to the sender
			}
			if !s.nodes[a].got[id] {
				// The originator does not receive its own broadcast.
				if st := s.nodes[a].st; st.topics[s.topic].gossip.seen.contains(id) {
					continue
				}
				missing++
			}
		}
		if missing > 0 {
			s.t.Errorf("%s: message %s missed by %d of %d live nodes", tag, id.String()[:8], missing, len(s.alive()))
		}
	}
}

func runChurnSim(t *testing.T, seed uint64, n int) *sim {
	s := newSim(t, seed, n)
	// Staggered joins through random earlier nodes.
	s.start(0, nil)
	for i := 1; i < n; i++ {
		s.start(i, s.randomAlive(1+s.rng.IntN(2), i))
		s.runFor(20 * time.Millisecond)
	}
	s.runFor(5 * time.Second)
	s.checkSymmetric()
	s.broadcastAll(10, "settled")

	// Churn: crashes, restarts and new joins, with broadcasts during churn.
	for round := range 20 {
		switch s.rng.IntN(3) {
		case 0:
			if ids := s.randomAlive(3, -1); len(ids) > 0 {
				for _, id := range ids {
					s.crash(id)
				}
			}
		case 1:
			for i, n := range s.nodes {
				if !n.alive && s.rng.IntN(2) == 0 {
					s.start(i, s.randomAlive(2, i))
				}
			}
		case 2:
			id := s.addNode()
			s.start(id, s.randomAlive(2, id))
		}
		if from := s.randomAlive(1, -1); len(from) == 1 {
			s.handle(from[0], Broadcast[int]{Topic: s.topic, Content: []byte(fmt.Sprintf("churn-%d", round))})
		}
		s.runFor(time.Duration(200+s.rng.IntN(800)) * time.Millisecond)
	}
	s.runFor(5 * time.Second)
	s.checkSymmetric()
	s.broadcastAll(10, "after-churn")

	// Partition into two halves, let both sides repair, then heal.
	s.partition(func(id int) int { return id % 2 })
	s.runFor(5 * time.Second)
	s.checkSymmetric()
	s.partition(func(int) int { return 0 })
	// HyParView does not merge separate overlays by itself; as an
	// application would, a few nodes re-join through known peers.
	for _, id := range s.randomAlive(4, -1) {
		s.handle(id, JoinTopic[int]{Topic: s.topic, Peers: s.randomAlive(2, id)})
	}
	s.runFor(10 * time.Second)
	s.checkSymmetric()
	s.broadcastAll(10, "healed")

	// Let the shuffle timers run and every cache expire.
	s.runFor(2 * time.Minute)
	s.checkSymmetric()
	capPeers := s.cfg.Membership.ActiveViewCapacity + s.cfg.Membership.PassiveViewCapacity
	for _, a := range s.alive() {
		sz := s.nodes[a].st.Sizes(s.topic)
		if sz.Cache != 0 || sz.Seen != 0 || sz.Missing != 0 || sz.LazyQueue != 0 || sz.PeerData > capPeers {
			t.Errorf("node %d: caches not bounded after idle: %+v", a, sz)
		}
	}
	return s
}

func TestSimChurn(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			s := runChurnSim(t, seed, 120)
			t.Logf("%d nodes (%d live), %d messages sent, %v simulated", len(s.nodes), len(s.alive()), s.sent, s.now)
		})
	}
}

// TestSimReproducible: the same seed gives the same run.
func TestSimReproducible(t *testing.T) {
	a := runChurnSim(t, 7, 100)
	b := runChurnSim(t, 7, 100)
	if a.sent != b.sent || len(a.alive()) != len(b.alive()) {
		t.Fatalf("seed 7 not reproducible: %d/%d messages", a.sent, b.sent)
	}
	for i := range a.nodes {
		if a.nodes[i].alive && !slices.Equal(a.nodes[i].st.ActiveView(a.topic), b.nodes[i].st.ActiveView(b.topic)) {
			t.Fatalf("node %d active views differ", i)
		}
	}
}
