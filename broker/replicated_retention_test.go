package broker

// Retention, raft snapshots and DeleteRecords on replicated partitions, on the real engine and
// raftstore (three brokers on a replica.LocalNet, virtual time).

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/broker/replica/raftstore"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3/raftpb"
)

// gid is the raft group of partition p of the cluster's topic.
func (c *raftCluster) gid(p int32) replica.GroupID {
	return replica.GroupID{Topic: c.rec.ID, Partition: p}
}

// store is broker id's raft storage of partition p.
func (c *raftCluster) store(id uint64, p int32) *raftstore.Store {
	return c.nodes[id].e.b.lookup("r", p).group.Load().st.(*raftstore.Store)
}

// others returns the brokers other than id, ascending.
func (c *raftCluster) others(id uint64) []uint64 {
	var out []uint64
	for o := range c.nodes {
		if o != id {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// tail is broker id's log of p from offset from on (entries(id, p) without those below from).
func (c *raftCluster) tail(id uint64, p int32, from int64) []string {
	var out []string
	for _, e := range c.entries(id, p) {
		var off int64
		fmt.Sscanf(e, "%d:", &off)
		if off >= from {
			out = append(out, e)
		}
	}
	return out
}

// waitUntilInactive waits until leader l no longer counts follower f as recently active.
func (c *raftCluster) waitUntilInactive(l, f uint64) {
	c.t.Helper()
	waitFor(c.t, func() bool {
		st, ok := c.nodes[l].eng.Status(c.gid(0))
		return ok && st.Leader == l && !st.Progress[f].RecentActive
	})
}

// newCutOffCluster starts three replicas of one partition of topic "r" (configs) and cuts
// a follower f of leader l off (cutOff, whose index it returns).
func newCutOffCluster(t *testing.T, configs map[string]string) (c *raftCluster, l, f, last uint64) {
	t.Helper()
	c = newRaftCluster(t, 3, 1, configs)
	l = c.leader(0)
	f = c.others(l)[0]
	return c, l, f, c.cutOff(l, f)
}

// cutOff isolates follower f of leader l (partition 0) and waits until l sees it inactive;
// it returns f's last raft index before the cut.
func (c *raftCluster) cutOff(l, f uint64) uint64 {
	c.t.Helper()
	last, _ := c.store(f, 0).LastIndex()
	c.net.Isolate(f)
	c.waitUntilInactive(l, f)
	return last
}

// catchUpBySnapshot heals the network, waits until follower f's log of partition 0 ends
// where the leader's (lb) does and checks that f got there by installing a snapshot above
// its last index before the cut (cutOff's). It returns f's log.
func (c *raftCluster) catchUpBySnapshot(f uint64, lb *wal.Log, last uint64) *wal.Log {
	c.t.Helper()
	c.net.Heal()
	fl := c.nodes[f].e.b.lookup("r", 0).log
	waitFor(c.t, func() bool { return fl.NextOffset() == lb.NextOffset() })
	if snap, _ := c.store(f, 0).Snapshot(); snap.GetMetadata().GetIndex() <= last {
		c.t.Fatalf("follower installed no snapshot: %v", snap.GetMetadata())
	}
	return fl
}

// big is a record value of about 300 bytes.
func big(i int) string { return fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 300)) }

// Retention deletes old segments on every replica, only below what raft no longer needs: a
// live follower keeps getting entries, one that was cut off catches up by the leader's
// snapshot (its log then starts where the snapshot ends) and holds the same tail. A producer
// whose last batch that follower only knows from the snapshot is deduplicated there once it
// leads.
func TestReplicatedRetentionSnapshotCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, map[string]string{
			"segment.bytes": "1024", "retention.bytes": "2048", "retention.ms": "-1"})
		l := c.leader(0)
		f, o := c.others(l)[0], c.others(l)[1]
		b := c.nodes[l].e.b
		const pid = 5
		seq := int32(0)
		for i := range 5 {
			if r := produceTo(t, b, -1, 0, idemBatch(pid, 0, seq, big(i))); r.ErrorCode != 0 {
				t.Fatalf("produce %d: %+v", i, r)
			}
			seq++
		}
		c.net.Isolate(f)
		c.waitUntilInactive(l, f)
		var lastOff int64
		for i := 5; i < 30; i++ {
			r := produceTo(t, b, -1, 0, idemBatch(pid, 0, seq, big(i)))
			if r.ErrorCode != 0 {
				t.Fatalf("produce %d: %+v", i, r)
			}
			lastOff = r.BaseOffset
			seq++
		}
		fLast, _ := c.store(f, 0).LastIndex()
		for _, id := range []uint64{l, o} {
			n, err := c.nodes[id].e.b.EnforceRetention()
			if err != nil || n == 0 {
				t.Fatalf("broker %d: retention removed %d segments, err %v", id, n, err)
			}
			if c.nodes[id].e.b.lookup("r", 0).log.StartOffset() == 0 {
				t.Fatalf("broker %d: log start still 0", id)
			}
		}
		first, _ := c.store(l, 0).FirstIndex()
		if first <= fLast+1 {
			t.Fatalf("leader's raft log starts at %d: the cut-off follower (last %d) would not need a snapshot", first, fLast)
		}
		if r := listOffset(t, b, -2, -1); r.Offset != b.lookup("r", 0).log.StartOffset() {
			t.Fatalf("earliest offset %d, log start %d", r.Offset, b.lookup("r", 0).log.StartOffset())
		}
		c.net.Heal()
		lb := b.lookup("r", 0).log
		fl := c.nodes[f].e.b.lookup("r", 0).log
		waitFor(t, func() bool { return fl.NextOffset() == lb.NextOffset() })
		// The follower installed the leader's snapshot, made at the leader's retention point:
		// its log starts exactly where the leader's does, nothing it still retains skipped.
		if snap, err := c.store(f, 0).Snapshot(); err != nil || snap.GetMetadata().GetIndex() <= fLast {
			t.Fatalf("follower's snapshot %v (%v): none installed (its last index was %d)", snap.GetMetadata(), err, fLast)
		}
		if fl.StartOffset() != lb.StartOffset() {
			t.Fatalf("follower's log starts at %d, leader's at %d", fl.StartOffset(), lb.StartOffset())
		}
		if lt, ft := c.tail(l, 0, fl.StartOffset()), c.entries(f, 0); !slices.Equal(lt, ft) {
			t.Fatalf("leader's tail %q, follower's log %q", lt, ft)
		}
		// f leads: the retry of the producer's last batch (which f knows only from the
		// snapshot) is answered with its offset, not stored again.
		c.moveLeader(0, f)
		fb := c.nodes[f].e.b
		r := produceTo(t, fb, -1, 0, idemBatch(pid, 0, seq-1, big(29)))
		if r.ErrorCode != 0 || r.BaseOffset != lastOff {
			t.Fatalf("retry after snapshot install: %+v, want offset %d", r, lastOff)
		}
		if r := produceTo(t, fb, -1, 0, idemBatch(pid, 0, seq+1, "gap")); r.ErrorCode == 0 {
			t.Fatalf("sequence gap after snapshot install accepted: %+v", r)
		}
		if r := produceTo(t, fb, -1, 0, idemBatch(pid, 0, seq, "next")); r.ErrorCode != 0 {
			t.Fatalf("next sequence: %+v", r)
		}
		waitFor(t, func() bool {
			return slices.Equal(c.tail(l, 0, fl.StartOffset()), c.entries(f, 0)) &&
				slices.Equal(c.tail(o, 0, fl.StartOffset()), c.entries(f, 0))
		})
	})
}

