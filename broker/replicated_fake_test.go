package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/twmb/franz-go/pkg/kerr"
)

// fakeCluster is brokers 1..n replicating topic "r" (one partition, RF n) on a fakeNet.
type fakeCluster struct {
	t    testing.TB
	net  *fakeNet
	envs map[uint64]*env
	gid  replica.GroupID
	rec  TopicRecord
}

func newFakeCluster(t testing.TB, n int, configs map[string]string) *fakeCluster {
	t.Helper()
	c := &fakeCluster{t: t, net: newFakeNet(), envs: map[uint64]*env{}}
	var ids []uint64
	for i := range n {
		ids = append(ids, uint64(i+1))
	}
	c.rec = TopicRecord{Name: "r", ID: TopicID{9, 9}, Partitions: 1, Configs: configs, Replicas: [][]uint64{ids}}
	c.gid = replica.GroupID{Topic: c.rec.ID, Partition: 0}
	for _, id := range ids {
		e := newEnv(t, func(cfg *Config) {
			cfg.RaftStorage = openFakeRaftStorage
			cfg.ReplicaCheckInterval = -1
		})
		if err := e.b.SetReplication(c.net.engine(id), id); err != nil {
			t.Fatal(err)
		}
		if err := e.b.SyncTopics([]TopicRecord{c.rec}); err != nil {
			t.Fatal(err)
		}
		c.envs[id] = e
	}
	c.net.elect(t, c.gid, 1)
	return c
}

// dataValues reads partition 0 of "r" through broker id, skipping control batches.
func (c *fakeCluster) dataValues(id uint64) (offsets []int64, values []string) {
	c.t.Helper()
	return readData(c.t, c.envs[id].b, "r", 0)
}

// readData fetches a partition from offset 0 to its high watermark and decodes the records
// of its data batches (control batches skipped).
func readData(t testing.TB, b *Broker, topic string, part int32) (offsets []int64, values []string) {
	t.Helper()
	return readDataFrom(t, b, topic, part, 0)
}

// readDataFrom is readData from offset from.
func readDataFrom(t testing.TB, b *Broker, topic string, part int32, from int64) (offsets []int64, values []string) {
	t.Helper()
	for {
		resp, err := b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1 << 30, Partitions: []brokerop.FetchPartition{
			{Topic: topic, Partition: part, Offset: from, MaxBytes: 1 << 20}}})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.Partitions[0]
		if r.ErrorCode != 0 {
			t.Fatalf("fetch %s-%d@%d: code %d", topic, part, from, r.ErrorCode)
		}
		if len(r.Records) == 0 {
			return offsets, values
		}
		var last int64
		forEachBatch(r.Records, func(batch []byte) {
			h := readBatchHead(batch)
			last = h.baseOffset + int64(h.delta)
			if h.attrs&attrControl != 0 {
				return
			}
			o, v := decodeBatches(t, batch)
			for i := range o {
				if o[i] >= from {
					offsets, values = append(offsets, o[i]), append(values, v[i])
				}
			}
		})
		if last >= r.HighWatermark {
			t.Fatalf("fetch returned offset %d at or past the high watermark %d", last, r.HighWatermark)
		}
		from = last + 1
	}
}

// logEntries lists (base offset, first value) of every data entry in broker id's log.
func (c *fakeCluster) logEntries(id uint64) []string {
	c.t.Helper()
	return logEntries(c.t, c.envs[id].b, "r", 0)
}

