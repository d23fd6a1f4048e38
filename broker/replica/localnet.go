package replica

import (
	"maps"
	"slices"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// LocalNet is an in-memory network of Engines for tests (of this package and of others):
// each LocalEndpoint delivers the messages sent to its raft id to the attached Engine
// through a queue and a goroutine, so Send never blocks. Nodes can be isolated, links cut and
// messages dropped by a filter; a message is checked when sent and again when delivered, so
// a cut also loses what was in flight. Close stops every delivery goroutine.
type LocalNet struct {
	mu       sync.Mutex
	ends     map[uint64]*LocalEndpoint // guarded by mu
	isolated map[uint64]bool           // guarded by mu
	cut      map[[2]uint64]bool        // guarded by mu; key (min, max)
	drop     func(GroupMessage) bool   // guarded by mu
	closed   bool                      // guarded by mu
	wg       sync.WaitGroup
}

// NewLocalNet returns an empty network.
func NewLocalNet() *LocalNet {
	return &LocalNet{
		ends:     make(map[uint64]*LocalEndpoint),
		isolated: make(map[uint64]bool),
		cut:      make(map[[2]uint64]bool),
	}
}

// localQueueMax bounds an endpoint's inbound queue; beyond it messages are lost.
const localQueueMax = 1 << 16

// LocalEndpoint is one raft id's end of a LocalNet; it implements Transport.
type LocalEndpoint struct {
	net *LocalNet
	id  uint64

	mu    sync.Mutex
	eng   *Engine           // guarded by mu: receives the messages sent to id
	peers map[uint64][]byte // guarded by mu: from AddPeer/RemovePeer
	queue []GroupMessage    // guarded by mu: inbound, not yet delivered
	sends int               // guarded by mu: Send calls
	wake  chan struct{}
	stop  chan struct{}
}

// Endpoint returns id's endpoint, creating it (and its delivery goroutine) on first use.
func (ln *LocalNet) Endpoint(id uint64) *LocalEndpoint {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if t := ln.ends[id]; t != nil {
		return t
	}
	t := &LocalEndpoint{net: ln, id: id, peers: make(map[uint64][]byte),
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	ln.ends[id] = t
	if !ln.closed {
		ln.wg.Add(1)
		go t.deliverLoop()
	}
	return t
}

// Close stops all delivery goroutines and waits for them; later sends are lost.
func (ln *LocalNet) Close() {
	ln.mu.Lock()
	if !ln.closed {
		ln.closed = true
		for _, t := range ln.ends {
			close(t.stop)
		}
	}
	ln.mu.Unlock()
	ln.wg.Wait()
}

// Isolate cuts id off from every other node until Heal.
func (ln *LocalNet) Isolate(id uint64) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.isolated[id] = true
}

// Cut cuts the link between a and b (both directions) until Heal.
func (ln *LocalNet) Cut(a, b uint64) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.cut[[2]uint64{min(a, b), max(a, b)}] = true
}

// Heal removes every isolation and cut (not the drop filter).
func (ln *LocalNet) Heal() {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	clear(ln.isolated)
	clear(ln.cut)
}

// SetDrop installs a filter: messages for which drop returns true are lost (nil: none). drop
// runs with the net's lock held and must not call into the LocalNet.
func (ln *LocalNet) SetDrop(drop func(GroupMessage) bool) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.drop = drop
}

func (ln *LocalNet) passes(m GroupMessage) bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	from, to := m.Msg.GetFrom(), m.Msg.GetTo()
	if ln.closed || ln.isolated[from] || ln.isolated[to] || ln.cut[[2]uint64{min(from, to), max(from, to)}] {
		return false
	}
	return ln.drop == nil || !ln.drop(m)
}

func (ln *LocalNet) endpoint(id uint64) *LocalEndpoint {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	return ln.ends[id]
}

// Attach makes e the receiver of the messages sent to this endpoint's id (replacing an
// earlier Engine, e.g. after a restart; nil detaches: messages are then lost).
func (t *LocalEndpoint) Attach(e *Engine) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.eng = e
}

func (t *LocalEndpoint) engine() *Engine {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.eng
}

// Peers returns the addresses given to AddPeer and not removed.
func (t *LocalEndpoint) Peers() map[uint64][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.peers)
}

// Sends returns how many times Send was called.
func (t *LocalEndpoint) Sends() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sends
}

// AddPeer implements Transport (the LocalNet routes by raft id; the address is only kept).
func (t *LocalEndpoint) AddPeer(id uint64, addr []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peers[id] = slices.Clone(addr)
}

// RemovePeer implements Transport.
func (t *LocalEndpoint) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.peers, id)
}

// Send implements Transport: it never blocks. Each message is copied.
func (t *LocalEndpoint) Send(msgs []GroupMessage) {
	t.mu.Lock()
	t.sends++
	t.mu.Unlock()
	for _, m := range msgs {
		dst := t.net.endpoint(m.Msg.GetTo())
		c := GroupMessage{Group: m.Group, Msg: proto.Clone(m.Msg).(*raftpb.Message)}
		if dst == nil || !t.net.passes(m) || !dst.enqueue(c) {
			t.failed(m)
		}
	}
}

// failed reports an undelivered message to the sending Engine.
func (t *LocalEndpoint) failed(m GroupMessage) {
	e := t.engine()
	if e == nil {
		return
	}
	if m.Msg.GetType() == raftpb.MessageType_MsgSnap {
		e.ReportSnapshot(m.Group, m.Msg.GetTo(), false)
	}
	e.ReportUnreachable(m.Msg.GetTo())
}

func (t *LocalEndpoint) enqueue(m GroupMessage) bool {
	t.mu.Lock()
	if len(t.queue) >= localQueueMax {
		t.mu.Unlock()
		return false
	}
	t.queue = append(t.queue, m)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return true
}

// deliverLoop steps queued messages into the attached Engine.
func (t *LocalEndpoint) deliverLoop() {
	defer t.net.wg.Done()
	for {
		select {
		case <-t.stop:
			return
		case <-t.wake:
		}
		t.mu.Lock()
		q := t.queue
		t.queue = nil
		e := t.eng
		t.mu.Unlock()
		for _, m := range q {
			ok := e != nil && t.net.passes(m)
			if ok {
				e.Step(m)
			}
			if m.Msg.GetType() == raftpb.MessageType_MsgSnap {
				if src := t.net.endpoint(m.Msg.GetFrom()); src != nil {
					if se := src.engine(); se != nil {
						se.ReportSnapshot(m.Group, t.id, ok)
					}
				}
			}
		}
	}
}
