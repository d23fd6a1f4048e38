package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func newClusterID() string {
	var id [16]byte
	_, _ = rand.Read(id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// barrier makes the local state current (ReadBarrier) and the local broker equal to it.
func (c *Controller) barrier(ctx context.Context) error {
	if err := c.r.ReadBarrier(ctx); err != nil {
		return fmt.Errorf("controller: read barrier: %w", err)
	}
	if err := c.ready(ctx); err != nil {
		return err
	}
	c.syncBroker()
	return nil
}

// ready makes sure, on the leader, that the cluster has an id and this broker is registered
// (an op may arrive before the leadership watcher did it): partitions are only ever placed
// on registered brokers.
func (c *Controller) ready(ctx context.Context) error {
	if !c.isLeader() {
		return nil
	}
	if c.r.ClusterID() == "" {
		if _, err := c.r.Do(ctx, InitCluster{ClusterID: newClusterID()}); err != nil {
			return err
		}
	}
	if !c.registered() {
		return c.registerSelf(ctx)
	}
	return nil
}

// adminOp runs one of the broker's admin ops on the leader, serialised with the others,
// after a barrier: the broker's registry (Registry) turns its changes into proposals.
func adminOp[Req, Resp any](c *Controller, ctx context.Context, req *Req, fn func(context.Context, *Req) (*Resp, error)) (*Resp, error) {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	if err := c.barrier(ctx); err != nil {
		return nil, err
	}
	return fn(ctx, req)
}

// members returns the registered brokers sorted by NodeId.
func (c *Controller) members() []Member {
	ms := slices.Clone(c.r.Brokers())
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.NodeID.String(), b.NodeID.String()) })
	return ms
}

// brokerInfos lists the registered brokers with their Kafka ids, and the controller's.
func (c *Controller) brokerInfos() ([]brokerop.BrokerInfo, int32) {
	ms := c.members()
	out := make([]brokerop.BrokerInfo, len(ms))
	ctl := int32(-1)
	l, ok := c.r.Leader()
	for i, m := range ms {
		out[i] = brokerop.BrokerInfo{NodeID: m.KafkaID, MeshID: m.NodeID.String(), Kafka: m.Kafka}
		if ok && m.RaftID == l {
			ctl = m.KafkaID
		}
	}
	return out, ctl
}

// --- AdminService ---

// Metadata answers from the leader's state (auto-created topics are proposed there).
func (c *Controller) Metadata(ctx context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
		var resp *brokerop.MetadataResp
		var err error
		if req.AutoCreate {
			resp, err = adminOp(c, ctx, req, c.b.Metadata)
		} else {
			if err := c.barrier(ctx); err != nil {
				return nil, err
			}
			resp, err = c.b.Metadata(ctx, req)
		}
		if err != nil {
			return nil, err
		}
		resp.ClusterID = c.r.ClusterID()
		resp.Brokers, resp.ControllerID = c.brokerInfos()
		c.fillReplicas(resp)
		return resp, nil
	}, brokerop.Service.Metadata)
}

// CreateTopics creates topics through the broker's admin code on the leader.
func (c *Controller) CreateTopics(ctx context.Context, req *brokerop.CreateTopicsReq) (*brokerop.CreateTopicsResp, error) {
	return route(c, ctx, req, c.createTopicsLocal, brokerop.Service.CreateTopics)
}

// DeleteTopics deletes topics on the leader; every broker drops their data when it applies
// the deletion.
func (c *Controller) DeleteTopics(ctx context.Context, req *brokerop.DeleteTopicsReq) (*brokerop.DeleteTopicsResp, error) {
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.DeleteTopicsReq) (*brokerop.DeleteTopicsResp, error) {
		return adminOp(c, ctx, req, c.b.DeleteTopics)
	}, brokerop.Service.DeleteTopics)
}

// CreatePartitions grows topics on the leader (new partitions are placed there).
func (c *Controller) CreatePartitions(ctx context.Context, req *brokerop.CreatePartitionsReq) (*brokerop.CreatePartitionsResp, error) {
	return route(c, ctx, req, c.createPartitionsLocal, brokerop.Service.CreatePartitions)
}

// DescribeConfigs answers from the leader's state.
func (c *Controller) DescribeConfigs(ctx context.Context, req *brokerop.DescribeConfigsReq) (*brokerop.DescribeConfigsResp, error) {
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.DescribeConfigsReq) (*brokerop.DescribeConfigsResp, error) {
		if err := c.barrier(ctx); err != nil {
			return nil, err
		}
		c.shareCoordinator() // share-group configs are the share coordinator's (sharestate.go)
		return c.b.DescribeConfigs(ctx, req)
	}, brokerop.Service.DescribeConfigs)
}

