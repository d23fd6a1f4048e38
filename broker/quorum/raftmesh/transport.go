package raftmesh

import (
	"log/slog"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// ALPN is the raft transport's application protocol on the mesh.
const ALPN = "/meshkafka/raft/0"

// Application error codes a receiver closes a connection with (the reason string says more).
const (
	ErrCodeUntrusted = meshlink.ErrCodeUntrusted // the sender's NodeId is not trusted
	ErrCodeSpoofed   = meshlink.ErrCodeSpoofed   // a message's From is not the sender's raft id
	ErrCodeMalformed = meshlink.ErrCodeMalformed // a frame or message did not decode
	ErrCodeTooLarge  = meshlink.ErrCodeTooLarge  // a frame over the receiver's MaxFrame
	ErrCodeClosing   = meshlink.ErrCodeClosing   // the transport is closed / the peer removed
)

// Defaults of Config.
const (
	DefaultQueueLen   = meshlink.DefaultQueueLen
	DefaultMaxFrame   = meshlink.DefaultMaxFrame
	DefaultBatchBytes = meshlink.DefaultBatchBytes
	DefaultBackoffMin = meshlink.DefaultBackoffMin
	DefaultBackoffMax = meshlink.DefaultBackoffMax
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
type Stats = meshlink.Stats

// Transport carries raft messages between nodes over the mesh. It satisfies broker/quorum's
// Transport interface. Create it with New or NewWithConfig; Close it when done. The
// per-peer senders and the receiver are package meshlink's, shared with the partition
// replicas' transport (broker/replica/replmesh).
type Transport struct {
	l *meshlink.Transport[*raftpb.Message]
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
	lc := meshlink.Config[*raftpb.Message]{
		Name: "raft", ALPN: ALPN, Codec: codec{},
		Trust: cfg.Trust, Deliver: cfg.Deliver, Log: cfg.Log, Clock: cfg.Clock, ID: cfg.ID,
		QueueLen: cfg.QueueLen, MaxFrame: cfg.MaxFrame, BatchBytes: cfg.BatchBytes,
		BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax, Unreachable: cfg.Unreachable,
	}
	if f := cfg.SnapshotStatus; f != nil {
		lc.SnapshotStatus = func(m *raftpb.Message, err error) { f(m.GetTo(), err) }
	}
	return &Transport{l: meshlink.New(ep, lc)}
}

// Stats returns the counters.
func (t *Transport) Stats() Stats { return t.l.Stats() }

// Send queues msgs to their peers (by To) and returns at once. A message to an unknown raft
// id, or whose peer's queue is full, is dropped (the peer is then reported through
// Config.Unreachable, a dropped MsgSnap through Config.SnapshotStatus). The transport owns
// the messages from now on: the caller must not modify them.
func (t *Transport) Send(msgs []*raftpb.Message) { t.l.Send(msgs) }

// AddPeer records raft id's address: peer is EncodeAddr bytes. Adding a known id again
// updates its address. Inbound messages from a NodeId must carry as From one of the raft ids
// added for it (two while a new incarnation replaces an old one). Bad address bytes are
// logged and the peer is not added.
func (t *Transport) AddPeer(id uint64, peer []byte) { t.l.AddPeer(id, peer) }

// RemovePeer forgets raft id. When no other raft id uses its NodeId, the peer's sender stops
// and closes its connection (in the background; Close waits for it); queued messages are
// dropped.
func (t *Transport) RemovePeer(id uint64) { t.l.RemovePeer(id) }

// Close stops every sender, closes every connection of the transport and waits for its
// goroutines (senders, inbound handlers, Deliver calls in progress). Messages still queued
// are dropped. Safe to call more than once. The ALPN stays registered on the endpoint:
// connections arriving later are closed with ErrCodeClosing.
func (t *Transport) Close() error { return t.l.Close() }

// checkFrom says whether node may send a message From raft id from (see meshlink).
func (t *Transport) checkFrom(node key.PublicKey, from uint64) error {
	return t.l.CheckFrom(node, from)
}
