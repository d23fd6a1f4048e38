package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/twmb/franz-go/pkg/kerr"
)

// idemBatch builds a batch of n records of producer pid/epoch starting at sequence seq.
func idemBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	b := makeBatch(false, vals(1000, values...)...)
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

func (e *env) initPID() (int64, int16) {
	e.t.Helper()
	resp, err := e.b.InitProducerID(context.Background(), &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
	if err != nil || resp.ErrorCode != 0 {
		e.t.Fatalf("InitProducerID: %v code %d", err, resp.ErrorCode)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func (e *env) wantCode(r brokerop.ProducePartitionResp, code *kerr.Error) {
	e.t.Helper()
	if r.ErrorCode != code.Code {
		e.t.Fatalf("produce: code %d (%s), want %s", r.ErrorCode, r.ErrorMessage, code.Message)
	}
}

func (e *env) wantValues(topic string, want ...string) {
	e.t.Helper()
	_, got := e.readAll(topic, 0, 0)
	if len(got) != len(want) {
		e.t.Fatalf("log holds %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			e.t.Fatalf("log holds %q, want %q", got, want)
		}
	}
}

func TestInitProducerIDDurableAndNeverReused(t *testing.T) {
	e := newEnv(t)
	seen := map[int64]bool{}
	for range 3 {
		for range 5 {
			id, epoch := e.initPID()
			if seen[id] || id < 0 || epoch != 0 {
				t.Fatalf("producer id %d epoch %d (seen before: %v)", id, epoch, seen[id])
			}
			seen[id] = true
		}
		e.crash(nil) // ids handed out before a kill -9 stay used
	}
	for range 2 {
		id, _ := e.initPID()
		if seen[id] {
			t.Fatalf("producer id %d reused after restart", id)
		}
		seen[id] = true
		e.restart()
	}
	// KIP-360 epoch bump of a non-transactional producer: a fresh id at epoch 0, as Kafka does.
	old, _ := e.initPID()
	resp, err := e.b.InitProducerID(context.Background(), &brokerop.InitProducerIDReq{ProducerID: old, ProducerEpoch: 0})
	if err != nil || resp.ErrorCode != 0 || resp.ProducerID == old || seen[resp.ProducerID] || resp.ProducerEpoch != 0 {
		t.Fatalf("bump: %v %+v (old id %d)", err, resp, old)
	}
	resp, _ = e.b.InitProducerID(context.Background(), &brokerop.InitProducerIDReq{ProducerID: old, ProducerEpoch: -1})
	if resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("id without epoch: %+v", resp)
	}
}

func TestInitProducerIDRefusesCorruptCounter(t *testing.T) {
	e := newEnv(t)
	e.initPID()
	e.restart()
	path := filepath.Join(e.cfg.Dir, producerIDsFile)
	if err := writeFileAtomic(e.fs, path, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	resp, err := e.b.InitProducerID(context.Background(), &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
	if err != nil || resp.ErrorCode != kerr.CoordinatorNotAvailable.Code || resp.ProducerID != -1 {
		t.Fatalf("corrupt counter: %v %+v", err, resp)
	}
}

func TestIdempotentRetryIsDeduplicated(t *testing.T) {
	e := newTopicEnv(t, 1)
	pid, ep := e.initPID()
	var bases []int64
	for i := range int32(7) {
		bases = append(bases, e.mustProduce(-1, "t", 0, idemBatch(pid, ep, i*2, "a", "b")))
	}
	// The last 5 batches are remembered: a retry of any is answered with its original offset.
	for i := 2; i < 7; i++ {
		if got := e.mustProduce(-1, "t", 0, idemBatch(pid, ep, int32(i)*2, "a", "b")); got != bases[i] {
			t.Fatalf("retry of batch %d answered offset %d, want the original %d", i, got, bases[i])
		}
	}
	// Batch 0 fell out of the window: a retry of it is out of order, as in Kafka.
	e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, ep, 0, "a", "b")), kerr.OutOfOrderSequenceNumber)
	// Same first sequence, different length: not a duplicate, and out of order.
	e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, ep, 12, "a")), kerr.OutOfOrderSequenceNumber)
	// A gap is out of order; nothing stored.
	e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, ep, 15, "x")), kerr.OutOfOrderSequenceNumber)
	if next := e.mustProduce(-1, "t", 0, idemBatch(pid, ep, 14, "c")); next != 14 {
		t.Fatalf("next batch at %d, want 14", next)
	}
	if _, v := e.readAll("t", 0, 0); len(v) != 15 {
		t.Fatalf("log holds %d records, want 15", len(v))
	}
}

