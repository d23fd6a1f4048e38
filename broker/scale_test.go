package broker

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Partitions are opened on first use: creating a topic opens no log and creates no
// partition directory; reads of a never-written partition answer an empty log without
// touching the disk; a write opens (and creates) the log; after a restart nothing is open
// until used.
func TestPartitionsOpenLazily(t *testing.T) {
	e := newEnv(t)
	e.create("t", 10_000, nil)
	if s := e.b.Stats(); s.OpenLogs != 0 || s.Partitions != 10_000 {
		t.Fatalf("after create: %+v, want 0 open logs of 10000 partitions", s)
	}
	partitionDirs := func() int {
		n := 0
		for _, f := range e.fs.Files() {
			if strings.Contains(f, "/topics/t-") {
				n++
			}
		}
		return n
	}
	if n := partitionDirs(); n != 0 {
		t.Fatalf("create wrote %d files under the topic", n)
	}
	// Reads of an untouched partition: an empty log, nothing opened.
	if r := e.fetch("t", 5000, 0, 1<<20); r.ErrorCode != 0 || r.HighWatermark != 0 || r.LogStartOffset != 0 || len(r.Records) != 0 {
		t.Fatalf("fetch of an empty partition: %+v", r)
	}
	if r := e.fetch("t", 5000, 1, 1<<20); r.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the end of an empty partition: code %d", r.ErrorCode)
	}
	lo, err := e.b.ListOffsets(context.Background(), &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{
		{Topic: "t", Partition: 7, Timestamp: tsEarliest}, {Topic: "t", Partition: 7, Timestamp: tsLatest},
		{Topic: "t", Partition: 7, Timestamp: tsMaxTimestamp}, {Topic: "t", Partition: 7, Timestamp: 12345}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{0, 0, -1, -1} {
		if r := lo.Partitions[i]; r.ErrorCode != 0 || r.Offset != want {
			t.Fatalf("list offsets %d of an empty partition: %+v, want offset %d", i, r, want)
		}
	}
	if err := e.b.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if s := e.b.Stats(); s.OpenLogs != 0 || partitionDirs() != 0 {
		t.Fatalf("reads, flush and retention opened logs: %+v, %d files", s, partitionDirs())
	}
	// A write opens that partition's log only.
	e.mustProduce(-1, "t", 5000, makeBatch(false, vals(1, "a", "b")...))
	if s := e.b.Stats(); s.OpenLogs != 1 {
		t.Fatalf("after one produce: %d open logs, want 1", s.OpenLogs)
	}
	if _, v := e.readAll("t", 5000, 0); strings.Join(v, ",") != "a,b" {
		t.Fatalf("read back %v", v)
	}
	// After a restart nothing is open; reading the written partition opens it and finds the
	// data; reading another does not open it.
	e.restart()
	if s := e.b.Stats(); s.OpenLogs != 0 {
		t.Fatalf("after restart: %d open logs", s.OpenLogs)
	}
	if _, v := e.readAll("t", 4999, 0); len(v) != 0 {
		t.Fatalf("partition 4999 holds %v", v)
	}
	if s := e.b.Stats(); s.OpenLogs != 0 {
		t.Fatalf("reading an empty partition after restart opened %d logs", s.OpenLogs)
	}
	if _, v := e.readAll("t", 5000, 0); strings.Join(v, ",") != "a,b" {
		t.Fatalf("after restart read back %v", v)
	}
	if s := e.b.Stats(); s.OpenLogs != 1 {
		t.Fatalf("after reading the written partition: %d open logs, want 1", s.OpenLogs)
	}
	// Grown partitions are lazy too.
	cp, err := e.b.CreatePartitions(context.Background(), &brokerop.CreatePartitionsReq{Topics: []brokerop.CreatePartitionsTopic{{Name: "t", Count: 10_010}}})
	if err != nil || cp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create partitions: %v %+v", err, cp)
	}
	if r := e.fetch("t", 10_005, 0, 1<<20); r.ErrorCode != 0 || r.HighWatermark != 0 {
		t.Fatalf("fetch of a new partition: %+v", r)
	}
	if s := e.b.Stats(); s.OpenLogs != 1 || s.Partitions != 10_010 {
		t.Fatalf("after growing: %+v", s)
	}
	// Delete closes and removes what is open.
	del, err := e.b.DeleteTopics(context.Background(), &brokerop.DeleteTopicsReq{Topics: []string{"t"}})
	if err != nil || del.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete: %v %+v", err, del)
	}
	if s := e.b.Stats(); s.OpenLogs != 0 || s.Partitions != 0 || partitionDirs() != 0 {
		t.Fatalf("after delete: %+v, %d files", s, partitionDirs())
	}
}

