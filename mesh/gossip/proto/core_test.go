package proto

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

func newNode(id int) *State[int] {
	return New(id, PeerData(fmt.Sprint("d", id)), DefaultConfig(), rand.New(rand.NewPCG(uint64(id), 1)))
}

var topicA = TopicID{0xa}

// transcript renders the outputs that matter for a test as "to:Kind" lines
// (timers and peer data left out unless asked for).
func transcript(outs []Output[int], withTimers bool) string {
	var lines []string
	for _, o := range outs {
		switch o := o.(type) {
		case SendMessage[int]:
			lines = append(lines, fmt.Sprintf("->%d %v", o.To, describe(o.Msg)))
		case EmitEvent[int]:
			lines = append(lines, fmt.Sprintf("event %v %d", o.Event.Kind, o.Event.Peer))
		case DisconnectPeer[int]:
			lines = append(lines, fmt.Sprintf("disconnect %d", o.Peer))
		case ScheduleTimer[int]:
			if withTimers {
				lines = append(lines, fmt.Sprintf("timer %d %v", o.Timer.Kind, o.Delay))
			}
		}
	}
	return strings.Join(lines, "\n")
}

func describe(m Msg) string {
	switch m := m.(type) {
	case Neighbor:
		return "Neighbor " + m.Priority.String()
	case ForwardJoin[int]:
		return fmt.Sprintf("ForwardJoin %d ttl=%d", m.Peer.ID, m.TTL)
	case Gossip:
		if m.Scope.Neighbors {
			return fmt.Sprintf("Gossip %q neighbors", m.Content)
		}
		return fmt.Sprintf("Gossip %q round=%d", m.Content, m.Scope.Round)
	case Graft:
		return fmt.Sprintf("Graft id=%v round=%d", m.ID != nil, m.Round)
	case IHaves:
		return fmt.Sprintf("IHave x%d", len(m))
	case Disconnect:
		return fmt.Sprintf("Disconnect alive=%v respond=%v", m.Alive, m.Respond)
	}
	return m.Kind().String()
}

func want(t *testing.T, got []Output[int], withTimers bool, lines ...string) {
	t.Helper()
	if g, w := transcript(got, withTimers), strings.Join(lines, "\n"); g != w {
		t.Fatalf("outputs:\n%s\nwant:\n%s", g, w)
	}
}

func TestJoinHandshake(t *testing.T) {
	a, b := newNode(1), newNode(2)
	want(t, b.Handle(t0, JoinTopic[int]{Topic: topicA}), true, "timer 0 1m0s")
	want(t, a.Handle(t0, JoinTopic[int]{Topic: topicA, Peers: []int{2}}), false, "->2 Join")
	out := b.Handle(t0, RecvMessage[int]{From: 1, Topic: topicA, Msg: Join{Data: PeerData("d1")}})
	want(t, out, false, "->1 Neighbor High", "event NeighborUp 1")
	if lp, ok := out[0].(LearnPeerData[int]); !ok || string(lp.Data) != "d1" {
		t.Fatalf("first output %#v, want LearnPeerData d1", out[0])
	}
	want(t, a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: Neighbor{Priority: High, Data: PeerData("d2")}}), false,
		"->2 Neighbor High", "event NeighborUp 2")
	want(t, b.Handle(t0, RecvMessage[int]{From: 1, Topic: topicA, Msg: Neighbor{Priority: High, Data: PeerData("d1")}}), false)
	if !reflect.DeepEqual(a.ActiveView(topicA), []int{2}) || !reflect.DeepEqual(b.ActiveView(topicA), []int{1}) {
		t.Fatalf("views %v %v", a.ActiveView(topicA), b.ActiveView(topicA))
	}
	if e, _ := a.EagerLazy(topicA); !reflect.DeepEqual(e, []int{2}) {
		t.Fatalf("eager %v", e)
	}
	// A third node joining through 2 is forwarded to 1.
	want(t, b.Handle(t0, RecvMessage[int]{From: 3, Topic: topicA, Msg: Join{}}), false,
		"->3 Neighbor High", "event NeighborUp 3", "->1 ForwardJoin 3 ttl=6")
	// 1 has a single active peer, so it takes 3 at once.
	want(t, a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: ForwardJoin[int]{Peer: PeerInfo[int]{ID: 3}, TTL: 6}}), false,
		"->3 Neighbor High", "event NeighborUp 3")
	// Messages for a topic we did not join are ignored.
	want(t, a.Handle(t0, RecvMessage[int]{From: 9, Topic: TopicID{9}, Msg: Join{}}), false)
}

