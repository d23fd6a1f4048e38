package cluster

import (
	"bytes"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Large produces travel by reference on the gateway side and through reused payload buffers
// on the broker side; pipelined, each stored batch is still exactly the one sent.
func TestLargeProducesRoundTripThroughPooledPayloads(t *testing.T) {
	c := raSetup(t, 0)
	ctx := timeoutCtx(t, 20*time.Second)
	const n = 12
	want := make([][]byte, n)
	waits := make([]func() (*brokerop.ProduceResp, error), n)
	for i := range n {
		v := bytes.Repeat([]byte{byte('a' + i)}, 100<<10+i) // > 64 KiB: pooled payload classes
		want[i] = v
		waits[i] = c.ProduceStaged(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
			{Topic: "ra", Records: encodeRecordBatch(nil, v, time.UnixMilli(int64(i)))}}})
	}
	for i, w := range waits {
		resp, err := w()
		if err != nil || resp.Partitions[0].ErrorCode != 0 || resp.Partitions[0].BaseOffset != int64(i) {
			t.Fatalf("produce %d: %v %+v", i, err, resp)
		}
	}
	for off := int64(0); off < n; {
		resp, release, err := c.FetchPooled(ctx, &brokerop.FetchReq{MaxBytes: 1 << 20,
			Partitions: []brokerop.FetchPartition{{Topic: "ra", Offset: off, MaxBytes: 300 << 10}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeRecords(resp.Partitions[0].Records, func(o int64, _, v []byte) {
			if o != off || !bytes.Equal(v, want[o]) {
				t.Fatalf("offset %d (want %d): %d bytes of %q", o, off, len(v), v[:1])
			}
			off++
		}); err != nil {
			t.Fatal(err)
		}
		release()
	}
}
