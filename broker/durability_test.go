package broker

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/internal/brokertest"
	"github.com/meshkafka/meshkafka/wal/waltest"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Close + Open keeps topics, partition counts, configs, topic ids, the cluster id and data.
func TestRestartKeepsEverything(t *testing.T) {
	e := newEnv(t)
	e.create("a", 3, map[string]string{"retention.ms": "3600000", "cleanup.policy": "delete"})
	e.create("b", 1, nil)
	for i := range 6 {
		e.mustProduce(int16(i%2), "a", int32(i%3), makeBatch(false, vals(int64(i), fmt.Sprint(i))...))
	}
	before, _ := e.b.Metadata(bg, &brokerop.MetadataReq{})
	cfgBefore := describe(t, e.b, brokerop.ResourceTopic, "a", true)
	e.restart()
	after, _ := e.b.Metadata(bg, &brokerop.MetadataReq{})
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("metadata changed across restart:\n%+v\n%+v", before, after)
	}
	if cfgAfter := describe(t, e.b, brokerop.ResourceTopic, "a", true); !reflect.DeepEqual(cfgBefore, cfgAfter) {
		t.Fatalf("configs changed across restart")
	}
	for p := range int32(3) {
		_, v := e.readAll("a", p, 0)
		if want := []string{fmt.Sprint(p), fmt.Sprint(p + 3)}; !slices.Equal(v, want) {
			t.Fatalf("partition %d: %v, want %v", p, v, want)
		}
	}
	// Offsets continue where they were.
	if off := e.mustProduce(-1, "a", 0, makeBatch(false, vals(9, "next")...)); off != 2 {
		t.Fatalf("next offset after restart %d, want 2", off)
	}
}

// Acknowledged acks=all data survives a crash (unsynced writes dropped, torn tails), offsets stay
// contiguous, and nothing corrupt is ever returned. Randomised, seeded.
func TestCrashKeepsAckedData(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 42))
			e := newEnv(t, func(c *Config) { c.SegmentBytes = 2048 })
			e.create("t", 2, nil)
			acked := map[int32][]string{}
			produced, lost := 0, 0
			for round := range 4 {
				for i := range 30 {
					p := int32(r.IntN(2))
					v := fmt.Sprintf("r%d-%d", round, i)
					acks := []int16{-1, 1, 0}[r.IntN(3)]
					res := e.produce(acks, "t", p, makeBatch(r.IntN(4) == 0, vals(int64(i), v, v+"b")...))
					if res.ErrorCode != 0 {
						t.Fatalf("produce: %d", res.ErrorCode)
					}
					produced += 2
					if acks == -1 {
						acked[p] = append(acked[p], v)
					}
				}
				var tear *rand.Rand
				if round%2 == 1 {
					tear = r
				}
				e.crash(tear)
				survived := 0
				for p := range int32(2) {
					offs, vs := e.readAll("t", p, 0)
					survived += len(vs)
					for i, o := range offs {
						if o != int64(i) {
							t.Fatalf("partition %d: offsets not contiguous: %v", p, offs)
						}
					}
					for _, v := range acked[p] {
						if !slices.Contains(vs, v) {
							t.Fatalf("round %d: acked record %s lost from partition %d (have %v)", round, v, p, vs)
						}
					}
				}
				lost += produced - survived
				produced = survived
			}
			// Trailing acks=0/1 writes are never synced (the flusher is off): a run that
			// loses nothing means the crash simulation did not happen.
			if lost == 0 {
				t.Fatal("no unsynced record was lost in any crash")
			}
			t.Logf("%d unacknowledged records lost over 4 crashes", lost)
		})
	}
}