func TestIdempotentEpochRules(t *testing.T) {
	e := newTopicEnv(t, 1)
	const pid = 7
	e.mustProduce(-1, "t", 0, idemBatch(pid, 3, 0, "a"))
	e.mustProduce(-1, "t", 0, idemBatch(pid, 3, 1, "b"))
	e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, 2, 2, "old")), kerr.InvalidProducerEpoch)
	e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, 4, 2, "x")), kerr.OutOfOrderSequenceNumber) // new epoch not at 0
	e.mustProduce(-1, "t", 0, idemBatch(pid, 4, 0, "c"))
	e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, 3, 2, "old")), kerr.InvalidProducerEpoch)
	// A retry of the old epoch's batch is no longer a duplicate: its epoch is fenced.
	e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, 3, 1, "b")), kerr.InvalidProducerEpoch)
	e.mustProduce(-1, "t", 0, idemBatch(pid, 4, 1, "d"))
	e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, -1, 0, "bad")), kerr.InvalidRecord)
	e.wantValues("t", "a", "b", "c", "d")
}

func TestIdempotentUnknownProducer(t *testing.T) {
	e := newTopicEnv(t, 1)
	// Empty partition: an unknown producer must start at 0 (KAFKA-15591).
	e.wantCode(e.produce(-1, "t", 0, idemBatch(1, 0, 5, "x")), kerr.OutOfOrderSequenceNumber)
	e.mustProduce(-1, "t", 0, idemBatch(1, 0, 0, "a"))
	// A partition with data accepts an unknown producer at any sequence (KIP-360).
	e.mustProduce(-1, "t", 0, idemBatch(2, 0, 42, "b"))
	e.mustProduce(-1, "t", 0, idemBatch(2, 0, 43, "c"))
	e.wantValues("t", "a", "b", "c")
}

func TestIdempotentSequenceWraps(t *testing.T) {
	e := newTopicEnv(t, 1)
	e.mustProduce(-1, "t", 0, makeBatch(false, vals(1, "plain")...))
	e.mustProduce(-1, "t", 0, idemBatch(1, 0, math.MaxInt32-1, "a", "b")) // last seq MaxInt32
	e.mustProduce(-1, "t", 0, idemBatch(1, 0, 0, "c", "d"))
	base := e.mustProduce(-1, "t", 0, idemBatch(1, 0, 2, "e"))
	// A batch that wraps inside: first MaxInt32, last 0.
	e.mustProduce(-1, "t", 0, idemBatch(5, 0, math.MaxInt32, "w1", "w2"))
	e.mustProduce(-1, "t", 0, idemBatch(5, 0, 1, "w3"))
	if got := e.mustProduce(-1, "t", 0, idemBatch(1, 0, 2, "e")); got != base {
		t.Fatalf("retry after wrap: offset %d, want %d", got, base)
	}
	e.wantValues("t", "plain", "a", "b", "c", "d", "e", "w1", "w2", "w3")
}

func TestIdempotentRejectsMultiBatchPayload(t *testing.T) {
	e := newTopicEnv(t, 1)
	two := append(idemBatch(1, 0, 0, "a"), idemBatch(1, 0, 1, "b")...)
	e.wantCode(e.produce(-1, "t", 0, two), kerr.InvalidRecord)
	mixed := append(makeBatch(false, vals(1, "p")...), idemBatch(1, 0, 0, "a")...)
	e.wantCode(e.produce(-1, "t", 0, mixed), kerr.InvalidRecord)
	plain := append(makeBatch(false, vals(1, "p")...), makeBatch(false, vals(1, "q")...)...)
	e.mustProduce(-1, "t", 0, plain)
	e.wantValues("t", "p", "q")
}

