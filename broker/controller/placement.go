package controller

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Placement of partitions (issue #16). The leader decides, when partitions are created, the
// replication factor and the replicas; the metadata state records them (see the package doc).

// minISRConfig is the topic config that sets how many in-sync replicas an acks=all produce
// needs (the broker enforces it; the controller checks it against the replication factor).
const minISRConfig = "min.insync.replicas"

// candidate is a live broker that may be given replicas.
type candidate struct {
	raftID uint64
	node   key.PublicKey
	rack   string
}

// liveCandidates is the live registered brokers (as liveBrokers) with their raft ids and
// racks, sorted by NodeId text.
func (c *Controller) liveCandidates() []candidate {
	live := c.sampleActive()
	var out []candidate
	for _, m := range c.r.Brokers() {
		if live[m.RaftID] {
			out = append(out, candidate{m.RaftID, m.NodeID, m.Rack})
		}
	}
	if len(out) == 0 {
		out = append(out, candidate{c.r.RaftID(), c.cfg.Self.ID, c.cfg.Rack})
	}
	slices.SortFunc(out, func(a, b candidate) int { return strings.Compare(a.node.String(), b.node.String()) })
	return out
}

// defaultRF is the replication factor of a topic created with -1 (or auto-created) when live
// brokers are live: Config.DefaultReplicationFactor if set, else 3 with at least three live
// brokers and the live count below that.
func (c *Controller) defaultRF(live int) int {
	if c.cfg.DefaultReplicationFactor > 0 {
		return c.cfg.DefaultReplicationFactor
	}
	return max(1, min(3, live))
}

// placeTopic is the Registry's placer: the owners (and, for a replicated topic, the replicas)
// of partitions [from, to) of topic. The replication factor is the topic's own when it exists
// (CreatePartitions keeps it), the one a CreateTopics in progress asked for, or else the
// default (auto-creation; clamped to the live brokers). Called on the leader, under the
// admin lock.
func (c *Controller) placeTopic(topic string, from, to int32) ([]key.PublicKey, [][]uint64) {
	cands := c.liveCandidates()
	rf := 0
	for _, t := range c.r.Topics() {
		if t.Name == topic {
			rf = t.ReplicationFactor()
		}
	}
	if rf == 0 {
		c.mu.Lock()
		rf = c.pendingRF[topic]
		c.mu.Unlock()
	}
	if rf == 0 {
		rf = min(c.defaultRF(len(cands)), len(cands))
	}
	if rf > len(cands) {
		// Fewer live brokers than when the factor was checked (or than the topic has): the
		// registered ones that are not live fill in, so the factor stays what was decided.
		for _, m := range c.members() {
			if !slices.ContainsFunc(cands, func(x candidate) bool { return x.raftID == m.RaftID }) {
				cands = append(cands, candidate{m.RaftID, m.NodeID, m.Rack})
			}
		}
		slices.SortFunc(cands, func(a, b candidate) int { return strings.Compare(a.node.String(), b.node.String()) })
	}
	return placeReplicas(topic, cands, from, to, rf)
}

// placeOwners picks the owners of partitions [from, to) of a single-owner topic among the
// live registered brokers: sorted by NodeId, round robin from a hash of the topic name.
func (c *Controller) placeOwners(topic string, from, to int32) []key.PublicKey {
	owners, _ := placeReplicas(topic, c.liveCandidates(), from, to, 1)
	return owners
}

// placeReplicas places partitions [from, to) of topic on cands (sorted by NodeId):
//
//   - rf ≤ 1: one owner per partition, round robin over cands starting at a hash of the
//     topic name (as before replication);
//   - rf ≥ 2: the first replica (the preferred leader, and the partition's owner) goes round
//     robin the same way, so leaders spread evenly; the followers are the next brokers after
//     it, shifted by how many times the partitions wrapped around the brokers (so follower
//     sets vary too). When brokers have rack labels, the round robin runs over a list that
//     alternates racks, and a follower is taken from a rack no replica of the partition is
//     on yet while there is one (Kafka's rack-aware assignment).
//
// rf is capped at len(cands) (the caller checked it).
func placeReplicas(topic string, cands []candidate, from, to int32, rf int) ([]key.PublicKey, [][]uint64) {
	n := len(cands)
	h := fnv.New32a()
	h.Write([]byte(topic))
	start := int(h.Sum32() % uint32(n))
	owners := make([]key.PublicKey, 0, to-from)
	if rf <= 1 {
		for i := from; i < to; i++ {
			owners = append(owners, cands[(start+int(i))%n].node)
		}
		return owners, nil
	}
	rf = min(rf, n)
	order, racks := rackAlternating(cands)
	reps := make([][]uint64, 0, to-from)
	for i := from; i < to; i++ {
		lead := (start + int(i)) % n
		r := []uint64{order[lead].raftID}
		used := map[string]bool{order[lead].rack: true}
		shift := (int(i) / n) % (n - 1)
		next := func(k int) candidate { return order[(lead+1+(shift+k)%(n-1))%n] }
		for pass := 0; pass < 2 && len(r) < rf; pass++ {
			for k := 0; k < n-1 && len(r) < rf; k++ {
				cand := next(k)
				if slices.Contains(r, cand.raftID) || pass == 0 && racks && used[cand.rack] {
					continue
				}
				r = append(r, cand.raftID)
				used[cand.rack] = true
			}
		}
		owners = append(owners, order[lead].node)
		reps = append(reps, r)
	}
	return owners, reps
}

// rackAlternating orders cands so that consecutive brokers are on different racks where
// possible: racks sorted by name, brokers of each rack in cands' order, taken one per rack
// in turn. It reports whether any broker has a rack label (else cands is returned as is).
func rackAlternating(cands []candidate) ([]candidate, bool) {
	byRack := map[string][]candidate{}
	for _, c := range cands {
		byRack[c.rack] = append(byRack[c.rack], c)
	}
	if len(byRack) == 1 && cands[0].rack == "" {
		return cands, false
	}
	names := slices.Sorted(maps.Keys(byRack))
	out := make([]candidate, 0, len(cands))
	for round := 0; len(out) < len(cands); round++ {
		for _, r := range names {
			if round < len(byRack[r]) {
				out = append(out, byRack[r][round])
			}
		}
	}
	return out, true
}

// replicationFactorError is Kafka's INVALID_REPLICATION_FACTOR message for rf with live
// brokers.
func replicationFactorError(rf, live int) string {
	return fmt.Sprintf("Unable to replicate the partition %d time(s): The target replication factor of %d cannot be reached because only %d broker(s) are live.", rf, rf, live)
}

// checkMinISR checks a topic's min.insync.replicas (if set) against its replication factor:
// it must be 1..rf. It returns Kafka's message, or "".
func checkMinISR(cfgs map[string]string, rf int) string {
	v, ok := cfgs[minISRConfig]
	if !ok {
		return ""
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > rf {
		return fmt.Sprintf("Invalid value %s for configuration %s: must be between 1 and the topic's replication factor %d.", v, minISRConfig, rf)
	}
	return ""
}

// createTopicsLocal creates topics on the leader: it decides each topic's replication factor
// (-1: the default), answers INVALID_REPLICATION_FACTOR when it exceeds the live brokers and
// INVALID_CONFIG for a min.insync.replicas outside 1..rf (after the broker's own checks,
// whose codes come first), and lets the broker's admin code create the others; their
// placement is decided by placeTopic when the registry proposes them.
func (c *Controller) createTopicsLocal(ctx context.Context, req *brokerop.CreateTopicsReq) (*brokerop.CreateTopicsResp, error) {
	return adminOp(c, ctx, req, func(ctx context.Context, req *brokerop.CreateTopicsReq) (*brokerop.CreateTopicsResp, error) {
		live := len(c.liveCandidates())
		rfs := make([]int, len(req.Topics))
		refused := map[int]string{}
		ok := &brokerop.CreateTopicsReq{ValidateOnly: req.ValidateOnly}
		bad := &brokerop.CreateTopicsReq{ValidateOnly: true}
		var okIdx, badIdx []int
		for i, t := range req.Topics {
			rf := int(t.ReplicationFactor)
			if rf == -1 {
				rf = c.defaultRF(live)
			}
			bt := t
			if rf >= 1 {
				bt.ReplicationFactor = -1 // the broker's code places nothing; rf is ours
			}
			rfs[i] = rf
			switch {
			case rf > live:
				refused[i] = replicationFactorError(rf, live)
			case rf >= 1 && checkMinISR(t.Configs, rf) != "":
				refused[i] = checkMinISR(t.Configs, rf)
			}
			if _, no := refused[i]; no {
				bad.Topics, badIdx = append(bad.Topics, bt), append(badIdx, i)
			} else {
				ok.Topics, okIdx = append(ok.Topics, bt), append(okIdx, i)
			}
		}
		resp := &brokerop.CreateTopicsResp{Topics: make([]brokerop.CreateTopicResp, len(req.Topics))}
		if len(bad.Topics) > 0 {
			// The broker's checks (names, duplicates, existing topics, partitions) come first,
			// as in Kafka.
			r, err := c.b.CreateTopics(ctx, bad)
			if err != nil {
				return nil, err
			}
			for j, i := range badIdx {
				resp.Topics[i] = r.Topics[j]
				if r.Topics[j].ErrorCode == 0 {
					code := kerr.InvalidReplicationFactor.Code
					if rfs[i] <= live {
						code = kerr.InvalidConfig.Code
					}
					resp.Topics[i] = brokerop.CreateTopicResp{Name: req.Topics[i].Name, ErrorCode: code, ErrorMessage: refused[i],
						NumPartitions: -1, ReplicationFactor: -1}
				}
			}
		}
		if len(ok.Topics) > 0 {
			c.mu.Lock()
			c.pendingRF = map[string]int{}
			for j, i := range okIdx {
				c.pendingRF[ok.Topics[j].Name] = rfs[i]
			}
			c.mu.Unlock()
			r, err := c.b.CreateTopics(ctx, ok)
			c.mu.Lock()
			c.pendingRF = nil
			c.mu.Unlock()
			if err != nil {
				return nil, err
			}
			for j, i := range okIdx {
				resp.Topics[i] = r.Topics[j]
				if r.Topics[j].ErrorCode == 0 && rfs[i] >= 1 {
					resp.Topics[i].ReplicationFactor = int16(rfs[i])
				}
			}
		}
		return resp, nil
	})
}

// createPartitionsLocal grows topics on the leader: a replicated topic keeps its replication
// factor, which must not exceed the live brokers (INVALID_REPLICATION_FACTOR).
func (c *Controller) createPartitionsLocal(ctx context.Context, req *brokerop.CreatePartitionsReq) (*brokerop.CreatePartitionsResp, error) {
	return adminOp(c, ctx, req, func(ctx context.Context, req *brokerop.CreatePartitionsReq) (*brokerop.CreatePartitionsResp, error) {
		live := len(c.liveCandidates())
		rfOf := map[string]int{}
		for _, t := range c.r.Topics() {
			rfOf[t.Name] = t.ReplicationFactor()
		}
		ok := &brokerop.CreatePartitionsReq{ValidateOnly: req.ValidateOnly}
		var okIdx []int
		resp := &brokerop.CreatePartitionsResp{Topics: make([]brokerop.CreatePartitionsTopicResp, len(req.Topics))}
		for i, t := range req.Topics {
			if rf := rfOf[t.Name]; rf > live {
				msg := replicationFactorError(rf, live)
				resp.Topics[i] = brokerop.CreatePartitionsTopicResp{Name: t.Name, ErrorCode: kerr.InvalidReplicationFactor.Code, ErrorMessage: msg}
				continue
			}
			ok.Topics, okIdx = append(ok.Topics, t), append(okIdx, i)
		}
		if len(ok.Topics) == 0 {
			return resp, nil
		}
		r, err := c.b.CreatePartitions(ctx, ok)
		if err != nil {
			return nil, err
		}
		for j, i := range okIdx {
			resp.Topics[i] = r.Topics[j]
		}
		return resp, nil
	})
}

// topicResource is the config resource type of a topic (DescribeConfigs/AlterConfigs).
const topicResource = 2

// minISRRefusals returns, by resource index, Kafka's message for the topic config changes
// that set min.insync.replicas outside 1..the topic's replication factor (the value set by
// each, or nil). Topics the state does not know are left to the broker's code.
func (c *Controller) minISRRefusals(n int, change func(i int) (name string, value *string)) map[int]string {
	rfOf := map[string]int{}
	for _, t := range c.r.Topics() {
		rfOf[t.Name] = t.ReplicationFactor()
	}
	out := map[int]string{}
	for i := range n {
		name, v := change(i)
		rf, ok := rfOf[name]
		if v == nil || !ok {
			continue
		}
		if msg := checkMinISR(map[string]string{minISRConfig: *v}, rf); msg != "" {
			out[i] = msg
		}
	}
	return out
}

// alterWithMinISR runs a config change of resources res (AlterConfigs or
// IncrementalAlterConfigs) on the leader, answering INVALID_CONFIG itself for the topic
// resources refused by minISRRefusals and passing the others to run (all of res when none
// is refused). minISR gives a resource's type, name and the min.insync.replicas value it
// sets (nil if none).
func alterWithMinISR[Res any](c *Controller, ctx context.Context, res []Res,
	minISR func(Res) (typ int8, name string, value *string),
	run func(context.Context, []Res) (*brokerop.AlterConfigsResp, error)) (*brokerop.AlterConfigsResp, error) {
	refused := c.minISRRefusals(len(res), func(i int) (string, *string) {
		typ, name, v := minISR(res[i])
		if typ != topicResource {
			return "", nil
		}
		return name, v
	})
	if len(refused) == 0 {
		return run(ctx, res)
	}
	var keep []int
	var kept []Res
	for i := range res {
		if _, no := refused[i]; !no {
			keep, kept = append(keep, i), append(kept, res[i])
		}
	}
	out := &brokerop.AlterConfigsResp{Resources: make([]brokerop.AlterConfigsResourceResp, len(res))}
	for i, msg := range refused {
		typ, n, _ := minISR(res[i])
		out.Resources[i] = brokerop.AlterConfigsResourceResp{Type: typ, Name: n, ErrorCode: kerr.InvalidConfig.Code, ErrorMessage: msg}
	}
	if len(keep) > 0 {
		r, err := run(ctx, kept)
		if err != nil {
			return nil, err
		}
		for j, i := range keep {
			out.Resources[i] = r.Resources[j]
		}
	}
	return out, nil
}

// alterConfigsLocal is AlterConfigs on the leader with the min.insync.replicas check.
func (c *Controller) alterConfigsLocal(ctx context.Context, req *brokerop.AlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
	return adminOp(c, ctx, req, func(ctx context.Context, req *brokerop.AlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
		return alterWithMinISR(c, ctx, req.Resources, func(r brokerop.AlterConfigsResource) (int8, string, *string) {
			for _, cf := range r.Configs {
				if cf.Name == minISRConfig {
					return r.Type, r.Name, cf.Value
				}
			}
			return r.Type, r.Name, nil
		}, func(ctx context.Context, res []brokerop.AlterConfigsResource) (*brokerop.AlterConfigsResp, error) {
			return c.b.AlterConfigs(ctx, &brokerop.AlterConfigsReq{Resources: res, ValidateOnly: req.ValidateOnly})
		})
	})
}

// incrementalAlterConfigsLocal is IncrementalAlterConfigs on the leader with the
// min.insync.replicas check.
func (c *Controller) incrementalAlterConfigsLocal(ctx context.Context, req *brokerop.IncrementalAlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
	return adminOp(c, ctx, req, func(ctx context.Context, req *brokerop.IncrementalAlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
		c.shareCoordinator() // share-group configs are the share coordinator's (sharestate.go)
		return alterWithMinISR(c, ctx, req.Resources, func(r brokerop.IncrementalAlterConfigsResource) (int8, string, *string) {
			for _, cf := range r.Configs {
				if cf.Name == minISRConfig && cf.Op == brokerop.ConfigOpSet {
					return r.Type, r.Name, cf.Value
				}
			}
			return r.Type, r.Name, nil
		}, func(ctx context.Context, res []brokerop.IncrementalAlterConfigsResource) (*brokerop.AlterConfigsResp, error) {
			return c.b.IncrementalAlterConfigs(ctx, &brokerop.IncrementalAlterConfigsReq{Resources: res, ValidateOnly: req.ValidateOnly})
		})
	})
}

// --- what the gateways and clients see ---

// fillReplicas adds, for every replicated partition of resp, its leader's Kafka id, leader
// epoch, replicas, ISR and offline replicas (registered replica brokers the leader has not
// heard from recently). A replica whose raft id is no longer registered (its broker was
// removed or came back wiped) has no Kafka id any more and is left out of the lists.
// Called on the leader.
func (c *Controller) fillReplicas(resp *brokerop.MetadataResp) {
	topics := map[string]*Topic{}
	ts := c.r.Topics()
	for i := range ts {
		if ts[i].Replicas != nil {
			topics[ts[i].Name] = &ts[i]
		}
	}
	if len(topics) == 0 {
		return
	}
	kafka := map[uint64]int32{}
	for _, m := range c.r.Brokers() {
		kafka[m.RaftID] = m.KafkaID
	}
	live := c.sampleActive()
	for i := range resp.Topics {
		bt := &resp.Topics[i]
		t := topics[bt.Name]
		if t == nil || bt.TopicID != t.ID {
			continue
		}
		for j := range bt.Partitions {
			bp := &bt.Partitions[j]
			p := bp.Partition
			if p < 0 || int(p) >= len(t.Replicas) {
				continue
			}
			reps, ld := t.Replicas[p], t.Leaders[p]
			if m := t.move(int(p)); m.Moving() {
				// During a reassignment Kafka lists the whole set, the target first.
				mp := metadata.Partition{Replicas: reps, Target: m.Target, Adding: m.Adding}
				reps, _, _ = mp.Reassignment()
			}
			bp.Replicas, bp.ISR, bp.OfflineReplicas = []int32{}, []int32{}, []int32{}
			for _, id := range reps {
				kid, ok := kafka[id]
				if !ok {
					continue
				}
				bp.Replicas = append(bp.Replicas, kid)
				if !live[id] {
					bp.OfflineReplicas = append(bp.OfflineReplicas, kid)
				}
			}
			for _, id := range ld.ISR {
				if kid, ok := kafka[id]; ok {
					bp.ISR = append(bp.ISR, kid)
				}
			}
			bp.Leader, bp.LeaderEpoch = -1, -1
			if kid, ok := kafka[ld.Leader]; ok && ld.Leader != 0 {
				bp.Leader, bp.LeaderEpoch = kid, ld.Epoch
			} else if len(bp.Replicas) > 0 {
				bp.Leader = bp.Replicas[0] // not reported yet: the preferred leader
			} else {
				bp.ErrorCode = kerr.LeaderNotAvailable.Code
			}
		}
	}
}

// leaderNodes returns, for a topic's placement answer, the NodeId text of each partition's
// leader (the reported raft leader if it is registered, else the owner: the preferred
// leader) and its epoch (-1: none reported).
func (c *Controller) leaderNodes(t *Topic, members []Member) ([]string, []int32) {
	leaders := make([]string, len(t.Owners))
	epochs := make([]int32, len(t.Owners))
	node := map[uint64]string{}
	for _, m := range members {
		node[m.RaftID] = m.NodeID.String()
	}
	for p, o := range t.Owners {
		leaders[p] = o.String()
		if t.Replicas == nil {
			continue
		}
		epochs[p] = -1
		if n, ok := node[t.Leaders[p].Leader]; ok && t.Leaders[p].Leader != 0 {
			leaders[p], epochs[p] = n, t.Leaders[p].Epoch
		}
	}
	return leaders, epochs
}

// --- leader reports ---

// UpdatePartition records a replicated partition's leader report on the quorum (forwarded
// to its leader). Only the leader it names reports it: a call from another node over the
// mesh (a gateway, or a broker reporting for another) is CLUSTER_AUTHORIZATION_FAILED.
func (c *Controller) UpdatePartition(ctx context.Context, req *brokerop.UpdatePartitionReq) (*brokerop.UpdatePartitionResp, error) {
	if p := brokermesh.PeerOf(ctx); p != "" && !slices.ContainsFunc(c.r.Brokers(), func(m Member) bool {
		return m.RaftID == req.Leader && m.NodeID.String() == p
	}) {
		return &brokerop.UpdatePartitionResp{ErrorCode: kerr.ClusterAuthorizationFailed.Code,
			ErrorMessage: fmt.Sprintf("node %s may not report the leadership of raft id %d", p, req.Leader)}, nil
	}
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.UpdatePartitionReq) (*brokerop.UpdatePartitionResp, error) {
		res, err := c.r.Do(ctx, UpdatePartition{Topic: req.Topic, Partition: req.Partition, Leader: req.Leader, LeaderEpoch: req.LeaderEpoch, ISR: req.ISR})
		if err != nil {
			return nil, err
		}
		r, _ := res.(UpdateResult)
		return &brokerop.UpdatePartitionResp{ErrorCode: r.Code, ErrorMessage: r.Message}, nil
	}, brokerop.Service.UpdatePartition)
}

