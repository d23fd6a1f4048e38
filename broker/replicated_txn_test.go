package broker

// Transactions on replicated partitions, on the real engine and raftstore (three brokers on
// a replica.LocalNet, virtual time).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/txn"
	"github.com/meshkafka/meshkafka/wal/waltest"
	"github.com/twmb/franz-go/pkg/kerr"
)

// useCoordinatorOf makes every broker of c verify transactional batches with broker id's
// transaction coordinator (as the controller does in a cluster).
func (c *raftCluster) useCoordinatorOf(id uint64) {
	co := c.nodes[id].e.b
	for _, n := range c.nodes {
		n.e.b.SetTxnVerifier(func(_ context.Context, pid int64, epoch int16, tp txn.TP) int16 {
			return co.txn.Verify(pid, epoch, tp)
		})
	}
}

// isoState reads r-0 from its log start through e at both isolation levels and renders
// what a consumer sees (values and the last stable offset).
func isoState(e *env) string {
	e.t.Helper()
	from := listOffset(e.t, e.b, -2, -1).Offset
	c, lso := readIsoFrom(e, from, 1)
	u, _ := readIsoFrom(e, from, 0)
	return fmt.Sprintf("committed %q lso %d; uncommitted %q", c, lso, u)
}

// readIsoFrom reads r-0 from offset from to its end with isolation level iso: the data
// records' values (first 8 bytes) and the last stable offset.
func readIsoFrom(e *env, from int64, iso int8) (values []string, lso int64) {
	e.t.Helper()
	for {
		resp, err := e.b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1 << 30, IsolationLevel: iso,
			Partitions: []brokerop.FetchPartition{{Topic: "r", Partition: 0, Offset: from, MaxBytes: 1 << 20}}})
		if err != nil {
			e.t.Fatal(err)
		}
		r := resp.Partitions[0]
		if r.ErrorCode != 0 {
			e.t.Fatalf("fetch r-0@%d: code %d", from, r.ErrorCode)
		}
		lso = r.LastStableOffset
		if len(r.Records) == 0 {
			return values, lso
		}
		forEachBatch(r.Records, func(batch []byte) {
			h := readBatchHead(batch)
			if h.attrs&attrControl == 0 {
				offs, vs := decodeBatches(e.t, batch)
				for i := range offs {
					if offs[i] >= from {
						values = append(values, vs[i][:min(len(vs[i]), 8)])
					}
				}
			}
			from = max(from, h.baseOffset+int64(h.delta)+1)
		})
	}
}

// Markers are raft entries, and every replica derives open transactions, the LSO and the
// aborted list from what it applied: after a failover the new leader serves read_committed
// exactly as the old one did (aborted data hidden, open transaction holding the LSO back),
// takes the open transaction's commit marker, and the old leader refuses markers.
func TestReplicatedTxnReadCommittedAcrossFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, nil)
		l := c.leader(0)
		c.useCoordinatorOf(l)
		le := c.nodes[l].e
		pb, eb, open := le.txnHistory("r", func(int64, int16) {})
		le.wantIsolation("r", open)
		before := isoState(le)

		// Failover: the other replicas applied the same entries.
		f := c.others(l)[0]
		c.moveLeader(0, f)
		fe := c.nodes[f].e
		if after := isoState(fe); after != before {
			t.Fatalf("new leader serves\n%s\nold leader served\n%s", after, before)
		}
		if got := fe.listLatest("r", 0, 1); got != open {
			t.Fatalf("new leader: ListOffsets read_committed %d, want %d", got, open)
		}
		// The old leader is a follower now: markers must go to the leader.
		err := le.b.WriteTxnMarkers(context.Background(), pb, eb, true, []txn.TP{{Topic: "r", Partition: 0}})
		if !errors.Is(err, ErrNotPartitionLeader) {
			t.Fatalf("marker on a follower: %v, want ErrNotPartitionLeader", err)
		}
		if err := fe.b.WriteTxnMarkers(context.Background(), pb, eb, true, []txn.TP{{Topic: "r", Partition: 0}}); err != nil {
			t.Fatalf("marker on the new leader: %v", err)
		}
		got, lso, hw := fe.readIso("r", 0, 1)
		if want := []string{"c1", "c2", "plain", "open"}; !slices.Equal(got, want) || lso != hw {
			t.Fatalf("after commit on the new leader: %q lso %d hw %d, want %q", got, lso, hw, want)
		}
		// Every replica applied the marker: the third one, leading, serves the same.
		// (No open transaction: the LSO is the high watermark, which the new leader's own
		// first entry moves.)
		o := c.others(l)[1]
		c.moveLeader(0, o)
		oe := c.nodes[o].e
		if got, lso := readIsoFrom(oe, 0, 1); !slices.Equal(got, []string{"c1", "c2", "plain", "open"}) || lso != oe.listLatest("r", 0, 0) {
			t.Fatalf("third replica serves read_committed %q lso %d", got, lso)
		}
	})
}

