package broker

// Log compaction of replicated partitions (replicated_compact.go) on the real engine and
// raftstore: three brokers on a replica.LocalNet, in virtual time (testing/synctest).

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
	"go.etcd.io/raft/v3/raftpb"
)

func replCompactConfigs() map[string]string {
	return map[string]string{"cleanup.policy": "compact", "segment.bytes": "8192",
		"min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "60000"}
}

// recordsOf decodes the data records of wal batches (control batches skipped), from offset
// from on.
func recordsOf(t testing.TB, bs []wal.Batch, from int64) []got {
	t.Helper()
	var out []got
	for _, bt := range bs {
		forEachBatch(bt.Data, func(batch []byte) {
			h := readBatchHead(batch)
			if h.attrs&attrControl != 0 {
				return
			}
			recs, n, err := batchRecords(batch)
			if err != nil {
				t.Fatalf("batch at %d: %v", h.baseOffset, err)
			}
			if out, err = appendGot(out, recs, n, h.baseOffset, from); err != nil {
				t.Fatal(err)
			}
		})
	}
	return out
}

// replicaRecords is every data record of b's own log of r-p (a follower's too), read from
// its wal log as a consumer would across the cleaner's emptied batches.
func replicaRecords(t testing.TB, b *Broker, p int32) []got {
	t.Helper()
	l := b.lookup("r", p).log
	var out []got
	for off := l.StartOffset(); off < l.NextOffset(); {
		bs, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) == 0 {
			break
		}
		out = append(out, recordsOf(t, bs, off)...)
		off = bs[len(bs)-1].LastOffset + 1
	}
	return out
}

// servedRecords fetches r-0 from b (its leader) from offset 0 to the high watermark as a
// Kafka client does, checking every batch's CRC.
func servedRecords(t testing.TB, b *Broker) []got {
	t.Helper()
	var out []got
	for from := int64(0); ; {
		resp, err := b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1 << 30, Partitions: []brokerop.FetchPartition{
			{Topic: "r", Partition: 0, Offset: from, MaxBytes: 1 << 20}}})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.Partitions[0]
		if r.ErrorCode != 0 {
			t.Fatalf("fetch %d: code %d", from, r.ErrorCode)
		}
		if len(r.Records) == 0 {
			return out
		}
		var bs []wal.Batch
		forEachBatch(r.Records, func(batch []byte) {
			if binary.BigEndian.Uint32(batch[offCRC:]) != crc32.Checksum(batch[offAttributes:], castagnoli) {
				t.Fatalf("batch at %d: bad crc", batchBase(batch))
			}
			bs = append(bs, wal.Batch{Data: batch})
			from = max(from, batchBase(batch)+int64(readBatchHead(batch).delta)+1)
		})
		out = append(out, recordsOf(t, bs, 0)...)
	}
}

// produceKeyed writes n keyed records (one in tombstoneEvery a tombstone) over keys keys in
// batches of batch records to r-0 through leader l with acks=all, and returns them.
func (c *raftCluster) produceKeyed(r *rand.Rand, l uint64, n, keys, batch, tombstoneEvery int) history {
	c.t.Helper()
	var h history
	b := c.nodes[l].e.b
	ts := c.nodes[l].e.clock.Now().UnixMilli()
	for done := 0; done < n; {
		var recs []krec
		for range min(batch, n-done) {
			k := fmt.Sprintf("key-%d", r.IntN(keys))
			if r.IntN(tombstoneEvery) == 0 {
				recs = append(recs, krec{key: k})
			} else {
				recs = append(recs, krec{key: k, value: sp(fmt.Sprintf("v%d-%d", done+len(recs), r.IntN(1000)))})
			}
		}
		resp := produceTo(c.t, b, -1, 0, keyedBatch(ts, recs...))
		if resp.ErrorCode != 0 {
			c.t.Fatalf("produce: code %d %s", resp.ErrorCode, resp.ErrorMessage)
		}
		for i, x := range recs {
			g := got{off: resp.BaseOffset + int64(i), key: x.key, null: x.value == nil}
			if x.value != nil {
				g.value = *x.value
			}
			h = append(h, g)
		}
		done += len(recs)
	}
	return h
}

// waitApplied waits until every live replica of r-0 applied what leader l applied.
func (c *raftCluster) waitApplied(l uint64) {
	c.t.Helper()
	hw := c.nodes[l].e.b.lookup("r", 0).group.Load().highWatermark()
	waitFor(c.t, func() bool {
		for _, n := range c.nodes {
			if n.up && n.e.b.lookup("r", 0).group.Load().highWatermark() < hw {
				return false
			}
		}
		return true
	})
}

