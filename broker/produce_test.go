package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestProduceFetchRoundTrip(t *testing.T) {
	e := newTopicEnv(t, 2)
	b0 := makeBatch(false, vals(1000, "a", "b", "c")...)
	b1 := makeBatch(true, vals(2000, "d", "e")...) // compressed: stored as produced
	b2 := makeBatch(false, vals(3000, "f")...)
	if off := e.mustProduce(-1, "t", 0, slices.Clone(b0)); off != 0 {
		t.Fatalf("first base offset %d, want 0", off)
	}
	if off := e.mustProduce(1, "t", 0, slices.Clone(b1)); off != 3 {
		t.Fatalf("second base offset %d, want 3", off)
	}
	if off := e.mustProduce(-1, "t", 1, slices.Clone(b2)); off != 0 {
		t.Fatalf("partition 1 base offset %d, want 0 (offsets are per partition)", off)
	}
	r := e.fetch("t", 0, 0, 1<<20)
	if r.ErrorCode != 0 || r.HighWatermark != 5 || r.LastStableOffset != 5 || r.LogStartOffset != 0 {
		t.Fatalf("fetch: %+v", r)
	}
	want := slices.Concat(b0, b1)
	binary.BigEndian.PutUint64(want[len(b0):], 3) // the broker stamps base offsets, nothing else
	if !bytes.Equal(r.Records, want) {
		t.Fatal("stored batches differ from the produced bytes (besides the base offset)")
	}
	// Fetching from inside the compressed batch returns it whole.
	if r := e.fetch("t", 0, 4, 1<<20); !bytes.Equal(r.Records, want[len(b0):]) {
		t.Fatalf("fetch at 4: %d bytes", len(r.Records))
	}
	offs, vs := e.readAll("t", 1, 0)
	if !slices.Equal(offs, []int64{0}) || !slices.Equal(vs, []string{"f"}) {
		t.Fatalf("partition 1: %v %v", offs, vs)
	}
}

func TestProduceMultiBatchPayloadGetsConsecutiveOffsets(t *testing.T) {
	e := newTopicEnv(t, 1)
	e.mustProduce(-1, "t", 0, makeBatch(false, vals(1, "x")...))
	payload := slices.Concat(makeBatch(false, vals(2, "a", "b")...), makeBatch(false, vals(3, "c")...))
	if off := e.mustProduce(-1, "t", 0, payload); off != 1 {
		t.Fatalf("base %d, want 1", off)
	}
	offs, vs := e.readAll("t", 0, 0)
	if !slices.Equal(offs, []int64{0, 1, 2, 3}) || !slices.Equal(vs, []string{"x", "a", "b", "c"}) {
		t.Fatalf("got %v %v", offs, vs)
	}
}

func TestProduceErrors(t *testing.T) {
	e := newEnv(t)
	e.create("t", 1, map[string]string{"max.message.bytes": "200"})
	good := makeBatch(false, vals(1, "ok")...)
	e.mustProduce(-1, "t", 0, slices.Clone(good))
	bad := slices.Clone(good)
	bad[len(bad)-1] ^= 0xff
	big := makeBatch(false, vals(1, string(make([]byte, 300)))...)
	legacy := slices.Clone(good)
	legacy[16] = 1
	for _, tc := range []struct {
		name  string
		topic string
		part  int32
		acks  int16
		data  []byte
		code  int16
	}{
		{"bad crc", "t", 0, -1, bad, kerr.CorruptMessage.Code},
		{"truncated", "t", 0, 1, good[:40], kerr.CorruptMessage.Code},
		{"too large", "t", 0, -1, big, kerr.MessageTooLarge.Code},
		{"legacy", "t", 0, -1, legacy, kerr.InvalidRecord.Code},
		{"unknown topic", "nope", 0, -1, good, kerr.UnknownTopicOrPartition.Code},
		{"unknown partition", "t", 5, -1, good, kerr.UnknownTopicOrPartition.Code},
		{"negative partition", "t", -1, -1, good, kerr.UnknownTopicOrPartition.Code},
		{"bad acks", "t", 0, 2, good, kerr.InvalidRequiredAcks.Code},
	} {
		r := e.produce(tc.acks, tc.topic, tc.part, slices.Clone(tc.data))
		if r.ErrorCode != tc.code || r.BaseOffset != -1 {
			t.Errorf("%s: code %d base %d, want code %d base -1", tc.name, r.ErrorCode, r.BaseOffset, tc.code)
		}
	}
	// Nothing of the refused payloads was stored.
	if offs, _ := e.readAll("t", 0, 0); !slices.Equal(offs, []int64{0}) {
		t.Fatalf("log holds %v, want only offset 0", offs)
	}
	// One bad partition does not fail the others of the request.
	e.create("u", 2, nil)
	resp, _ := e.b.Produce(context.Background(), &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
		{Topic: "u", Partition: 0, Records: slices.Clone(bad)},
		{Topic: "u", Partition: 1, Records: slices.Clone(good)},
	}})
	if resp.Partitions[0].ErrorCode != kerr.CorruptMessage.Code || resp.Partitions[1].ErrorCode != 0 || resp.Partitions[1].BaseOffset != 0 {
		t.Fatalf("mixed request: %+v", resp.Partitions)
	}
}

