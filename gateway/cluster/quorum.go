package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
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
	r, err := ctlDo(ctx, c, true, func(ctx context.Context, b *Broker) (*brokerop.ClusterBrokersResp, error) {
		return b.ClusterBrokers(ctx, &brokerop.ClusterBrokersReq{})
	})
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
// anyMode runs it the quorum way whatever the mode (the quorum ops themselves). fn gets the
// attempt's context: in quorum mode it is cancelled when the broker stops answering (attempt).
func ctlDo[T any](ctx context.Context, c *Cluster, anyMode bool, fn func(context.Context, *Broker) (T, error)) (T, error) {
	var zero T
	if !anyMode {
		q, err := c.isQuorum(ctx)
		if err != nil {
			return zero, err
		}
		if !q {
			return fn(ctx, c.ctl())
		}
	}
	order := c.rotation()
	var first error
	for _, b := range order {
		r, err := attempt(ctx, c, b, fn)
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

// Liveness probes of a controller op's broker (attempt).
const (
	probeAfter   = 300 * time.Millisecond // an op unanswered this long has its broker probed
	probeTimeout = time.Second            // a probe unanswered this long: the broker is gone
)

// attempt runs fn on b, watching b: once the op has gone unanswered for probeAfter (and
// again every probeAfter), b is asked a liveness probe, ClusterBrokers{Local}, which the
// broker answers itself (no leader, no raft). A broker that does not answer the probe
// within probeTimeout is given up: fn's context is cancelled and attempt fails with
// brokermesh.ErrUnavailable, so ctlDo tries the next broker at once. A broker that answers
// is waited for however long the op takes (a group join waits for its rebalance; an op
// forwarded to a leader that died is forwarded again by the broker when its raft sees the
// new leader). Without this a call in flight to a broker that died (SIGKILL: nothing closes
// its connections) waited for the mesh's idle timeout, seconds, before the gateway moved
// on: the larger part of a quorum failover's time. A live broker too slow to answer a probe
// within probeTimeout is left as a dead one would be; the op may then have taken effect there
// too, as after a client's own retry (a CreateTopics retried so answers TOPIC_ALREADY_EXISTS).
func attempt[T any](ctx context.Context, c *Cluster, b *Broker, fn func(context.Context, *Broker) (T, error)) (T, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	var dead error
	var wg sync.WaitGroup
	wg.Go(func() {
		if dead = c.watch(wctx, b); dead != nil {
			cancel()
		}
	})
	r, err := fn(actx, b)
	stop()
	wg.Wait()
	if dead != nil && err != nil && ctx.Err() == nil {
		var zero T
		return zero, fmt.Errorf("%w: %s: no answer to a liveness probe within %v (%w); the op was abandoned there",
			brokermesh.ErrUnavailable, b.caller.Remote(), c.probeTimeout, dead)
	}
	return r, err
}

// watch probes b every probeAfter until ctx ends; it returns the error of the first probe
// b did not answer (nil when ctx ended first). Any answer, even an error status (a broker
// without the quorum ops), shows the broker alive.
func (c *Cluster) watch(ctx context.Context, b *Broker) error {
	t := time.NewTimer(c.probeAfter)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, c.probeTimeout)
		_, err := b.ClusterBrokers(pctx, &brokerop.ClusterBrokersReq{Local: true})
		cancel()
		var ce *brokermesh.CallError
		if err != nil && ctx.Err() == nil && !errors.As(err, &ce) {
			c.log.Info("a broker did not answer a liveness probe while a controller op waited on it: trying another", "broker", b.caller.Remote(), "err", err)
			return err
		}
		t.Reset(c.probeAfter)
	}
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

// quorumOwner returns the caller owning topic/partition by the quorum's placement, or a
// Kafka error code.
func (c *Cluster) quorumOwner(ctx context.Context, topic string, partition int32) (*Broker, string, int16, error) {
	lookup := func() (string, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		p, ok := c.qplace[topic]
		if !ok {
			return "", false
		}
		return p.route(partition)
	}
	id, ok := lookup()
	if !ok {
		r, err := ctlDo(ctx, c, false, func(ctx context.Context, b *Broker) (*brokerop.PlacementResp, error) {
			return b.Placement(ctx, &brokerop.PlacementReq{Topics: []string{topic}})
		})
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
		c.mu.Lock()
		c.qplace[topic] = quorumPlacement{id: r.Topics[0].TopicID, owners: r.Topics[0].Owners, leaders: r.Topics[0].Leaders}
		c.mu.Unlock()
		if id, ok = lookup(); !ok {
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
	return cl, id, 0, nil
}

// forgetPlacement drops a topic's cached placement (its owner did not know it, or failed):
// the next request reads it again.
func (c *Cluster) forgetPlacement(topic string) {
	c.mu.Lock()
	delete(c.qplace, topic)
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
	return ctlDo(ctx, c, true, func(ctx context.Context, b *Broker) (*brokerop.ClusterBrokersResp, error) {
		return b.ClusterBrokers(ctx, req)
	})
}

// Placement asks any broker (quorum mode).
func (c *Cluster) Placement(ctx context.Context, req *brokerop.PlacementReq) (*brokerop.PlacementResp, error) {
	return ctlDo(ctx, c, true, func(ctx context.Context, b *Broker) (*brokerop.PlacementResp, error) { return b.Placement(ctx, req) })
}

// QuorumJoin asks any broker (quorum mode).
func (c *Cluster) QuorumJoin(ctx context.Context, req *brokerop.QuorumJoinReq) (*brokerop.QuorumJoinResp, error) {
	return ctlDo(ctx, c, true, func(ctx context.Context, b *Broker) (*brokerop.QuorumJoinResp, error) { return b.QuorumJoin(ctx, req) })
}

// QuorumAdmin asks any broker (quorum mode).
func (c *Cluster) QuorumAdmin(ctx context.Context, req *brokerop.QuorumAdminReq) (*brokerop.QuorumAdminResp, error) {
	return ctlDo(ctx, c, true, func(ctx context.Context, b *Broker) (*brokerop.QuorumAdminResp, error) {
		return b.QuorumAdmin(ctx, req)
	})
}

// UpdatePartition asks any broker (quorum mode; it forwards to the quorum leader).
func (c *Cluster) UpdatePartition(ctx context.Context, req *brokerop.UpdatePartitionReq) (*brokerop.UpdatePartitionResp, error) {
	return ctlDo(ctx, c, true, func(ctx context.Context, b *Broker) (*brokerop.UpdatePartitionResp, error) {
		return b.UpdatePartition(ctx, req)
	})
}

// DescribeQuorum asks any broker (quorum mode); it forwards to the leader. Brokers without
// the op (from before the metadata quorum) make it brokerop.ErrUnsupported.
func (c *Cluster) DescribeQuorum(ctx context.Context, req *brokerop.DescribeQuorumReq) (*brokerop.DescribeQuorumResp, error) {
	r, err := ctlDo(ctx, c, true, func(ctx context.Context, b *Broker) (*brokerop.DescribeQuorumResp, error) {
		return b.DescribeQuorum(ctx, req)
	})
	if err != nil && opUnknown(err) {
		return nil, fmt.Errorf("%w: the brokers run no metadata quorum (%w)", brokerop.ErrUnsupported, err)
	}
	return r, err
}
