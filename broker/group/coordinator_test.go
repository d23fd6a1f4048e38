package group

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	var mu sync.Mutex
	var journals []*wal.Store
	journalOpened = func(s *wal.Store) {
		mu.Lock()
		journals = append(journals, s)
		mu.Unlock()
	}
	code := m.Run()
	for _, s := range journals { // those of stores a crash test abandoned (Close is idempotent)
		_ = s.Close()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// open opens a coordinator with cfg, failing the test if it cannot.
func open(t *testing.T, cfg Config) *Coordinator {
	t.Helper()
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// crashAndReopen cuts the power under c (only what was fsynced survives), closes it, and opens
// the coordinator again from fs at dir; the new one is closed when the test ends.
func crashAndReopen(t *testing.T, c *Coordinator, fs *waltest.CrashFS, dir string) *Coordinator {
	t.Helper()
	fs.Crash()
	c.Close()
	c2 := open(t, Config{Dir: dir, FS: fs})
	t.Cleanup(func() { c2.Close() })
	return c2
}

func joinReq(client, member string) *brokerop.JoinGroupReq {
	return &brokerop.JoinGroupReq{
		Group: "g", MemberID: member, ClientID: client, ProtocolType: "consumer",
		Protocols:        []brokerop.GroupProtocol{{Name: "range", Metadata: []byte(client)}},
		SessionTimeoutMs: 6000, RebalanceTimeoutMs: 10000, RequireKnownMemberID: true,
	}
}

// join runs the JoinGroup v4 dance (MEMBER_ID_REQUIRED, then join with the id).
func join(t *testing.T, c *Coordinator, client string) *brokerop.JoinGroupResp {
	t.Helper()
	ctx := context.Background()
	r, err := c.JoinGroup(ctx, joinReq(client, ""))
	if err != nil || r.ErrorCode != errMemberIDRequired {
		t.Errorf("first join: %+v %v", r, err)
		return nil
	}
	r, err = c.JoinGroup(ctx, joinReq(client, r.MemberID))
	if err != nil || r.ErrorCode != 0 {
		t.Errorf("second join: %+v %v", r, err)
		return nil
	}
	return r
}

func commit(c *Coordinator, member string, gen int32, off int64) (*brokerop.OffsetCommitResp, error) {
	return c.OffsetCommit(context.Background(), &brokerop.OffsetCommitReq{
		Group: "g", MemberID: member, Generation: gen,
		Topics: []brokerop.OffsetCommitTopic{{Topic: "t", Partitions: []brokerop.OffsetCommitPartition{{Partition: 0, Offset: off, LeaderEpoch: -1}}}},
	})
}

func fetchOffset(t *testing.T, c *Coordinator) int64 {
	t.Helper()
	r, err := c.OffsetFetch(context.Background(), &brokerop.OffsetFetchReq{Group: "g", Topics: []brokerop.OffsetFetchTopic{{Topic: "t", Partitions: []int32{0}}}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Topics[0].Partitions[0].Offset
}

// Two members join concurrently through the owner goroutine (their JoinGroups block until the
// rebalance completes, the follower's SyncGroup until the leader syncs), a commit is durable
// across a crash of the filesystem, and the restarted coordinator serves it.
func TestCoordinatorRebalanceAndDurableCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := waltest.NewCrashFS()
		c := open(t, Config{Dir: "/data/groups", FS: fs, Machine: MachineConfig{InitialRebalanceDelay: time.Second}})
		var wg sync.WaitGroup
		resps := make([]*brokerop.JoinGroupResp, 2)
		for i, client := range []string{"a", "b"} {
			wg.Go(func() { resps[i] = join(t, c, client) })
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if resps[0].Generation != 1 || resps[0].Generation != resps[1].Generation || resps[0].LeaderID != resps[1].LeaderID {
			t.Fatalf("join results differ: %+v %+v", resps[0], resps[1])
		}
		leader, follower := resps[0], resps[1]
		if follower.MemberID == follower.LeaderID {
			leader, follower = follower, leader
		}
		if len(leader.Members) != 2 || len(follower.Members) != 0 {
			t.Fatalf("member lists: leader %d, follower %d", len(leader.Members), len(follower.Members))
		}
		var fsync *brokerop.SyncGroupResp
		var ferr error
		wg.Go(func() {
			fsync, ferr = c.SyncGroup(context.Background(), &brokerop.SyncGroupReq{Group: "g", MemberID: follower.MemberID, Generation: 1})
		})
		synctest.Wait() // the follower is parked
		if fsync != nil {
			t.Fatal("follower's SyncGroup returned before the leader synced")
		}
		lsync, err := c.SyncGroup(context.Background(), &brokerop.SyncGroupReq{
			Group: "g", MemberID: leader.MemberID, Generation: 1,
			Assignments: []brokerop.SyncGroupAssignment{{MemberID: leader.MemberID, Assignment: []byte("L")}, {MemberID: follower.MemberID, Assignment: []byte("F")}},
		})
		wg.Wait()
		if err != nil || ferr != nil || string(lsync.Assignment) != "L" || fsync == nil || string(fsync.Assignment) != "F" {
			t.Fatalf("sync: leader %+v follower %+v err %v", lsync, fsync, err)
		}
		r, err := commit(c, follower.MemberID, 1, 77)
		if err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit: %+v %v", r, err)
		}
		// a stale generation is fenced and not stored
		if r, _ := commit(c, follower.MemberID, 0, 99); r.Topics[0].Partitions[0].ErrorCode != errIllegalGeneration {
			t.Fatalf("stale commit: %+v", r)
		}
		c2 := crashAndReopen(t, c, fs, "/data/groups") // power cut: only fsynced data survives
		if got := fetchOffset(t, c2); got != 77 {
			t.Fatalf("offset after crash = %d, want 77", got)
		}
		// membership is durable: the members go on in their generation, and a late
		// SyncGroup gets the recorded assignment
		if hb, _ := c2.Heartbeat(context.Background(), &brokerop.HeartbeatReq{Group: "g", MemberID: follower.MemberID, Generation: 1}); hb.ErrorCode != 0 {
			t.Fatalf("heartbeat after restart: %+v", hb)
		}
		if s, _ := c2.SyncGroup(context.Background(), &brokerop.SyncGroupReq{Group: "g", MemberID: follower.MemberID, Generation: 1}); s.ErrorCode != 0 || string(s.Assignment) != "F" {
			t.Fatalf("sync after restart: %+v", s)
		}
		if r, _ := commit(c2, leader.MemberID, 1, 78); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("the leader's commit after restart: %+v", r)
		}
	})
}

