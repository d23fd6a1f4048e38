package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Brokers on the metadata quorum (package broker/controller) serve the quorum ops: the
// cluster then routes by the quorum (quorum mode): controller ops go to any known broker
// (rotating on errors; the broker forwards them to the quorum leader), the brokers and their
// addresses come from ClusterBrokers, and partition owners from Placement (decided by the
// leader when partitions are created; owners learn their topics by applying them, so nothing
// is created on them here). Brokers from before the quorum answer the quorum ops with
// "unknown op": the cluster then keeps the fixed controller and the placement log (legacy
// mode).

const (
	modeUnknown = iota
	modeLegacy
	modeQuorum
)

// quorumPlacement is one topic's owners as the quorum placed them.
type quorumPlacement struct {
	id      [16]byte
	owners  []string // NodeId text by partition
	leaders []string // NodeId text by partition of the broker to send its data ops to (nil: owners)
	epochs  []int32  // leader epoch by partition: -1 none reported yet, 0 single-owner (nil: none known)
}

// replicated reports whether partition is replicated (its leader may move): the quorum gives
// it a leader epoch other than 0 (-1 before its first leader report).
func (p quorumPlacement) replicated(partition int32) bool {
	return partition >= 0 && int(partition) < len(p.epochs) && p.epochs[partition] != 0
}

// epoch is the leader epoch the quorum recorded for partition (-1: none).
func (p quorumPlacement) epoch(partition int32) int32 {
	if partition < 0 || int(partition) >= len(p.epochs) {
		return -1
	}
	return p.epochs[partition]
}

// route is the NodeId text of the broker that serves partition p's data ops: its leader
// (replicated partitions: the raft leader the quorum recorded, else the preferred leader),
// or its owner when the brokers report no leaders.
func (p quorumPlacement) route(partition int32) (string, bool) {
	if partition < 0 || int(partition) >= len(p.owners) {
		return "", false
	}
	if len(p.leaders) == len(p.owners) && p.leaders[partition] != "" {
		return p.leaders[partition], true
	}
	return p.owners[partition], true
}

// isQuorum reports whether the brokers run the metadata quorum, asking them the first time.
func (c *Cluster) isQuorum(ctx context.Context) (bool, error) {
	c.mu.Lock()
	m := c.mode
	c.mu.Unlock()
	switch m {
	case modeLegacy:
		return false, nil
	case modeQuorum:
		return true, nil
	}
	_, err := c.refreshBrokers(ctx)
	if err == nil {
		return true, nil
	}
	if opUnknown(err) {
		c.mu.Lock()
		c.mode = modeLegacy
		c.mu.Unlock()
		c.log.Info("brokers do not run the metadata quorum: fixed controller and placement log", "controller", c.controllerID)
		return false, nil
	}
	return false, err
}

func (c *Cluster) quorumKnown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode == modeQuorum
}

// refreshBrokers reads the quorum's broker list and makes every broker dialable.
func (c *Cluster) refreshBrokers(ctx context.Context) (*brokerop.ClusterBrokersResp, error) {
	r, err := ctlDo(ctx, c, true, &brokerop.ClusterBrokersReq{}, (*Broker).ClusterBrokers)
	if err != nil {
		return nil, err
	}
	if r.ErrorCode != 0 {
		return nil, fmt.Errorf("cluster brokers: kafka error %d: %s", r.ErrorCode, r.ErrorMessage)
	}
	members := map[string]bool{}
	for _, b := range r.Brokers {
		id, err := key.ParsePublicKey(b.MeshID)
		if err != nil {
			continue
		}
		a := endpoint.NodeAddr{ID: id, RelayURL: b.RelayURL}
		for _, d := range b.Direct {
			if ap, err := netip.ParseAddrPort(d); err == nil {
				a.Direct = append(a.Direct, ap)
			}
		}
		c.AddBroker(a)
		members[b.MeshID] = true
	}
	c.mu.Lock()
	if c.preferred != nil && len(members) > 0 {
		for id, cl := range c.callers {
			if cl == c.preferred && !members[id] && !c.seeds[id] {
				c.preferred = nil // no longer a member
			}
		}
	}
	if c.mode == modeUnknown {
		c.log.Info("brokers run the metadata quorum", "brokers", len(members), "leader", r.Leader)
	}
	c.mode = modeQuorum
	c.members = members
	c.mu.Unlock()
	return r, nil
}