func TestReplicatedProduceAndFetchOnlyOnLeader(t *testing.T) {
	c := newFakeCluster(t, 3, nil)
	leader, follower := c.envs[1], c.envs[2]
	base := leader.mustProduce(-1, "r", 0, makeBatch(false, vals(1000, "a", "b")...))
	if base != 1 { // offset 0 is the first leader's empty entry
		t.Fatalf("base offset %d, want 1", base)
	}
	follower.wantCode(follower.produce(-1, "r", 0, makeBatch(false, vals(1000, "x")...)), kerr.NotLeaderForPartition)
	if r := follower.fetch("r", 0, 0, 1<<20); r.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("follower fetch: code %d, want NOT_LEADER_OR_FOLLOWER", r.ErrorCode)
	}
	if _, v := c.dataValues(1); !slices.Equal(v, []string{"a", "b"}) {
		t.Fatalf("leader serves %q", v)
	}
	// Every replica holds the same entries at the same offsets.
	want := c.logEntries(1)
	for id := range c.envs {
		if got := c.logEntries(id); !slices.Equal(got, want) {
			t.Fatalf("replica %d log %q, leader's %q", id, got, want)
		}
	}
	// A client may not write control batches.
	ctl := markerBatch(-1, -1, true, 0)
	leader.wantCode(leader.produce(-1, "r", 0, ctl), kerr.InvalidRecord)
	// A transactional batch of a producer without a transaction is refused (the
	// coordinator verifies it; replicated_txn_test.go has the transactions).
	tx := idemBatch(7, 0, 0, "t")
	tx[offAttributes+1] |= attrTransactional
	fixCRC(tx)
	leader.wantCode(leader.produce(-1, "r", 0, tx), kerr.InvalidProducerIDMapping)
}

func TestReplicatedReadsStopAtHighWatermark(t *testing.T) {
	c := newFakeCluster(t, 3, nil)
	e := c.envs[1]
	e.mustProduce(-1, "r", 0, makeBatch(false, vals(1000, "a")...))
	c.net.setHold(c.gid, true)
	base := e.mustProduce(1, "r", 0, makeBatch(false, vals(2000, "b")...)) // acks=1: durable here
	if base != 2 {
		t.Fatalf("acks=1 base offset %d, want 2", base)
	}
	if _, v := c.dataValues(1); !slices.Equal(v, []string{"a"}) {
		t.Fatalf("uncommitted data served: %q", v)
	}
	if r := e.fetch("r", 0, 2, 1<<20); r.ErrorCode != 0 || len(r.Records) != 0 || r.HighWatermark != 2 {
		t.Fatalf("fetch at the uncommitted offset: code %d, %d bytes, hw %d", r.ErrorCode, len(r.Records), r.HighWatermark)
	}
	if r := e.fetch("r", 0, 4, 1<<20); r.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch past the log end: code %d", r.ErrorCode)
	}
	if got := listOffset(t, e.b, -1, 0); got.Offset != 2 {
		t.Fatalf("ListOffsets latest %d, want the high watermark 2", got.Offset)
	}
	if got := listOffset(t, e.b, 2000, 0); got.Offset != -1 {
		t.Fatalf("ListOffsets by the uncommitted record's timestamp: %d, want -1", got.Offset)
	}
	c.net.setHold(c.gid, false)
	if _, v := c.dataValues(1); !slices.Equal(v, []string{"a", "b"}) {
		t.Fatalf("after commit: %q", v)
	}
	if got := listOffset(t, e.b, 2000, 0); got.Offset != 2 {
		t.Fatalf("ListOffsets by timestamp after commit: %d, want 2", got.Offset)
	}
}

