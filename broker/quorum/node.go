package quorum

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/meshkafka/meshkafka/internal/clock"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Node is one member of a raft group. A single goroutine (run) owns the RawNode, the state
// machine and the storage writes; every method hands its work to that goroutine.
type Node struct {
	id   uint64
	cfg  Config
	log  *slog.Logger
	clk  clock.Clock
	stor Storage
	tr   Transport
	sm   StateMachine

	workc chan func()          // closures run on the raft goroutine
	recvc chan *raftpb.Message // inbound messages
	stopc chan struct{}        // closed by Stop
	done  chan struct{}        // closed when run has returned
	stop  sync.Once

	// Reports from the transport, queued without blocking (the transport may call them from
	// inside Send, i.e. on the raft goroutine).
	repMu   sync.Mutex
	reports []report // guarded by repMu
	repc    chan struct{}

	lead      atomic.Uint64 // current leader, 0 if none; changed only by setLead
	isLeader  atomic.Bool
	leadMu    sync.Mutex            // guards leadc and orders lead's changes with it
	leadc     chan struct{}         // guarded by leadMu: closed when lead next changes
	errv      atomic.Pointer[error] // why run stopped, if it failed
	lastState atomic.Pointer[Status]

	// Owned by the raft goroutine.
	rn           *raft.RawNode
	applied      uint64
	snapIndex    uint64
	confState    *raftpb.ConfState
	peers        map[uint64][]byte  // raft id -> address, from conf changes and snapshots
	proposed     []*waiter          // accepted by rn since the last Ready, in log order
	pending      map[uint64]*waiter // by log index
	reads        map[uint64]*readWaiter
	readSeq      uint64
	confInFlight uint64 // index of the last conf change this leader proposed
	confIndex    uint64 // index of the last applied conf change (the snapshot's index after a restore)
	transfers    []*transferWaiter
	term         uint64
	removed      bool
	seenLead     uint64
	confChanged  bool // a conf change was applied since the last snapshot
}

type report struct {
	id     uint64
	snap   bool
	status raft.SnapshotStatus
}

type result struct {
	v   any
	err error
}

type waiter struct {
	term  uint64
	index uint64
	conf  bool
	ch    chan result // buffered 1; nil for internal proposals
}

func (w *waiter) finish(v any, err error) {
	if w.ch != nil {
		select {
		case w.ch <- result{v, err}:
		default: // already finished
		}
	}
}

// transferWaiter is a TransferLeadership waiting for its outcome.
type transferWaiter struct {
	to uint64
	ch chan error // buffered 1
}

type readWaiter struct {
	index uint64 // 0 until the ReadState arrives
	ch    chan error
}

// Start opens the node on cfg.Storage: it restores the state machine from the storage's
// snapshot, bootstraps a new cluster from cfg.Bootstrap if the storage is empty, and starts
// the raft goroutine. Stop ends it; Stop does not close the Storage (the caller owns it).
func Start(cfg Config) (*Node, error) {
	if cfg.ID == 0 || cfg.Storage == nil || cfg.Transport == nil || cfg.SM == nil {
		return nil, errors.New("quorum: Config needs ID, Storage, Transport and SM")
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = defaultTick
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = defaultSnapshotEvery
	}
	if cfg.Voters <= 0 {
		cfg.Voters = defaultVoters
	}
	n := &Node{
		id:      cfg.ID,
		cfg:     cfg,
		log:     cfg.Log,
		clk:     clock.Or(cfg.Clock),
		stor:    cfg.Storage,
		tr:      cfg.Transport,
		sm:      cfg.SM,
		workc:   make(chan func(), 64),
		recvc:   make(chan *raftpb.Message, 256),
		stopc:   make(chan struct{}),
		done:    make(chan struct{}),
		repc:    make(chan struct{}, 1),
		leadc:   make(chan struct{}),
		peers:   make(map[uint64][]byte),
		pending: make(map[uint64]*waiter),
		reads:   make(map[uint64]*readWaiter),
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.log = n.log.With("raft_id", fmt.Sprintf("%x", cfg.ID))

	// Restore from the storage's snapshot.
	snap, err := n.stor.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("quorum: read snapshot: %w", err)
	}
	_, cs, err := n.stor.InitialState()
	if err != nil {
		return nil, fmt.Errorf("quorum: read initial state: %w", err)
	}
	n.confState = proto.Clone(raftpb.EnsureConfState(cs)).(*raftpb.ConfState)
	if !raft.IsEmptySnap(snap) {
		if err := n.restore(snap); err != nil {
			return nil, err
		}
	}
	last, err := n.stor.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("quorum: read last index: %w", err)
	}
	rc := &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              electionTicks,
		HeartbeatTick:             heartbeatTicks,
		Storage:                   n.stor,
		Applied:                   n.applied,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{n.log},
	}
	n.rn, err = raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("quorum: %w", err)
	}
	if last == 0 && raft.IsEmptySnap(snap) && len(cfg.Bootstrap) > 0 {
		if err := n.rn.Bootstrap(cfg.Bootstrap); err != nil {
			return nil, fmt.Errorf("quorum: bootstrap: %w", err)
		}
		n.log.Info("quorum: bootstrapping a new cluster", "peers", len(cfg.Bootstrap))
	}
	n.publish()
	go n.run()
	return n, nil
}

