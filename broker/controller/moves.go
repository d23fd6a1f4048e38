package controller

// Replica moves (issue #16 item 3): replica reassignments (Kafka's AlterPartitionReassignments
// and ListPartitionReassignments), preferred-leader elections (ElectLeaders), the
// decommission of a broker and the replacement of replicas whose broker is gone. doc.go
// ("Replica moves") describes the behaviour; nextMoveStep and pickReplacement are the
// decisions, I/O-free; the rest carries them out.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// PartitionEngine is what the controller needs of the partition raft engine
// (*replica.Engine): the raft view of the groups this broker runs, membership changes and
// leadership transfers of the groups it leads.
type PartitionEngine interface {
	Status(id replica.GroupID) (replica.GroupStatus, bool)
	ChangeConf(ctx context.Context, id replica.GroupID, cc *raftpb.ConfChangeV2) error
	TransferLeader(id replica.GroupID, to uint64)
}

// catchUpLag is how many entries behind the commit index a learner may be and still be
// promoted to voter (raft then sends it the rest as to any follower).
const catchUpLag = 64

// stepKind is what a partition's leader does next to move its raft group to a target.
type stepKind int

const (
	stepWait       stepKind = iota // nothing to do now (not the leader, or a learner catching up)
	stepAddLearner                 // add id as a learner
	stepPromote                    // promote learner id to voter
	stepRemove                     // remove id from the group
	stepTransfer                   // hand the leadership to id (the leader itself leaves)
	stepComplete                   // the voters are the target: record the move as done
)

func (k stepKind) String() string {
	return [...]string{"wait", "add-learner", "promote", "remove", "transfer-leader", "complete"}[k]
}

// moveStep is one step of a move.
type moveStep struct {
	kind stepKind
	id   uint64
}

// nextMoveStep decides the next membership change of a group moving to target, as seen by
// replica self (only its leader acts), one change at a time:
//
//  1. learners not in the target are removed (a cancelled or retargeted move);
//  2. target replicas not in the group are added as learners;
//  3. a learner of the target is promoted once it caught up (recently active, its log within
//     catchUpLag entries of the commit index); until then the move waits;
//  4. voters not in the target are removed, the leader last: when it is not in the target
//     it hands the leadership to a caught-up voter of the target (the first such, so the
//     preferred leader if it can) and the new leader goes on;
//  5. voters = target and no learners: the move is complete.
//
// Adding before removing keeps the group's size at least the target's throughout, so a
// move never leaves fewer replicas than the replication factor.
func nextMoveStep(st replica.GroupStatus, self uint64, target []uint64) moveStep {
	if st.Leader != self || self == 0 {
		return moveStep{}
	}
	for _, id := range st.Learners {
		if !slices.Contains(target, id) {
			return moveStep{stepRemove, id}
		}
	}
	for _, id := range target {
		if !slices.Contains(st.Voters, id) && !slices.Contains(st.Learners, id) {
			return moveStep{stepAddLearner, id}
		}
	}
	caughtUp := func(id uint64) bool {
		if id == self {
			return true
		}
		pr, ok := st.Progress[id]
		return ok && pr.RecentActive && pr.Match > 0 && pr.Match+catchUpLag >= st.Commit
	}
	for _, id := range target {
		if slices.Contains(st.Learners, id) {
			if caughtUp(id) {
				return moveStep{stepPromote, id}
			}
			return moveStep{}
		}
	}
	var extra []uint64
	for _, id := range st.Voters {
		if !slices.Contains(target, id) {
			extra = append(extra, id)
		}
	}
	if len(extra) == 0 {
		return moveStep{kind: stepComplete}
	}
	for _, id := range extra {
		if id != self {
			return moveStep{stepRemove, id}
		}
	}
	for _, id := range target {
		if caughtUp(id) {
			return moveStep{stepTransfer, id}
		}
	}
	return moveStep{}
}