// fetchAt fetches partition 0 of "r" from broker b at offset off.
func fetchAt(t testing.TB, b *Broker, off int64) brokerop.FetchPartitionResp {
	t.Helper()
	resp, err := b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1 << 30, Partitions: []brokerop.FetchPartition{
		{Topic: "r", Partition: 0, Offset: off, MaxBytes: 1 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Partitions[0]
}

// deleteRecords asks broker b to move the log start of r-0 to off.
func deleteRecordsOn(t testing.TB, b *Broker, off int64) brokerop.DeleteRecordsPartitionResp {
	t.Helper()
	resp, err := b.DeleteRecords(context.Background(), &brokerop.DeleteRecordsReq{Partitions: []brokerop.DeleteRecordsPartition{{Topic: "r", Partition: 0, Offset: off}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Partitions[0]
}

// DeleteRecords on a replicated partition: only the leader takes it; the new log start is
// applied by every replica (reads below it are out of range, ListOffsets earliest answers
// it), segments below it go on the leader and the followers' retention, and it survives the
// leader's loss and a replica's restart.
func TestReplicatedDeleteRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, map[string]string{"segment.bytes": "1024", "retention.ms": "-1"})
		l := c.leader(0)
		b := c.nodes[l].e.b
		var offs []int64
		for i := range 20 {
			r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, big(i))...))
			if r.ErrorCode != 0 {
				t.Fatalf("produce %d: %+v", i, r)
			}
			offs = append(offs, r.BaseOffset)
		}
		// acks=all waits for a majority: the third replica may still be catching up, and the
		// leader keeps the segments a live follower still needs. Wait until both have it all.
		g := b.lookup("r", 0).group.Load()
		waitFor(t, func() bool {
			st, ok := g.eng.Status(g.id)
			for _, pr := range st.Progress {
				ok = ok && pr.Match >= st.Commit
			}
			return ok && len(st.Progress) == 3
		})
		start := offs[12]
		if r := deleteRecordsOn(t, c.nodes[c.others(l)[0]].e.b, start); r.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("DeleteRecords on a follower: %+v", r)
		}
		if r := deleteRecordsOn(t, b, offs[19]+100); r.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("DeleteRecords beyond the high watermark: %+v", r)
		}
		if r := deleteRecordsOn(t, b, start); r.ErrorCode != 0 || r.LowWatermark != start {
			t.Fatalf("DeleteRecords: %+v, want low watermark %d", r, start)
		}
		if s := b.lookup("r", 0).log.StartOffset(); s == 0 || s > start {
			t.Fatalf("leader's log starts at %d after DeleteRecords to %d: segments below not deleted", s, start)
		}
		for id := range c.nodes {
			g := c.nodes[id].e.b.lookup("r", 0).group.Load()
			waitFor(t, func() bool { return g.logStartOffset() == start })
		}
		check := func(b *Broker) {
			t.Helper()
			if r := fetchAt(t, b, start-1); r.ErrorCode != kerr.OffsetOutOfRange.Code || r.LogStartOffset != start {
				t.Fatalf("fetch below the log start: code %d, log start %d", r.ErrorCode, r.LogStartOffset)
			}
			if r := fetchAt(t, b, start); r.ErrorCode != 0 || len(r.Records) == 0 {
				t.Fatalf("fetch at the log start: %+v", r)
			}
			if r := listOffset(t, b, -2, -1); r.ErrorCode != 0 || r.Offset != start {
				t.Fatalf("earliest offset %+v, want %d", r, start)
			}
			if r := listOffset(t, b, 0, -1); r.ErrorCode != 0 || r.Offset != start {
				t.Fatalf("offset for timestamp 0 %+v, want the log start %d", r, start)
			}
		}
		check(b)
		// The followers' retention deletes their segments below it too.
		for _, id := range c.others(l) {
			fb := c.nodes[id].e.b
			if _, err := fb.EnforceRetention(); err != nil {
				t.Fatal(err)
			}
			if s := fb.lookup("r", 0).log.StartOffset(); s == 0 || s > start {
				t.Fatalf("broker %d's log starts at %d", id, s)
			}
		}
		// The leader dies: the new one serves the same start; a smaller DeleteRecords changes
		// nothing.
		c.kill(l)
		l2 := c.leader(0)
		nb := c.nodes[l2].e.b
		check(nb)
		if r := deleteRecordsOn(t, nb, start-1); r.ErrorCode != 0 || r.LowWatermark != start {
			t.Fatalf("DeleteRecords below the start: %+v", r)
		}
		// The old leader restarts (from its snapshot) and, once it leads again, still has it.
		c.restart(l)
		c.moveLeader(0, l)
		check(c.nodes[l].e.b)
	})
}

