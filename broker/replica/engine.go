package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Defaults of Config and raft settings every group shares.
const (
	defaultTick        = 100 * time.Millisecond
	electionTicks      = 10
	heartbeatTicks     = 1
	defaultMaxMsg      = 1 << 20
	defaultMaxInflight = 256
	// maxUncommitted bounds a group leader's uncommitted tail; beyond it proposals are
	// dropped (ErrDropped) until followers catch up.
	maxUncommitted = 64 << 20
	// maxInbox bounds the inbound message queue; beyond it Step drops (raft resends).
	maxInbox = 1 << 16
)

// Engine runs many raft groups on one node. One goroutine (run) owns every RawNode, Storage
// write, StateMachine call and Transport.Send; the exported methods hand work to it.
type Engine struct {
	id  uint64
	cfg Config
	log *slog.Logger
	clk clock.Clock
	tr  Transport

	mu      sync.Mutex
	ops     []func()       // guarded by mu: closures to run on the engine goroutine
	inbox   []GroupMessage // guarded by mu: inbound messages (Step)
	unreach []uint64       // guarded by mu: peers reported unreachable
	snaps   []snapReport   // guarded by mu: MsgSnap outcomes
	wake    chan struct{}  // capacity 1: something was queued

	stopc chan struct{} // closed by Stop
	stop  sync.Once
	done  chan struct{} // closed when run has returned
	errv  atomic.Pointer[error]

	rounds, syncs, readies, proposals, committed, sent, received, dropped atomic.Uint64

	// Owned by the engine goroutine.
	groups map[GroupID]*group
	dirty  map[*group]struct{} // groups that may have a Ready
	ticks  uint64              // ticks so far
	// early holds inbound messages for groups not running here yet, for up to
	// electionTicks ticks (at most maxEarly): a new partition's replicas add their groups
	// moments apart, and a candidate's votes dropped by a replica that has not added the
	// group yet would cost the partition's first election a whole election timeout more.
	early []earlyMsg
	// removed has the tick at which each group recently removed here was removed. Messages
	// for such a group are dropped, not held, for electionTicks after: they were sent to the
	// replica that was removed, and one held until the group is added back (a replica moved
	// away and back, on storage that starts empty) would reach the new replica stale: a
	// heartbeat carrying a commit index past the new replica's log makes raft panic.
	removed map[GroupID]uint64
}

// earlyMsg is an inbound message held for a group not running here yet, with the tick it came.
type earlyMsg struct {
	m    GroupMessage
	tick uint64
}

// maxEarly bounds the messages held for groups not running here yet.
const maxEarly = 4096

type snapReport struct {
	g  GroupID
	to uint64
	ok bool
}

// group is one raft group on this node (engine goroutine only).
type group struct {
	id       GroupID
	rn       *raft.RawNode
	st       Storage
	sm       StateMachine
	proposed []*waiter          // accepted by rn since the last Ready, in log order
	pending  map[uint64]*waiter // durable here, waiting for commit; by index
	conf     *raftpb.ConfState  // membership as applied here
	applied  uint64
	lead     uint64 // last reported to sm.LeaderChanged
	term     uint64
	// campaignAt, if not 0, is the applied index after which this node campaigns (a new
	// group's preferred leader, once its bootstrap membership entries are applied).
	campaignAt uint64
}

// waiter is a proposal (or membership change) made on this node.
type waiter struct {
	term, index uint64
	conf        bool
	durable     chan durableResult // buffered 1: the acks=1 point (or a failure before it)
	result      chan error         // buffered 1: commit (apply, for conf changes) or failure
	answered    bool               // durable was sent
}

type durableResult struct {
	index, term uint64
	err         error
}

func newWaiter(conf bool) *waiter {
	return &waiter{conf: conf, durable: make(chan durableResult, 1), result: make(chan error, 1)}
}