// A follower that catches up by snapshot (retention removed the entries it missed) gets the
// open transactions and the aborted list from the snapshot data: once it leads, it hides
// the aborted transaction and holds the LSO at the open one, as the leader did.
func TestReplicatedTxnStateInSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, map[string]string{
			"segment.bytes": "1024", "retention.bytes": "2048", "retention.ms": "-1"})
		l := c.leader(0)
		c.useCoordinatorOf(l)
		f, o := c.others(l)[0], c.others(l)[1]
		le := c.nodes[l].e
		c.net.Isolate(f)
		c.waitUntilInactive(l, f)

		for i := range 25 {
			le.mustProduce(-1, "r", 0, idemBatch(77, 0, int32(i), big(i)))
		}
		pa, ea := le.initTxn("a", 600000)
		le.addParts("a", pa, ea, "r", 0)
		for i := range 3 {
			le.mustProduce(-1, "r", 0, txnBatch(pa, ea, int32(i), "ab-"+big(i)))
		}
		if code := le.endTxn("a", pa, ea, false); code != 0 {
			t.Fatalf("abort: %d", code)
		}
		pb, eb := le.initTxn("b", 600000)
		le.addParts("b", pb, eb, "r", 0)
		open := le.mustProduce(-1, "r", 0, txnBatch(pb, eb, 0, "open"))
		le.mustProduce(-1, "r", 0, idemBatch(77, 0, 25, "tail"))
		for _, id := range []uint64{l, o} {
			enforceRetention(t, c.nodes[id].e.b, fmt.Sprint("broker ", id))
		}
		before := isoState(le)
		if !strings.Contains(before, fmt.Sprintf("lso %d", open)) {
			t.Fatalf("leader: %s, want lso %d", before, open)
		}
		c.net.Heal()
		lb := le.b.lookup("r", 0).log
		fl := c.nodes[f].e.b.lookup("r", 0).log
		waitFor(t, func() bool { return fl.NextOffset() == lb.NextOffset() })
		if snap, err := c.store(f, 0).Snapshot(); err != nil || snap.GetMetadata().GetIndex() == 0 {
			t.Fatalf("follower installed no snapshot (%v)", err)
		}
		c.moveLeader(0, f)
		if after := isoState(c.nodes[f].e); after != before {
			t.Fatalf("after snapshot install the new leader serves\n%s\nthe old leader served\n%s", after, before)
		}
		// The aborted transaction's data that the new leader still holds is hidden from
		// read_committed and served to read_uncommitted.
		if s := isoState(c.nodes[f].e); strings.Contains(strings.Split(s, ";")[0], "ab-") || !strings.Contains(strings.Split(s, ";")[1], "ab-") {
			t.Fatalf("aborted data served to read_committed: %s", s)
		}
	})
}

// leaderMarkers is a transaction coordinator's MarkerWriter that writes into whichever
// broker of c leads partition 0 of "r" (the controller's routing, in a test).
type leaderMarkers struct{ c *raftCluster }

