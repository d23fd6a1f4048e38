package quorum

import (
	"context"
	"maps"
	"slices"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// LocalNet is an in-memory network of Nodes for tests: each LocalTransport delivers its
// messages to the attached Node of the destination id through a per-destination queue and
// goroutine (so Send never blocks). Links can be cut, nodes isolated, and messages dropped by
// a filter; a message is checked both when sent and when delivered, so a cut also drops what
// was in flight. Close stops every delivery goroutine.
type LocalNet struct {
	mu       sync.Mutex
	ends     map[uint64]*LocalTransport // guarded by mu
	isolated map[uint64]bool            // guarded by mu
	cut      map[[2]uint64]bool         // guarded by mu; key (min, max)
	drop     func(*raftpb.Message) bool // guarded by mu
	closed   bool                       // guarded by mu
	wg       sync.WaitGroup
}

// NewLocalNet returns an empty network.
func NewLocalNet() *LocalNet {
	return &LocalNet{
		ends:     make(map[uint64]*LocalTransport),
		isolated: make(map[uint64]bool),
		cut:      make(map[[2]uint64]bool),
	}
}

// localQueueMax bounds a destination's queue; beyond it messages are dropped.
const localQueueMax = 4096

// LocalTransport is one raft id's end of a LocalNet; it implements Transport.
type LocalTransport struct {
	net *LocalNet
	id  uint64

	mu     sync.Mutex
	node   *Node             // guarded by mu; the Node messages to id are delivered to
	peers  map[uint64][]byte // guarded by mu; from AddPeer/RemovePeer
	queue  []*raftpb.Message // guarded by mu; inbound, not yet delivered
	wake   chan struct{}
	stop   chan struct{}
	ctx    context.Context // cancelled by LocalNet.Close: unblocks a Step in progress
	cancel context.CancelFunc
}

// Transport returns id's transport, creating it (and its delivery goroutine) on first use.
func (ln *LocalNet) Transport(id uint64) *LocalTransport {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if t := ln.ends[id]; t != nil {
		return t
	}
	t := &LocalTransport{net: ln, id: id, peers: make(map[uint64][]byte),
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	ln.ends[id] = t
	if !ln.closed {
		ln.wg.Add(1)
		go t.deliverLoop()
	}
	return t
}

// Close stops all delivery goroutines and waits for them; later sends are dropped.
func (ln *LocalNet) Close() {
	ln.mu.Lock()
	if !ln.closed {
		ln.closed = true
		for _, t := range ln.ends {
			close(t.stop)
			t.cancel()
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

// SetDrop installs a filter: messages for which drop returns true are lost (nil: none).
// drop is called with the net's lock held and must not call back into the LocalNet.
func (ln *LocalNet) SetDrop(drop func(*raftpb.Message) bool) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	ln.drop = drop
}

func (ln *LocalNet) passes(m *raftpb.Message) bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	from, to := m.GetFrom(), m.GetTo()
	if ln.closed || ln.isolated[from] || ln.isolated[to] || ln.cut[[2]uint64{min(from, to), max(from, to)}] {
		return false
	}
	return ln.drop == nil || !ln.drop(m)
}

// Attach makes n the receiver of messages addressed to this transport's id (replacing a
// previous Node, e.g. after a restart).
func (t *LocalTransport) Attach(n *Node) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.node = n
}

// Peers returns the addresses learnt through AddPeer and not removed.
func (t *LocalTransport) Peers() map[uint64][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.peers)
}

// AddPeer implements Transport.
func (t *LocalTransport) AddPeer(id uint64, peer []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.peers[id] = slices.Clone(peer)
}

// RemovePeer implements Transport.
func (t *LocalTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.peers, id)
}

// Send implements Transport: it never blocks.
func (t *LocalTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		t.net.mu.Lock()
		dst := t.net.ends[m.GetTo()]
		t.net.mu.Unlock()
		if dst == nil || !t.net.passes(m) || !dst.enqueue(proto.Clone(m).(*raftpb.Message)) {
			t.failed(m)
		}
	}
}

// failed reports an undelivered message to the sender's Node.
func (t *LocalTransport) failed(m *raftpb.Message) {
	t.mu.Lock()
	n := t.node
	t.mu.Unlock()
	if n == nil {
		return
	}
	if m.GetType() == raftpb.MsgSnap {
		n.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
	}
	n.ReportUnreachable(m.GetTo())
}

func (t *LocalTransport) enqueue(m *raftpb.Message) bool {
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

// deliverLoop steps queued messages into the attached Node.
func (t *LocalTransport) deliverLoop() {
	defer t.net.wg.Done()
	ctx := t.ctx
	for {
		select {
		case <-t.stop:
			return
		case <-t.wake:
		}
		t.mu.Lock()
		q := t.queue
		t.queue = nil
		n := t.node
		t.mu.Unlock()
		for _, m := range q {
			ok := n != nil && t.net.passes(m) && n.Step(ctx, m) == nil
			if m.GetType() == raftpb.MsgSnap {
				t.net.mu.Lock()
				src := t.net.ends[m.GetFrom()]
				t.net.mu.Unlock()
				if src == nil {
					continue
				}
				src.mu.Lock()
				sn := src.node
				src.mu.Unlock()
				if sn == nil {
					continue
				}
				if ok {
					sn.ReportSnapshot(t.id, raft.SnapshotFinish)
				} else {
					sn.ReportSnapshot(t.id, raft.SnapshotFailure)
				}
			}
		}
	}
}