// fail ends w with err (nil after the durable answer: committed): before the durable
// answer err is that answer, after it the result. Only the first result counts.
func (w *waiter) fail(err error) {
	if !w.answered {
		w.answered = true
		w.durable <- durableResult{err: err}
		return
	}
	select {
	case w.result <- err:
	default:
	}
}

// New starts an Engine with no groups. Stop it when done.
func New(cfg Config) (*Engine, error) {
	if cfg.ID == 0 || cfg.Transport == nil || cfg.Sync == nil {
		return nil, errors.New("replica: Config needs ID, Transport and Sync")
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = defaultTick
	}
	if cfg.MaxSizePerMsg == 0 {
		cfg.MaxSizePerMsg = defaultMaxMsg
	}
	if cfg.MaxInflightMsgs <= 0 {
		cfg.MaxInflightMsgs = defaultMaxInflight
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	e := &Engine{
		id:     cfg.ID,
		cfg:    cfg,
		log:    cfg.Log.With("raft_id", cfg.ID),
		clk:    clock.Or(cfg.Clock),
		tr:     cfg.Transport,
		wake:   make(chan struct{}, 1),
		stopc:  make(chan struct{}),
		done:   make(chan struct{}),
		groups: make(map[GroupID]*group),
		dirty:  make(map[*group]struct{}),
	}
	go e.run()
	return e, nil
}

// ID returns this node's raft id.
func (e *Engine) ID() uint64 { return e.id }

// Stop stops the engine goroutine and waits for it. Pending proposals fail with an error
// wrapping ErrStopped and ErrNotLeader. Storages are not closed (the caller owns them). It
// may be called more than once.
func (e *Engine) Stop() {
	e.stop.Do(func() { close(e.stopc) })
	<-e.done
}

// Done is closed once the engine has stopped (Stop, or a storage/Sync failure).
func (e *Engine) Done() <-chan struct{} { return e.done }

// Err says why the engine stopped by itself (nil while running and after a plain Stop).
func (e *Engine) Err() error {
	if p := e.errv.Load(); p != nil {
		return *p
	}
	return nil
}

func (e *Engine) stoppedErr() error {
	if err := e.Err(); err != nil {
		return fmt.Errorf("%w: %w: %w", ErrStopped, err, &NotLeaderError{})
	}
	return fmt.Errorf("%w: %w", ErrStopped, &NotLeaderError{})
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Rounds: e.rounds.Load(), Syncs: e.syncs.Load(), Readies: e.readies.Load(),
		Proposals: e.proposals.Load(), Committed: e.committed.Load(), Sent: e.sent.Load(),
		Received: e.received.Load(), Dropped: e.dropped.Load(),
	}
}

// enqueue queues f for the engine goroutine.
func (e *Engine) enqueue(f func()) {
	e.mu.Lock()
	e.ops = append(e.ops, f)
	e.mu.Unlock()
	e.kick()
}

func (e *Engine) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// call runs f on the engine goroutine and waits for it (or ctx, or the engine's end).
func (e *Engine) call(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	e.enqueue(func() { f(); close(ran) })
	select {
	case <-ran:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		select {
		case <-ran:
			return nil
		default:
			return e.stoppedErr()
		}
	}
}

// AddGroup starts running group id on st and sm. On empty storage, voters (the same list on
// every replica, in any order but with the same first) bootstraps the group: every replica
// starts with the same initial membership entries, so their logs and offsets match, and the
// first voter (the preferred leader) campaigns at once instead of after an election timeout
// (1–2 s), so a new partition is led about one round trip after its replicas added it (votes
// reaching a replica before it added the group are held for it: Engine.early). With nil voters the group
// starts empty and waits for its leader to contact it (a replica added by a membership
// change). On non-empty storage voters is ignored. If st holds a snapshot, sm.Restore gets it
// first; committed entries after it are then applied again (sm.Apply) as raft redelivers them.
func (e *Engine) AddGroup(id GroupID, st Storage, sm StateMachine, voters []uint64) error {
	if st == nil || sm == nil {
		return errors.New("replica: AddGroup needs a Storage and a StateMachine")
	}
	var err error
	if cerr := e.call(context.Background(), func() { err = e.addGroup(id, st, sm, voters) }); cerr != nil {
		return cerr
	}
	return err
}