// pickReplacement chooses the broker that takes a replica of a partition whose replicas are
// members: a live candidate that is not a member, preferring a rack none of the others is
// on, then the fewest replicas (load), then the candidates' order (by NodeId).
func pickReplacement(cands []candidate, members []uint64, racks map[uint64]string, load map[uint64]int) (candidate, bool) {
	used := map[string]bool{}
	for _, id := range members {
		if r, ok := racks[id]; ok {
			used[r] = true
		}
	}
	var best *candidate
	score := func(c candidate) (int, int) {
		r := 0
		if c.rack != "" && used[c.rack] {
			r = 1
		}
		return r, load[c.raftID]
	}
	for i := range cands {
		c := &cands[i]
		if slices.Contains(members, c.raftID) {
			continue
		}
		if best == nil {
			best = c
			continue
		}
		r1, l1 := score(*c)
		r2, l2 := score(*best)
		if cmp.Or(cmp.Compare(r1, r2), cmp.Compare(l1, l2)) < 0 {
			best = c
		}
	}
	if best == nil {
		return candidate{}, false
	}
	return *best, true
}

// --- the partition leader's side: carrying moves out ---

// moveLoop drives the reassignments of the partitions this broker leads, and on the quorum
// leader replaces replicas whose broker is gone. It runs on every applied change and every
// Config.MoveEvery.
func (c *Controller) moveLoop() {
	c.kickedLoop(c.cfg.MoveEvery, c.moveKick, func() {
		c.driveMoves()
		if c.isLeader() {
			c.replaceGone()
		}
	})
}

// kickedLoop runs do after every kick and every tick of every, until the controller closes.
func (c *Controller) kickedLoop(every time.Duration, kick <-chan struct{}, do func()) {
	t := c.clk.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-kick:
		case <-t.C():
		}
		do()
	}
}

// kick signals on ch (a channel of capacity 1) unless a signal is pending already.
func kick(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// kickMoves asks moveLoop to look at the moves now.
func (c *Controller) kickMoves() { kick(c.moveKick) }

// driveMoves takes one step of every reassignment in progress whose partition this broker
// leads.
func (c *Controller) driveMoves() {
	eng := c.cfg.Partitions
	if eng == nil {
		return
	}
	self := c.r.RaftID()
	for _, t := range c.r.Topics() {
		for p := range t.Moves {
			m := t.Moves[p]
			if !m.Moving() || !slices.Contains(t.members(p), self) {
				continue
			}
			gid := replica.GroupID{Topic: t.ID, Partition: int32(p)}
			st, ok := eng.Status(gid)
			if !ok || st.Leader != self {
				continue
			}
			c.moveStep(t.Name, gid, st, m.Target)
		}
	}
}

// moveStep carries out one step of a move.
func (c *Controller) moveStep(topic string, gid replica.GroupID, st replica.GroupStatus, target []uint64) {
	step := nextMoveStep(st, c.r.RaftID(), target)
	log := c.log.With("topic", topic, "partition", gid.Partition, "step", step.kind.String(), "replica", step.id, "target", target)
	ctx, cancel := c.opContext()
	defer cancel()
	var cc raftpb.ConfChangeType
	switch step.kind {
	case stepWait:
		return
	case stepAddLearner:
		cc = raftpb.ConfChangeAddLearnerNode
	case stepPromote:
		cc = raftpb.ConfChangeAddNode
	case stepRemove:
		cc = raftpb.ConfChangeRemoveNode
	case stepTransfer:
		log.Debug("replica move: handing the partition's leadership over (this replica leaves)")
		c.cfg.Partitions.TransferLeader(gid, step.id)
		return
	case stepComplete:
		resp, err := c.CompleteReassignment(ctx, &brokerop.CompleteReassignmentReq{Topic: topic, Partition: gid.Partition, Target: target})
		switch {
		case err != nil:
			log.Debug("replica move: completion not recorded yet", "err", err)
		case resp.ErrorCode != 0:
			log.Info("replica move: completion refused", "code", resp.ErrorCode, "msg", resp.ErrorMessage)
		default:
			log.Info("replica move: complete")
		}
		return
	}
	change := &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{{Type: cc.Enum(), NodeId: new(step.id)}}}
	if err := c.cfg.Partitions.ChangeConf(ctx, gid, change); err != nil {
		log.Debug("replica move: membership change not made yet", "err", err)
		return
	}
	log.Info("replica move: membership changed")
	c.kickMoves() // the next step at once
}

// --- the quorum leader's side ---

