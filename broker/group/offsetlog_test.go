package group

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// memLog is an OffsetLog in memory whose next appends can be made to fail.
type memLog struct {
	mu       sync.Mutex
	recs     []Record
	fail     int // appends left to fail
	compacts int
	closed   bool
}

func (l *memLog) Append(recs []Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail > 0 {
		l.fail--
		return errors.New("quorum lost")
	}
	l.recs = append(l.recs, recs...)
	return nil
}
func (l *memLog) NeedsCompaction() bool { return false }
func (l *memLog) Compact(s []Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.compacts++
	l.recs = slices.Clone(s)
	return nil
}
func (l *memLog) Close() error { l.mu.Lock(); l.closed = true; l.mu.Unlock(); return nil }

// A Coordinator on an injected OffsetLog starts from Initial, makes commits durable through
// the log before answering, and answers COORDINATOR_NOT_AVAILABLE when the log fails.
func TestCoordinatorOffsetLog(t *testing.T) {
	ctx := context.Background()
	l := &memLog{}
	c := open(t, Config{OffsetLog: l, Initial: []Record{{Kind: KindCommit, Group: "g", Topic: "t", Partition: 0, Offset: 7, LeaderEpoch: -1}}})
	fetch := func(p int32) int64 {
		t.Helper()
		r, err := c.OffsetFetch(ctx, &brokerop.OffsetFetchReq{Group: "g", Topics: []brokerop.OffsetFetchTopic{{Topic: "t", Partitions: []int32{p}}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Topics[0].Partitions[0].Offset
	}
	if got := fetch(0); got != 7 {
		t.Fatalf("initial offset %d, want 7", got)
	}
	commit := func(p int32, off int64) int16 {
		t.Helper()
		r, err := c.OffsetCommit(ctx, &brokerop.OffsetCommitReq{Group: "g", Generation: -1, Topics: []brokerop.OffsetCommitTopic{
			{Topic: "t", Partitions: []brokerop.OffsetCommitPartition{{Partition: p, Offset: off, LeaderEpoch: -1}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Topics[0].Partitions[0].ErrorCode
	}
	if code := commit(1, 11); code != 0 {
		t.Fatalf("commit: code %d", code)
	}
	l.mu.Lock()
	if len(l.recs) != 1 || l.recs[0].Offset != 11 || l.recs[0].Partition != 1 {
		t.Fatalf("log holds %+v", l.recs)
	}
	l.fail = 1
	l.mu.Unlock()
	if code := commit(1, 12); code != errCoordinatorNotAvailable {
		t.Fatalf("commit on a failing log: code %d", code)
	}
	if got := fetch(1); got != 11 {
		t.Fatalf("failed commit visible: offset %d", got)
	}
	if code := commit(1, 13); code != 0 {
		t.Fatalf("commit after failure: code %d", code)
	}
	c.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.compacts != 1 || !l.closed {
		t.Fatalf("compacts %d closed %v", l.compacts, l.closed)
	}
	last := l.recs[len(l.recs)-1]
	if last.Offset != 13 {
		t.Fatalf("last record %+v", last)
	}
}
