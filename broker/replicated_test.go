package broker

// Replicated partitions on the real partition raft engine (package broker/replica): three
// brokers, each with its own data directory and engine, on one in-memory replica.LocalNet,
// in virtual time (testing/synctest): elections and timeouts take no wall-clock time and
// every run is the same.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.etcd.io/raft/v3/raftpb"
)

// raftCluster is brokers 1..n replicating the partitions of topic "r" (RF n) on a LocalNet.
type raftCluster struct {
	t     *testing.T
	net   *replica.LocalNet
	nodes map[uint64]*raftNode
	rec   TopicRecord
}

type raftNode struct {
	e   *env
	eng *replica.Engine
	up  bool
}

func newRaftCluster(t *testing.T, n int, partitions int32, configs map[string]string) *raftCluster {
	t.Helper()
	c := &raftCluster{t: t, net: replica.NewLocalNet(), nodes: map[uint64]*raftNode{}}
	t.Cleanup(c.net.Close)
	var ids []uint64
	for i := range n {
		ids = append(ids, uint64(i+1))
	}
	reps := make([][]uint64, partitions)
	for p := range reps {
		reps[p] = ids
	}
	c.rec = TopicRecord{Name: "r", ID: TopicID{7, 7}, Partitions: partitions, Configs: configs, Replicas: reps}
	for _, id := range ids {
		c.start(id)
	}
	return c
}

// start opens broker id with its engine and joins it to the net.
func (c *raftCluster) start(id uint64) {
	c.t.Helper()
	n := &raftNode{}
	c.nodes[id] = n
	n.e = newEnv(c.t, func(cfg *Config) {
		cfg.ReplicaCheckInterval = -1
		cfg.CleanerBackoff = -1 // tests run the log cleaner themselves
		// The cluster's topics, as the metadata quorum's registry gives them at Open.
		cfg.Registry = &clusterRegistry{st: RegistryState{ClusterID: "c", Topics: []TopicRecord{c.rec}}}
	})
	c.join(id)
}

// clusterRegistry is a Registry holding the cluster's topics in memory (the controller's
// Registry reads them from the metadata quorum).
type clusterRegistry struct {
	mu sync.Mutex
	st RegistryState
}

func (r *clusterRegistry) Load() (*RegistryState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	return &st, nil
}

func (r *clusterRegistry) Store(st *RegistryState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st = *st
	return nil
}

// restart reopens a killed broker on its data directory with a new engine.
func (c *raftCluster) restart(id uint64) {
	c.t.Helper()
	c.nodes[id].e.open()
	c.join(id)
}