func (e *Engine) addGroup(id GroupID, st Storage, sm StateMachine, voters []uint64) error {
	if _, ok := e.groups[id]; ok {
		return fmt.Errorf("replica: group %v already running", id)
	}
	snap, err := st.Snapshot()
	if err != nil {
		return fmt.Errorf("replica: group %v: read snapshot: %w", id, err)
	}
	hs, cs, err := st.InitialState()
	if err != nil {
		return fmt.Errorf("replica: group %v: read initial state: %w", id, err)
	}
	last, err := st.LastIndex()
	if err != nil {
		return fmt.Errorf("replica: group %v: read last index: %w", id, err)
	}
	g := &group{id: id, st: st, sm: sm, pending: make(map[uint64]*waiter), conf: cloneConf(cs)}
	rc := &raft.Config{
		ID:                        e.id,
		ElectionTick:              electionTicks,
		HeartbeatTick:             heartbeatTicks,
		Storage:                   st,
		MaxSizePerMsg:             e.cfg.MaxSizePerMsg,
		MaxInflightMsgs:           e.cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: maxUncommitted,
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    raftLog{e.log.With("group", id.String())},
	}
	if si := snap.GetMetadata().GetIndex(); si > 0 && si <= hs.GetCommit() {
		rc.Applied = si // the state machine restores the snapshot: apply what follows it
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return fmt.Errorf("replica: group %v: %w", id, err)
	}
	g.rn = rn
	if !raft.IsEmptySnap(snap) {
		g.applied = snap.GetMetadata().GetIndex()
		sm.Restore(snap)
	}
	if last == 0 && raft.IsEmptySnap(snap) && len(voters) > 0 {
		ids := slices.Sorted(slices.Values(voters))
		ids = slices.Compact(ids)
		peers := make([]raft.Peer, len(ids))
		for i, v := range ids {
			if v == 0 {
				return fmt.Errorf("replica: group %v: voter raft id 0", id)
			}
			peers[i] = raft.Peer{ID: v}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("replica: group %v: bootstrap: %w", id, err)
		}
		if voters[0] == e.id {
			g.campaignAt = uint64(len(peers)) // once the bootstrap entries are applied: round
		}
	}
	e.groups[id] = g
	e.dirty[g] = struct{}{}
	return nil
}

// RemoveGroup stops running group id here (its storage is left as is). Its pending proposals
// fail with *NotLeaderError.
func (e *Engine) RemoveGroup(id GroupID) error {
	var err error
	if cerr := e.call(context.Background(), func() {
		g := e.groups[id]
		if g == nil {
			err = fmt.Errorf("%w: %v", ErrUnknownGroup, id)
			return
		}
		g.failAll(fmt.Errorf("replica: group %v removed: %w", id, &NotLeaderError{}))
		delete(e.groups, id)
		delete(e.dirty, g)
		e.forgetEarly(id)
	}); cerr != nil {
		return cerr
	}
	return err
}

// Propose appends data to group id's log. It returns once the entry is durable on this node
// (the acks=1 point); Proposal.Committed then yields nil once a majority has it, or an error
// wrapping ErrNotLeader if leadership was lost first. A node that is not the group's leader
// answers *NotLeaderError at once. Cancelling ctx stops the wait, not the proposal. data
// belongs to the Engine from now on (the storage may stamp fields in it, as raftstore does).
func (e *Engine) Propose(ctx context.Context, id GroupID, data []byte) (*Proposal, error) {
	if len(data) == 0 {
		return nil, errors.New("replica: empty proposal")
	}
	w, r, err := e.propose(ctx, id, data, nil)
	if err != nil {
		return nil, err
	}
	return &Proposal{Index: r.index, Term: r.term, Committed: w.result}, nil
}