// partitionReport is one leader report waiting to be sent.
type partitionReport struct {
	topic     string
	partition int32
	leader    uint64
	term      uint64
	isr       []uint64
	refusals  int // CLUSTER_AUTHORIZATION_FAILED answers so far (the quorum leader may not have applied this broker's registration yet)
}

// maxReportRefusals is how many CLUSTER_AUTHORIZATION_FAILED answers a report gets before it
// is dropped.
const maxReportRefusals = 100

// partitionState is the broker's partition state hook (broker.Broker.OnPartitionState): it
// queues the report (the latest per partition wins) and returns at once; reportLoop sends it.
func (c *Controller) partitionState(topic string, p int32, leader, term uint64, isr []uint64) {
	c.reportMu.Lock()
	if c.reports == nil {
		c.reports = map[TopicPartition]partitionReport{}
	}
	c.reports[TopicPartition{topic, p}] = partitionReport{topic: topic, partition: p, leader: leader, term: term, isr: slices.Clone(isr)}
	c.reportMu.Unlock()
	kick(c.reportKick)
}

// reportLoop sends queued leader reports as UpdatePartition ops (to the quorum leader, as any
// controller op), retrying failed ones every Poll until they are sent, refused, or replaced by
// a newer report of their partition.
func (c *Controller) reportLoop() { c.kickedLoop(c.cfg.Poll, c.reportKick, c.sendReports) }