// An acks=all produce is answered only once its entry is committed; a long poll wakes when
// it is.
func TestReplicatedAcksAllWaitsForCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster(t, 3, nil)
		e := c.envs[1]
		c.net.setHold(c.gid, true)
		done := make(chan brokerop.ProducePartitionResp, 1)
		go func() { done <- e.produce(-1, "r", 0, makeBatch(false, vals(1000, "a")...)) }()
		fetched := make(chan brokerop.FetchPartitionResp, 1)
		go func() {
			resp, _ := e.b.Fetch(context.Background(), &brokerop.FetchReq{MaxWaitMs: 60_000, MinBytes: 1, MaxBytes: 1 << 20,
				Partitions: []brokerop.FetchPartition{{Topic: "r", Partition: 0, Offset: 1, MaxBytes: 1 << 20}}})
			fetched <- resp.Partitions[0]
		}()
		synctest.Wait()
		notYet(t, done, "acks=all answered before commit")
		notYet(t, fetched, "fetch answered uncommitted data")
		c.net.setHold(c.gid, false)
		if r := <-done; r.ErrorCode != 0 || r.BaseOffset != 1 {
			t.Fatalf("acks=all after commit: %+v", r)
		}
		if r := <-fetched; r.ErrorCode != 0 || len(r.Records) == 0 || r.HighWatermark != 2 {
			t.Fatalf("long poll after commit: code %d, %d bytes, hw %d", r.ErrorCode, len(r.Records), r.HighWatermark)
		}
	})
}

// A batch whose leader lost leadership before it committed gets NOT_LEADER_OR_FOLLOWER
// (outcome unknown); the producer's retry to the new leader is recognised as the stored
// batch, so the record is in the log once, at its first offset.
func TestReplicatedFailoverDeduplicatesRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster(t, 3, nil)
		old := c.envs[1]
		pid := int64(42)
		old.mustProduce(-1, "r", 0, idemBatch(pid, 0, 0, "a"))
		c.net.setHold(c.gid, true)
		done := make(chan brokerop.ProducePartitionResp, 1)
		go func() { done <- old.produce(-1, "r", 0, idemBatch(pid, 0, 1, "b")) }()
		synctest.Wait()
		c.net.setUp(c.gid, 1, false)
		c.net.elect(t, c.gid, 2) // the entry of "b" is on replica 2: committed by its term
		c.net.setHold(c.gid, false)
		if r := <-done; r.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("old leader answered %+v, want NOT_LEADER_OR_FOLLOWER", r)
		}
		nl := c.envs[2]
		if base := nl.mustProduce(-1, "r", 0, idemBatch(pid, 0, 1, "b")); base != 2 {
			t.Fatalf("retry answered base %d, want the stored batch's 2", base)
		}
		nl.wantCode(nl.produce(-1, "r", 0, idemBatch(pid, 0, 5, "z")), kerr.OutOfOrderSequenceNumber)
		nl.mustProduce(-1, "r", 0, idemBatch(pid, 0, 2, "c"))
		if _, v := c.dataValues(2); !slices.Equal(v, []string{"a", "b", "c"}) {
			t.Fatalf("new leader serves %q", v)
		}
	})
}

// Idempotent batches in flight (stored here, not committed) count for the sequence checks:
// a pipelined producer's next batch is accepted, a retry of an in-flight one is answered
// with its offset without a second copy, and an acks=all retry waits for the original.
func TestReplicatedInflightIdempotence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster(t, 3, nil)
		e := c.envs[1]
		c.net.setHold(c.gid, true)
		if base := e.mustProduce(1, "r", 0, idemBatch(5, 0, 0, "a", "b")); base != 1 {
			t.Fatalf("first: %d", base)
		}
		if base := e.mustProduce(1, "r", 0, idemBatch(5, 0, 2, "c")); base != 3 {
			t.Fatalf("pipelined: %d", base)
		}
		if base := e.mustProduce(1, "r", 0, idemBatch(5, 0, 0, "a", "b")); base != 1 {
			t.Fatalf("in-flight retry: %d", base)
		}
		e.wantCode(e.produce(1, "r", 0, idemBatch(5, 0, 9, "x")), kerr.OutOfOrderSequenceNumber)
		done := make(chan brokerop.ProducePartitionResp, 1)
		go func() { done <- e.produce(-1, "r", 0, idemBatch(5, 0, 2, "c")) }()
		synctest.Wait()
		notYet(t, done, "acks=all retry of an uncommitted batch answered early")
		c.net.setHold(c.gid, false)
		if r := <-done; r.ErrorCode != 0 || r.BaseOffset != 3 {
			t.Fatalf("acks=all retry: %+v", r)
		}
		if _, v := c.dataValues(1); !slices.Equal(v, []string{"a", "b", "c"}) {
			t.Fatalf("log %q", v)
		}
	})
}

