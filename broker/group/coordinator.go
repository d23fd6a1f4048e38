package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/wal"
)

// ErrClosed is returned by Coordinator methods after Close.
var ErrClosed = errors.New("group: coordinator closed")

// Config configures a Coordinator.
type Config struct {
	Dir     string       // offset log directory (required)
	FS      wal.FS       // nil: wal.OSFS()
	Logger  *slog.Logger // nil: discard
	Clock   clock.Clock  // nil: the real clock (session timeouts, rebalance delays, entry timestamps)
	Machine MachineConfig
	// CompactBytes and SegmentBytes of the offset log; see StoreOptions.
	CompactBytes int64
	SegmentBytes int64
	// OnStop, if set, is called once (from the owner goroutine; it must not block) when the
	// offset store stops after a write of unknown outcome (ErrStoreFailed).
	OnStop func(err error)
	// OffsetLog, if set, is where committed offsets are made durable instead of the offset
	// log in Dir (Dir, FS, CompactBytes, SegmentBytes and OnStop are then unused), and
	// Initial is the committed state to start from. The metadata quorum's coordinator
	// (package broker/controller) uses it.
	OffsetLog OffsetLog
	Initial   []Record
}

// OffsetLog makes committed-offset records durable for a Coordinator. *Store is one.
type OffsetLog interface {
	// Append makes recs durable before it returns nil. After an error the records may or
	// may not be durable; the Coordinator then calls Compact with its applied state before
	// the next Append.
	Append(recs []Record) error
	// NeedsCompaction reports whether Compact should be called with the applied state.
	NeedsCompaction() bool
	// Compact replaces the log with snapshot, the whole applied state.
	Compact(snapshot []Record) error
	Close() error
}

// Coordinator serves the group APIs: one owner goroutine drives a Machine with real time and
// a Store, and the exported methods hand requests to it and wait for the answer (or ctx).
// Each pass of the owner loop takes every queued request (up to maxBatch): answers that need
// nothing durable go out at once, and the offset records of the others are appended as one
// entry and fsynced together (group commit) before those are answered. Requests queued
// behind an fsync wait for it.
type Coordinator struct {
	// immutable after Open
	log   *slog.Logger
	clk   clock.Clock
	calls chan call
	quit  chan struct{}
	wg    sync.WaitGroup

	closeOnce sync.Once

	// owned by run
	m       *Machine
	store   OffsetLog
	broken  bool // the last append failed: the log must be rewritten before the next one
	nextTok Token
	waiting map[Token]chan any
}

type call struct {
	fn    func(m *Machine, now time.Time, tok Token) []Output
	reply chan any // buffered (1): run never blocks on a caller that gave up
}

// Open opens the offset log in cfg.Dir, restores committed offsets and starts the owner
// goroutine. Close stops it.
func Open(cfg Config) (*Coordinator, error) {
	if cfg.Dir == "" && cfg.OffsetLog == nil {
		return nil, errors.New("group: Config.Dir is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	clk := clock.Or(cfg.Clock)
	var store OffsetLog = cfg.OffsetLog
	recs := cfg.Initial
	if store == nil {
		st, r, err := OpenStore(cfg.Dir, StoreOptions{
			FS: cfg.FS, CompactBytes: cfg.CompactBytes, SegmentBytes: cfg.SegmentBytes, Clock: clk, Logger: cfg.Logger,
			OnStop: cfg.OnStop,
		})
		if err != nil {
			return nil, err
		}
		store, recs = st, r
	}
	m := NewMachine(cfg.Machine)
	m.started = clk.Now() // the consumer-group start grace counts from here
	m.Apply(recs)
	m.RestoreMembers(clk.Now()) // recorded members go on; their sessions count from now
	c := &Coordinator{
		log:     cfg.Logger.With("component", "group"),
		clk:     clk,
		calls:   make(chan call),
		quit:    make(chan struct{}),
		m:       m,
		store:   store,
		waiting: map[Token]chan any{},
	}
	c.wg.Go(c.run)
	return c, nil
}

// Close stops the owner goroutine, answers every waiting caller with ErrClosed and closes the
// offset log. Idempotent.
func (c *Coordinator) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.quit)
		c.wg.Wait()
		err = c.store.Close()
	})
	return err
}