// Retention reaches partitions whose log is not open (cold since a restart): it opens them,
// removes expired segments and closes them again.
func TestRetentionOfColdPartitions(t *testing.T) {
	e := newEnv(t)
	e.create("t", 3, map[string]string{"segment.bytes": "512", "retention.bytes": "600"})
	for i := range 10 {
		e.mustProduce(1, "t", 1, makeBatch(false, vals(int64(i), strings.Repeat("y", 200))...))
	}
	e.restart()
	n, err := e.b.EnforceRetention()
	if err != nil || n == 0 {
		t.Fatalf("retention of a cold partition: %d segments, %v", n, err)
	}
	if s := e.b.Stats(); s.OpenLogs != 0 {
		t.Fatalf("retention left %d logs open", s.OpenLogs)
	}
	if r := e.fetch("t", 1, 0, 1<<20); r.ErrorCode != kerr.OffsetOutOfRange.Code || r.LogStartOffset == 0 || r.HighWatermark != 10 {
		t.Fatalf("after retention: %+v", r)
	}
}

// An idle partition costs little memory and no goroutine at broker level.
func TestIdlePartitionMemory(t *testing.T) {
	e := newEnv(t)
	const n = 10_000
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	e.create("idle", n, nil)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("heap per idle partition: %d bytes", per)
	if per > 512 {
		t.Fatalf("an idle partition costs %d bytes of heap, want <= 512", per)
	}
	if g := runtime.NumGoroutine(); g > goroutines {
		t.Fatalf("creating %d partitions started %d goroutines", n, g-goroutines)
	}
	runtime.KeepAlive(e.b)
}

