package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
)

// errNoCoordinator is the error of a group op on a leader whose coordinator is not running
// (it is starting, or being rebuilt after a failed commit): retriable.
var errNoCoordinator = errors.New("controller: group coordinator not available yet")

// startCoordinator starts the group coordinator from the quorum's committed offsets (after a
// ReadBarrier) if this node leads and no live one runs; a stale one (see liveCoordinator) is
// stopped first.
func (c *Controller) startCoordinator() {
	c.coordMu.Lock()
	defer c.coordMu.Unlock()
	changed, ok := startingIn(c, &c.coord, c.stopCoordinatorLocked, "group coordinator")
	if !ok {
		return
	}
	var initial []group.Record
	for _, g := range c.r.Generations() {
		initial = append(initial, group.Record{Kind: group.KindGeneration, Group: g.Group, Generation: g.Generation})
	}
	members := 0
	for _, gm := range c.r.GroupMemberships() {
		ms, err := group.DecodeMembership(gm.Record)
		if err != nil {
			// Its members rejoin, as before memberships were recorded.
			c.log.Warn("group coordinator: recorded membership not restored", "group", gm.Group, "err", err)
			continue
		}
		initial = append(initial, group.Record{Kind: group.KindMembers, Group: gm.Group, Generation: ms.Generation, Members: ms})
		members += len(ms.Members)
	}
	for _, o := range c.r.Offsets() {
		initial = append(initial, group.Record{Kind: group.KindCommit, Group: o.Group, Topic: o.Topic, Partition: o.Partition,
			Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: o.CommitMs, Writer: o.Writer, Seq: o.Seq})
	}
	gone := make(chan struct{})
	ol := &offsetLog{c: c, gone: gone}
	co, err := group.Open(group.Config{OffsetLog: ol, Initial: initial, Logger: c.cfg.Logger, Machine: c.cfg.Groups,
		Clock: c.clk})
	if err != nil {
		c.log.Error("group coordinator", "err", err)
		return
	}
	setIn(c, &c.coord, co, gone, changed)
	c.log.Info("group coordinator started", "records", len(initial), "members", members)
}

// leadershipBarrier is the start of a coordinator that lives on the quorum's state: if this
// node leads, it waits until every entry committed before now is applied (ReadBarrier) and
// returns the channel that closes when this leadership ends; ok is false if this node does
// not lead, or no longer does, or the barrier failed (logged under what). The coordinator
// belongs to this leadership: it is stale once the leader changes, even if this node leads
// again later (another leader's coordinator may have written meanwhile).
func (c *Controller) leadershipBarrier(what string) (changed <-chan struct{}, ok bool) {
	lead, changed := c.r.LeaderWatch()
	if lead != c.r.RaftID() {
		return nil, false
	}
	ctx, cancel := c.opContext()
	defer cancel()
	if err := c.r.ReadBarrier(ctx); err != nil {
		c.log.Warn(what+": read barrier", "err", err)
		return nil, false
	}
	if closed(changed) {
		return nil, false // the leadership ended during the barrier
	}
	return changed, true
}

// liveCoordinator is the running group coordinator if it is still valid: its offset log
// has not failed and the leadership it was started in has not ended. Otherwise nil.
func (c *Controller) liveCoordinator() *group.Coordinator { return liveIn(c, &c.coord) }

// stopCoordinator stops the group coordinator, if one runs: its members rejoin the next one.
func (c *Controller) stopCoordinator() {
	c.coordMu.Lock()
	defer c.coordMu.Unlock()
	c.stopCoordinatorLocked()
}

// stopCoordinatorLocked is stopCoordinator with coordMu held.
func (c *Controller) stopCoordinatorLocked() { stopIn(c, &c.coord, nil) }

// coordinator is the live group coordinator, started (or rebuilt) here if this node leads
// and none is live; nil if this node does not lead (ensureLive).
func (c *Controller) coordinator() *group.Coordinator {
	return ensureLive(c, &c.coord, c.startCoordinator, c.stopCoordinator)
}