// A member that stops heartbeating is removed after its session timeout, when the injected
// clock passes it: the owner goroutine's timer comes from Config.Clock (synctest only tells
// when the owner has handled each step).
func TestCoordinatorSessionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(1_700_000_000, 0))
		c := open(t, Config{Dir: "/g", FS: waltest.NewCrashFS(), Clock: clk, Machine: MachineConfig{InitialRebalanceDelay: -1}})
		defer c.Close()
		a := join(t, c, "a")
		var b *brokerop.JoinGroupResp
		var wg sync.WaitGroup
		wg.Go(func() { b = join(t, c, "b") })
		synctest.Wait()
		// a learns of the rebalance by heartbeat and rejoins
		hb, _ := c.Heartbeat(context.Background(), &brokerop.HeartbeatReq{Group: "g", MemberID: a.MemberID, Generation: 1})
		if hb.ErrorCode != errRebalanceInProgress {
			t.Fatalf("heartbeat: %+v", hb)
		}
		a2, err := c.JoinGroup(context.Background(), joinReq("a", a.MemberID))
		wg.Wait()
		if err != nil || a2.Generation != 2 || b.Generation != 2 {
			t.Fatalf("rejoin: %+v %+v %v", a2, b, err)
		}
		if _, err := c.SyncGroup(context.Background(), &brokerop.SyncGroupReq{Group: "g", MemberID: a2.LeaderID, Generation: 2}); err != nil {
			t.Fatal(err)
		}
		// b goes silent; a keeps heartbeating every 2s
		start := clk.Now()
		for {
			clk.Advance(2 * time.Second)
			synctest.Wait() // the owner has handled a timer that came due
			hb, _ := c.Heartbeat(context.Background(), &brokerop.HeartbeatReq{Group: "g", MemberID: a.MemberID, Generation: 2})
			if hb.ErrorCode == errRebalanceInProgress {
				break
			}
			if hb.ErrorCode != 0 || clock.Since(clk, start) > time.Minute {
				t.Fatalf("heartbeat: %+v after %v", hb, clock.Since(clk, start))
			}
		}
		if d := clock.Since(clk, start); d < 6*time.Second || d > 10*time.Second {
			t.Fatalf("b removed after %v, want just after the 6s session timeout", d)
		}
		a3, err := c.JoinGroup(context.Background(), joinReq("a", a.MemberID))
		if err != nil || a3.Generation != 3 || len(a3.Members) != 1 {
			t.Fatalf("join after timeout: %+v %v", a3, err)
		}
	})
}

