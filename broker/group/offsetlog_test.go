package group

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

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

// A commit its writer has overtaken (a late copy: the same Writer, a lower Seq than the
// commit that wrote the partition's offset) is answered as committed and neither logged nor
// applied: checked against the applied offsets (Initial's stamps too: the quorum's), and
// within one batch by Apply. The same stamp again, another writer and unstamped commits
// apply in arrival order.
func TestSupersededCommits(t *testing.T) {
	m := NewMachine(MachineConfig{})
	now := time.Unix(100, 0)
	m.Apply([]Record{{Kind: KindCommit, Group: "g", Topic: "t", Offset: 479, Writer: 7, Seq: 2}})
	commit := func(off int64, writer, seq uint64) Output {
		t.Helper()
		outs := m.OffsetCommit(now, 1, &brokerop.OffsetCommitReq{Group: "g", Generation: -1, Writer: writer, Seq: seq,
			Topics: []brokerop.OffsetCommitTopic{{Topic: "t", Partitions: []brokerop.OffsetCommitPartition{{Offset: off, LeaderEpoch: -1}}}}})
		o := outs[len(outs)-1]
		if code := o.Resp.(*brokerop.OffsetCommitResp).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("commit %d: error %d", off, code)
		}
		m.Apply(o.Records)
		return o
	}
	offset := func() int64 {
		t.Helper()
		g := m.groups["g"]
		return g.offsets[tp{"t", 0}].offset
	}
	if o := commit(453, 7, 1); len(o.Records) != 0 || offset() != 479 {
		t.Fatalf("a late copy of seq 1 after seq 2: records %+v, offset %d; want none and 479", o.Records, offset())
	}
	for i, c := range []struct {
		writer, seq uint64
	}{{7, 2}, {8, 1}, {0, 0}} {
		off := int64(400 + i)
		if o := commit(off, c.writer, c.seq); len(o.Records) != 1 || offset() != off {
			t.Fatalf("commit %d stamped %d/%d: records %+v, offset %d", off, c.writer, c.seq, o.Records, offset())
		}
	}
	// One batch: seq 5 then a late seq 4 of the same writer; the late one is not applied.
	m.Apply([]Record{{Kind: KindCommit, Group: "g", Topic: "t", Offset: 500, Writer: 7, Seq: 5},
		{Kind: KindCommit, Group: "g", Topic: "t", Offset: 490, Writer: 7, Seq: 4}})
	if got := offset(); got != 500 {
		t.Fatalf("offset %d after a batch of seq 5 and a late seq 4, want 500", got)
	}
	if s := m.Snapshot(); len(s) != 1 || s[0].Writer != 7 || s[0].Seq != 5 {
		t.Fatalf("snapshot %+v: want the stamp 7/5 kept", s)
	}
}

// A rebalance's new generation is made durable before any member learns it: every join
// answer carries the generation record. A machine started from a recorded generation (a new
// coordinator) numbers the group's generations above it.
func TestGenerationRecorded(t *testing.T) {
	now := time.Unix(100, 0)
	m := NewMachine(MachineConfig{InitialRebalanceDelay: -1})
	m.Apply([]Record{{Kind: KindGeneration, Group: "g", Generation: 41}, {Kind: KindGeneration, Group: "g", Generation: 7}})
	outs := m.JoinGroup(now, 1, &brokerop.JoinGroupReq{Group: "g", ClientID: "c", ProtocolType: "consumer",
		Protocols: []brokerop.GroupProtocol{{Name: "range"}}, SessionTimeoutMs: 30000, RebalanceTimeoutMs: 30000})
	var join *Output
	for i := range outs {
		if r, ok := outs[i].Resp.(*brokerop.JoinGroupResp); ok && r.ErrorCode == 0 {
			join = &outs[i]
		}
	}
	if join == nil {
		t.Fatalf("no join answer in %+v", outs)
	}
	if gen := join.Resp.(*brokerop.JoinGroupResp).Generation; gen != 42 {
		t.Fatalf("generation %d after a recorded 41, want 42", gen)
	}
	if len(join.Records) != 1 || join.Records[0].Kind != KindMembers || join.Records[0].Generation != 42 ||
		join.Records[0].Members.State != CompletingRebalance || len(join.Records[0].Members.Members) != 1 {
		t.Fatalf("the join answer persists %+v, want the group's membership at generation 42", join.Records)
	}
	m.Apply(join.Records)
	if s := m.Snapshot(); len(s) != 1 || s[0].Generation != 42 {
		t.Fatalf("snapshot %+v: want the generation kept", s)
	}
}

// A join whose generation could not be recorded (the offset log failed) is answered
// COORDINATOR_NOT_AVAILABLE, and the member's next join (with the member id it was given)
// succeeds.
func TestJoinWhenTheGenerationIsNotRecorded(t *testing.T) {
	ctx := context.Background()
	l := &memLog{fail: 1}
	c := open(t, Config{OffsetLog: l, Machine: MachineConfig{InitialRebalanceDelay: -1}})
	defer c.Close()
	join := func(member string) *brokerop.JoinGroupResp {
		t.Helper()
		r, err := c.JoinGroup(ctx, &brokerop.JoinGroupReq{Group: "g", MemberID: member, ClientID: "c", ProtocolType: "consumer",
			Protocols: []brokerop.GroupProtocol{{Name: "range"}}, SessionTimeoutMs: 30000, RebalanceTimeoutMs: 30000})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := join("")
	if first.ErrorCode != errCoordinatorNotAvailable {
		t.Fatalf("join on a failing log: %+v, want COORDINATOR_NOT_AVAILABLE", first)
	}
	r := join(first.MemberID)
	if r.ErrorCode != 0 || r.Generation < 1 {
		t.Fatalf("join after the failure: %+v", r)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.recs); n == 0 || l.recs[n-1].Kind != KindMembers || l.recs[n-1].Generation != r.Generation {
		t.Fatalf("log holds %+v, want the membership at generation %d last", l.recs, r.Generation)
	}
}
