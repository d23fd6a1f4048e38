package txn

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/wal/waltest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sample(id string, st State) *Txn {
	return &Txn{ID: id, ProducerID: 3, Epoch: 2, TimeoutMs: 1000, State: st, StartMs: 5, UpdateMs: 6,
		Partitions: []TP{{"a", 0}, {"a", 1}, {"b", 0}}, Groups: []string{"g"},
		Offsets: []Offset{{Group: "g", Topic: "in", Partition: 0, Offset: 9, LeaderEpoch: -1, Metadata: "m"}}}
}

func TestRecordRoundTrip(t *testing.T) {
	in := sample("x", PrepareCommit)
	out, err := DecodeRecord(AppendRecord(nil, in))
	if err != nil || !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, in, out)
	}
	bad := *in
	bad.Partitions = []TP{{"b", 0}, {"a", 0}}
	if _, err := DecodeRecord(AppendRecord(nil, &bad)); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("unsorted partitions decoded: %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, sample("x", Ongoing)))
	f.Add(AppendRecord(nil, &Txn{ID: "y", ProducerID: 1, TimeoutMs: 1}))
	f.Add(AppendRecord(nil, &Txn{ID: "z", ProducerID: 1, Epoch: 3, TimeoutMs: 1, State: PrepareCommit, V2: true, NextProducerID: 1, NextEpoch: 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeRecord(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same bytes.
		if again := AppendRecord(nil, tx); string(again) != string(b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeLog(f *testing.F) {
	f.Add(appendFrame(appendFrame(nil, sample("x", Ongoing)), sample("y", Empty)))
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, good, err := DecodeLog(b)
		if err != nil {
			return
		}
		if good > int64(len(b)) {
			t.Fatalf("good prefix %d beyond %d bytes", good, len(b))
		}
		var again []byte
		for _, r := range recs {
			again = appendFrame(again, r)
		}
		if string(again) != string(b[:good]) {
			t.Fatalf("the good prefix does not re-encode to itself")
		}
	})
}

func TestStoreTornTailAndDamage(t *testing.T) {
	fs := waltest.NewCrashFS()
	st, recs, err := OpenStore(fs, "/txn", nil)
	if err != nil || len(recs) != 0 {
		t.Fatal(err, recs)
	}
	if err := st.Append(sample("a", Ongoing), sample("b", Empty)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	fs.Crash() // appended records were fsynced
	path := filepath.Join("/txn", logName)
	f, _ := fs.OpenFile(path, os.O_RDWR, 0)
	size, _ := f.Size()
	// A torn tail: half a frame.
	half := appendFrame(nil, sample("c", Ongoing))
	f.WriteAt(half[:len(half)/2], size)
	f.Sync()
	f.Close()
	st, recs, err = OpenStore(fs, "/txn", nil)
	if err != nil || len(recs) != 2 || recs[1].ID != "b" {
		t.Fatalf("torn tail: %v, %d records", err, len(recs))
	}
	if err := st.Append(sample("c", Ongoing)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// A flipped bit in the first record with good ones after it is damage.
	f, _ = fs.OpenFile(path, os.O_RDWR, 0)
	one := []byte{0}
	f.ReadAt(one, 20)
	one[0] ^= 0x40
	f.WriteAt(one, 20)
	f.Sync()
	f.Close()
	if _, _, err := OpenStore(fs, "/txn", nil); !errors.Is(err, ErrDamaged) {
		t.Fatalf("damaged log opened: %v", err)
	}
}

func TestStoreCompaction(t *testing.T) {
	fs := waltest.NewCrashFS()
	st, _, err := OpenStore(fs, "/txn", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMachine(Config{})
	big := sample("x", Ongoing)
	big.Groups = []string{string(make([]byte, 64<<10))}
	for i := range 100 {
		big.UpdateMs = int64(i)
		if err := st.Append(big); err != nil {
			t.Fatal(err)
		}
		m.Apply(big)
		if err := st.MaybeCompact(m.All()); err != nil {
			t.Fatal(err)
		}
	}
	if st.Size() >= CompactBytes {
		t.Fatalf("log never compacted: %d bytes", st.Size())
	}
	st.Close()
	fs.Crash()
	_, recs, err := OpenStore(fs, "/txn", nil)
	if err != nil || len(recs) == 0 || recs[len(recs)-1].UpdateMs != 99 {
		t.Fatalf("after compaction and crash: %v %d records", err, len(recs))
	}
}

// markerRec records WriteTxnMarkers calls; fail makes them fail.
type markerRec struct {
	mu    sync.Mutex
	calls []Markers
	fail  bool
}

func (m *markerRec) WriteTxnMarkers(_ context.Context, pid int64, epoch int16, commit bool, parts []TP) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("partition unavailable")
	}
	m.calls = append(m.calls, Markers{ProducerID: pid, Epoch: epoch, Commit: commit, Partitions: parts})
	return nil
}

type offsetRec struct{ offs []Offset }

func (o *offsetRec) CommitTxnOffsets(_ context.Context, offs []Offset) error {
	o.offs = append(o.offs, offs...)
	return nil
}

// A transaction decided before a crash (PrepareCommit in the log) is completed after the
// restart: markers written, offsets committed, CompleteCommit logged. A failing marker write
// leaves it decided and retried.
func TestCoordinatorRecoversDecided(t *testing.T) {
	fs := waltest.NewCrashFS()
	st, _, err := OpenStore(fs, "/txn", nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Append(sample("x", PrepareCommit), sample("y", Ongoing))
	st.Close()
	fs.Crash()
	mk := &markerRec{fail: true}
	ids := &pids{next: 100}
	now := time.Unix(1000, 0)
	cfg := CoordinatorConfig{Dir: "/txn", FS: fs, Now: func() time.Time { return now }, NewPID: ids.alloc, Markers: mk, CheckInterval: -1}
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Check(ctx)
	if d, _ := c.Describe("x"); d.State != PrepareCommit {
		t.Fatalf("completed despite failing markers: %v", d.State)
	}
	if code := c.End(ctx, "x", 3, 2, true); code != ErrConcurrentTransactions {
		t.Fatalf("EndTxn while completing: %d", code)
	}
	mk.fail = false
	c.Check(ctx)
	if d, _ := c.Describe("x"); d.State != PrepareCommit {
		t.Fatalf("committed offsets without an offset sink: %v", d.State)
	}
	sink := &offsetRec{}
	c.SetOffsetSink(sink)
	c.Check(ctx)
	if d, _ := c.Describe("x"); d.State != CompleteCommit || len(sink.offs) != 1 || sink.offs[0].Offset != 9 {
		t.Fatalf("after recovery: %v, offsets %+v", d.State, sink.offs)
	}
	// "y" was Ongoing, long past its timeout (1 s after StartMs 5): aborted.
	if d, _ := c.Describe("y"); d.State != PrepareAbort && d.State != CompleteAbort {
		t.Fatalf("y past its timeout: %v", d.State)
	}
	c.Close()
	c.Close()
	c, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d, _ := c.Describe("x"); d.State != CompleteCommit {
		t.Fatalf("after reopen: %v", d.State)
	}
	if got := len(mk.calls); got != 3 { // x's commit (written twice: once before the sink was set) and y's abort
		t.Fatalf("marker writes: %d %+v", got, mk.calls)
	}
}