func TestActiveViewEviction(t *testing.T) {
	a := newNode(0)
	a.Handle(t0, JoinTopic[int]{Topic: topicA})
	for p := 1; p <= 5; p++ {
		a.Handle(t0, RecvMessage[int]{From: p, Topic: topicA, Msg: Neighbor{Priority: High}})
	}
	// Full: a Low request is ignored, a High one evicts a random peer, who
	// is told, disconnected, reported down and kept as passive.
	want(t, a.Handle(t0, RecvMessage[int]{From: 6, Topic: topicA, Msg: Neighbor{Priority: Low}}), false, "disconnect 6")
	out := a.Handle(t0, RecvMessage[int]{From: 7, Topic: topicA, Msg: Neighbor{Priority: High}})
	tr := transcript(out, false)
	if !strings.Contains(tr, "Disconnect alive=true respond=false") || !strings.Contains(tr, "event NeighborDown") ||
		!strings.Contains(tr, "->7 Neighbor High") || !strings.Contains(tr, "event NeighborUp 7") {
		t.Fatalf("eviction transcript:\n%s", tr)
	}
	if len(a.ActiveView(topicA)) != 5 || len(a.PassiveView(topicA)) != 1 {
		t.Fatalf("views %v %v", a.ActiveView(topicA), a.PassiveView(topicA))
	}
	// Losing a peer refills from the passive view with a Neighbor request.
	gone := a.ActiveView(topicA)[0]
	out = a.Handle(t0, PeerDisconnected[int]{Peer: gone})
	tr = transcript(out, true)
	passive := a.PassiveView(topicA)
	if !strings.Contains(tr, fmt.Sprintf("event NeighborDown %d", gone)) || !strings.Contains(tr, "Neighbor Low") || !strings.Contains(tr, "timer 1 500ms") {
		t.Fatalf("refill transcript:\n%s (passive %v)", tr, passive)
	}
	// The request times out: the peer is dropped from the passive view.
	var req int
	for _, o := range out {
		if m, ok := o.(SendMessage[int]); ok {
			req = m.To
		}
	}
	a.Handle(t0.Add(time.Second), TimerExpired[int]{Timer: Timer[int]{Topic: topicA, Kind: TimerNeighborRequest, Peer: req}})
	for _, p := range a.PassiveView(topicA) {
		if p == req {
			t.Fatalf("timed-out peer %d still passive: %v", req, a.PassiveView(topicA))
		}
	}
}

