package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/internal/brokertest"
	"github.com/meshkafka/meshkafka/wal/waltest"
	"github.com/twmb/franz-go/pkg/kerr"
)

// dirEnv is a broker on a DirFaultFS (lost and reordered directory operations).
type dirEnv struct {
	t   *testing.T
	fs  *waltest.DirFaultFS
	cfg Config
	b   *Broker
}

func newDirEnv(t *testing.T) *dirEnv {
	t.Helper()
	e := &dirEnv{t: t, fs: waltest.NewDirFaultFS()}
	e.cfg = Config{Dir: "/data", DefaultPartitions: 1, FS: e.fs, Now: newClock().Now,
		RetentionCheckInterval: -1, FlushInterval: -1}
	e.open()
	t.Cleanup(func() { e.b.Close() })
	return e
}

func (e *dirEnv) open() {
	e.t.Helper()
	e.b = mustOpen(e.t, e.cfg)
}

// faults makes one directory fsync in syncOneIn fail (EIO) and one file creation in
// createOneIn (ENOSPC), drawn from r, until the next crash.
func (e *dirEnv) faults(r *rand.Rand, syncOneIn, createOneIn int) {
	e.fs.SetDirSyncFault(func(string) error {
		if r.IntN(syncOneIn) == 0 {
			return syscall.EIO
		}
		return nil
	})
	e.fs.SetCreateFault(func(string) error {
		if r.IntN(createOneIn) == 0 {
			return syscall.ENOSPC
		}
		return nil
	})
}

func (e *dirEnv) crash(r *rand.Rand) {
	e.t.Helper()
	e.fs.SetDirSyncFault(nil)
	e.fs.SetCreateFault(nil)
	if r != nil {
		e.fs.CrashTear(r)
	} else {
		e.fs.Crash()
	}
	e.b.Close()
	e.open()
}

func (e *dirEnv) topics() []string {
	md, err := e.b.Metadata(bg, &brokerop.MetadataReq{})
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, ti := range md.Topics {
		names = append(names, ti.Name)
	}
	slices.Sort(names)
	return names
}

func (e *dirEnv) produce(topic, value string) (int64, int16) {
	e.t.Helper()
	resp, err := e.b.Produce(bg, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
		{Topic: topic, Records: makeBatch(false, vals(1, value)...)}}})
	if err != nil {
		return -1, -1
	}
	return resp.Partitions[0].BaseOffset, resp.Partitions[0].ErrorCode
}

func (e *dirEnv) values(topic string) []string {
	e.t.Helper()
	var out []string
	for from := int64(0); ; {
		resp, err := e.b.Fetch(bg, &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{
			{Topic: topic, Offset: from, MaxBytes: 1 << 20}}})
		if err != nil {
			e.t.Fatal(err)
		}
		p := resp.Partitions[0]
		if p.ErrorCode != 0 || len(p.Records) == 0 {
			return out
		}
		o, v := decodeBatches(e.t, p.Records)
		out = append(out, v...)
		from = o[len(o)-1] + 1
	}
}

// A DeleteTopics whose registry rename happened but whose directory fsync failed leaves the
// deletion on disk (the kernel writes the rename back later) while the broker kept the topic.
// The broker must stop instead: a produce acknowledged afterwards would be purged with the
// topic at the next start.
func TestRegistryUnknownOutcomeStopsBroker(t *testing.T) {
	e := newDirEnv(t)
	if r := e.create("a"); r != 0 {
		t.Fatalf("create: %d", r)
	}
	if _, code := e.produce("a", "before"); code != 0 {
		t.Fatalf("produce: %d", code)
	}
	e.fs.SetDirSyncFault(func(dir string) error {
		if dir == "/data" {
			return syscall.EIO
		}
		return nil
	})
	resp, err := e.b.DeleteTopics(bg, &brokerop.DeleteTopicsReq{Topics: []string{"a"}})
	if err == nil && resp.Topics[0].ErrorCode == 0 {
		t.Fatal("delete with a failed directory fsync succeeded")
	}
	e.fs.SetDirSyncFault(nil)
	_, code := e.produce("a", "after")
	acked := code == 0
	cr, err := e.b.CreateTopics(bg, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "b", NumPartitions: 1, ReplicationFactor: 1}}})
	adminOK := err == nil && cr.Topics[0].ErrorCode == 0
	// The page cache writes the rename back; then power is lost.
	if err := e.fs.SyncDir("/data"); err != nil {
		t.Fatal(err)
	}
	e.crash(nil)
	got := e.values("a")
	if acked && !slices.Contains(got, "after") {
		t.Fatalf("a produce acknowledged after the failed registry write was lost (topics now %v, a = %v)", e.topics(), got)
	}
	if adminOK {
		t.Fatalf("an admin op succeeded after a registry write of unknown outcome")
	}
	if !strings.Contains(cr.Topics[0].ErrorMessage, "restart") {
		t.Fatalf("admin error does not say what to do: %q", cr.Topics[0].ErrorMessage)
	}
}

