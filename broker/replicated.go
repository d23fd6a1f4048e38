package broker

// Replicated partitions (issue #16): a partition whose TopicRecord.Replicas lists more than
// one raft id is a raft group of those replicas, run by the partition raft engine (package
// broker/replica) that SetReplication hands the broker. doc.go ("Replicated partitions")
// describes the behaviour; this file is the group lifecycle and the state machine every
// replica applies committed entries to.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/broker/replica/raftstore"
	"github.com/meshkafka/meshkafka/wal"
	"go.etcd.io/raft/v3/raftpb"
)

// Replication is what the broker needs of the partition raft engine; *replica.Engine
// implements it. Its methods are safe for concurrent use; the StateMachine callbacks run on
// the engine's goroutine.
type Replication interface {
	AddGroup(id replica.GroupID, st replica.Storage, sm replica.StateMachine, voters []uint64) error
	RemoveGroup(id replica.GroupID) error
	// Propose returns once data is durable here as the group's entry Index (the acks=1
	// point); Proposal.Committed then yields once a majority has it (the acks=all point).
	Propose(ctx context.Context, id replica.GroupID, data []byte) (*replica.Proposal, error)
	Status(id replica.GroupID) (replica.GroupStatus, bool)
	Stats() replica.Stats // counters for metrics
}

// RaftStorage is a replicated partition's raft log on its wal.Log (package
// broker/replica/raftstore): one wal entry per raft entry. Offsets must be safe to call
// concurrently with the engine's use of the storage.
type RaftStorage interface {
	replica.Storage
	// Offsets returns the Kafka offsets [base, next) of raft entry index (ok false if the
	// index is not stored).
	Offsets(index uint64) (base, next int64, ok bool)
}

// OpenRaftStorage opens the raft storage of a replicated partition on its log. describe
// returns the record count and max timestamp of a data entry's payload (Kafka record
// batches); raft's own entries (no-ops, conf changes) are the storage's business.
type OpenRaftStorage func(l *wal.Log, describe func(data []byte) (count int32, maxTimestamp int64, err error)) (RaftStorage, error)

// PartitionStateFunc is told a replicated partition's leader, raft term (= Kafka leader
// epoch) and in-sync replicas (raft ids) as this broker sees them while it leads it.
type PartitionStateFunc func(topic string, partition int32, leader, term uint64, isr []uint64)

// replication is what SetReplication installed.
type replication struct {
	eng Replication
	id  uint64 // this broker's raft id
}

