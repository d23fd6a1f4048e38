package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
)

// raSetup runs one real broker on the mesh with `batches` one-record batches (values
// "v<i>" padded to ~2 KiB) in topic "ra", and returns a caller to it.
func raSetup(t *testing.T, batches int) *Broker {
	t.Helper()
	gw := newEP(t)
	bs := startBrokers(t, 1, gw)
	c := NewBroker(brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, bs[0].ep.Addr()), "broker"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cr, err := c.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "ra", NumPartitions: 1, ReplicationFactor: 1}}}); err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %v %+v", err, cr)
	}
	for i := range batches {
		raProduce(t, ctx, c, i)
	}
	return c
}

func raValue(i int) []byte {
	return append([]byte(fmt.Sprintf("v%d|", i)), bytes.Repeat([]byte{'x'}, 2000)...)
}

func raProduce(t *testing.T, ctx context.Context, c *Broker, i int) {
	t.Helper()
	resp, err := c.Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
		{Topic: "ra", Records: encodeRecordBatch(nil, raValue(i), time.UnixMilli(int64(i)))}}})
	if err != nil || resp.Partitions[0].ErrorCode != 0 || resp.Partitions[0].BaseOffset != int64(i) {
		t.Fatalf("produce %d: %v %+v", i, err, resp)
	}
}

// raRead decodes an answer's records, checking each value is the one produced at its offset,
// and returns the offset after them.
func raRead(t *testing.T, resp *brokerop.FetchResp, from int64) int64 {
	t.Helper()
	next := from
	if len(resp.Partitions[0].Records) == 0 {
		return next
	}
	end, err := decodeRecords(resp.Partitions[0].Records, func(off int64, _, v []byte) {
		if off != next || !bytes.Equal(v, raValue(int(off))) {
			t.Fatalf("record at offset %d (want %d): %.10q", off, next, v)
		}
		next++
	})
	if err != nil || end != next {
		t.Fatalf("decode: %v (end %d, next %d)", err, end, next)
	}
	return next
}

func raFetch(offset int64, waitMs int32) *brokerop.FetchReq {
	return &brokerop.FetchReq{MaxWaitMs: waitMs, MinBytes: 1, MaxBytes: 1 << 20,
		Partitions: []brokerop.FetchPartition{{Topic: "ra", Offset: offset, MaxBytes: 8 << 10}}}
}

// A consumer reading a backlog in a chain of Fetches gets every record once, in order, and
// from the second Fetch on the answers come from read-aheads; at the end of the log the
// read-ahead is empty and the Fetch long-polls as usual, returning a record produced during
// the wait.
func TestReadAheadServesSequentialConsumer(t *testing.T) {
	const batches = 40
	c := raSetup(t, batches)
	ctx := timeoutCtx(t, 20*time.Second)
	off, fetches := int64(0), 0
	for off < batches {
		resp, release, err := c.FetchPooled(ctx, raFetch(off, 500))
		if err != nil {
			t.Fatal(err)
		}
		off = raRead(t, resp, off)
		release()
		fetches++
	}
	if taken := c.ahead.taken.Load(); taken < int64(fetches-1) || fetches < 5 {
		t.Fatalf("%d fetches, %d served by read-aheads; want all but the first", fetches, taken)
	}
	produced := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, err := c.Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
			{Topic: "ra", Records: encodeRecordBatch(nil, raValue(batches), time.UnixMilli(batches))}}})
		produced <- err
	}()
	resp, release, err := c.FetchPooled(ctx, raFetch(off, 5000))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got := raRead(t, resp, off); got != batches+1 {
		t.Fatalf("long poll at the end returned up to offset %d, want %d", got, batches+1)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
}

// A Fetch that does not continue the chain is answered from the log, and read-aheads nobody
// takes are bounded and cancelled (goleak in TestMain checks nothing is left running).
func TestReadAheadMismatchAndBound(t *testing.T) {
	c := raSetup(t, 10*readAheadMax)
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	c.clk = clk
	ctx := timeoutCtx(t, 20*time.Second)
	for i := range 2 * readAheadMax {
		off := int64(i * 5) // answers hold 3 batches (a backlog); none continues the previous one
		resp, release, err := c.FetchPooled(ctx, raFetch(off, 0))
		if err != nil {
			t.Fatal(err)
		}
		if got := raRead(t, resp, off); got <= off {
			t.Fatalf("fetch at %d returned nothing", off)
		}
		release()
	}
	c.ahead.mu.Lock()
	n := len(c.ahead.calls)
	c.ahead.mu.Unlock()
	if n != readAheadMax || c.ahead.taken.Load() != 0 {
		t.Fatalf("%d read-aheads outstanding, %d taken; want %d and 0", n, c.ahead.taken.Load(), readAheadMax)
	}
	// Expired read-aheads are dropped by the next Fetch: one that comes when the Broker's
	// clock has passed readAheadTTL (and not before).
	clk.Advance(readAheadTTL)
	c.ahead.take("none", c.clk.Now())
	c.ahead.mu.Lock()
	n = len(c.ahead.calls)
	c.ahead.mu.Unlock()
	if n != readAheadMax {
		t.Fatalf("%d read-aheads kept at their TTL, want %d", n, readAheadMax)
	}
	clk.Advance(time.Millisecond)
	if a := c.ahead.take("none", c.clk.Now()); a != nil {
		t.Fatal("took a read-ahead for an unknown key")
	}
	c.ahead.mu.Lock()
	n = len(c.ahead.calls)
	c.ahead.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d expired read-aheads kept", n)
	}
}