func TestReplicatedMinInsyncReplicas(t *testing.T) {
	c := newFakeCluster(t, 3, map[string]string{"min.insync.replicas": "2"})
	e := c.envs[1]
	e.mustProduce(-1, "r", 0, makeBatch(false, vals(1000, "a")...))
	c.net.setUp(c.gid, 3, false)
	e.mustProduce(-1, "r", 0, makeBatch(false, vals(1000, "b")...)) // leader + 2 in sync
	c.net.setUp(c.gid, 2, false)
	e.wantCode(e.produce(-1, "r", 0, makeBatch(false, vals(1000, "c")...)), kerr.NotEnoughReplicas)
	e.mustProduce(1, "r", 0, makeBatch(false, vals(1000, "d")...)) // acks=1 does not ask for it
	// A single-owner topic with min.insync.replicas 2 has one replica: never enough.
	e.create("single", 1, map[string]string{"min.insync.replicas": "2"})
	e.wantCode(e.produce(-1, "single", 0, makeBatch(false, vals(1000, "s")...)), kerr.NotEnoughReplicas)
	e.mustProduce(1, "single", 0, makeBatch(false, vals(1000, "s")...))
}

func TestReplicatedLeaderEpochs(t *testing.T) {
	c := newFakeCluster(t, 3, nil)
	c.envs[1].mustProduce(-1, "r", 0, makeBatch(false, vals(1000, "a", "b")...)) // offsets 1, 2 (term 1)
	c.net.elect(t, c.gid, 3)                                                     // term 2 starts at offset 3
	e := c.envs[3]
	e.mustProduce(-1, "r", 0, makeBatch(false, vals(1000, "c")...)) // offset 4
	fetch := func(epoch int32) int16 {
		resp, err := e.b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{
			{Topic: "r", Partition: 0, Offset: 0, MaxBytes: 1 << 20, CurrentLeaderEpoch: epoch}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Partitions[0].ErrorCode
	}
	for epoch, want := range map[int32]int16{-1: 0, 1: kerr.FencedLeaderEpoch.Code, 2: 0, 3: kerr.UnknownLeaderEpoch.Code} {
		if got := fetch(epoch); got != want {
			t.Errorf("fetch with current leader epoch %d: code %d, want %d", epoch, got, want)
		}
	}
	if r := listOffset(t, e.b, -1, 0); r.Offset != 5 || r.LeaderEpoch != 2 {
		t.Fatalf("ListOffsets latest: offset %d epoch %d, want 5, 2", r.Offset, r.LeaderEpoch)
	}
	if r := listOffset(t, e.b, -1, 1); r.ErrorCode != kerr.FencedLeaderEpoch.Code {
		t.Fatalf("ListOffsets with a stale epoch: code %d", r.ErrorCode)
	}
	ofle := func(epoch int32) brokerop.OffsetForLeaderEpochPartitionResp {
		resp, err := e.b.OffsetForLeaderEpoch(context.Background(), &brokerop.OffsetForLeaderEpochReq{Partitions: []brokerop.OffsetForLeaderEpochPartition{
			{Topic: "r", Partition: 0, LeaderEpoch: epoch, CurrentLeaderEpoch: -1}}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Partitions[0]
	}
	for epoch, want := range map[int32][2]int64{0: {0, 0}, 1: {1, 3}, 2: {2, 5}, 3: {-1, -1}} {
		if r := ofle(epoch); r.ErrorCode != 0 || int64(r.LeaderEpoch) != want[0] || r.EndOffset != want[1] {
			t.Errorf("OffsetForLeaderEpoch(%d) = code %d epoch %d end %d, want %v", epoch, r.ErrorCode, r.LeaderEpoch, r.EndOffset, want)
		}
	}
	resp, _ := c.envs[1].b.OffsetForLeaderEpoch(context.Background(), &brokerop.OffsetForLeaderEpochReq{Partitions: []brokerop.OffsetForLeaderEpochPartition{
		{Topic: "r", Partition: 0, LeaderEpoch: 1}}})
	if resp.Partitions[0].ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("OffsetForLeaderEpoch on a follower: code %d", resp.Partitions[0].ErrorCode)
	}
}

func TestReplicatedPartitionStateHook(t *testing.T) {
	c := newFakeCluster(t, 3, nil)
	type call struct {
		leader, term uint64
		isr          []uint64
	}
	var mu sync.Mutex // the background goroutine may call the hook too (after a leader change)
	var calls []call
	b := c.envs[1].b
	b.OnPartitionState(func(topic string, p int32, leader, term uint64, isr []uint64) {
		if topic != "r" || p != 0 {
			t.Errorf("hook for %s-%d", topic, p)
		}
		mu.Lock()
		calls = append(calls, call{leader, term, isr})
		mu.Unlock()
	})
	b.CheckReplicas()
	if st := b.Stats(); st.ReplicaLeaders != 1 || st.UnderReplicated != 0 {
		t.Errorf("leader with every replica in sync: %d led, %d under-replicated; want 1, 0", st.ReplicaLeaders, st.UnderReplicated)
	}
	b.CheckReplicas() // nothing changed: no call
	c.net.setUp(c.gid, 2, false)
	b.CheckReplicas()
	if st := b.Stats(); st.ReplicaLeaders != 1 || st.UnderReplicated != 1 {
		t.Errorf("leader with a replica down: %d led, %d under-replicated; want 1, 1", st.ReplicaLeaders, st.UnderReplicated)
	}
	c.envs[2].b.CheckReplicas() // a follower reports nothing
	if st := c.envs[2].b.Stats(); st.ReplicaLeaders != 0 || st.UnderReplicated != 0 {
		t.Errorf("follower: %d led, %d under-replicated; want 0, 0", st.ReplicaLeaders, st.UnderReplicated)
	}
	want := []call{{1, 1, []uint64{1, 2, 3}}, {1, 1, []uint64{1, 3}}}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != len(want) {
		t.Fatalf("hook calls %+v, want %+v", calls, want)
	}
	for i := range want {
		if calls[i].leader != want[i].leader || calls[i].term != want[i].term || !slices.Equal(calls[i].isr, want[i].isr) {
			t.Fatalf("hook calls %+v, want %+v", calls, want)
		}
	}
}

func listOffset(t testing.TB, b *Broker, ts int64, epoch int32) brokerop.ListOffsetsPartitionResp {
	t.Helper()
	resp, err := b.ListOffsets(context.Background(), &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{
		{Topic: "r", Partition: 0, Timestamp: ts, CurrentLeaderEpoch: epoch}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Partitions[0]
}

func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// FuzzDescribeEntry: the raft storage's Describe reads entries a leader sent; whatever the
// bytes, it must not panic, and on a payload ValidateBatches accepts it must agree with it.
func FuzzDescribeEntry(f *testing.F) {
	f.Add(makeBatch(false, vals(1000, "a", "b")...))
	f.Add(append(makeBatch(false, vals(1000, "a")...), makeBatch(true, vals(2000, "b", "c")...)...))
	f.Add(markerBatch(1, 0, true, 5))
	f.Add([]byte{})
	f.Add(make([]byte, batchHeaderLen))
	f.Fuzz(func(t *testing.T, data []byte) {
		count, maxTs, err := describeEntry(data)
		sum, verr := ValidateBatches(data, -1)
		if verr != nil {
			return
		}
		if err != nil || count != sum.Records || maxTs != sum.MaxTimestamp {
			t.Fatalf("describeEntry = %d, %d, %v; ValidateBatches = %+v", count, maxTs, err, sum)
		}
	})
}
