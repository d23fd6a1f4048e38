package proto

import (
	"math/rand/v2"
	"time"
)

// HyParViewConfig holds the membership parameters (iroh-gossip defaults in
// DefaultConfig).
type HyParViewConfig struct {
	ActiveViewCapacity      int
	PassiveViewCapacity     int
	ActiveRandomWalkLength  uint16
	PassiveRandomWalkLength uint16
	ShuffleRandomWalkLength uint16
	ShuffleActiveViewCount  int
	ShufflePassiveViewCount int
	ShuffleInterval         time.Duration
	NeighborRequestTimeout  time.Duration
}

// PlumtreeConfig holds the broadcast parameters.
type PlumtreeConfig struct {
	GraftTimeout1         time.Duration
	GraftTimeout2         time.Duration
	DispatchTimeout       time.Duration
	OptimizationThreshold Round
	MessageCacheRetention time.Duration
	MessageIDRetention    time.Duration
	CacheEvictInterval    time.Duration
}

// Config is the whole protocol configuration.
type Config struct {
	Membership     HyParViewConfig
	Broadcast      PlumtreeConfig
	MaxMessageSize int
}

// DefaultConfig returns iroh-gossip's defaults (unchanged from 0.28 to 0.101).
func DefaultConfig() Config {
	return Config{
		Membership: HyParViewConfig{
			ActiveViewCapacity:      5,
			PassiveViewCapacity:     30,
			ActiveRandomWalkLength:  6,
			PassiveRandomWalkLength: 3,
			ShuffleRandomWalkLength: 6,
			ShuffleActiveViewCount:  3,
			ShufflePassiveViewCount: 4,
			ShuffleInterval:         60 * time.Second,
			NeighborRequestTimeout:  500 * time.Millisecond,
		},
		Broadcast: PlumtreeConfig{
			GraftTimeout1:         80 * time.Millisecond,
			GraftTimeout2:         40 * time.Millisecond,
			DispatchTimeout:       5 * time.Millisecond,
			OptimizationThreshold: 7,
			MessageCacheRetention: 30 * time.Second,
			MessageIDRetention:    90 * time.Second,
			CacheEvictInterval:    time.Second,
		},
		MaxMessageSize: DefaultMaxMessageSize,
	}
}

// ---- inputs ----

// Input is an event fed to State.Handle: RecvMessage, Join, Broadcast, Quit,
// TimerExpired, PeerDisconnected or UpdatePeerData.
type Input[P comparable] interface{ isInput(P) }

// RecvMessage: a message arrived from a peer.
type RecvMessage[P comparable] struct {
	From  P
	Topic TopicID
	Msg   Msg
}

// JoinTopic creates the topic state (if needed) and sends Join to peers.
type JoinTopic[P comparable] struct {
	Topic TopicID
	Peers []P
}

// Broadcast sends content to the swarm (or only to direct neighbors).
type Broadcast[P comparable] struct {
	Topic     TopicID
	Content   []byte
	Neighbors bool
}

// QuitTopic leaves a topic: disconnects from its active view and drops it.
type QuitTopic[P comparable] struct{ Topic TopicID }

// TimerExpired delivers a timer previously scheduled with ScheduleTimer.
type TimerExpired[P comparable] struct{ Timer Timer[P] }

// PeerDisconnected reports that the connection to a peer is gone.
type PeerDisconnected[P comparable] struct{ Peer P }

// UpdatePeerData replaces our own PeerData (sent in later Join/Neighbor).
type UpdatePeerData[P comparable] struct{ Data PeerData }

func (RecvMessage[P]) isInput(P)      {}
func (JoinTopic[P]) isInput(P)        {}
func (Broadcast[P]) isInput(P)        {}
func (QuitTopic[P]) isInput(P)        {}
func (TimerExpired[P]) isInput(P)     {}
func (PeerDisconnected[P]) isInput(P) {}
func (UpdatePeerData[P]) isInput(P)   {}

// ---- outputs ----

// Output is something the caller must do: SendMessage, EmitEvent,
// ScheduleTimer, DisconnectPeer or LearnPeerData.
type Output[P comparable] interface{ isOutput(P) }

// SendMessage: send Msg on Topic to peer To (dialing it if needed).
type SendMessage[P comparable] struct {
	To    P
	Topic TopicID
	Msg   Msg
}

// EmitEvent: report Event to the subscribers of Topic.
type EmitEvent[P comparable] struct {
	Topic TopicID
	Event Event[P]
}

// ScheduleTimer: call Handle(TimerExpired{Timer}) after Delay.
type ScheduleTimer[P comparable] struct {
	Delay time.Duration
	Timer Timer[P]
}

// DisconnectPeer: no joined topic uses the peer any more; close its
// connection.
type DisconnectPeer[P comparable] struct{ Peer P }

// LearnPeerData: a peer announced new data (addresses).
type LearnPeerData[P comparable] struct {
	Peer P
	Data PeerData
}