func (c *raftCluster) join(id uint64) {
	c.t.Helper()
	n := c.nodes[id]
	e := n.e
	ep := c.net.Endpoint(id)
	eng, err := replica.New(replica.Config{ID: id, Transport: ep, Sync: e.b.SyncStorage,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		c.t.Fatal(err)
	}
	ep.Attach(eng)
	c.t.Cleanup(eng.Stop) // before the broker's Close (cleanups run last first)
	if err := e.b.SetReplication(eng, id); err != nil {
		c.t.Fatal(err)
	}
	if err := e.b.SyncTopics([]TopicRecord{c.rec}); err != nil {
		c.t.Fatal(err)
	}
	n.eng, n.up = eng, true
}

// kill stops broker id as a crash would (its engine first, then the broker).
func (c *raftCluster) kill(id uint64) {
	n := c.nodes[id]
	c.net.Endpoint(id).Attach(nil)
	n.eng.Stop()
	n.e.b.Close()
	n.up = false
}

// leader waits (virtual time) until one live broker serves partition p and returns its id.
func (c *raftCluster) leader(p int32) uint64 {
	c.t.Helper()
	for range 600 {
		for id, n := range c.nodes {
			if !n.up {
				continue
			}
			if g := n.e.b.lookup("r", p).group.Load(); g != nil {
				if ok, _, _ := g.leaderState(); ok {
					return id
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("no leader for r-%d after 60s", p)
	return 0
}

// entries lists a broker's log of partition p as "offset:value" (control batches "ctl").
func (c *raftCluster) entries(id uint64, p int32) []string {
	c.t.Helper()
	return logEntries(c.t, c.nodes[id].e.b, "r", p)
}

// logEntries lists b's log of topic-p as "offset:value" (control batches "ctl").
func logEntries(t testing.TB, b *Broker, topic string, p int32) []string {
	t.Helper()
	l := b.lookup(topic, p).log
	var out []string
	for off := l.StartOffset(); off < l.NextOffset(); {
		bs, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, bt := range bs {
			if readBatchHead(bt.Data).attrs&attrControl == 0 {
				_, v := decodeBatches(t, bt.Data)
				out = append(out, fmt.Sprintf("%d:%s", bt.BaseOffset, v[0]))
			} else {
				out = append(out, fmt.Sprintf("%d:ctl", bt.BaseOffset))
			}
			off = bt.LastOffset + 1
		}
	}
	return out
}

func produceTo(t testing.TB, b *Broker, acks int16, p int32, data []byte) brokerop.ProducePartitionResp {
	t.Helper()
	resp, err := b.Produce(context.Background(), &brokerop.ProduceReq{Acks: acks, Partitions: []brokerop.ProducePartition{
		{Topic: "r", Partition: p, Records: data}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Partitions[0]
}

// Acknowledged records survive the loss of the leader: the new leader serves every one of
// them at its acknowledged offset, an idempotent retry of a batch whose outcome the old
// leader could not tell is answered with the stored batch's offset (not stored twice), and
// the surviving replicas hold identical logs.
func TestReplicatedEngineFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, nil)
		l1 := c.leader(0)
		old := c.nodes[l1].e.b
		const pid = 77
		acked := map[int64]string{}
		seq := int32(0)
		for i := range 5 {
			v := fmt.Sprintf("v%d", i)
			r := produceTo(t, old, -1, 0, idemBatch(pid, 0, seq, v))
			if r.ErrorCode != 0 {
				t.Fatalf("produce %s: %+v", v, r)
			}
			if hw := listOffset(t, old, -1, 0).Offset; hw <= r.BaseOffset {
				t.Fatalf("acknowledged at offset %d, high watermark still %d", r.BaseOffset, hw)
			}
			acked[r.BaseOffset] = v
			seq++
		}
		// The followers store the next batch but their answers never reach the leader: it
		// cannot commit it, and dies not knowing.
		c.net.SetDrop(func(m replica.GroupMessage) bool {
			return m.Msg.GetTo() == l1 && m.Msg.GetType() == raftpb.MessageType_MsgAppResp
		})
		done := produceAsync(old, idemBatch(pid, 0, seq, "unknown"))
		waitFor(t, func() bool { return c.stored(0, "unknown") == 3 })
		c.kill(l1)
		if r := <-done; r.ErrorCode == 0 {
			t.Fatalf("a batch the dead leader never saw committed was acknowledged: %+v", r)
		}
		c.net.SetDrop(nil)
		l2 := c.leader(0)
		if l2 == l1 {
			t.Fatalf("dead broker %d still leads", l1)
		}
		nb := c.nodes[l2].e.b
		r := produceTo(t, nb, -1, 0, idemBatch(pid, 0, seq, "unknown"))
		if r.ErrorCode != 0 {
			t.Fatalf("retry: %+v", r)
		}
		acked[r.BaseOffset] = "unknown"
		seq++
		r = produceTo(t, nb, -1, 0, idemBatch(pid, 0, seq, "after"))
		if r.ErrorCode != 0 {
			t.Fatalf("after failover: %+v", r)
		}
		acked[r.BaseOffset] = "after"
		offsets, values := readData(t, nb, "r", 0)
		if len(values) != len(acked) {
			t.Fatalf("new leader serves %q at %v, acknowledged %v", values, offsets, acked)
		}
		for i, off := range offsets {
			if acked[off] != values[i] {
				t.Fatalf("offset %d holds %q, acknowledged %q", off, values[i], acked[off])
			}
		}
		// Both survivors hold the same entries at the same offsets.
		var live []uint64
		for id, n := range c.nodes {
			if n.up {
				live = append(live, id)
			}
		}
		waitFor(t, func() bool { return slices.Equal(c.entries(live[0], 0), c.entries(live[1], 0)) })
	})
}

// stored counts the live brokers whose log of p holds a data record with value v.
func (c *raftCluster) stored(p int32, v string) int {
	n := 0
	for id, node := range c.nodes {
		if node.up && slices.ContainsFunc(c.entries(id, p), func(s string) bool { return len(s) > len(v) && s[len(s)-len(v)-1:] == ":"+v }) {
			n++
		}
	}
	return n
}

// min.insync.replicas counts the replicas the leader hears from and that keep up; acks=1
// does not ask for it.
func TestReplicatedEngineMinInsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, map[string]string{"min.insync.replicas": "3"})
		l := c.leader(0)
		b := c.nodes[l].e.b
		g := b.lookup("r", 0).group.Load()
		waitISR := func(n int) {
			t.Helper()
			waitFor(t, func() bool { isr, _, _ := g.isr(b.cfg.Now()); return len(isr) == n })
		}
		waitISR(3) // a new leader hears from its followers one by one
		var mu sync.Mutex
		var last []uint64
		var lastLeader, lastTerm uint64
		b.OnPartitionState(func(topic string, p int32, leader, term uint64, isr []uint64) {
			mu.Lock()
			defer mu.Unlock()
			lastLeader, lastTerm, last = leader, term, isr
		})
		reported := func() (uint64, uint64, []uint64) {
			b.CheckReplicas()
			mu.Lock()
			defer mu.Unlock()
			return lastLeader, lastTerm, last
		}
		_, _, term := g.leaderState()
		if ld, tm, isr := reported(); ld != l || tm != term || len(isr) != 3 {
			t.Fatalf("reported leader %d term %d ISR %v, want %d, %d, all three", ld, tm, isr, l, term)
		}
		if r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, "a")...)); r.ErrorCode != 0 {
			t.Fatalf("all in sync: %+v", r)
		}
		var f uint64
		for id := range c.nodes {
			if id != l {
				f = id
				break
			}
		}
		c.net.Isolate(f)
		waitISR(2)
		if _, _, isr := reported(); len(isr) != 2 || slices.Contains(isr, f) {
			t.Fatalf("ISR reported with %d isolated: %v", f, isr)
		}
		if r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, "b")...)); r.ErrorCode != kerr.NotEnoughReplicas.Code {
			t.Fatalf("2 of 3 in sync, min.insync.replicas 3: %+v", r)
		}
		if r := produceTo(t, b, 1, 0, makeBatch(false, vals(1000, "c")...)); r.ErrorCode != 0 {
			t.Fatalf("acks=1: %+v", r)
		}
		c.net.Heal()
		waitISR(3)
		if r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, "d")...)); r.ErrorCode != 0 {
			t.Fatalf("healed: %+v", r)
		}
		if _, v := readData(t, b, "r", 0); !slices.Equal(v, []string{"a", "c", "d"}) {
			t.Fatalf("log %q", v)
		}
	})
}

