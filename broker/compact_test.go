package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// krec is a keyed test record; a nil value is a tombstone.
type krec struct {
	key   string
	value *string
}

// keyedBatch builds an uncompressed RecordBatch v2 of keyed records (timestamps ts).
func keyedBatch(ts int64, recs ...krec) []byte {
	var records []byte
	for i, r := range recs {
		var body []byte
		body = append(body, 0)
		body = binary.AppendVarint(body, 0)
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, int64(len(r.key)))
		body = append(body, r.key...)
		if r.value == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(*r.value)))
			body = append(body, *r.value...)
		}
		body = binary.AppendVarint(body, 0)
		records = binary.AppendVarint(records, int64(len(body)))
		records = append(records, body...)
	}
	rb := kmsg.RecordBatch{Length: int32(49 + len(records)), Magic: 2, LastOffsetDelta: int32(len(recs) - 1),
		FirstTimestamp: ts, MaxTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(recs)), Records: records}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// got is one record read back.
type got struct {
	off        int64
	key, value string
	null       bool
}

// readCompacted reads a partition from offset 0 to the end as a Kafka client does across
// compaction gaps: each fetch goes on after the last offset of the last batch (its last
// offset delta), whatever records the batch still holds. Every batch's CRC is checked.
func (e *env) readCompacted(topic string) []got {
	e.t.Helper()
	var out []got
	for from := int64(0); ; {
		r := e.fetch(topic, 0, from, 1<<20)
		if r.ErrorCode != 0 {
			e.t.Fatalf("fetch %d: code %d", from, r.ErrorCode)
		}
		if len(r.Records) == 0 {
			return out
		}
		data := r.Records
		for len(data) > 0 {
			size := int(binary.BigEndian.Uint32(data[8:])) + 12
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(data[:size]); err != nil {
				e.t.Fatal(err)
			}
			if crc32.Checksum(data[21:size], castagnoli) != uint32(rb.CRC) {
				e.t.Fatalf("batch at %d: bad crc", rb.FirstOffset)
			}
			var err error
			if out, err = appendGot(out, rb.Records, rb.NumRecords, rb.FirstOffset, from); err != nil {
				e.t.Fatal(err)
			}
			from = max(from, rb.FirstOffset+int64(rb.LastOffsetDelta)+1)
			data = data[size:]
		}
	}
}

// recordValue returns a raw record's value.
func recordValue(raw []byte) string {
	_, n := binary.Varint(raw)
	b := raw[n+1:]
	_, n = binary.Varint(b) // ts
	b = b[n:]
	_, n = binary.Varint(b) // offset delta
	b = b[n:]
	kl, n := binary.Varint(b)
	b = b[n:]
	if kl > 0 {
		b = b[kl:]
	}
	vl, n := binary.Varint(b)
	return string(b[n : n+int(vl)])
}

func compactEnv(t testing.TB) *env {
	return newEnv(t, func(c *Config) { c.CleanerBackoff = -1; c.TxnCheckInterval = -1 })
}

// history is every record produced to the test partition, by offset.
type history []got

// expect is the model of a cleaning up to end: below end a record stays iff it is its key's
// latest below end (and, for a tombstone, keep(off) says its horizon has not passed);
// from end on everything stays.
func (h history) expect(end int64, keep func(g got) bool) []got {
	latest := map[string]int64{}
	for _, g := range h {
		if g.off < end {
			latest[g.key] = g.off
		}
	}
	var out []got
	for _, g := range h {
		if g.off >= end || latest[g.key] == g.off && (!g.null || keep(g)) {
			out = append(out, g)
		}
	}
	return out
}