// Stop stops the raft goroutine and waits for it; pending requests fail with ErrStopped.
// It may be called more than once.
func (n *Node) Stop() {
	n.stop.Do(func() { close(n.stopc) })
	<-n.done
}

// Done is closed when the node has stopped (Stop, or a storage/state-machine failure).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err reports why the node stopped by itself (nil while running or after a plain Stop).
func (n *Node) Err() error {
	if p := n.errv.Load(); p != nil {
		return *p
	}
	return nil
}

func (n *Node) stoppedErr() error {
	if err := n.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrStopped, err)
	}
	return ErrStopped
}

// do runs f on the raft goroutine.
func (n *Node) do(ctx context.Context, f func()) error { return send(ctx, n, n.workc, f) }

// send hands v to the raft goroutine on ch unless ctx ends or the node stops first.
func send[T any](ctx context.Context, n *Node, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stoppedErr()
	}
}

// Leader returns the current leader's raft id, if one is known.
func (n *Node) Leader() (id uint64, ok bool) {
	id = n.lead.Load()
	return id, id != 0
}

// LeaderWatch returns the current leader's raft id (0 if none is known) and a channel that
// is closed as soon as that changes: another leader, none (an election started, or this
// node stopped). A caller waiting on the leader for something (a request forwarded to it)
// gives up on it there instead of waiting for its connection to time out.
func (n *Node) LeaderWatch() (leader uint64, changed <-chan struct{}) {
	n.leadMu.Lock()
	defer n.leadMu.Unlock()
	return n.lead.Load(), n.leadc
}

// setLead records the leader, closing the watch channel when it changed.
func (n *Node) setLead(id uint64) {
	n.leadMu.Lock()
	defer n.leadMu.Unlock()
	if n.lead.Load() == id {
		return
	}
	n.lead.Store(id)
	close(n.leadc)
	n.leadc = make(chan struct{})
}

// Status returns the node's raft state (the last one published if the node has stopped).
func (n *Node) Status() Status {
	ch := make(chan Status, 1)
	if n.do(context.Background(), func() { ch <- n.status() }) == nil {
		select {
		case st := <-ch:
			return st
		case <-n.done:
		}
	}
	st := *n.lastState.Load()
	st.Stopped = true
	st.Leader = 0
	return st
}

// Propose replicates data and waits until this node has applied it; it returns the state
// machine's result. Only the leader accepts proposals: a follower returns *NotLeaderError.
// If leadership changes before the entry is applied the proposal fails with
// ErrLeaderChanged (outcome unknown). Cancelling ctx stops the wait, not the proposal.
func (n *Node) Propose(ctx context.Context, data []byte) (any, error) {
	if len(data) == 0 {
		return nil, errors.New("quorum: empty proposal")
	}
	return n.propose(ctx, func() error { return n.rn.Propose(data) }, false)
}