// A follower that was down while the leader compacted its raft log catches up by snapshot
// when it restarts; the leader, restarted after compacting, rebuilds its state from its own
// snapshot and still deduplicates a retry of a batch from before it.
func TestReplicatedRetentionRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, map[string]string{
			"segment.bytes": "1024", "retention.bytes": "1024", "retention.ms": "-1"})
		l := c.leader(0)
		f := c.others(l)[0]
		b := c.nodes[l].e.b
		const pid = 9
		seq := int32(0)
		produce := func(b *Broker, n int) (last int64) {
			t.Helper()
			for range n {
				r := produceTo(t, b, -1, 0, idemBatch(pid, 0, seq, big(int(seq))))
				if r.ErrorCode != 0 {
					t.Fatalf("produce %d: %+v", seq, r)
				}
				last = r.BaseOffset
				seq++
			}
			return last
		}
		produce(b, 5)
		fLast, _ := c.store(f, 0).LastIndex()
		c.kill(f)
		c.waitUntilInactive(l, f)
		lastOff := produce(b, 20)
		enforceRetention(t, b, "leader")
		if first, _ := c.store(l, 0).FirstIndex(); first <= fLast+1 {
			t.Fatalf("leader's raft log starts at %d: the stopped follower (last %d) would not need a snapshot", first, fLast)
		}
		c.restart(f)
		fl := c.nodes[f].e.b.lookup("r", 0).log
		lb := b.lookup("r", 0).log
		waitFor(t, func() bool { return fl.NextOffset() == lb.NextOffset() })
		if fl.StartOffset() < lb.StartOffset() {
			t.Fatalf("restarted follower's log starts at %d, the leader's at %d", fl.StartOffset(), lb.StartOffset())
		}
		// The leader restarts after its compaction and leads again.
		c.kill(l)
		c.restart(l)
		c.moveLeader(0, l)
		b = c.nodes[l].e.b
		if r := produceTo(t, b, -1, 0, idemBatch(pid, 0, seq-1, big(int(seq-1)))); r.ErrorCode != 0 || r.BaseOffset != lastOff {
			t.Fatalf("retry after the leader's restart: %+v, want offset %d", r, lastOff)
		}
		produce(b, 2)
		for _, id := range c.others(l) {
			waitFor(t, func() bool {
				from := max(c.nodes[id].e.b.lookup("r", 0).log.StartOffset(), b.lookup("r", 0).log.StartOffset())
				return slices.Equal(c.tail(l, 0, from), c.tail(id, 0, from))
			})
		}
	})
}