// AlterConfigs changes topic configs on the leader.
func (c *Controller) AlterConfigs(ctx context.Context, req *brokerop.AlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
	return route(c, ctx, req, c.alterConfigsLocal, brokerop.Service.AlterConfigs)
}

// IncrementalAlterConfigs changes topic configs on the leader.
func (c *Controller) IncrementalAlterConfigs(ctx context.Context, req *brokerop.IncrementalAlterConfigsReq) (*brokerop.AlterConfigsResp, error) {
	return route(c, ctx, req, c.incrementalAlterConfigsLocal, brokerop.Service.IncrementalAlterConfigs)
}

// DescribeCluster reports the quorum's brokers and its leader as the controller.
func (c *Controller) DescribeCluster(ctx context.Context, req *brokerop.DescribeClusterReq) (*brokerop.DescribeClusterResp, error) {
	return routeAfterBarrier(c, ctx, req, func(ctx context.Context, req *brokerop.DescribeClusterReq) (*brokerop.DescribeClusterResp, error) {
		resp := &brokerop.DescribeClusterResp{ClusterID: c.r.ClusterID()}
		resp.Brokers, resp.ControllerID = c.brokerInfos()
		return resp, nil
	}, brokerop.Service.DescribeCluster)
}

// --- ProducerService ---

// InitProducerID hands out producer ids from blocks the leader allocates on the quorum, so
// no id is ever handed out twice, whichever broker leads.
func (c *Controller) InitProducerID(ctx context.Context, req *brokerop.InitProducerIDReq) (*brokerop.InitProducerIDResp, error) {
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.InitProducerIDReq) (*brokerop.InitProducerIDResp, error) {
		id, err := c.nextProducerID(ctx)
		if err != nil {
			return nil, err
		}
		return &brokerop.InitProducerIDResp{ProducerID: id, ProducerEpoch: 0}, nil
	}, brokerop.Service.InitProducerID)
}

// nextProducerID hands out the next producer id of this broker's current block, taking a
// new block from the quorum (AllocateProducerIDs) when it is used up. Ids are never reused:
// a block is the quorum's once committed, whatever happens to this broker afterwards.
func (c *Controller) nextProducerID(ctx context.Context) (int64, error) {
	c.pidMu.Lock()
	defer c.pidMu.Unlock()
	c.mu.Lock()
	next, end := c.pidNext, c.pidEnd
	c.mu.Unlock()
	if next >= end {
		res, err := c.r.Do(ctx, AllocateProducerIDs{Count: c.cfg.ProducerIDBlock})
		if err != nil {
			return 0, err
		}
		first, ok := res.(int64)
		if !ok {
			return 0, fmt.Errorf("controller: producer id block: unexpected result %T", res)
		}
		next, end = first, first+c.cfg.ProducerIDBlock
	}
	c.mu.Lock()
	c.pidNext, c.pidEnd = next+1, end
	c.mu.Unlock()
	return next, nil
}

// --- QuorumService ---

// ClusterBrokers lists the registered brokers with the leader's view of them.
func (c *Controller) ClusterBrokers(ctx context.Context, req *brokerop.ClusterBrokersReq) (*brokerop.ClusterBrokersResp, error) {
	if req.Local {
		return c.localBrokers(), nil
	}
	return routeAfterBarrier(c, ctx, req, func(ctx context.Context, req *brokerop.ClusterBrokersReq) (*brokerop.ClusterBrokersResp, error) {
		st := c.r.Status()
		live := c.sampleActive()
		return c.clusterBrokers(c.members(), st, func(id uint64) bool { return live[id] }), nil
	}, brokerop.Service.ClusterBrokers)
}

// localBrokers is this broker's own view of the brokers, itself included.
func (c *Controller) localBrokers() *brokerop.ClusterBrokersResp {
	st := c.r.Status()
	ms := c.members()
	if !slices.ContainsFunc(ms, func(m Member) bool { return m.RaftID == st.RaftID }) {
		ms = append(ms, c.self())
	}
	return c.clusterBrokers(ms, st, func(id uint64) bool { return id == st.RaftID })
}