// replaceGone moves every replica whose broker incarnation is no longer registered (removed
// from the quorum, or came back wiped with a new raft id) to a live broker, through a
// reassignment: the partition returns to its replication factor. Leader only. It reads the
// state and proposes under adminMu, as a user's reassignment does, so a reassignment made
// meanwhile (a new preferred order, say) is not overwritten by a target computed before it.
func (c *Controller) replaceGone() {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	members := c.r.Brokers()
	registered := map[uint64]bool{}
	for _, m := range members {
		registered[m.RaftID] = true
	}
	ts := c.r.Topics()
	var items []metadata.ReassignPartition
	var cands []candidate
	var load map[uint64]int
	racks := map[uint64]string{}
	for _, t := range ts {
		for p := range t.Replicas {
			base := t.Replicas[p]
			if m := t.move(p); m.Moving() {
				base = m.Target
			}
			if !slices.ContainsFunc(base, func(id uint64) bool { return !registered[id] }) {
				continue
			}
			if cands == nil {
				cands, load = c.liveCandidates(), replicaLoad(ts)
				for _, m := range members {
					racks[m.RaftID] = m.Rack
				}
			}
			target := slices.Clone(base)
			taken := t.members(p)
			ok := true
			for i, id := range target {
				if registered[id] {
					continue
				}
				to, found := pickReplacement(cands, append(slices.Clone(taken), target...), racks, load)
				if !found {
					ok = false
					break
				}
				target[i] = to.raftID
				load[to.raftID]++
			}
			if ok {
				items = append(items, metadata.ReassignPartition{Topic: t.Name, Partition: int32(p), Target: target})
			}
		}
	}
	if len(items) == 0 {
		return
	}
	ctx, cancel := c.opContext()
	defer cancel()
	res, err := c.r.Do(ctx, MetaCommand{&metadata.AlterReassignments{Partitions: items}})
	if err != nil {
		c.log.Debug("replacing replicas of gone brokers", "err", err)
		return
	}
	if r, ok := res.(*metadata.AlterReassignmentsResult); ok {
		for i, m := range r.Partitions {
			if m.Code == 0 {
				c.log.Info("a replica's broker is gone: moving the replica", "topic", items[i].Topic, "partition", items[i].Partition, "target", items[i].Target)
			}
		}
	}
}

// replicaLoad counts, per raft id, the partitions whose raft group it is (or will be) in.
func replicaLoad(ts []Topic) map[uint64]int {
	load := map[uint64]int{}
	for _, t := range ts {
		for p := range t.Replicas {
			ids := t.members(p)
			for _, id := range t.move(p).Target {
				if !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
			for _, id := range ids {
				load[id]++
			}
		}
	}
	return load
}

// kafkaIDs maps registered raft ids to Kafka ids and back.
func (c *Controller) kafkaIDs() (toKafka map[uint64]int32, toRaft map[int32]uint64) {
	toKafka, toRaft = map[uint64]int32{}, map[int32]uint64{}
	for _, m := range c.r.Brokers() {
		toKafka[m.RaftID], toRaft[m.KafkaID] = m.KafkaID, m.RaftID
	}
	return toKafka, toRaft
}

// kafkaList maps raft ids to Kafka ids, leaving out the unregistered ones.
func kafkaList(ids []uint64, toKafka map[uint64]int32) []int32 {
	out := []int32{}
	for _, id := range ids {
		if k, ok := toKafka[id]; ok {
			out = append(out, k)
		}
	}
	return out
}

// AlterReassignments starts, changes or cancels replica reassignments (Kafka's
// AlterPartitionReassignments), on the leader.
func (c *Controller) AlterReassignments(ctx context.Context, req *brokerop.AlterReassignmentsReq) (*brokerop.AlterReassignmentsResp, error) {
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.AlterReassignmentsReq) (*brokerop.AlterReassignmentsResp, error) {
		return adminOp(c, ctx, req, c.alterReassignmentsLocal)
	}, brokerop.Service.AlterReassignments)
}