// FuzzDecodeSnapData feeds arbitrary bytes to the decoder of a replicated partition's raft
// snapshot data: it never panics, and what it accepts is a log start of at least -1 and
// producers that re-encode to data that decodes the same.
func FuzzDecodeSnapData(f *testing.F) {
	prods := map[int64]*producerEntry{
		7: {epoch: 2, lastTs: 5, txnFirst: -1, batches: []seqBatch{{0, 4, 10}, {5, 9, 15}}},
		9: {epoch: 0, lastTs: 6, txnFirst: -1, batches: []seqBatch{{0, 0, 20}}},
	}
	f.Add(encodeSnapData(-1, encodeProducerSnapshot(30, prods, nil)))
	f.Add(encodeSnapData(12, encodeProducerSnapshot(30, nil, nil)))
	open := map[int64]*producerEntry{7: {epoch: 1, lastTs: 5, txnFirst: 12, batches: []seqBatch{{0, 4, 12}}}}
	f.Add(encodeSnapData(3, encodeProducerSnapshot(30, open, []abortedTxn{{pid: 8, first: 4, last: 9}, {pid: 7, first: 2, last: 11}})))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		start, upTo, ps, ab, err := decodeSnapData(b)
		if err != nil {
			return
		}
		if start < -1 {
			t.Fatalf("log start %d accepted", start)
		}
		start2, upTo2, ps2, ab2, err := decodeSnapData(encodeSnapData(start, encodeProducerSnapshot(upTo, ps, ab)))
		if err != nil || start2 != start || upTo2 != upTo || len(ps2) != len(ps) || !slices.Equal(ab, ab2) {
			t.Fatalf("re-encoded data decodes to %d, %d, %d producers, %v; want %d, %d, %d", start2, upTo2, len(ps2), err, start, upTo, len(ps))
		}
	})
}

