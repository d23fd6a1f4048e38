package broker

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// FetchPooled answers exactly as Fetch does, and a pooled answer that is still held is
// never overwritten by later pooled fetches (whose buffers are released and reused).
func TestFetchPooledMatchesFetch(t *testing.T) {
	e := newTopicEnv(t, 1)
	for i := range 40 {
		var vs []string
		for j := range 1 + i%7 {
			vs = append(vs, fmt.Sprintf("value-%d-%d-%s", i, j, bytes.Repeat([]byte{'x'}, i*37%500)))
		}
		e.mustProduce(-1, "t", 0, makeBatch(i%5 == 0, vals(int64(i), vs...)...))
	}
	next := e.partLog("t", 0).NextOffset()
	ctx := context.Background()
	req := func(off int64, max int32) *brokerop.FetchReq {
		return &brokerop.FetchReq{MaxBytes: 1 << 30, Partitions: []brokerop.FetchPartition{{Topic: "t", Partition: 0, Offset: off, MaxBytes: max}}}
	}
	held, holdRelease, err := e.b.FetchPooled(ctx, req(0, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	heldCopy := bytes.Clone(held.Partitions[0].Records)
	if len(heldCopy) == 0 {
		t.Fatal("nothing fetched")
	}
	for off := int64(0); off < next; off++ {
		for _, max := range []int32{1, 300, 5000, 1 << 20} {
			want, err := e.b.Fetch(ctx, req(off, max))
			if err != nil {
				t.Fatal(err)
			}
			got, release, err := e.b.FetchPooled(ctx, req(off, max))
			if err != nil {
				t.Fatal(err)
			}
			w, g := want.Partitions[0], got.Partitions[0]
			if g.ErrorCode != w.ErrorCode || g.HighWatermark != w.HighWatermark || !bytes.Equal(g.Records, w.Records) {
				t.Fatalf("offset %d max %d: pooled answer differs", off, max)
			}
			release()
			release() // a second call is harmless
		}
	}
	if !bytes.Equal(held.Partitions[0].Records, heldCopy) {
		t.Fatal("a held pooled answer was overwritten")
	}
	holdRelease()
}

func TestReadBufClasses(t *testing.T) {
	for _, limit := range []int{-5, 0, 1, 100, 64 << 10, 64<<10 + 1, 1 << 20, 1000012, 8 << 20, 50 << 20} {
		var r readBufs
		b := r.get(limit)
		// A log's window for this limit (with the default 4 KiB index interval) fits.
		if need := min(max(limit, 4096), 8<<20) + 512; cap(b) < need {
			t.Fatalf("limit %d: buffer of %d bytes, window needs %d", limit, cap(b), need)
		}
		if cap(b) > 2*max(limit, 64<<10)+readBufSlack {
			t.Fatalf("limit %d: buffer of %d bytes is more than twice the need", limit, cap(b))
		}
		r.release()
		if len(r.held) != 0 {
			t.Fatal("release kept buffers")
		}
	}
	var nilBufs *readBufs
	if nilBufs.get(100) != nil {
		t.Fatal("plain Fetch got a pooled buffer")
	}
	nilBufs.release()
}