// CreateTopics, CreatePartitions and auto-creation past Config.MaxPartitions answer
// INVALID_PARTITIONS naming the limit, and create nothing.
func TestPartitionLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxPartitions = 10; c.DefaultPartitions = 2 })
	bg := context.Background()
	e.create("a", 8, nil)
	wantLimit := func(code int16, msg *string, what string) {
		t.Helper()
		if code != kerr.InvalidPartitions.Code || msg == nil || !strings.Contains(*msg, "limit of 10") {
			m := "<nil>"
			if msg != nil {
				m = *msg
			}
			t.Fatalf("%s: code %d %q, want INVALID_PARTITIONS naming the limit", what, code, m)
		}
	}
	for _, validateOnly := range []bool{true, false} {
		resp, err := e.b.CreateTopics(bg, &brokerop.CreateTopicsReq{ValidateOnly: validateOnly, Topics: []brokerop.CreateTopic{
			{Name: "b", NumPartitions: 2, ReplicationFactor: 1}, {Name: "c", NumPartitions: 1, ReplicationFactor: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("b fits: %+v", resp.Topics[0])
		}
		wantLimit(resp.Topics[1].ErrorCode, &resp.Topics[1].ErrorMessage, fmt.Sprintf("c (validate only %v)", validateOnly))
	}
	if s := e.b.Stats(); s.Partitions != 10 {
		t.Fatalf("%d partitions, want 10", s.Partitions)
	}
	cp, err := e.b.CreatePartitions(bg, &brokerop.CreatePartitionsReq{Topics: []brokerop.CreatePartitionsTopic{{Name: "a", Count: 9}}})
	if err != nil {
		t.Fatal(err)
	}
	wantLimit(cp.Topics[0].ErrorCode, &cp.Topics[0].ErrorMessage, "create partitions")
	md, err := e.b.Metadata(bg, &brokerop.MetadataReq{Topics: []string{"auto"}, AutoCreate: true})
	if err != nil || md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("auto-create past the limit: %v %+v", err, md.Topics)
	}
	// A huge count is refused before anything is allocated for it.
	e2 := newEnv(t)
	resp, err := e2.b.CreateTopics(bg, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "huge", NumPartitions: math.MaxInt32, ReplicationFactor: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	wantLimitDefault := resp.Topics[0]
	if wantLimitDefault.ErrorCode != kerr.InvalidPartitions.Code || !strings.Contains(wantLimitDefault.ErrorMessage, fmt.Sprint(DefaultMaxPartitions)) {
		t.Fatalf("huge topic: %+v", wantLimitDefault)
	}
	// Deleting frees room under the limit.
	e.b.DeleteTopics(bg, &brokerop.DeleteTopicsReq{Topics: []string{"a"}})
	e.create("c", 8, nil)
}

// failingRegistry fails Store with err once armed.
type failingRegistry struct {
	Registry
	err error
}

func (r *failingRegistry) Store(st *RegistryState) error {
	if r.err != nil {
		return r.err
	}
	return r.Registry.Store(st)
}

// Errors the broker puts in Kafka responses name what failed, never an internal path; the
// broker log has the details.
func TestAdminErrorsHideInternalPaths(t *testing.T) {
	reg := &failingRegistry{}
	e := newEnv(t, func(c *Config) {
		reg.Registry = &FileRegistry{FS: c.FS, Path: "/data/topics.registry"}
		c.Registry = reg
	})
	e.create("t", 1, nil)
	bg := context.Background()
	for _, tc := range []struct {
		errno syscall.Errno
		says  string
	}{{syscall.EMFILE, "file descriptors"}, {syscall.ENOSPC, "disk is full"}, {syscall.EIO, "Storage error"}} {
		reg.err = &fs.PathError{Op: "open", Path: "/secret/internal/topics.registry.tmp", Err: tc.errno}
		check := func(what string, code int16, msg string) {
			t.Helper()
			if code != kerr.KafkaStorageError.Code || strings.Contains(msg, "/secret") || strings.Contains(msg, "/data") || !strings.Contains(msg, tc.says) {
				t.Fatalf("%s with %v: code %d message %q", what, tc.errno, code, msg)
			}
		}
		ct, err := e.b.CreateTopics(bg, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "new", NumPartitions: 1, ReplicationFactor: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		check("create topics", ct.Topics[0].ErrorCode, ct.Topics[0].ErrorMessage)
		cp, err := e.b.CreatePartitions(bg, &brokerop.CreatePartitionsReq{Topics: []brokerop.CreatePartitionsTopic{{Name: "t", Count: 2}}})
		if err != nil {
			t.Fatal(err)
		}
		check("create partitions", cp.Topics[0].ErrorCode, cp.Topics[0].ErrorMessage)
		ac, err := e.b.IncrementalAlterConfigs(bg, &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{{Type: brokerop.ResourceTopic, Name: "t",
			Configs: []brokerop.IncrementalAlterConfig{{Name: "retention.ms", Op: brokerop.ConfigOpSet, Value: sp("1000")}}}}})
		if err != nil {
			t.Fatal(err)
		}
		check("alter configs", ac.Resources[0].ErrorCode, ac.Resources[0].ErrorMessage)
	}
	reg.err = nil
	// Nothing of the failed ops took effect.
	md, _ := e.b.Metadata(bg, &brokerop.MetadataReq{})
	if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
		t.Fatalf("failed ops changed the topics: %+v", md.Topics)
	}
	e.create("new", 1, nil) // and the broker works on once the registry does
}

// A 100,000-partition topic is created, written on a spread sample of partitions (every
// 1000th and 200 more at random) and read back whole, on the real disk, then again after a
// restart. The broker holds open logs only for the written partitions.
func TestHundredThousandPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 partitions: skipped in -short mode")
	}
	const n = 100_000
	dir := t.TempDir()
	b := mustOpen(t, Config{Dir: dir, RetentionCheckInterval: -1, FlushInterval: -1})
	defer func() { b.Close() }()
	bg := context.Background()
	ct, err := b.CreateTopics(bg, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "big", NumPartitions: n, ReplicationFactor: 1}}})
	if err != nil || ct.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, ct.Topics)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	written := map[int32]int{} // partition -> records
	for p := int32(0); p < n; p += 1000 {
		written[p] = 0
	}
	for len(written) < n/1000+200 {
		written[rng.Int32N(n)] = 0
	}
	// One produce request per 50 partitions, acks=all.
	var req brokerop.ProduceReq
	req.Acks = -1
	flush := func() {
		if len(req.Partitions) == 0 {
			return
		}
		resp, err := b.Produce(bg, &req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Partitions {
			if r.ErrorCode != 0 || r.BaseOffset != 0 {
				t.Fatalf("produce %d: code %d base %d", r.Partition, r.ErrorCode, r.BaseOffset)
			}
		}
		req.Partitions = req.Partitions[:0]
	}
	for p := range written {
		k := 1 + int(p%3)
		vs := make([]string, k)
		for i := range vs {
			vs[i] = fmt.Sprintf("p%d-%d", p, i)
		}
		written[p] = k
		req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: "big", Partition: p, Records: makeBatch(false, vals(1, vs...)...)})
		if len(req.Partitions) == 50 {
			flush()
		}
	}
	flush()
	if s := b.Stats(); s.OpenLogs != int64(len(written)) {
		t.Fatalf("%d open logs, want %d (the written partitions)", s.OpenLogs, len(written))
	}
	consumeAll := func(round string) {
		t.Helper()
		const chunk = 10_000
		got := 0
		for from := int32(0); from < n; from += chunk {
			req := &brokerop.FetchReq{MaxBytes: 64 << 20}
			for p := from; p < from+chunk; p++ {
				req.Partitions = append(req.Partitions, brokerop.FetchPartition{Topic: "big", Partition: p, MaxBytes: 1 << 20})
			}
			resp, err := b.Fetch(bg, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.Partitions {
				want := written[r.Partition]
				if r.ErrorCode != 0 || r.HighWatermark != int64(want) {
					t.Fatalf("%s: partition %d: code %d high watermark %d, want %d", round, r.Partition, r.ErrorCode, r.HighWatermark, want)
				}
				if want == 0 {
					if len(r.Records) != 0 {
						t.Fatalf("%s: unwritten partition %d has data", round, r.Partition)
					}
					continue
				}
				offs, vs := decodeBatches(t, r.Records)
				for i := range vs {
					if offs[i] != int64(i) || vs[i] != fmt.Sprintf("p%d-%d", r.Partition, i) {
						t.Fatalf("%s: partition %d record %d: %q at %d", round, r.Partition, i, vs[i], offs[i])
					}
				}
				if len(vs) != want {
					t.Fatalf("%s: partition %d: %d records, want %d", round, r.Partition, len(vs), want)
				}
				got += len(vs)
			}
		}
		total := 0
		for _, k := range written {
			total += k
		}
		if got != total {
			t.Fatalf("%s: read %d records, want %d", round, got, total)
		}
	}
	consumeAll("first read")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err = Open(Config{Dir: dir, RetentionCheckInterval: -1, FlushInterval: -1}); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.OpenLogs != 0 || s.Partitions != n {
		t.Fatalf("after restart: %+v", s)
	}
	consumeAll("after restart")
	if s := b.Stats(); s.OpenLogs != int64(len(written)) {
		t.Fatalf("after reading: %d open logs, want %d", s.OpenLogs, len(written))
	}
}

