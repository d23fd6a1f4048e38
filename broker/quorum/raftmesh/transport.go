package raftmesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// ALPN is the raft transport's application protocol on the mesh.
const ALPN = "/meshkafka/raft/0"

// Application error codes a receiver closes a connection with (the reason string says more).
const (
	ErrCodeUntrusted quic.ApplicationErrorCode = 0x5201 // the sender's NodeId is not trusted
	ErrCodeSpoofed   quic.ApplicationErrorCode = 0x5202 // a message's From is not the sender's raft id
	ErrCodeMalformed quic.ApplicationErrorCode = 0x5203 // a frame or message did not decode
	ErrCodeTooLarge  quic.ApplicationErrorCode = 0x5204 // a frame over the receiver's MaxFrame
	ErrCodeClosing   quic.ApplicationErrorCode = 0x5205 // the transport is closed / the peer removed
)

// Defaults of Config.
const (
	DefaultQueueLen   = 1024
	DefaultMaxFrame   = 512 << 20
	DefaultBatchBytes = 1 << 20
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
	// refusalLogEvery is how often a refusal of the same NodeId is logged at Warn again.
	refusalLogEvery = 10 * time.Minute
)

// Config configures NewWithConfig. Trust and Deliver are required.
type Config struct {
	// Trust reports whether a NodeId may send us raft messages; it is asked when a connection
	// arrives and again for every frame (so revoking trust takes effect at once).
	Trust func(key.PublicKey) bool
	// Deliver receives every accepted inbound message, in order per sending peer. It is
	// called from several goroutines at once (one per inbound stream) and should return
	// soon (hand the message to the raft node); while it blocks, that peer's stream is not
	// read. Close waits for calls in progress.
	Deliver func(*raftpb.Message)
	// Log receives warnings and debug logs. Nil: discard.
	Log *slog.Logger
	// Clock times reconnect backoff and refusal-log suppression. Nil: the wall clock.
	Clock clock.Clock
	// ID, if non-zero, is this node's raft id: inbound messages addressed to another id (an
	// earlier incarnation of this node) are dropped.
	ID uint64
	// QueueLen is each peer's send queue, in messages (default DefaultQueueLen). Send drops
	// a message whose queue is full.
	QueueLen int
	// MaxFrame is the largest frame sent or accepted, in bytes (default DefaultMaxFrame,
	// 512 MiB). A message that does not fit alone (a huge MsgSnap) is dropped and reported;
	// a larger inbound frame closes the connection with ErrCodeTooLarge.
	MaxFrame int
	// BatchBytes is the size at which the sender stops coalescing queued messages into one
	// frame (default DefaultBatchBytes).
	BatchBytes int
	// BackoffMin and BackoffMax bound the wait after a failed connect or write, doubling
	// per consecutive failure (defaults 100 ms and 5 s).
	BackoffMin, BackoffMax time.Duration
	// Unreachable, if set, is told the raft id of a peer a message to which was dropped (queue
	// full, connect or write failed) so the raft node can call ReportUnreachable. Called on
	// the peer's sender goroutine, never from inside Send; at most once per failure event.
	Unreachable func(id uint64)
	// SnapshotStatus, if set, is told the fate of every MsgSnap handed to Send: err nil once
	// the frame holding it was written to the peer's stream, non-nil if it was dropped (so
	// the raft node can call ReportSnapshot). Called on the peer's sender goroutine.
	SnapshotStatus func(id uint64, err error)
}

// Stats counts what the transport did since New.
type Stats struct {
	Sent      uint64 // messages written to a peer's stream
	Frames    uint64 // frames written
	Dropped   uint64 // messages dropped before sending (queue full, unknown peer, connect/write failed, too large)
	Delivered uint64 // inbound messages handed to Deliver
	Ignored   uint64 // inbound messages addressed to another raft id (Config.ID)
	Refused   uint64 // inbound connections closed as untrusted, spoofing, malformed or too large
	Connects  uint64 // outbound streams opened
}

