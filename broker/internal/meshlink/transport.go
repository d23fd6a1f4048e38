package meshlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Application error codes a receiver closes a connection with (the reason string says more).
const (
	ErrCodeUntrusted quic.ApplicationErrorCode = 0x5201 // the sender's NodeId is not trusted
	ErrCodeSpoofed   quic.ApplicationErrorCode = 0x5202 // an item's From is not the sender's raft id
	ErrCodeMalformed quic.ApplicationErrorCode = 0x5203 // a frame or item did not decode
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

// Codec says how items of type T are routed and framed.
type Codec[T any] interface {
	To(T) uint64       // raft id the item goes to (picks the peer)
	From(T) uint64     // raft id that sent it (checked against the sending NodeId)
	IsSnapshot(T) bool // its fate is reported through Config.SnapshotStatus
	Kind(T) string     // for logs (e.g. the raft message type)
	// NewEncoder returns a frame encoder; each sender goroutine has its own.
	NewEncoder() Encoder[T]
	// DecodeBatch decodes a frame's batch, calling fn for each item in order; it stops at
	// fn's first error and returns it. Decoding errors wrap ErrMalformed.
	DecodeBatch(b []byte, fn func(T) error) error
}

// Encoder builds frames. The sender calls Reset when it starts a frame, then for each item
// Size (the bytes the item would add to the frame as it is now) and, if it fits, Append.
type Encoder[T any] interface {
	Reset()
	Size(item T) int
	Append(buf []byte, item T) ([]byte, error)
}

// Config configures New. Name, ALPN, Codec, Trust and Deliver are required.
type Config[T any] struct {
	// Name names the transport in logs and close reasons ("raft": "raft transport: …",
	// "not trusted by this raft node").
	Name  string
	ALPN  string
	Codec Codec[T]
	// Trust reports whether a NodeId may send us items; it is asked when a connection
	// arrives and again for every frame (so revoking trust takes effect at once).
	Trust func(key.PublicKey) bool
	// Deliver receives every accepted inbound item, in order per sending peer. It is called
	// from several goroutines at once (one per inbound stream) and should return soon; while
	// it blocks, that peer's stream is not read. Close waits for calls in progress.
	Deliver func(T)
	// Log receives warnings and debug logs. Nil: discard.
	Log *slog.Logger
	// Clock times reconnect backoff and refusal-log suppression. Nil: the wall clock.
	Clock clock.Clock
	// ID, if non-zero, is this node's raft id: inbound items addressed to another id (an
	// earlier incarnation of this node) are dropped.
	ID uint64
	// QueueLen is each peer's send queue, in items (default DefaultQueueLen).
	QueueLen int
	// MaxFrame is the largest frame sent or accepted, in bytes (default DefaultMaxFrame).
	MaxFrame int
	// BatchBytes is the size at which the sender stops coalescing queued items into one
	// frame (default DefaultBatchBytes).
	BatchBytes int
	// RetainFrames says the Codec's DecodeBatch returns items that refer into the batch
	// (no copy of their bytes): every inbound frame is then read into a buffer of its own,
	// never reused, which lives as long as any item of it.
	RetainFrames bool
	// BackoffMin and BackoffMax bound the wait after a failed connect or write, doubling
	// per consecutive failure (defaults 100 ms and 5 s).
	BackoffMin, BackoffMax time.Duration
	// Unreachable, if set, is told the raft id of a peer an item to which was dropped.
	// Called on the peer's sender goroutine, never from inside Send.
	Unreachable func(id uint64)
	// SnapshotStatus, if set, is told the fate of every snapshot item handed to Send: err nil
	// once the frame holding it was written, non-nil if it was dropped. Called on the peer's
	// sender goroutine.
	SnapshotStatus func(item T, err error)
}

// Stats counts what the transport did since New.
type Stats struct {
	Sent      uint64 // items written to a peer's stream
	Frames    uint64 // frames written
	Dropped   uint64 // items dropped before sending (queue full, unknown peer, connect/write failed, too large)
	Delivered uint64 // inbound items handed to Deliver
	Ignored   uint64 // inbound items addressed to another raft id (Config.ID)
	Refused   uint64 // inbound connections closed as untrusted, spoofing, malformed or too large
	Connects  uint64 // outbound streams opened
}

// Transport carries items between raft nodes over the mesh: one sender goroutine, queue and
// stream per peer NodeId, and a handler for inbound connections on Config.ALPN.
type Transport[T any] struct {
	ep     *endpoint.Endpoint
	cfg    Config[T]
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
	senders map[key.PublicKey]*sender[T]          // guarded by mu: one per NodeId with a peer
	inbound map[*endpoint.Conn]struct{}           // guarded by mu: accepted connections being served

	logMu   sync.Mutex
	refusal map[refusalKey]time.Time // guarded by logMu: when a refusal was last logged at Warn

	sent, frames, dropped, delivered, ignored, refused, connects atomic.Uint64
}

// New starts a transport on ep configured by cfg and registers cfg.ALPN on ep.
func New[T any](ep *endpoint.Endpoint, cfg Config[T]) *Transport[T] {
	if cfg.Name == "" || cfg.ALPN == "" || cfg.Codec == nil || cfg.Trust == nil || cfg.Deliver == nil {
		panic("meshlink: Config needs Name, ALPN, Codec, Trust and Deliver")
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
	t := &Transport[T]{
		ep: ep, cfg: cfg, log: cfg.Log, clk: clock.Or(cfg.Clock), ctx: ctx, cancel: cancel,
		peers: map[uint64]key.PublicKey{}, addrs: map[key.PublicKey]endpoint.NodeAddr{},
		raftIDs: map[key.PublicKey]map[uint64]struct{}{}, senders: map[key.PublicKey]*sender[T]{},
		inbound: map[*endpoint.Conn]struct{}{}, refusal: map[refusalKey]time.Time{},
	}
	ep.Handle(cfg.ALPN, t.serveConn)
	return t
}

// Stats returns the counters.
func (t *Transport[T]) Stats() Stats {
	return Stats{
		Sent: t.sent.Load(), Frames: t.frames.Load(), Dropped: t.dropped.Load(),
		Delivered: t.delivered.Load(), Ignored: t.ignored.Load(), Refused: t.refused.Load(),
		Connects: t.connects.Load(),
	}
}

// Send queues items to their peers (by Codec.To) and returns at once. An item to an unknown
// raft id, or whose peer's queue is full, is dropped (the peer is then reported through
// Config.Unreachable, a dropped snapshot through Config.SnapshotStatus). The transport owns
// the items from now on.
func (t *Transport[T]) Send(items []T) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		t.dropped.Add(uint64(len(items)))
		return
	}
	for _, m := range items {
		node, ok := t.peers[t.cfg.Codec.To(m)]
		if !ok {
			t.dropped.Add(1)
			continue
		}
		t.senders[node].enqueue(m)
	}
}