// indexOffsets maps every raft index broker id's storage of r-0 holds to its offsets.
func (c *raftCluster) indexOffsets(id uint64) map[uint64][2]int64 {
	st := c.store(id, 0)
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	out := map[uint64][2]int64{}
	for i := first; i <= last; i++ {
		if base, next, ok := st.Offsets(i); ok {
			out[i] = [2]int64{base, next}
		}
	}
	return out
}

// sameIndexOffsets checks that every raft index both replicas hold occupies the same Kafka
// offsets on both, and that they share at least min indexes.
func (c *raftCluster) sameIndexOffsets(a, b uint64, least int) {
	c.t.Helper()
	oa, ob := c.indexOffsets(a), c.indexOffsets(b)
	common := 0
	for i, x := range oa {
		if y, ok := ob[i]; ok {
			common++
			if x != y {
				c.t.Fatalf("raft index %d: offsets %v on %d, %v on %d", i, x, a, y, b)
			}
		}
	}
	if common < least {
		c.t.Fatalf("replicas %d and %d share %d raft indexes, want at least %d", a, b, common, least)
	}
}

// compactReplica runs broker id's cleaner and checks that its log of r-0 now holds exactly
// the model's records (h cleaned up to the replica's new checkpoint, from its log start on;
// keep says which tombstones stay) and, if fresh (new sealed data to clean), that it cleaned and shrank. It
// returns the checkpoint.
func (c *raftCluster) compactReplica(id uint64, h history, fresh bool, keep func(got) bool) int64 {
	c.t.Helper()
	b := c.nodes[id].e.b
	l := b.lookup("r", 0).log
	before := l.Size()
	st, err := b.Compact(context.Background())
	if err != nil {
		c.t.Fatalf("broker %d: compact: %v", id, err)
	}
	if fresh && (st.Partitions != 1 || st.Swapped == 0) {
		c.t.Fatalf("broker %d: nothing cleaned: %+v", id, st)
	}
	end, ok := b.CleanerCheckpoint("r", 0)
	if !ok || end != activeBaseOf(l) {
		c.t.Fatalf("broker %d: cleaner checkpoint %d (%v), active segment at %d", id, end, ok, activeBaseOf(l))
	}
	sameRecords(c.t, replicaRecords(c.t, b, 0), fromOffset(h.expect(end, keep), l.StartOffset()),
		fmt.Sprintf("broker %d after cleaning to %d", id, end))
	if after := l.Size(); fresh && after >= before {
		c.t.Fatalf("broker %d: log %d bytes before cleaning, %d after", id, before, after)
	}
	return end
}

