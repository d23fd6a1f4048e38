package meshlink

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// errQueueFull is what SnapshotStatus is told for a snapshot Send dropped.
var errQueueFull = errors.New("meshlink: peer send queue full")

// sender owns the outbound side of one peer (a NodeId): its queue, its connection and its
// one uni stream. Its goroutine (run) is the only one touching the fields marked "run only".
type sender[T any] struct {
	t      *Transport[T]
	node   key.PublicKey
	q      chan T          // bounded; Send never blocks on it
	kick   chan struct{}   // capacity 1: drops to report
	ctx    context.Context // cancelled by stop or Transport.Close
	cancel context.CancelFunc

	dropMu    sync.Mutex
	drops     map[uint64]struct{} // guarded by dropMu: raft ids with queue-full drops not yet reported
	snapDrops []T                 // guarded by dropMu: snapshots dropped by Send, not yet reported

	conn      *endpoint.Conn   // run only
	st        *quic.SendStream // run only
	stopWatch func() bool      // run only: undoes the AfterFunc that cancels st on stop
	fresh     bool             // run only: st has not had a successful write yet
	since     time.Time        // run only: when st was opened (clock)
	fails     int              // run only: consecutive failures
	lastWarn  string           // run only: last failure logged at Warn
	warnAt    time.Time        // run only
	enc       Encoder[T]       // run only
	buf       []byte           // run only: frame being built
	batch     []T              // run only: items in buf
	carry     *T               // run only: taken from q but did not fit the last frame
}

func newSender[T any](t *Transport[T], node key.PublicKey) *sender[T] {
	ctx, cancel := context.WithCancel(t.ctx)
	return &sender[T]{
		t: t, node: node, q: make(chan T, t.cfg.QueueLen), kick: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, drops: map[uint64]struct{}{}, enc: t.cfg.Codec.NewEncoder(),
	}
}

// stop makes run end; it does not wait.
func (s *sender[T]) stop() { s.cancel() }