// TestIdempotentRetryAfterCrash: a batch stored and fsynced but never acknowledged (the broker
// was killed) is recognised when the client retries after the restart, with and without a
// snapshot, and whether the crash kept an unsynced tail or not.
func TestIdempotentRetryAfterCrash(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		name := "no-snapshot"
		if snapshot {
			name = "snapshot"
		}
		t.Run(name, func(t *testing.T) {
			e := newTopicEnv(t, 1)
			pid, ep := e.initPID()
			for i := range int32(3) {
				e.mustProduce(-1, "t", 0, idemBatch(pid, ep, i, "v"+string(rune('0'+i))))
			}
			if snapshot {
				e.clock.Advance(snapshotInterval)
				if err := e.b.Flush(); err != nil {
					t.Fatal(err)
				}
				if _, ok, _ := readSmallFile(e.fs, filepath.Join(e.b.lookup("t", 0).dir(), producerSnapshotFile), 1<<20); !ok {
					t.Fatal("flusher wrote no producer snapshot")
				}
			}
			stored := e.mustProduce(-1, "t", 0, idemBatch(pid, ep, 3, "v3")) // acked as far as the log goes...
			e.mustProduce(1, "t", 0, idemBatch(pid, ep, 4, "lost"))          // acks=1: not fsynced, lost by the crash
			e.crash(nil)                                                     // ...but the answer never reached the client
			if got := e.mustProduce(-1, "t", 0, idemBatch(pid, ep, 3, "v3")); got != stored {
				t.Fatalf("retry after crash: offset %d, want the original %d", got, stored)
			}
			// The lost batch is not in the log: its retry is stored, once.
			e.mustProduce(-1, "t", 0, idemBatch(pid, ep, 4, "lost"))
			e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, ep, 6, "gap")), kerr.OutOfOrderSequenceNumber)
			e.restart() // clean: Close writes a snapshot covering the whole log
			p := e.b.lookup("t", 0)
			buf, ok, err := readSmallFile(e.fs, filepath.Join(p.dir(), producerSnapshotFile), 1<<20)
			if !ok || err != nil {
				t.Fatalf("no snapshot after Close: %v", err)
			}
			if off, prods, _, err := decodeProducerSnapshot(buf); err != nil || off != e.partLog("t", 0).NextOffset() || len(prods[pid].batches) != 5 {
				t.Fatalf("snapshot after Close: %v, offset %d (log end %d), %+v", err, off, e.partLog("t", 0).NextOffset(), prods[pid])
			}
			if got := e.mustProduce(-1, "t", 0, idemBatch(pid, ep, 3, "v3")); got != stored {
				t.Fatalf("retry after restart: offset %d, want the original %d", got, stored)
			}
			e.mustProduce(-1, "t", 0, idemBatch(pid, ep, 5, "v5"))
			e.wantValues("t", "v0", "v1", "v2", "v3", "lost", "v5")
		})
	}
}