// FuzzDecodeAppPayload: the decoder of raft application entries never panics and accepts
// only what encodeLogStartEntry and encodeMarkerEntry write.
func FuzzDecodeAppPayload(f *testing.F) {
	p, _ := raftstore.AppPayload(encodeLogStartEntry(42))
	f.Add(p)
	p, _ = raftstore.AppPayload(encodeMarkerEntry(txnMarker{pid: 7, epoch: 3, commit: true, ts: 99}))
	f.Add(p)
	f.Add([]byte{1, 1})
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeAppPayload(b)
		if err != nil {
			return
		}
		enc := encodeLogStartEntry(e.logStart)
		if e.kind == appTxnMarker {
			enc = encodeMarkerEntry(e.marker)
		}
		if re, _ := raftstore.AppPayload(enc); !bytes.Equal(re, b) {
			t.Fatalf("accepted %x, which encodes as %x", b, re)
		}
	})
}

// A follower that is live but behind (its appends are lost, its heartbeats are not) keeps
// the entries it needs: time retention on the leader deletes only segments below its Match,
// and once its appends flow again it catches up from the log (no snapshot: its log still
// starts at 0). Then the leader deletes the rest.
func TestReplicatedRetentionKeepsLiveFollowerEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, map[string]string{"segment.bytes": "1024", "retention.ms": "3600000"})
		l := c.leader(0)
		f := c.others(l)[0]
		b := c.nodes[l].e.b
		for i := range 8 {
			if r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, big(i))...)); r.ErrorCode != 0 {
				t.Fatalf("produce %d: %+v", i, r)
			}
		}
		c.net.SetDrop(func(m replica.GroupMessage) bool {
			return m.Msg.GetTo() == f && m.Msg.GetType() == raftpb.MessageType_MsgApp
		})
		for i := 8; i < 30; i++ {
			if r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, big(i))...)); r.ErrorCode != 0 {
				t.Fatalf("produce %d: %+v", i, r)
			}
		}
		st, _ := c.nodes[l].eng.Status(c.gid(0))
		pr := st.Progress[f]
		if !pr.RecentActive || pr.Match+5 > st.Commit {
			t.Fatalf("follower %d: %+v, commit %d: not a live follower behind", f, pr, st.Commit)
		}
		enforceRetention(t, b, "leader")
		if first, _ := c.store(l, 0).FirstIndex(); first > pr.Match+1 {
			t.Fatalf("leader's raft log starts at %d, the live follower's Match is %d", first, pr.Match)
		}
		_, matchNext, ok := c.store(l, 0).Offsets(pr.Match + 1)
		if !ok || b.lookup("r", 0).log.StartOffset() >= matchNext {
			t.Fatalf("leader deleted entries the live follower needs: log start %d, entry %d ends at %d (%v)",
				b.lookup("r", 0).log.StartOffset(), pr.Match+1, matchNext, ok)
		}
		c.net.SetDrop(nil)
		lb, fl := b.lookup("r", 0).log, c.nodes[f].e.b.lookup("r", 0).log
		waitFor(t, func() bool { return fl.NextOffset() == lb.NextOffset() })
		if fl.StartOffset() != 0 {
			t.Fatalf("follower's log starts at %d: it was sent a snapshot", fl.StartOffset())
		}
		before := lb.StartOffset()
		waitFor(t, func() bool {
			st, _ := c.nodes[l].eng.Status(c.gid(0))
			return st.Progress[f].Match == st.Commit
		})
		if _, err := b.EnforceRetention(); err != nil {
			t.Fatal(err)
		}
		if lb.StartOffset() <= before {
			t.Fatalf("leader's log start stayed at %d once the follower caught up", before)
		}
		for _, id := range []uint64{l, f} {
			from := max(lb.StartOffset(), c.nodes[id].e.b.lookup("r", 0).log.StartOffset())
			if !slices.Equal(c.tail(l, 0, from), c.tail(id, 0, from)) {
				t.Fatalf("broker %d's log differs from the leader's", id)
			}
		}
	})
}