// A follower that was down catches up when it comes back, and can then take over: nothing
// acknowledged while it was away is lost.
func TestReplicatedEngineFollowerRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, nil)
		l := c.leader(0)
		b := c.nodes[l].e.b
		var want []string
		produce := func(b *Broker, v string) {
			t.Helper()
			if r := produceTo(t, b, -1, 0, makeBatch(false, vals(1000, v)...)); r.ErrorCode != 0 {
				t.Fatalf("produce %s: %+v", v, r)
			}
			want = append(want, v)
		}
		produce(b, "a")
		const pid = 9
		last := idemBatch(pid, 0, 0, "idem")
		r := produceTo(t, b, -1, 0, slices.Clone(last))
		if r.ErrorCode != 0 {
			t.Fatalf("idempotent produce: %+v", r)
		}
		idemOffset := r.BaseOffset
		want = append(want, "idem")
		var f uint64
		for id := range c.nodes {
			if id != l {
				f = id
				break
			}
		}
		c.kill(f)
		for i := range 20 {
			produce(b, fmt.Sprintf("while-down-%d", i))
		}
		c.restart(f)
		waitFor(t, func() bool { return slices.Equal(c.entries(f, 0), c.entries(l, 0)) })
		// The restarted replica rebuilt the producer state from the log: led by it, a retry
		// of the batch acknowledged before its restart is answered with the stored offset.
		c.moveLeader(0, f)
		if r := produceTo(t, c.nodes[f].e.b, -1, 0, slices.Clone(last)); r.ErrorCode != 0 || r.BaseOffset != idemOffset {
			t.Fatalf("retry through the restarted replica: %+v, want base offset %d", r, idemOffset)
		}
		// Kill the leader: the others take over, with everything acknowledged.
		c.kill(f)
		nl := c.leader(0)
		produce(c.nodes[nl].e.b, "b")
		if _, got := readData(t, c.nodes[nl].e.b, "r", 0); !slices.Equal(got, want) {
			t.Fatalf("new leader %d serves %q, want %q", nl, got, want)
		}
	})
}

