package raftnet

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// Config says how a Net handles messages of type M and receivers of type R. Every func is
// required.
type Config[M any, R comparable] struct {
	// QueueMax bounds an End's inbound queue; beyond it messages are lost (and reported to
	// the sender through Failed).
	QueueMax int
	// Ends returns a message's sender and destination raft ids and whether it carries a
	// snapshot.
	Ends func(m M) (from, to uint64, snap bool)
	// Clone copies a message at Send (the sender may reuse its own).
	Clone func(m M) M
	// Step delivers m to r and reports whether r took it. ctx is cancelled by Net.Close.
	Step func(ctx context.Context, r R, m M) bool
	// Failed tells the sender r that m was not delivered.
	Failed func(r R, m M)
	// SnapshotDone tells the sender r whether the snapshot message m reached its destination.
	SnapshotDone func(r R, m M, delivered bool)
}

// Net is an in-memory network of Ends. Its methods are safe for concurrent use.
type Net[M any, R comparable] struct {
	cfg Config[M, R]

	mu       sync.Mutex
	ends     map[uint64]*End[M, R] // guarded by mu
	isolated map[uint64]bool       // guarded by mu
	cut      map[[2]uint64]bool    // guarded by mu; key (min, max)
	drop     func(M) bool          // guarded by mu
	closed   bool                  // guarded by mu
	wg       sync.WaitGroup
	ctx      context.Context // cancelled by Close: unblocks a Step in progress
	cancel   context.CancelFunc
}

// New returns an empty network.
func New[M any, R comparable](cfg Config[M, R]) *Net[M, R] {
	n := &Net[M, R]{
		cfg:      cfg,
		ends:     make(map[uint64]*End[M, R]),
		isolated: make(map[uint64]bool),
		cut:      make(map[[2]uint64]bool),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

// End returns id's end, creating it (and its delivery goroutine) on first use.
func (n *Net[M, R]) End(id uint64) *End[M, R] {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e := n.ends[id]; e != nil {
		return e
	}
	e := &End[M, R]{net: n, id: id, peers: make(map[uint64][]byte),
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	n.ends[id] = e
	if !n.closed {
		n.wg.Add(1)
		go e.deliverLoop()
	}
	return e
}

// Close stops all delivery goroutines and waits for them; later sends are lost.
func (n *Net[M, R]) Close() {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, e := range n.ends {
			close(e.stop)
		}
		n.cancel()
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// Isolate cuts id off from every other node until Heal.
func (n *Net[M, R]) Isolate(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
}

// Cut cuts the link between a and b (both directions) until Heal.
func (n *Net[M, R]) Cut(a, b uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]uint64{min(a, b), max(a, b)}] = true
}

// Heal removes every isolation and cut (not the drop filter).
func (n *Net[M, R]) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.isolated)
	clear(n.cut)
}

// SetDrop installs a filter: messages for which drop returns true are lost (nil: none). drop
// runs with the net's lock held and must not call into the Net.
func (n *Net[M, R]) SetDrop(drop func(M) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop = drop
}

func (n *Net[M, R]) passes(m M) bool {
	from, to, _ := n.cfg.Ends(m)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.isolated[from] || n.isolated[to] || n.cut[[2]uint64{min(from, to), max(from, to)}] {
		return false
	}
	return n.drop == nil || !n.drop(m)
}

func (n *Net[M, R]) end(id uint64) *End[M, R] {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ends[id]
}

// End is one raft id's end of a Net: the transport its receiver sends with.
type End[M any, R comparable] struct {
	net *Net[M, R]
	id  uint64

	mu    sync.Mutex
	recv  R                 // guarded by mu: receives the messages sent to id
	peers map[uint64][]byte // guarded by mu: from AddPeer/RemovePeer
	queue []M               // guarded by mu: inbound, not yet delivered
	sends int               // guarded by mu: Send calls
	wake  chan struct{}
	stop  chan struct{}
}

// Attach makes r the receiver of the messages sent to this end's id (replacing an earlier
// one, e.g. after a restart; the zero R detaches: messages are then lost).
func (e *End[M, R]) Attach(r R) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recv = r
}

func (e *End[M, R]) receiver() (R, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var zero R
	return e.recv, e.recv != zero
}

// Peers returns the addresses given to AddPeer and not removed.
func (e *End[M, R]) Peers() map[uint64][]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.peers)
}

// Sends returns how many times Send was called.
func (e *End[M, R]) Sends() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sends
}

// AddPeer records addr for raft id id (the Net routes by raft id; the address is only kept).
func (e *End[M, R]) AddPeer(id uint64, addr []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peers[id] = slices.Clone(addr)
}

// RemovePeer forgets raft id id's address.
func (e *End[M, R]) RemovePeer(id uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.peers, id)
}

// Send queues a copy of each message for its destination. It never blocks; a message that
// cannot be queued (no such end, isolated, cut, dropped, queue full) is reported to the
// attached receiver through Config.Failed.
func (e *End[M, R]) Send(msgs []M) {
	e.mu.Lock()
	e.sends++
	e.mu.Unlock()
	for _, m := range msgs {
		_, to, _ := e.net.cfg.Ends(m)
		dst := e.net.end(to)
		if dst == nil || !e.net.passes(m) || !dst.enqueue(e.net.cfg.Clone(m)) {
			if r, ok := e.receiver(); ok {
				e.net.cfg.Failed(r, m)
			}
		}
	}
}

func (e *End[M, R]) enqueue(m M) bool {
	e.mu.Lock()
	if len(e.queue) >= e.net.cfg.QueueMax {
		e.mu.Unlock()
		return false
	}
	e.queue = append(e.queue, m)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return true
}

// deliverLoop steps queued messages into the attached receiver and tells a snapshot's
// sender whether it was delivered.
func (e *End[M, R]) deliverLoop() {
	defer e.net.wg.Done()
	cfg := &e.net.cfg
	for {
		select {
		case <-e.stop:
			return
		case <-e.wake:
		}
		e.mu.Lock()
		q := e.queue
		e.queue = nil
		r := e.recv
		e.mu.Unlock()
		var zero R
		for _, m := range q {
			ok := r != zero && e.net.passes(m) && cfg.Step(e.net.ctx, r, m)
			from, _, snap := cfg.Ends(m)
			if !snap {
				continue
			}
			if src := e.net.end(from); src != nil {
				if sr, live := src.receiver(); live {
					cfg.SnapshotDone(sr, m, ok)
				}
			}
		}
	}
}
