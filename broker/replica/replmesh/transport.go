package replmesh

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// ALPN is the replica transport's application protocol on the mesh.
const ALPN = "/meshkafka/replica/0"

// Application error codes a receiver closes a connection with (the same as the quorum's raft
// transport; the reason string says more).
const (
	ErrCodeUntrusted = meshlink.ErrCodeUntrusted
	ErrCodeSpoofed   = meshlink.ErrCodeSpoofed
	ErrCodeMalformed = meshlink.ErrCodeMalformed
	ErrCodeTooLarge  = meshlink.ErrCodeTooLarge
	ErrCodeClosing   = meshlink.ErrCodeClosing
)

// Handler receives what the transport gets: *replica.Engine is one.
type Handler interface {
	Step(m replica.GroupMessage)
	ReportUnreachable(peer uint64)
	ReportSnapshot(g replica.GroupID, to uint64, delivered bool)
}

// Config configures New. Trust and ID are required.
type Config struct {
	// Trust reports whether a NodeId may send us replica messages (the brokers of the
	// cluster); asked when a connection arrives and for every frame.
	Trust func(key.PublicKey) bool
	// ID is this broker's raft id: inbound messages addressed to another id are dropped.
	ID uint64
	// Log receives warnings and debug logs. Nil: discard.
	Log *slog.Logger
	// Clock times reconnect backoff. Nil: the wall clock.
	Clock clock.Clock
	// QueueLen is each peer's send queue in messages (default 8192: a round of many groups
	// sends many small messages to each peer at once).
	QueueLen int
	// MaxFrame (default 512 MiB), BatchBytes (1 MiB), BackoffMin and BackoffMax (100 ms, 5 s)
	// are as in meshlink.Config.
	MaxFrame, BatchBytes   int
	BackoffMin, BackoffMax time.Duration
}

// DefaultQueueLen is Config.QueueLen's default.
const DefaultQueueLen = 8192

// Stats counts what the transport did since New.
type Stats = meshlink.Stats

// Transport carries the raft messages of partition groups between brokers over the mesh; it
// implements replica.Transport. Attach the Engine once it exists; until then inbound
// messages are dropped.
type Transport struct {
	l *meshlink.Transport[replica.GroupMessage]
	h atomic.Pointer[Handler]
}

var _ replica.Transport = (*Transport)(nil)

// New starts a transport on ep and registers ALPN on ep.
func New(ep *endpoint.Endpoint, cfg Config) *Transport {
	if cfg.Trust == nil || cfg.ID == 0 {
		panic("replmesh: Config needs Trust and ID")
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	t := &Transport{}
	t.l = meshlink.New(ep, meshlink.Config[replica.GroupMessage]{
		Name: "replica", ALPN: ALPN, Codec: codec{},
		Trust: cfg.Trust, Deliver: t.deliver, Log: cfg.Log, Clock: cfg.Clock, ID: cfg.ID,
		QueueLen: cfg.QueueLen, MaxFrame: cfg.MaxFrame, BatchBytes: cfg.BatchBytes, RetainFrames: true,
		BackoffMin: cfg.BackoffMin, BackoffMax: cfg.BackoffMax,
		Unreachable: func(id uint64) {
			if h := t.handler(); h != nil {
				h.ReportUnreachable(id)
			}
		},
		SnapshotStatus: func(m replica.GroupMessage, err error) {
			if h := t.handler(); h != nil {
				h.ReportSnapshot(m.Group, m.Msg.GetTo(), err == nil)
			}
		},
	})
	return t
}

// Attach makes h (the Engine) the receiver of inbound messages and transport reports.
func (t *Transport) Attach(h Handler) { t.h.Store(&h) }

func (t *Transport) handler() Handler {
	if p := t.h.Load(); p != nil {
		return *p
	}
	return nil
}

func (t *Transport) deliver(m replica.GroupMessage) {
	if h := t.handler(); h != nil {
		h.Step(m)
	}
}

// Send implements replica.Transport: it queues msgs to their peers (by To) and returns at
// once; the transport owns them from now on.
func (t *Transport) Send(msgs []replica.GroupMessage) { t.l.Send(msgs) }

// AddPeer implements replica.Transport: addr is raftmesh.EncodeAddr bytes (the same layout).
func (t *Transport) AddPeer(id uint64, addr []byte) { t.l.AddPeer(id, addr) }

// RemovePeer implements replica.Transport.
func (t *Transport) RemovePeer(id uint64) { t.l.RemovePeer(id) }

// Stats returns the counters.
func (t *Transport) Stats() Stats { return t.l.Stats() }

// Close stops every sender, closes every connection and waits for the transport's goroutines.
// Close the transport after stopping the Engine and before closing the endpoint.
func (t *Transport) Close() error { return t.l.Close() }