func sameRecords(t testing.TB, got, want []got, what string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: record %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// produceKeyed writes n records over keys keys (one in tombstoneEvery a tombstone) in batches
// of batch records and returns what it wrote.
func (e *env) produceKeyed(r *rand.Rand, topic string, n, keys, batch, tombstoneEvery int, ts int64) history {
	var h history
	for done := 0; done < n; {
		var recs []krec
		for range min(batch, n-done) {
			k := fmt.Sprintf("key-%d", r.IntN(keys))
			if tombstoneEvery > 0 && r.IntN(tombstoneEvery) == 0 {
				recs = append(recs, krec{key: k})
			} else {
				recs = append(recs, krec{key: k, value: sp(fmt.Sprintf("v%d-%d", done+len(recs), r.IntN(1000)))})
			}
		}
		base := e.mustProduce(-1, topic, 0, keyedBatch(ts, recs...))
		for i, x := range recs {
			g := got{off: base + int64(i), key: x.key, null: x.value == nil}
			if x.value != nil {
				g.value = *x.value
			}
			h = append(h, g)
		}
		done += len(recs)
	}
	return h
}

func activeBaseOf(l *wal.Log) int64 {
	segs := l.Segments()
	return segs[len(segs)-1].Base
}

// TestCompactLatestPerKey: keyed records with tombstones over a few segments; after a
// cleaning the partition holds exactly the latest record of every key below the active
// segment (tombstones too, delete.retention.ms not having passed), at their original
// offsets, and everything of the active segment; a consumer from offset 0 reads it across
// the gaps; the disk use shrinks; a restart keeps it. Then, delete.retention.ms later, a
// second cleaning removes the tombstones the first one kept. The size is COMPACT_RECORDS
// records over COMPACT_KEYS keys (default 20000 over 500; the 1M over 10k runs in the
// chaos tier: COMPACT_RECORDS=1000000 COMPACT_KEYS=10000).
func TestCompactLatestPerKey(t *testing.T) {
	n, keys := 20000, 500
	if v, err := strconv.Atoi(os.Getenv("COMPACT_RECORDS")); err == nil {
		n = v
	}
	if v, err := strconv.Atoi(os.Getenv("COMPACT_KEYS")); err == nil {
		keys = v
	}
	e := compactEnv(t)
	e.create("c", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": strconv.Itoa(max(64<<10, n*4)),
		"min.cleanable.dirty.ratio": "0.1", "delete.retention.ms": "60000"})
	r := rand.New(rand.NewPCG(7, 7))
	h := e.produceKeyed(r, "c", n, keys, 100, 10, e.clock.Now().UnixMilli())
	l := e.partLog("c", 0)
	end := activeBaseOf(l)
	if end == 0 {
		t.Fatal("no sealed segment")
	}
	before := l.Size()
	st, err := e.b.Compact(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Partitions != 1 || st.Swapped == 0 {
		t.Fatalf("nothing cleaned: %+v", st)
	}
	want := h.expect(end, func(got) bool { return true })
	sameRecords(t, e.readCompacted("c"), want, "after cleaning")
	if after := l.Size(); after*2 > before {
		t.Fatalf("log %d bytes before cleaning, %d after", before, after)
	}
	t.Logf("%d records over %d keys: %d bytes -> %d, %d records removed", n, keys, before, l.Size(), st.RecordsRemoved)
	e.restart()
	sameRecords(t, e.readCompacted("c"), want, "after restart")
	// A cleaning with nothing new to clean does nothing.
	if st, err := e.b.Compact(context.Background()); err != nil || st.Partitions != 0 {
		t.Fatalf("second pass: %+v %v", st, err)
	}
	// delete.retention.ms later, with new data rolled in: the first round's tombstones go,
	// the new ones stay.
	e.clock.Advance(61 * time.Second)
	h2 := e.produceKeyed(r, "c", n/2, keys, 100, 10, e.clock.Now().UnixMilli())
	h = append(h, h2...)
	end2 := activeBaseOf(e.partLog("c", 0))
	if _, err := e.b.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	want = h.expect(end2, func(g got) bool { return g.off >= end })
	sameRecords(t, e.readCompacted("c"), want, "second cleaning")
}

// TestCompactTransactions: aborted records go at the first cleaning, their abort marker only
// delete.retention.ms later; a commit marker stays while its transaction keeps a record.
func TestCompactTransactions(t *testing.T) {
	e := compactEnv(t)
	e.create("c", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024",
		"min.cleanable.dirty.ratio": "0", "delete.retention.ms": "1000"})
	pid, ep := e.initTxn("x", 60000)
	txnKeyed := func(seq int32, recs ...krec) []byte {
		b := keyedBatch(1000, recs...)
		binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
		binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(ep))
		binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
		binary.BigEndian.PutUint16(b[offAttributes:], attrTransactional)
		binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
		return b
	}
	e.addParts("x", pid, ep, "c", 0)
	committed := e.mustProduce(-1, "c", 0, txnKeyed(0, krec{"a", sp("a1")}))
	if c := e.endTxn("x", pid, ep, true); c != 0 {
		t.Fatal(c)
	}
	e.addParts("x", pid, ep, "c", 0)
	aborted := e.mustProduce(-1, "c", 0, txnKeyed(1, krec{"b", sp("b1")}))
	if c := e.endTxn("x", pid, ep, false); c != 0 {
		t.Fatal(c)
	}
	// Fill segments so that all of the above is sealed.
	r := rand.New(rand.NewPCG(1, 1))
	e.produceKeyed(r, "c", 200, 5, 10, 0, 1000)
	l := e.partLog("c", 0)
	kinds := func() (data map[int64]bool, markers int) {
		data = map[int64]bool{}
		for off := l.StartOffset(); off < l.NextOffset(); {
			bs, err := l.Read(off, 1<<20)
			if err != nil || len(bs) == 0 {
				break
			}
			for _, wb := range bs {
				forEachBatch(wb.Data, func(batch []byte) {
					h := readBatchHead(batch)
					if h.attrs&attrControl != 0 && binary.BigEndian.Uint32(batch[offRecordCount:]) > 0 {
						markers++
					} else if n := binary.BigEndian.Uint32(batch[offRecordCount:]); n > 0 {
						data[batchBase(batch)] = true
					}
				})
				off = wb.LastOffset + 1
			}
		}
		return data, markers
	}
	if _, m := kinds(); m != 2 {
		t.Fatalf("%d markers before cleaning", m)
	}
	if _, err := e.b.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, m := kinds()
	if data[aborted] || !data[committed] || m != 2 {
		t.Fatalf("first cleaning: aborted data kept %v, committed kept %v, %d markers (want false, true, 2)", data[aborted], data[committed], m)
	}
	// Later: the abort marker (its data gone) goes; the commit marker stays ("a" is live).
	e.clock.Advance(2 * time.Second)
	e.produceKeyed(r, "c", 100, 5, 10, 0, 1000)
	if _, err := e.b.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if data, m = kinds(); m != 1 || !data[committed] {
		t.Fatalf("second cleaning: %d markers, committed kept %v; want 1, true", m, data[committed])
	}
	// read_committed still reads "a1".
	vals, _, _ := e.readIso("c", 0, 1)
	if len(vals) == 0 || vals[0] != "a1" {
		t.Fatalf("read_committed after cleaning: %q", vals[:min(3, len(vals))])
	}
}