// waitFor polls cond in virtual time (synctest), failing after a minute of it.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for range 600 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("condition not met after 60s")
}

// A leader cut off from the others never acknowledges an acks=all produce (it steps down and
// answers NOT_LEADER_OR_FOLLOWER); acks=1 is acknowledged by it alone, as Kafka's acks=1 is,
// and lost when the majority moves on without it; the majority elects a leader that serves
// neither.
func TestReplicatedEngineIsolatedLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, nil)
		l := c.leader(0)
		old := c.nodes[l].e.b
		if r := produceTo(t, old, -1, 0, makeBatch(false, vals(1000, "a")...)); r.ErrorCode != 0 {
			t.Fatalf("produce: %+v", r)
		}
		c.net.Isolate(l)
		if r := produceTo(t, old, 1, 0, makeBatch(false, vals(1000, "acks1")...)); r.ErrorCode != 0 {
			t.Fatalf("acks=1 on the isolated leader: %+v", r)
		}
		if r := produceTo(t, old, -1, 0, makeBatch(false, vals(1000, "lost")...)); r.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("acks=all on the isolated leader: %+v, want NOT_LEADER_OR_FOLLOWER", r)
		}
		// It stops serving reads too (the engine tells it in the same round).
		waitFor(t, func() bool {
			_, _, code := old.lookup("r", 0).serving(-1)
			return code == kerr.NotLeaderForPartition.Code
		})
		var nl uint64
		waitFor(t, func() bool {
			for id, n := range c.nodes {
				if id != l {
					if ok, _, _ := n.e.b.lookup("r", 0).group.Load().leaderState(); ok {
						nl = id
						return true
					}
				}
			}
			return false
		})
		nb := c.nodes[nl].e.b
		if r := produceTo(t, nb, -1, 0, makeBatch(false, vals(1000, "b")...)); r.ErrorCode != 0 {
			t.Fatalf("produce to the new leader: %+v", r)
		}
		if _, v := readData(t, nb, "r", 0); !slices.Equal(v, []string{"a", "b"}) {
			t.Fatalf("new leader serves %q", v)
		}
		// Healed, the old leader drops its uncommitted tail and holds the new leader's log.
		c.net.Heal()
		waitFor(t, func() bool { return slices.Equal(c.entries(l, 0), c.entries(nl, 0)) })
		for _, e := range c.entries(l, 0) {
			if strings.HasSuffix(e, ":lost") || strings.HasSuffix(e, ":acks1") {
				t.Fatalf("the old leader kept %s", e)
			}
		}
	})
}

// crash stops broker id as a power cut would: its engine, then everything not fsynced is
// lost (torn with tear), then the broker's handles go.
func (c *raftCluster) crash(id uint64, tear *rand.Rand) {
	n := c.nodes[id]
	c.net.Endpoint(id).Attach(nil)
	n.eng.Stop()
	if tear != nil {
		n.e.fs.CrashTear(tear)
	} else {
		n.e.fs.Crash()
	}
	n.e.b.Close()
	n.up = false
}