// SetReplication gives the broker the partition raft engine and this broker's raft id (its
// metadata-quorum raft id), and starts the raft groups of the replicated partitions this
// broker is a replica of. Call it once, before serving; without it, replicated partitions
// answer NOT_LEADER_OR_FOLLOWER. The engine's Config.Sync should be Broker.SyncStorage.
func (b *Broker) SetReplication(eng Replication, id uint64) error {
	if eng == nil || id == 0 {
		return errors.New("broker: SetReplication needs an engine and a non-zero raft id")
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	if b.repl.Load() != nil {
		return errors.New("broker: SetReplication called twice")
	}
	b.repl.Store(&replication{eng: eng, id: id})
	return b.syncGroupsLocked(b.sortedTopics())
}

// OnPartitionState sets the function told about leadership and ISR changes of the
// replicated partitions this broker leads: once when it has become leader at a term, and
// again whenever the in-sync replicas it sees change. It is called from the broker's
// background goroutine (never the engine's), one call at a time; it may block briefly.
func (b *Broker) OnPartitionState(fn func(topic string, partition int32, leader, term uint64, isr []uint64)) {
	f := PartitionStateFunc(fn)
	b.partState.Store(&f)
}

// SyncStorage makes every write to the broker's partition logs so far durable: one fsync of
// the commit journal however many partitions wrote. It is the raft engine's Config.Sync.
func (b *Broker) SyncStorage() error {
	if b.closed.Load() {
		return ErrClosed
	}
	return b.syncStore()
}

// replicasOf returns the raft ids of partition i's replicas (nil: single-owner).
func (t *topic) replicasOf(i int32) []uint64 {
	rs := t.replicas.Load()
	if rs == nil || int(i) >= len(*rs) {
		return nil
	}
	if r := (*rs)[i]; len(r) > 1 {
		return r
	}
	return nil
}

// replicated reports whether p is a replicated partition (whether or not it runs here).
func (p *partition) replicated() bool { return p.t.replicasOf(p.index) != nil }

// groupID is the raft group of partition p.
func groupID(p *partition) replica.GroupID {
	return replica.GroupID{Topic: p.t.id, Partition: p.index}
}

// syncGroupsLocked starts the raft groups of the replicated partitions of ts this broker is
// a replica of and that do not run yet, and stops those it no longer is a replica of.
// Callers hold adminMu.
func (b *Broker) syncGroupsLocked(ts []*topic) error {
	r := b.repl.Load()
	var errs []error
	for _, t := range ts {
		for _, p := range *t.parts.Load() {
			want := false
			if reps := t.replicasOf(p.index); reps != nil && r != nil {
				want = slices.Contains(reps, r.id)
			}
			g := p.group.Load()
			switch {
			case want && g == nil:
				if err := b.startGroup(r, p); err != nil {
					errs = append(errs, fmt.Errorf("topic %q partition %d: start raft group: %w", t.name, p.index, err))
				}
			case !want && g != nil:
				b.stopGroup(p)
			}
		}
	}
	return errors.Join(errs...)
}

// startGroup opens p's log for good (a replicated partition's log stays open while its
// group runs: the engine writes to it), opens its raft storage and adds the group.
func (b *Broker) startGroup(r *replication, p *partition) error {
	open := b.cfg.RaftStorage
	if open == nil {
		open = defaultRaftStorage
	}
	l, err := b.useLog(p, true)
	if err == nil && l == nil {
		err = errors.New("log not open")
	}
	var st RaftStorage
	if err == nil {
		st, err = open(l, describeEntry)
	}
	p.logMu.RUnlock()
	if err != nil {
		return err
	}
	g := &replGroup{b: b, p: p, id: groupID(p), self: r.id, eng: r.eng, st: st, log: l,
		voters: slices.Clone(p.t.replicasOf(p.index))}
	if p.t.joins(p.index, r.id) {
		g.voters = nil // added to a running group: the leader's log (or snapshot) makes it a member
	}
	g.hw.Store(-1)
	g.logStart.Store(-1)
	p.group.Store(g)
	if err := r.eng.AddGroup(g.id, st, g, g.voters); err != nil {
		p.group.Store(nil)
		return err
	}
	b.log.Info("broker: raft group started", "topic", p.t.name, "partition", p.index, "voters", g.voters)
	return nil
}

// stopGroup removes p's raft group from the engine (its log stays open until the partition
// is closed or removed) and fails what waits on it.
func (b *Broker) stopGroup(p *partition) {
	g := p.group.Swap(nil)
	if g == nil {
		return
	}
	if r := b.repl.Load(); r != nil {
		if err := r.eng.RemoveGroup(g.id); err != nil && !errors.Is(err, replica.ErrUnknownGroup) {
			b.log.Warn("broker: remove raft group", "topic", p.t.name, "partition", p.index, "err", err)
		}
	}
	g.mu.Lock()
	g.removed = true
	g.leader, g.ready = 0, false
	g.failInflightLocked()
	g.mu.Unlock()
	p.wake()
}

// describeEntry is the raft storage's Describe: the record count and max timestamp of a
// data entry (record batches as the leader proposed them, checked by ValidateBatches there;
// here only their framing is read).
func describeEntry(data []byte) (int32, int64, error) {
	var s BatchSummary
	for off := 0; off < len(data); {
		rest := data[off:]
		if len(rest) < batchHeaderLen {
			return 0, 0, fmt.Errorf("broker: entry: %d trailing bytes are too short for a record batch", len(rest))
		}
		size := int(int32(binary.BigEndian.Uint32(rest[offBatchLength:]))) + batchLengthOverhd
		if size < batchHeaderLen || size > len(rest) || rest[offMagic] != 2 {
			return 0, 0, fmt.Errorf("broker: entry: bad record batch framing at byte %d", off)
		}
		delta := int32(binary.BigEndian.Uint32(rest[offLastOffsetDelta:]))
		if delta < 0 || s.Records > 1<<31-2-delta {
			return 0, 0, fmt.Errorf("broker: entry: bad lastOffsetDelta %d at byte %d", delta, off)
		}
		s.Records += delta + 1
		if ts := int64(binary.BigEndian.Uint64(rest[offMaxTimestamp:])); s.Batches == 0 || ts > s.MaxTimestamp {
			s.MaxTimestamp = ts
		}
		s.Batches++
		off += size
	}
	if s.Batches == 0 {
		return 0, 0, errors.New("broker: entry: no record batch")
	}
	return s.Records, s.MaxTimestamp, nil
}

// replGroup is one replicated partition's raft group on this broker: the StateMachine the
// engine applies committed entries to, and the leader's view of proposals in flight.
//
// Lock order: propMu, then mu. The engine calls Apply, Restore and LeaderChanged on its own
// goroutine; they take only mu (briefly), never propMu, so a proposer may hold propMu across
// Propose.
type replGroup struct {
	// Constant after startGroup.
	b      *Broker
	p      *partition
	id     replica.GroupID
	self   uint64
	eng    Replication
	st     RaftStorage
	log    *wal.Log
	voters []uint64

	// propMu serialises the idempotence check and Propose of idempotent batches, so that
	// batches of one producer enter the raft log in the order they were checked.
	propMu sync.Mutex

	hw atomic.Int64 // next offset after the last applied entry (-1: none applied yet)
	// logStart is the log start offset applied from DeleteRecords entries (or a snapshot),
	// -1 if none: reads below it are out of range, retention deletes the segments below it.
	logStart atomic.Int64

	mu              sync.Mutex
	leader, term    uint64        // as the engine last reported (leader 0: unknown)
	lastAppliedTerm uint64        // term of the last applied entry
	applied         uint64        // index of the last applied entry
	ready           bool          // leader == self and an entry of its term was applied
	removed         bool          // the group was stopped
	prods           producerState // applied idempotent producer state (its own mu unused)
	prodsUpTo       int64         // prods holds the batches below this offset (a snapshot's): Apply skips them
	dataSeen        bool          // a data entry was applied (or a snapshot restored)
	inflight        []*inflightBatch
	epochs          []epochStart // first offset of each term seen in applied entries, ascending
	expiredAt       time.Time
	isrMark         isrMark // the reference point of isr, while leading

	// Owned by the broker's background goroutine (checkReplicas).
	reported reportedState
}

// inflightBatch is an idempotent batch this leader proposed at its current term and has not
// applied yet.
type inflightBatch struct {
	h     batchHead // baseOffset set
	index uint64
	done  chan struct{} // closed when applied (err nil) or when it can no longer be (err set)
	err   error
}

// epochStart is the first offset of a raft term (Kafka leader epoch) in the partition.
type epochStart struct {
	term  uint64
	start int64
}

// reportedState is what OnPartitionState was last told about a group.
type reportedState struct {
	leader, term uint64
	isr          []uint64
}

var errLeaderChanged = &replica.NotLeaderError{}

// failInflightLocked fails every in-flight batch (leadership changed or the group stopped).
func (g *replGroup) failInflightLocked() {
	for _, in := range g.inflight {
		in.err = errLeaderChanged
		close(in.done)
	}
	g.inflight = nil
}

// Apply implements replica.StateMachine: producer state from committed batches, the high
// watermark, the leader epoch cache; then it wakes the partition's fetch waiters.
func (g *replGroup) Apply(ents []*raftpb.Entry) {
	if len(ents) == 0 {
		return
	}
	nowMs := g.b.cfg.Now().UnixMilli()
	g.mu.Lock()
	var next int64 = -1
	for _, e := range ents {
		index, term := e.GetIndex(), e.GetTerm()
		if index <= g.applied {
			continue // applied already (a restart re-applies from the storage's first index)
		}
		base, nx, ok := g.st.Offsets(index)
		if !ok {
			g.b.log.Error("broker: applied raft entry has no offsets", "topic", g.p.t.name, "partition", g.p.index, "index", index)
		} else {
			next = nx
			if n := len(g.epochs); n == 0 || g.epochs[n-1].term < term {
				g.epochs = append(g.epochs, epochStart{term: term, start: base})
			}
			if payload, ok := raftstore.AppPayload(e.GetData()); ok {
				g.applyApp(index, base, payload, nowMs)
			} else if data := e.GetData(); e.GetType() == raftpb.EntryType_EntryNormal && len(data) > 0 {
				if base >= g.prodsUpTo { // below: the restored snapshot's producer state has it
					g.prods.replayFrom(data, base, nowMs)
				}
				g.dataSeen = true
			}
		}
		g.applied, g.lastAppliedTerm = index, term
	}
	for len(g.inflight) > 0 && g.inflight[0].index <= g.applied {
		close(g.inflight[0].done)
		g.inflight = g.inflight[1:]
	}
	wasReady := g.ready
	g.ready = g.leader == g.self && g.lastAppliedTerm == g.term && !g.removed
	nowReady := g.ready && !wasReady
	g.mu.Unlock()
	if next >= 0 {
		g.hw.Store(next)
		g.p.wake()
	}
	if nowReady {
		g.b.kickReplicas() // report the new leadership (a majority has acknowledged it)
	}
}

// Restore implements replica.StateMachine: the state machine restarts from a snapshot (one
// this replica was sent because it was too far behind, or its own at a restart). The
// producer state and the DeleteRecords log start are the snapshot's (its data:
// replicated_retention.go), so a replica that installed one deduplicates as its leader did.
func (g *replGroup) Restore(snap *raftpb.Snapshot) {
	snapNext, app, err := raftstore.SnapshotData(snap.GetData())
	logStart, upTo, prods := int64(-1), int64(0), map[int64]*producerEntry{}
	var aborted []abortedTxn
	if err == nil {
		logStart, upTo, prods, aborted, err = decodeSnapData(app)
	}
	if err != nil {
		// Producers are then unknown (KIP-360), as after expiry; the log stays usable.
		g.b.log.Error("broker: raft snapshot data", "topic", g.p.t.name, "partition", g.p.index, "err", err)
		snapNext, logStart, upTo, prods, aborted = -1, -1, 0, map[int64]*producerEntry{}, nil
	}
	g.mu.Lock()
	g.prods = producerState{producers: prods, aborted: aborted, txn: len(aborted) > 0}
	for _, e := range prods {
		g.prods.txn = g.prods.txn || e.txnFirst >= 0
	}
	g.prodsUpTo = upTo
	g.logStart.Store(logStart)
	g.failInflightLocked()
	g.applied, g.lastAppliedTerm = snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
	// The offset after the snapshot (a snapshot install resets the log to start there; at a
	// restart later entries may follow).
	next := snapNext
	if next < 0 {
		next = g.log.StartOffset()
		if _, nx, ok := g.st.Offsets(g.applied); ok {
			next = nx
		}
	}
	g.epochs = []epochStart{{term: g.lastAppliedTerm, start: next}}
	g.dataSeen = true
	g.ready = g.leader == g.self && g.lastAppliedTerm == g.term && !g.removed
	g.mu.Unlock()
	g.hw.Store(next)
	g.p.wake()
}

// LeaderChanged implements replica.StateMachine.
func (g *replGroup) LeaderChanged(leader, term uint64) {
	g.mu.Lock()
	if leader != g.leader || term != g.term {
		g.failInflightLocked()
	}
	g.leader, g.term = leader, term
	g.ready = leader == g.self && g.lastAppliedTerm == term && !g.removed
	ready := g.ready
	g.mu.Unlock()
	g.p.wake() // a long poll on this partition ends: it is no longer (or now) served here
	if ready {
		g.b.kickReplicas()
	}
}

// leaderState is the group's leadership as this replica sees it: whether it serves the
// partition (leader at term, own term's first entry applied), the leader and the term.
func (g *replGroup) leaderState() (serving bool, leader, term uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ready, g.leader, g.term
}

// isr returns the in-sync replicas of a group this broker leads (nil if it does not lead
// it): the leader and every voter the leader heard from recently (raft's RecentActive) whose
// log reaches the commit index this leader saw between isrLagTime and twice that ago, or the
// commit index now. That is Kafka's rule (a follower is in sync while it has caught up with
// the leader within replica.lag.time.max.ms) read off raft's progress: a follower that falls
// further behind, or a new replica (a wiped disk) still copying the log, is not in sync until
// it has the data. At a new term the reference point is the commit index the term began with.
func (g *replGroup) isr(now time.Time) (isr []uint64, leader, term uint64) {
	st, ok := g.eng.Status(g.id)
	if !ok || st.Leader != g.self {
		return nil, st.Leader, st.Term
	}
	g.mu.Lock()
	m := &g.isrMark
	switch {
	case m.term != st.Term:
		*m = isrMark{term: st.Term, cur: st.Commit, prev: st.Commit, at: now}
	case now.Sub(m.at) >= 2*isrLagTime:
		// Not looked at for a while (the checks run every ReplicaCheckInterval): the marks
		// are too old to say who kept up, so only those caught up now count.
		*m = isrMark{term: st.Term, cur: st.Commit, prev: st.Commit, at: now}
	case now.Sub(m.at) >= isrLagTime:
		m.prev, m.cur, m.at = m.cur, st.Commit, now
	}
	floor := m.prev
	g.mu.Unlock()
	isr = []uint64{g.self}
	for _, v := range st.Voters {
		if v == g.self {
			continue
		}
		if pr, ok := st.Progress[v]; ok && pr.RecentActive && (pr.Match >= st.Commit || pr.Match >= floor) {
			isr = append(isr, v)
		}
	}
	slices.Sort(isr)
	return isr, st.Leader, st.Term
}

// isrLagTime is how far behind the leader (in time) a follower may be and count as in sync:
// Kafka's replica.lag.time.max.ms, shorter (Kafka's default is 30 s) since raft's
// RecentActive already covers a follower that stopped answering.
const isrLagTime = 10 * time.Second

// isrMark is the reference point of isr: the commit index at the last two marks, taken at
// least isrLagTime apart, in the leader's current term.
type isrMark struct {
	term      uint64
	cur, prev uint64
	at        time.Time // when cur was taken
}

// kickReplicas asks the background goroutine to check the replicated partitions soon.
func (b *Broker) kickReplicas() {
	select {
	case b.replKick <- struct{}{}:
	default:
	}
}

// CheckReplicas checks every replicated partition this broker leads and serves now (an entry
// of its term applied) and tells the OnPartitionState function about a new leadership or a
// changed ISR; it also expires idle producers. The background goroutine runs it every
// Config.ReplicaCheckInterval and as soon as this broker starts serving a partition.
func (b *Broker) CheckReplicas() {
	if b.closed.Load() || b.repl.Load() == nil {
		return
	}
	b.checkMu.Lock()
	defer b.checkMu.Unlock()
	var fn PartitionStateFunc
	if p := b.partState.Load(); p != nil {
		fn = *p
	}
	now := b.cfg.Now()
	var leads, under int64
	defer func() { b.replLeaders.Store(leads); b.replUnder.Store(under) }()
	for _, t := range b.sortedTopics() {
		for _, p := range *t.parts.Load() {
			g := p.group.Load()
			if g == nil {
				continue
			}
			g.mu.Lock()
			if now.Sub(g.expiredAt) >= snapshotInterval {
				g.expiredAt = now
				g.prods.expire(now)
			}
			g.mu.Unlock()
			if serving, _, _ := g.leaderState(); !serving {
				// Not leading, or not serving yet: the leadership is reported once an
				// entry of its term is applied (a majority acknowledged it).
				g.reported = reportedState{}
				continue
			}
			isr, leader, term := g.isr(now)
			if leader != g.self {
				g.reported = reportedState{leader: leader, term: term}
				continue
			}
			leads++
			if len(isr) < len(t.replicasOf(p.index)) {
				under++
			}
			if fn == nil || g.reported.leader == leader && g.reported.term == term && slices.Equal(g.reported.isr, isr) {
				continue
			}
			g.reported = reportedState{leader: leader, term: term, isr: isr}
			fn(t.name, p.index, leader, term, slices.Clone(isr))
		}
	}
}