// Transport carries raft messages between nodes over the mesh. It satisfies broker/quorum's
// Transport interface. Create it with New or NewWithConfig; Close it when done.
type Transport struct {
	ep     *endpoint.Endpoint
	cfg    Config
	log    *slog.Logger
	clk    clock.Clock
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // sender goroutines and inbound handlers; Add only under mu while !closed

	mu      sync.RWMutex
	closed  bool                                  // guarded by mu
	peers   map[uint64]key.PublicKey              // guarded by mu: raft id → NodeId
	addrs   map[key.PublicKey]endpoint.NodeAddr   // guarded by mu: NodeId → address
	raftIDs map[key.PublicKey]map[uint64]struct{} // guarded by mu: NodeId → raft ids added for it
	senders map[key.PublicKey]*sender             // guarded by mu: one per NodeId with a peer
	inbound map[*endpoint.Conn]struct{}           // guarded by mu: accepted connections being served

	logMu   sync.Mutex
	refusal map[refusalKey]time.Time // guarded by logMu: when a refusal was last logged at Warn

	sent, frames, dropped, delivered, ignored, refused, connects atomic.Uint64
}

// New starts a transport on ep with the default Config: inbound connections from NodeIds trust
// allows have their messages passed to deliver. It registers ALPN on ep.
func New(ep *endpoint.Endpoint, trust func(key.PublicKey) bool, deliver func(*raftpb.Message), log *slog.Logger) *Transport {
	return NewWithConfig(ep, Config{Trust: trust, Deliver: deliver, Log: log})
}

// NewWithConfig starts a transport on ep configured by cfg and registers ALPN on ep.
func NewWithConfig(ep *endpoint.Endpoint, cfg Config) *Transport {
	if cfg.Trust == nil || cfg.Deliver == nil {
		panic("raftmesh: Config needs Trust and Deliver")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	cfg.MaxFrame = min(cfg.MaxFrame, 1<<32-1)
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = DefaultBackoffMin
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(DefaultBackoffMax, cfg.BackoffMin)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		ep: ep, cfg: cfg, log: cfg.Log, clk: clock.Or(cfg.Clock), ctx: ctx, cancel: cancel,
		peers: map[uint64]key.PublicKey{}, addrs: map[key.PublicKey]endpoint.NodeAddr{},
		raftIDs: map[key.PublicKey]map[uint64]struct{}{}, senders: map[key.PublicKey]*sender{},
		inbound: map[*endpoint.Conn]struct{}{}, refusal: map[refusalKey]time.Time{},
	}
	ep.Handle(ALPN, t.serveConn)
	return t
}

// Stats returns the counters.
func (t *Transport) Stats() Stats {
	return Stats{
		Sent: t.sent.Load(), Frames: t.frames.Load(), Dropped: t.dropped.Load(),
		Delivered: t.delivered.Load(), Ignored: t.ignored.Load(), Refused: t.refused.Load(),
		Connects: t.connects.Load(),
	}
}

// Send queues msgs to their peers (by To) and returns at once. A message to an unknown raft
// id, or whose peer's queue is full, is dropped (the peer is then reported through
// Config.Unreachable, a dropped MsgSnap through Config.SnapshotStatus). The transport owns
// the messages from now on: the caller must not modify them.
func (t *Transport) Send(msgs []*raftpb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		t.dropped.Add(uint64(len(msgs)))
		return
	}
	for _, m := range msgs {
		node, ok := t.peers[m.GetTo()]
		if !ok {
			t.dropped.Add(1)
			continue
		}
		t.senders[node].enqueue(m)
	}
}