// clusterBrokers describes the brokers ms as st sees them; live tells which are live.
func (c *Controller) clusterBrokers(ms []Member, st Status, live func(raftID uint64) bool) *brokerop.ClusterBrokersResp {
	resp := &brokerop.ClusterBrokersResp{ClusterID: c.r.ClusterID()}
	for _, m := range ms {
		b := brokerop.ClusterBroker{MeshID: m.NodeID.String(), RaftID: m.RaftID, RelayURL: m.Addr.RelayURL, Rack: m.Rack, Kafka: m.Kafka,
			Live: live(m.RaftID), Voter: slices.Contains(st.Voters, m.RaftID), Leader: m.RaftID == st.Leader}
		b.Direct = appendAddrs(b.Direct, m.Addr.Direct)
		if b.Leader {
			resp.Leader = b.MeshID
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	return resp
}

// appendAddrs appends the text of the addresses ds to dst.
func appendAddrs(dst []string, ds []netip.AddrPort) []string {
	for _, d := range ds {
		dst = append(dst, d.String())
	}
	return dst
}

// Placement tells the owners of topics' partitions from the leader's state.
func (c *Controller) Placement(ctx context.Context, req *brokerop.PlacementReq) (*brokerop.PlacementResp, error) {
	return routeAfterBarrier(c, ctx, req, func(ctx context.Context, req *brokerop.PlacementReq) (*brokerop.PlacementResp, error) {
		ts := c.r.Topics()
		byName := make(map[string]*Topic, len(ts))
		for i := range ts {
			byName[ts[i].Name] = &ts[i]
		}
		resp := &brokerop.PlacementResp{}
		members := c.r.Brokers()
		one := func(t *Topic) brokerop.TopicPlacement {
			p := brokerop.TopicPlacement{Name: t.Name, TopicID: t.ID, Owners: make([]string, len(t.Owners))}
			for i, o := range t.Owners {
				p.Owners[i] = o.String()
			}
			p.Leaders, p.LeaderEpochs = c.leaderNodes(t, members)
			return p
		}
		if req.Topics == nil {
			for i := range ts {
				resp.Topics = append(resp.Topics, one(&ts[i]))
			}
			return resp, nil
		}
		for _, n := range req.Topics {
			if t := byName[n]; t != nil {
				resp.Topics = append(resp.Topics, one(t))
			} else {
				resp.Topics = append(resp.Topics, brokerop.TopicPlacement{Name: n, ErrorCode: kerr.UnknownTopicOrPartition.Code})
			}
		}
		return resp, nil
	}, brokerop.Service.Placement)
}

// QuorumJoin adds an admitted broker as a raft learner and registers it; a new incarnation
// of a known NodeId (a wiped data dir: a new raft id) replaces the old one, which is removed
// from the quorum first.
func (c *Controller) QuorumJoin(ctx context.Context, req *brokerop.QuorumJoinReq) (*brokerop.QuorumJoinResp, error) {
	id, err := key.ParsePublicKey(req.MeshID)
	if err != nil {
		return &brokerop.QuorumJoinResp{ErrorCode: kerr.InvalidRequest.Code, ErrorMessage: "bad NodeId: " + err.Error()}, nil
	}
	if p := brokermesh.PeerOf(ctx); p != "" && !c.forwarded(ctx) && p != id.String() {
		return &brokerop.QuorumJoinResp{ErrorCode: kerr.ClusterAuthorizationFailed.Code,
			ErrorMessage: fmt.Sprintf("node %s may not join the quorum as %s", p, id)}, nil
	}
	if req.RaftID == 0 {
		return &brokerop.QuorumJoinResp{ErrorCode: kerr.InvalidRequest.Code, ErrorMessage: "raft id 0"}, nil
	}
	addr := endpoint.NodeAddr{ID: id, RelayURL: req.RelayURL}
	for _, d := range req.Direct {
		ap, err := netip.ParseAddrPort(d)
		if err != nil {
			return &brokerop.QuorumJoinResp{ErrorCode: kerr.InvalidRequest.Code, ErrorMessage: fmt.Sprintf("bad address %q", d)}, nil
		}
		addr.Direct = append(addr.Direct, ap)
	}
	return route(c, ctx, req, func(ctx context.Context, req *brokerop.QuorumJoinReq) (*brokerop.QuorumJoinResp, error) {
		return c.join(ctx, Member{RaftID: req.RaftID, NodeID: id, Addr: addr, Rack: req.Rack, Kafka: req.Kafka})
	}, brokerop.Service.QuorumJoin)
}

func (c *Controller) join(ctx context.Context, m Member) (*brokerop.QuorumJoinResp, error) {
	c.adminMu.Lock()
	defer c.adminMu.Unlock()
	if err := c.r.ReadBarrier(ctx); err != nil {
		return nil, err
	}
	if !c.admitted(m.NodeID) {
		c.log.Warn("refused a broker that was not admitted", "node", m.NodeID.String(), "raft_id", m.RaftID)
		return &brokerop.QuorumJoinResp{ErrorCode: kerr.ClusterAuthorizationFailed.Code,
			ErrorMessage: fmt.Sprintf("broker %s is neither a seed of the leader nor allowed (broker quorum allow %s)", m.NodeID, m.NodeID)}, nil
	}
	st := c.r.Status()
	member := slices.Contains(st.Voters, m.RaftID) || slices.Contains(st.Learners, m.RaftID)
	for _, old := range c.r.Brokers() {
		if old.NodeID != m.NodeID || old.RaftID == m.RaftID {
			continue
		}
		c.log.Info("a broker came back with a new raft id: removing its old incarnation", "node", m.NodeID.String(), "old", old.RaftID, "new", m.RaftID)
		if slices.Contains(st.Voters, old.RaftID) || slices.Contains(st.Learners, old.RaftID) {
			if err := c.r.RemoveMember(ctx, old.RaftID); err != nil {
				return nil, err
			}
		}
		if _, err := c.r.Do(ctx, RemoveBroker{RaftID: old.RaftID}); err != nil {
			return nil, err
		}
	}
	if !member {
		if err := c.r.AddLearner(ctx, m.RaftID, m.Addr); err != nil {
			return nil, err
		}
		c.log.Info("broker joined the quorum as a learner", "node", m.NodeID.String(), "raft_id", m.RaftID)
	}
	registered := false
	for _, b := range c.r.Brokers() {
		if b.sameRegistration(m) {
			registered = true
		}
	}
	if !registered {
		if _, err := c.r.Do(ctx, RegisterBroker{Member: m}); err != nil {
			return nil, err
		}
	}
	resp := &brokerop.QuorumJoinResp{ClusterID: c.r.ClusterID(), Leader: c.cfg.Self.ID.String(), LeaderRaftID: c.r.RaftID(),
		LeaderRelayURL: c.cfg.Self.RelayURL}
	for _, d := range c.cfg.Self.Direct {
		resp.LeaderDirect = append(resp.LeaderDirect, d.String())
	}
	return resp, nil
}

// DeleteRecords, OffsetForLeaderEpoch and DescribeLogDirs are about this broker's own
// partitions (the gateway sends them to owners): the local broker answers.

// DeleteRecords moves log start offsets of this broker's partitions.
func (c *Controller) DeleteRecords(ctx context.Context, req *brokerop.DeleteRecordsReq) (*brokerop.DeleteRecordsResp, error) {
	return c.b.DeleteRecords(ctx, req)
}

// OffsetForLeaderEpoch answers for this broker's partitions.
func (c *Controller) OffsetForLeaderEpoch(ctx context.Context, req *brokerop.OffsetForLeaderEpochReq) (*brokerop.OffsetForLeaderEpochResp, error) {
	return c.b.OffsetForLeaderEpoch(ctx, req)
}

// DescribeLogDirs describes this broker's log directory.
func (c *Controller) DescribeLogDirs(ctx context.Context, req *brokerop.DescribeLogDirsReq) (*brokerop.DescribeLogDirsResp, error) {
	return c.b.DescribeLogDirs(ctx, req)
}

// DescribeClientQuotas answers from the leader's broker. (Client quotas are not on the
// quorum yet: they are the current leader's file.)
func (c *Controller) DescribeClientQuotas(ctx context.Context, req *brokerop.DescribeClientQuotasReq) (*brokerop.DescribeClientQuotasResp, error) {
	if c.cfg.ClusterSecurity {
		return c.security().describeQuotas(ctx, req) // on the quorum (security.go)
	}
	return route(c, ctx, req, c.b.DescribeClientQuotas, brokerop.Service.DescribeClientQuotas)
}

// AlterClientQuotas changes the leader's broker's client quotas (not on the quorum yet).
func (c *Controller) AlterClientQuotas(ctx context.Context, req *brokerop.AlterClientQuotasReq) (*brokerop.AlterClientQuotasResp, error) {
	if c.cfg.ClusterSecurity {
		return c.security().alterQuotas(ctx, req) // on the quorum (security.go)
	}
	return route(c, ctx, req, c.b.AlterClientQuotas, brokerop.Service.AlterClientQuotas)
}
