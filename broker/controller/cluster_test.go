package controller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func ctx5() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

func batch(v string) []byte {
	return kafkawire.AppendRecordBatch(nil, []kafkawire.BatchRecord{{Timestamp: 1, Value: []byte(v)}})
}

// Three brokers form a quorum through the join path (one bootstraps, two join as learners
// and are promoted); a topic created through any broker reaches every owner by apply; data,
// committed offsets and producer ids survive the loss of the leader, and the cluster serves
// metadata writes again.
func TestThreeBrokersFailover(t *testing.T) {
	h := newHarness(t, 3)
	cb := h.formThree(2)
	for _, b := range cb.Brokers {
		if len(b.Direct) == 0 {
			t.Fatalf("broker %s registered without addresses", b.MeshID)
		}
	}

	// Create through a follower (forwarded to the leader).
	li, err := h.leaderIndex()
	if err != nil {
		t.Fatal(err)
	}
	fi := (li + 1) % 3
	ctx, cancel := ctx5()
	cr, err := h.caller(fi).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "orders", NumPartitions: 6, ReplicationFactor: 1}}})
	cancel()
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create via follower: %+v, %v", cr, err)
	}
	ctx, cancel = ctx5()
	pl, err := h.caller(fi).Placement(ctx, &brokerop.PlacementReq{Topics: []string{"orders"}})
	cancel()
	if err != nil || len(pl.Topics) != 1 || len(pl.Topics[0].Owners) != 6 || pl.Topics[0].TopicID != cr.Topics[0].TopicID {
		t.Fatalf("placement: %+v, %v", pl, err)
	}
	owners := map[string]bool{}
	for _, o := range pl.Topics[0].Owners {
		owners[o] = true
	}
	if len(owners) != 3 {
		t.Fatalf("6 partitions placed on %d brokers, want 3: %v", len(owners), pl.Topics[0].Owners)
	}
	byID := map[string]int{}
	for i, n := range h.nodes {
		byID[n.ep.NodeID().String()] = i
	}

	// Produce to every partition at its owner: the owner learned the topic by applying it.
	acked := map[int32]string{}
	for p, o := range pl.Topics[0].Owners {
		v := fmt.Sprintf("v%d", p)
		eventually(t, "produce at the owner", func() error {
			ctx, cancel := ctx5()
			defer cancel()
			r, err := h.caller(byID[o]).Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "orders", Partition: int32(p), Records: batch(v)}}})
			if err != nil {
				return err
			}
			if c := r.Partitions[0].ErrorCode; c != 0 {
				return fmt.Errorf("produce p%d: code %d", p, c)
			}
			return nil
		})
		acked[int32(p)] = v
	}

	// Commit offsets and take a producer id.
	ctx, cancel = ctx5()
	oc, err := h.caller(fi).OffsetCommit(ctx, &brokerop.OffsetCommitReq{Group: "g", Generation: -1, Topics: []brokerop.OffsetCommitTopic{
		{Topic: "orders", Partitions: []brokerop.OffsetCommitPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}, {Partition: 5, Offset: 1, LeaderEpoch: -1}}}}})
	cancel()
	if err != nil || oc.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset commit: %+v, %v", oc, err)
	}
	ctx, cancel = ctx5()
	pid1, err := h.caller(fi).InitProducerID(ctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
	cancel()
	if err != nil || pid1.ErrorCode != 0 {
		t.Fatalf("init producer id: %+v, %v", pid1, err)
	}

	// Kill the leader.
	dead := h.nodes[li]
	dead.stop()
	deadID := dead.ep.NodeID().String()
	alive := []int{(li + 1) % 3, (li + 2) % 3}

	via := alive[0]
	eventually(t, "create topic after failover", func() error {
		ctx, cancel := ctx5()
		defer cancel()
		r, err := h.caller(via).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "after", NumPartitions: 4, ReplicationFactor: 1}}})
		if err != nil {
			via = alive[(slices.Index(alive, via)+1)%2] // rotate, as the gateway does
			return err
		}
		if c := r.Topics[0].ErrorCode; c != 0 && c != kerr.TopicAlreadyExists.Code {
			return fmt.Errorf("create: code %d %s", c, r.Topics[0].ErrorMessage)
		}
		return nil
	})
	for _, i := range alive {
		ctx, cancel := ctx5()
		md, err := h.caller(i).Metadata(ctx, &brokerop.MetadataReq{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tp := range md.Topics {
			names = append(names, tp.Name)
		}
		if !slices.Equal(names, []string{"after", "orders"}) {
			t.Fatalf("metadata via %d: topics %v", i, names)
		}
		ctx, cancel = ctx5()
		of, err := h.caller(i).OffsetFetch(ctx, &brokerop.OffsetFetchReq{Group: "g"})
		cancel()
		if err != nil || len(of.Topics) != 1 || len(of.Topics[0].Partitions) != 2 || of.Topics[0].Partitions[0].Offset != 1 || of.Topics[0].Partitions[1].Offset != 1 {
			t.Fatalf("offset fetch via %d after failover: %+v, %v", i, of, err)
		}
		ctx, cancel = ctx5()
		pid2, err := h.caller(i).InitProducerID(ctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
		cancel()
		if err != nil || pid2.ErrorCode != 0 || pid2.ProducerID <= pid1.ProducerID {
			t.Fatalf("producer id after failover: %+v (before %d), %v", pid2, pid1.ProducerID, err)
		}
	}
	// The new topic is placed on live brokers only; the data acknowledged on live owners is there.
	ctx, cancel = ctx5()
	pl2, err := h.caller(alive[0]).Placement(ctx, &brokerop.PlacementReq{Topics: []string{"after"}})
	cancel()
	if err != nil || len(pl2.Topics[0].Owners) != 4 {
		t.Fatalf("placement after failover: %+v, %v", pl2, err)
	}
	for _, o := range pl2.Topics[0].Owners {
		if o == deadID {
			t.Fatalf("a new partition was placed on the dead broker: %v", pl2.Topics[0].Owners)
		}
	}
	for p, o := range pl.Topics[0].Owners {
		if o == deadID {
			continue
		}
		ctx, cancel := ctx5()
		fr, err := h.caller(byID[o]).Fetch(ctx, &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: "orders", Partition: int32(p), MaxBytes: 1 << 20}}})
		cancel()
		if err != nil || fr.Partitions[0].HighWatermark != 1 {
			t.Fatalf("acked record of p%d missing: %+v, %v", p, fr, err)
		}
	}
	_ = acked
}