func TestNextFetch(t *testing.T) {
	b0 := encodeRecordBatch(nil, bytes.Repeat([]byte{1}, 100), time.UnixMilli(1))
	two := append(append([]byte(nil), b0...), b0...)
	// Second batch at base offset 8: the end is 9.
	copy(two[len(b0):], []byte{0, 0, 0, 0, 0, 0, 0, 8})
	if end, ok := batchesEnd(two); !ok || end != 9 {
		t.Fatalf("batchesEnd = %d, %v; want 9", end, ok)
	}
	for _, bad := range [][]byte{two[:len(two)-1], two[:30], append(append([]byte(nil), two...), 0)} {
		if _, ok := batchesEnd(bad); ok {
			t.Fatalf("batchesEnd accepted %d bytes of junk", len(bad))
		}
	}
	req := &brokerop.FetchReq{MaxBytes: 1000, Partitions: []brokerop.FetchPartition{{Topic: "a", Offset: 3, MaxBytes: 200}, {Topic: "b", Offset: 7, MaxBytes: 200}}}
	resp := &brokerop.FetchResp{Partitions: []brokerop.FetchPartitionResp{{Topic: "a", Records: two}, {Topic: "b"}}}
	next, ok := nextFetch(req, resp)
	if !ok || next.Partitions[0].Offset != 9 || next.Partitions[1].Offset != 7 || next.MaxWaitMs != 0 || fetchKey(next) == fetchKey(req) {
		t.Fatalf("nextFetch = %+v, %v", next, ok)
	}
	resp.Partitions[1].ErrorCode = 1
	if _, ok := nextFetch(req, resp); ok {
		t.Fatal("read ahead after an error")
	}
	resp.Partitions[1].ErrorCode = 0
	req.Partitions[0].MaxBytes = 1 << 20 // far from filled: no backlog
	if _, ok := nextFetch(req, resp); ok {
		t.Fatal("read ahead without a backlog")
	}
}

// Read-aheads stay within readAheadBytes of answer budget: older ones are dropped to make
// room, and a read-ahead whose answer alone could exceed it is not sent.
func TestReadAheadByteBound(t *testing.T) {
	var r readAheads
	dropped := 0
	mk := func(budget int) *aheadCall {
		a := &aheadCall{budget: budget, started: time.Now(), cancel: func() { dropped++ }}
		a.start(func() (*brokerop.FetchResp, func(), error) { return &brokerop.FetchResp{}, func() {}, nil })
		return a
	}
	for range 3 {
		r.add(mk(3 << 20))
	}
	if len(r.calls) != 2 || dropped != 1 {
		t.Fatalf("%d kept, %d dropped; want 2 and 1", len(r.calls), dropped)
	}
	r.add(mk(readAheadBytes))
	if len(r.calls) != 1 || dropped != 3 {
		t.Fatalf("%d kept, %d dropped; want 1 and 3", len(r.calls), dropped)
	}
	if got := fetchBudget(&brokerop.FetchReq{MaxBytes: 5 << 20, Partitions: []brokerop.FetchPartition{{MaxBytes: 4 << 20}, {MaxBytes: 4 << 20}}}); got != 5<<20 {
		t.Fatalf("fetchBudget = %d", got)
	}
	// Too big to read ahead: nothing is sent (this caller could not send anything).
	c := NewBroker(brokermesh.NewCaller(nil, "none"))
	b0 := encodeRecordBatch(nil, []byte("v"), time.UnixMilli(1))
	req := &brokerop.FetchReq{MaxBytes: 64 << 20, Partitions: []brokerop.FetchPartition{{Topic: "a", MaxBytes: 32 << 20}}}
	resp := &brokerop.FetchResp{Partitions: []brokerop.FetchPartitionResp{{Topic: "a", Records: bytes.Repeat(b0, 1)}}}
	req.Partitions[0].MaxBytes = int32(len(b0)) // a backlog: the answer filled its budget
	if _, ok := nextFetch(req, resp); !ok {
		t.Fatal("no backlog seen")
	}
	req.Partitions[0].MaxBytes = 32 << 20
	resp.Partitions[0].Records = bytes.Repeat(b0, (16<<20)/len(b0)+1)
	c.readAhead(context.Background(), req, resp)
	if len(c.ahead.calls) != 0 {
		t.Fatal("read ahead with a budget above readAheadBytes")
	}
}