// ctlDo runs a controller op on a broker: in quorum mode any known broker, starting with the
// last one that answered and rotating through the others on a Go error (a broker that is
// down, or that found no leader in time), once round; in legacy mode the fixed controller.
// anyMode runs it the quorum way whatever the mode (the quorum ops themselves). The op is
// op(b, ctx, req), a method expression such as (*Broker).JoinGroup; it gets the attempt's
// context: in quorum mode it is cancelled when the broker stops answering a
// liveness probe (watched, liveness.go), and the op goes to the next broker at once. A broker
// that answers its probes is waited for however long the op takes (a group join waits for
// its rebalance; an op forwarded to a leader that died is forwarded again by the broker when
// its raft sees the new leader). Without the probes, a call in flight to a broker that died
// waited for the mesh's idle timeout, seconds, before the gateway moved on: the larger part
// of a quorum failover's time. A live broker too slow to answer a probe within probeTimeout
// is left as a dead one would be; the op may then have taken effect there too, as after a
// client's own retry (a CreateTopics retried so answers TOPIC_ALREADY_EXISTS).
func ctlDo[Req, T any](ctx context.Context, c *Cluster, anyMode bool, req Req, op func(*Broker, context.Context, Req) (T, error)) (T, error) {
	var zero T
	if !anyMode {
		q, err := c.isQuorum(ctx)
		if err != nil {
			return zero, err
		}
		if !q {
			return op(c.ctl(), ctx, req)
		}
	}
	order := c.rotation()
	var first error
	for _, b := range order {
		r, err := watched(ctx, c, b, func(ctx context.Context) (T, error) { return op(b, ctx, req) })
		if err == nil {
			c.mu.Lock()
			c.preferred = b
			delete(c.failedAt, b)
			c.mu.Unlock()
			return r, nil
		}
		if !opUnknown(err) {
			// Asked last from now on, until it answers again: a dead broker may take the
			// whole of a caller's deadline to fail, and the retry must start elsewhere.
			c.mu.Lock()
			if c.preferred == b {
				c.preferred = nil
			}
			c.failedAt[b] = c.now()
			c.mu.Unlock()
		}
		if first == nil {
			first = err
		}
		if opUnknown(err) || ctx.Err() != nil {
			return zero, err
		}
		c.log.Debug("controller op failed on a broker; trying the next", "broker", b.caller.Remote(), "err", err)
	}
	if first == nil {
		first = errors.New("cluster: no brokers")
	}
	return zero, first
}

// rotation is every known broker's caller, the preferred one first, then the quorum's
// members, then the others (address hints).
func (c *Cluster) rotation() []*Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Broker
	if c.preferred != nil {
		out = append(out, c.preferred)
	}
	ids := make([]string, 0, len(c.callers))
	for id := range c.callers {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		ma, mb := c.members[a], c.members[b]
		switch {
		case ma && !mb:
			return -1
		case mb && !ma:
			return 1
		}
		return strings.Compare(a, b)
	})
	var failed []*Broker
	for _, id := range ids {
		// Once the quorum's members are known, only they (and the seeds) are asked: a node
		// that merely announced itself on the control plane is no broker of the cluster.
		if len(c.members) > 0 && !c.members[id] && !c.seeds[id] {
			continue
		}
		b := c.callers[id]
		switch {
		case b == c.preferred:
		case !c.failedAt[b].IsZero():
			failed = append(failed, b)
		default:
			out = append(out, b)
		}
	}
	// Brokers that failed last, the longest ago first.
	slices.SortStableFunc(failed, func(a, b *Broker) int { return c.failedAt[a].Compare(c.failedAt[b]) })
	return append(out, failed...)
}