func TestFetchLimits(t *testing.T) {
	e := newTopicEnv(t, 2)
	var sizes []int
	for i := range 5 {
		b := makeBatch(false, vals(int64(i), fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), 100)))...)
		sizes = append(sizes, len(b))
		e.mustProduce(1, "t", 0, b)
		e.mustProduce(1, "t", 1, slices.Clone(b))
	}
	sz := sizes[0] // all the same size
	// Partition max bytes: whole batches that fit.
	if r := e.fetch("t", 0, 0, int32(2*sz+sz/2)); len(r.Records) != 2*sz {
		t.Fatalf("partition limit 2.5 batches: %d bytes, want %d", len(r.Records), 2*sz)
	}
	// KIP-74: a limit below one batch still returns the first batch whole.
	if r := e.fetch("t", 0, 0, 10); len(r.Records) != sz {
		t.Fatalf("tiny limit: %d bytes, want one batch %d", len(r.Records), sz)
	}
	// Total MaxBytes spans partitions; only the first partition with data gets the KIP-74 pass.
	resp, _ := e.b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: int32(3 * sz), Partitions: []brokerop.FetchPartition{
		{Topic: "t", Partition: 0, Offset: 0, MaxBytes: 1 << 20},
		{Topic: "t", Partition: 1, Offset: 0, MaxBytes: 1 << 20},
	}})
	if a, b := len(resp.Partitions[0].Records), len(resp.Partitions[1].Records); a != 3*sz || b != 0 {
		t.Fatalf("total limit: %d + %d bytes, want %d + 0", a, b, 3*sz)
	}
	resp, _ = e.b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1, Partitions: []brokerop.FetchPartition{
		{Topic: "t", Partition: 0, Offset: 5, MaxBytes: 1 << 20}, // at the end: no data
		{Topic: "t", Partition: 1, Offset: 4, MaxBytes: 1 << 20},
	}})
	if a, b := len(resp.Partitions[0].Records), len(resp.Partitions[1].Records); a != 0 || b != sz {
		t.Fatalf("first partition with data gets one batch: %d + %d, want 0 + %d", a, b, sz)
	}
	// Out of range and unknown partitions.
	if r := e.fetch("t", 0, 6, 100); r.ErrorCode != kerr.OffsetOutOfRange.Code || r.HighWatermark != 5 {
		t.Fatalf("beyond end: %+v", r)
	}
	if r := e.fetch("t", 0, -1, 100); r.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("negative offset: %+v", r)
	}
	if r := e.fetch("t", 9, 0, 100); r.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %+v", r)
	}
	if r := e.fetch("t", 0, 5, 100); r.ErrorCode != 0 || len(r.Records) != 0 || r.HighWatermark != 5 {
		t.Fatalf("at the end: %+v", r)
	}
}

func TestFetchLongPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newTopicEnv(t, 2)
		req := func(wait int32) *brokerop.FetchReq {
			return &brokerop.FetchReq{MaxWaitMs: wait, MinBytes: 1, MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{
				{Topic: "t", Partition: 0, Offset: 0, MaxBytes: 1 << 20},
				{Topic: "t", Partition: 1, Offset: 0, MaxBytes: 1 << 20},
			}}
		}
		// Times out after MaxWaitMs with nothing.
		start := time.Now()
		resp, err := e.b.Fetch(t.Context(), req(500))
		if err != nil || len(resp.Partitions[0].Records)+len(resp.Partitions[1].Records) != 0 {
			t.Fatalf("empty fetch: %v %+v", err, resp)
		}
		if d := time.Since(start); d != 500*time.Millisecond {
			t.Fatalf("waited %v, want exactly 500ms", d)
		}
		// Wakes as soon as a produce lands on any requested partition.
		start = time.Now()
		done := make(chan *brokerop.FetchResp)
		go func() {
			r, _ := e.b.Fetch(context.Background(), req(10_000))
			done <- r
		}()
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		e.mustProduce(1, "t", 1, makeBatch(false, vals(1, "hello")...))
		r := <-done
		if d := time.Since(start); d != 200*time.Millisecond {
			t.Fatalf("fetch returned after %v, want at the produce (200ms)", d)
		}
		if len(r.Partitions[1].Records) == 0 || r.Partitions[1].HighWatermark != 1 {
			t.Fatalf("woken fetch: %+v", r.Partitions[1])
		}
		// MinBytes larger than one batch: waits for more, then returns when enough arrived.
		big := req(10_000)
		big.Partitions[1].Offset = 1
		big.MinBytes = 150
		start = time.Now()
		go func() {
			r, _ := e.b.Fetch(context.Background(), big)
			done <- r
		}()
		for i := range 5 {
			time.Sleep(100 * time.Millisecond)
			e.mustProduce(1, "t", 1, makeBatch(false, vals(int64(i), "0123456789")...))
		}
		r = <-done
		if n := len(r.Partitions[1].Records); n < 150 {
			t.Fatalf("returned %d bytes, below MinBytes", n)
		}
		if d := time.Since(start); d >= 10*time.Second {
			t.Fatalf("waited the whole MaxWait (%v)", d)
		}
		// ctx cancellation ends the wait.
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			r, _ := e.b.Fetch(ctx, req(10_000))
			done <- r
		}()
		time.Sleep(time.Second)
		start = time.Now()
		cancel()
		<-done
		if d := time.Since(start); d != 0 {
			t.Fatalf("cancel took %v", d)
		}
		// Close wakes a waiting fetch too.
		go func() {
			r, _ := e.b.Fetch(context.Background(), &brokerop.FetchReq{MaxWaitMs: 60_000, MinBytes: 1 << 20, MaxBytes: 1 << 20,
				Partitions: []brokerop.FetchPartition{{Topic: "t", Partition: 0, Offset: 0, MaxBytes: 1 << 20}}})
			done <- r
		}()
		time.Sleep(time.Second)
		e.b.Close()
		<-done
	})
}

// An error on any partition answers at once instead of waiting.
func TestFetchErrorAnswersImmediately(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newTopicEnv(t, 1)
		start := time.Now()
		resp, _ := e.b.Fetch(t.Context(), &brokerop.FetchReq{MaxWaitMs: 5000, MinBytes: 1, MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{
			{Topic: "t", Partition: 0, Offset: 0, MaxBytes: 100},
			{Topic: "missing", Partition: 0, Offset: 0, MaxBytes: 100},
		}})
		if time.Since(start) != 0 || resp.Partitions[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("after %v: %+v", time.Since(start), resp.Partitions)
		}
	})
}