// TestCompactConfigs: the policies and cleaner configs are accepted, normalised, described
// and altered like other topic configs; bad values are INVALID_CONFIG; retention.ms does not
// delete segments of a compact-only topic and does of a compact,delete one.
func TestCompactConfigs(t *testing.T) {
	e := compactEnv(t)
	e.create("a", 1, map[string]string{"cleanup.policy": "delete, compact", "min.cleanable.dirty.ratio": "0.25",
		"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "1000", "delete.retention.ms": "5"})
	cfg := e.b.lookup("a", 0).t.cfg.Load()
	if !cfg.compact || !cfg.deleteOld || cfg.minCleanableRatio != 0.25 || cfg.minCompactionLagMs != 10 || cfg.maxCompactionLagMs != 1000 || cfg.deleteRetentionMs != 5 {
		t.Fatalf("resolved %+v", cfg)
	}
	if v := cfg.overrides["cleanup.policy"]; v != "compact,delete" {
		t.Fatalf("normalised policy %q", v)
	}
	for _, bad := range []map[string]string{
		{"cleanup.policy": "compact,shred"}, {"min.cleanable.dirty.ratio": "1.5"}, {"min.cleanable.dirty.ratio": "NaN"},
		{"delete.retention.ms": "-1"}, {"max.compaction.lag.ms": "0"},
	} {
		resp, err := e.b.CreateTopics(context.Background(), &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "bad", NumPartitions: 1, ReplicationFactor: -1, Configs: bad}}})
		if err != nil || resp.Topics[0].ErrorCode != kerr.InvalidConfig.Code {
			t.Fatalf("%v: %v %+v", bad, err, resp.Topics)
		}
	}
	resp, err := e.b.DescribeConfigs(context.Background(), &brokerop.DescribeConfigsReq{Resources: []brokerop.DescribeConfigsResource{
		{Type: brokerop.ResourceTopic, Name: "a", ConfigNames: []string{"cleanup.policy", "min.cleanable.dirty.ratio"}}}})
	if err != nil || len(resp.Resources[0].Configs) != 2 || *resp.Resources[0].Configs[0].Value != "compact,delete" ||
		*resp.Resources[0].Configs[1].Value != "0.25" || resp.Resources[0].Configs[1].ConfigType != brokerop.ConfigTypeDouble {
		t.Fatalf("describe: %v %+v", err, resp)
	}
	// Retention by time: compact-only keeps its segments, compact,delete loses them.
	for _, pol := range []string{"compact", "compact,delete"} {
		name := "r-" + strconv.Itoa(len(pol))
		e.create(name, 1, map[string]string{"cleanup.policy": pol, "segment.bytes": "1024", "retention.ms": "1000"})
		e.produceKeyed(rand.New(rand.NewPCG(2, 2)), name, 200, 5, 10, 0, e.clock.Now().UnixMilli())
		e.clock.Advance(10 * time.Second)
		if _, err := e.b.EnforceRetention(); err != nil {
			t.Fatal(err)
		}
		start := e.partLog(name, 0).StartOffset()
		if pol == "compact" && start != 0 || pol != "compact" && start == 0 {
			t.Fatalf("%s: log start %d after retention", pol, start)
		}
	}
}