func (n *Node) propose(ctx context.Context, prop func() error, conf bool) (any, error) {
	w := &waiter{conf: conf, ch: make(chan result, 1)}
	err := n.do(ctx, func() {
		if err := n.checkLeader(); err != nil {
			w.finish(nil, err)
			return
		}
		if err := prop(); err != nil {
			if err == errNothingToDo {
				w.finish(nil, nil)
				return
			}
			if errors.Is(err, raft.ErrProposalDropped) {
				err = ErrDropped
			}
			w.finish(nil, err)
			return
		}
		w.term = n.rn.BasicStatus().GetTerm()
		n.proposed = append(n.proposed, w)
	})
	if err != nil {
		return nil, err
	}
	select {
	case r := <-w.ch:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.done:
		select {
		case r := <-w.ch:
			return r.v, r.err
		default:
			return nil, n.stoppedErr()
		}
	}
}

func (n *Node) checkLeader() error {
	st := n.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return &NotLeaderError{Leader: st.Lead}
	}
	return nil
}

// ReadBarrier waits until this node's state machine reflects every write committed before
// the call (raft ReadIndex): reads of local state after it are linearizable. It works on
// followers too (the leader confirms the index); with no leader known it returns
// *NotLeaderError, and a leadership change while waiting gives ErrLeaderChanged.
func (n *Node) ReadBarrier(ctx context.Context) error {
	rw := &readWaiter{ch: make(chan error, 1)}
	err := n.do(ctx, func() {
		st := n.rn.BasicStatus()
		if st.Lead == raft.None {
			rw.ch <- &NotLeaderError{} // rw.ch is buffered and not yet shared
			return
		}
		n.readSeq++
		n.reads[n.readSeq] = rw
		n.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, n.readSeq))
	})
	if err != nil {
		return err
	}
	select {
	case err := <-rw.ch:
		return err
	case <-ctx.Done():
		// Forget the request if the raft goroutine can take that now (else it goes at the
		// next leadership change).
		select {
		case n.workc <- func() { n.forgetRead(rw) }:
		default:
		}
		return ctx.Err()
	case <-n.done:
		return n.stoppedErr()
	}
}

func (n *Node) forgetRead(rw *readWaiter) {
	for seq, r := range n.reads {
		if r == rw {
			delete(n.reads, seq)
		}
	}
}

// Step hands an inbound message from the transport to raft. It blocks only while the inbound
// queue is full.
func (n *Node) Step(ctx context.Context, m *raftpb.Message) error {
	if raft.IsLocalMsg(m.GetType()) {
		return fmt.Errorf("quorum: local message type %v from the network", m.GetType())
	}
	if m.GetTo() != n.id {
		return fmt.Errorf("quorum: message for %x delivered to %x", m.GetTo(), n.id)
	}
	return send(ctx, n, n.recvc, m)
}

// ReportUnreachable tells raft the last send to id failed. Never blocks; safe from any
// goroutine, including from inside Transport.Send.
func (n *Node) ReportUnreachable(id uint64) { n.addReport(report{id: id}) }

// ReportSnapshot tells raft whether a MsgSnap to id was delivered. The transport must call
// it for every MsgSnap it was given. Never blocks.
func (n *Node) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	n.addReport(report{id: id, snap: true, status: status})
}

func (n *Node) addReport(r report) {
	n.repMu.Lock()
	n.reports = append(n.reports, r)
	n.repMu.Unlock()
	select {
	case n.repc <- struct{}{}:
	default:
	}
}

// AddLearner adds raft id id as a learner at address peer (which every node's Transport
// learns when the change is applied). It returns once the change is applied here. Leader only.
// It is idempotent: for an id that is already a learner or a voter it keeps the role and only
// carries the (possibly new) address to every node.
func (n *Node) AddLearner(ctx context.Context, id uint64, peer []byte) error {
	if len(peer) == 0 {
		return errors.New("quorum: AddLearner needs the peer's address")
	}
	return n.confChange(ctx, raftpb.ConfChangeAddLearnerNode, id, peer)
}

// Promote makes learner id a voter (a no-op for a voter; an error for a non-member). Leader
// only. The leader also promotes caught-up learners by itself (Config.Voters).
func (n *Node) Promote(ctx context.Context, id uint64) error {
	return n.confChange(ctx, raftpb.ConfChangeAddNode, id, nil)
}