// A broker whose NodeId is neither a seed nor allowed is refused and never given partitions.
func TestUnadmittedBrokerCannotJoin(t *testing.T) {
	h := newHarness(t, 2)
	h.start(0, true, h.seeds[:1])
	// Broker 1 asks to join, but the leader's seeds are only broker 0.
	h.start(1, false, h.seeds)
	h.waitMembers(0, 1, 1)
	ctx, cancel := ctx5()
	r, err := h.caller(0).QuorumJoin(ctx, &brokerop.QuorumJoinReq{RaftID: 99, MeshID: key.GenerateSecretKey().Public().String(), Direct: []string{"127.0.0.1:1"}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	// The gateway is trusted but asks for another NodeId than its own.
	if r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("join as another node: %+v", r)
	}
	ctx, cancel = ctx5()
	cr, err := h.caller(0).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "t", NumPartitions: 8, ReplicationFactor: 1}}})
	cancel()
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v, %v", cr, err)
	}
	ctx, cancel = ctx5()
	pl, err := h.caller(0).Placement(ctx, &brokerop.PlacementReq{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range pl.Topics[0].Owners {
		if o != h.seeds[0].ID.String() {
			t.Fatalf("partition placed on %s", o)
		}
	}
	cb := h.waitMembers(0, 1, 1)
	if cb.Brokers[0].MeshID != h.seeds[0].ID.String() {
		t.Fatalf("members %+v", cb.Brokers)
	}
	// Once an operator allows it, it joins.
	ctx, cancel = ctx5()
	if err := h.nodes[0].ctl.Allow(ctx, h.seeds[1].ID, true); err != nil {
		t.Fatal(err)
	}
	cancel()
	h.waitMembers(0, 2, 2)
}

// Admin ops sent to a follower change every broker: configs, partition counts (new partitions
// placed by the leader) and deletions are applied by each broker from the quorum.
func TestAdminOpsReachEveryBroker(t *testing.T) {
	h, li := newThreeHarness(t)
	f := h.caller((li + 1) % 3)
	ctx, cancel := ctx5()
	defer cancel()
	if r, err := f.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "a", NumPartitions: 2, ReplicationFactor: 1},
		{Name: "b", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000"}}}}); err != nil || r.Topics[0].ErrorCode != 0 || r.Topics[1].ErrorCode != 0 {
		t.Fatalf("create: %+v %v", r, err)
	}
	// Kafka's validation still answers, through the forwarding; compaction is accepted on a
	// replicated topic (the broker cleans each replica's raft log: broker/replica doc.go).
	if r, err := f.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "a", NumPartitions: 1, ReplicationFactor: 1},
		{Name: "bad", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "shred"}},
		{Name: "c3", NumPartitions: 1, ReplicationFactor: 3, Configs: map[string]string{"cleanup.policy": "delete,compact"}}}}); err != nil ||
		r.Topics[0].ErrorCode != kerr.TopicAlreadyExists.Code || r.Topics[1].ErrorCode != kerr.InvalidConfig.Code ||
		r.Topics[2].ErrorCode != 0 {
		t.Fatalf("creates: %+v %v", r, err)
	}
	// A config change to compaction on a replicated topic too.
	if r, err := f.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "r3", NumPartitions: 1, ReplicationFactor: 3}}}); err != nil || r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create r3: %+v %v", r, err)
	}
	compact := "compact"
	if r, err := f.IncrementalAlterConfigs(ctx, &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{
		{Type: brokerop.ResourceTopic, Name: "r3", Configs: []brokerop.IncrementalAlterConfig{{Name: "cleanup.policy", Op: brokerop.ConfigOpSet, Value: &compact}}},
		{Type: brokerop.ResourceTopic, Name: "b", Configs: []brokerop.IncrementalAlterConfig{{Name: "cleanup.policy", Op: brokerop.ConfigOpSet, Value: &compact}}}}}); err != nil ||
		r.Resources[0].ErrorCode != 0 || r.Resources[1].ErrorCode != 0 {
		t.Fatalf("compact on r3 and b: %+v %v", r, err)
	}
	if r, err := f.AlterConfigs(ctx, &brokerop.AlterConfigsReq{Resources: []brokerop.AlterConfigsResource{
		{Type: brokerop.ResourceTopic, Name: "r3", Configs: []brokerop.AlterConfig{{Name: "cleanup.policy", Value: &compact}}}}}); err != nil ||
		r.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter r3: %+v %v", r, err)
	}
	set := "5000"
	if r, err := f.IncrementalAlterConfigs(ctx, &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{
		{Type: brokerop.ResourceTopic, Name: "a", Configs: []brokerop.IncrementalAlterConfig{{Name: "retention.ms", Op: brokerop.ConfigOpSet, Value: &set}}}}}); err != nil || r.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter: %+v %v", r, err)
	}
	if r, err := f.AlterConfigs(ctx, &brokerop.AlterConfigsReq{Resources: []brokerop.AlterConfigsResource{{Type: brokerop.ResourceTopic, Name: "b"}}}); err != nil || r.Resources[0].ErrorCode != 0 {
		t.Fatalf("alter b: %+v %v", r, err)
	}
	if r, err := f.CreatePartitions(ctx, &brokerop.CreatePartitionsReq{Topics: []brokerop.CreatePartitionsTopic{{Name: "a", Count: 5}}}); err != nil || r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create partitions: %+v %v", r, err)
	}
	// The change to compaction reached every broker (each replica's cleaner reads it).
	for i, n := range h.nodes {
		eventually(t, fmt.Sprintf("broker %d applied cleanup.policy=compact to r3", i), func() error {
			dc, err := n.b.DescribeConfigs(context.Background(), &brokerop.DescribeConfigsReq{Resources: []brokerop.DescribeConfigsResource{
				{Type: brokerop.ResourceTopic, Name: "r3", ConfigNames: []string{"cleanup.policy"}}}})
			if err != nil {
				return err
			}
			if cs := dc.Resources[0].Configs; len(cs) != 1 || cs[0].Value == nil || *cs[0].Value != "compact" {
				return fmt.Errorf("cleanup.policy %+v", cs)
			}
			return nil
		})
	}
	if r, err := f.DeleteTopics(ctx, &brokerop.DeleteTopicsReq{Topics: []string{"b", "r3", "c3"}}); err != nil || r.Topics[0].ErrorCode != 0 || r.Topics[1].ErrorCode != 0 || r.Topics[2].ErrorCode != 0 {
		t.Fatalf("delete: %+v %v", r, err)
	}
	pl, err := f.Placement(ctx, &brokerop.PlacementReq{})
	if err != nil || len(pl.Topics) != 1 || len(pl.Topics[0].Owners) != 5 {
		t.Fatalf("placement: %+v %v", pl, err)
	}
	for i, n := range h.nodes {
		eventually(t, fmt.Sprintf("broker %d applied the changes", i), func() error {
			md, err := n.b.Metadata(context.Background(), &brokerop.MetadataReq{})
			if err != nil {
				return err
			}
			if len(md.Topics) != 1 || md.Topics[0].Name != "a" || len(md.Topics[0].Partitions) != 5 {
				return fmt.Errorf("topics %+v", md.Topics)
			}
			dc, err := n.b.DescribeConfigs(context.Background(), &brokerop.DescribeConfigsReq{Resources: []brokerop.DescribeConfigsResource{
				{Type: brokerop.ResourceTopic, Name: "a", ConfigNames: []string{"retention.ms"}}}})
			if err != nil {
				return err
			}
			if v := dc.Resources[0].Configs[0].Value; v == nil || *v != "5000" {
				return fmt.Errorf("retention.ms %v", v)
			}
			return nil
		})
	}
}
