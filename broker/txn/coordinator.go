package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/wal"
)

// MarkerWriter writes a transaction marker (a control batch: commit or abort, with the
// producer id and epoch) into each partition and returns once they are durable. A partition
// that no longer exists is skipped without an error.
type MarkerWriter interface {
	WriteTxnMarkers(ctx context.Context, pid int64, epoch int16, commit bool, parts []TP) error
}

// OffsetSink commits offsets of committed transactions to their groups, durably.
type OffsetSink interface {
	CommitTxnOffsets(ctx context.Context, offs []Offset) error
}

// CoordinatorConfig configures Open.
type CoordinatorConfig struct {
	Dir     string
	FS      wal.FS       // nil: the real filesystem
	Logger  *slog.Logger // nil: discard
	Now     func() time.Time
	NewPID  func() (int64, error) // the broker's durable producer-id counter
	Markers MarkerWriter
	Machine Config
	// CheckInterval is how often the background goroutine retries unfinished completions
	// and aborts timed-out transactions (0: 1s; Kafka's
	// transaction.abort.timed.out.transaction.cleanup.interval.ms is 10s). Negative: no
	// goroutine, the owner calls Check (tests on a fake clock).
	CheckInterval time.Duration
	// ExpiredIDsInterval is how often a Check looks for expired transactional ids
	// (Machine.ExpiredIDs; 0: one hour, Kafka's
	// transaction.remove.expired.transaction.cleanup.interval.ms).
	ExpiredIDsInterval time.Duration
	// AbortOngoing: the journal may have lost records that were acknowledged without an
	// fsync of their own (an unclean stop of a broker that answers transaction.version 2
	// transactional produces before their fsync: see doc.go, Durability). New aborts every
	// Ongoing transaction (PrepareAbort with a bumped epoch, made durable) before the
	// coordinator serves anything, so none of them can commit; the background goroutine's
	// first pass writes the abort markers.
	AbortOngoing bool
}

// Journal is where a Coordinator makes its Records durable: the local Store (one broker),
// or a replicated log (in a cluster, the metadata quorum: broker/controller). Append returns
// once every record is durable; after an error the outcome may be unknown (the shell
// answers COORDINATOR_NOT_AVAILABLE and the owner should rebuild the coordinator from the
// journal). MaybeCompact may rewrite the journal as state (one record per id).
type Journal interface {
	Append(recs ...*Txn) error
	MaybeCompact(state []*Txn) error
	Close() error
}

// Ordered is a Journal whose records share one durable order with the partitions' appends
// (WALJournal, a member of the broker's commit journal): a partition entry appended after a
// record is never durable without it, and a durable record implies every earlier one. Write
// appends without waiting; Sync(pos) waits until everything written below pos is durable.
// On an Ordered journal the Coordinator answers AddPartitionsToTxn, AddOffsetsToTxn and
// TxnOffsetCommit once their record is written (whatever the client does next that matters —
// a produce into the partition, EndTxn, InitProducerID — waits for a later point of the same
// order), and writes CompleteCommit/CompleteAbort without waiting (doc.go, Durability).
type Ordered interface {
	Journal
	Write(recs ...*Txn) (pos int64, err error)
	Sync(pos int64) error
}

