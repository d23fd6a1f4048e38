package broker

// Retention, raft snapshots and DeleteRecords on replicated partitions, on the real engine and
// raftstore (three brokers on a replica.LocalNet, virtual time).

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/broker/replica/raftstore"
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
		if fl.StartOffset() <= lb.StartOffset() {
			t.Fatalf("follower's log starts at %d, leader's at %d: no snapshot installed", fl.StartOffset(), lb.StartOffset())
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