func (c *Coordinator) run() {
	timer := c.clk.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var tick <-chan time.Time
		if d, ok := c.m.NextDeadline(); ok {
			timer.Reset(max(0, clock.Until(c.clk, d)))
			tick = timer.C()
		}
		select {
		case <-c.quit:
			for tok, ch := range c.waiting {
				ch <- ErrClosed
				delete(c.waiting, tok)
			}
			return
		case cl := <-c.calls:
			// Take whatever else is queued too, so that their offset records share one
			// append and one fsync (group commit).
			outs := c.accept(cl)
		drain:
			for range maxBatch - 1 {
				select {
				case cl := <-c.calls:
					outs = append(outs, c.accept(cl)...)
				default:
					break drain
				}
			}
			c.deliver(outs)
		case <-tick:
			c.deliver(c.m.Tick(c.clk.Now()))
		}
	}
}

// maxBatch bounds how many queued requests one pass of the owner loop takes.
const maxBatch = 256

func (c *Coordinator) accept(cl call) []Output {
	c.nextTok++
	c.waiting[c.nextTok] = cl.reply
	return cl.fn(c.m, c.clk.Now(), c.nextTok)
}

// deliver answers Outputs without Records at once; the Records of the others are written as
// one entry and fsynced, then applied (in order), then those callers are answered.
func (c *Coordinator) deliver(outs []Output) {
	var recs []Record
	var durable []Output
	for _, o := range outs {
		if len(o.Records) == 0 {
			c.answer(o.Token, o.Resp)
			continue
		}
		recs = append(recs, o.Records...)
		durable = append(durable, o)
	}
	if len(durable) == 0 {
		return
	}
	recs = dedupMembers(recs)
	err := c.append(recs)
	if err != nil {
		c.log.Error("offset log append failed", "err", err)
	} else {
		c.m.Apply(recs)
		c.maybeCompact()
	}
	for _, o := range durable {
		resp := o.Resp
		if err != nil {
			resp = FailResp(resp, errCoordinatorNotAvailable)
		}
		c.answer(o.Token, resp)
	}
}

// append writes recs durably. After a failed append the state of the log's tail is unknown
// (a failed fsync may or may not have persisted it, and the WAL refuses further writes), so
// the applied state is first written as a fresh snapshot generation; until that succeeds,
// commits keep failing with a retriable error and nothing unconfirmed becomes visible.
func (c *Coordinator) append(recs []Record) error {
	if c.broken {
		if err := c.store.Compact(c.m.Snapshot()); err != nil {
			return fmt.Errorf("rewrite offset log after a failure: %w", err)
		}
		c.log.Info("offset log rewritten after a failure")
		c.broken = false
	}
	if err := c.store.Append(recs); err != nil {
		c.broken = true
		return err
	}
	return nil
}

func (c *Coordinator) answer(tok Token, resp any) {
	if ch, ok := c.waiting[tok]; ok {
		delete(c.waiting, tok)
		ch <- resp
	}
}

func (c *Coordinator) maybeCompact() {
	if !c.store.NeedsCompaction() {
		return
	}
	if err := c.store.Compact(c.m.Snapshot()); err != nil {
		c.log.Error("offset log compaction failed", "err", err)
	}
}

