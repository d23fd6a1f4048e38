package coord

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/wal"
)

// Config configures Open.
type Config struct {
	Dir     string
	FS      wal.FS           // nil: the real filesystem
	Logger  *slog.Logger     // nil: discard
	Now     func() time.Time // nil: time.Now
	Machine share.Config
}

// Coordinator is the thin shell around share.Machine: one mutex, the durable Store, and the
// clock. It starts no goroutine: timers (acquisition locks, member sessions) are evaluated
// by Machine.Tick at the start of every call, so an expired lock is released before anyone
// looks at the partition, and the release is made durable with that call's records.
type Coordinator struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex // guards m, st, pending, freed
	m       *share.Machine
	st      Journal                  // nil after Close
	pending []*share.Record          // drained but not yet durable (a failed append), written first next time
	freed   map[string]chan struct{} // per group: closed when records become acquirable again
}

// ErrClosed answers calls after Close.
var ErrClosed = errors.New("share: coordinator closed")

// Journal is where a Coordinator makes its records durable: the local Store (one broker), or
// in a cluster the metadata quorum (broker/controller). Append returns once every record is
// durable; MaybeCompact may rewrite the journal from the live state.
type Journal interface {
	Append(recs ...*share.Record) error
	MaybeCompact(state func() []*share.Record) error
	Close() error
}

// Open opens the state log under cfg.Dir and replays it.
func Open(cfg Config) (*Coordinator, error) {
	if cfg.FS == nil {
		cfg.FS = wal.OSFS()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st, recs, err := OpenStore(cfg.FS, cfg.Dir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	return New(cfg, st, recs), nil
}

// New starts a coordinator on journal j whose records so far are recs (replayed in order;
// cfg.Dir and cfg.FS are not used): how a new metadata-quorum leader takes over the share
// groups of a lost one.
func New(cfg Config, j Journal, recs []*share.Record) *Coordinator {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := share.NewMachine(cfg.Machine)
	for _, r := range recs {
		m.Apply(r)
	}
	return &Coordinator{cfg: cfg, log: cfg.Logger, m: m, st: j, freed: map[string]chan struct{}{}}
}

// Freed returns a channel that is closed once records of the group become acquirable
// again without a new append (share.Machine.Freed: released, or an acquisition lock
// expired as seen by a later call's Tick). A waiting ShareFetch takes it before it looks
// for records, so that nothing freed after the look goes unnoticed.
func (c *Coordinator) Freed(group string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.freed[group]
	if ch == nil {
		ch = make(chan struct{})
		c.freed[group] = ch
	}
	return ch
}

// Do runs fn on the Machine under the lock, after Tick, and makes the changes durable
// before it returns. An error means they are not durable yet: the caller answers with an
// error; the records are kept and written before the next call's.
func (c *Coordinator) Do(fn func(m *share.Machine, now time.Time)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return ErrClosed
	}
	now := c.cfg.Now()
	c.m.Tick(now)
	fn(c.m, now)
	for _, g := range c.m.Freed() { // in memory already, durable or not
		if ch := c.freed[g]; ch != nil {
			close(ch)
			delete(c.freed, g)
		}
	}
	recs := append(c.pending, c.m.Drain()...)
	if err := c.st.Append(recs...); err != nil {
		c.pending = recs
		c.log.Error("share: persisting share-group state failed", "err", err)
		return err
	}
	c.pending = nil
	if err := c.st.MaybeCompact(c.m.State); err != nil {
		c.log.Warn("share: state log compaction failed", "err", err)
	}
	return nil
}

// Close closes the log. Idempotent.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st == nil {
		return nil
	}
	err := c.st.Close()
	c.st = nil
	return err
}