// Remove removes id (voter or learner) from the group (a no-op for a non-member). Leader only.
func (n *Node) Remove(ctx context.Context, id uint64) error {
	return n.confChange(ctx, raftpb.ConfChangeRemoveNode, id, nil)
}

// TransferLeadership hands the leadership to voter to (raft's leader transfer: the leader
// brings to up to date and tells it to campaign at once). It returns nil once this node
// sees to lead; *NotLeaderError on a node that is not the leader; ErrTransferAborted when
// raft gave the transfer up (to did not catch up and win within an election timeout; this
// node still leads); ErrLeaderChanged when another node took the leadership. Transferring
// to itself is a no-op.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) error {
	tw := &transferWaiter{to: to, ch: make(chan error, 1)}
	err := n.do(ctx, func() {
		if err := n.checkLeader(); err != nil {
			tw.ch <- err
			return
		}
		if to == n.id {
			tw.ch <- nil
			return
		}
		if !slices.Contains(n.confState.GetVoters(), to) {
			tw.ch <- fmt.Errorf("quorum: %x is not a voter: leadership goes only to a voter", to)
			return
		}
		n.rn.TransferLeader(to)
		n.transfers = append(n.transfers, tw)
		n.log.Info("quorum: transferring leadership", "to", fmt.Sprintf("%x", to))
	})
	if err != nil {
		return err
	}
	select {
	case err := <-tw.ch:
		return err
	case <-ctx.Done():
		return ctx.Err() // raft gives the transfer up by itself if it cannot finish
	case <-n.done:
		select {
		case err := <-tw.ch:
			return err
		default:
			return n.stoppedErr()
		}
	}
}

// ErrTransferAborted: raft gave a leadership transfer up (the transferee did not catch up and
// win within an election timeout); this node still leads. Retriable.
var ErrTransferAborted = errors.New("quorum: leadership transfer aborted")

// checkTransfers finishes the leadership transfers whose outcome is known (raft goroutine).
func (n *Node) checkTransfers() {
	if len(n.transfers) == 0 {
		return
	}
	st := n.rn.BasicStatus()
	keep := n.transfers[:0]
	for _, tw := range n.transfers {
		switch {
		case st.Lead == tw.to && st.RaftState != raft.StateLeader:
			tw.ch <- nil
		case st.RaftState == raft.StateLeader && st.LeadTransferee == raft.None:
			tw.ch <- ErrTransferAborted
		case st.Lead != raft.None && st.Lead != tw.to && st.RaftState != raft.StateLeader:
			tw.ch <- ErrLeaderChanged
		default: // still transferring, or no leader known yet
			keep = append(keep, tw)
		}
	}
	clear(n.transfers[len(keep):])
	n.transfers = keep
}

// errNothingToDo: a membership request that is already satisfied.
var errNothingToDo = errors.New("quorum: nothing to do")

func (n *Node) confChange(ctx context.Context, typ raftpb.ConfChangeType, id uint64, peer []byte) error {
	if id == 0 {
		return errors.New("quorum: raft id 0")
	}
	_, err := n.propose(ctx, func() error {
		voter := slices.Contains(n.confState.GetVoters(), id)
		learner := slices.Contains(n.confState.GetLearners(), id)
		switch typ {
		case raftpb.ConfChangeAddLearnerNode:
			if voter {
				typ = raftpb.ConfChangeAddNode // re-adding a voter only updates its address
			}
		case raftpb.ConfChangeAddNode:
			if voter {
				return errNothingToDo
			}
			if !learner {
				return fmt.Errorf("quorum: %x is not a learner: add it with AddLearner first", id)
			}
		case raftpb.ConfChangeRemoveNode:
			if !voter && !learner {
				return errNothingToDo
			}
		}
		return n.proposeConf(typ, id, peer)
	}, true)
	return err
}

// proposeConf proposes a single-change ConfChangeV2 (raft goroutine). The context carries
// the peer's address; for a promotion or removal the known address is carried along.
func (n *Node) proposeConf(typ raftpb.ConfChangeType, id uint64, peer []byte) error {
	if peer == nil {
		peer = n.peers[id]
	}
	cc := &raftpb.ConfChangeV2{
		Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(id)}},
		Context: peer,
	}
	return n.rn.ProposeConfChange(cc)
}