func (c *Coordinator) do(ctx context.Context, fn func(m *Machine, now time.Time, tok Token) []Output) (any, error) {
	cl := call{fn: fn, reply: make(chan any, 1)}
	select {
	case c.calls <- cl:
	case <-c.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case r := <-cl.reply:
		if err, ok := r.(error); ok {
			return nil, err
		}
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func doTyped[Req any, Resp any](c *Coordinator, ctx context.Context, req *Req,
	fn func(m *Machine, now time.Time, tok Token, req *Req) []Output,
) (*Resp, error) {
	r, err := c.do(ctx, func(m *Machine, now time.Time, tok Token) []Output { return fn(m, now, tok, req) })
	if err != nil {
		return nil, err
	}
	return r.(*Resp), nil
}

// JoinGroup blocks until the rebalance completes (or ctx ends).
func (c *Coordinator) JoinGroup(ctx context.Context, req *brokerop.JoinGroupReq) (*brokerop.JoinGroupResp, error) {
	return doTyped[brokerop.JoinGroupReq, brokerop.JoinGroupResp](c, ctx, req, (*Machine).JoinGroup)
}

// SyncGroup blocks a follower until the leader has synced (or ctx ends).
func (c *Coordinator) SyncGroup(ctx context.Context, req *brokerop.SyncGroupReq) (*brokerop.SyncGroupResp, error) {
	return doTyped[brokerop.SyncGroupReq, brokerop.SyncGroupResp](c, ctx, req, (*Machine).SyncGroup)
}

// Heartbeat serves a Heartbeat request.
func (c *Coordinator) Heartbeat(ctx context.Context, req *brokerop.HeartbeatReq) (*brokerop.HeartbeatResp, error) {
	return doTyped[brokerop.HeartbeatReq, brokerop.HeartbeatResp](c, ctx, req, (*Machine).Heartbeat)
}

// LeaveGroup serves a LeaveGroup request.
func (c *Coordinator) LeaveGroup(ctx context.Context, req *brokerop.LeaveGroupReq) (*brokerop.LeaveGroupResp, error) {
	return doTyped[brokerop.LeaveGroupReq, brokerop.LeaveGroupResp](c, ctx, req, (*Machine).LeaveGroup)
}

// OffsetCommit returns once the accepted offsets are fsynced.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *brokerop.OffsetCommitReq) (*brokerop.OffsetCommitResp, error) {
	return doTyped[brokerop.OffsetCommitReq, brokerop.OffsetCommitResp](c, ctx, req, (*Machine).OffsetCommit)
}

// OffsetFetch serves an OffsetFetch request for one group.
func (c *Coordinator) OffsetFetch(ctx context.Context, req *brokerop.OffsetFetchReq) (*brokerop.OffsetFetchResp, error) {
	return doTyped[brokerop.OffsetFetchReq, brokerop.OffsetFetchResp](c, ctx, req, (*Machine).OffsetFetch)
}

// ListGroups serves a ListGroups request.
func (c *Coordinator) ListGroups(ctx context.Context, req *brokerop.ListGroupsReq) (*brokerop.ListGroupsResp, error) {
	return doTyped[brokerop.ListGroupsReq, brokerop.ListGroupsResp](c, ctx, req, (*Machine).ListGroups)
}

// DescribeGroups serves a DescribeGroups request.
func (c *Coordinator) DescribeGroups(ctx context.Context, req *brokerop.DescribeGroupsReq) (*brokerop.DescribeGroupsResp, error) {
	return doTyped[brokerop.DescribeGroupsReq, brokerop.DescribeGroupsResp](c, ctx, req, (*Machine).DescribeGroups)
}

// DeleteGroups returns once the deletions are fsynced.
func (c *Coordinator) DeleteGroups(ctx context.Context, req *brokerop.DeleteGroupsReq) (*brokerop.DeleteGroupsResp, error) {
	return doTyped[brokerop.DeleteGroupsReq, brokerop.DeleteGroupsResp](c, ctx, req, (*Machine).DeleteGroups)
}

// OffsetDelete returns once the deletions are fsynced.
func (c *Coordinator) OffsetDelete(ctx context.Context, req *brokerop.OffsetDeleteReq) (*brokerop.OffsetDeleteResp, error) {
	return doTyped[brokerop.OffsetDeleteReq, brokerop.OffsetDeleteResp](c, ctx, req, (*Machine).OffsetDelete)
}

// CommitTxnOffsets makes the offsets of a committed transaction the group's committed
// offsets (durably), without member checks: the transaction coordinator calls it
// (broker.TxnOffsetCommitter). A partition refused (metadata too large) is an error.
func (c *Coordinator) CommitTxnOffsets(ctx context.Context, group string, topics []brokerop.OffsetCommitTopic) error {
	resp, err := doTyped[brokerop.OffsetCommitReq, brokerop.OffsetCommitResp](c, ctx, &brokerop.OffsetCommitReq{Group: group, Generation: -1, Topics: topics}, (*Machine).TxnOffsetCommit)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != errNone {
				return fmt.Errorf("group: transactional offset of %s %s-%d refused with error %d", group, t.Topic, p.Partition, p.ErrorCode)
			}
		}
	}
	return nil
}