func TestBroadcastAndDedup(t *testing.T) {
	a := newNode(1)
	a.Handle(t0, JoinTopic[int]{Topic: topicA})
	a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: Neighbor{Priority: High}})
	a.Handle(t0, RecvMessage[int]{From: 3, Topic: topicA, Msg: Neighbor{Priority: High}})
	a.Handle(t0, RecvMessage[int]{From: 3, Topic: topicA, Msg: Prune{}})
	want(t, a.Handle(t0, Broadcast[int]{Topic: topicA, Content: []byte("x")}), true,
		"timer 3 5ms", `->2 Gossip "x" round=0`)
	want(t, a.Handle(t0, TimerExpired[int]{Timer: Timer[int]{Topic: topicA, Kind: TimerDispatchLazyPush}}), false, "->3 IHave x1")
	want(t, a.Handle(t0, Broadcast[int]{Topic: topicA, Content: []byte("n"), Neighbors: true}), true, `->2 Gossip "n" neighbors`)
	// Receiving: forward with round+1, deliver; a duplicate prunes its sender.
	g := Gossip{ID: IDOf([]byte("y")), Content: []byte("y"), Scope: Scope{Round: 2}}
	want(t, a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: g}), false, "event Received 2")
	want(t, a.Handle(t0, RecvMessage[int]{From: 3, Topic: topicA, Msg: g}), false, "->3 Prune")
	want(t, a.Handle(t0, TimerExpired[int]{Timer: Timer[int]{Topic: topicA, Kind: TimerDispatchLazyPush}}), false, "->3 IHave x1")
	// A spoofed id is dropped silently.
	bad := Gossip{ID: IDOf([]byte("other")), Content: []byte("z"), Scope: Scope{Round: 1}}
	want(t, a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: bad}), false)
	// A Graft gets the cached copy, with its incremented round.
	id := g.ID
	want(t, a.Handle(t0, RecvMessage[int]{From: 3, Topic: topicA, Msg: Graft{ID: &id, Round: 3}}), false, `->3 Gossip "y" round=3`)
	if e, l := a.EagerLazy(topicA); len(e) != 2 || len(l) != 0 {
		t.Fatalf("after graft eager %v lazy %v", e, l)
	}
}

func TestGraftTimers(t *testing.T) {
	a := newNode(1)
	a.Handle(t0, JoinTopic[int]{Topic: topicA})
	for _, p := range []int{2, 3} {
		a.Handle(t0, RecvMessage[int]{From: p, Topic: topicA, Msg: Neighbor{Priority: High}})
		a.Handle(t0, RecvMessage[int]{From: p, Topic: topicA, Msg: Prune{}})
	}
	id := IDOf([]byte("m"))
	want(t, a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: IHaves{{ID: id, Round: 1}}}), true, "timer 2 80ms")
	want(t, a.Handle(t0, RecvMessage[int]{From: 3, Topic: topicA, Msg: IHaves{{ID: id, Round: 4}}}), true)
	tm := TimerExpired[int]{Timer: Timer[int]{Topic: topicA, Kind: TimerGraft, ID: id}}
	want(t, a.Handle(t0, tm), true, "->2 Graft id=true round=1", "timer 2 40ms")
	want(t, a.Handle(t0, tm), true, "->3 Graft id=true round=4", "timer 2 40ms")
	want(t, a.Handle(t0, tm), true)
	if sz := a.Sizes(topicA); sz.Missing != 0 {
		t.Fatalf("missing entries left after all announcers tried: %+v", sz)
	}
}

// TestOptimizeTree mirrors upstream's scenario: an IHave at round 2 followed
// by the payload at round 6 changes nothing; at round 9 (>= 7 hops worse) the
// tree is repaired with Graft(None) to the IHave sender and Prune to the
// payload sender.
func TestOptimizeTree(t *testing.T) {
	a := newNode(1)
	a.Handle(t0, JoinTopic[int]{Topic: topicA})
	a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: Neighbor{Priority: High}})
	a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: Prune{}})
	a.Handle(t0, RecvMessage[int]{From: 3, Topic: topicA, Msg: Neighbor{Priority: High}})
	for _, c := range []struct {
		content string
		round   Round
		lines   []string
	}{
		{"hi", 5, []string{"event Received 3"}},
		{"hi2", 8, []string{"->2 Graft id=false round=2", "->3 Prune", "event Received 3"}},
	} {
		id := IDOf([]byte(c.content))
		a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: IHaves{{ID: id, Round: 2}}})
		g := Gossip{ID: id, Content: []byte(c.content), Scope: Scope{Round: c.round}}
		out := a.Handle(t0, RecvMessage[int]{From: 3, Topic: topicA, Msg: g})
		var filtered []Output[int]
		for _, o := range out {
			if m, ok := o.(SendMessage[int]); ok && m.Msg.Kind() == KindIHave {
				continue
			}
			filtered = append(filtered, o)
		}
		want(t, filtered, false, c.lines...)
	}
	// Both ends of the repaired tree agree: 2 is eager now, 3 lazy.
	if e, l := a.EagerLazy(topicA); !reflect.DeepEqual(e, []int{2}) || !reflect.DeepEqual(l, []int{3}) {
		t.Fatalf("after optimisation eager %v lazy %v", e, l)
	}
}

