package replica

import (
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// run is the engine goroutine.
func (e *Engine) run() {
	defer close(e.done)
	ticker := e.clk.NewTicker(e.cfg.TickInterval)
	defer ticker.Stop()
	var err error
	defer func() {
		if err != nil {
			e.errv.Store(&err)
			e.log.Error("replica: engine failed", "err", err)
		}
		stopped := e.stoppedErr()
		for _, g := range e.groups {
			g.failAll(stopped)
		}
	}()
	for {
		if len(e.dirty) == 0 {
			select {
			case <-e.stopc:
				return
			case <-ticker.C():
				e.tick()
			case <-e.wake:
			}
		} else {
			select {
			case <-e.stopc:
				return
			case <-ticker.C():
				e.tick()
			default:
			}
		}
		e.drain()
		if err = e.round(); err != nil {
			return
		}
	}
}

func (e *Engine) tick() {
	e.ticks++
	for _, g := range e.groups {
		g.rn.Tick()
		e.dirty[g] = struct{}{}
	}
}

// forgetEarly drops the held messages for group id, which was just removed here, and drops
// those that come for it for the next election timeout (Engine.removed).
func (e *Engine) forgetEarly(id GroupID) {
	for g, at := range e.removed { // prune: a removal older than the window is forgotten
		if e.ticks-at > electionTicks {
			delete(e.removed, g)
		}
	}
	if e.removed == nil {
		e.removed = map[GroupID]uint64{}
	}
	e.removed[id] = e.ticks
	kept := e.early[:0]
	for _, em := range e.early {
		if em.m.Group != id {
			kept = append(kept, em)
		} else {
			e.dropped.Add(1)
		}
	}
	clear(e.early[len(kept):])
	e.early = kept
}

// step hands m to its group g.
func (e *Engine) step(g *group, m GroupMessage) {
	if err := g.rn.Step(m.Msg); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		e.log.Debug("replica: step", "group", m.Group.String(), "type", m.Msg.GetType(), "err", err)
	}
	e.dirty[g] = struct{}{}
}

// drain runs the queued operations and steps the queued messages and reports.
func (e *Engine) drain() {
	e.mu.Lock()
	ops, inbox, unreach, snaps := e.ops, e.inbox, e.unreach, e.snaps
	e.ops, e.inbox, e.unreach, e.snaps = nil, nil, nil, nil
	e.mu.Unlock()
	for _, f := range ops {
		f()
	}
	e.received.Add(uint64(len(inbox)))
	if len(e.early) > 0 {
		kept := e.early[:0]
		for _, em := range e.early {
			switch g := e.groups[em.m.Group]; {
			case g != nil:
				e.step(g, em.m)
			case e.ticks-em.tick <= electionTicks:
				kept = append(kept, em)
			default:
				e.dropped.Add(1)
			}
		}
		clear(e.early[len(kept):])
		e.early = kept
	}
	for _, m := range inbox {
		g := e.groups[m.Group]
		if g == nil {
			if at, ok := e.removed[m.Group]; ok && e.ticks-at <= electionTicks {
				e.dropped.Add(1)
				continue
			}
			if len(e.early) < maxEarly {
				e.early = append(e.early, earlyMsg{m, e.ticks})
			} else {
				e.dropped.Add(1)
			}
			continue
		}
		e.step(g, m)
	}
	slices.Sort(unreach)
	for _, id := range slices.Compact(unreach) {
		for _, g := range e.groups {
			g.rn.ReportUnreachable(id)
		}
	}
	for _, r := range snaps {
		if g := e.groups[r.g]; g != nil {
			st := raft.SnapshotFinish
			if !r.ok {
				st = raft.SnapshotFailure
			}
			g.rn.ReportSnapshot(r.to, st)
			e.dirty[g] = struct{}{}
		}
	}
}

type ready struct {
	g       *group
	rd      raft.Ready
	durable []*waiter // proposals whose entries this Ready appends
}