func (SendMessage[P]) isOutput(P)    {}
func (EmitEvent[P]) isOutput(P)      {}
func (ScheduleTimer[P]) isOutput(P)  {}
func (DisconnectPeer[P]) isOutput(P) {}
func (LearnPeerData[P]) isOutput(P)  {}

// EventKind names a topic event.
type EventKind uint8

// Topic events.
const (
	NeighborUp EventKind = iota
	NeighborDown
	Received
)

func (k EventKind) String() string {
	switch k {
	case NeighborUp:
		return "NeighborUp"
	case NeighborDown:
		return "NeighborDown"
	}
	return "Received"
}

// Event is a topic event. Peer is the neighbor (NeighborUp/Down) or the peer
// that delivered the message (Received).
type Event[P comparable] struct {
	Kind    EventKind
	Peer    P
	Content []byte // Received only
	Scope   Scope  // Received only
}

// TimerKind names a timer.
type TimerKind uint8

// Timers.
const (
	TimerShuffle TimerKind = iota
	TimerNeighborRequest
	TimerGraft
	TimerDispatchLazyPush
	TimerEvictCache
)

// Timer identifies a scheduled timer of one topic. Peer is set for
// TimerNeighborRequest, ID for TimerGraft.
type Timer[P comparable] struct {
	Topic TopicID
	Kind  TimerKind
	Peer  P
	ID    MessageID
}

// ---- the multi-topic state ----

// State is the protocol state of one node across all its topics. It is not
// safe for concurrent use; its owner serialises calls to Handle.
type State[P comparable] struct {
	me         P
	meData     PeerData
	cfg        Config
	rng        *rand.Rand
	topics     map[TopicID]*topicState[P]
	order      []TopicID // join order, for deterministic iteration
	peerTopics map[P]map[TopicID]struct{}
	peerOrder  indexSet[P] // keys of peerTopics, for deterministic iteration
	out        []Output[P]
}

// New returns the state of node me. meData is our PeerData (nil for none);
// all randomness comes from rng.
func New[P comparable](me P, meData PeerData, cfg Config, rng *rand.Rand) *State[P] {
	return &State[P]{
		me:         me,
		meData:     meData,
		cfg:        cfg,
		rng:        rng,
		topics:     make(map[TopicID]*topicState[P]),
		peerTopics: make(map[P]map[TopicID]struct{}),
	}
}

// Me returns our own identity.
func (s *State[P]) Me() P { return s.me }

// Config returns the configuration.
func (s *State[P]) Config() Config { return s.cfg }

// Joined reports whether topic has state (a JoinTopic and no QuitTopic).
func (s *State[P]) Joined(topic TopicID) bool { return s.topics[topic] != nil }

// ActiveView returns a copy of the topic's active view.
func (s *State[P]) ActiveView(topic TopicID) []P {
	if t := s.topics[topic]; t != nil {
		return append([]P(nil), t.swarm.active.items...)
	}
	return nil
}

// PassiveView returns a copy of the topic's passive view.
func (s *State[P]) PassiveView(topic TopicID) []P {
	if t := s.topics[topic]; t != nil {
		return append([]P(nil), t.swarm.passive.items...)
	}
	return nil
}

// EagerLazy returns copies of the topic's Plumtree eager and lazy sets.
func (s *State[P]) EagerLazy(topic TopicID) (eager, lazy []P) {
	if t := s.topics[topic]; t != nil {
		return append([]P(nil), t.gossip.eager.items...), append([]P(nil), t.gossip.lazy.items...)
	}
	return nil, nil
}

// Sizes reports the sizes of the topic's bounded-by-time structures: the
// payload cache, the seen-id set, pending IHave announcements and the peer
// data map. The simulator asserts they stay bounded.
type Sizes struct {
	Cache, Seen, Missing, PeerData, LazyQueue int
}

// Sizes returns the topic's internal sizes.
func (s *State[P]) Sizes(topic TopicID) Sizes {
	t := s.topics[topic]
	if t == nil {
		return Sizes{}
	}
	lq := 0
	for _, l := range t.gossip.lazyQueue {
		lq += len(l)
	}
	return Sizes{
		Cache: t.gossip.cache.len(), Seen: t.gossip.seen.len(), Missing: len(t.gossip.missing),
		PeerData: len(t.swarm.peerData), LazyQueue: lq,
	}
}