// quorumOwner returns the caller serving topic/partition's data ops by the quorum's
// placement, or a Kafka error code. A replicated partition whose routed leader is down or is
// avoid (it has just answered NOT_LEADER_OR_FOLLOWER) goes to the leader the brokers
// themselves name (findLeader, leader.go), waited for up to leaderWaitOf(ctx); with hunting
// off (noHunt(ctx)) it answers codeHunt instead, for split to hunt several at once.
func (c *Cluster) quorumOwner(ctx context.Context, topic string, partition int32, avoid *Broker) (*Broker, string, int16, error) {
	// unled: a replicated partition whose leader the quorum had not recorded when the
	// placement was read (a new topic's first election), and no broker was heard to lead it:
	// the route names the preferred replica, which may not have won.
	lookup := func() (id string, ok, replicated, unled bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		p, ok := c.qplace[topic]
		if !ok {
			return "", false, false, false
		}
		id, ok = p.route(partition)
		h, hinted := c.hints[tp{topic, partition}]
		if ok && hinted && h.topicID == p.id && h.epoch >= p.epoch(partition) {
			id = h.id // a broker said it leads, under an epoch the quorum has not recorded yet
		}
		replicated = p.replicated(partition)
		return id, ok, replicated, replicated && p.epoch(partition) < 0 && !(hinted && h.topicID == p.id)
	}
	id, ok, replicated, unled := lookup()
	if !ok || unled {
		r, err := ctlDo(ctx, c, false, &brokerop.PlacementReq{Topics: []string{topic}}, (*Broker).Placement)
		if err != nil {
			return nil, "", 0, err
		}
		if r.ErrorCode != 0 {
			return nil, "", r.ErrorCode, nil
		}
		if len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 {
			code := errUnknownTopicOrPartition
			if len(r.Topics) == 1 {
				code = r.Topics[0].ErrorCode
			}
			return nil, "", code, nil
		}
		t := r.Topics[0]
		c.mu.Lock()
		c.qplace[topic] = quorumPlacement{id: t.TopicID, owners: t.Owners, leaders: t.Leaders, epochs: t.LeaderEpochs}
		c.mu.Unlock()
		if id, ok, replicated, unled = lookup(); !ok {
			return nil, "", errUnknownTopicOrPartition, nil
		}
	}
	c.mu.Lock()
	cl, ok := c.callers[id]
	c.mu.Unlock()
	if !ok {
		if _, err := c.refreshBrokers(ctx); err != nil {
			return nil, "", 0, err
		}
		c.mu.Lock()
		cl, ok = c.callers[id]
		c.mu.Unlock()
		if !ok {
			c.log.Warn("partition owner is not a known broker", "topic", topic, "partition", partition, "owner", id)
			return nil, "", errLeaderNotAvailable, nil
		}
	}
	if replicated && (cl == avoid || cl.isDown() || unled) {
		if noHunt(ctx) {
			return nil, "", codeHunt, nil
		}
		if b, id, ok := c.findLeader(ctx, topic, partition); ok {
			return b, id, 0, nil
		}
		if ctx.Err() != nil {
			return nil, "", 0, ctx.Err()
		}
		return nil, "", errNotLeaderOrFollower, nil
	}
	return cl, id, 0, nil
}

// forgetPlacement drops a topic's cached placement (its owner did not know it, or failed):
// the next request reads it again.
func (c *Cluster) forgetPlacement(topic string) {
	c.mu.Lock()
	delete(c.qplace, topic)
	c.mu.Unlock()
}

// missed records that b answered NOT_LEADER_OR_FOLLOWER for topic/partition: the cached
// placement is dropped (the next request reads it again) and so is a hint naming b.
func (c *Cluster) missed(topic string, partition int32, b *Broker) {
	c.mu.Lock()
	delete(c.qplace, topic)
	k := tp{topic, partition}
	if h, ok := c.hints[k]; ok && c.callers[h.id] == b {
		delete(c.hints, k)
	}
	c.mu.Unlock()
}

// forgetAllPlacements drops every cached placement (an owner could not be reached: its
// partitions may have been placed elsewhere).
func (c *Cluster) forgetAllPlacements() {
	c.mu.Lock()
	clear(c.qplace)
	c.mu.Unlock()
}

// ClusterBrokers asks any broker (quorum mode).
func (c *Cluster) ClusterBrokers(ctx context.Context, req *brokerop.ClusterBrokersReq) (*brokerop.ClusterBrokersResp, error) {
	return ctlDo(ctx, c, true, req, (*Broker).ClusterBrokers)
}

// Placement asks any broker (quorum mode).
func (c *Cluster) Placement(ctx context.Context, req *brokerop.PlacementReq) (*brokerop.PlacementResp, error) {
	return ctlDo(ctx, c, true, req, (*Broker).Placement)
}

// QuorumJoin asks any broker (quorum mode).
func (c *Cluster) QuorumJoin(ctx context.Context, req *brokerop.QuorumJoinReq) (*brokerop.QuorumJoinResp, error) {
	return ctlDo(ctx, c, true, req, (*Broker).QuorumJoin)
}

// QuorumAdmin asks any broker (quorum mode).
func (c *Cluster) QuorumAdmin(ctx context.Context, req *brokerop.QuorumAdminReq) (*brokerop.QuorumAdminResp, error) {
	return ctlDo(ctx, c, true, req, (*Broker).QuorumAdmin)
}

// UpdatePartition asks any broker (quorum mode; it forwards to the quorum leader).
func (c *Cluster) UpdatePartition(ctx context.Context, req *brokerop.UpdatePartitionReq) (*brokerop.UpdatePartitionResp, error) {
	return ctlDo(ctx, c, true, req, (*Broker).UpdatePartition)
}

// DescribeQuorum asks any broker (quorum mode); it forwards to the leader. Brokers without
// the op (from before the metadata quorum) make it brokerop.ErrUnsupported.
func (c *Cluster) DescribeQuorum(ctx context.Context, req *brokerop.DescribeQuorumReq) (*brokerop.DescribeQuorumResp, error) {
	r, err := ctlDo(ctx, c, true, req, (*Broker).DescribeQuorum)
	if err != nil && opUnknown(err) {
		return nil, fmt.Errorf("%w: the brokers run no metadata quorum (%w)", brokerop.ErrUnsupported, err)
	}
	return r, err
}