// Coordinator is the thin shell around Machine: it serialises calls, makes each Record
// durable in the Store before acting on it, carries out Markers (marker batches, then group
// offsets for commits) outside its lock, and runs one background goroutine that finishes
// transactions left in PrepareCommit/PrepareAbort (by a failed marker write or a crash) and
// aborts timed-out ones.
type Coordinator struct {
	cfg     CoordinatorConfig
	log     *slog.Logger
	offsets atomic.Pointer[OffsetSink]

	ordered Ordered // the journal if it is Ordered (nil otherwise); static

	mu    sync.Mutex // guards m, store, finishing, writes
	m     *Machine
	store Journal
	// writes counts records since the last MaybeCompact call (it is called every
	// compactEvery records: building the state for it costs O(ids)).
	writes int
	// finishing holds the ids whose Markers a goroutine is carrying out: no one else
	// carries them out meanwhile (a stale duplicate marker could end the producer's next
	// transaction in a partition).
	finishing map[string]bool
	// idsSwept is when Check last removed expired transactional ids.
	idsSwept time.Time

	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// ErrClosed answers calls after Close.
var ErrClosed = errors.New("txn: coordinator closed")

// Open opens the coordinator's log under cfg.Dir, replays it and starts the background
// goroutine, whose first pass completes the transactions a crash left in a prepare state
// (Kafka's rule: a decided commit or abort is carried out; an Ongoing transaction stays
// open until its producer ends it or it times out).
func Open(cfg CoordinatorConfig) (*Coordinator, error) {
	if cfg.FS == nil {
		cfg.FS = wal.OSFS()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.NewPID == nil || cfg.Markers == nil {
		return nil, errors.New("txn: Open needs NewPID and Markers")
	}
	st, recs, err := OpenStore(cfg.FS, cfg.Dir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	return New(cfg, st, recs)
}

// New starts a coordinator on journal j whose records so far are recs (replayed in order;
// cfg.Dir and cfg.FS are not used). Like Open, its background goroutine's first pass
// carries out the transactions left in a prepare state and aborts timed-out ones: this is
// how a coordinator that takes over from a lost one (a new metadata-quorum leader) recovers
// the in-flight transactions.
func New(cfg CoordinatorConfig, j Journal, recs []*Txn) (*Coordinator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = time.Second
	}
	if cfg.ExpiredIDsInterval == 0 {
		cfg.ExpiredIDsInterval = time.Hour
	}
	if cfg.NewPID == nil || cfg.Markers == nil || j == nil {
		return nil, errors.New("txn: New needs NewPID, Markers and a journal")
	}
	st := j
	m := NewMachine(cfg.Machine)
	for _, r := range recs {
		m.Apply(r)
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, m: m, store: st, finishing: map[string]bool{}, quit: make(chan struct{}), done: make(chan struct{})}
	c.ordered, _ = j.(Ordered)
	if cfg.AbortOngoing {
		for _, r := range m.AbortOngoing(cfg.Now()) {
			if err := c.persistLocked(r.Record); err != nil {
				return nil, fmt.Errorf("txn: aborting transaction %q after an unclean stop: %w", r.Record.ID, err)
			}
			c.log.Info("txn: aborting a transaction open at an unclean stop", "id", r.Record.ID, "producer_id", r.Record.ProducerID)
		}
	}
	if cfg.CheckInterval > 0 {
		go c.run()
	} else {
		close(c.done)
	}
	return c, nil
}

// SetOffsetSink sets where committed transactional offsets go (the group coordinator). Until
// it is set, a commit that carries offsets stays in PrepareCommit (retried).
func (c *Coordinator) SetOffsetSink(s OffsetSink) { c.offsets.Store(&s) }

// Close stops the background goroutine and closes the log. Idempotent.
func (c *Coordinator) Close() error {
	var err error
	c.once.Do(func() {
		close(c.quit)
		<-c.done
		c.mu.Lock()
		err = c.store.Close()
		c.store = nil
		c.mu.Unlock()
	})
	return err
}

func (c *Coordinator) run() {
	defer close(c.done)
	// Close cancels a pass in progress (markers to a broker that does not answer).
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		<-c.quit // run returns only after quit is closed
		cancel()
	})
	defer wg.Wait()
	t := time.NewTicker(c.cfg.CheckInterval)
	defer t.Stop()
	for {
		c.Check(ctx)
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
	}
}

// Check finishes transactions left in a prepare state, aborts timed-out ones and, every
// ExpiredIDsInterval, forgets expired transactional ids (the background goroutine calls it
// every CheckInterval; tests call it on a fake clock).
func (c *Coordinator) Check(ctx context.Context) {
	c.mu.Lock()
	if c.store == nil {
		c.mu.Unlock()
		return
	}
	var pending []*Markers
	for _, mk := range c.m.Pending() {
		if !c.finishing[mk.ID] {
			c.finishing[mk.ID] = true
			pending = append(pending, mk)
		}
	}
	for _, r := range c.m.Expired(c.cfg.Now(), c.cfg.NewPID) {
		if err := c.persistLocked(r.Record); err != nil {
			c.log.Error("txn: persist timeout abort", "id", r.Record.ID, "err", err)
			continue
		}
		c.log.Info("txn: aborting timed-out transaction", "id", r.Record.ID, "producer_id", r.Record.ProducerID)
		c.finishing[r.Record.ID] = true
		pending = append(pending, r.Markers)
	}
	c.expireIDsLocked()
	c.mu.Unlock()
	for _, mk := range pending {
		if err := c.finish(ctx, mk); err != nil {
			c.log.Warn("txn: finishing transaction failed; will retry", "id", mk.ID, "err", err)
		}
	}
}

