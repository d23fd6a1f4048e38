package controller

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestStartNodeReplicatedPartition wires the whole replicated path as cmd/broker runs it:
// three StartNode brokers over real mesh endpoints, a topic with replication factor 3, an
// acks=all produce answered by the partition's raft leader, the leader broker shut down, and
// the partition led again by one of the other two, which still has every acknowledged record
// and takes new ones.
func TestStartNodeReplicatedPartition(t *testing.T) {
	ms, caller := startThreeNodes(t)
	createR3(t, caller, ms[0], 1)
	// produce tries every live broker until the partition's leader takes the batch.
	produce := func(v string, live []*threeNodeMember) *threeNodeMember {
		t.Helper()
		var by *threeNodeMember
		eventually(t, "acks=all produce of "+v, func() error {
			var last error
			for _, m := range live {
				ctx, cancel := ctx5()
				r, err := caller(m).Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "r", Partition: 0, Records: batch(v)}}})
				cancel()
				if err == nil && r.Partitions[0].ErrorCode == 0 {
					by = m
					return nil
				}
				last = fmt.Errorf("%v %+v", err, r)
			}
			return last
		})
		return by
	}
	leader := produce("a", ms)
	produce("b", ms)
	var rest []*threeNodeMember
	for _, m := range ms {
		if m != leader {
			rest = append(rest, m)
		}
	}
	leader.n.Close()
	leader.n = nil
	next := produce("c", rest)
	eventually(t, "the new leader serves all three records", func() error {
		ctx, cancel := ctx5()
		defer cancel()
		fr, err := caller(next).Fetch(ctx, &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: "r", Partition: 0, Offset: 0, MaxBytes: 1 << 20}}})
		if err != nil {
			return err
		}
		p := fr.Partitions[0]
		if p.ErrorCode != 0 {
			return fmt.Errorf("fetch code %d", p.ErrorCode)
		}
		vals := batchValues(p.Records)
		if fmt.Sprint(vals) != "[a b c]" {
			return fmt.Errorf("values %v (high watermark %d)", vals, p.HighWatermark)
		}
		return nil
	})
}

// batchValues lists the record values of the data batches in b (control batches skipped).
func batchValues(b []byte) []string {
	var out []string
	for len(b) >= 12 {
		n := 12 + int(binary.BigEndian.Uint32(b[8:12]))
		if n > len(b) {
			break
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b[:n]); err == nil && rb.Attributes&0x20 == 0 {
			rs := rb.Records
			for range rb.NumRecords {
				l, k := binary.Varint(rs)
				if k <= 0 || k+int(l) > len(rs) {
					break
				}
				var r kmsg.Record
				if r.ReadFrom(rs[:k+int(l)]) == nil {
					out = append(out, string(r.Value))
				}
				rs = rs[k+int(l):]
			}
		}
		b = b[n:]
	}
	return out
}

// threeNodeMember is one of startThreeNodes' brokers.
type threeNodeMember struct {
	ep *endpoint.Endpoint
	n  *Node
}

// createR3 creates the topic r of parts partitions and replication factor 3 through m,
// asking again until it exists.
func createR3(t *testing.T, caller func(*threeNodeMember) brokerop.Service, m *threeNodeMember, parts int32) {
	t.Helper()
	eventually(t, "an RF=3 topic", func() error {
		ctx, cancel := ctx5()
		defer cancel()
		cr, err := caller(m).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "r", NumPartitions: parts, ReplicationFactor: 3}}})
		if err != nil {
			return err
		}
		if c := cr.Topics[0].ErrorCode; c != 0 && c != 36 { // 36: already exists (a retry)
			return fmt.Errorf("create: code %d %v", c, cr.Topics[0].ErrorMessage)
		}
		return nil
	})
}

// startThreeNodes starts three StartNode brokers over real mesh endpoints that trust the
// returned gateway endpoint, waits until they form a three-voter quorum with a leader, and
// closes everything when the test ends. caller reaches a member as that gateway.
func startThreeNodes(t *testing.T) (ms []*threeNodeMember, caller func(*threeNodeMember) brokerop.Service) {
	t.Helper()
	gw := endpointWith(t, key.GenerateSecretKey(), "127.0.0.1:0")
	t.Cleanup(func() { gw.Close() })
	ms = make([]*threeNodeMember, 3)
	var seeds []endpoint.NodeAddr
	for i := range ms {
		ms[i] = &threeNodeMember{ep: endpointWith(t, key.GenerateSecretKey(), "127.0.0.1:0")}
		seeds = append(seeds, ms[i].ep.Addr())
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		dir := t.TempDir()
		wg.Go(func() {
			n, err := StartNode(context.Background(), NodeConfig{Broker: broker.Config{Dir: dir}, Endpoint: m.ep, Seeds: seeds,
				Trust: func(k key.PublicKey) bool { return k == gw.NodeID() }, Logger: testLog()})
			if err != nil {
				t.Error(err)
				return
			}
			m.n = n
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Cleanup(func() {
		for _, m := range ms {
			if m.n != nil {
				m.n.Close()
			}
			m.ep.Close()
		}
	})
	caller = func(m *threeNodeMember) brokerop.Service { return newGatewayCaller(gw, m.ep.Addr()) }
	eventually(t, "three voters", func() error {
		st := ms[0].n.Controller.Status()
		if len(st.Brokers) != 3 || st.LeaderNodeID == "" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	return ms, caller
}