// run is the raft goroutine.
func (n *Node) run() {
	defer close(n.done)
	ticker := n.clk.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	var err error
	defer func() {
		if err != nil {
			n.errv.Store(&err)
			n.log.Error("quorum: node failed", "err", err)
		}
		n.failAll(n.stoppedErr())
		n.isLeader.Store(false)
		n.setLead(0)
	}()
	for {
		if err = n.handleReady(); err != nil {
			return
		}
		select {
		case <-ticker.C():
			n.rn.Tick()
			n.checkTransfers()
			n.maybePromote()
		case m := <-n.recvc:
			n.step(m)
			for i := 0; i < 255; i++ { // a bounded batch, then persist and send
				select {
				case m := <-n.recvc:
					n.step(m)
					continue
				default:
				}
				break
			}
		case f := <-n.workc:
			f()
			// Batch the queued proposals into one Ready (one Save).
			for i := 0; i < 64; i++ {
				select {
				case f := <-n.workc:
					f()
					continue
				default:
				}
				break
			}
		case <-n.repc:
			n.repMu.Lock()
			reps := n.reports
			n.reports = nil
			n.repMu.Unlock()
			for _, r := range reps {
				if r.snap {
					n.rn.ReportSnapshot(r.id, r.status)
				} else {
					n.rn.ReportUnreachable(r.id)
				}
			}
		case <-n.stopc:
			return
		}
	}
}

func (n *Node) step(m *raftpb.Message) {
	if err := n.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		n.log.Debug("quorum: step", "type", m.GetType(), "from", m.GetFrom(), "err", err)
	}
}

// handleReady drains raft's Ready: persist, send, apply, advance (synchronous storage writes,
// so messages go out only after what they depend on is durable).
func (n *Node) handleReady() error {
	if !n.rn.HasReady() {
		return nil
	}
	for n.rn.HasReady() {
		rd := n.rn.Ready()

		// Match the proposals accepted since the last Ready to their log indexes: each
		// accepted proposal appended exactly one entry, the newest ones last.
		if len(n.proposed) > 0 {
			k := len(n.proposed)
			if len(rd.Entries) < k {
				for _, w := range n.proposed {
					w.finish(nil, ErrLeaderChanged)
				}
			} else {
				for i, w := range n.proposed {
					e := rd.Entries[len(rd.Entries)-k+i]
					if e.GetTerm() != w.term {
						w.finish(nil, ErrLeaderChanged)
						continue
					}
					w.index = e.GetIndex()
					n.pending[w.index] = w
					if w.conf {
						n.confInFlight = w.index
					}
				}
			}
			n.proposed = n.proposed[:0]
		}

		if err := n.stor.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return fmt.Errorf("save: %w", err)
		}
		if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
			if err := n.restore(rd.Snapshot); err != nil {
				return err
			}
		}
		if len(rd.Messages) > 0 {
			n.tr.Send(rd.Messages)
		}

		for _, e := range rd.CommittedEntries {
			if err := n.apply(e); err != nil {
				return err
			}
		}
		for _, rs := range rd.ReadStates {
			if len(rs.RequestCtx) != 8 {
				continue
			}
			if rw := n.reads[binary.BigEndian.Uint64(rs.RequestCtx)]; rw != nil {
				rw.index = rs.Index
			}
		}
		n.completeReads()

		if rd.SoftState != nil || rd.HardState != nil {
			n.onStateChange()
		}
		if err := n.maybeSnapshot(); err != nil {
			return err
		}
		n.rn.Advance(rd)
	}
	n.publish()
	return nil
}

// onStateChange fails what a leadership change leaves undecidable.
func (n *Node) onStateChange() {
	st := n.rn.BasicStatus()
	n.isLeader.Store(st.RaftState == raft.StateLeader)
	n.setLead(st.Lead)
	if st.GetTerm() != n.term || st.RaftState != raft.StateLeader {
		// Proposals of an older term (or of a leader that stepped down) may never apply
		// here; their outcome is decided elsewhere.
		for idx, w := range n.pending {
			if st.RaftState != raft.StateLeader || w.term != st.GetTerm() {
				w.finish(nil, ErrLeaderChanged)
				delete(n.pending, idx)
			}
		}
	}
	if st.GetTerm() != n.term || st.Lead != n.seenLead {
		// A read the old leader had not confirmed will not be answered now.
		for seq, rw := range n.reads {
			if rw.index == 0 {
				rw.ch <- ErrLeaderChanged
				delete(n.reads, seq)
			}
		}
	}
	n.term = st.GetTerm()
	n.seenLead = st.Lead
	n.checkTransfers()
}