// sendReports sends the queued reports, in topic and partition order, and keeps those to retry.
func (c *Controller) sendReports() {
	c.reportMu.Lock()
	batch := slices.SortedFunc(maps.Values(c.reports), func(a, b partitionReport) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	c.reportMu.Unlock()
	for _, r := range batch {
		done, refused := c.sendReport(r)
		c.reportMu.Lock()
		tp := TopicPartition{r.topic, r.partition}
		if cur, ok := c.reports[tp]; ok && cur.term == r.term && cur.leader == r.leader && slices.Equal(cur.isr, r.isr) {
			switch {
			case done:
				delete(c.reports, tp)
			case refused:
				cur.refusals++
				c.reports[tp] = cur
			}
		}
		c.reportMu.Unlock()
	}
}

// sendReport sends one report; done reports whether it is done with (recorded, or refused by
// the state: an older epoch, a partition that no longer exists or no longer has this
// replica). refused is a CLUSTER_AUTHORIZATION_FAILED answer, retried (the quorum leader may
// not have applied this broker's registration yet) until maxReportRefusals.
func (c *Controller) sendReport(r partitionReport) (done, refused bool) {
	ctx, cancel := c.opContext()
	defer cancel()
	epoch := int32(min(r.term, uint64(1<<31-1)))
	resp, err := c.UpdatePartition(ctx, &brokerop.UpdatePartitionReq{Topic: r.topic, Partition: r.partition, Leader: r.leader, LeaderEpoch: epoch, ISR: r.isr})
	switch {
	case err != nil:
		c.log.Debug("partition leader report not sent yet", "topic", r.topic, "partition", r.partition, "err", err)
		return false, false
	case resp.ErrorCode == kerr.ClusterAuthorizationFailed.Code && r.refusals+1 < maxReportRefusals:
		c.log.Debug("partition leader report refused; trying again", "topic", r.topic, "partition", r.partition, "msg", resp.ErrorMessage)
		return false, true
	case resp.ErrorCode != 0:
		c.log.Info("partition leader report refused", "topic", r.topic, "partition", r.partition, "leader", r.leader, "epoch", epoch,
			"code", resp.ErrorCode, "msg", resp.ErrorMessage)
	}
	return true, false
}
