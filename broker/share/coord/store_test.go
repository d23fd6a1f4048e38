package coord

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

func recs() []*share.Record {
	return []*share.Record{
		{Kind: share.KindGroup, Group: "g"},
		{Kind: share.KindPartition, Group: "g", Topic: "t", Start: 5, Runs: []share.Run{{First: 5, Last: 6, State: share.Acknowledged, Count: 1}}},
		{Kind: share.KindConfig, Group: "g", Configs: [][2]string{{"a", "b"}}},
	}
}

func open(t *testing.T, dir string) (*Store, []*share.Record) {
	t.Helper()
	s, got, err := OpenStore(wal.OSFS(), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s, got
}

// mustDo runs fn on c's Machine (Coordinator.Do), failing the test on an error.
func mustDo(t *testing.T, c *Coordinator, fn func(m *share.Machine, now time.Time)) {
	t.Helper()
	if err := c.Do(fn); err != nil {
		t.Fatal(err)
	}
}

func TestStoreReopenTornTailAndDamage(t *testing.T) {
	dir := t.TempDir()
	s, got := open(t, dir)
	if len(got) != 0 {
		t.Fatalf("new log has %d records", len(got))
	}
	if err := s.Append(recs()...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, got = open(t, dir)
	if !reflect.DeepEqual(got, recs()) {
		t.Fatalf("reopened: %+v", got)
	}
	s.Close()
	path := filepath.Join(dir, logName)
	b, _ := os.ReadFile(path)
	// A torn last frame (a crash mid-append, never acknowledged) is cut.
	if err := os.WriteFile(path, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	s, got = open(t, dir)
	if !reflect.DeepEqual(got, recs()[:2]) {
		t.Fatalf("after torn tail: %+v", got)
	}
	if err := s.Append(recs()[2:]...); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A flipped bit in the first frame with good frames after it is damage: refused.
	b, _ = os.ReadFile(path)
	b[frameHead+2] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenStore(wal.OSFS(), dir, slog.New(slog.DiscardHandler)); !errors.Is(err, ErrDamaged) {
		t.Fatalf("damaged log opened: %v", err)
	}
}

func TestCoordinatorDurableAndCompacts(t *testing.T) {
	old := CompactBytes
	CompactBytes = 512
	t.Cleanup(func() { CompactBytes = old })
	dir := t.TempDir()
	now := time.Unix(1000, 0)
	cfg := Config{Dir: dir, Now: func() time.Time { return now }, Machine: share.Config{AutoOffsetReset: "earliest"}}
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := share.TP{Topic: "q", Partition: 0}
	topics := func(string) (int32, bool) { return 1, true }
	mustDo(t, c, func(m *share.Machine, now time.Time) {
		m.Heartbeat(now, share.HeartbeatReq{Group: "g", MemberID: "a", Topics: []string{"q"}}, topics)
		m.Session(now, "g", "a", 0, []share.TP{tp}, nil, false)
	})
	// Many acknowledgements: the log passes CompactBytes and is rewritten.
	for i := range 100 {
		mustDo(t, c, func(m *share.Machine, now time.Time) {
			off, _ := m.FetchOffset("g", tp, share.Bounds{HighWatermark: 1000})
			m.Acquire(now, "g", "a", tp, []share.Span{{First: off, Last: off}}, 1)
			if code := m.Acknowledge(now, "g", "a", share.PartAcks{TP: tp, Batches: []share.AckBatch{{First: off, Last: off, Types: []int8{share.AckAccept}}}}, false); code != 0 {
				t.Fatalf("ack %d: %d", i, code)
			}
		})
	}
	if fi, err := os.Stat(filepath.Join(dir, logName)); err != nil || fi.Size() > 4*CompactBytes {
		t.Fatalf("log not compacted: %v %v", fi.Size(), err)
	}
	c.Close()
	c.Close() // idempotent
	if err := c.Do(func(*share.Machine, time.Time) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	c, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mustDo(t, c, func(m *share.Machine, _ time.Time) {
		if s, ok := m.StartOffset("g", tp); !ok || s != 100 {
			t.Fatalf("start after reopen: %d %v", s, ok)
		}
	})
}

// A failed fsync answers an error and loses nothing: the changes are written before the next
// call's, and a crash after that keeps them; a crash before it drops them (they were never
// acknowledged).
func TestCoordinatorFailedSyncRetried(t *testing.T) {
	crash := waltest.NewCrashFS()
	fsys := waltest.NewHookFS(crash, nil)
	cfg := Config{Dir: "/share", FS: fsys, Now: func() time.Time { return time.Unix(1000, 0) }}
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := share.TP{Topic: "q", Partition: 0}
	fail := errors.New("injected fsync failure")
	fsys.SetBefore(func(op, _ string) error {
		if op == "sync" {
			return fail
		}
		return nil
	})
	if err := c.Do(func(m *share.Machine, _ time.Time) { m.AlterOffset("g", tp, 42) }); !errors.Is(err, fail) {
		t.Fatalf("Do with a failing fsync: %v", err)
	}
	fsys.SetBefore(nil)
	if err := c.Do(func(*share.Machine, time.Time) {}); err != nil {
		t.Fatalf("Do after the disk recovered: %v", err)
	}
	crash.Crash()
	c.Close()
	c, err = Open(Config{Dir: "/share", FS: crash})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Do(func(m *share.Machine, _ time.Time) {
		if s, ok := m.StartOffset("g", tp); !ok || s != 42 {
			t.Fatalf("after crash: %d %v", s, ok)
		}
	})
}

// Freed's channel is closed by the call that frees records of its group (here: the Tick of
// a call after an acquisition lock expired), not by other calls nor for other groups.
func TestCoordinatorFreed(t *testing.T) {
	now := time.Unix(1000, 0)
	c, err := Open(Config{Dir: t.TempDir(), Now: func() time.Time { return now }, Machine: share.Config{AutoOffsetReset: "earliest", LockDuration: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tp := share.TP{Topic: "q", Partition: 0}
	topics := func(string) (int32, bool) { return 1, true }
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	mustDo(t, c, func(m *share.Machine, now time.Time) {
		m.Heartbeat(now, share.HeartbeatReq{Group: "g", MemberID: "a", Topics: []string{"q"}}, topics)
		m.Session(now, "g", "a", 0, []share.TP{tp}, nil, false)
		m.FetchOffset("g", tp, share.Bounds{HighWatermark: 3})
		m.Acquire(now, "g", "a", tp, []share.Span{{First: 0, Last: 2}}, 0)
	})
	ch, other := c.Freed("g"), c.Freed("h")
	mustDo(t, c, func(*share.Machine, time.Time) {})
	if closed(ch) {
		t.Fatal("closed before anything was freed")
	}
	now = now.Add(time.Second) // the lock expires; the next call's Tick frees the records
	mustDo(t, c, func(*share.Machine, time.Time) {})
	if !closed(ch) || closed(other) {
		t.Fatalf("after the expiry: g closed %v, h closed %v", closed(ch), closed(other))
	}
	if closed(c.Freed("g")) {
		t.Fatal("a new waiter's channel is closed already")
	}
}
