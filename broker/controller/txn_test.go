package controller

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/broker/txn"
)

// txnBatch is a transactional batch of one record v of producer pid at epoch, sequence seq.
func txnBatch(v string, pid int64, epoch int16, seq int32) []byte {
	b := batch(v)
	binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|0x10)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// Transactions across three brokers on RF=3 partitions: the coordinator runs on the quorum
// leader whatever broker a client asks, transactional batches are verified with it from the
// partitions' leaders, markers reach the partitions' leaders, read_committed sees committed
// data only and read_uncommitted the aborted data too. Then the coordinator's broker is
// shut down with a transaction open: the next leader's coordinator knows it from the quorum
// and commits it.
func TestStartNodeReplicatedTransactions(t *testing.T) {
	ms, caller := startThreeNodes(t)
	createR3(t, caller, ms[0], 2)
	live := ms
	// txnOp retries a coordinator op through every live broker until it answers 0.
	txnOp := func(what string, op func(ctx context.Context, s brokerop.Service) (int16, error)) {
		t.Helper()
		eventually(t, what, func() error {
			var last error
			for _, m := range live {
				ctx, cancel := ctx5()
				code, err := op(ctx, caller(m))
				cancel()
				if err == nil && code == 0 {
					return nil
				}
				last = fmt.Errorf("code %d, %v", code, err)
			}
			return last
		})
	}
	var pid int64
	var epoch int16
	txnOp("InitProducerID", func(ctx context.Context, s brokerop.Service) (int16, error) {
		r, err := s.InitTxnProducerID(ctx, &brokerop.InitTxnProducerIDReq{TransactionalID: "t", TimeoutMs: 600000, ProducerID: -1, ProducerEpoch: -1})
		if err != nil {
			return -1, err
		}
		pid, epoch = r.ProducerID, r.ProducerEpoch
		return r.ErrorCode, nil
	})
	seq := []int32{0, 0}
	add := func() {
		txnOp("AddPartitionsToTxn", func(ctx context.Context, s brokerop.Service) (int16, error) {
			r, err := s.AddPartitionsToTxn(ctx, &brokerop.AddPartitionsToTxnReq{TransactionalID: "t", ProducerID: pid, ProducerEpoch: epoch,
				Partitions: []brokerop.TxnPartition{{Topic: "r", Partition: 0}, {Topic: "r", Partition: 1}}})
			if err != nil {
				return -1, err
			}
			return r.ErrorCode, nil
		})
	}
	// produce sends a transactional record to each partition's leader.
	produce := func(v string) {
		t.Helper()
		for p := range int32(2) {
			eventually(t, "transactional produce of "+v, func() error {
				var last error
				for _, m := range live {
					ctx, cancel := ctx5()
					r, err := caller(m).Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
						{Topic: "r", Partition: p, Records: txnBatch(fmt.Sprintf("%s-%d", v, p), pid, epoch, seq[p])}}})
					cancel()
					if err == nil && r.Partitions[0].ErrorCode == 0 {
						seq[p]++
						return nil
					}
					last = fmt.Errorf("%v %+v", err, r)
				}
				return last
			})
		}
	}
	end := func(commit bool) {
		txnOp(fmt.Sprintf("EndTxn(commit=%v)", commit), func(ctx context.Context, s brokerop.Service) (int16, error) {
			r, err := s.EndTxn(ctx, &brokerop.EndTxnReq{TransactionalID: "t", ProducerID: pid, ProducerEpoch: epoch, Commit: commit})
			if err != nil {
				return -1, err
			}
			return r.ErrorCode, nil
		})
	}
	// read returns partition p's values at an isolation level from its leader, once its
	// last stable offset is its high watermark (no transaction open).
	read := func(p int32, iso int8) []string {
		t.Helper()
		var vals []string
		eventually(t, "read", func() error {
			var last error
			for _, m := range live {
				ctx, cancel := ctx5()
				fr, err := caller(m).Fetch(ctx, &brokerop.FetchReq{MaxBytes: 1 << 20, IsolationLevel: iso,
					Partitions: []brokerop.FetchPartition{{Topic: "r", Partition: p, MaxBytes: 1 << 20}}})
				cancel()
				if err != nil || fr.Partitions[0].ErrorCode != 0 {
					last = fmt.Errorf("%v %+v", err, fr)
					continue
				}
				r := fr.Partitions[0]
				if r.LastStableOffset != r.HighWatermark {
					return fmt.Errorf("lso %d, hw %d", r.LastStableOffset, r.HighWatermark)
				}
				vals = batchValues(r.Records)
				return nil
			}
			return last
		})
		return vals
	}

	add()
	produce("c")
	end(true)
	add()
	produce("a")
	end(false)
	for p := range int32(2) {
		if got, want := read(p, 1), []string{fmt.Sprintf("c-%d", p)}; !slices.Equal(got, want) {
			t.Fatalf("r-%d read_committed %q, want %q", p, got, want)
		}
		if got, want := read(p, 0), []string{fmt.Sprintf("c-%d", p), fmt.Sprintf("a-%d", p)}; !slices.Equal(got, want) {
			t.Fatalf("r-%d read_uncommitted %q, want %q", p, got, want)
		}
	}

	// A transaction open when the coordinator's broker goes: the next one commits it.
	add()
	produce("x")
	var coord *threeNodeMember
	for _, m := range ms {
		if m.n.Controller.isLeader() {
			coord = m
		}
	}
	if coord == nil {
		t.Fatal("no quorum leader")
	}
	coord.n.Close()
	coord.n = nil
	live = nil
	for _, m := range ms {
		if m != coord {
			live = append(live, m)
		}
	}
	end(true)
	for p := range int32(2) {
		if got, want := read(p, 1), []string{fmt.Sprintf("c-%d", p), fmt.Sprintf("x-%d", p)}; !slices.Equal(got, want) {
			t.Fatalf("after coordinator failover: r-%d read_committed %q, want %q", p, got, want)
		}
	}
}

// An expired transactional id (a Dead record from the coordinator's sweep) leaves the
// metadata state: the quorum keeps no record of it, so a new leader's coordinator does not
// know it either. Other ids keep their latest record.
func TestExpiredTxnLeavesTheQuorumState(t *testing.T) {
	s := metadata.New()
	var idx uint64
	put := func(tx *txn.Txn) {
		idx++
		if r, ok := s.Apply(idx, metadata.EncodeCommand(putTxn(tx))).(*metadata.PutTxnResult); !ok || r.Code != 0 {
			t.Fatalf("PutTxn %q: %+v", tx.ID, r)
		}
	}
	put(&txn.Txn{ID: "a", ProducerID: 1, TimeoutMs: 1000, State: txn.CompleteCommit, UpdateMs: 5})
	put(&txn.Txn{ID: "b", ProducerID: 2, TimeoutMs: 1000, State: txn.Empty, UpdateMs: 6})
	put(&txn.Txn{ID: "a", ProducerID: 1, TimeoutMs: 1000, State: txn.Dead, UpdateMs: 9})
	got := s.Txns()
	if _, ok := got["a"]; ok || len(got) != 1 {
		t.Fatalf("quorum txns after a's expiry: %d ids, a present %v", len(got), ok)
	}
	if b, err := txn.DecodeRecord(got["b"]); err != nil || b.ProducerID != 2 || b.State != txn.Empty {
		t.Fatalf("b: %+v, %v", b, err)
	}
}
