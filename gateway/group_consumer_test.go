package gateway_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// startGroups848 is startGroups with a short KIP-848 heartbeat interval, so kgo consumers
// converge quickly.
func startGroups848(t *testing.T, partitions int32) *testServer {
	t.Helper()
	coord, err := group.Open(group.Config{
		Dir: "/groups", FS: waltest.NewCrashFS(),
		Machine: group.MachineConfig{ConsumerHeartbeatInterval: 100 * time.Millisecond, ConsumerSessionTimeout: 10 * time.Second, ConsumerStartGrace: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := start(t, gateway.Config{Backend: groupBackend{gatewaytest.NewMem(partitions), coord}})
	t.Cleanup(func() { coord.Close() })
	return ts
}

func describeConsumerGroup(ctx context.Context, t *testing.T, cl *kgo.Client, g string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{g}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Groups) != 1 {
		t.Fatalf("describe: %+v", resp)
	}
	return resp.Groups[0]
}

// TestGroupKgo848Consumers: kgo consumers using the KIP-848 protocol (ServerSideBalancer)
// join one group, the partitions spread over them, one leaves, its partitions are revoked and
// reassigned, and every record is consumed exactly once with the committed offsets at the
// end of each partition. Run for both server assignors.
func TestGroupKgo848Consumers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
		assignor string
	}{
		{"uniform", kgo.CooperativeStickyBalancer(), "uniform"},
		{"range", kgo.RangeBalancer(), "range"},
	} {
		t.Run(tc.name, func(t *testing.T) { test848Consumers(t, tc.balancer, tc.assignor) })
	}
}

func test848Consumers(t *testing.T, balancer kgo.GroupBalancer, assignor string) {
	const parts, topic, grp = 6, "orders", "g848"
	ts := startGroups848(t, parts)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // a safety net only
	defer cancel()
	prod := kafkaclients.KgoClient(t, ts.addr, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	produce := func(from, n int) {
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%d", i)})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 300)

	var mu sync.Mutex
	seen := map[string]int{}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	type consumer struct {
		cl   *kgo.Client
		stop chan struct{}
		done chan struct{}
	}
	start := func(name string) *consumer {
		cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic),
			kgo.ClientID(name), kgo.ServerSideBalancer(), kgo.Balancers(balancer),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
		if err != nil {
			t.Fatal(err)
		}
		c := &consumer{cl: cl, stop: make(chan struct{}), done: make(chan struct{})}
		go func() {
			defer close(c.done)
			for {
				select {
				case <-c.stop:
					return
				default:
				}
				pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
				fs := cl.PollFetches(pctx)
				pcancel()
				var recs []*kgo.Record
				fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
				mu.Lock()
				for _, r := range recs {
					seen[string(r.Value)]++
				}
				mu.Unlock()
				if len(recs) > 0 {
					if err := cl.CommitRecords(ctx, recs...); err != nil {
						t.Errorf("%s: commit: %v", name, err)
					}
				}
				cl.AllowRebalance()
				if ctx.Err() != nil {
					return
				}
			}
		}()
		return c
	}
	halt := func(c *consumer) {
		close(c.stop)
		<-c.done
		c.cl.Close() // leaves the group (member epoch -1)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("gave up waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	adm := kafkaclients.KgoClient(t, ts.addr)
	// stableWith waits until the group is Stable with n members that together own every
	// partition, and returns each member's partition count.
	stableWith := func(n int) []int {
		var counts []int
		waitFor(fmt.Sprintf("a stable group of %d", n), func() bool {
			g := describeConsumerGroup(ctx, t, adm, grp)
			if g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != n || g.AssignorName != assignor {
				return false
			}
			counts = counts[:0]
			total := 0
			for _, m := range g.Members {
				k := 0
				for _, tp := range m.Assignment.TopicPartitions {
					k += len(tp.Partitions)
				}
				counts = append(counts, k)
				total += k
			}
			return total == parts
		})
		sort.Ints(counts)
		return counts
	}

	a, b, c := start("a"), start("b"), start("c")
	if got := stableWith(3); fmt.Sprint(got) != "[2 2 2]" {
		t.Fatalf("three members own %v partitions, want 2 each", got)
	}
	waitFor("the first 300 records", func() bool { return count() >= 300 })

	halt(c) // c leaves: its partitions are reassigned to a and b
	if got := stableWith(2); fmt.Sprint(got) != "[3 3]" {
		t.Fatalf("two members own %v partitions, want 3 each", got)
	}
	produce(300, 300)
	waitFor("all 600 records", func() bool { return count() >= 600 })
	halt(a)
	halt(b)

	mu.Lock()
	for v, n := range seen {
		if n != 1 {
			t.Errorf("record %s consumed %d times", v, n)
		}
	}
	if len(seen) != 600 {
		t.Errorf("consumed %d distinct records, want 600", len(seen))
	}
	mu.Unlock()

	ka := kadm.NewClient(adm)
	offs, err := ka.FetchOffsets(ctx, grp)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := ka.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		o, ok := offs.Lookup(topic, e.Partition)
		if !ok || o.At != e.Offset {
			t.Errorf("partition %d: committed %+v, end offset %d", e.Partition, o, e.Offset)
		}
	})
	if g := describeConsumerGroup(ctx, t, adm, grp); g.State != "Empty" || len(g.Members) != 0 {
		t.Fatalf("after everyone left: %+v", g)
	}
}