// expireIDsLocked removes the expired transactional ids (Machine.ExpiredIDs) once every
// ExpiredIDsInterval: their Dead records made durable in one Append, then applied. At most
// maxExpiredIDs per Check (the lock is held meanwhile); the next Check takes the rest.
func (c *Coordinator) expireIDsLocked() {
	now := c.cfg.Now()
	if !c.idsSwept.IsZero() && now.Sub(c.idsSwept) < c.cfg.ExpiredIDsInterval {
		return
	}
	dead := c.m.ExpiredIDs(now)
	if len(dead) > maxExpiredIDs {
		dead = dead[:maxExpiredIDs]
	} else {
		c.idsSwept = now
	}
	if len(dead) == 0 {
		return
	}
	if err := c.store.Append(dead...); err != nil {
		c.log.Error("txn: persist transactional id expiry", "ids", len(dead), "err", err)
		return
	}
	for _, t := range dead {
		c.appliedLocked(t)
	}
	c.log.Info("txn: transactional ids expired", "count", len(dead), "first", dead[0].ID)
}

// maxExpiredIDs bounds the transactional ids one Check expires.
const maxExpiredIDs = 1000

// compactEvery is how many records pass between MaybeCompact calls.
const compactEvery = 64

// persistLocked makes t durable and applies it.
func (c *Coordinator) persistLocked(t *Txn) error {
	if c.store == nil {
		return ErrClosed
	}
	if err := c.store.Append(t); err != nil {
		return err
	}
	c.appliedLocked(t)
	return nil
}

// writeLocked writes t and applies it without waiting for it to be durable when the journal
// is Ordered (pos is where to Sync to; 0 when it was made durable here), else persistLocked.
func (c *Coordinator) writeLocked(t *Txn) (pos int64, err error) {
	if c.ordered == nil {
		return 0, c.persistLocked(t)
	}
	if c.store == nil {
		return 0, ErrClosed
	}
	if pos, err = c.ordered.Write(t); err != nil {
		return 0, err
	}
	c.appliedLocked(t)
	return pos, nil
}

// appliedLocked applies a record written to the journal and now and then lets the journal
// compact itself.
func (c *Coordinator) appliedLocked(t *Txn) {
	c.m.Apply(t)
	if c.writes++; c.writes < compactEvery {
		return
	}
	c.writes = 0
	if err := c.store.MaybeCompact(c.m.All()); err != nil {
		c.log.Warn("txn: log compaction failed", "err", err)
	}
}

// syncTo waits until the Ordered journal is durable below pos (nothing for pos 0).
func (c *Coordinator) syncTo(pos int64) error {
	if pos == 0 || c.ordered == nil {
		return nil
	}
	return c.ordered.Sync(pos)
}

// finish carries out Markers and completes the transaction. The caller marked mk.ID as
// finishing; finish unmarks it.
func (c *Coordinator) finish(ctx context.Context, mk *Markers) error {
	_, err := c.finishAt(ctx, mk, 0)
	return err
}

// finishAt is finish for a transaction whose prepare record was written at pos (0: made
// durable already): once the markers are written it waits for that record to be durable
// (normally the markers' own group commit covered it) before writing the completion, so that
// the wait is not for the completion record too. syncErr is that wait's failure.
func (c *Coordinator) finishAt(ctx context.Context, mk *Markers, pos int64) (syncErr, err error) {
	err = c.carryOut(ctx, mk)
	if syncErr = c.syncTo(pos); syncErr == nil && err == nil {
		err = c.complete(mk)
	}
	c.mu.Lock()
	delete(c.finishing, mk.ID)
	c.mu.Unlock()
	return syncErr, err
}