// offsetLog is the group coordinator's OffsetLog on the quorum: records become
// CommitOffsets, DeleteOffsets and DeleteGroups proposals. After a failed proposal (its
// outcome is unknown: it may still commit) the coordinator is rebuilt from the quorum's state
// (gone is closed; the controller's watcher replaces it), so its memory never disagrees with
// the quorum for longer than one failed commit.
type offsetLog struct {
	c    *Controller
	gone chan struct{}
	once bool // gone closed; owned by the coordinator's goroutine
}

func (l *offsetLog) Append(recs []group.Record) error {
	ctx, cancel := l.c.opContext()
	defer cancel()
	for _, cmd := range commandsOf(recs) {
		if _, err := l.c.r.Do(ctx, cmd); err != nil {
			if !l.once {
				l.once = true
				close(l.gone)
			}
			return fmt.Errorf("controller: commit offsets on the quorum: %w", err)
		}
	}
	return nil
}

func (l *offsetLog) NeedsCompaction() bool          { return false } // raft snapshots compact
func (l *offsetLog) Compact(_ []group.Record) error { return nil }   // the coordinator is being rebuilt
func (l *offsetLog) Close() error                   { return nil }

// commandsOf turns offset records into proposals, keeping their order: consecutive commits
// of one group share one CommitOffsets.
func commandsOf(recs []group.Record) []Command {
	var out []Command
	for _, r := range recs {
		switch r.Kind {
		case group.KindCommit:
			o := Offset{Group: r.Group, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, LeaderEpoch: r.LeaderEpoch, Metadata: r.Metadata, CommitMs: r.CommitMs,
				Writer: r.Writer, Seq: r.Seq}
			if n := len(out); n > 0 {
				if co, ok := out[n-1].(CommitOffsets); ok && co.Group == r.Group {
					co.Offsets = append(co.Offsets, o)
					out[n-1] = co
					continue
				}
			}
			out = append(out, CommitOffsets{Group: r.Group, Offsets: []Offset{o}})
		case group.KindDeleteOffset:
			tp := TopicPartition{Topic: r.Topic, Partition: r.Partition}
			if n := len(out); n > 0 {
				if do, ok := out[n-1].(DeleteOffsets); ok && do.Group == r.Group {
					do.Partitions = append(do.Partitions, tp)
					out[n-1] = do
					continue
				}
			}
			out = append(out, DeleteOffsets{Group: r.Group, Partitions: []TopicPartition{tp}})
		case group.KindDeleteGroup:
			out = append(out, DeleteGroups{Groups: []string{r.Group}})
		case group.KindMembers:
			// The Coordinator keeps only the last of a group's records in one append.
			out = append(out, GroupMembers{Group: r.Group, Generation: r.Generation, Record: group.AppendMembership(nil, r.Members)})
		case group.KindGeneration:
			// Every member's join answer of a rebalance carries the record: one per group.
			gg := GroupGeneration{Group: r.Group, Generation: r.Generation}
			if n := len(out); n > 0 {
				if gs, ok := out[n-1].(GroupGenerations); ok {
					if last := &gs.Groups[len(gs.Groups)-1]; last.Group == r.Group {
						last.Generation = max(last.Generation, r.Generation)
					} else {
						gs.Groups = append(gs.Groups, gg)
					}
					out[n-1] = gs
					continue
				}
			}
			out = append(out, GroupGenerations{Groups: []GroupGeneration{gg}})
		}
	}
	return out
}

// groupOp runs a group op on the leader's coordinator.
func groupOp[Req, Resp any](c *Controller, ctx context.Context, req *Req,
	local func(*group.Coordinator, context.Context, *Req) (*Resp, error),
	remote func(brokerop.Service, context.Context, *Req) (*Resp, error)) (*Resp, error) {
	return route(c, ctx, req, func(ctx context.Context, req *Req) (*Resp, error) {
		co := c.coordinator()
		if co == nil {
			return nil, errNoCoordinator
		}
		return local(co, ctx, req)
	}, remote)
}