// round handles the Ready of every group that has one: storage writes for all, one Sync,
// one Transport.Send, then apply and Advance for each.
func (e *Engine) round() error {
	var rds []ready
	for g := range e.dirty {
		if g.rn.HasReady() {
			rds = append(rds, ready{g: g, rd: g.rn.Ready()})
		}
	}
	clear(e.dirty)
	if len(rds) == 0 {
		return nil
	}
	e.rounds.Add(1)
	e.readies.Add(uint64(len(rds)))

	// Persist everything (not durable yet).
	needSync := false
	for i := range rds {
		r := &rds[i]
		r.durable = r.g.match(r.rd.Entries)
		if err := r.g.write(r.rd); err != nil {
			return err
		}
		needSync = needSync || r.rd.MustSync || !raft.IsEmptySnap(r.rd.Snapshot)
	}

	// Send what raft lets leave before this round's writes are durable: everything but the
	// acknowledgements of appends and votes (as raft's asynchronous storage mode does). A
	// leader's appends thus reach its followers while it syncs them itself, so a commit
	// takes the longer of the two instead of their sum; raft counts the leader's own copy
	// only once it is durable (Advance). After the writes, not before: the storage stamps
	// fields of the entries' data in place (raftstore), which the messages share.
	e.send(rds, false)
	if needSync {
		e.syncs.Add(1)
		if err := e.cfg.Sync(); err != nil {
			return fmt.Errorf("replica: sync: %w", err)
		}
	}

	// Durable: answer the proposals (acks=1) and send.
	for _, r := range rds {
		for _, w := range r.durable {
			w.answered = true
			w.durable <- durableResult{index: w.index, term: w.term}
			r.g.pending[w.index] = w
			e.proposals.Add(1)
		}
	}
	e.send(rds, true)

	// Apply and advance.
	for _, r := range rds {
		g := r.g
		if !raft.IsEmptySnap(r.rd.Snapshot) {
			g.restore(r.rd.Snapshot)
		}
		n, err := g.apply(r.rd.CommittedEntries)
		if err != nil {
			return err
		}
		e.committed.Add(n)
		if o, ok := g.st.(ApplyObserver); ok && len(r.rd.CommittedEntries) > 0 {
			o.Applied(g.applied)
		}
		if r.rd.SoftState != nil || r.rd.HardState != nil {
			g.checkLeader() // leader and term change only with these
		}
		g.rn.Advance(r.rd)
		if g.campaignAt != 0 && g.applied >= g.campaignAt {
			// A new group's preferred leader, its bootstrap membership applied (raft
			// refuses a campaign before that): campaign now (addGroup).
			g.campaignAt = 0
			_ = g.rn.Campaign()
		}
		if g.rn.HasReady() {
			e.dirty[g] = struct{}{}
		}
	}
	return nil
}

// send hands the messages of the round's Readies to the Transport in one Send: those that
// must wait until the round's writes are durable (durable true: acknowledgements of appends
// and votes), or the others.
func (e *Engine) send(rds []ready, durable bool) {
	n := 0
	for _, r := range rds {
		for _, m := range r.rd.Messages {
			if afterSync(m) == durable {
				n++
			}
		}
	}
	if n == 0 {
		return
	}
	msgs := make([]GroupMessage, 0, n)
	for _, r := range rds {
		for _, m := range r.rd.Messages {
			if afterSync(m) != durable {
				continue
			}
			if m.GetType() == raftpb.MessageType_MsgSnap {
				m = snapFor(m)
			}
			msgs = append(msgs, GroupMessage{Group: r.g.id, Msg: m})
		}
	}
	e.sent.Add(uint64(len(msgs)))
	e.tr.Send(msgs)
}

// afterSync says whether m may leave only once what its Ready wrote is durable: an append's
// or a vote's acknowledgement (the messages raft itself holds back until the storage write
// in its asynchronous storage mode: raft.go, send).
func afterSync(m *raftpb.Message) bool {
	switch m.GetType() {
	case raftpb.MessageType_MsgAppResp, raftpb.MessageType_MsgVoteResp, raftpb.MessageType_MsgPreVoteResp:
		return true
	}
	return false
}

// snapFor returns MsgSnap m with the recipient in its snapshot's membership. The snapshot
// describes the start of the stored log, which may predate the recipient's addition (a
// learner added after the last compaction), and raft refuses a snapshot whose membership
// lacks the recipient. Adding it as a learner is harmless: the entries after the snapshot
// then add it (again: a no-op) or promote it exactly as on every other replica, and a
// learner never votes or campaigns. The storage's snapshot itself is not modified.
func snapFor(m *raftpb.Message) *raftpb.Message {
	snap := m.GetSnapshot()
	md := snap.GetMetadata()
	cs := md.GetConfState()
	to := m.GetTo()
	if slices.Contains(cs.GetVoters(), to) || slices.Contains(cs.GetLearners(), to) ||
		slices.Contains(cs.GetVotersOutgoing(), to) {
		return m
	}
	ncs := cloneConf(cs)
	ncs.Learners = append(ncs.Learners, to)
	nmd := proto.Clone(md).(*raftpb.SnapshotMetadata)
	nmd.ConfState = ncs
	m.Snapshot = &raftpb.Snapshot{Data: snap.GetData(), Metadata: nmd} // m is ours after Ready
	return m
}