// Over several brokers each owner's share of a sequential consumer's Fetch is read ahead too,
// and the merged answers still hold every record once, in order per partition.
func TestReadAheadAcrossBrokers(t *testing.T) {
	gw := newEP(t)
	bs := startBrokers(t, 3, gw)
	c := clusterFor(t, gw, bs)
	ctx := timeoutCtx(t, 30*time.Second)
	const parts, perPart = 3, 12
	if cr, err := c.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "ra", NumPartitions: parts, ReplicationFactor: 1}}}); err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %v %+v", err, cr)
	}
	for i := range perPart {
		req := &brokerop.ProduceReq{Acks: -1}
		for p := range int32(parts) {
			req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: "ra", Partition: p,
				Records: encodeRecordBatch(nil, raValue(i), time.UnixMilli(int64(i)))})
		}
		if resp, err := c.Produce(ctx, req); err != nil || resp.Partitions[0].ErrorCode != 0 {
			t.Fatalf("produce: %v %+v", err, resp)
		}
	}
	offs := make([]int64, parts)
	for done := false; !done; {
		req := &brokerop.FetchReq{MaxWaitMs: 500, MinBytes: 1, MaxBytes: 1 << 20}
		for p := range int32(parts) {
			req.Partitions = append(req.Partitions, brokerop.FetchPartition{Topic: "ra", Partition: p, Offset: offs[p], MaxBytes: 8 << 10})
		}
		resp, release, err := c.FetchPooled(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		done = true
		for p := range parts {
			one := &brokerop.FetchResp{Partitions: resp.Partitions[p : p+1]}
			offs[p] = raRead(t, one, offs[p])
			done = done && offs[p] == perPart
		}
		release()
	}
	taken := int64(0)
	for _, cl := range c.callers {
		taken += cl.ahead.taken.Load()
	}
	if taken == 0 {
		t.Fatal("no owner's answer came from a read-ahead")
	}
}

// batchesEnd reads answers from the broker: junk never panics, and what it accepts is whole
// v2 batches back to back.
func FuzzBatchesEnd(f *testing.F) {
	b0 := encodeRecordBatch([]byte("k"), []byte("v"), time.UnixMilli(1))
	f.Add(b0)
	f.Add(append(append([]byte(nil), b0...), b0...))
	f.Add(b0[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		end, ok := batchesEnd(data)
		if !ok {
			return
		}
		for len(data) > 0 { // re-walk: every batch must be v2 and fit
			n := 12 + int(int32(binary.BigEndian.Uint32(data[8:12])))
			if data[16] != 2 || n < 61 || n > len(data) {
				t.Fatalf("accepted a bad batch (end %d)", end)
			}
			data = data[n:]
		}
	})
}

// A client that rotates the order of its partitions from Fetch to Fetch (kgo does) still gets
// read-ahead answers, in its own order, when the total budget cannot bind.
func TestReadAheadPartitionRotation(t *testing.T) {
	gw := newEP(t)
	bs := startBrokers(t, 1, gw)
	c := NewBroker(brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, bs[0].ep.Addr()), "broker"))
	ctx := timeoutCtx(t, 20*time.Second)
	const perPart = 20
	if cr, err := c.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "ra", NumPartitions: 2, ReplicationFactor: 1}}}); err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %v %+v", err, cr)
	}
	for i := range perPart {
		req := &brokerop.ProduceReq{Acks: -1}
		for p := range int32(2) {
			req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: "ra", Partition: p, Records: encodeRecordBatch(nil, raValue(i), time.UnixMilli(1))})
		}
		if _, err := c.Produce(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	offs := []int64{0, 0}
	fetches := 0
	for offs[0] < perPart || offs[1] < perPart {
		first := int32(fetches % 2) // rotate
		req := &brokerop.FetchReq{MaxWaitMs: 500, MinBytes: 1, MaxBytes: 1 << 20}
		for _, p := range []int32{first, 1 - first} {
			req.Partitions = append(req.Partitions, brokerop.FetchPartition{Topic: "ra", Partition: p, Offset: offs[p], MaxBytes: 8 << 10})
		}
		resp, release, err := c.FetchPooled(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range []int32{first, 1 - first} {
			if resp.Partitions[i].Partition != p {
				t.Fatalf("answer partition %d at %d, want %d", resp.Partitions[i].Partition, i, p)
			}
			offs[p] = raRead(t, &brokerop.FetchResp{Partitions: resp.Partitions[i : i+1]}, offs[p])
		}
		release()
		fetches++
	}
	if taken := c.ahead.taken.Load(); taken < int64(fetches-2) {
		t.Fatalf("%d fetches, %d from read-aheads", fetches, taken)
	}
	// With a binding total budget the order is part of the key.
	r1 := &brokerop.FetchReq{MaxBytes: 100, Partitions: []brokerop.FetchPartition{{Topic: "a", MaxBytes: 80}, {Topic: "b", MaxBytes: 80}}}
	r2 := &brokerop.FetchReq{MaxBytes: 100, Partitions: []brokerop.FetchPartition{{Topic: "b", MaxBytes: 80}, {Topic: "a", MaxBytes: 80}}}
	if fetchKey(r1) == fetchKey(r2) {
		t.Fatal("binding budget: rotated requests share a key")
	}
	r1.MaxBytes, r2.MaxBytes = 1000, 1000
	if fetchKey(r1) != fetchKey(r2) {
		t.Fatal("non-binding budget: rotated requests differ in key")
	}
}