func (c *Controller) alterReassignmentsLocal(ctx context.Context, req *brokerop.AlterReassignmentsReq) (*brokerop.AlterReassignmentsResp, error) {
	_, toRaft := c.kafkaIDs()
	resp := &brokerop.AlterReassignmentsResp{Topics: make([]brokerop.ReassignTopicResp, len(req.Topics))}
	type at struct{ t, p int }
	var items []metadata.ReassignPartition
	var where []at
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		rt.Name = t.Name
		rt.Partitions = make([]brokerop.ReassignPartitionResp, len(t.Partitions))
		for j, p := range t.Partitions {
			rp := &rt.Partitions[j]
			rp.Partition = p.Partition
			it := metadata.ReassignPartition{Topic: t.Name, Partition: p.Partition}
			if !p.Cancel {
				if len(p.Replicas) == 0 {
					rp.ErrorCode, rp.ErrorMessage = kerr.InvalidReplicaAssignment.Code, "The manual partition assignment includes an empty replica list."
					continue
				}
				for _, k := range p.Replicas {
					id, ok := toRaft[k]
					if !ok {
						rp.ErrorCode = kerr.InvalidReplicaAssignment.Code
						rp.ErrorMessage = fmt.Sprintf("The manual partition assignment includes broker %d, but no such broker is registered.", k)
						break
					}
					it.Target = append(it.Target, id)
				}
				if rp.ErrorCode != 0 {
					continue
				}
			}
			items = append(items, it)
			where = append(where, at{i, j})
		}
	}
	if len(items) == 0 {
		return resp, nil
	}
	res, err := c.r.Do(ctx, MetaCommand{&metadata.AlterReassignments{Partitions: items}})
	if err != nil {
		return nil, err
	}
	r, ok := res.(*metadata.AlterReassignmentsResult)
	if !ok || len(r.Partitions) != len(items) {
		return nil, fmt.Errorf("controller: alter reassignments: unexpected result %T", res)
	}
	for k, w := range where {
		rp := &resp.Topics[w.t].Partitions[w.p]
		rp.ErrorCode, rp.ErrorMessage = r.Partitions[k].Code, r.Partitions[k].Message
	}
	c.kickMoves()
	return resp, nil
}

// ListReassignments lists the reassignments in progress (Kafka's ListPartitionReassignments),
// from the leader after a read barrier.
func (c *Controller) ListReassignments(ctx context.Context, req *brokerop.ListReassignmentsReq) (*brokerop.ListReassignmentsResp, error) {
	return routeAfterBarrier(c, ctx, req, func(ctx context.Context, req *brokerop.ListReassignmentsReq) (*brokerop.ListReassignmentsResp, error) {
		toKafka, _ := c.kafkaIDs()
		wanted := map[TopicPartition]bool{}
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				wanted[TopicPartition{t.Name, p}] = true
			}
		}
		resp := &brokerop.ListReassignmentsResp{}
		for _, t := range c.r.Topics() {
			var lt *brokerop.ListedReassignTopic
			for p := range t.Moves {
				mp := metadata.Partition{Replicas: t.Replicas[p], Target: t.Moves[p].Target, Adding: t.Moves[p].Adding}
				if !mp.Moving() || !req.All && !wanted[TopicPartition{t.Name, int32(p)}] {
					continue
				}
				reps, adding, removing := mp.Reassignment()
				if lt == nil {
					resp.Topics = append(resp.Topics, brokerop.ListedReassignTopic{Name: t.Name})
					lt = &resp.Topics[len(resp.Topics)-1]
				}
				lt.Partitions = append(lt.Partitions, brokerop.ListedReassignment{Partition: int32(p),
					Replicas: kafkaList(reps, toKafka), Adding: kafkaList(adding, toKafka), Removing: kafkaList(removing, toKafka)})
			}
		}
		return resp, nil
	}, brokerop.Service.ListReassignments)
}

// CompleteReassignment records a move its partition's leader finished (brokers only).
func (c *Controller) CompleteReassignment(ctx context.Context, req *brokerop.CompleteReassignmentReq) (*brokerop.CompleteReassignmentResp, error) {
	if p := brokermesh.PeerOf(ctx); p != "" && !c.forwarded(ctx) {
		return &brokerop.CompleteReassignmentResp{ErrorCode: kerr.ClusterAuthorizationFailed.Code,
			ErrorMessage: fmt.Sprintf("node %s is not a broker of this cluster", p)}, nil
	}
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.CompleteReassignmentReq) (*brokerop.CompleteReassignmentResp, error) {
		res, err := c.r.Do(ctx, MetaCommand{&metadata.CompleteReassignment{Topic: req.Topic, Partition: req.Partition, Target: req.Target}})
		if err != nil {
			return nil, err
		}
		r, ok := res.(*metadata.CompleteReassignmentResult)
		if !ok {
			return nil, fmt.Errorf("controller: complete reassignment: unexpected result %T", res)
		}
		return &brokerop.CompleteReassignmentResp{ErrorCode: r.Code, ErrorMessage: r.Message}, nil
	}, brokerop.Service.CompleteReassignment)
}