// carryOut writes mk's markers and commits its offsets.
func (c *Coordinator) carryOut(ctx context.Context, mk *Markers) error {
	if err := c.cfg.Markers.WriteTxnMarkers(ctx, mk.ProducerID, mk.Epoch, mk.Commit, mk.Partitions); err != nil {
		return fmt.Errorf("write markers: %w", err)
	}
	if mk.Commit && len(mk.Offsets) > 0 {
		sp := c.offsets.Load()
		if sp == nil || *sp == nil {
			return errors.New("no offset sink to commit transactional offsets to")
		}
		if err := (*sp).CommitTxnOffsets(ctx, mk.Offsets); err != nil {
			return fmt.Errorf("commit offsets: %w", err)
		}
	}
	return nil
}

// complete moves a transaction whose markers are written to CompleteCommit/CompleteAbort.
func (c *Coordinator) complete(mk *Markers) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.m.Complete(c.cfg.Now(), mk.ID, mk.Epoch); t != nil {
		// Written, not waited for: the markers are durable (WriteTxnMarkers), and on an
		// Ordered journal anything the producer does next is durable only after this
		// record; lost in a crash, the transaction is found in its prepare state and the
		// same markers are written again, which changes nothing in a partition whose
		// transaction already ended (no batch of the producer's next transaction can be
		// durable there without this record).
		_, err := c.writeLocked(t)
		return err
	}
	return nil
}

// result runs fn on the Machine and persists its record.
func (c *Coordinator) result(fn func(m *Machine, now time.Time) Result) Result {
	r, _ := c.resultAt(false, fn)
	return r
}

// resultAt runs fn on the Machine and persists its record, or with lazy only writes it (see
// writeLocked: pos is where to Sync to).
func (c *Coordinator) resultAt(lazy bool, fn func(m *Machine, now time.Time) Result) (r Result, pos int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.store == nil {
		return Result{ErrorCode: ErrCoordinatorNotAvailable, ProducerID: -1, Epoch: -1}, 0
	}
	r = fn(c.m, c.cfg.Now())
	if r.Record != nil {
		var err error
		if lazy {
			pos, err = c.writeLocked(r.Record)
		} else {
			err = c.persistLocked(r.Record)
		}
		if err != nil {
			c.log.Error("txn: persist", "id", r.Record.ID, "err", err)
			return Result{ErrorCode: ErrCoordinatorNotAvailable, ProducerID: -1, Epoch: -1}, 0
		}
	}
	if r.Markers != nil {
		c.finishing[r.Markers.ID] = true // the caller carries them out (finish)
	}
	return r, pos
}

// written runs fn on the Machine and writes its record without waiting for it to be durable
// on an Ordered journal (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit: see Ordered).
func (c *Coordinator) written(fn func(m *Machine, now time.Time) Result) Result {
	r, _ := c.resultAt(true, fn)
	return r
}

// InitProducerID serves a transactional InitProducerID: (producer id, epoch, error code).
// A transaction the id left Ongoing is aborted first (with a bumped epoch, fencing the old
// producer) before the new epoch is handed out.
func (c *Coordinator) InitProducerID(ctx context.Context, id string, timeoutMs int32, pid int64, epoch int16) (int64, int16, int16) {
	r := c.result(func(m *Machine, now time.Time) Result {
		return m.InitProducerID(now, id, timeoutMs, pid, epoch, c.cfg.NewPID)
	})
	if r.Retry {
		if err := c.finish(ctx, r.Markers); err != nil {
			c.log.Warn("txn: aborting the fenced transaction failed; will retry", "id", id, "err", err)
			return -1, -1, ErrConcurrentTransactions
		}
		r = c.result(func(m *Machine, now time.Time) Result {
			return m.InitProducerID(now, id, timeoutMs, -1, -1, c.cfg.NewPID)
		})
	}
	return r.ProducerID, r.Epoch, r.ErrorCode
}

// AddPartitions serves AddPartitionsToTxn (one error code for all the partitions).
func (c *Coordinator) AddPartitions(ctx context.Context, id string, pid int64, epoch int16, parts []TP) int16 {
	return c.written(func(m *Machine, now time.Time) Result { return m.AddPartitions(now, id, pid, epoch, parts) }).ErrorCode
}

// AddOffsets serves AddOffsetsToTxn.
func (c *Coordinator) AddOffsets(ctx context.Context, id string, pid int64, epoch int16, group string) int16 {
	return c.written(func(m *Machine, now time.Time) Result { return m.AddOffsets(now, id, pid, epoch, group) }).ErrorCode
}

