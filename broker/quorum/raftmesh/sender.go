package raftmesh

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// errQueueFull is what SnapshotStatus is told for a MsgSnap Send dropped.
var errQueueFull = errors.New("raftmesh: peer send queue full")

// sender owns the outbound side of one peer (a NodeId): its queue, its connection and its
// one uni stream. Its goroutine (run) is the only one touching the fields marked "run only".
type sender struct {
	t      *Transport
	node   key.PublicKey
	q      chan *raftpb.Message // bounded; Send never blocks on it
	kick   chan struct{}        // capacity 1: drops to report
	ctx    context.Context      // cancelled by stop or Transport.Close
	cancel context.CancelFunc

	dropMu    sync.Mutex
	drops     map[uint64]struct{} // guarded by dropMu: raft ids with queue-full drops not yet reported
	snapDrops map[uint64]int      // guarded by dropMu: raft id → MsgSnaps dropped by Send, not yet reported

	conn      *endpoint.Conn    // run only
	st        *quic.SendStream  // run only
	stopWatch func() bool       // run only: undoes the AfterFunc that cancels st on stop
	fresh     bool              // run only: st has not had a successful write yet
	since     time.Time         // run only: when st was opened (clock)
	fails     int               // run only: consecutive failures
	lastWarn  string            // run only: last failure logged at Warn
	warnAt    time.Time         // run only
	buf       []byte            // run only: frame being built
	batch     []*raftpb.Message // run only: messages in buf
	carry     *raftpb.Message   // run only: taken from q but did not fit the last frame
}

func newSender(t *Transport, node key.PublicKey) *sender {
	ctx, cancel := context.WithCancel(t.ctx)
	return &sender{
		t: t, node: node, q: make(chan *raftpb.Message, t.cfg.QueueLen), kick: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, drops: map[uint64]struct{}{}, snapDrops: map[uint64]int{},
	}
}

// stop makes run end; it does not wait.
func (s *sender) stop() { s.cancel() }

// enqueue is Send's part: queue m, or drop it and have run report the drop.
func (s *sender) enqueue(m *raftpb.Message) {
	select {
	case s.q <- m:
		return
	default:
	}
	s.t.dropped.Add(1)
	s.dropMu.Lock()
	s.drops[m.GetTo()] = struct{}{}
	if m.GetType() == raftpb.MsgSnap {
		s.snapDrops[m.GetTo()]++
	}
	s.dropMu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// reportDrops tells the callbacks about Send's drops since the last call.
func (s *sender) reportDrops() {
	s.dropMu.Lock()
	if len(s.drops) == 0 && len(s.snapDrops) == 0 {
		s.dropMu.Unlock()
		return
	}
	drops, snaps := s.drops, s.snapDrops
	s.drops, s.snapDrops = map[uint64]struct{}{}, map[uint64]int{}
	s.dropMu.Unlock()
	for id := range drops {
		s.unreachable(id)
	}
	for id, n := range snaps {
		for range n {
			s.snapshotStatus(id, errQueueFull)
		}
	}
}

func (s *sender) unreachable(id uint64) {
	if f := s.t.cfg.Unreachable; f != nil {
		f(id)
	}
}

func (s *sender) snapshotStatus(id uint64, err error) {
	if f := s.t.cfg.SnapshotStatus; f != nil {
		f(id, err)
	}
}

func (s *sender) run() {
	defer s.shutdown()
	for {
		m := s.carry
		s.carry = nil
		if m == nil {
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
// MaxFrame for a large message). A message that does not fit is kept in s.carry for the next
// frame; one larger than MaxFrame alone is dropped. It reports whether the frame has any
// message.
func (s *sender) collect(m *raftpb.Message) bool {
	cfg := &s.t.cfg
	s.buf = append(s.buf[:0], 0, 0, 0, 0)
	clear(s.batch)
	s.batch = s.batch[:0]
	add := func(m *raftpb.Message) bool {
		psize := proto.Size(m)
		size := batchSize(psize)
		if size > cfg.MaxFrame {
			s.t.dropped.Add(1)
			s.t.log.Warn("raft transport: message too large, dropped", "node", s.node.String(),
				"to", m.GetTo(), "type", m.GetType().String(), "bytes", size, "limit", cfg.MaxFrame)
			s.unreachable(m.GetTo())
			if m.GetType() == raftpb.MsgSnap {
				s.snapshotStatus(m.GetTo(), errTooLarge(size, cfg.MaxFrame))
			}
			return true
		}
		if len(s.buf)-frameHeader+size > cfg.MaxFrame {
			s.carry = m
			return false
		}
		var err error
		if s.buf, err = appendMessage(s.buf, m, psize); err != nil { // cannot happen for a valid message
			s.t.dropped.Add(1)
			s.t.log.Warn("raft transport: message does not marshal, dropped", "to", m.GetTo(), "err", err)
			return true
		}
		s.batch = append(s.batch, m)
		return true
	}
	if add(m) {
	more:
		for len(s.buf)-frameHeader < cfg.BatchBytes {
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
	sealFrame(s.buf)
	return true
}

// write sends s.buf on the peer's stream, connecting first if needed. A stream that had
// worked and now fails (the peer restarted, the path changed) is replaced at once, once;
// a fresh one that fails is an error. fresh says the frame was the stream's first.
func (s *sender) write() (fresh bool, err error) {
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

func (s *sender) connect() error {
	a, ok := s.t.addrOf(s.node)
	if !ok {
		return errClosed
	}
	c, err := s.t.ep.Dial(s.ctx, a, ALPN)
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
func (s *sender) dropConn() {
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
func (s *sender) sentOK(fresh bool) {
	s.t.sent.Add(uint64(len(s.batch)))
	s.t.frames.Add(1)
	if !fresh && s.t.clk.Now().Sub(s.since) >= healthyAfter {
		if s.fails > 0 {
			s.t.log.Info("raft transport: peer reachable again", "node", s.node.String())
		}
		s.fails, s.lastWarn = 0, ""
	}
	for _, m := range s.batch {
		if m.GetType() == raftpb.MsgSnap {
			s.snapshotStatus(m.GetTo(), nil)
		}
	}
}

// failed drops the batch and everything queued, reports the peer's raft ids unreachable and
// logs the failure (at Warn when it differs from the last one or 10 minutes have passed).
func (s *sender) failed(err error) {
	s.fails++
	reported := map[uint64]bool{}
	drop := func(m *raftpb.Message) {
		s.t.dropped.Add(1)
		if !reported[m.GetTo()] {
			reported[m.GetTo()] = true
			s.unreachable(m.GetTo())
		}
		if m.GetType() == raftpb.MsgSnap {
			s.snapshotStatus(m.GetTo(), err)
		}
	}
	for _, m := range s.batch {
		drop(m)
	}
	clear(s.batch)
	s.batch = s.batch[:0]
	if s.carry != nil {
		drop(s.carry)
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
		s.t.log.Warn("raft transport: cannot reach peer", "node", s.node.String(), "err", err)
	} else {
		s.t.log.Debug("raft transport: cannot reach peer", "node", s.node.String(), "err", err, "failures", s.fails)
	}
}

// backoff waits BackoffMin·2^(fails-1), at most BackoffMax, on the clock; false if stopped.
func (s *sender) backoff() bool {
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
func (s *sender) shutdown() {
	if s.st != nil {
		s.stopWatch()
		_ = s.st.Close()
		_ = s.conn.CloseWithError(uint64(ErrCodeClosing), "raft peer removed or transport closed")
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