// JoinGroup runs on the leader's coordinator.
func (c *Controller) JoinGroup(ctx context.Context, req *brokerop.JoinGroupReq) (*brokerop.JoinGroupResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).JoinGroup, brokerop.Service.JoinGroup)
}

// SyncGroup runs on the leader's coordinator.
func (c *Controller) SyncGroup(ctx context.Context, req *brokerop.SyncGroupReq) (*brokerop.SyncGroupResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).SyncGroup, brokerop.Service.SyncGroup)
}

// Heartbeat runs on the leader's coordinator.
func (c *Controller) Heartbeat(ctx context.Context, req *brokerop.HeartbeatReq) (*brokerop.HeartbeatResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).Heartbeat, brokerop.Service.Heartbeat)
}

// LeaveGroup runs on the leader's coordinator.
func (c *Controller) LeaveGroup(ctx context.Context, req *brokerop.LeaveGroupReq) (*brokerop.LeaveGroupResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).LeaveGroup, brokerop.Service.LeaveGroup)
}

// OffsetCommit runs on the leader's coordinator; the offsets are a quorum proposal.
func (c *Controller) OffsetCommit(ctx context.Context, req *brokerop.OffsetCommitReq) (*brokerop.OffsetCommitResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).OffsetCommit, brokerop.Service.OffsetCommit)
}

// OffsetFetch runs on the leader's coordinator after a ReadBarrier (it still leads).
func (c *Controller) OffsetFetch(ctx context.Context, req *brokerop.OffsetFetchReq) (*brokerop.OffsetFetchResp, error) {
	return groupOp(c, ctx, req, func(co *group.Coordinator, ctx context.Context, req *brokerop.OffsetFetchReq) (*brokerop.OffsetFetchResp, error) {
		if err := c.r.ReadBarrier(ctx); err != nil {
			return nil, err
		}
		return co.OffsetFetch(ctx, req)
	}, brokerop.Service.OffsetFetch)
}

// ListGroups runs on the leader: its group coordinator's groups and, as Kafka lists them
// (type "share"), its share coordinator's (share.go).
func (c *Controller) ListGroups(ctx context.Context, req *brokerop.ListGroupsReq) (*brokerop.ListGroupsResp, error) {
	return groupOp(c, ctx, req, func(co *group.Coordinator, ctx context.Context, req *brokerop.ListGroupsReq) (*brokerop.ListGroupsResp, error) {
		resp, err := co.ListGroups(ctx, req)
		if err != nil || resp.ErrorCode != 0 {
			return resp, err
		}
		if c.shareCoordinator() == nil {
			return nil, errNoShareCoordinator
		}
		return resp, c.b.AddShareGroups(req, resp)
	}, brokerop.Service.ListGroups)
}

// DescribeGroups runs on the leader's coordinator.
func (c *Controller) DescribeGroups(ctx context.Context, req *brokerop.DescribeGroupsReq) (*brokerop.DescribeGroupsResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).DescribeGroups, brokerop.Service.DescribeGroups)
}

// DeleteGroups runs on the leader's coordinator.
func (c *Controller) DeleteGroups(ctx context.Context, req *brokerop.DeleteGroupsReq) (*brokerop.DeleteGroupsResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).DeleteGroups, brokerop.Service.DeleteGroups)
}

// OffsetDelete runs on the leader's coordinator.
func (c *Controller) OffsetDelete(ctx context.Context, req *brokerop.OffsetDeleteReq) (*brokerop.OffsetDeleteResp, error) {
	return groupOp(c, ctx, req, (*group.Coordinator).OffsetDelete, brokerop.Service.OffsetDelete)
}