func (n *Node) completeReads() {
	for seq, rw := range n.reads {
		if rw.index != 0 && rw.index <= n.applied {
			rw.ch <- nil
			delete(n.reads, seq)
		}
	}
}

func (n *Node) failAll(err error) {
	for _, w := range n.proposed {
		w.finish(nil, err)
	}
	n.proposed = nil
	for idx, w := range n.pending {
		w.finish(nil, err)
		delete(n.pending, idx)
	}
	for seq, rw := range n.reads {
		rw.ch <- err
		delete(n.reads, seq)
	}
	for _, tw := range n.transfers {
		tw.ch <- err
	}
	n.transfers = nil
}

// apply applies one committed entry.
func (n *Node) apply(e *raftpb.Entry) error {
	idx := e.GetIndex()
	if idx <= n.applied {
		return nil
	}
	w := n.pending[idx]
	delete(n.pending, idx)
	if w != nil && w.term != e.GetTerm() {
		w.finish(nil, ErrLeaderChanged)
		w = nil
	}
	switch e.GetType() {
	case raftpb.EntryNormal:
		if len(e.GetData()) == 0 {
			if w != nil && w.conf {
				// raft replaced a refused conf change with an empty entry.
				w.finish(nil, ErrConfChangeRejected)
			} else if w != nil {
				w.finish(nil, nil)
			}
			break
		}
		res := n.sm.Apply(idx, e.GetData())
		if w != nil {
			w.finish(res, nil)
		}
	case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeI
		if e.GetType() == raftpb.EntryConfChange {
			var c raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &c); err != nil {
				return fmt.Errorf("conf change at %d: %w", idx, err)
			}
			cc = &c
		} else {
			var c raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &c); err != nil {
				return fmt.Errorf("conf change at %d: %w", idx, err)
			}
			cc = &c
		}
		n.confState = n.rn.ApplyConfChange(cc)
		n.confChanged = true
		n.confIndex = idx
		v2 := cc.AsV2()
		for _, ch := range v2.GetChanges() {
			id := ch.GetNodeId()
			switch ch.GetType() {
			case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
				if len(v2.GetContext()) > 0 {
					n.peers[id] = slices.Clone(v2.GetContext())
				}
				if id != n.id && n.peers[id] != nil {
					n.tr.AddPeer(id, n.peers[id])
				}
			case raftpb.ConfChangeRemoveNode:
				delete(n.peers, id)
				if id == n.id {
					n.removed = true
					n.log.Warn("quorum: this node was removed from the group")
				} else {
					n.tr.RemovePeer(id)
				}
			}
		}
		n.log.Info("quorum: membership changed", "index", idx, "change", raft.DescribeConfChange(cc),
			"voters", n.confState.GetVoters(), "learners", n.confState.GetLearners())
		if w != nil {
			w.finish(nil, nil)
		}
	}
	n.applied = idx
	return nil
}

// restore replaces the state machine and peer table with a snapshot's.
func (n *Node) restore(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	peers, state, err := decodeSnapshot(snap.GetData())
	if err != nil {
		return fmt.Errorf("snapshot at %d: %w", md.GetIndex(), err)
	}
	if err := n.sm.Restore(state); err != nil {
		return fmt.Errorf("restore snapshot at %d: %w", md.GetIndex(), err)
	}
	for id := range n.peers {
		if _, ok := peers[id]; !ok && id != n.id {
			n.tr.RemovePeer(id)
		}
	}
	n.peers = peers
	for id, addr := range peers {
		if id != n.id {
			n.tr.AddPeer(id, addr)
		}
	}
	n.confState = proto.Clone(raftpb.EnsureConfState(md.GetConfState())).(*raftpb.ConfState)
	n.applied = md.GetIndex()
	n.snapIndex = md.GetIndex()
	n.confIndex = max(n.confIndex, md.GetIndex()) // the configuration is the snapshot's (or older)
	n.confChanged = false
	for idx, w := range n.pending {
		w.finish(nil, ErrLeaderChanged)
		delete(n.pending, idx)
	}
	n.log.Info("quorum: restored snapshot", "index", n.applied, "voters", n.confState.GetVoters())
	return nil
}