// CommitOffsets serves TxnOffsetCommit.
func (c *Coordinator) CommitOffsets(ctx context.Context, id string, pid int64, epoch int16, group string, offs []Offset) int16 {
	return c.written(func(m *Machine, now time.Time) Result { return m.CommitOffsets(now, id, pid, epoch, group, offs) }).ErrorCode
}

// AddAndCommitOffsets serves TxnOffsetCommit v5 under transaction.version 2: the group is
// added to the transaction in the same record (Machine.AddAndCommitOffsets).
func (c *Coordinator) AddAndCommitOffsets(ctx context.Context, id string, pid int64, epoch int16, group string, offs []Offset) int16 {
	return c.written(func(m *Machine, now time.Time) Result { return m.AddAndCommitOffsets(now, id, pid, epoch, group, offs) }).ErrorCode
}

// End serves EndTxn: it answers once the markers are written and the offsets committed (a
// failure there leaves the transaction decided, the background goroutine finishes it, and
// the answer is CONCURRENT_TRANSACTIONS, which clients retry until it is done). On an
// Ordered journal the PrepareCommit/PrepareAbort record is written without waiting, the
// markers' own fsync (one group commit of the shared journal) makes it durable with them,
// and End waits for it explicitly only if no marker did (no local partition).
func (c *Coordinator) End(ctx context.Context, id string, pid int64, epoch int16, commit bool) int16 {
	return c.end(ctx, id, func(m *Machine, now time.Time) Result { return m.End(now, id, pid, epoch, commit) }).ErrorCode
}

// EndV2 serves EndTxn v5 under transaction.version 2 (Machine.EndV2): as End, and on
// success it also returns the producer id and epoch the producer continues with (bumped
// at every end). The bump is in the prepare record, which the markers' group commit makes
// durable before the answer, so the pair answered is never handed out again.
func (c *Coordinator) EndV2(ctx context.Context, id string, pid int64, epoch int16, commit bool) (int64, int16, int16) {
	r := c.end(ctx, id, func(m *Machine, now time.Time) Result { return m.EndV2(now, id, pid, epoch, commit, c.cfg.NewPID) })
	if r.ErrorCode != errNone {
		return -1, -1, r.ErrorCode
	}
	return r.ProducerID, r.Epoch, errNone
}

func (c *Coordinator) end(ctx context.Context, id string, fn func(m *Machine, now time.Time) Result) Result {
	r, pos := c.resultAt(true, fn)
	if r.ErrorCode != errNone || r.Markers == nil {
		return r
	}
	serr, ferr := c.finishAt(ctx, r.Markers, pos)
	if serr != nil {
		c.log.Error("txn: persist", "id", id, "err", serr)
		return Result{ErrorCode: ErrCoordinatorNotAvailable}
	}
	if ferr != nil {
		c.log.Warn("txn: finishing transaction failed; will retry", "id", id, "err", ferr)
		return Result{ErrorCode: ErrConcurrentTransactions}
	}
	return r
}

// List returns the transactions matching a ListTransactions filter.
func (c *Coordinator) List(states []string, pids []int64, minDurationMs int64, group string) []*Txn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Filter(c.cfg.Now(), states, pids, minDurationMs, group)
}

// Describe returns one transaction's state.
func (c *Coordinator) Describe(id string) (*Txn, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Get(id)
}

// VerifyAdd is Verify for a transactional Produce v12+ under transaction.version 2: the
// partition is first added to the producer's transaction (Machine.AddByProduce; its record
// written without waiting, before the batch the caller then appends, so the batch is
// never durable without it).
func (c *Coordinator) VerifyAdd(pid int64, epoch int16, tp TP) int16 {
	r := c.written(func(m *Machine, now time.Time) Result { return m.AddByProduce(now, pid, epoch, tp) })
	if r.ErrorCode != errNone {
		return r.ErrorCode
	}
	return c.Verify(pid, epoch, tp)
}

// Verify checks a transactional batch before a partition appends it (Machine.Verify).
func (c *Coordinator) Verify(pid int64, epoch int16, tp TP) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Verify(pid, epoch, tp)
}