// propose hands data, or the conf change cc if it is set, to group id's raft node on the
// engine goroutine (leader only) and waits until the entry is durable on this node.
func (e *Engine) propose(ctx context.Context, id GroupID, data []byte, cc *raftpb.ConfChangeV2) (*waiter, durableResult, error) {
	w := newWaiter(cc != nil)
	e.enqueue(func() {
		g, err := e.leaderGroup(id)
		switch {
		case err != nil:
		case cc != nil:
			err = g.rn.ProposeConfChange(cc)
		default:
			err = g.rn.Propose(data)
		}
		e.accepted(g, w, err)
	})
	r, err := e.waitDurable(ctx, w)
	return w, r, err
}

// ChangeConf proposes a membership change to group id and waits until it is applied here.
// Leader only (*NotLeaderError otherwise); ErrConfChangeRejected if raft refused it (one
// change at a time). A replica added as learner or voter must run the group (AddGroup with
// nil voters) and be reachable (AddPeer) to catch up.
func (e *Engine) ChangeConf(ctx context.Context, id GroupID, cc *raftpb.ConfChangeV2) error {
	if cc == nil {
		return errors.New("replica: nil conf change")
	}
	w, _, err := e.propose(ctx, id, nil, cc)
	if err != nil {
		return err
	}
	select {
	case err := <-w.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		select {
		case err := <-w.result:
			return err
		default:
			return e.stoppedErr()
		}
	}
}

// leaderGroup returns group id if this node leads it (engine goroutine).
func (e *Engine) leaderGroup(id GroupID) (*group, error) {
	g := e.groups[id]
	if g == nil {
		return nil, fmt.Errorf("%w: %v", ErrUnknownGroup, id)
	}
	st := g.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return nil, &NotLeaderError{Leader: st.Lead, Term: st.GetTerm()}
	}
	return g, nil
}

// accepted records a proposal raft took (err nil) or answers its failure (engine goroutine).
func (e *Engine) accepted(g *group, w *waiter, err error) {
	if err != nil {
		if errors.Is(err, raft.ErrProposalDropped) {
			st := g.rn.BasicStatus()
			switch {
			case st.LeadTransferee != 0: // handing over: the transferee is about to lead
				err = &NotLeaderError{Leader: st.LeadTransferee, Term: st.GetTerm()}
			case st.RaftState != raft.StateLeader:
				err = &NotLeaderError{Leader: st.Lead, Term: st.GetTerm()}
			default:
				err = ErrDropped
			}
		}
		w.fail(err)
		return
	}
	w.term = g.rn.BasicStatus().GetTerm()
	g.proposed = append(g.proposed, w)
	e.dirty[g] = struct{}{}
}

func (e *Engine) waitDurable(ctx context.Context, w *waiter) (durableResult, error) {
	select {
	case r := <-w.durable:
		return r, r.err
	case <-ctx.Done():
		return durableResult{}, ctx.Err()
	case <-e.done:
		select {
		case r := <-w.durable:
			return r, r.err
		default:
			return durableResult{}, e.stoppedErr()
		}
	}
}

// TransferLeader asks group id's leader (this node) to hand leadership to replica to. It
// returns at once; watch Status or StateMachine.LeaderChanged. Ignored on a follower.
func (e *Engine) TransferLeader(id GroupID, to uint64) {
	e.enqueue(func() {
		if g := e.groups[id]; g != nil {
			g.rn.TransferLeader(to)
			e.dirty[g] = struct{}{}
		}
	})
}

// Campaign makes this node start an election in group id now (instead of waiting for its
// election timeout). Used to elect a preferred leader at once; raft's PreVote still applies.
func (e *Engine) Campaign(id GroupID) {
	e.enqueue(func() {
		if g := e.groups[id]; g != nil {
			_ = g.rn.Campaign()
			e.dirty[g] = struct{}{}
		}
	})
}