// The failure of the first version: a follower cut off while the leader moved its log start
// (DeleteRecords, then retention of the segments below it) installs the leader's snapshot,
// made at the leader's retention point, so its log starts where the leader's does and holds
// every record the leader still retains; once it leads it serves the DeleteRecords start and
// every record from it on.
func TestReplicatedSnapshotKeepsRetainedRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, map[string]string{"segment.bytes": "1024", "retention.ms": "-1"})
		l := c.leader(0)
		f := c.others(l)[0]
		b := c.nodes[l].e.b
		var offs []int64
		produce := func(i int) {
			t.Helper()
			r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, big(i))...))
			if r.ErrorCode != 0 {
				t.Fatalf("produce %d: %+v", i, r)
			}
			offs = append(offs, r.BaseOffset)
		}
		for i := range 2 {
			produce(i)
		}
		fLast := c.cutOff(l, f)
		for i := 2; i < 24; i++ {
			produce(i)
		}
		start := offs[14]
		if r := deleteRecordsOn(t, b, start); r.ErrorCode != 0 || r.LowWatermark != start {
			t.Fatalf("DeleteRecords: %+v", r)
		}
		lb := b.lookup("r", 0).log
		if lb.StartOffset() == 0 || lb.StartOffset() > start {
			t.Fatalf("leader's log starts at %d after DeleteRecords to %d", lb.StartOffset(), start)
		}
		if first, _ := c.store(l, 0).FirstIndex(); first <= fLast+1 {
			t.Fatalf("leader's raft log starts at %d: the cut-off follower (last %d) needs no snapshot", first, fLast)
		}
		fl := c.catchUpBySnapshot(f, lb, fLast)
		if fl.StartOffset() != lb.StartOffset() {
			t.Fatalf("follower's log starts at %d, the leader's at %d", fl.StartOffset(), lb.StartOffset())
		}
		if lt, ft := c.entries(l, 0), c.entries(f, 0); !slices.Equal(lt, ft) {
			t.Fatalf("leader's log %q, follower's %q", lt, ft)
		}
		c.moveLeader(0, f)
		fb := c.nodes[f].e.b
		if r := listOffset(t, fb, -2, -1); r.ErrorCode != 0 || r.Offset != start {
			t.Fatalf("new leader's earliest offset %+v, want the DeleteRecords start %d", r, start)
		}
		for k := 14; k < len(offs); k++ {
			r := fetchAt(t, fb, offs[k])
			if r.ErrorCode != 0 || len(r.Records) == 0 {
				t.Fatalf("new leader: fetch at %d (record %d): %+v", offs[k], k, r)
			}
		}
		if r := fetchAt(t, fb, start-1); r.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("new leader: fetch below the DeleteRecords start: %+v", r)
		}
	})
}