func (e *dirEnv) create(name string) int16 {
	resp, err := e.b.CreateTopics(bg, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{
		{Name: name, NumPartitions: 1, ReplicationFactor: 1}}})
	if err != nil {
		return -1
	}
	return resp.Topics[0].ErrorCode
}

// FileRegistry on its own: a failed directory fsync after the rename makes every later Store
// fail, even once the disk is healthy again; a failure before the rename does not.
func TestFileRegistryStickyAfterUnknownOutcome(t *testing.T) {
	fs := waltest.NewDirFaultFS()
	fs.MkdirAll("/r", 0o755)
	reg := &FileRegistry{FS: fs, Path: "/r/topics.registry"}
	st := &RegistryState{ClusterID: "c"}
	fs.SetCreateFault(func(string) error { return syscall.ENOSPC })
	if err := reg.Store(st); err == nil {
		t.Fatal("store with ENOSPC on create succeeded")
	}
	fs.SetCreateFault(nil)
	if err := reg.Store(st); err != nil {
		t.Fatalf("store after a clean failure: %v", err)
	}
	fs.SetDirSyncFault(func(string) error { return syscall.EIO })
	if err := reg.Store(st); err == nil {
		t.Fatal("store with a failed directory fsync succeeded")
	}
	fs.SetDirSyncFault(nil)
	err := reg.Store(st)
	if err == nil || !strings.Contains(err.Error(), "restart") {
		t.Fatalf("store after an unknown outcome: %v, want a sticky error saying to restart", err)
	}
}

// Crash cycles of admin ops and produces on the directory-fault filesystem, with random
// directory-fsync failures and ENOSPC on create. After every crash the topics are the
// acknowledged ones (plus or minus the one op whose outcome was unknown) and every
// acknowledged record of a surviving topic is there.
// DURABILITY_CHAOS_SEEDS=n runs it (and the other crash-cycle tests here) with n seeds
// (default 16, a few milliseconds each).
func TestRegistryCrashCyclesDirFaults(t *testing.T) {
	brokertest.ChaosSeeds(t, 16, registryCrashCycles)
}

func registryCrashCycles(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(11, seed))
	e := newDirEnv(t)
	acked := map[string][]string{} // topic → acknowledged values
	var unsure string              // the topic of the op whose outcome is unknown, if any
	failures := 0
	for cycle := range 12 {
		// Check the state against what was acknowledged.
		have := e.topics()
		for name, vals := range acked {
			if !slices.Contains(have, name) {
				if name == unsure {
					delete(acked, name)
					continue
				}
				t.Fatalf("cycle %d: acknowledged topic %s lost (have %v)", cycle, name, have)
			}
			if got := e.values(name); !isSubsequence(vals, got) {
				t.Fatalf("cycle %d: topic %s holds %v, acknowledged %v", cycle, name, got, vals)
			}
		}
		for _, name := range have {
			if _, ok := acked[name]; !ok {
				if name != unsure {
					t.Fatalf("cycle %d: topic %s exists but was never acknowledged (unsure %q)", cycle, name, unsure)
				}
				acked[name] = nil
			}
		}
		unsure = ""
		e.faults(r, 6, 30)
	ops:
		for i := range 20 {
			names := make([]string, 0, len(acked))
			for n := range acked {
				names = append(names, n)
			}
			slices.Sort(names)
			switch {
			case len(names) == 0 || r.IntN(4) == 0:
				name := fmt.Sprintf("t%d-%d", cycle, i)
				code := e.create(name)
				if code != 0 {
					unsure = name
					failures++
					break ops
				}
				acked[name] = nil
			case r.IntN(5) == 0:
				name := names[r.IntN(len(names))]
				resp, err := e.b.DeleteTopics(bg, &brokerop.DeleteTopicsReq{Topics: []string{name}})
				if err != nil || resp.Topics[0].ErrorCode != 0 {
					unsure = name
					failures++
					break ops
				}
				delete(acked, name)
			default:
				name := names[r.IntN(len(names))]
				v := fmt.Sprintf("v%d-%d", cycle, i)
				if _, code := e.produce(name, v); code == 0 {
					acked[name] = append(acked[name], v)
				}
			}
		}
		e.crash(r)
	}
	if seed == 0 && failures == 0 {
		t.Fatal("no admin op failed: the faults were not exercised")
	}
}