// Power cuts of the leader, one after the other, while an idempotent producer writes with
// acks=all and retries what was not acknowledged: every acknowledged record is served once,
// at its acknowledged offset, and the three replicas end with identical logs.
func TestReplicatedEngineLeaderCrashes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, nil)
		tear := rand.New(rand.NewPCG(1, 2))
		const pid = 5
		acked := map[int64]string{}
		seq := int32(0)
		for round := range 10 {
			l := c.leader(0)
			b := c.nodes[l].e.b
			for i := range 3 {
				v := fmt.Sprintf("r%d-%d", round, i)
				batch := idemBatch(pid, 0, seq, v)
				r := produceTo(t, b, -1, 0, slices.Clone(batch))
				for r.ErrorCode != 0 { // retry (through whichever broker leads) until acknowledged
					nb := c.nodes[c.leader(0)].e.b
					r = produceTo(t, nb, -1, 0, slices.Clone(batch))
				}
				if prev, ok := acked[r.BaseOffset]; ok && prev != v {
					t.Fatalf("offset %d acknowledged for %q and %q", r.BaseOffset, prev, v)
				}
				acked[r.BaseOffset] = v
				seq++
			}
			// One more batch in flight when the power goes.
			v := fmt.Sprintf("r%d-inflight", round)
			batch := idemBatch(pid, 0, seq, v)
			done := produceAsync(b, batch)
			c.crash(l, tear)
			r := <-done
			for r.ErrorCode != 0 {
				r = produceTo(t, c.nodes[c.leader(0)].e.b, -1, 0, slices.Clone(batch))
			}
			acked[r.BaseOffset] = v
			seq++
			c.restart(l)
		}
		l := c.leader(0)
		offsets, values := readData(t, c.nodes[l].e.b, "r", 0)
		if len(values) != len(acked) {
			t.Fatalf("leader serves %d records, %d acknowledged", len(values), len(acked))
		}
		for i, off := range offsets {
			if acked[off] != values[i] {
				t.Fatalf("offset %d holds %q, acknowledged %q", off, values[i], acked[off])
			}
		}
		for id := range c.nodes {
			waitFor(t, func() bool { return slices.Equal(c.entries(id, 0), c.entries(l, 0)) })
		}
	})
}

// produceAsync produces an acks=all batch to partition 0 of "r" in a goroutine; a broker
// closed under it answers code -1.
func produceAsync(b *Broker, batch []byte) <-chan brokerop.ProducePartitionResp {
	done := make(chan brokerop.ProducePartitionResp, 1)
	data := slices.Clone(batch)
	go func() {
		resp, err := b.Produce(context.Background(), &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
			{Topic: "r", Partition: 0, Records: data}}})
		if err != nil {
			done <- brokerop.ProducePartitionResp{ErrorCode: -1}
			return
		}
		done <- resp.Partitions[0]
	}()
	return done
}

// serves reports whether broker id serves partition p as its leader.
func (c *raftCluster) serves(id uint64, p int32) bool {
	n := c.nodes[id]
	if !n.up {
		return false
	}
	g := n.e.b.lookup("r", p).group.Load()
	if g == nil {
		return false
	}
	ok, _, _ := g.leaderState()
	return ok
}