func (m leaderMarkers) WriteTxnMarkers(ctx context.Context, pid int64, epoch int16, commit bool, parts []txn.TP) error {
	return m.c.nodes[m.c.leader(0)].e.b.WriteTxnMarkers(ctx, pid, epoch, commit, parts)
}

// Power cuts (torn writes) of the partition leader between transactions and with one
// open: each restarted replica rebuilds open transactions, the LSO and the aborted list from
// its own log, the open transaction is committed through the next leader, and in the end
// every replica, leading in turn, serves read_committed exactly the committed records in
// order (the aborted ones only to read_uncommitted).
func TestReplicatedTxnLeaderCrashes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, nil)
		ids := int64(1000)
		co, err := txn.Open(txn.CoordinatorConfig{Dir: "/txn", FS: waltest.NewCrashFS(), CheckInterval: -1,
			NewPID: func() (int64, error) { ids++; return ids, nil }, Markers: leaderMarkers{c}})
		if err != nil {
			t.Fatal(err)
		}
		defer co.Close()
		verify := func(_ context.Context, pid int64, epoch int16, tp txn.TP) int16 { return co.Verify(pid, epoch, tp) }
		for _, n := range c.nodes {
			n.e.b.SetTxnVerifier(verify)
		}
		tear := rand.New(rand.NewPCG(3, 4))
		powerCut := func(id uint64) {
			c.crash(id, tear)
			c.restart(id)
			c.nodes[id].e.b.SetTxnVerifier(verify)
		}
		ctx := context.Background()
		pid, epoch, code := co.InitProducerID(ctx, "p", 600000, -1, -1)
		if code != 0 {
			t.Fatalf("init: %d", code)
		}
		tp := []txn.TP{{Topic: "r", Partition: 0}}
		seq := int32(0)
		var committed, all []string
		produce := func(v string) {
			t.Helper()
			batch := txnBatch(pid, epoch, seq, v)
			r := produceTo(t, c.nodes[c.leader(0)].e.b, -1, 0, slices.Clone(batch))
			for r.ErrorCode != 0 {
				if r.ErrorCode != kerr.NotLeaderForPartition.Code && r.ErrorCode != kerr.RequestTimedOut.Code {
					t.Fatalf("produce %s: %+v", v, r)
				}
				r = produceTo(t, c.nodes[c.leader(0)].e.b, -1, 0, slices.Clone(batch))
			}
			seq++
			all = append(all, v)
		}
		end := func(commit bool, vs []string) {
			t.Helper()
			for code := co.End(ctx, "p", pid, epoch, commit); code != 0; code = co.End(ctx, "p", pid, epoch, commit) {
				if code != txn.ErrConcurrentTransactions {
					t.Fatalf("end: %d", code)
				}
				co.Check(ctx)
			}
			if commit {
				committed = append(committed, vs...)
			}
		}
		for round := range 6 {
			if code := co.AddPartitions(ctx, "p", pid, epoch, tp); code != 0 {
				t.Fatalf("add: %d", code)
			}
			vs := []string{fmt.Sprintf("t%d-a", round), fmt.Sprintf("t%d-b", round)}
			for _, v := range vs {
				produce(v)
			}
			if round%2 == 1 { // a power cut of the leader with the transaction open
				powerCut(c.leader(0))
			}
			end(round%3 != 2, vs)
			powerCut(c.leader(0))
		}
		want := fmt.Sprintf("committed %q", committed)
		for id := range c.nodes {
			c.moveLeader(0, id)
			e := c.nodes[id].e
			got, lso := readIsoFrom(e, 0, 1)
			if s := fmt.Sprintf("committed %q", got); s != want || lso != e.listLatest("r", 0, 0) {
				t.Fatalf("replica %d serves %s lso %d, want %s", id, s, lso, want)
			}
			if u, _ := readIsoFrom(e, 0, 0); !slices.Equal(u, all) {
				t.Fatalf("replica %d read_uncommitted %q, want %q", id, u, all)
			}
		}
	})
}