// AddPeer records raft id's address: peer is EncodeAddr bytes. Adding a known id again
// updates its address. Inbound messages from a NodeId must carry as From one of the raft ids
// added for it (two while a new incarnation replaces an old one). Bad address bytes are
// logged and the peer is not added.
func (t *Transport) AddPeer(id uint64, peer []byte) {
	a, err := DecodeAddr(peer)
	if err != nil {
		t.log.Warn("raft transport: peer not added: bad address", "raft_id", id, "err", err)
		return
	}
	if id == 0 {
		t.log.Warn("raft transport: peer not added: raft id 0", "node", a.ID.String())
		return
	}
	t.ep.AddNodeAddr(a)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	var stop *sender
	if old, ok := t.peers[id]; ok && old != a.ID {
		stop = t.forgetLocked(id)
	}
	t.peers[id] = a.ID
	t.addrs[a.ID] = a
	if t.raftIDs[a.ID] == nil {
		t.raftIDs[a.ID] = map[uint64]struct{}{}
	}
	t.raftIDs[a.ID][id] = struct{}{}
	if t.senders[a.ID] == nil {
		s := newSender(t, a.ID)
		t.senders[a.ID] = s
		t.wg.Go(s.run)
	}
	if stop != nil {
		stop.stop() // only cancels; its goroutine is owned by t.wg
	}
}

// RemovePeer forgets raft id. When no other raft id uses its NodeId, the peer's sender stops
// and closes its connection (in the background; Close waits for it); queued messages are
// dropped.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	s := t.forgetLocked(id)
	t.mu.Unlock()
	if s != nil {
		s.stop()
	}
}

// forgetLocked removes id and returns its NodeId's sender if no raft id uses it any more.
func (t *Transport) forgetLocked(id uint64) *sender {
	node, ok := t.peers[id]
	if !ok {
		return nil
	}
	delete(t.peers, id)
	ids := t.raftIDs[node]
	delete(ids, id)
	if len(ids) > 0 {
		return nil
	}
	delete(t.raftIDs, node)
	delete(t.addrs, node)
	s := t.senders[node]
	delete(t.senders, node)
	return s
}

// Close stops every sender, closes every connection of the transport and waits for its
// goroutines (senders, inbound handlers, Deliver calls in progress). Messages still queued
// are dropped. Safe to call more than once. The ALPN stays registered on the endpoint:
// connections arriving later are closed with ErrCodeClosing.
func (t *Transport) Close() error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		t.cancel()
		for c := range t.inbound {
			_ = c.CloseWithError(uint64(ErrCodeClosing), "raft transport closed")
		}
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// addrOf returns the current address of a NodeId.
func (t *Transport) addrOf(node key.PublicKey) (endpoint.NodeAddr, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	a, ok := t.addrs[node]
	return a, ok
}

// refusalKey is what refusal logs are rate-limited by: one NodeId refused for one reason.
type refusalKey struct {
	node key.PublicKey
	code quic.ApplicationErrorCode
}

// logRefusal logs a refusal at Warn the first time for a NodeId and code, then at most every
// refusalLogEvery; in between at Debug.
func (t *Transport) logRefusal(node key.PublicKey, code quic.ApplicationErrorCode, msg string, args ...any) {
	now := t.clk.Now()
	k := refusalKey{node, code}
	t.logMu.Lock()
	last, seen := t.refusal[k]
	warn := !seen || now.Sub(last) >= refusalLogEvery
	if warn {
		if len(t.refusal) >= 1024 {
			for k, at := range t.refusal {
				if now.Sub(at) >= refusalLogEvery {
					delete(t.refusal, k)
				}
			}
			if len(t.refusal) >= 1024 {
				clear(t.refusal)
			}
		}
		t.refusal[k] = now
	}
	t.logMu.Unlock()
	args = append(args, "node", node.String())
	if warn {
		t.log.Warn(msg, args...)
	} else {
		t.log.Debug(msg, args...)
	}
}

// errClosed is what a sender reports for messages dropped because the transport or peer
// stopped.
var errClosed = errors.New("raftmesh: transport closed or peer removed")

func errTooLarge(size, limit int) error {
	return fmt.Errorf("%w: message of %d bytes, limit %d", ErrFrameTooLarge, size, limit)
}
