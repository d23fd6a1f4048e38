package cluster

// Log and quota administration over the mesh: DeleteRecords and OffsetForLeaderEpoch go to
// each partition's owner (split-call-merge, as ListOffsets), DescribeLogDirs asks every
// broker and lists all their directories, client quotas live on the controller (the
// gateways read them from there).

import (
	"context"
	"sync"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// DeleteRecords moves each partition's log start offset on its owner.
func (c *Cluster) DeleteRecords(ctx context.Context, req *brokerop.DeleteRecordsReq) (*brokerop.DeleteRecordsResp, error) {
	if b, ok := c.single(ctx); ok {
		return b.DeleteRecords(ctx, req)
	}
	out := make([]brokerop.DeleteRecordsPartitionResp, len(req.Partitions))
	err := splitCall(ctx, c, len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition }, out,
		func(i int, code int16) brokerop.DeleteRecordsPartitionResp {
			return brokerop.DeleteRecordsPartitionResp{Topic: req.Partitions[i].Topic, Partition: req.Partitions[i].Partition, ErrorCode: code, LowWatermark: -1}
		}, true,
		func(ctx context.Context, cl *Broker, idx []int) ([]brokerop.DeleteRecordsPartitionResp, error) {
			sub := &brokerop.DeleteRecordsReq{TimeoutMs: req.TimeoutMs, Partitions: make([]brokerop.DeleteRecordsPartition, 0, len(idx))}
			for _, i := range idx {
				sub.Partitions = append(sub.Partitions, req.Partitions[i])
			}
			r, err := cl.DeleteRecords(ctx, sub)
			if err != nil {
				return nil, err
			}
			return r.Partitions, nil
		},
		func(r *brokerop.DeleteRecordsPartitionResp) int16 { return r.ErrorCode })
	if err != nil {
		return nil, err
	}
	return &brokerop.DeleteRecordsResp{Partitions: out}, nil
}

// OffsetForLeaderEpoch asks each partition's owner.
func (c *Cluster) OffsetForLeaderEpoch(ctx context.Context, req *brokerop.OffsetForLeaderEpochReq) (*brokerop.OffsetForLeaderEpochResp, error) {
	if b, ok := c.single(ctx); ok {
		return b.OffsetForLeaderEpoch(ctx, req)
	}
	out := make([]brokerop.OffsetForLeaderEpochPartitionResp, len(req.Partitions))
	err := splitCall(ctx, c, len(req.Partitions), func(i int) (string, int32) { return req.Partitions[i].Topic, req.Partitions[i].Partition }, out,
		func(i int, code int16) brokerop.OffsetForLeaderEpochPartitionResp {
			return brokerop.OffsetForLeaderEpochPartitionResp{Topic: req.Partitions[i].Topic, Partition: req.Partitions[i].Partition, ErrorCode: code, LeaderEpoch: -1, EndOffset: -1}
		}, true,
		func(ctx context.Context, cl *Broker, idx []int) ([]brokerop.OffsetForLeaderEpochPartitionResp, error) {
			sub := &brokerop.OffsetForLeaderEpochReq{Partitions: make([]brokerop.OffsetForLeaderEpochPartition, 0, len(idx))}
			for _, i := range idx {
				sub.Partitions = append(sub.Partitions, req.Partitions[i])
			}
			r, err := cl.OffsetForLeaderEpoch(ctx, sub)
			if err != nil {
				return nil, err
			}
			return r.Partitions, nil
		},
		func(r *brokerop.OffsetForLeaderEpochPartitionResp) int16 { return r.ErrorCode })
	if err != nil {
		return nil, err
	}
	return &brokerop.OffsetForLeaderEpochResp{Partitions: out}, nil
}

// DescribeLogDirs asks every broker and lists the directories of all of them.
func (c *Cluster) DescribeLogDirs(ctx context.Context, req *brokerop.DescribeLogDirsReq) (*brokerop.DescribeLogDirsResp, error) {
	if b, ok := c.single(ctx); ok {
		return b.DescribeLogDirs(ctx, req)
	}
	all := c.others()
	all[c.ctl()] = nil
	var mu sync.Mutex
	resp := &brokerop.DescribeLogDirsResp{}
	err := fanout(all, func(cl *Broker, _ []int) error {
		r, err := cl.DescribeLogDirs(ctx, req)
		if err != nil {
			return err
		}
		mu.Lock()
		resp.Dirs = append(resp.Dirs, r.Dirs...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// DescribeClientQuotas asks the controller, which keeps the quotas.
func (c *Cluster) DescribeClientQuotas(ctx context.Context, req *brokerop.DescribeClientQuotasReq) (*brokerop.DescribeClientQuotasResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).DescribeClientQuotas)
}

// AlterClientQuotas changes the controller's quotas.
func (c *Cluster) AlterClientQuotas(ctx context.Context, req *brokerop.AlterClientQuotasReq) (*brokerop.AlterClientQuotasResp, error) {
	return ctlDo(ctx, c, false, req, (*Broker).AlterClientQuotas)
}
