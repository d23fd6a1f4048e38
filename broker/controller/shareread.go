package controller

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// shareReader is the share coordinator's broker.ShareReader in a cluster: the partitions of
// a ListOffsets or Fetch are split by the broker leading (or owning) each, every part asked
// of its broker at once (this broker's own directly), and the answers merged back in request
// order. A partition with no known leader answers LEADER_NOT_AVAILABLE, one whose broker
// did not answer NOT_LEADER_OR_FOLLOWER (both retriable: the share consumer asks again).
// A Fetch that waits (MaxWaitMs > 0, the ShareFetch long poll) returns once the first part
// returns, the others cancelled: the waiter only needs to know that something changed.
type shareReader struct{ c *Controller }

// leaderParts groups the indexes 0..n-1 of a request's partitions (tp(i) names partition i)
// by the broker leading each, in the order first seen, with that broker's reader; noLeader
// lists the partitions with no known leader or broker.
func (c *Controller) leaderParts(n int, tp func(i int) (string, int32)) (parts []readerPart, noLeader []int) {
	topics := map[string]Topic{}
	for _, t := range c.r.Topics() {
		topics[t.Name] = t
	}
	members := c.r.Brokers()
	byTarget := map[uint64]int{}
	for i := range n {
		topic, p := tp(i)
		target := partitionTarget(topics, members, topic, p)
		rd := c.readerOf(target, members)
		if rd == nil {
			noLeader = append(noLeader, i)
			continue
		}
		k, ok := byTarget[target]
		if !ok {
			k = len(parts)
			byTarget[target] = k
			parts = append(parts, readerPart{rd: rd})
		}
		parts[k].idx = append(parts[k].idx, i)
	}
	return parts, noLeader
}

// readerPart is one broker's share of a request: the indexes of its partitions.
type readerPart struct {
	rd  broker.ShareReader
	idx []int
}

// partitionTarget is the raft id of the broker leading (replicated) or owning the
// partition; 0 when the topic or partition is unknown or no leader is known.
func partitionTarget(topics map[string]Topic, members []Member, topic string, p int32) uint64 {
	t, ok := topics[topic]
	if !ok || p < 0 || p >= t.Partitions {
		return 0
	}
	if t.Replicas != nil {
		return t.Leaders[p].Leader
	}
	for _, m := range members {
		if m.NodeID == t.Owners[p] {
			return m.RaftID
		}
	}
	return 0
}

// readerOf is how this controller reads the partitions of broker target: its own broker
// directly, another through its caller; nil for none.
func (c *Controller) readerOf(target uint64, members []Member) broker.ShareReader {
	if target == 0 {
		return nil
	}
	if target == c.r.RaftID() {
		return c.b
	}
	for _, m := range members {
		if m.RaftID == target {
			return c.callerOf(m)
		}
	}
	return nil
}

// shareReadTimeout bounds one broker's part of a read beyond the wait it was asked for, so
// that a broker that does not answer (down, its partitions not yet moved) does not hold up
// the other brokers' partitions: its part answers NOT_LEADER_OR_FOLLOWER instead.
const shareReadTimeout = 3 * time.Second

// eachPart runs call for every part at once, each for at most wait + shareReadTimeout, and
// returns once all returned, or with first once the first returned (the others cancelled,
// then waited for).
func eachPart(ctx context.Context, parts []readerPart, first bool, wait time.Duration, call func(ctx context.Context, p readerPart)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	done := make(chan struct{}, len(parts))
	for _, p := range parts {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, wait+shareReadTimeout)
			defer cancel()
			call(pctx, p)
			done <- struct{}{}
		})
	}
	if first && len(parts) > 0 {
		<-done
		cancel()
	}
	wg.Wait()
}

// pick is the elements of all at idx, in that order: one broker's part of a request.
func pick[T any](all []T, idx []int) []T {
	out := make([]T, len(idx))
	for k, i := range idx {
		out[k] = all[i]
	}
	return out
}

// place puts a part's answers (got, in the part's request order) at their places idx of the
// whole answer; a partition the part did not answer (got nil or short: the call failed) gets
// missing instead.
func place[T any](out []T, idx []int, got []T, missing func(*T)) {
	for k, i := range idx {
		if k >= len(got) {
			missing(&out[i])
			continue
		}
		out[i] = got[k]
	}
}

func (r shareReader) ListOffsets(ctx context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error) {
	parts, noLeader := r.c.leaderParts(len(req.Partitions), func(i int) (string, int32) {
		return req.Partitions[i].Topic, req.Partitions[i].Partition
	})
	resp := &brokerop.ListOffsetsResp{Partitions: make([]brokerop.ListOffsetsPartitionResp, len(req.Partitions))}
	for i, p := range req.Partitions {
		resp.Partitions[i] = brokerop.ListOffsetsPartitionResp{Topic: p.Topic, Partition: p.Partition, Offset: -1, Timestamp: -1}
	}
	for _, i := range noLeader {
		resp.Partitions[i].ErrorCode = kerr.LeaderNotAvailable.Code
	}
	eachPart(ctx, parts, false, 0, func(ctx context.Context, p readerPart) {
		sr, err := p.rd.ListOffsets(ctx, &brokerop.ListOffsetsReq{IsolationLevel: req.IsolationLevel, Partitions: pick(req.Partitions, p.idx)})
		var got []brokerop.ListOffsetsPartitionResp
		if err == nil {
			got = sr.Partitions
		}
		place(resp.Partitions, p.idx, got, func(o *brokerop.ListOffsetsPartitionResp) { o.ErrorCode = kerr.NotLeaderForPartition.Code })
		if err != nil {
			r.c.log.Debug("share: reading offsets from a partition's leader", "err", err)
		}
	})
	return resp, nil
}

func (r shareReader) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	parts, noLeader := r.c.leaderParts(len(req.Partitions), func(i int) (string, int32) {
		return req.Partitions[i].Topic, req.Partitions[i].Partition
	})
	resp := &brokerop.FetchResp{Partitions: make([]brokerop.FetchPartitionResp, len(req.Partitions))}
	for i, p := range req.Partitions {
		resp.Partitions[i] = brokerop.FetchPartitionResp{Topic: p.Topic, Partition: p.Partition, HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1}
	}
	for _, i := range noLeader {
		resp.Partitions[i].ErrorCode = kerr.LeaderNotAvailable.Code
	}
	eachPart(ctx, parts, req.MaxWaitMs > 0, time.Duration(max(req.MaxWaitMs, 0))*time.Millisecond, func(ctx context.Context, p readerPart) {
		sr, err := p.rd.Fetch(ctx, &brokerop.FetchReq{MaxWaitMs: req.MaxWaitMs, MinBytes: req.MinBytes, MaxBytes: req.MaxBytes,
			IsolationLevel: req.IsolationLevel, Partitions: pick(req.Partitions, p.idx)})
		var got []brokerop.FetchPartitionResp
		if err == nil {
			got = sr.Partitions
		}
		place(resp.Partitions, p.idx, got, func(o *brokerop.FetchPartitionResp) { o.ErrorCode = kerr.NotLeaderForPartition.Code })
		if err != nil && ctx.Err() == nil {
			r.c.log.Debug("share: reading records from a partition's leader", "err", err)
		}
	})
	return resp, nil
}
