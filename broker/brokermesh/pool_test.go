package brokermesh

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// pooledBroker answers Fetch from "pooled" buffers and counts releases; after a release it
// scribbles over the buffer, so an answer written after its release would arrive corrupt.
type pooledBroker struct {
	fakeBroker
	records  [][]byte
	pooled   atomic.Int64
	released atomic.Int64
}

func (p *pooledBroker) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	p.pooled.Add(1)
	resp := &brokerop.FetchResp{}
	bufs := make([][]byte, len(p.records))
	for i, r := range p.records {
		bufs[i] = bytes.Clone(r)
		resp.Partitions = append(resp.Partitions, brokerop.FetchPartitionResp{Topic: "t", Partition: int32(i), HighWatermark: int64(len(r)), Records: bufs[i]})
	}
	return resp, func() {
		p.released.Add(1)
		for _, b := range bufs {
			for i := range b {
				b[i] = 0xEE
			}
		}
	}, nil
}

func TestFetchPooledBothSides(t *testing.T) {
	big := make([]byte, 300<<10) // above fetchRefMin and in the caller's pool classes
	for i := range big {
		big[i] = byte(i * 7)
	}
	pb := &pooledBroker{records: [][]byte{big, []byte("small"), nil}}
	c, _ := setup(t, StoreSpans{DataService: pb})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang bound for a loaded machine, not a timing check
	defer cancel()
	for round := range 3 {
		resp, release, err := c.FetchPooled(ctx, &brokerop.FetchReq{Partitions: []brokerop.FetchPartition{{Topic: "t"}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Partitions) != 3 {
			t.Fatalf("round %d: %d partitions", round, len(resp.Partitions))
		}
		for i, want := range pb.records {
			got := resp.Partitions[i]
			if !bytes.Equal(got.Records, want) || got.Partition != int32(i) || got.HighWatermark != int64(len(want)) {
				t.Fatalf("round %d partition %d: %d bytes (hw %d), want %d", round, i, len(got.Records), got.HighWatermark, len(want))
			}
		}
		release()
		// A plain Fetch sees the same answer (the broker's pooled path serves it too).
		plain, err := c.Fetch(ctx, &brokerop.FetchReq{Partitions: []brokerop.FetchPartition{{Topic: "t"}}})
		if err != nil || !bytes.Equal(plain.Partitions[0].Records, big) {
			t.Fatalf("round %d: plain fetch: %v", round, err)
		}
	}
	if p, r := pb.pooled.Load(), pb.released.Load(); p != 6 || r != 6 {
		t.Fatalf("server: %d pooled fetches, %d released; want 6 and 6", p, r)
	}
}