// TestConsumerGroupHeartbeatWire: the wire form of both versions over a raw connection: v0
// gets a member id from the coordinator, v1 keeps the client's; a join's answer carries the
// assignment by topic id; null fields mean "unchanged"; errors carry Kafka's message; and
// ConsumerGroupDescribe reports the members with topic names.
func TestConsumerGroupHeartbeatWire(t *testing.T) {
	ts := startGroups848(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kafkaclients.KgoClient(t, ts.addr, kgo.AllowAutoTopicCreation())
	if err := adm.ProduceSync(ctx, &kgo.Record{Topic: "wire-a", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	md, err := kadm.NewClient(adm).Metadata(ctx, "wire-a")
	if err != nil {
		t.Fatal(err)
	}
	topicID := md.Topics["wire-a"].ID
	raw := dial(t, ts.addr)
	corr := int32(0)
	rt := func(req kmsg.Request) kmsg.Response { corr++; return raw.roundTrip(req, corr) }

	join := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	join.SetVersion(0)
	join.Group, join.RebalanceTimeoutMillis = "wire", 10000
	join.SubscribedTopicNames, join.Topics = []string{"wire-a"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	r := rt(join).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r.ErrorCode != 0 || r.MemberID == nil || *r.MemberID == "" || r.MemberEpoch != 1 || r.HeartbeatIntervalMillis != 100 || r.Assignment == nil {
		t.Fatalf("v0 join: %+v", r)
	}
	if len(r.Assignment.Topics) != 1 || r.Assignment.Topics[0].TopicID != [16]byte(topicID) || len(r.Assignment.Topics[0].Partitions) != 2 {
		t.Fatalf("v0 join assignment: %+v", r.Assignment)
	}
	first := *r.MemberID

	// v1: the client's own member id, a regex subscription (matching the same topic).
	j1 := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	j1.SetVersion(1)
	j1.Group, j1.MemberID, j1.RebalanceTimeoutMillis = "wire", "client-chosen-id", 10000
	j1.SubscribedTopicRegex, j1.Topics = kmsg.StringPtr("wire-.*"), []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	j1.ServerAssignor = kmsg.StringPtr("uniform")
	r = rt(j1).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r.ErrorCode != 0 || r.MemberID == nil || *r.MemberID != "client-chosen-id" || r.MemberEpoch != 2 || r.Assignment == nil || len(r.Assignment.Topics) != 0 {
		t.Fatalf("v1 join (nothing free yet): %+v", r)
	}

	// A keepalive from the first member (null subscription and owned partitions): no
	// assignment field unless it changed; it did: one partition is to be revoked.
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.SetVersion(1)
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "wire", first, 1, -1
	r = rt(hb).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r.ErrorCode != 0 || r.MemberEpoch != 1 || r.Assignment == nil || len(r.Assignment.Topics) != 1 || len(r.Assignment.Topics[0].Partitions) != 1 {
		t.Fatalf("revocation: %+v", r)
	}
	r = rt(hb).(*kmsg.ConsumerGroupHeartbeatResponse)
	if r.ErrorCode != 0 || r.Assignment != nil {
		t.Fatalf("unchanged keepalive: %+v", r)
	}

	bad := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	bad.SetVersion(1)
	bad.Group, bad.MemberID, bad.RebalanceTimeoutMillis = "wire", "x", 10000
	bad.SubscribedTopicNames, bad.Topics = []string{"wire-a"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	bad.ServerAssignor = kmsg.StringPtr("cooperative-sticky")
	if r = rt(bad).(*kmsg.ConsumerGroupHeartbeatResponse); r.ErrorCode != 112 || r.ErrorMessage == nil {
		t.Fatalf("unsupported assignor: %+v", r)
	}

	for v := int16(0); v <= 1; v++ {
		d := kmsg.NewPtrConsumerGroupDescribeRequest()
		d.SetVersion(v)
		d.Groups = []string{"wire", "missing"}
		dr := rt(d).(*kmsg.ConsumerGroupDescribeResponse)
		if len(dr.Groups) != 2 || dr.Groups[0].ErrorCode != 0 || dr.Groups[0].State != "Reconciling" || dr.Groups[0].Epoch != 2 ||
			len(dr.Groups[0].Members) != 2 || dr.Groups[1].ErrorCode != 69 {
			t.Fatalf("v%d describe: %+v", v, dr)
		}
		for _, m := range dr.Groups[0].Members {
			for _, tp := range m.TargetAssignment.TopicPartitions {
				if tp.Topic != "wire-a" || tp.TopicID != [16]byte(topicID) {
					t.Fatalf("v%d described target: %+v", v, m.TargetAssignment)
				}
			}
		}
	}
}