// Concurrent first uses of cold partitions (produce, fetch, list offsets) race with a
// segment.bytes change (reopen of open logs), retention, the flusher and Stats: every
// acknowledged append gets its own offset and is read back, and each partition's log is
// opened once.
func TestConcurrentLazyOpen(t *testing.T) {
	e := newEnv(t)
	const parts, writers, each = 8, 4, 20
	e.create("t", parts, map[string]string{"segment.bytes": "4096"})
	bg := context.Background()
	var wg sync.WaitGroup
	acked := make([][]int64, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				p := int32((w + i) % parts)
				r := e.produce([]int16{-1, 1}[i%2], "t", p, makeBatch(false, vals(1, fmt.Sprintf("w%d-%d", w, i))...))
				if r.ErrorCode != 0 {
					t.Errorf("produce: code %d", r.ErrorCode)
					return
				}
				acked[w] = append(acked[w], int64(p)<<32|r.BaseOffset)
			}
		})
	}
	for r := range 2 {
		wg.Go(func() {
			for i := range 50 {
				p := int32((r + i) % parts)
				e.b.Fetch(bg, &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: "t", Partition: p, MaxBytes: 1 << 20}}})
				e.b.ListOffsets(bg, &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: "t", Partition: p, Timestamp: tsLatest}}})
				e.b.Stats()
			}
		})
	}
	wg.Go(func() {
		for i := range 5 {
			e.b.IncrementalAlterConfigs(bg, &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{{Type: brokerop.ResourceTopic, Name: "t",
				Configs: []brokerop.IncrementalAlterConfig{{Name: "segment.bytes", Op: brokerop.ConfigOpSet, Value: sp(fmt.Sprint(4096 + i))}}}}})
			e.b.EnforceRetention()
			e.b.Flush()
		}
	})
	wg.Wait()
	seen := map[int64]bool{}
	for _, offs := range acked {
		for _, po := range offs {
			if seen[po] {
				t.Fatalf("partition %d offset %d acknowledged twice", po>>32, po&(1<<32-1))
			}
			seen[po] = true
		}
	}
	if len(seen) != writers*each {
		t.Fatalf("%d acknowledged, want %d", len(seen), writers*each)
	}
	total := 0
	for p := range int32(parts) {
		offs, _ := e.readAll("t", p, 0)
		for i, o := range offs {
			if o != int64(i) || !seen[int64(p)<<32|o] {
				t.Fatalf("partition %d: offset %d at %d (acknowledged: %v)", p, o, i, seen[int64(p)<<32|o])
			}
		}
		total += len(offs)
	}
	if total != writers*each {
		t.Fatalf("read %d records, want %d", total, writers*each)
	}
	if s := e.b.Stats(); s.OpenLogs != parts {
		t.Fatalf("%d open logs, want %d", s.OpenLogs, parts)
	}
}