func TestCacheEviction(t *testing.T) {
	a := newNode(1)
	a.Handle(t0, JoinTopic[int]{Topic: topicA})
	g := Gossip{ID: IDOf([]byte("c")), Content: []byte("c"), Scope: Scope{Round: 1}}
	a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: g})
	ev := TimerExpired[int]{Timer: Timer[int]{Topic: topicA, Kind: TimerEvictCache}}
	cfg := DefaultConfig().Broadcast
	a.Handle(t0.Add(time.Second), ev)
	if sz := a.Sizes(topicA); sz.Cache != 1 || sz.Seen != 1 {
		t.Fatalf("after 1s: %+v", sz)
	}
	a.Handle(t0.Add(cfg.MessageCacheRetention), ev)
	if sz := a.Sizes(topicA); sz.Cache != 0 || sz.Seen != 1 {
		t.Fatalf("after cache retention: %+v", sz)
	}
	// Still deduplicated while the id is remembered.
	want(t, a.Handle(t0.Add(cfg.MessageCacheRetention), RecvMessage[int]{From: 2, Topic: topicA, Msg: g}), false, "->2 Prune")
	a.Handle(t0.Add(cfg.MessageIDRetention), ev)
	if sz := a.Sizes(topicA); sz.Seen != 0 {
		t.Fatalf("after id retention: %+v", sz)
	}
}

func TestIHaveBatchesFitOneFrame(t *testing.T) {
	a := New(Key{}, nil, DefaultConfig(), rand.New(rand.NewPCG(1, 1)))
	a.Handle(t0, JoinTopic[Key]{Topic: topicA})
	lazy := testPK
	a.Handle(t0, RecvMessage[Key]{From: lazy, Topic: topicA, Msg: Neighbor{Priority: High}})
	a.Handle(t0, RecvMessage[Key]{From: lazy, Topic: topicA, Msg: Prune{}})
	for i := range 300 {
		// Rounds above 127 take 3-byte varints: the worst case.
		g := Gossip{Content: []byte(fmt.Sprint(i)), Scope: Scope{Round: 60000}}
		g.ID = IDOf(g.Content)
		a.Handle(t0, RecvMessage[Key]{From: Key{1}, Topic: topicA, Msg: g})
	}
	out := a.Handle(t0, TimerExpired[Key]{Timer: Timer[Key]{Topic: topicA, Kind: TimerDispatchLazyPush}})
	total := 0
	for _, o := range out {
		m := o.(SendMessage[Key])
		ihs := m.Msg.(IHaves)
		total += len(ihs)
		if _, err := AppendFrame(nil, topicA, ihs, DefaultMaxMessageSize); err != nil {
			t.Fatalf("IHave batch of %d: %v", len(ihs), err)
		}
	}
	if total != 300 || len(out) != 3 {
		t.Fatalf("%d announcements in %d messages", total, len(out))
	}
}

func TestDisconnectRefcount(t *testing.T) {
	a := newNode(1)
	topicB := TopicID{0xb}
	for _, tp := range []TopicID{topicA, topicB} {
		a.Handle(t0, JoinTopic[int]{Topic: tp})
		a.Handle(t0, RecvMessage[int]{From: 2, Topic: tp, Msg: Neighbor{Priority: High}})
	}
	// Peer 2 disconnects from topic A only: the connection is still used by B.
	want(t, a.Handle(t0, RecvMessage[int]{From: 2, Topic: topicA, Msg: Disconnect{Alive: true}}), false, "event NeighborDown 2")
	want(t, a.Handle(t0, QuitTopic[int]{Topic: topicB}), false,
		"->2 Disconnect alive=true respond=false", "disconnect 2", "event NeighborDown 2")
	if a.Joined(topicB) || !a.Joined(topicA) {
		t.Fatal("quit removed the wrong topic")
	}
}
