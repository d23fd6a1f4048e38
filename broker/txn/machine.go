package txn

import (
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Kafka error codes the coordinator answers.
const (
	errNone                      int16 = 0
	ErrCoordinatorLoadInProgress int16 = 14
	ErrInvalidProducerEpoch      int16 = 47
	ErrInvalidTxnState           int16 = 48
	ErrInvalidProducerIDMapping  int16 = 49
	ErrInvalidTransactionTimeout int16 = 50
	ErrConcurrentTransactions    int16 = 51
	ErrTransactionalIDNotFound   int16 = 105
	ErrProducerFenced            int16 = 90
	ErrInvalidRequest            int16 = 42
	ErrCoordinatorNotAvailable   int16 = 15
	ErrUnknownTopicOrPartition   int16 = 3
	ErrTransactionAbortable      int16 = 120
)

// Config tunes the Machine.
type Config struct {
	// MaxTimeout is transaction.max.timeout.ms (default 15 minutes): InitProducerID with a
	// larger transaction.timeout.ms is INVALID_TRANSACTION_TIMEOUT.
	MaxTimeout time.Duration
	// IDExpiration is transactional.id.expiration.ms (default 7 days, Kafka's): a
	// transactional id with no transaction open (Empty, CompleteCommit, CompleteAbort) and
	// no change for that long is forgotten (ExpiredIDs). Negative: never.
	IDExpiration time.Duration
}

// defaultIDExpiration is Kafka's transactional.id.expiration.ms default.
const defaultIDExpiration = 7 * 24 * time.Hour

// Machine is the I/O-free transaction coordinator: every call takes the current time,
// changes the in-memory state and returns what the shell must do, in order: Records to make
// durable before anything else happens, then Markers to write into partitions (and offsets
// to commit to groups), after which the shell calls Complete. It never blocks and never
// touches a disk, a clock or a network.
type Machine struct {
	cfg   Config
	txns  map[string]*Txn
	byPID map[int64]string // producer id → transactional id
}

// NewMachine returns an empty Machine.
func NewMachine(cfg Config) *Machine {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.IDExpiration == 0 {
		cfg.IDExpiration = defaultIDExpiration
	}
	return &Machine{cfg: cfg, txns: map[string]*Txn{}, byPID: map[int64]string{}}
}

// Markers is the end of one transaction the shell must carry out: a commit or abort marker
// (a control batch) with ProducerID/Epoch into each of Partitions, and for a commit the
// pending Offsets into their groups. Then it calls Complete(ID, Epoch).
type Markers struct {
	ID         string
	ProducerID int64
	Epoch      int16
	Commit     bool
	Partitions []TP
	Offsets    []Offset
}

// Result is the outcome of one call.
type Result struct {
	ErrorCode  int16
	ProducerID int64
	Epoch      int16
	Record     *Txn     // to make durable before answering or writing markers (nil: none)
	Markers    *Markers // to carry out after Record is durable (nil: none)
	// Retry: the answer waits for Markers (the shell calls the same operation again after
	// Complete, e.g. InitProducerID fencing an ongoing transaction).
	Retry bool
}

// Apply installs a record (replay at open, or one the Machine emitted once it is durable).
// A Dead record removes its transactional id.
func (m *Machine) Apply(t *Txn) {
	if old := m.txns[t.ID]; old != nil && (old.ProducerID != t.ProducerID || t.State == Dead) {
		delete(m.byPID, old.ProducerID)
	}
	if t.State == Dead {
		delete(m.txns, t.ID)
		return
	}
	m.txns[t.ID] = t.clone()
	m.byPID[t.ProducerID] = t.ID
}

// Verify checks a transactional batch of producer pid at epoch for partition tp before a
// partition appends it (KIP-890's verification): the producer's transaction must be Ongoing
// at that epoch with tp added. Otherwise the batch would open a transaction no marker ever
// ends. INVALID_PRODUCER_EPOCH for another epoch, INVALID_TXN_STATE otherwise.
func (m *Machine) Verify(pid int64, epoch int16, tp TP) int16 {
	t := m.txns[m.byPID[pid]]
	switch {
	case t == nil || t.ProducerID != pid:
		return ErrInvalidProducerIDMapping
	case t.Epoch != epoch:
		return ErrInvalidProducerEpoch
	case t.State != Ongoing:
		return ErrInvalidTxnState
	}
	if _, ok := slices.BinarySearchFunc(t.Partitions, tp, cmpTP); !ok {
		return ErrInvalidTxnState
	}
	return errNone
}

// Get returns a copy of the state of one transactional id.
func (m *Machine) Get(id string) (*Txn, bool) {
	t := m.txns[id]
	if t == nil {
		return nil, false
	}
	return t.clone(), true
}

// All returns copies of every transaction, sorted by id.
func (m *Machine) All() []*Txn {
	out := make([]*Txn, 0, len(m.txns))
	for _, t := range m.txns {
		out = append(out, t.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Pending returns the Markers of every transaction in PrepareCommit or PrepareAbort: at open
// (recovery) the shell carries them out before serving.
func (m *Machine) Pending() []*Markers {
	var out []*Markers
	for _, t := range m.All() {
		if t.State == PrepareCommit || t.State == PrepareAbort {
			out = append(out, markersOf(t))
		}
	}
	return out
}

func markersOf(t *Txn) *Markers {
	mk := &Markers{ID: t.ID, ProducerID: t.ProducerID, Epoch: t.Epoch, Commit: t.State == PrepareCommit, Partitions: slices.Clone(t.Partitions)}
	if mk.Commit {
		mk.Offsets = slices.Clone(t.Offsets)
	}
	return mk
}

// InitProducerID serves a transactional InitProducerID. newPID allocates a fresh producer id
// (the broker's durable counter). pid/epoch are what the client holds (-1/-1 for none;
// KIP-360). An ongoing transaction of the id is aborted first with the epoch bumped, which
// fences the old producer: the Result then carries Markers and Retry, and the shell calls
// InitProducerID again after Complete.
func (m *Machine) InitProducerID(now time.Time, id string, timeoutMs int32, pid int64, epoch int16, newPID func() (int64, error)) Result {
	fail := func(code int16) Result { return Result{ErrorCode: code, ProducerID: -1, Epoch: -1} }
	if timeoutMs <= 0 || time.Duration(timeoutMs)*time.Millisecond > m.cfg.MaxTimeout {
		return fail(ErrInvalidTransactionTimeout)
	}
	t := m.txns[id]
	if t == nil {
		p, err := newPID()
		if err != nil {
			return fail(ErrCoordinatorNotAvailable)
		}
		t = &Txn{ID: id, ProducerID: p, Epoch: 0, TimeoutMs: timeoutMs, State: Empty, UpdateMs: now.UnixMilli()}
		return Result{ProducerID: t.ProducerID, Epoch: t.Epoch, Record: t}
	}
	if pid >= 0 && (pid != t.ProducerID || epoch != t.Epoch) {
		// KIP-360: a client bumping its epoch must hold the current pair.
		return fail(ErrProducerFenced)
	}
	switch t.State {
	case PrepareCommit, PrepareAbort:
		return fail(ErrConcurrentTransactions)
	case Ongoing:
		nt, code := m.bump(t, newPID)
		if code != errNone {
			return fail(code)
		}
		nt.State, nt.UpdateMs = PrepareAbort, now.UnixMilli()
		return Result{ErrorCode: ErrConcurrentTransactions, Record: nt, Markers: markersOf(nt), Retry: true}
	}
	nt, code := m.bump(t, newPID)
	if code != errNone {
		return fail(code)
	}
	nt.State, nt.TimeoutMs, nt.UpdateMs, nt.StartMs = Empty, timeoutMs, now.UnixMilli(), 0
	nt.Partitions, nt.Groups, nt.Offsets = nil, nil, nil
	clearV2(nt)
	return Result{ProducerID: nt.ProducerID, Epoch: nt.Epoch, Record: nt}
}

// clearV2 drops a completed transaction.version 2 end's fields (Txn.V2) once the state
// moves on.
func clearV2(t *Txn) {
	t.V2, t.NextProducerID, t.NextEpoch, t.PrevProducerID, t.PrevEpoch = false, 0, 0, 0, 0
}

// bump returns t with its epoch raised by one (a new producer id at epoch 0 when the epoch
// would reach its maximum, as Kafka does).
func (m *Machine) bump(t *Txn, newPID func() (int64, error)) (*Txn, int16) {
	nt := t.clone()
	if t.Epoch >= math.MaxInt16-1 {
		p, err := newPID()
		if err != nil {
			return nil, ErrCoordinatorNotAvailable
		}
		nt.ProducerID, nt.Epoch = p, 0
		return nt, errNone
	}
	nt.Epoch++
	return nt, errNone
}

// check validates the producer of a request against the transaction.
func (m *Machine) check(id string, pid int64, epoch int16) (*Txn, int16) {
	t := m.txns[id]
	switch {
	case t == nil || t.ProducerID != pid:
		return nil, ErrInvalidProducerIDMapping
	case epoch < t.Epoch:
		return nil, ErrProducerFenced
	case epoch > t.Epoch:
		return nil, ErrInvalidProducerEpoch
	case t.State == PrepareCommit || t.State == PrepareAbort:
		return nil, ErrConcurrentTransactions
	case t.State == Dead:
		return nil, ErrInvalidProducerIDMapping
	}
	return t, errNone
}

// begin makes t Ongoing if it is not (a first partition or group added).
func begin(t *Txn, now time.Time) {
	if t.State != Ongoing {
		t.State, t.StartMs = Ongoing, now.UnixMilli()
		t.Partitions, t.Groups, t.Offsets = nil, nil, nil
		clearV2(t)
	}
	t.UpdateMs = now.UnixMilli()
}

// AddPartitions adds partitions to the transaction (AddPartitionsToTxn). The error code
// applies to every partition.
func (m *Machine) AddPartitions(now time.Time, id string, pid int64, epoch int16, parts []TP) Result {
	t, code := m.check(id, pid, epoch)
	if code != errNone {
		return Result{ErrorCode: code}
	}
	if t.State == Ongoing {
		all := true
		for _, p := range parts {
			if _, ok := slices.BinarySearchFunc(t.Partitions, p, cmpTP); !ok {
				all = false
				break
			}
		}
		if all {
			return Result{} // nothing new: no record
		}
	}
	nt := t.clone()
	begin(nt, now)
	for _, p := range parts {
		if i, ok := slices.BinarySearchFunc(nt.Partitions, p, cmpTP); !ok {
			nt.Partitions = slices.Insert(nt.Partitions, i, p)
		}
	}
	return Result{Record: nt}
}

// AddOffsets adds a group to the transaction (AddOffsetsToTxn).
func (m *Machine) AddOffsets(now time.Time, id string, pid int64, epoch int16, group string) Result {
	t, code := m.check(id, pid, epoch)
	if code != errNone {
		return Result{ErrorCode: code}
	}
	if t.State == Ongoing {
		if _, ok := slices.BinarySearch(t.Groups, group); ok {
			return Result{}
		}
	}
	nt := t.clone()
	begin(nt, now)
	if i, ok := slices.BinarySearch(nt.Groups, group); !ok {
		nt.Groups = slices.Insert(nt.Groups, i, group)
	}
	return Result{Record: nt}
}

// CommitOffsets records pending offsets of a group (TxnOffsetCommit): they reach the group
// only when the transaction commits. The group must have been added (AddOffsetsToTxn).
func (m *Machine) CommitOffsets(now time.Time, id string, pid int64, epoch int16, group string, offs []Offset) Result {
	return m.commitOffsets(now, id, pid, epoch, group, offs, false)
}

// AddAndCommitOffsets is CommitOffsets for TxnOffsetCommit v5 under transaction.version 2
// (KIP-890 part 2): the group is added to the transaction (the transaction begun) as
// AddOffsetsToTxn would, in the same record.
func (m *Machine) AddAndCommitOffsets(now time.Time, id string, pid int64, epoch int16, group string, offs []Offset) Result {
	return m.commitOffsets(now, id, pid, epoch, group, offs, true)
}

func (m *Machine) commitOffsets(now time.Time, id string, pid int64, epoch int16, group string, offs []Offset, add bool) Result {
	t, code := m.check(id, pid, epoch)
	if code != errNone {
		return Result{ErrorCode: code}
	}
	nt := t.clone()
	if add {
		begin(nt, now)
		if i, ok := slices.BinarySearch(nt.Groups, group); !ok {
			nt.Groups = slices.Insert(nt.Groups, i, group)
		}
	} else if _, ok := slices.BinarySearch(t.Groups, group); t.State != Ongoing || !ok {
		return Result{ErrorCode: ErrInvalidTxnState}
	}
	nt.UpdateMs = now.UnixMilli()
	for _, o := range offs {
		o.Group = group
		if i, ok := slices.BinarySearchFunc(nt.Offsets, o, cmpOffset); ok {
			nt.Offsets[i] = o
		} else {
			nt.Offsets = slices.Insert(nt.Offsets, i, o)
		}
	}
	return Result{Record: nt}
}

// AddByProduce adds partition tp to the transaction of producer pid at epoch, beginning it
// if needed: a transactional Produce v12+ under transaction.version 2 (KIP-890 part 2) adds
// its partition itself instead of an AddPartitionsToTxn before it. No record when tp is in
// the ongoing transaction already. Errors as AddPartitions (PRODUCER_FENCED for an older
// epoch), INVALID_PRODUCER_ID_MAPPING for a producer id no transactional id holds.
func (m *Machine) AddByProduce(now time.Time, pid int64, epoch int16, tp TP) Result {
	id, ok := m.byPID[pid]
	if !ok {
		return Result{ErrorCode: ErrInvalidProducerIDMapping}
	}
	return m.AddPartitions(now, id, pid, epoch, []TP{tp})
}

// End commits or aborts the transaction (EndTxn). An Ongoing transaction goes to
// PrepareCommit/PrepareAbort (the Record) and the shell carries out the Markers, then calls
// Complete; a retry of an EndTxn that already completed the same way answers success.
func (m *Machine) End(now time.Time, id string, pid int64, epoch int16, commit bool) Result {
	t := m.txns[id]
	if t != nil && t.ProducerID == pid && epoch == t.Epoch {
		switch {
		case t.State == CompleteCommit && commit, t.State == CompleteAbort && !commit:
			return Result{} // a retry
		case t.State == PrepareCommit && commit, t.State == PrepareAbort && !commit:
			return Result{ErrorCode: ErrConcurrentTransactions}
		}
	}
	t, code := m.check(id, pid, epoch)
	if code != errNone {
		return Result{ErrorCode: code}
	}
	if t.State != Ongoing {
		return Result{ErrorCode: ErrInvalidTxnState}
	}
	nt := t.clone()
	nt.UpdateMs = now.UnixMilli()
	nt.State = PrepareAbort
	if commit {
		nt.State = PrepareCommit
	}
	return Result{Record: nt, Markers: markersOf(nt)}
}

// EndV2 is EndTxn v5 under transaction.version 2 (KIP-890 part 2): every end bumps the
// producer epoch. The prepare record already carries the bumped epoch (the markers carry
// it: a batch of the ended epoch arriving late is fenced in the partitions) and the pair
// the producer continues with (Txn.NextProducerID/NextEpoch: the same producer id one epoch
// up, or a new producer id at epoch 0 once the epoch is exhausted), which Result's
// ProducerID/Epoch hold for the answer. Aborting with nothing in the transaction is allowed
// (an epoch bump with no markers: kgo aborts after produces that all failed, whose implicit
// adds may have begun a transaction). A retry of an EndTxn that completed the same way
// answers success with the pair handed out then; one still being completed
// CONCURRENT_TRANSACTIONS.
func (m *Machine) EndV2(now time.Time, id string, pid int64, epoch int16, commit bool, newPID func() (int64, error)) Result {
	t := m.txns[id]
	if t != nil && t.V2 {
		switch {
		case (t.State == CompleteCommit && commit || t.State == CompleteAbort && !commit) && t.PrevProducerID == pid && t.PrevEpoch == epoch:
			return Result{ProducerID: t.ProducerID, Epoch: t.Epoch} // a retry
		case (t.State == PrepareCommit || t.State == PrepareAbort) && t.ProducerID == pid && t.Epoch == epoch+1:
			return Result{ErrorCode: ErrConcurrentTransactions}
		}
	}
	t, code := m.check(id, pid, epoch)
	if code != errNone {
		return Result{ErrorCode: code}
	}
	switch {
	case t.State == Ongoing:
	case !commit && (t.State == Empty || t.State == CompleteCommit || t.State == CompleteAbort):
		// an empty abort: only the epoch bump
	default:
		return Result{ErrorCode: ErrInvalidTxnState}
	}
	next, code := m.bump(t, newPID)
	if code != errNone {
		return Result{ErrorCode: code}
	}
	nt := t.clone()
	if nt.State != Ongoing {
		nt.StartMs, nt.Partitions, nt.Groups, nt.Offsets = 0, nil, nil, nil
	}
	// bump moves to a new producer id before the epoch reaches math.MaxInt16, so the
	// markers' epoch fits.
	nt.Epoch = t.Epoch + 1
	nt.V2, nt.NextProducerID, nt.NextEpoch, nt.PrevProducerID, nt.PrevEpoch = true, next.ProducerID, next.Epoch, 0, 0
	nt.UpdateMs = now.UnixMilli()
	nt.State = PrepareAbort
	if commit {
		nt.State = PrepareCommit
	}
	return Result{Record: nt, Markers: markersOf(nt), ProducerID: next.ProducerID, Epoch: next.Epoch}
}

// Complete ends a transaction whose Markers the shell carried out: PrepareCommit becomes
// CompleteCommit and PrepareAbort CompleteAbort. A call for a transaction no longer in that
// prepare state at that epoch returns no record.
func (m *Machine) Complete(now time.Time, id string, epoch int16) *Txn {
	t := m.txns[id]
	if t == nil || t.Epoch != epoch || (t.State != PrepareCommit && t.State != PrepareAbort) {
		return nil
	}
	nt := t.clone()
	nt.State = CompleteAbort
	if t.State == PrepareCommit {
		nt.State = CompleteCommit
	}
	nt.UpdateMs, nt.StartMs = now.UnixMilli(), 0
	nt.Partitions, nt.Groups, nt.Offsets = nil, nil, nil
	if t.V2 { // the producer continues with the pair decided at the prepare (EndV2)
		nt.PrevProducerID, nt.PrevEpoch = t.ProducerID, t.Epoch-1
		nt.ProducerID, nt.Epoch = t.NextProducerID, t.NextEpoch
		nt.NextProducerID, nt.NextEpoch = 0, 0
	}
	return nt
}

// Expired aborts every Ongoing transaction older than its timeout, as Kafka's
// transaction.timeout.ms does: the epoch is bumped (the producer is fenced; its next request
// gets PRODUCER_FENCED or INVALID_PRODUCER_EPOCH) and the transaction goes to PrepareAbort.
// Each result has a Record and Markers.
func (m *Machine) Expired(now time.Time, newPID func() (int64, error)) []Result {
	return m.abort(now, func(t *Txn) bool { return now.UnixMilli() >= t.StartMs+int64(t.TimeoutMs) })
}

// AbortOngoing aborts every Ongoing transaction as Expired does (epoch bumped, PrepareAbort):
// after an unclean stop of a journal that acknowledged records without an fsync
// (CoordinatorConfig.AbortOngoing).
func (m *Machine) AbortOngoing(now time.Time) []Result {
	return m.abort(now, func(*Txn) bool { return true })
}

// abort moves the Ongoing transactions that pick selects to PrepareAbort with a bumped epoch.
func (m *Machine) abort(now time.Time, pick func(*Txn) bool) []Result {
	var out []Result
	for _, t := range m.All() {
		if t.State != Ongoing || !pick(t) {
			continue
		}
		nt := t.clone()
		if nt.Epoch < math.MaxInt16-1 {
			nt.Epoch++ // fence; at the maximum the abort keeps the epoch
		}
		nt.State, nt.UpdateMs = PrepareAbort, now.UnixMilli()
		out = append(out, Result{Record: nt, Markers: markersOf(nt)})
	}
	return out
}

// ExpiredIDs returns a Dead record for every transactional id that has no transaction open
// (Empty, CompleteCommit or CompleteAbort) and has not changed for Config.IDExpiration, as
// Kafka expires transactional ids: once the record is durable and applied the id is gone,
// and a producer that comes back with it starts anew (InitProducerID gives it a new producer
// id; its old producer id is refused, INVALID_PRODUCER_ID_MAPPING). Sorted by id.
func (m *Machine) ExpiredIDs(now time.Time) []*Txn {
	if m.cfg.IDExpiration < 0 {
		return nil
	}
	limit := now.Add(-m.cfg.IDExpiration).UnixMilli()
	var out []*Txn
	for _, t := range m.txns {
		switch t.State {
		case Empty, CompleteCommit, CompleteAbort:
			if t.UpdateMs <= limit {
				out = append(out, &Txn{ID: t.ID, ProducerID: t.ProducerID, Epoch: t.Epoch, TimeoutMs: t.TimeoutMs, State: Dead, UpdateMs: now.UnixMilli()})
			}
		}
	}
	slices.SortFunc(out, func(a, b *Txn) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// NextTimeout returns when the earliest Ongoing transaction times out.
func (m *Machine) NextTimeout() (time.Time, bool) {
	var best int64
	ok := false
	for _, t := range m.txns {
		if t.State == Ongoing {
			if d := t.StartMs + int64(t.TimeoutMs); !ok || d < best {
				best, ok = d, true
			}
		}
	}
	return time.UnixMilli(best), ok
}

// Filter selects transactions for ListTransactions: by state names (empty: all), producer
// ids (empty: all), a minimum running duration (ms, -1: none) and pending offsets of a
// group ("": any).
func (m *Machine) Filter(now time.Time, states []string, pids []int64, minDurationMs int64, group string) []*Txn {
	var out []*Txn
	for _, t := range m.All() {
		if len(states) > 0 && !slices.ContainsFunc(states, func(s string) bool { return strings.EqualFold(s, t.State.String()) }) {
			continue
		}
		if len(pids) > 0 && !slices.Contains(pids, t.ProducerID) {
			continue
		}
		if minDurationMs >= 0 && (t.State != Ongoing || now.UnixMilli()-t.StartMs < minDurationMs) {
			continue
		}
		if group != "" && !slices.ContainsFunc(t.Offsets, func(o Offset) bool { return o.Group == group }) {
			continue
		}
		out = append(out, t)
	}
	return out
}