// The registry is replaced atomically: a crash at any point of a sequence of admin ops leaves
// a state that opens, and every op that returned is in it.
func TestCrashDuringAdminKeepsRegistryConsistent(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.create(fmt.Sprint("t", i), int32(i+1), map[string]string{"retention.ms": fmt.Sprint(1000 * (i + 1))})
	}
	e.b.DeleteTopics(bg, &brokerop.DeleteTopicsReq{Topics: []string{"t1"}})
	e.crash(rand.New(rand.NewPCG(1, 2)))
	md, _ := e.b.Metadata(bg, &brokerop.MetadataReq{})
	var names []string
	for _, ti := range md.Topics {
		names = append(names, fmt.Sprint(ti.Name, "/", len(ti.Partitions)))
	}
	if want := []string{"t0/1", "t2/3", "t3/4", "t4/5"}; !slices.Equal(names, want) {
		t.Fatalf("after crash: %v, want %v", names, want)
	}
	if v := entry(describe(t, e.b, brokerop.ResourceTopic, "t3", false), "retention.ms"); *v.Value != "4000" {
		t.Fatalf("config after crash: %s", *v.Value)
	}
}

func TestRegistryRefusesCorruptFile(t *testing.T) {
	fs := waltest.NewCrashFS()
	fs.MkdirAll("/r", 0o755)
	reg := &FileRegistry{FS: fs, Path: "/r/topics.registry"}
	if st, err := reg.Load(); st != nil || err != nil {
		t.Fatalf("missing file: %v %v", st, err)
	}
	if err := reg.Store(&RegistryState{ClusterID: "c", Topics: []TopicRecord{{Name: "x", Partitions: 2, ID: TopicID{1, 2}}}}); err != nil {
		t.Fatal(err)
	}
	st, err := reg.Load()
	if err != nil || st.Topics[0].Name != "x" || st.Topics[0].ID != (TopicID{1, 2}) {
		t.Fatalf("load: %v %+v", err, st)
	}
	data, _ := fs.ReadFile("/r/topics.registry")
	idx := strings.Index(string(data), `"x"`)
	if err := fs.FlipBit("/r/topics.registry", int64(idx+1)*8); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Load(); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupt registry loaded: %v", err)
	}
	if _, err := Open(Config{Dir: "/r", FS: fs, RetentionCheckInterval: -1, FlushInterval: -1}); err == nil {
		t.Fatal("Open accepted a corrupt registry (would lose every topic)")
	}
}

func TestRetention(t *testing.T) {
	e := newEnv(t)
	e.create("t", 1, map[string]string{"segment.bytes": "1024", "retention.ms": "60000"})
	payload := strings.Repeat("x", 200)
	for i := range 20 {
		ts := e.clock.Now().UnixMilli()
		e.mustProduce(-1, "t", 0, makeBatch(false, rec{ts: ts, value: fmt.Sprint(i, payload)}))
		if i == 9 {
			e.clock.Advance(2 * time.Minute)
		}
	}
	enforceRetention(t, e.b, "broker")
	r := e.fetch("t", 0, 19, 1<<20)
	if r.LogStartOffset == 0 || r.LogStartOffset > 10 {
		t.Fatalf("log start offset %d, want in (0, 10]", r.LogStartOffset)
	}
	// A consumer below the log start offset gets OFFSET_OUT_OF_RANGE; earliest moved.
	if r := e.fetch("t", 0, 0, 1<<20); r.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below start: %+v", r)
	}
	lo, _ := e.b.ListOffsets(bg, &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: "t", Partition: 0, Timestamp: -2}}})
	if lo.Partitions[0].Offset != r.LogStartOffset {
		t.Fatalf("earliest %d, want %d", lo.Partitions[0].Offset, r.LogStartOffset)
	}
	// Records newer than retention.ms are all still there.
	offs, _ := e.readAll("t", 0, r.LogStartOffset)
	if offs[len(offs)-1] != 19 || !slices.Contains(offs, 10) {
		t.Fatalf("recent records lost: %v", offs)
	}
	// retention.bytes (altered at runtime) trims by size.
	e.b.IncrementalAlterConfigs(bg, &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{{Type: brokerop.ResourceTopic, Name: "t",
		Configs: []brokerop.IncrementalAlterConfig{{Name: "retention.bytes", Op: brokerop.ConfigOpSet, Value: sp("1024")}}}}})
	start := r.LogStartOffset
	if n, _ := e.b.EnforceRetention(); n == 0 {
		t.Fatal("retention.bytes removed nothing")
	}
	if s := e.partLog("t", 0).StartOffset(); s <= start {
		t.Fatalf("start offset %d did not move past %d", s, start)
	}
}