// TestReplicatedCompaction: an RF=3 compacted partition is cleaned by every replica on its
// own log: each holds exactly the latest record of every key below its checkpoint (and
// everything after), the raft log keeps every index at the same Kafka offsets on every
// replica, and the disk use shrinks. delete.retention.ms later the tombstones go on every
// replica. After the leader is killed the new leader serves its compacted log to a consumer;
// a new replica added to the group (as a wiped broker is put back) is sent the leader's
// cleaned entries, at the same offsets, and cleans them itself.
func TestReplicatedCompaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, replCompactConfigs())
		l := c.leader(0)
		r := rand.New(rand.NewPCG(1, 16))
		h := c.produceKeyed(r, l, 3000, 80, 5, 8)
		c.waitApplied(l)
		ends := map[uint64]int64{}
		for id := range c.nodes {
			ends[id] = c.compactReplica(id, h, true, func(got) bool { return true })
		}
		for _, o := range c.others(l) {
			c.sameIndexOffsets(l, o, 500)
		}
		// delete.retention.ms later: the tombstones cleaned the first time go everywhere
		// (on the leader too: every follower's log reaches them).
		for _, n := range c.nodes {
			n.e.clock.Advance(61 * time.Second)
		}
		h = append(h, c.produceKeyed(r, l, 1500, 80, 5, 8)...)
		c.waitApplied(l)
		firstEnds := maps.Clone(ends)
		for id := range c.nodes {
			ends[id] = c.compactReplica(id, h, true, func(g got) bool { return g.off >= firstEnds[id] })
		}

		// The leader dies: the new one serves its own compacted log.
		c.kill(l)
		l2 := c.leader(0)
		removedBelow := firstEnds[l2] // tombstones below: gone from l2's log
		sameRecords(t, servedRecords(t, c.nodes[l2].e.b), h.expect(ends[l2], func(g got) bool { return g.off >= removedBelow }),
			"served by the new leader")
		h = append(h, c.produceKeyed(r, l2, 600, 80, 5, 8)...)

		// A new replica (broker 4, as a wiped broker comes back with a new raft id) joins
		// as a learner and is sent the whole log: the leader's entries, cleaned.
		rec := c.rec
		rec.Replicas = [][]uint64{{1, 2, 3, 4}}
		rec.Joining = [][]uint64{{4}}
		c.rec = rec
		c.start(4)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.nodes[l2].eng.ChangeConf(ctx, c.gid(0), &raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
			{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: new(uint64(4))}}}); err != nil {
			t.Fatal(err)
		}
		c.waitApplied(l2)
		c.sameIndexOffsets(l2, 4, 500)
		produced := map[int64]got{}
		for _, g := range h {
			produced[g.off] = g
		}
		recv := replicaRecords(t, c.nodes[4].e.b, 0)
		for _, g := range recv {
			if produced[g.off] != g {
				t.Fatalf("new replica holds %+v, produced %+v", g, produced[g.off])
			}
		}
		if len(recv) >= len(h) {
			t.Fatalf("new replica received %d records of %d produced: no cleaned entry reached it", len(recv), len(h))
		}
		// Its own cleaning: the model, except that the tombstones the leader had removed
		// (below removedBelow) before sending their entries may be missing (entries the
		// leader sent from its in-memory cache still had them, and this replica keeps them
		// delete.retention.ms from its own first cleaning).
		b4 := c.nodes[4].e.b
		if st, err := b4.Compact(context.Background()); err != nil || st.Swapped == 0 {
			t.Fatalf("new replica's cleaning: %+v %v", st, err)
		}
		end4, _ := b4.CleanerCheckpoint("r", 0)
		if end4 != activeBaseOf(b4.lookup("r", 0).log) {
			t.Fatalf("new replica cleaned to %d, active segment at %d", end4, activeBaseOf(b4.lookup("r", 0).log))
		}
		dropOld := func(gs []got) []got {
			var out []got
			for _, g := range gs {
				if !g.null || g.off >= removedBelow {
					out = append(out, g)
				}
			}
			return out
		}
		all := replicaRecords(t, b4, 0)
		sameRecords(t, dropOld(all), dropOld(h.expect(end4, func(got) bool { return true })), "new replica after its cleaning")
		for _, g := range all {
			if produced[g.off] != g {
				t.Fatalf("new replica holds %+v after its cleaning, produced %+v", g, produced[g.off])
			}
		}
	})
}

// TestReplicatedCompactionCrash: a follower loses power at a random file system operation
// of its cleaning (one cycle counts them, later ones cut it somewhere in that range), many
// times over: after each restart its log holds only records produced at their offsets and
// every record the cleaning keeps, raft goes on from it (it catches up with the leader, every
// raft index at the leader's offsets), and its next cleaning gives exactly the model. Cycles:
// REPL_COMPACT_CRASH_CYCLES (default 10).
func TestReplicatedCompactionCrash(t *testing.T) {
	cycles := 10
	if v, err := strconv.Atoi(os.Getenv("REPL_COMPACT_CRASH_CYCLES")); err == nil {
		cycles = v
	}
	synctest.Test(t, func(t *testing.T) {
		cfg := replCompactConfigs()
		cfg["delete.retention.ms"] = "0" // tombstones go at once: the crash can cut that too
		c := newRaftCluster(t, 3, 1, cfg)
		l := c.leader(0)
		f := c.others(l)[0]
		n := c.nodes[f]
		base := n.e.fs
		hfs := waltest.NewHookFS(base, nil)
		c.kill(f)
		n.e.cfg.FS = hfs
		c.restart(f)
		r := rand.New(rand.NewPCG(2, 16))
		var h history
		var ops int64
		crashed := 0
		for cycle := range cycles {
			h = append(h, c.produceKeyed(r, l, 600, 40, 4, 6)...)
			c.waitApplied(l)
			end := activeBaseOf(n.e.b.lookup("r", 0).log)
			// Tombstones below the follower's matched point go (delete.retention.ms 0).
			want := h.expect(end, func(got) bool { return false })
			c.net.Isolate(f) // nothing reaches its engine while it cleans
			at := int64(-1)
			if cycle > 0 {
				at = 1 + r.Int64N(ops)
			}
			tear := cycle%2 == 1
			count := crashAtOp(hfs, base, at, tear, r)
			_, err := n.e.b.Compact(context.Background())
			what := fmt.Sprintf("cycle %d, crash at op %d of %d", cycle, at, ops)
			if at < 0 {
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				ops = count()
				hfs.SetBefore(nil)
				c.net.Heal()
				continue
			}
			if err != nil {
				crashed++
			}
			c.crash(f, nil)
			hfs.SetBefore(nil)
			c.net.Heal()
			c.restart(f)
			produced := map[int64]got{}
			for _, g := range h {
				produced[g.off] = g
			}
			seen := map[int64]bool{}
			for _, g := range replicaRecords(t, n.e.b, 0) {
				if produced[g.off] != g {
					t.Fatalf("%s: holds %+v, produced %+v", what, g, produced[g.off])
				}
				seen[g.off] = true
			}
			for _, g := range want {
				if !seen[g.off] {
					t.Fatalf("%s: %+v lost", what, g)
				}
			}
			c.waitApplied(l)
			c.sameIndexOffsets(l, f, 100)
			// (The journal's replay may lay the segments out differently: the model follows
			// the new checkpoint.)
			c.compactReplica(f, h, false, func(got) bool { return false })
		}
		t.Logf("%d of %d cleanings cut by the crash (%d operations in a whole one)", crashed, cycles-1, ops)
		if cycles > 1 && crashed < (cycles-1)/2 {
			t.Fatalf("only %d of %d cleanings were cut by the crash", crashed, cycles-1)
		}
	})
}

