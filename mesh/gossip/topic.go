package gossip

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// EventKind names a subscription event.
type EventKind uint8

// Subscription events (iroh-gossip 0.28's GossipEvent plus Lagged).
const (
	// Joined: the topic got its first neighbor (Peers).
	Joined EventKind = iota
	// NeighborUp: Peer entered the active view.
	NeighborUp
	// NeighborDown: Peer left the active view.
	NeighborDown
	// Received: a broadcast (Content) delivered by Peer.
	Received
	// Lagged: the subscriber fell behind and missed events.
	Lagged
)

func (k EventKind) String() string {
	return [...]string{"Joined", "NeighborUp", "NeighborDown", "Received", "Lagged"}[k]
}

// Event is one subscription event.
type Event struct {
	Kind  EventKind
	Peers []key.PublicKey // Joined
	// Peer is the neighbor (Joined, NeighborUp, NeighborDown) or the peer
	// that delivered a Received message (not necessarily its author).
	Peer      key.PublicKey
	Content   []byte // Received
	Neighbors bool   // Received: sent with BroadcastNeighbors
	Round     uint16 // Received: hops from the author, swarm scope
}

func (e Event) String() string {
	switch e.Kind {
	case Received:
		return fmt.Sprintf("Received(%q from %s)", e.Content, e.Peer.ShortString())
	case Lagged:
		return "Lagged"
	}
	return fmt.Sprintf("%v(%s)", e.Kind, e.Peer.ShortString())
}

// Topic is one subscription to a topic. Read its events from Events; Close
// unsubscribes (the last subscription leaves the topic).
type Topic struct {
	g      *Gossip
	id     proto.TopicID
	events chan Event

	lagged bool // actor only

	// offeredReceived counts the Received events the actor handed to deliver,
	// delivered or dropped (written by the actor, read by tests).
	offeredReceived atomic.Int64

	closeOnce sync.Once
	evOnce    sync.Once
}

// Subscribe joins topic through the bootstrap peers (none: wait to be
// joined) and returns a subscription. If the topic already has neighbors,
// the first event is Joined with all of them.
func (g *Gossip) Subscribe(ctx context.Context, topic proto.TopicID, bootstrap []key.PublicKey) (*Topic, error) {
	t := &Topic{g: g, id: topic, events: make(chan Event, g.cfg.EventBuffer)}
	peers := make([]proto.Key, 0, len(bootstrap))
	for _, b := range bootstrap {
		peers = append(peers, proto.Key(b.Bytes()))
	}
	errc := make(chan error, 1)
	if err := g.post(ctx, func() {
		if g.closing {
			errc <- ErrClosed
			return
		}
		ts := g.topics[topic]
		if ts == nil {
			ts = &topicSubs{alone: g.clk.Now()}
			g.topics[topic] = ts
		}
		ts.subs = append(ts.subs, t)
		for _, p := range peers {
			if !slices.Contains(ts.bootstrap, p) {
				ts.bootstrap = append(ts.bootstrap, p)
			}
		}
		if ts.joined && len(ts.neighbors) > 0 {
			t.deliver(Event{Kind: Joined, Peers: slices.Clone(ts.neighbors), Peer: ts.neighbors[0]})
		}
		g.handle(proto.JoinTopic[proto.Key]{Topic: topic, Peers: peers})
		errc <- nil
	}); err != nil {
		return nil, err
	}
	select {
	case err := <-errc:
		if err != nil {
			return nil, err
		}
		return t, nil
	case <-g.done:
		return nil, ErrClosed
	}
}

// ID returns the topic id.
func (t *Topic) ID() proto.TopicID { return t.id }

// Events returns the event channel. It is closed by Close (or when the node
// closes).
func (t *Topic) Events() <-chan Event { return t.events }

// Broadcast sends content to every node of the topic. It returns once the
// message is handed to the protocol; delivery is best effort.
func (t *Topic) Broadcast(ctx context.Context, content []byte) error {
	return t.broadcast(ctx, content, false)
}

// BroadcastNeighbors sends content to our direct neighbors only.
func (t *Topic) BroadcastNeighbors(ctx context.Context, content []byte) error {
	return t.broadcast(ctx, content, true)
}

func (t *Topic) broadcast(ctx context.Context, content []byte, neighbors bool) error {
	if len(content) > t.g.MaxContentSize() {
		return fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(content), t.g.MaxContentSize())
	}
	content = slices.Clone(content)
	return t.g.post(ctx, func() {
		t.g.handle(proto.Broadcast[proto.Key]{Topic: t.id, Content: content, Neighbors: neighbors})
	})
}

// JoinPeers sends Join to more peers. They are also remembered as bootstrap
// peers for re-joining (see Config.RejoinInterval).
func (t *Topic) JoinPeers(ctx context.Context, peers ...key.PublicKey) error {
	ps := make([]proto.Key, 0, len(peers))
	for _, p := range peers {
		ps = append(ps, proto.Key(p.Bytes()))
	}
	return t.g.post(ctx, func() {
		if ts := t.g.topics[t.id]; ts != nil {
			for _, p := range ps {
				if !slices.Contains(ts.bootstrap, p) {
					ts.bootstrap = append(ts.bootstrap, p)
				}
			}
			t.g.handle(proto.JoinTopic[proto.Key]{Topic: t.id, Peers: ps})
		}
	})
}

// Close unsubscribes. When the last subscription of a topic closes, the node
// leaves the topic (Disconnect to each neighbor).
func (t *Topic) Close() error {
	var err error
	t.closeOnce.Do(func() {
		done := make(chan struct{})
		err = t.g.post(context.Background(), func() {
			defer close(done)
			t.closeEvents()
			ts := t.g.topics[t.id]
			if ts == nil {
				return
			}
			ts.subs = slices.DeleteFunc(ts.subs, func(x *Topic) bool { return x == t })
			if len(ts.subs) == 0 {
				delete(t.g.topics, t.id)
				t.g.handle(proto.QuitTopic[proto.Key]{Topic: t.id})
			}
		})
		if err == nil {
			select {
			case <-done:
			case <-t.g.done:
			}
		}
		if err == ErrClosed {
			err = nil
		}
	})
	return err
}

// closeEvents closes the event channel. Actor only (the actor is the only
// sender).
func (t *Topic) closeEvents() { t.evOnce.Do(func() { close(t.events) }) }

// deliver hands e to the subscriber without blocking. Following iroh-gossip,
// when the channel is almost full the subscriber gets a single Lagged and
// misses events until it has caught up. Actor only.
func (t *Topic) deliver(e Event) {
	if e.Kind == Received {
		t.offeredReceived.Add(1)
	}
	select {
	case <-t.g.done:
		return
	default:
	}
	if len(t.events) >= cap(t.events)-1 {
		if !t.lagged {
			t.lagged = true
			select {
			case t.events <- Event{Kind: Lagged}:
			default:
			}
		}
		return
	}
	t.lagged = false
	select {
	case t.events <- e:
	default:
	}
}