// When the offset log cannot be fsynced the commit is refused with a retriable error and is
// not visible.
func TestCoordinatorCommitFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := waltest.NewCrashFS()
		c := open(t, Config{Dir: "/g", FS: fs})
		if r, err := commit(c, "", -1, 5); err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("simple commit: %+v %v", r, err)
		}
		fs.SetSyncError(errors.New("disk on fire"))
		r, err := commit(c, "", -1, 6)
		if err != nil || r.Topics[0].Partitions[0].ErrorCode != errCoordinatorNotAvailable {
			t.Fatalf("commit with failing fsync: %+v %v", r, err)
		}
		if got := fetchOffset(t, c); got != 5 {
			t.Fatalf("offset = %d, want 5 (the failed commit must not be visible)", got)
		}
		// The disk recovers: the coordinator rewrites its log and commits are durable again.
		fs.SetSyncError(nil)
		if r, err := commit(c, "", -1, 7); err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit after recovery: %+v %v", r, err)
		}
		c2 := crashAndReopen(t, c, fs, "/g")
		if got := fetchOffset(t, c2); got != 7 {
			t.Fatalf("offset after recovery and crash = %d, want 7", got)
		}
	})
}

// Close answers a parked JoinGroup with ErrClosed, and a cancelled caller returns ctx.Err()
// without disturbing the coordinator.
func TestCoordinatorCloseAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := open(t, Config{Dir: "/g", FS: waltest.NewCrashFS()})
		ctx, cancel := context.WithCancel(context.Background())
		req := joinReq("a", "")
		req.RequireKnownMemberID = false
		var cerr error
		var wg sync.WaitGroup
		wg.Go(func() { _, cerr = c.JoinGroup(ctx, req) }) // parked in the initial delay
		synctest.Wait()
		cancel()
		wg.Wait()
		if !errors.Is(cerr, context.Canceled) {
			t.Fatalf("cancelled join: %v", cerr)
		}
		var jerr error
		wg.Go(func() { _, jerr = c.JoinGroup(context.Background(), joinReq("b", "x")) })
		wg.Go(func() {
			r := joinReq("c", "")
			r.RequireKnownMemberID = false
			_, jerr2 := c.JoinGroup(context.Background(), r)
			if !errors.Is(jerr2, ErrClosed) {
				t.Errorf("parked join after Close: %v", jerr2)
			}
		})
		synctest.Wait()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if jerr != nil {
			t.Fatalf("unknown member join: %v", jerr)
		}
		if _, err := c.Heartbeat(context.Background(), &brokerop.HeartbeatReq{Group: "g"}); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// Commits that arrive while an fsync is in progress share the next one (group commit), and
// every one of them is durable when answered.
func TestCoordinatorGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := waltest.NewCrashFS()
		c := open(t, Config{Dir: "/g", FS: fs})
		fs.SetSyncDelay(5 * time.Millisecond)
		fs.ResetStats()
		const n = 50
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r, err := c.OffsetCommit(context.Background(), &brokerop.OffsetCommitReq{
					Group: fmt.Sprintf("g%d", i), Generation: -1,
					Topics: []brokerop.OffsetCommitTopic{{Topic: "t", Partitions: []brokerop.OffsetCommitPartition{{Partition: 0, Offset: int64(i)}}}},
				})
				if err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
					t.Errorf("commit %d: %+v %v", i, r, err)
				}
			})
		}
		wg.Wait()
		if s := fs.Stats().Syncs; s >= n/2 {
			t.Errorf("%d commits took %d fsyncs; want them batched", n, s)
		} else {
			t.Logf("%d concurrent commits, %d fsyncs", n, s)
		}
		c2 := crashAndReopen(t, c, fs, "/g")
		for i := range n {
			r, _ := c2.OffsetFetch(context.Background(), &brokerop.OffsetFetchReq{Group: fmt.Sprintf("g%d", i), Topics: []brokerop.OffsetFetchTopic{{Topic: "t", Partitions: []int32{0}}}})
			if got := r.Topics[0].Partitions[0].Offset; got != int64(i) {
				t.Fatalf("group g%d: offset %d after crash, want %d", i, got, i)
			}
		}
	})
}

// The coordinator compacts its offset log as commits pile up, and what it restores after a
// crash is the latest state.
func TestCoordinatorCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := waltest.NewCrashFS()
		c := open(t, Config{Dir: "/g", FS: fs, CompactBytes: 8 << 10})
		for i := range 1000 {
			if r, err := commit(c, "", -1, int64(i)); err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("commit %d: %+v %v", i, r, err)
			}
		}
		names := genNames(fs, "/g")
		if len(names) != 1 || names[0] == "offsets-0000000000000001" {
			t.Fatalf("offset log directories after 1000 commits: %v (want one, compacted)", names)
		}
		c2 := crashAndReopen(t, c, fs, "/g")
		if got := fetchOffset(t, c2); got != 999 {
			t.Fatalf("offset after compaction and crash = %d, want 999", got)
		}
	})
}