// AddPeer records raft id's address: peer is EncodeAddr bytes. Adding a known id again
// updates its address. Inbound items from a NodeId must carry as From one of the raft ids
// added for it (two while a new incarnation replaces an old one). Bad address bytes are
// logged and the peer is not added.
func (t *Transport[T]) AddPeer(id uint64, peer []byte) {
	a, err := DecodeAddr(peer)
	if err != nil {
		t.log.Warn(t.cfg.Name+" transport: peer not added: bad address", "raft_id", id, "err", err)
		return
	}
	if id == 0 {
		t.log.Warn(t.cfg.Name+" transport: peer not added: raft id 0", "node", a.ID.String())
		return
	}
	t.ep.AddNodeAddr(a)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	var stop *sender[T]
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
// and closes its connection (in the background; Close waits for it); queued items are
// dropped.
func (t *Transport[T]) RemovePeer(id uint64) {
	t.mu.Lock()
	s := t.forgetLocked(id)
	t.mu.Unlock()
	if s != nil {
		s.stop()
	}
}

// forgetLocked removes id and returns its NodeId's sender if no raft id uses it any more.
func (t *Transport[T]) forgetLocked(id uint64) *sender[T] {
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
// goroutines (senders, inbound handlers, Deliver calls in progress). Items still queued are
// dropped. Safe to call more than once. The ALPN stays registered on the endpoint:
// connections arriving later are closed with ErrCodeClosing.
func (t *Transport[T]) Close() error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		t.cancel()
		for c := range t.inbound {
			_ = c.CloseWithError(uint64(ErrCodeClosing), t.cfg.Name+" transport closed")
		}
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// addrOf returns the current address of a NodeId.
func (t *Transport[T]) addrOf(node key.PublicKey) (endpoint.NodeAddr, bool) {
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
func (t *Transport[T]) logRefusal(node key.PublicKey, code quic.ApplicationErrorCode, msg string, args ...any) {
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

// errClosed is what a sender reports for items dropped because the transport or peer
// stopped.
var errClosed = errors.New("meshlink: transport closed or peer removed")

func errTooLarge(size, limit int) error {
	return fmt.Errorf("%w: item of %d bytes, limit %d", ErrFrameTooLarge, size, limit)
}