// A follower that installs a snapshot gets every producer's idempotence state, however many
// producers there are (the snapshot data is a blob of the log, not the log's small state):
// 1,200 producers write while a follower is cut off, retention deletes their batches on the
// leader, the follower catches up by snapshot and, once it leads, answers every producer's
// retry with the original offset and refuses a sequence gap of each.
func TestReplicatedSnapshotManyProducers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, l, f, fLast := newCutOffCluster(t, map[string]string{"segment.bytes": "4096", "retention.bytes": "4096", "retention.ms": "-1"})
		b := c.nodes[l].e.b
		const producers = 1200
		offs := make([]int64, producers)
		for pid := range int64(producers) {
			for seq := range int32(2) {
				r := produceTo(t, b, 1, 0, idemBatch(1000+pid, 3, seq, fmt.Sprintf("p%d-%d", pid, seq)))
				if r.ErrorCode != 0 {
					t.Fatalf("producer %d seq %d: %+v", pid, seq, r)
				}
				offs[pid] = r.BaseOffset
			}
		}
		// Filler: the producers' batches end up in old segments.
		for i := range 20 {
			if r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, big(i))...)); r.ErrorCode != 0 {
				t.Fatalf("filler %d: %+v", i, r)
			}
		}
		enforceRetention(t, b, "leader")
		lb := b.lookup("r", 0).log
		if lb.StartOffset() <= offs[producers-1] {
			t.Fatalf("leader's log starts at %d: the producers' batches (up to %d) were not deleted", lb.StartOffset(), offs[producers-1])
		}
		snap, err := c.store(l, 0).Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if _, app, err := raftstore.SnapshotData(snap.GetData()); err != nil || len(app) < 8*wal.MaxStateBytes {
			t.Fatalf("leader's snapshot data: %d bytes, %v; want the state of %d producers", len(app), err, producers)
		}
		c.catchUpBySnapshot(f, lb, fLast)
		// Restarted too, it restores the producers from its own copy of the snapshot.
		c.kill(f)
		c.restart(f)
		c.moveLeader(0, f)
		fb := c.nodes[f].e.b
		for pid := range int64(producers) {
			r := produceTo(t, fb, 1, 0, idemBatch(1000+pid, 3, 1, fmt.Sprintf("p%d-1", pid)))
			if r.ErrorCode != 0 || r.BaseOffset != offs[pid] {
				t.Fatalf("producer %d: retry answered %+v, want its offset %d", pid, r, offs[pid])
			}
			if pid%100 == 0 {
				if r := produceTo(t, fb, 1, 0, idemBatch(1000+pid, 3, 5, "gap")); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
					t.Fatalf("producer %d: sequence gap answered %+v", pid, r)
				}
			}
		}
		if r := produceTo(t, fb, -1, 0, idemBatch(1000, 3, 2, "next")); r.ErrorCode != 0 {
			t.Fatalf("next sequence: %+v", r)
		}
	})
}