func TestListOffsets(t *testing.T) {
	e := newTopicEnv(t, 1)
	list := func(ts int64) brokerop.ListOffsetsPartitionResp {
		resp, err := e.b.ListOffsets(context.Background(), &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: "t", Partition: 0, Timestamp: ts}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Partitions[0]
	}
	if r := list(-3); r.Offset != -1 || r.Timestamp != -1 {
		t.Fatalf("max timestamp of an empty log: %+v", r)
	}
	// offsets 0-2 at ts 100,150,120; 3-4 compressed at 300,310; 5 at 200
	e.mustProduce(-1, "t", 0, makeBatch(false, rec{ts: 100, value: "a"}, rec{ts: 150, value: "b"}, rec{ts: 120, value: "c"}))
	e.mustProduce(-1, "t", 0, makeBatch(true, rec{ts: 300, value: "d"}, rec{ts: 310, value: "e"}))
	e.mustProduce(-1, "t", 0, makeBatch(false, rec{ts: 200, value: "f"}))
	for _, tc := range []struct {
		ts         int64
		off, recTs int64
	}{
		{-2, 0, -1},
		{-1, 6, -1},
		{-3, 4, 310},  // inside a compressed batch
		{0, 0, 100},   // first record
		{101, 1, 150}, // exact record inside an uncompressed batch
		{150, 1, 150},
		{151, 3, 300}, // compressed batch
		{305, 4, 310}, // exact record inside a compressed batch
		{311, -1, -1}, // nothing that late
	} {
		r := list(tc.ts)
		if r.ErrorCode != 0 || r.Offset != tc.off || r.Timestamp != tc.recTs {
			t.Errorf("ts %d: got offset %d ts %d (code %d), want %d %d", tc.ts, r.Offset, r.Timestamp, r.ErrorCode, tc.off, tc.recTs)
		}
	}
	e.mustProduce(-1, "t", 0, makeBatch(false, rec{ts: 500, value: "g"}, rec{ts: 900, value: "h"}, rec{ts: 900, value: "i"}))
	if r := list(-3); r.Offset != 7 || r.Timestamp != 900 {
		t.Fatalf("max timestamp: %+v, want offset 7 ts 900 (first record with the max)", r)
	}
	resp, _ := e.b.ListOffsets(context.Background(), &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: "x", Partition: 0, Timestamp: -1}}})
	if resp.Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %+v", resp.Partitions[0])
	}
}

// Concurrent acks=all producers share fsyncs (group commit) and every one of them gets a
// distinct, contiguous range of offsets.
func TestConcurrentProducersShareFsyncs(t *testing.T) {
	e := newTopicEnv(t, 1)
	e.fs.SetSyncDelay(2 * time.Millisecond)
	e.fs.ResetStats()
	const producers, each = 16, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bases []int64
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				r := e.produce(-1, "t", 0, makeBatch(false, vals(1, fmt.Sprintf("%d-%d", p, i), "x")...))
				if r.ErrorCode != 0 {
					t.Errorf("produce: %d", r.ErrorCode)
					return
				}
				mu.Lock()
				bases = append(bases, r.BaseOffset)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(bases)
	for i, b := range bases {
		if b != int64(2*i) {
			t.Fatalf("base offsets not contiguous: %v", bases)
		}
	}
	syncs := e.fs.Stats().Syncs
	t.Logf("%d acks=all produces, %d fsyncs", producers*each, syncs)
	if syncs >= producers*each/2 {
		t.Fatalf("%d fsyncs for %d produces: no group commit", syncs, producers*each)
	}
	if e.partLog("t", 0).SyncedOffset() != 2*producers*each {
		t.Fatal("acked data not synced")
	}
}

// ProduceStaged appends in call order at once; waiting later lets pipelined requests of one
// connection share fsyncs.
func TestProduceStagedPipelining(t *testing.T) {
	e := newTopicEnv(t, 1)
	e.partLog("t", 0) // opened (and created) before counting: only the produces' fsyncs count
	e.fs.SetSyncDelay(5 * time.Millisecond)
	e.fs.ResetStats()
	var waits []func() (*brokerop.ProduceResp, error)
	for i := range 10 {
		waits = append(waits, e.b.ProduceStaged(bg, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
			{Topic: "t", Records: makeBatch(false, vals(1, fmt.Sprint(i), "x")...)}}}))
	}
	if n := e.partLog("t", 0).NextOffset(); n != 20 {
		t.Fatalf("staged appends: next offset %d, want 20", n)
	}
	var wg sync.WaitGroup
	bases := make([]int64, len(waits))
	for i, w := range waits {
		wg.Go(func() {
			r, err := w()
			if err != nil || r.Partitions[0].ErrorCode != 0 {
				t.Errorf("wait %d: %v %+v", i, err, r)
				return
			}
			bases[i] = r.Partitions[0].BaseOffset
		})
	}
	wg.Wait()
	for i, b := range bases {
		if b != int64(2*i) {
			t.Fatalf("base offsets %v: not in staging order", bases)
		}
	}
	if s := e.fs.Stats().Syncs; s > 4 {
		t.Fatalf("%d fsyncs for 10 pipelined requests", s)
	}
	if e.partLog("t", 0).SyncedOffset() != 20 {
		t.Fatal("answered before fsync")
	}
	_, vs := e.readAll("t", 0, 0)
	if want := []string{"0", "x", "1", "x", "2", "x"}; !slices.Equal(vs[:6], want) {
		t.Fatalf("order: %v", vs)
	}
}