// --- preferred leaders ---

// Kafka's election types (ElectLeaders).
const (
	electPreferred = 0
	electUnclean   = 1
)

// ElectLeaders moves partitions' leadership to their preferred replicas (Kafka's ElectLeaders),
// on the leader. An unclean election is never needed and never done: raft elects only a
// replica holding every committed entry, so a partition without a leader waits for such a
// replica (ELIGIBLE_LEADERS_NOT_AVAILABLE); one with a leader answers ELECTION_NOT_NEEDED.
func (c *Controller) ElectLeaders(ctx context.Context, req *brokerop.ElectLeadersReq) (*brokerop.ElectLeadersResp, error) {
	return routeAfterBarrier(c, ctx, req, func(ctx context.Context, req *brokerop.ElectLeadersReq) (*brokerop.ElectLeadersResp, error) {
		return c.electLocal(ctx, req), nil
	}, brokerop.Service.ElectLeaders)
}

// election is one partition's ElectLeaders answer.
type election struct {
	code int16
	msg  string
}

func (c *Controller) electLocal(ctx context.Context, req *brokerop.ElectLeadersReq) *brokerop.ElectLeadersResp {
	ts := c.r.Topics()
	byName := map[string]*Topic{}
	for i := range ts {
		byName[ts[i].Name] = &ts[i]
	}
	type part struct {
		topic string
		p     int32
	}
	var asked []part
	if req.All {
		for _, t := range ts {
			for p := range t.Partitions {
				asked = append(asked, part{t.Name, p})
			}
		}
	} else {
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				asked = append(asked, part{t.Name, p})
			}
		}
	}
	live := c.sampleActive()
	out := make([]election, len(asked))
	var wg sync.WaitGroup
	for i, a := range asked {
		t := byName[a.topic]
		switch {
		case t == nil || a.p < 0 || a.p >= t.Partitions:
			out[i] = election{kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("Partition %s-%d does not exist.", a.topic, a.p)}
		case req.ElectionType != electPreferred && req.ElectionType != electUnclean:
			out[i] = election{kerr.InvalidRequest.Code, fmt.Sprintf("Unknown election type %d.", req.ElectionType)}
		case t.Replicas == nil:
			out[i] = election{kerr.ElectionNotNeeded.Code, "A single-owner partition is always led by its owner."}
		case req.ElectionType == electUnclean:
			if ld := t.Leaders[a.p].Leader; ld != 0 && live[ld] {
				out[i] = election{kerr.ElectionNotNeeded.Code, "The partition has a leader."}
			} else {
				out[i] = election{kerr.EligibleLeadersNotAvailable.Code, "Replicated partitions elect only a replica holding every committed record (raft); no unclean election is done."}
			}
		default:
			pref := t.Replicas[a.p][0]
			if m := t.move(int(a.p)); m.Moving() {
				pref = m.Target[0]
			}
			ld := t.Leaders[a.p]
			switch {
			case ld.Leader == pref && ld.Leader != 0:
				out[i] = election{kerr.ElectionNotNeeded.Code, "The preferred replica leads already."}
			case !live[pref] || !slices.Contains(ld.ISR, pref):
				out[i] = election{kerr.PreferredLeaderNotAvailable.Code, fmt.Sprintf("The preferred replica of %s-%d is not live and in sync.", a.topic, a.p)}
			default:
				wg.Go(func() { out[i] = c.transferTo(ctx, t, a.p, ld.Leader, pref) })
			}
		}
	}
	wg.Wait()
	resp := &brokerop.ElectLeadersResp{}
	idx := map[string]int{}
	for i, a := range asked {
		if req.All && out[i].code == kerr.ElectionNotNeeded.Code {
			continue // Kafka lists only the partitions an election was attempted for
		}
		k, ok := idx[a.topic]
		if !ok {
			k = len(resp.Topics)
			idx[a.topic] = k
			resp.Topics = append(resp.Topics, brokerop.ReassignTopicResp{Name: a.topic})
		}
		resp.Topics[k].Partitions = append(resp.Topics[k].Partitions, brokerop.ReassignPartitionResp{Partition: a.p, ErrorCode: out[i].code, ErrorMessage: out[i].msg})
	}
	return resp
}