// A snapshot's producer state is as of the applied index, above the snapshot's own index: a
// replica that restores it and then applies the entries in between again must not count
// those batches twice (the producer's window of five would lose its oldest batches). Here a
// producer's last two batches lie after the leader's retention point; the follower that
// installed the snapshot (and then restarted from it) still deduplicates all five.
func TestReplicatedSnapshotProducerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, l, f, fLast := newCutOffCluster(t, map[string]string{"segment.bytes": "1024", "retention.bytes": "1500", "retention.ms": "-1"})
		b := c.nodes[l].e.b
		const pid = 42
		var offs []int64
		send := func(seq int32, v string) {
			t.Helper()
			r := produceTo(t, b, -1, 0, idemBatch(pid, 0, seq, v))
			if r.ErrorCode != 0 {
				t.Fatalf("seq %d: %+v", seq, r)
			}
			offs = append(offs, r.BaseOffset)
		}
		for seq := range int32(3) {
			send(seq, big(int(seq)))
		}
		for i := range 6 {
			if r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, big(10+i))...)); r.ErrorCode != 0 {
				t.Fatalf("filler %d: %+v", i, r)
			}
		}
		send(3, "three")
		send(4, "four")
		enforceRetention(t, b, "leader")
		lb := b.lookup("r", 0).log
		if s := lb.StartOffset(); s <= offs[2] || s > offs[3] {
			t.Fatalf("leader's log starts at %d; want batches 0-2 (up to %d) gone and 3 (%d) kept", s, offs[2], offs[3])
		}
		c.catchUpBySnapshot(f, lb, fLast)
		check := func(id uint64) {
			t.Helper()
			c.moveLeader(0, id)
			nb := c.nodes[id].e.b
			for seq := range int32(5) {
				r := produceTo(t, nb, -1, 0, idemBatch(pid, 0, seq, "retry"))
				if r.ErrorCode != 0 || r.BaseOffset != offs[seq] {
					t.Fatalf("broker %d: retry of seq %d answered %+v, want offset %d", id, seq, r, offs[seq])
				}
			}
		}
		check(f)
		c.kill(f)
		c.restart(f)
		check(f)
	})
}

// Power cuts (clean and torn) of random replicas right after retention ran on them, round
// after round, while an idempotent producer writes with acks=all and retries what was not
// acknowledged: every replica reopens (from its snapshot blob and log), the replicas agree
// on every record above the highest log start, every acknowledged record above the leader's
// log start is served at its acknowledged offset, and a retry of the last batch is
// deduplicated by whichever replica leads.
func TestReplicatedRetentionCrashes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, map[string]string{
			"segment.bytes": "1024", "retention.bytes": "2048", "retention.ms": "-1"})
		r := rand.New(rand.NewPCG(3, 4))
		const pid = 8
		acked := map[int64]string{}
		seq := int32(0)
		var last []byte
		var lastOff int64
		send := func(v string) {
			t.Helper()
			batch := idemBatch(pid, 0, seq, v)
			resp := produceTo(t, c.nodes[c.leader(0)].e.b, -1, 0, slices.Clone(batch))
			for resp.ErrorCode != 0 {
				resp = produceTo(t, c.nodes[c.leader(0)].e.b, -1, 0, slices.Clone(batch))
			}
			acked[resp.BaseOffset] = v
			last, lastOff = batch, resp.BaseOffset
			seq++
		}
		for round := range 12 {
			for i := range 4 {
				send(fmt.Sprintf("%d-%d-%s", round, i, strings.Repeat("y", 200)))
			}
			id := uint64(1 + r.IntN(3))
			if _, err := c.nodes[id].e.b.EnforceRetention(); err != nil {
				t.Fatalf("round %d: retention on %d: %v", round, id, err)
			}
			if r.IntN(2) == 0 {
				c.crash(id, r)
			} else {
				c.crash(id, nil)
			}
			send(fmt.Sprintf("%d-while-down", round))
			c.restart(id)
		}
		l := c.leader(0)
		b := c.nodes[l].e.b
		if r := produceTo(t, b, -1, 0, last); r.ErrorCode != 0 || r.BaseOffset != lastOff {
			t.Fatalf("retry of the last batch: %+v, want offset %d", r, lastOff)
		}
		start := b.lookup("r", 0).log.StartOffset()
		if start == 0 {
			t.Fatal("retention deleted nothing on the leader")
		}
		offsets, values := readDataFrom(t, b, "r", 0, start)
		served := map[int64]string{}
		for i, off := range offsets {
			served[off] = values[i]
		}
		for off, v := range acked {
			if off >= start && served[off] != v {
				t.Fatalf("acknowledged %q at %d (log start %d); served %q", v, off, start, served[off])
			}
		}
		for id := range c.nodes {
			waitFor(t, func() bool {
				from := max(start, c.nodes[id].e.b.lookup("r", 0).log.StartOffset())
				return slices.Equal(c.tail(l, 0, from), c.tail(id, 0, from))
			})
		}
	})
}