// isSubsequence reports whether want appears in got in order (unacknowledged records may
// survive a crash too).
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// Producer ids across crash cycles on the directory-fault filesystem, with random
// directory-fsync failures and ENOSPC on create: no id is ever handed out twice. (A failed
// write of the counter file hands out nothing from the new block, and every later write
// carries an end at least as high, so retrying after an unknown outcome is safe.)
func TestProducerIDsCrashCyclesDirFaults(t *testing.T) {
	brokertest.ChaosSeeds(t, 16, func(t *testing.T, seed uint64) {
		r := rand.New(rand.NewPCG(13, seed))
		e := newDirEnv(t)
		seen := map[int64]bool{}
		failures := 0
		for cycle := range 12 {
			e.faults(r, 3, 10)
			for range 1 + r.IntN(2500) {
				resp, err := e.b.InitProducerID(bg, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
				if err != nil {
					t.Fatal(err)
				}
				if resp.ErrorCode != 0 {
					failures++
					continue
				}
				if seen[resp.ProducerID] {
					t.Fatalf("cycle %d: producer id %d handed out twice", cycle, resp.ProducerID)
				}
				seen[resp.ProducerID] = true
			}
			e.crash(r)
		}
		if seed == 0 && failures == 0 {
			t.Fatal("no allocation failed: the faults were not exercised")
		}
	})
}

// recordingHandler keeps every log record's level and message.
type recordingHandler struct {
	mu   sync.Mutex
	recs []string
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Level.String()+" "+r.Message)
	h.mu.Unlock()
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// Once stopped, the broker says so: one error log, Err, and answers that name the cause.
func TestRegistryStopIsLoud(t *testing.T) {
	e := newDirEnv(t)
	logs := &recordingHandler{}
	e.b.Close()
	e.cfg.Logger = slog.New(logs)
	var onStop []error // OnStop runs on the failing op's goroutine (this one)
	e.cfg.OnStop = func(err error) { onStop = append(onStop, err) }
	e.open()
	if r := e.create("a"); r != 0 {
		t.Fatalf("create: %d", r)
	}
	if err := e.b.Err(); err != nil || len(onStop) != 0 {
		t.Fatalf("Err before any failure: %v (OnStop calls %v)", err, onStop)
	}
	e.fs.SetDirSyncFault(func(string) error { return syscall.EIO })
	if r := e.create("b"); r == 0 {
		t.Fatal("create with a failed directory fsync succeeded")
	}
	e.fs.SetDirSyncFault(nil)
	if err := e.b.Err(); !errors.Is(err, ErrRegistryFailed) {
		t.Fatalf("Err = %v, want ErrRegistryFailed", err)
	}
	if r := e.create("c"); r == 0 {
		t.Fatal("create after the stop succeeded")
	}
	if len(onStop) != 1 || !errors.Is(onStop[0], ErrRegistryFailed) {
		t.Fatalf("OnStop calls = %v, want one with ErrRegistryFailed", onStop)
	}
	resp, err := e.b.Produce(bg, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
		{Topic: "a", Records: makeBatch(false, vals(1, "x")...)}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := resp.Partitions[0]; p.ErrorCode != kerr.KafkaStorageError.Code || !strings.Contains(p.ErrorMessage, "restart") {
		t.Fatalf("produce after stop: code %d %q", p.ErrorCode, p.ErrorMessage)
	}
	ac, err := e.b.AlterConfigs(bg, &brokerop.AlterConfigsReq{Resources: []brokerop.AlterConfigsResource{
		{Type: brokerop.ResourceTopic, Name: "a", Configs: []brokerop.AlterConfig{{Name: "retention.ms", Value: sp("5")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := ac.Resources[0]; r.ErrorCode != kerr.UnknownServerError.Code || !strings.Contains(r.ErrorMessage, "restart") {
		t.Fatalf("alter configs after stop: code %d %q", r.ErrorCode, r.ErrorMessage)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	stops := 0
	for _, r := range logs.recs {
		if strings.HasPrefix(r, "ERROR") && strings.Contains(r, "STOPPED") {
			stops++
		}
	}
	if stops != 1 {
		t.Fatalf("%d STOPPED error logs, want 1: %v", stops, logs.recs)
	}
}