// TestIOThrottle: the cleaner's limit makes n bytes take n/rate of (injected) time.
func TestIOThrottle(t *testing.T) {
	c := newClock()
	start := c.Now()
	th := &ioThrottle{rate: 1 << 20, now: c.Now, sleep: func(_ context.Context, d time.Duration) error { c.Advance(d); return nil }}
	for range 100 {
		if err := th.wait(context.Background(), 100<<10); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := c.Now().Sub(start), 10000*time.Second/1024; got < want-time.Millisecond || got > want+time.Millisecond {
		t.Fatalf("10000 KiB at 1 MiB/s took %v, want %v", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	th.sleep = sleepCtx
	if err := th.wait(ctx, 1<<30); err == nil {
		t.Fatal("a cancelled wait returned nil")
	}
}

// TestCompactCrash: the power is cut at a random file system operation of a cleaning (at
// least 20 points, clean and torn crashes); after a restart every record read is one that
// was produced, at its offset, every record the cleaning keeps is there, and another
// cleaning then reaches exactly the model.
func TestCompactCrash(t *testing.T) {
	cycles := 24
	if v, err := strconv.Atoi(os.Getenv("COMPACT_CRASH_CYCLES")); err == nil {
		cycles = v
	}
	setup := func(fsys wal.FS, clock *fakeClock) (*Broker, history, int64) {
		cfg := Config{Dir: "/data", FS: fsys, SegmentBytes: 4096, Now: clock.Now, RetentionCheckInterval: -1, FlushInterval: -1, CleanerBackoff: -1, TxnCheckInterval: -1}
		e := &env{t: t, cfg: cfg, clock: clock}
		e.open()
		e.create("c", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "4096", "min.cleanable.dirty.ratio": "0", "delete.retention.ms": "0"})
		h := e.produceKeyed(rand.New(rand.NewPCG(3, 3)), "c", 2000, 50, 20, 8, 1000)
		return e.b, h, activeBaseOf(e.partLog("c", 0))
	}
	count := func() int64 {
		base := waltest.NewCrashFS()
		hook, ops := waltest.CrashAt(-1, func() {})
		hfs := waltest.NewHookFS(base, nil)
		b, _, _ := setup(hfs, newClock())
		hfs.SetBefore(hook)
		if _, err := b.Compact(context.Background()); err != nil {
			t.Fatal(err)
		}
		n := ops()
		b.Close()
		return n
	}
	n := count()
	r := rand.New(rand.NewPCG(5, 5))
	for i := range cycles {
		at := 1 + r.Int64N(n)
		if v, err := strconv.Atoi(os.Getenv("COMPACT_CRASH_AT")); err == nil {
			at = int64(v)
		}
		base := waltest.NewCrashFS()
		hfs := waltest.NewHookFS(base, nil)
		clock := newClock()
		b, h, end := setup(hfs, clock)
		tear := i%2 == 1
		crashAtOp(hfs, base, at, tear, r)
		b.Compact(context.Background())
		b.Close()
		hfs.SetBefore(nil)
		e := &env{t: t, clock: clock, cfg: Config{Dir: "/data", FS: base, SegmentBytes: 4096, Now: clock.Now, RetentionCheckInterval: -1, FlushInterval: -1, CleanerBackoff: -1, TxnCheckInterval: -1}}
		e.open()
		what := fmt.Sprintf("crash at op %d of %d (torn %v)", at, n, tear)
		if e2 := activeBaseOf(e.partLog("c", 0)); e2 != end {
			// The journal's replay re-rolls segments of the same size: the layout is kept.
			t.Fatalf("%s: active segment at %d after the restart, %d before", what, e2, end)
		}
		byOff := map[int64]got{}
		for _, g := range h {
			byOff[g.off] = g
		}
		want := h.expect(end, func(got) bool { return false })
		read := e.readCompacted("c")
		seen := map[int64]bool{}
		for _, g := range read {
			if byOff[g.off] != g {
				t.Fatalf("%s: read %+v, never produced", what, g)
			}
			seen[g.off] = true
		}
		for _, g := range want {
			if !seen[g.off] {
				t.Fatalf("%s: %+v lost", what, g)
			}
		}
		if _, err := e.b.Compact(context.Background()); err != nil {
			t.Fatalf("%s: cleaning again: %v", what, err)
		}
		sameRecords(t, e.readCompacted("c"), want, what+", cleaned again")
		e.b.Close()
	}
}

// FuzzWalkRecords: the record walker never panics or reads out of bounds, and a batch
// rebuilt from the records it found walks to the same records.
func FuzzWalkRecords(f *testing.F) {
	f.Add(keyedBatch(1, krec{"a", sp("1")}, krec{"b", nil})[batchHeaderLen:], int32(2))
	f.Add([]byte{0x02, 0x00}, int32(1))
	f.Fuzz(func(t *testing.T, recs []byte, n int32) {
		var raws [][]byte
		var keys []string
		if err := walkRecords(recs, n%1000, func(r rawRecord) error {
			raws = append(raws, r.raw)
			keys = append(keys, string(r.key))
			return nil
		}); err != nil {
			return
		}
		b := rebuildBatch(keyedBatch(1, krec{"x", sp("y")}), raws)
		body, cnt, err := batchRecords(b)
		if err != nil || int(cnt) != len(raws) {
			t.Fatalf("rebuilt: %v %d", err, cnt)
		}
		i := 0
		if err := walkRecords(body, cnt, func(r rawRecord) error {
			if string(r.key) != keys[i] {
				t.Fatalf("record %d key %q, want %q", i, r.key, keys[i])
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkCompact measures the cleaner's throughput (MB/s of log cleaned, both passes):
// 100k keyed records over 1k keys in 64 KiB segments, cleaned once per iteration.
func BenchmarkCompact(b *testing.B) {
	var bytes int64
	for b.Loop() {
		b.StopTimer()
		e := compactEnv(b)
		e.create("c", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "65536", "min.cleanable.dirty.ratio": "0"})
		e.produceKeyed(rand.New(rand.NewPCG(1, 1)), "c", 100000, 1000, 100, 20, 1000)
		size := e.partLog("c", 0).Size()
		b.StartTimer()
		if _, err := e.b.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		bytes += size
		e.b.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(bytes)/1e6/b.Elapsed().Seconds(), "MB/s")
}

// TestCompactRefusesRecordsWithoutKey: a compacted topic refuses a batch holding a record
// without a key (INVALID_RECORD, as Kafka), compressed or not, and stores nothing of it;
// keyed batches, compressed too, are accepted.
func TestCompactRefusesRecordsWithoutKey(t *testing.T) {
	e := compactEnv(t)
	e.create("c", 1, map[string]string{"cleanup.policy": "compact"})
	for _, gz := range []bool{false, true} {
		r := e.produce(-1, "c", 0, makeBatch(gz, rec{ts: 1, key: "k", value: "v"}, rec{ts: 1, value: "no key"}))
		if r.ErrorCode != kerr.InvalidRecord.Code || !strings.Contains(r.ErrorMessage, "without key") {
			t.Fatalf("gzip %v: code %d %q, want INVALID_RECORD", gz, r.ErrorCode, r.ErrorMessage)
		}
	}
	if n := e.partLog("c", 0).NextOffset(); n != 0 {
		t.Fatalf("%d offsets stored", n)
	}
	e.mustProduce(-1, "c", 0, makeBatch(true, rec{ts: 1, key: "k", value: "v"}, rec{ts: 1, key: "j", value: "w"}))
	e.create("d", 1, nil)
	e.mustProduce(-1, "d", 0, makeBatch(false, rec{ts: 1, value: "no key"})) // delete policy: fine
}

// FuzzDecodeCleanerState: the cleaner state decoder never panics, and what it accepts
// re-encodes to the same bytes.
func FuzzDecodeCleanerState(f *testing.F) {
	f.Add(encodeCleanerState(cleanerState{}))
	f.Add(encodeCleanerState(cleanerState{firstDirty: 100, regions: []cleanRegion{{10, 5}, {100, 7}}}))
	f.Add([]byte("MKCL\x01"))
	fuzzSameBytes(f, decodeCleanerState, encodeCleanerState, func(cleanerState) bool { return true })
}

// TestCleanerStateRegions: tombstone dating by region, and the merge of expired regions.
func TestCleanerStateRegions(t *testing.T) {
	var s cleanerState
	s.advance(100, 1000, 50)
	s.advance(200, 1030, 50)
	s.advance(300, 1100, 50)
	if got := []int64{s.cleanedAt(5, 2000), s.cleanedAt(150, 2000), s.cleanedAt(250, 2000), s.cleanedAt(300, 2000)}; fmt.Sprint(got) != "[1030 1030 1100 2000]" {
		// At 1100 with 50 ms retention, regions cleaned at 1000 and 1030 both expired: merged
		// into the later one, which still dates them as expired.
		t.Fatalf("cleanedAt: %v (regions %+v)", got, s.regions)
	}
	if s.firstDirty != 300 || len(s.regions) != 2 {
		t.Fatalf("state %+v", s)
	}
	d, err := decodeCleanerState(encodeCleanerState(s))
	if err != nil || fmt.Sprint(d) != fmt.Sprint(s) {
		t.Fatalf("round trip: %+v %v", d, err)
	}
}

// TestCompactBoundedOffsetMap: with an offset map too small for the dirty part, a round
// cleans up to the segment where the map filled, and further rounds go on from there until
// the partition holds exactly the latest record of every key below the active segment.
func TestCompactBoundedOffsetMap(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CleanerBackoff = -1; c.CleanerDedupeBufferBytes = 24 * 60 })
	e.create("c", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "4096",
		"min.cleanable.dirty.ratio": "0", "delete.retention.ms": "3600000"})
	r := rand.New(rand.NewPCG(9, 9))
	h := e.produceKeyed(r, "c", 3000, 200, 20, 10, 1000)
	end := activeBaseOf(e.partLog("c", 0))
	rounds := 0
	for ; rounds < 100; rounds++ {
		st, err := e.b.Compact(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Partitions == 0 {
			break
		}
		// Between rounds: only produced records, each key's latest below end present.
		byOff := map[int64]got{}
		for _, g := range h {
			byOff[g.off] = g
		}
		for _, g := range e.readCompacted("c") {
			if byOff[g.off] != g {
				t.Fatalf("round %d: read %+v, never produced", rounds, g)
			}
		}
	}
	if rounds < 2 {
		t.Fatalf("%d rounds: the offset map never filled", rounds)
	}
	sameRecords(t, e.readCompacted("c"), h.expect(end, func(got) bool { return true }), fmt.Sprintf("after %d rounds", rounds))
}

// TestCleanerBrokerConfigs: the cleaner's broker-level settings and the topic configs'
// log.cleaner.* defaults are described for the BROKER resource, set ones as static.
func TestCleanerBrokerConfigs(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.CleanerBackoff = -1
		c.CleanerIOBytesPerSecond = 5e6
		c.TopicDefaults = map[string]string{"delete.retention.ms": "1000", "cleanup.policy": "compact"}
	})
	br := describe(t, e.b, brokerop.ResourceBroker, "0", false)
	for name, want := range map[string]string{"log.cleaner.io.max.bytes.per.second": "5e+06", "log.cleaner.delete.retention.ms": "1000",
		"log.cleaner.min.cleanable.ratio": "0.5", "log.cleaner.backoff.ms": "-1", "log.cleanup.policy": "compact",
		"log.cleaner.dedupe.buffer.size": strconv.Itoa(128 << 20)} {
		if c := entry(br, name); c == nil || *c.Value != want {
			t.Fatalf("%s: %+v, want %s", name, c, want)
		}
	}
	// A topic created without configs takes the broker defaults.
	e.create("t", 1, nil)
	if cfg := e.b.lookup("t", 0).t.cfg.Load(); !cfg.compact || cfg.deleteOld || cfg.deleteRetentionMs != 1000 {
		t.Fatalf("topic with broker defaults: %+v", cfg)
	}
}

// TestCompactGivesWayToAdminOps: a cleaning waiting in its I/O limit holds the partition's
// log; a segment.bytes change and a topic deletion stop it instead of waiting for it, and
// the cleaner goes on with the next pass.
func TestCompactGivesWayToAdminOps(t *testing.T) {
	entered := make(chan struct{}, 16)
	e := newEnv(t, func(c *Config) {
		c.CleanerBackoff = -1
		c.CleanerIOBytesPerSecond = 1
		c.CleanerSleep = func(ctx context.Context, d time.Duration) error {
			entered <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}
	})
	e.create("c", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024", "min.cleanable.dirty.ratio": "0"})
	e.produceKeyed(rand.New(rand.NewPCG(4, 4)), "c", 300, 10, 10, 0, 1000)
	for _, op := range []string{"alter", "delete"} {
		done := make(chan error, 1)
		go func() {
			_, err := e.b.Compact(context.Background())
			done <- err
		}()
		<-entered // the cleaning holds the log, waiting in its I/O limit
		switch op {
		case "alter":
			if r, err := e.b.IncrementalAlterConfigs(context.Background(), &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{
				{Type: brokerop.ResourceTopic, Name: "c", Configs: []brokerop.IncrementalAlterConfig{{Name: "segment.bytes", Op: brokerop.ConfigOpSet, Value: sp("2048")}}}}}); err != nil || r.Resources[0].ErrorCode != 0 {
				t.Fatalf("alter: %+v %v", r, err)
			}
		case "delete":
			if r, err := e.b.DeleteTopics(context.Background(), &brokerop.DeleteTopicsReq{Topics: []string{"c"}}); err != nil || r.Topics[0].ErrorCode != 0 {
				t.Fatalf("delete: %+v %v", r, err)
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: Compact: %v", op, err)
		}
	}
}

// TestCleanerGoroutine: the broker's own cleaner goroutine compacts a partition once
// CleanerBackoff has passed (virtual time, testing/synctest), and Close stops it.
func TestCleanerGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Now = nil; c.CleanerBackoff = 15 * time.Second })
		e.create("c", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "2048", "min.cleanable.dirty.ratio": "0"})
		h := e.produceKeyed(rand.New(rand.NewPCG(6, 6)), "c", 500, 10, 10, 0, 1000)
		end := activeBaseOf(e.partLog("c", 0))
		before := len(e.readCompacted("c"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := len(e.readCompacted("c")); n != before {
			t.Fatalf("cleaned before log.cleaner.backoff.ms: %d records, %d before", n, before)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		sameRecords(t, e.readCompacted("c"), h.expect(end, func(got) bool { return true }), "after the cleaner's pass")
		if err := e.b.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// appendGot appends to out the records of one batch's record section recs (n records, first
// offset base) at offsets from on.
func appendGot(out []got, recs []byte, n int32, base, from int64) ([]got, error) {
	err := walkRecords(recs, n, func(x rawRecord) error {
		off := base + int64(x.offsetDelta)
		if off < from {
			return nil
		}
		g := got{off: off, key: string(x.key), null: x.nullValue}
		if !x.nullValue {
			g.value = recordValue(x.raw)
		}
		out = append(out, g)
		return nil
	})
	return out, err
}