// transferTo asks the broker leading partition p of t (raft id leader) to hand the
// leadership to to, and waits (bounded) until the state records to as leader.
func (c *Controller) transferTo(ctx context.Context, t *Topic, p int32, leader, to uint64) election {
	var m *Member
	for _, b := range c.r.Brokers() {
		if b.RaftID == leader {
			m = &b
		}
	}
	if m == nil {
		return election{kerr.PreferredLeaderNotAvailable.Code, "The partition's leader is not known."}
	}
	req := &brokerop.TransferPartitionLeaderReq{Topic: t.Name, Partition: p, To: to}
	var resp *brokerop.TransferPartitionLeaderResp
	var err error
	if m.RaftID == c.r.RaftID() {
		resp, err = c.transferLocal(ctx, req) // ctx may name the gateway that asked: no broker check
	} else {
		resp, err = c.callerOf(*m).TransferPartitionLeader(ctx, req)
	}
	switch {
	case err != nil:
		return election{kerr.RequestTimedOut.Code, err.Error()}
	case resp.ErrorCode != 0:
		return election{resp.ErrorCode, resp.ErrorMessage}
	}
	// The new leader reports itself (UpdatePartition); answer once the state has it, so a
	// client's next Metadata shows it.
	deadline := c.clk.Now().Add(c.cfg.LeaderWait)
	for c.clk.Now().Before(deadline) {
		for _, x := range c.r.Topics() {
			if x.Name == t.Name && x.ID == t.ID && int(p) < len(x.Leaders) && x.Leaders[p].Leader == to {
				return election{}
			}
		}
		if !c.sleep(ctx, c.cfg.Poll) {
			break
		}
	}
	return election{} // it leads (the transfer answered so); its report is on its way
}

// sleep waits d (or until ctx ends or the controller closes); false if it did not wait d.
func (c *Controller) sleep(ctx context.Context, d time.Duration) bool {
	t := c.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	case <-c.quit:
		return false
	}
}

// TransferPartitionLeader hands a replicated partition this broker leads to replica To and
// answers once To leads it (brokers only; never forwarded).
func (c *Controller) TransferPartitionLeader(ctx context.Context, req *brokerop.TransferPartitionLeaderReq) (*brokerop.TransferPartitionLeaderResp, error) {
	fail := func(code int16, format string, args ...any) (*brokerop.TransferPartitionLeaderResp, error) {
		return &brokerop.TransferPartitionLeaderResp{ErrorCode: code, ErrorMessage: fmt.Sprintf(format, args...)}, nil
	}
	if p := brokermesh.PeerOf(ctx); p != "" && !c.forwarded(ctx) {
		return fail(kerr.ClusterAuthorizationFailed.Code, "node %s is not a broker of this cluster", p)
	}
	return c.transferLocal(ctx, req)
}

// transferLocal is TransferPartitionLeader on this broker.
func (c *Controller) transferLocal(ctx context.Context, req *brokerop.TransferPartitionLeaderReq) (*brokerop.TransferPartitionLeaderResp, error) {
	fail := func(code int16, format string, args ...any) (*brokerop.TransferPartitionLeaderResp, error) {
		return &brokerop.TransferPartitionLeaderResp{ErrorCode: code, ErrorMessage: fmt.Sprintf(format, args...)}, nil
	}
	eng := c.cfg.Partitions
	if eng == nil {
		return fail(kerr.NotLeaderForPartition.Code, "this broker runs no partition raft groups")
	}
	var gid replica.GroupID
	found := false
	for _, t := range c.r.Topics() {
		if t.Name == req.Topic && req.Partition >= 0 && req.Partition < t.Partitions {
			gid, found = replica.GroupID{Topic: t.ID, Partition: req.Partition}, true
		}
	}
	if !found {
		return fail(kerr.UnknownTopicOrPartition.Code, "Partition %s-%d does not exist.", req.Topic, req.Partition)
	}
	self := c.r.RaftID()
	// raft abandons a transfer after an election timeout (the target lagging): ask again
	// every second until To leads or the deadline.
	deadline := c.clk.Now().Add(3 * c.cfg.LeaderWait)
	var asked time.Time
	for {
		st, ok := eng.Status(gid)
		switch {
		case ok && st.Leader == req.To:
			return &brokerop.TransferPartitionLeaderResp{}, nil
		case !ok || st.Leader != self:
			return fail(kerr.NotLeaderForPartition.Code, "this broker does not lead %s-%d (leader %d)", req.Topic, req.Partition, st.Leader)
		case !slices.Contains(st.Voters, req.To):
			return fail(kerr.PreferredLeaderNotAvailable.Code, "replica %d is not a voter of %s-%d", req.To, req.Topic, req.Partition)
		}
		now := c.clk.Now()
		if !now.Before(deadline) {
			return fail(kerr.RequestTimedOut.Code, "replica %d did not take over %s-%d in time", req.To, req.Topic, req.Partition)
		}
		if now.Sub(asked) >= time.Second {
			eng.TransferLeader(gid, req.To)
			asked = now
		}
		if !c.sleep(ctx, c.cfg.Poll) {
			return nil, cmp.Or(ctx.Err(), error(ErrNoController))
		}
	}
}