// Handle feeds one input at time now and returns the outputs, in order. The
// returned slice is only valid until the next call.
func (s *State[P]) Handle(now time.Time, in Input[P]) []Output[P] {
	s.out = s.out[:0]
	switch in := in.(type) {
	case JoinTopic[P]:
		t := s.topics[in.Topic]
		if t == nil {
			t = newTopicState(s, in.Topic)
			s.topics[in.Topic] = t
			s.order = append(s.order, in.Topic)
		}
		t.handle(now, in)
	case QuitTopic[P]:
		if t := s.topics[in.Topic]; t != nil {
			t.handle(now, in)
			delete(s.topics, in.Topic)
			for i, o := range s.order {
				if o == in.Topic {
					s.order = append(s.order[:i], s.order[i+1:]...)
					break
				}
			}
			// Forget the topic in the connection reference counts.
			for _, p := range append([]P(nil), s.peerOrder.items...) {
				s.disconnect(in.Topic, p)
			}
		}
	case Broadcast[P]:
		if t := s.topics[in.Topic]; t != nil {
			t.handle(now, in)
		}
	case RecvMessage[P]:
		t := s.topics[in.Topic]
		if t == nil {
			return s.out // not joined: ignore silently, as Rust does
		}
		ts := s.peerTopics[in.From]
		if ts == nil {
			ts = make(map[TopicID]struct{})
			s.peerTopics[in.From] = ts
			s.peerOrder.insert(in.From)
		}
		ts[in.Topic] = struct{}{}
		t.handle(now, in)
	case TimerExpired[P]:
		if t := s.topics[in.Timer.Topic]; t != nil {
			t.handle(now, in)
		}
	case PeerDisconnected[P]:
		for _, id := range s.order {
			s.topics[id].handle(now, in)
		}
	case UpdatePeerData[P]:
		s.meData = in.Data
		for _, id := range s.order {
			s.topics[id].handle(now, in)
		}
	}
	return s.out
}

// disconnect implements the per-connection reference counting: a topic's
// DisconnectPeer reaches the caller only when it empties the set of topics
// that received from the peer.
func (s *State[P]) disconnect(topic TopicID, p P) {
	ts, ok := s.peerTopics[p]
	if !ok {
		return
	}
	if _, had := ts[topic]; !had {
		return
	}
	delete(ts, topic)
	if len(ts) == 0 {
		delete(s.peerTopics, p)
		s.peerOrder.remove(p)
		s.out = append(s.out, DisconnectPeer[P]{Peer: p})
	}
}

// topicState is HyParView plus Plumtree for one topic.
type topicState[P comparable] struct {
	s      *State[P]
	topic  TopicID
	swarm  hyparview[P]
	gossip plumtree[P]
}

func newTopicState[P comparable](s *State[P], topic TopicID) *topicState[P] {
	t := &topicState[P]{s: s, topic: topic}
	t.swarm = hyparview[P]{t: t, cfg: s.cfg.Membership, peerData: make(map[P]PeerData), pending: make(map[P]bool)}
	t.gossip = plumtree[P]{t: t, cfg: s.cfg.Broadcast, lazyQueue: make(map[P][]IHave), missing: make(map[MessageID][]ihaveFrom[P]), graftScheduled: make(map[MessageID]bool)}
	return t
}

func (t *topicState[P]) send(to P, m Msg) {
	t.s.out = append(t.s.out, SendMessage[P]{To: to, Topic: t.topic, Msg: m})
}

func (t *topicState[P]) timer(d time.Duration, kind TimerKind, peer P, id MessageID) {
	t.s.out = append(t.s.out, ScheduleTimer[P]{Delay: d, Timer: Timer[P]{Topic: t.topic, Kind: kind, Peer: peer, ID: id}})
}

func (t *topicState[P]) emit(e Event[P]) {
	t.s.out = append(t.s.out, EmitEvent[P]{Topic: t.topic, Event: e})
}

func (t *topicState[P]) handle(now time.Time, in Input[P]) {
	start := len(t.s.out)
	switch in := in.(type) {
	case JoinTopic[P]:
		t.swarm.init()
		for _, p := range in.Peers {
			t.swarm.requestJoin(p)
		}
	case Broadcast[P]:
		t.gossip.init(now)
		t.gossip.broadcast(now, in.Content, in.Neighbors)
	case QuitTopic[P]:
		t.swarm.init()
		t.swarm.quit()
	case RecvMessage[P]:
		if in.Msg.Kind().IsSwarm() {
			t.swarm.init()
			t.swarm.onMessage(in.From, in.Msg)
		} else {
			t.gossip.init(now)
			t.gossip.onMessage(now, in.From, in.Msg)
		}
	case TimerExpired[P]:
		switch in.Timer.Kind {
		case TimerShuffle:
			t.swarm.init()
			t.swarm.onShuffleTimer()
		case TimerNeighborRequest:
			t.swarm.init()
			t.swarm.onNeighborRequestTimer(in.Timer.Peer)
		default:
			t.gossip.init(now)
			t.gossip.onTimer(now, in.Timer)
		}
	case PeerDisconnected[P]:
		t.swarm.init()
		t.swarm.disconnected(in.Peer, Disconnect{Alive: true})
		t.gossip.init(now)
		t.gossip.onNeighborDown(in.Peer)
	case UpdatePeerData[P]:
		t.swarm.init()
	}
	// Plumtree follows the membership: NeighborUp makes a peer eager,
	// NeighborDown forgets it.
	end := len(t.s.out)
	for i := start; i < end; i++ {
		if e, ok := t.s.out[i].(EmitEvent[P]); ok && e.Topic == t.topic {
			switch e.Event.Kind {
			case NeighborUp:
				t.gossip.init(now)
				t.gossip.addEager(e.Event.Peer)
			case NeighborDown:
				t.gossip.init(now)
				t.gossip.onNeighborDown(e.Event.Peer)
			}
		}
	}
}