// A produce's first writes to many partitions open their logs concurrently (openMissing);
// two such produces race over the same cold partitions: each partition's log is opened once
// and the two records of each partition get offsets 0 and 1.
func TestProduceOpensManyPartitionsConcurrently(t *testing.T) {
	e := newEnv(t)
	const parts = 100
	e.create("t", parts, nil)
	bg := context.Background()
	req := func(v string) *brokerop.ProduceReq {
		r := &brokerop.ProduceReq{Acks: -1}
		for p := range int32(parts) {
			r.Partitions = append(r.Partitions, brokerop.ProducePartition{Topic: "t", Partition: p, Records: makeBatch(false, vals(1, v)...)})
		}
		return r
	}
	var wg sync.WaitGroup
	for _, v := range []string{"a", "b"} {
		wg.Go(func() {
			resp, err := e.b.Produce(bg, req(v))
			if err != nil {
				t.Error(err)
				return
			}
			for _, r := range resp.Partitions {
				if r.ErrorCode != 0 || r.BaseOffset > 1 {
					t.Errorf("%s: partition %d: code %d base %d", v, r.Partition, r.ErrorCode, r.BaseOffset)
				}
			}
		})
	}
	wg.Wait()
	if s := e.b.Stats(); s.OpenLogs != parts {
		t.Fatalf("%d open logs, want %d", s.OpenLogs, parts)
	}
	for p := range int32(parts) {
		if offs, vs := e.readAll("t", p, 0); len(offs) != 2 || offs[1] != 1 || vs[0] == vs[1] {
			t.Fatalf("partition %d: %v %v", p, offs, vs)
		}
	}
}

// An acks=all produce over many partitions waits once, for the journal record of the newest
// partition it appended to; that group commit makes every partition of the request durable
// (a crash right after the answer loses none), and the flusher later brings each log's own
// synced offset up.
func TestProduceWaitsOnceForTheJournal(t *testing.T) {
	e := newEnv(t)
	const parts = 50
	e.create("t", parts, nil)
	for p := range int32(parts) {
		e.partLog("t", p)
	}
	req := &brokerop.ProduceReq{Acks: -1}
	for p := range int32(parts) {
		req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: "t", Partition: p, Records: makeBatch(false, vals(1, fmt.Sprint("v", p))...)})
	}
	before := e.b.Stats().Fsyncs
	e.produceAll(req)
	if n := e.b.Stats().Fsyncs - before; n != 1 {
		t.Fatalf("%d journal fsyncs for one produce, want 1", n)
	}
	if l := e.partLog("t", 0); l.SyncedOffset() != 0 {
		t.Fatalf("partition 0 was synced on its own (synced offset %d)", l.SyncedOffset())
	}
	e.crash(nil) // kill -9 right after the answer: nothing acknowledged may be missing
	for p := range int32(parts) {
		if _, vs := e.readAll("t", p, 0); len(vs) != 1 || vs[0] != fmt.Sprint("v", p) {
			t.Fatalf("partition %d after a crash: %v", p, vs)
		}
	}
	if _, err := e.b.Produce(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Flush(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(parts) {
		if l := e.partLog("t", p); l.SyncedOffset() != 2 {
			t.Fatalf("partition %d: synced offset %d after Flush, want 2", p, l.SyncedOffset())
		}
	}
}