// The owned goroutine enforces retention and flushes on its own.
func TestBackgroundRetentionAndFlush(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.RetentionCheckInterval = 5 * time.Millisecond
		c.FlushInterval = 5 * time.Millisecond
	})
	e.create("t", 1, map[string]string{"segment.bytes": "512", "retention.bytes": "0"})
	for i := range 10 {
		e.mustProduce(1, "t", 0, makeBatch(false, vals(int64(i), strings.Repeat("y", 200))...))
	}
	p := e.b.lookup("t", 0)
	deadline := time.Now().Add(10 * time.Second)
	for p.log.StartOffset() == 0 || p.log.SyncedOffset() < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("background: start %d synced %d", p.log.StartOffset(), p.log.SyncedOffset())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFlushPolicy(t *testing.T) {
	e := newEnv(t)
	e.create("strict", 1, nil)
	e.create("relaxed", 1, map[string]string{"flush.messages": "5", "flush.ms": "60000"})
	one := func() []byte { return makeBatch(false, vals(1, "v")...) }
	strict, relaxed := e.b.lookup("strict", 0), e.b.lookup("relaxed", 0)
	// Default policy: acks=all waits for fsync; acks=1 does not.
	e.mustProduce(-1, "strict", 0, one())
	if strict.log.SyncedOffset() != 1 {
		t.Fatal("acks=all answered before fsync")
	}
	e.mustProduce(1, "strict", 0, one())
	if strict.log.SyncedOffset() != 1 {
		t.Fatal("acks=1 waited for fsync")
	}
	if err := e.b.Flush(); err != nil || strict.log.SyncedOffset() != 2 {
		t.Fatalf("flusher did not sync acks=1 data: %v", err)
	}
	// Relaxed: acks=all does not fsync until flush.messages offsets are unsynced.
	for range 4 {
		e.mustProduce(-1, "relaxed", 0, one())
	}
	if relaxed.log.SyncedOffset() != 0 {
		t.Fatal("relaxed topic fsynced before flush.messages")
	}
	e.mustProduce(1, "relaxed", 0, one()) // the 5th unsynced offset: fsync, even with acks=1
	if relaxed.log.SyncedOffset() != 5 {
		t.Fatalf("flush.messages reached, synced %d", relaxed.log.SyncedOffset())
	}
	e.mustProduce(-1, "relaxed", 0, one())
	e.b.Flush()
	if relaxed.log.SyncedOffset() != 5 {
		t.Fatal("flusher ignored flush.ms")
	}
	e.clock.Advance(61 * time.Second)
	e.b.Flush()
	if relaxed.log.SyncedOffset() != 6 {
		t.Fatal("flusher did not honour flush.ms")
	}
}

// Produce, fetch and admin ops race with deletes and with Close without data races or
// panics (run with -race).
func TestConcurrentOpsWithDeleteAndClose(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprint("c", i%3)
				e.b.Metadata(bg, &brokerop.MetadataReq{Topics: []string{name}, AutoCreate: true})
				e.b.Produce(bg, &brokerop.ProduceReq{Acks: []int16{-1, 1}[w%2], Partitions: []brokerop.ProducePartition{{Topic: name, Records: makeBatch(false, vals(1, "x")...)}}})
				e.b.Fetch(bg, &brokerop.FetchReq{MaxWaitMs: 1, MinBytes: 1 << 20, MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: name, MaxBytes: 1 << 20}}})
				if w == 0 && i%5 == 0 {
					e.b.DeleteTopics(bg, &brokerop.DeleteTopicsReq{Topics: []string{name}})
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err := e.b.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := e.b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := e.b.Produce(bg, &brokerop.ProduceReq{}); err != ErrClosed {
		t.Fatalf("produce after close: %v", err)
	}
}