// Status returns group id's raft view on this node; false if the group does not run here or
// the engine has stopped.
func (e *Engine) Status(id GroupID) (GroupStatus, bool) {
	var s GroupStatus
	var ok bool
	if e.call(context.Background(), func() {
		g := e.groups[id]
		if g == nil {
			return
		}
		ok = true
		s = g.status(e.id)
	}) != nil {
		return GroupStatus{}, false
	}
	return s, ok
}

// Groups returns the ids of the groups running here.
func (e *Engine) Groups() []GroupID {
	var ids []GroupID
	_ = e.call(context.Background(), func() {
		for id := range e.groups {
			ids = append(ids, id)
		}
	})
	return ids
}

func (g *group) status(self uint64) GroupStatus {
	st := g.rn.Status()
	s := GroupStatus{
		ID: self, Leader: st.Lead, Term: st.GetTerm(), Commit: st.GetCommit(), Applied: g.applied,
		Voters:   slices.Sorted(slices.Values(g.conf.GetVoters())),
		Learners: slices.Sorted(slices.Values(g.conf.GetLearners())),
	}
	if st.RaftState == raft.StateLeader {
		s.Progress = make(map[uint64]Progress, len(st.Progress))
		for id, pr := range st.Progress {
			s.Progress[id] = Progress{Match: pr.Match, RecentActive: pr.RecentActive}
		}
	}
	return s
}

// AtApplied calls f on the engine goroutine with group id's applied index and the membership
// in effect there; no Apply runs while f does, so f sees the state machine exactly at that
// index. This is how a snapshot for compaction is taken (the broker's retention): f creates
// it in the group's storage at applied with cs and the state machine's data. f must be quick.
func (e *Engine) AtApplied(ctx context.Context, id GroupID, f func(applied uint64, cs *raftpb.ConfState) error) error {
	var err error
	if cerr := e.call(ctx, func() {
		g := e.groups[id]
		if g == nil {
			err = fmt.Errorf("%w: %v", ErrUnknownGroup, id)
			return
		}
		err = f(g.applied, cloneConf(g.conf))
	}); cerr != nil {
		return cerr
	}
	return err
}

// Step hands an inbound message to its group. It never blocks: when the inbound queue is
// full, or the message is not for this node, it is dropped (raft resends). Messages for a
// group that does not run here are held for up to an election timeout in case it is being
// added (Engine.early), or dropped if the group was removed here within that time.
func (e *Engine) Step(m GroupMessage) {
	if m.Msg == nil || m.Msg.GetTo() != e.id || raft.IsLocalMsg(m.Msg.GetType()) {
		e.dropped.Add(1)
		return
	}
	e.mu.Lock()
	if len(e.inbox) >= maxInbox {
		e.mu.Unlock()
		e.dropped.Add(1)
		return
	}
	e.inbox = append(e.inbox, m)
	e.mu.Unlock()
	e.kick()
}

// ReportUnreachable tells every group that the last send to raft id peer failed (so leaders
// probe it instead of streaming). Never blocks; for transports.
func (e *Engine) ReportUnreachable(peer uint64) {
	e.mu.Lock()
	e.unreach = append(e.unreach, peer)
	e.mu.Unlock()
	e.kick()
}

// ReportSnapshot tells group g whether the MsgSnap it sent to raft id to was delivered. A
// transport must report every MsgSnap it was given. Never blocks.
func (e *Engine) ReportSnapshot(g GroupID, to uint64, delivered bool) {
	e.mu.Lock()
	e.snaps = append(e.snaps, snapReport{g, to, delivered})
	e.mu.Unlock()
	e.kick()
}

// AddPeer passes a peer's address to the Transport.
func (e *Engine) AddPeer(id uint64, addr []byte) { e.tr.AddPeer(id, addr) }

// RemovePeer removes a peer from the Transport.
func (e *Engine) RemovePeer(id uint64) { e.tr.RemovePeer(id) }

func cloneConf(cs *raftpb.ConfState) *raftpb.ConfState {
	if cs == nil {
		return &raftpb.ConfState{}
	}
	return proto.Clone(cs).(*raftpb.ConfState)
}
