package broker

import (
	"context"
	"errors"
	"sync"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Produce validates and appends each partition's record batches, stored byte for byte as
// produced except for the base offsets the broker assigns. Partitions are independent: a bad
// payload fails only its own partition, and nothing of it is stored.
//
// With acks=-1 a partition's answer waits until its data is fsynced (unless the topic relaxes
// this with flush.messages / flush.ms, see doc.go); concurrent producers share fsyncs through
// the log's group commit, and the partitions of one request are synced in parallel.
func (b *Broker) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.ProduceResp{Partitions: make([]brokerop.ProducePartitionResp, len(req.Partitions))}
	type pending struct {
		i    int
		p    *partition
		l    *wal.Log
		upTo int64
	}
	var syncs []pending
	for i := range req.Partitions {
		pp := &req.Partitions[i]
		r := &resp.Partitions[i]
		*r = brokerop.ProducePartitionResp{Topic: pp.Topic, Partition: pp.Partition, BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
		if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
			r.ErrorCode = kerr.InvalidRequiredAcks.Code
			continue
		}
		p := b.lookup(pp.Topic, pp.Partition)
		if p == nil {
			r.ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		cfg := p.t.cfg.Load()
		sum, err := ValidateBatches(pp.Records, cfg.maxMessageBytes)
		if err != nil {
			var be *BatchError
			errors.As(err, &be)
			r.ErrorCode, r.ErrorMessage = be.Code, be.Msg
			continue
		}
		p.logMu.RLock()
		l := p.log
		base, err := l.Append(pp.Records, sum.Records, sum.MaxTimestamp)
		start, synced := l.StartOffset(), l.SyncedOffset()
		p.logMu.RUnlock()
		if err != nil {
			r.ErrorCode = b.storageError(p, "append", err)
			continue
		}
		p.wake()
		r.BaseOffset = base
		r.LogStartOffset = start
		upTo := base + int64(sum.Records)
		switch {
		case !cfg.relaxed && req.Acks == -1:
			syncs = append(syncs, pending{i, p, l, upTo})
		case cfg.relaxed && upTo-synced >= cfg.flushMessages:
			syncs = append(syncs, pending{i, p, l, upTo}) // flush.messages reached, whatever the acks
		}
	}
	switch len(syncs) {
	case 0:
	case 1:
		s := syncs[0]
		if err := s.p.sync(s.l, s.upTo, b.cfg.Now); err != nil {
			resp.Partitions[s.i].ErrorCode = b.storageError(s.p, "sync", err)
		}
	default:
		var wg sync.WaitGroup
		errs := make([]error, len(syncs))
		for j, s := range syncs {
			wg.Go(func() { errs[j] = s.p.sync(s.l, s.upTo, b.cfg.Now) })
		}
		wg.Wait()
		for j, s := range syncs {
			if errs[j] != nil {
				resp.Partitions[s.i].ErrorCode = b.storageError(s.p, "sync", errs[j])
			}
		}
	}
	return resp, nil
}

// storageError maps a log error to a Kafka code: the partition went away with its topic, or
// the disk failed.
func (b *Broker) storageError(p *partition, op string, err error) int16 {
	if p.deleted.Load() {
		return kerr.UnknownTopicOrPartition.Code
	}
	if !b.closed.Load() {
		b.log.Error("broker: storage", "op", op, "topic", p.t.name, "partition", p.index, "err", err)
	}
	return kerr.KafkaStorageError.Code
}