// FuzzDecodeRegistry: a registry file of arbitrary bytes either decodes (checksum and length
// match) or is refused; it never panics, and what decodes re-encodes to the same state.
func FuzzDecodeRegistry(f *testing.F) {
	good, _ := encodeRegistry(&RegistryState{ClusterID: "c", Topics: []TopicRecord{{Name: "x", Partitions: 3, Configs: map[string]string{"retention.ms": "1"}}}})
	f.Add(good)
	f.Add([]byte("meshkafka-registry v1 crc32c=00000000 len=0\n"))
	f.Add([]byte{})
	brokertest.FuzzReDecodes(f, decodeRegistry, encodeRegistry, brokertest.DeepEqual)
}

// segment.bytes altered at runtime applies from the next segment on, while producers keep
// going without errors and acks=all answers stay durable.
func TestAlterSegmentBytesAtRuntime(t *testing.T) {
	e := newTopicEnv(t, 1)
	segments := func() int {
		n := 0
		for _, f := range e.fs.Files() {
			if strings.Contains(f, "/topics/t-") && strings.HasSuffix(f, ".log") {
				n++
			}
		}
		return n
	}
	payload := strings.Repeat("p", 300)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	for w := range 3 {
		wg.Go(func() {
			for i := range 40 {
				v := fmt.Sprint(w, "-", i)
				r := e.produce(-1, "t", 0, makeBatch(false, vals(1, v+payload)...))
				if r.ErrorCode != 0 {
					t.Errorf("produce during alter: code %d", r.ErrorCode)
					return
				}
				mu.Lock()
				acked = append(acked, v+payload)
				mu.Unlock()
			}
		})
	}
	for _, size := range []string{"2048", "4096", "1024"} {
		time.Sleep(2 * time.Millisecond)
		resp, _ := e.b.IncrementalAlterConfigs(bg, &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{{Type: brokerop.ResourceTopic, Name: "t",
			Configs: []brokerop.IncrementalAlterConfig{{Name: "segment.bytes", Op: brokerop.ConfigOpSet, Value: sp(size)}}}}})
		if resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("alter: %+v", resp.Resources[0])
		}
	}
	wg.Wait()
	before := segments()
	for range 10 {
		e.mustProduce(1, "t", 0, makeBatch(false, vals(1, payload)...))
	}
	if after := segments(); after <= before || after < 3 {
		t.Fatalf("segments %d → %d: the new segment.bytes did not apply", before, after)
	}
	e.crash(nil)
	offs, vs := e.readAll("t", 0, 0)
	for i, o := range offs {
		if o != int64(i) {
			t.Fatalf("offsets not contiguous after crash: %v", offs)
		}
	}
	for _, v := range acked {
		if !slices.Contains(vs, v) {
			t.Fatalf("acked record lost across a reopen + crash")
		}
	}
}

// A record a consumer has read is durable: reads serve only fsynced records (they join the
// group commit for records produced with acks=0/1), so a crash right after a read never takes
// back what was read — the "inconsistent read" a Jepsen-style checker flags. Before, a fetch
// served records still in memory and a kill -9 lost them.
func TestReadRecordsSurviveCrash(t *testing.T) {
	for _, acks := range []int16{0, 1} {
		t.Run(fmt.Sprint("acks", acks), func(t *testing.T) {
			e := newEnv(t, func(*Config) {})
			e.create("t", 1, nil)
			for i := range 20 {
				if r := e.produce(acks, "t", 0, makeBatch(false, vals(int64(i), fmt.Sprint("v", i))...)); r.ErrorCode != 0 {
					t.Fatalf("produce: %d", r.ErrorCode)
				}
			}
			offs, read := e.readAll("t", 0, 0)
			if len(read) != 20 {
				t.Fatalf("read %d records before the crash, want 20", len(read))
			}
			e.crash(nil)
			offs2, after := e.readAll("t", 0, 0)
			if !slices.Equal(read, after) || !slices.Equal(offs, offs2) {
				t.Fatalf("records read before the crash %v at %v; after it %v at %v", read, offs, after, offs2)
			}
		})
	}
}