// maybeSnapshot records a snapshot once SnapshotEvery entries were applied since the last.
// A snapshot is also taken after every applied membership change: raft sends the storage's
// snapshot to a peer that needs one, and a peer refuses a snapshot whose configuration does
// not contain it, so a learner added after the last snapshot could never catch up by one.
func (n *Node) maybeSnapshot() error {
	if n.applied <= n.snapIndex || (n.applied < n.snapIndex+n.cfg.SnapshotEvery && !n.confChanged) {
		return nil
	}
	state, err := n.sm.Snapshot()
	if err != nil {
		return fmt.Errorf("state machine snapshot: %w", err)
	}
	data := encodeSnapshot(n.peers, state)
	if err := n.stor.CreateSnapshot(n.applied, n.confState, data); err != nil {
		return fmt.Errorf("create snapshot at %d: %w", n.applied, err)
	}
	n.snapIndex = n.applied
	n.confChanged = false
	n.log.Debug("quorum: snapshot", "index", n.applied, "bytes", len(data))
	return nil
}

// maybePromote (leader, on ticks) promotes one caught-up learner while there are fewer than
// cfg.Voters voters and no membership change of ours is still unapplied. Caught up means
// the learner holds the current configuration (Match at or past the last applied membership
// change, so it holds the entry that added it and knows every member's address) and is
// within promoteLag entries of the commit index. The first condition is what keeps a learner
// that has nothing yet (Match 0) from being promoted while the log is short (commit ≤
// promoteLag): a voter that cannot answer would cost the quorum its majority.
func (n *Node) maybePromote() {
	if !n.isLeader.Load() || n.confInFlight > n.applied || len(n.proposed) > 0 {
		return
	}
	if len(n.confState.GetVoters()) >= n.cfg.Voters || len(n.confState.GetLearners()) == 0 ||
		len(n.confState.GetVotersOutgoing()) > 0 {
		return
	}
	st := n.rn.Status()
	if st.RaftState != raft.StateLeader {
		return
	}
	for _, id := range slices.Sorted(slices.Values(n.confState.GetLearners())) {
		pr, ok := st.Progress[id]
		if !ok || !pr.RecentActive || pr.Match < n.confIndex || pr.Match+promoteLag < st.GetCommit() {
			continue
		}
		if err := n.proposeConf(raftpb.ConfChangeAddNode, id, nil); err != nil {
			n.log.Debug("quorum: auto-promote", "learner", id, "err", err)
			return
		}
		n.log.Info("quorum: promoting caught-up learner", "learner", fmt.Sprintf("%x", id),
			"match", pr.Match, "commit", st.GetCommit())
		n.proposed = append(n.proposed, &waiter{term: st.GetTerm(), conf: true})
		return
	}
}

func (n *Node) status() Status {
	st := n.rn.Status()
	s := Status{
		ID:       n.id,
		Term:     st.GetTerm(),
		Leader:   st.Lead,
		State:    st.RaftState.String(),
		Commit:   st.GetCommit(),
		Applied:  n.applied,
		Voters:   slices.Sorted(slices.Values(n.confState.GetVoters())),
		Learners: slices.Sorted(slices.Values(n.confState.GetLearners())),
		Removed:  n.removed,
	}
	if len(st.Progress) > 0 {
		s.Progress = make(map[uint64]Progress, len(st.Progress))
		for id, pr := range st.Progress {
			s.Progress[id] = Progress{Match: pr.Match, Next: pr.Next, State: pr.State.String(),
				RecentActive: pr.RecentActive, Learner: pr.IsLearner}
		}
	}
	return s
}

// publish records the status for Leader and for Status after Stop (raft goroutine).
func (n *Node) publish() {
	st := n.status()
	n.lastState.Store(&st)
	n.isLeader.Store(st.State == raft.StateLeader.String())
	n.setLead(st.Leader)
}