// --- decommission ---

// Decommission drains a broker: every replica it holds is moved to another live broker.
func (c *Controller) Decommission(ctx context.Context, id key.PublicKey) error {
	return c.admin(ctx, brokerop.QuorumDecommission, id)
}

// decommissionLocal records a reassignment of every replicated partition the broker is a
// replica of (or is moving to), replacing it with a live broker that is not a replica yet.
// Leader only.
func (c *Controller) decommissionLocal(ctx context.Context, id key.PublicKey) error {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	if err := c.r.ReadBarrier(ctx); err != nil {
		return err
	}
	var gone *Member
	members := c.r.Brokers()
	racks := map[uint64]string{}
	for _, b := range members {
		racks[b.RaftID] = b.Rack
		if b.NodeID == id {
			gone = &b
		}
	}
	if gone == nil {
		return &adminError{kerr.BrokerNotAvailable.Code, fmt.Sprintf("broker %s is not registered", id)}
	}
	cands := slices.DeleteFunc(c.liveCandidates(), func(x candidate) bool { return x.raftID == gone.RaftID })
	ts := c.r.Topics()
	load := replicaLoad(ts)
	var items []metadata.ReassignPartition
	var stuck []string
	for _, t := range ts {
		for p := range t.Replicas {
			base := t.Replicas[p]
			if m := t.move(p); m.Moving() {
				base = m.Target
			}
			i := slices.Index(base, gone.RaftID)
			if i < 0 {
				continue
			}
			to, ok := pickReplacement(cands, append(t.members(p), base...), racks, load)
			if !ok {
				stuck = append(stuck, fmt.Sprintf("%s-%d", t.Name, p))
				continue
			}
			target := slices.Clone(base)
			target[i] = to.raftID
			load[to.raftID]++
			items = append(items, metadata.ReassignPartition{Topic: t.Name, Partition: int32(p), Target: target})
		}
	}
	if len(stuck) > 0 {
		return &adminError{kerr.InvalidReplicationFactor.Code, fmt.Sprintf("no other live broker can take the replicas of %s on %d partition(s) (%s): add a broker first",
			id, len(stuck), strings.Join(stuck[:min(len(stuck), 5)], ", "))}
	}
	if len(items) == 0 {
		return nil
	}
	res, err := c.r.Do(ctx, MetaCommand{&metadata.AlterReassignments{Partitions: items}})
	if err != nil {
		return err
	}
	if r, ok := res.(*metadata.AlterReassignmentsResult); ok {
		for i, m := range r.Partitions {
			if m.Code != 0 {
				return &adminError{m.Code, fmt.Sprintf("%s-%d: %s", items[i].Topic, items[i].Partition, m.Message)}
			}
		}
	}
	c.log.Info("decommissioning a broker: its replicas move", "node", id.String(), "raft_id", gone.RaftID, "partitions", len(items))
	c.kickMoves()
	return nil
}

// replicaCounts is, per raft id, how many partitions' raft groups it is in (QuorumStatus).
func (c *Controller) replicaCounts() map[uint64]int {
	out := map[uint64]int{}
	for _, t := range c.r.Topics() {
		for p := range t.Replicas {
			for _, id := range t.members(p) {
				out[id]++
			}
		}
	}
	return out
}