// TestIdempotentCrashTornAndStaleSnapshot: random tears of unsynced tails, a snapshot older
// than the log, and a snapshot claiming more than the log holds all rebuild a state that
// deduplicates exactly the batches the log holds.
func TestIdempotentCrashTornAndStaleSnapshot(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e := newTopicEnv(t, 1)
	const pid = 11
	var want []string
	seq := int32(0)
	for round := range 20 {
		// Some batches synced, some not, then a crash that may tear the unsynced ones.
		for range 1 + rng.IntN(4) {
			v := "s" + string(rune('a'+round)) + string(rune('0'+seq%10))
			e.mustProduce(-1, "t", 0, idemBatch(pid, 0, seq, v))
			want = append(want, v)
			seq++
		}
		e.mustProduce(1, "t", 0, idemBatch(pid, 0, seq, "maybe"))
		if rng.IntN(3) == 0 {
			e.clock.Advance(snapshotInterval)
			if err := e.b.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		e.crash(rng)
		// The "maybe" batch is either in the log (retry: duplicate) or not (retry: stored).
		r := e.produce(-1, "t", 0, idemBatch(pid, 0, seq, "maybe"))
		if r.ErrorCode != 0 {
			t.Fatalf("round %d: retry of the unsynced batch: code %d %s", round, r.ErrorCode, r.ErrorMessage)
		}
		want = append(want, "maybe")
		seq++
		// Every earlier batch still in the window is a duplicate.
		e.wantCode(e.produce(-1, "t", 0, idemBatch(pid, 0, seq+1, "gap")), kerr.OutOfOrderSequenceNumber)
	}
	e.wantValues("t", want...)
	// A snapshot claiming offsets beyond the log end is ignored (the whole log is scanned).
	p := e.b.lookup("t", 0)
	bogus := encodeProducerSnapshot(1<<40, map[int64]*producerEntry{pid: {epoch: 0, txnFirst: -1, batches: []seqBatch{{0, 0, 0}}}}, nil)
	if err := writeFileAtomic(e.fs, filepath.Join(p.dir(), producerSnapshotFile), bogus); err != nil {
		t.Fatal(err)
	}
	e.crash(nil)
	if got := e.mustProduce(-1, "t", 0, idemBatch(pid, 0, seq-1, "maybe")); got != int64(len(want)-1) {
		t.Fatalf("retry with a bogus snapshot: offset %d, want %d", got, len(want)-1)
	}
	e.wantValues("t", want...)
}

func TestProducerSnapshotRoundTrip(t *testing.T) {
	prods := map[int64]*producerEntry{
		1: {epoch: 2, txnFirst: -1, batches: []seqBatch{{0, 4, 10}, {5, 5, 20}, {6, 9, 30}}},
		9: {epoch: 0, txnFirst: -1, batches: []seqBatch{{7, 7, 40}}},
	}
	off, got, _, err := decodeProducerSnapshot(encodeProducerSnapshot(31, prods, nil))
	if err != nil || off != 31 {
		t.Fatalf("decode: %v off %d", err, off)
	}
	// Batches at or above the snapshot offset are left out (the log scan re-adds them).
	if len(got) != 1 || len(got[1].batches) != 3 || got[1].epoch != 2 || got[1].batches[2] != (seqBatch{6, 9, 30}) {
		t.Fatalf("decoded %+v", got)
	}
	buf := encodeProducerSnapshot(31, prods, nil)
	buf[len(buf)-5] ^= 1
	if _, _, _, err := decodeProducerSnapshot(buf); err == nil {
		t.Fatal("corrupt snapshot decoded")
	}
}

func FuzzDecodeProducerSnapshot(f *testing.F) {
	f.Add(encodeProducerSnapshot(31, map[int64]*producerEntry{1: {epoch: 2, txnFirst: -1, batches: []seqBatch{{0, 4, 10}, {5, 5, 20}}}}, nil))
	f.Add(encodeProducerSnapshot(31, map[int64]*producerEntry{1: {epoch: 2, txnFirst: 12, batches: []seqBatch{{0, 4, 10}}}, 3: {epoch: 4, txnFirst: -1}},
		[]abortedTxn{{pid: 3, first: 1, last: 5}, {pid: 1, first: 6, last: 9}}))
	f.Add(encodeProducerSnapshot(0, nil, nil))
	f.Add([]byte("MKPS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		// As given, and with a valid checksum so that the body parser is reached.
		fixed := append([]byte(nil), b...)
		if n := len(fixed); n >= 4 {
			binary.BigEndian.PutUint32(fixed[n-4:], crc32.Checksum(fixed[:n-4], castagnoli))
		}
		for _, in := range [][]byte{b, fixed} {
			off, prods, aborted, err := decodeProducerSnapshot(in)
			if err != nil {
				continue
			}
			// Whatever decodes re-encodes to a snapshot that decodes to the same state.
			off2, prods2, aborted2, err := decodeProducerSnapshot(encodeProducerSnapshot(off, prods, aborted))
			if err != nil || off2 != off || len(prods2) != len(prods) || !slices.Equal(aborted, aborted2) {
				t.Fatalf("re-decode: %v off %d/%d, %d/%d producers", err, off, off2, len(prods), len(prods2))
			}
			for id, e := range prods {
				if e2 := prods2[id]; e2 == nil || e2.epoch != e.epoch || e2.txnFirst != e.txnFirst || len(e2.batches) != len(e.batches) {
					t.Fatalf("producer %d: %+v re-decoded as %+v", id, e, e2)
				}
			}
		}
	})
}

func FuzzDecodeProducerIDBlock(f *testing.F) {
	f.Add(encodeProducerIDBlock(1000))
	f.Add([]byte("PI"))
	fuzzSameBytes(f, decodeProducerIDBlock, encodeProducerIDBlock, func(end int64) bool { return end >= 0 })
}

// TestIdempotentConcurrentRetries: several producers, each sending every batch twice from two
// goroutines at once (a retry racing the original), with retention and snapshots running:
// every batch is stored once and both copies are answered with the same offset.
func TestIdempotentConcurrentRetries(t *testing.T) {
	e := newTopicEnv(t, 1)
	const producers, batches = 4, 40
	var wg sync.WaitGroup
	errs := make(chan string, producers*batches*3)
	for p := range int64(producers) {
		wg.Go(func() {
			for i := range int32(batches) {
				var offs [2]int64
				var cw sync.WaitGroup
				for c := range 2 { // the original and its retry, racing
					cw.Go(func() {
						resp, err := e.b.Produce(context.Background(), &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
							{Topic: "t", Partition: 0, Records: idemBatch(100+p, 0, i, fmt.Sprintf("p%d-%02d", p, i))}}})
						if err != nil || resp.Partitions[0].ErrorCode != 0 {
							errs <- fmt.Sprintf("producer %d copy %d batch %d: %v %+v", p, c, i, err, resp)
							return
						}
						offs[c] = resp.Partitions[0].BaseOffset
					})
				}
				cw.Wait()
				if offs[0] != offs[1] {
					errs <- fmt.Sprintf("producer %d batch %d: copies answered offsets %d and %d", p, i, offs[0], offs[1])
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			e.clock.Advance(snapshotInterval)
			e.b.Flush()
			e.b.EnforceRetention()
		}
	})
	wg.Wait()
	close(errs)
	for m := range errs {
		t.Fatal(m)
	}
	_, vs := e.readAll("t", 0, 0)
	count := map[string]int{}
	for _, v := range vs {
		count[v]++
	}
	if len(vs) != producers*batches || len(count) != producers*batches {
		t.Fatalf("%d records stored, %d distinct, want %d once each", len(vs), len(count), producers*batches)
	}
}

// TestIdempotentProducerExpiry: a producer's state goes 24 h after its last append (broker
// clock), also from the snapshot, so it is then an unknown producer; before that it is kept.
func TestIdempotentProducerExpiry(t *testing.T) {
	e := newTopicEnv(t, 1)
	e.mustProduce(-1, "t", 0, idemBatch(1, 0, 0, "a"))
	e.mustProduce(-1, "t", 0, idemBatch(2, 0, 0, "b"))
	e.clock.Advance(producerIDExpiration - time.Hour)
	e.mustProduce(-1, "t", 0, idemBatch(2, 0, 1, "c")) // producer 2 stays active
	if err := e.b.Flush(); err != nil {
		t.Fatal(err)
	}
	e.wantCode(e.produce(-1, "t", 0, idemBatch(1, 0, 5, "gap")), kerr.OutOfOrderSequenceNumber)
	e.clock.Advance(2 * time.Hour)
	if err := e.b.Flush(); err != nil { // expires producer 1 and writes the snapshot without it
		t.Fatal(err)
	}
	e.crash(nil)
	e.mustProduce(-1, "t", 0, idemBatch(1, 0, 5, "late")) // unknown now: any sequence
	e.wantCode(e.produce(-1, "t", 0, idemBatch(2, 0, 3, "gap")), kerr.OutOfOrderSequenceNumber)
	if got := e.mustProduce(-1, "t", 0, idemBatch(2, 0, 1, "c")); got != 2 {
		t.Fatalf("retry of producer 2's batch: offset %d, want 2", got)
	}
	e.wantValues("t", "a", "b", "c", "late")
}

// BenchmarkIdempotentProduce compares plain and idempotent produce (one 10-record batch per
// request, acks=1, in-memory filesystem) to show the cost of the sequence check.
func BenchmarkIdempotentProduce(b *testing.B) {
	for _, idem := range []bool{false, true} {
		name := "plain"
		if idem {
			name = "idempotent"
		}
		b.Run(name+"/impl=ours", func(b *testing.B) {
			e := newEnv(b)
			e.create("t", 1, nil)
			values := make([]string, 10)
			for i := range values {
				values[i] = fmt.Sprintf("value-%03d-%s", i, string(make([]byte, 80)))
			}
			const prebuilt = 4096
			batches := make([][]byte, prebuilt)
			pid := int64(0)
			build := func() { // a fresh producer id each round: an unknown producer starts anywhere
				pid++
				for i := range batches {
					batches[i] = makeBatch(false, vals(1000, values...)...)
					if idem {
						batches[i] = idemBatch(pid, 0, int32(i*10), values...)
					}
				}
			}
			build()
			for i := 0; b.Loop(); i++ {
				if i > 0 && i%prebuilt == 0 {
					b.StopTimer()
					build()
					b.StartTimer()
				}
				if r := e.produce(1, "t", 0, batches[i%prebuilt]); r.ErrorCode != 0 {
					b.Fatalf("code %d", r.ErrorCode)
				}
			}
			b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