// enqueue is Send's part: queue m, or drop it and have run report the drop.
func (s *sender[T]) enqueue(m T) {
	select {
	case s.q <- m:
		return
	default:
	}
	s.t.dropped.Add(1)
	c := s.t.cfg.Codec
	s.dropMu.Lock()
	s.drops[c.To(m)] = struct{}{}
	if c.IsSnapshot(m) {
		s.snapDrops = append(s.snapDrops, m)
	}
	s.dropMu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// reportDrops tells the callbacks about Send's drops since the last call.
func (s *sender[T]) reportDrops() {
	s.dropMu.Lock()
	if len(s.drops) == 0 && len(s.snapDrops) == 0 {
		s.dropMu.Unlock()
		return
	}
	drops, snaps := s.drops, s.snapDrops
	s.drops, s.snapDrops = map[uint64]struct{}{}, nil
	s.dropMu.Unlock()
	for id := range drops {
		s.unreachable(id)
	}
	for _, m := range snaps {
		s.snapshotStatus(m, errQueueFull)
	}
}

func (s *sender[T]) unreachable(id uint64) {
	if f := s.t.cfg.Unreachable; f != nil {
		f(id)
	}
}

func (s *sender[T]) snapshotStatus(m T, err error) {
	if f := s.t.cfg.SnapshotStatus; f != nil {
		f(m, err)
	}
}

func (s *sender[T]) run() {
	defer s.shutdown()
	for {
		var m T
		if s.carry != nil {
			m = *s.carry
			s.carry = nil
		} else {
			select {
			case <-s.ctx.Done():
				return
			case <-s.kick:
				s.reportDrops()
				continue
			case m = <-s.q:
			}
		}
		s.reportDrops()
		if !s.collect(m) {
			continue
		}
		fresh, err := s.write()
		if err == nil {
			s.sentOK(fresh)
			continue
		}
		if s.ctx.Err() != nil {
			s.t.dropped.Add(uint64(len(s.batch)))
			return
		}
		s.failed(err)
		if !s.backoff() {
			return
		}
	}
}

// collect builds a frame in s.buf from m and whatever else is queued, up to BatchBytes (or
// MaxFrame for a large item). An item that does not fit is kept in s.carry for the next
// frame; one larger than MaxFrame alone is dropped. It reports whether the frame has any
// item.
func (s *sender[T]) collect(m T) bool {
	cfg := &s.t.cfg
	c := cfg.Codec
	s.enc.Reset()
	s.buf = StartFrame(s.buf[:0])
	clear(s.batch)
	s.batch = s.batch[:0]
	add := func(m T) bool {
		size := s.enc.Size(m)
		if len(s.batch) > 0 && len(s.buf)-FrameHeader+size > cfg.MaxFrame {
			s.carry = &m
			return false
		}
		if size > cfg.MaxFrame {
			s.t.dropped.Add(1)
			s.t.log.Warn(cfg.Name+" transport: message too large, dropped", "node", s.node.String(),
				"to", c.To(m), "type", c.Kind(m), "bytes", size, "limit", cfg.MaxFrame)
			s.unreachable(c.To(m))
			if c.IsSnapshot(m) {
				s.snapshotStatus(m, errTooLarge(size, cfg.MaxFrame))
			}
			return true
		}
		var err error
		if s.buf, err = s.enc.Append(s.buf, m); err != nil { // cannot happen for a valid item
			s.t.dropped.Add(1)
			s.t.log.Warn(cfg.Name+" transport: message does not marshal, dropped", "to", c.To(m), "err", err)
			return true
		}
		s.batch = append(s.batch, m)
		return true
	}
	if add(m) {
	more:
		for len(s.buf)-FrameHeader < cfg.BatchBytes {
			select {
			case m := <-s.q:
				if !add(m) {
					break more
				}
			default:
				break more
			}
		}
	}
	if len(s.batch) == 0 {
		return false
	}
	SealFrame(s.buf, 0)
	return true
}

// write sends s.buf on the peer's stream, connecting first if needed. A stream that had
// worked and now fails (the peer restarted, the path changed) is replaced at once, once;
// a fresh one that fails is an error. fresh says the frame was the stream's first.
func (s *sender[T]) write() (fresh bool, err error) {
	for {
		if s.st == nil {
			if err := s.connect(); err != nil {
				return true, err
			}
		}
		fresh = s.fresh
		_, err = s.st.Write(s.buf)
		if err == nil {
			s.fresh = false
			return fresh, nil
		}
		s.dropConn()
		var ae *quic.ApplicationError
		if fresh || s.fails > 0 || s.ctx.Err() != nil || errors.As(err, &ae) && ae.Remote && ae.ErrorCode != 0 {
			return fresh, err
		}
		s.fails++ // one immediate retry; a failure after it backs off
	}
}

func (s *sender[T]) connect() error {
	a, ok := s.t.addrOf(s.node)
	if !ok {
		return errClosed
	}
	c, err := s.t.ep.Dial(s.ctx, a, s.t.cfg.ALPN)
	if err != nil {
		return err
	}
	st, err := c.OpenUniStream(s.ctx)
	if err != nil {
		_ = c.CloseWithError(0, "")
		return err
	}
	s.conn, s.st, s.fresh, s.since = c, st, true, s.t.clk.Now()
	s.stopWatch = context.AfterFunc(s.ctx, func() { st.CancelWrite(quic.StreamErrorCode(ErrCodeClosing)) })
	s.t.connects.Add(1)
	return nil
}

// dropConn closes the current stream and connection after a failure.
func (s *sender[T]) dropConn() {
	if s.st == nil {
		return
	}
	s.stopWatch()
	s.st.CancelWrite(0)
	_ = s.conn.CloseWithError(0, "")
	s.conn, s.st = nil, nil
}

// healthyAfter is how long a stream must have been taking writes before a write on it ends
// a run of failures: a write only reaches the stream's buffer, and a refusing peer's close
// arrives a round trip after the connection opened, when a write or two may already have
// "succeeded".
const healthyAfter = time.Second

// sentOK counts a written frame and, on a stream open for healthyAfter, ends a run of
// failures.
func (s *sender[T]) sentOK(fresh bool) {
	s.t.sent.Add(uint64(len(s.batch)))
	s.t.frames.Add(1)
	if !fresh && s.t.clk.Now().Sub(s.since) >= healthyAfter {
		if s.fails > 0 {
			s.t.log.Info(s.t.cfg.Name+" transport: peer reachable again", "node", s.node.String())
		}
		s.fails, s.lastWarn = 0, ""
	}
	for _, m := range s.batch {
		if s.t.cfg.Codec.IsSnapshot(m) {
			s.snapshotStatus(m, nil)
		}
	}
}

// failed drops the batch and everything queued, reports the peer's raft ids unreachable and
// logs the failure (at Warn when it differs from the last one or 10 minutes have passed).
func (s *sender[T]) failed(err error) {
	s.fails++
	c := s.t.cfg.Codec
	reported := map[uint64]bool{}
	drop := func(m T) {
		s.t.dropped.Add(1)
		if to := c.To(m); !reported[to] {
			reported[to] = true
			s.unreachable(to)
		}
		if c.IsSnapshot(m) {
			s.snapshotStatus(m, err)
		}
	}
	for _, m := range s.batch {
		drop(m)
	}
	clear(s.batch)
	s.batch = s.batch[:0]
	if s.carry != nil {
		drop(*s.carry)
		s.carry = nil
	}
drain:
	for {
		select {
		case m := <-s.q:
			drop(m)
		default:
			break drain
		}
	}
	now := s.t.clk.Now()
	if msg := err.Error(); msg != s.lastWarn || now.Sub(s.warnAt) >= refusalLogEvery {
		s.lastWarn, s.warnAt = msg, now
		s.t.log.Warn(s.t.cfg.Name+" transport: cannot reach peer", "node", s.node.String(), "err", err)
	} else {
		s.t.log.Debug(s.t.cfg.Name+" transport: cannot reach peer", "node", s.node.String(), "err", err, "failures", s.fails)
	}
}

// backoff waits BackoffMin·2^(fails-1), at most BackoffMax, on the clock; false if stopped.
func (s *sender[T]) backoff() bool {
	cfg := &s.t.cfg
	d := cfg.BackoffMin
	for i := 1; i < s.fails && d < cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, cfg.BackoffMax)
	tm := s.t.clk.NewTimer(d)
	defer tm.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return false
		case <-s.kick:
			s.reportDrops()
		case <-tm.C():
			return true
		}
	}
}

// shutdown ends the stream and connection and drops whatever is queued.
func (s *sender[T]) shutdown() {
	if s.st != nil {
		s.stopWatch()
		_ = s.st.Close()
		_ = s.conn.CloseWithError(uint64(ErrCodeClosing), s.t.cfg.Name+" peer removed or transport closed")
		s.conn, s.st = nil, nil
	}
	if s.carry != nil {
		s.t.dropped.Add(1)
	}
	for {
		select {
		case <-s.q:
			s.t.dropped.Add(1)
		default:
			return
		}
	}
}