// One produce request for several replicated partitions: each is proposed to its own group
// (concurrently) and answered on its own; a partition led elsewhere answers
// NOT_LEADER_OR_FOLLOWER without failing the others.
func TestReplicatedEngineManyPartitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const parts = 4
		c := newRaftCluster(t, 3, parts, nil)
		for p := range int32(parts - 1) {
			c.moveLeader(p, 1)
		}
		c.moveLeader(parts-1, 2) // the last one is led by another broker
		b := c.nodes[1].e.b
		req := &brokerop.ProduceReq{Acks: -1}
		for p := range int32(parts) {
			req.Partitions = append(req.Partitions, brokerop.ProducePartition{Topic: "r", Partition: p,
				Records: idemBatch(int64(100+p), 0, 0, fmt.Sprintf("p%d", p))})
		}
		resp, err := b.Produce(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for p, r := range resp.Partitions {
			switch {
			case p == parts-1 && r.ErrorCode != kerr.NotLeaderForPartition.Code:
				t.Fatalf("partition %d led elsewhere: %+v", p, r)
			case p < parts-1 && r.ErrorCode != 0:
				t.Fatalf("partition %d: %+v", p, r)
			}
		}
		for p := range int32(parts - 1) {
			if _, v := readData(t, b, "r", p); !slices.Equal(v, []string{fmt.Sprintf("p%d", p)}) {
				t.Fatalf("partition %d serves %q", p, v)
			}
		}
	})
}

// moveLeader makes broker to the leader of partition p (asking the leader again while raft
// abandons a transfer) and waits until to serves it and no other broker does.
func (c *raftCluster) moveLeader(p int32, to uint64) {
	c.t.Helper()
	waitFor(c.t, func() bool {
		others := false
		for id := range c.nodes {
			if id != to && c.serves(id, p) {
				others = true
				c.nodes[id].eng.TransferLeader(replica.GroupID{Topic: c.rec.ID, Partition: p}, to)
			}
		}
		return !others && c.serves(to, p)
	})
}

// A follower that answers heartbeats but gets no log entries (its appends lost) drops out
// of the ISR once it is isrLagTime behind, however few entries it misses, and comes back
// once it has the data: in sync means caught up with the leader recently, as in Kafka.
func TestReplicatedEngineISRNeedsTheData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 1, nil)
		l := c.leader(0)
		b := c.nodes[l].e.b
		g := b.lookup("r", 0).group.Load()
		inISR := func(id uint64) bool { isr, _, _ := g.isr(b.cfg.Now()); return slices.Contains(isr, id) }
		waitFor(t, func() bool { isr, _, _ := g.isr(b.cfg.Now()); return len(isr) == 3 })
		var f uint64
		for id := range c.nodes {
			if id != l {
				f = id
				break
			}
		}
		c.net.SetDrop(func(m replica.GroupMessage) bool {
			return m.Msg.GetTo() == f && m.Msg.GetType() == raftpb.MessageType_MsgApp
		})
		for i := range 3 {
			if r := produceTo(t, b, -1, 0, makeBatch(false, vals(100, fmt.Sprint("lag", i))...)); r.ErrorCode != 0 {
				t.Fatalf("produce %d: %+v", i, r)
			}
		}
		st, _ := c.nodes[l].eng.Status(c.gid(0))
		if pr := st.Progress[f]; pr.Match >= st.Commit {
			t.Fatalf("follower %d has every entry (match %d, commit %d): the drop did not hold it back", f, pr.Match, st.Commit)
		}
		// Within the lag time it still counts; after it (heartbeats answered all along) not.
		if !inISR(f) {
			t.Fatalf("follower %d out of the ISR at once", f)
		}
		time.Sleep(2*isrLagTime + time.Second) // raft's ticks, for RecentActive
		c.nodes[l].e.clock.Advance(2*isrLagTime + time.Second)
		if st, _ := c.nodes[l].eng.Status(c.gid(0)); !st.Progress[f].RecentActive {
			t.Fatalf("follower %d not recently active: the test lost its heartbeats too", f)
		}
		if inISR(f) {
			st, _ := c.nodes[l].eng.Status(c.gid(0))
			t.Fatalf("follower %d in the ISR %v behind the leader (match %d, commit %d)", f, isrLagTime*2, st.Progress[f].Match, st.Commit)
		}
		c.net.SetDrop(nil)
		waitFor(t, func() bool { return inISR(f) })
		st, _ = c.nodes[l].eng.Status(c.gid(0))
		if pr := st.Progress[f]; pr.Match < st.Commit {
			t.Fatalf("follower %d back in the ISR at match %d, commit %d", f, pr.Match, st.Commit)
		}
	})
}