// match pairs the proposals accepted since the last Ready with their entries: each accepted
// proposal appended exactly one entry, the newest ones last. A proposal whose entry is not
// there (or is of another term: leadership changed in between) fails.
func (g *group) match(ents []*raftpb.Entry) []*waiter {
	k := len(g.proposed)
	if k == 0 {
		return nil
	}
	var ok []*waiter
	for i, w := range g.proposed {
		j := len(ents) - k + i
		if j < 0 || ents[j].GetTerm() != w.term {
			w.fail(g.notLeader())
			continue
		}
		w.index = ents[j].GetIndex()
		ok = append(ok, w)
	}
	g.proposed = g.proposed[:0]
	return ok
}

// write stores a Ready's snapshot, entries and hard state (not synced).
func (g *group) write(rd raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := g.st.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("replica: group %v: apply snapshot: %w", g.id, err)
		}
	}
	if len(rd.Entries) > 0 {
		if err := g.st.Append(rd.Entries); err != nil {
			return fmt.Errorf("replica: group %v: append: %w", g.id, err)
		}
	}
	if rd.HardState != nil && !raft.IsEmptyHardState(rd.HardState) {
		if err := g.st.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("replica: group %v: hard state: %w", g.id, err)
		}
	}
	return nil
}

// restore takes an installed snapshot's membership and hands it to the state machine.
func (g *group) restore(snap *raftpb.Snapshot) {
	md := snap.GetMetadata()
	g.conf = cloneConf(md.GetConfState())
	g.applied = md.GetIndex()
	g.failAll(g.notLeader()) // what was pending here is decided elsewhere
	g.sm.Restore(snap)
}

// apply applies committed entries: membership changes on the RawNode, then every entry in
// order to the state machine; it answers this node's proposals and returns how many.
func (g *group) apply(ents []*raftpb.Entry) (uint64, error) {
	var batch []*raftpb.Entry
	var done []*waiter // committed proposals to answer once the state machine has them
	var rejected []*waiter
	flush := func() {
		if len(batch) > 0 {
			g.sm.Apply(batch)
			batch = nil
		}
		for _, w := range done {
			w.fail(nil)
		}
		for _, w := range rejected {
			w.fail(ErrConfChangeRejected)
		}
		done, rejected = done[:0], rejected[:0]
	}
	var n uint64
	for _, ent := range ents {
		idx := ent.GetIndex()
		if idx <= g.applied {
			continue
		}
		w := g.pending[idx]
		if w != nil {
			delete(g.pending, idx)
			if w.term != ent.GetTerm() {
				w.fail(g.notLeader())
				w = nil
			}
		}
		switch ent.GetType() {
		case raftpb.EntryNormal:
			if w != nil && w.conf {
				// raft replaced a refused membership change with an empty entry.
				rejected = append(rejected, w)
			} else if w != nil {
				done = append(done, w)
				n++
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			cc, err := decodeConf(ent)
			if err != nil {
				return n, fmt.Errorf("replica: group %v: conf change at %d: %w", g.id, idx, err)
			}
			flush()
			g.conf = cloneConf(g.rn.ApplyConfChange(cc))
			if s, ok := g.st.(ConfStateSaver); ok {
				if err := s.SaveConfState(idx, cloneConf(g.conf)); err != nil {
					return n, fmt.Errorf("replica: group %v: save conf state at %d: %w", g.id, idx, err)
				}
			}
			if w != nil {
				done = append(done, w)
			}
		}
		batch = append(batch, ent)
		g.applied = idx
	}
	flush()
	return n, nil
}

func decodeConf(ent *raftpb.Entry) (raftpb.ConfChangeI, error) {
	if ent.GetType() == raftpb.EntryConfChange {
		var c raftpb.ConfChange
		if err := proto.Unmarshal(ent.GetData(), &c); err != nil {
			return nil, err
		}
		return &c, nil
	}
	var c raftpb.ConfChangeV2
	if err := proto.Unmarshal(ent.GetData(), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// checkLeader reports a leader/term change to the state machine and fails the proposals a
// change leaves undecidable here: every one not of the current term of a node that leads.
func (g *group) checkLeader() {
	st := g.rn.BasicStatus()
	lead, term := st.Lead, st.GetTerm()
	if lead == g.lead && term == g.term {
		return
	}
	g.lead, g.term = lead, term
	leader := st.RaftState == raft.StateLeader
	for idx, w := range g.pending {
		if !leader || w.term != term {
			w.fail(g.notLeader())
			delete(g.pending, idx)
		}
	}
	g.sm.LeaderChanged(lead, term)
}

func (g *group) notLeader() error {
	st := g.rn.BasicStatus()
	return &NotLeaderError{Leader: st.Lead, Term: st.GetTerm()}
}

func (g *group) failAll(err error) {
	for _, w := range g.proposed {
		w.fail(err)
	}
	g.proposed = nil
	for idx, w := range g.pending {
		w.fail(err)
		delete(g.pending, idx)
	}
}