// fromOffset keeps the records at or above off.
func fromOffset(gs []got, off int64) []got {
	var out []got
	for _, g := range gs {
		if g.off >= off {
			out = append(out, g)
		}
	}
	return out
}

// TestReplicatedCompactDeleteSnapshotCatchUp: cleanup.policy=compact,delete. A follower cut
// off while the others clean their logs and retention deletes their oldest segments (raft
// snapshot at the retention point) catches up by the leader's snapshot: its log starts where
// the leader's does, every raft index after it occupies the leader's offsets, the entries it
// is sent hold only records produced at those offsets, and its own cleaning leaves exactly
// the model from its log start on.
func TestReplicatedCompactDeleteSnapshotCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := replCompactConfigs()
		cfg["cleanup.policy"] = "compact,delete"
		cfg["retention.bytes"] = "30000"
		cfg["retention.ms"] = "-1"
		c, l, f, last := newCutOffCluster(t, cfg)
		o := c.others(l)[1]
		r := rand.New(rand.NewPCG(4, 16))
		h := c.produceKeyed(r, l, 4000, 80, 5, 8)
		waitFor(t, func() bool {
			return c.nodes[o].e.b.lookup("r", 0).group.Load().highWatermark() >= c.nodes[l].e.b.lookup("r", 0).group.Load().highWatermark()
		})
		for _, id := range []uint64{l, o} {
			b := c.nodes[id].e.b
			c.compactReplica(id, h, true, func(got) bool { return true })
			enforceRetention(t, b, fmt.Sprint("broker ", id))
			end, _ := b.CleanerCheckpoint("r", 0)
			start := b.lookup("r", 0).log.StartOffset()
			if start == 0 || start >= end {
				t.Fatalf("broker %d: log start %d, cleaned to %d", id, start, end)
			}
			sameRecords(t, replicaRecords(t, b, 0), fromOffset(h.expect(end, func(got) bool { return true }), start),
				fmt.Sprintf("broker %d after cleaning and retention", id))
		}
		lb := c.nodes[l].e.b.lookup("r", 0).log
		fl := c.catchUpBySnapshot(f, lb, last)
		c.waitApplied(l) // (catchUpBySnapshot waits for the log, not for its application)
		if fl.StartOffset() != lb.StartOffset() {
			t.Fatalf("follower's log starts at %d, leader's at %d", fl.StartOffset(), lb.StartOffset())
		}
		c.sameIndexOffsets(l, f, 50)
		produced := map[int64]got{}
		for _, g := range h {
			produced[g.off] = g
		}
		fb := c.nodes[f].e.b
		for _, g := range replicaRecords(t, fb, 0) {
			if produced[g.off] != g {
				t.Fatalf("follower holds %+v, produced %+v", g, produced[g.off])
			}
		}
		c.compactReplica(f, h, false, func(got) bool { return true })
	})
}
