package quorum_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// TestQuorumShareGroup: a kgo share-group consumer (KIP-932) through the gateway of a
// three-broker cluster reads every record of a 6-partition RF=3 topic, whose partition leaders
// are spread over the brokers: the quorum leader's share coordinator reads each partition at
// its leader (broker/controller/shareread.go). Before, only the partitions led by the quorum
// leader's broker were ever delivered. Half-way the quorum leader (the share coordinator's
// broker) is SIGKILLed: the consumer still gets every record (at least once), since the
// share state is on the quorum and the new leader continues from it
// (broker/controller/sharestate.go); before, the new leader knew nothing of the group and its
// share partitions restarted at the end of the log, so the rest was never delivered.
func TestQuorumShareGroup(t *testing.T) {
	c := startQuorum(t, cluster.Options{Brokers: 3, Gateways: 1})
	caughtUp(t, c, time.Minute)
	const topic, group, parts, records = "jobs", "workers", 6, 600
	cfg := workload.Config{Seeds: []string{c.Gateways[0].Addr}, Dial: c.Dialer(), Topic: topic, Partitions: parts, ReplicationFactor: 3}
	cfg.CreateTopic(t)
	admin := cfg.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Start the group at offset 0 of every partition (share.auto.offset.reset is latest).
	cluster.WaitFor(t, "AlterShareGroupOffsets to 0", time.Minute, func() (bool, string) {
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.GroupID = group
		rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
		rt.Topic = topic
		for p := range int32(parts) {
			rt.Partitions = append(rt.Partitions, kmsg.AlterShareGroupOffsetsRequestTopicPartition{Partition: p, StartOffset: 0})
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, admin)
		if err != nil {
			return false, err.Error()
		}
		if resp.ErrorCode != 0 {
			return false, fmt.Sprintf("error %d", resp.ErrorCode)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return false, fmt.Sprintf("partition %d: error %d", p.Partition, p.ErrorCode)
				}
			}
		}
		return true, ""
	})

	prod := cfg.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := range records {
		prod.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "job-%04d", i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	cons := cfg.Client(t, kgo.ConsumeTopics(topic), kgo.ShareGroup(group), kgo.ShareMaxRecords(50)) // small fetches: the kill lands mid-stream
	seen := map[string]bool{}
	fromPart := map[int32]int{}
	killed := false
	for len(seen) < records {
		if !killed && len(seen) >= records/2 {
			leader := caughtUp(t, c, time.Minute)
			t.Logf("%d of %d records seen: killing the quorum leader %s", len(seen), records, leader.Name)
			leader.Kill()
			killed = true
		}
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("share consumer got %d of %d records (per partition %v)", len(seen), records, fromPart)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("share fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if !seen[string(r.Value)] {
				seen[string(r.Value)] = true
				fromPart[r.Partition]++
			}
		})
	}
	if len(fromPart) != parts {
		t.Fatalf("records from %d partitions, want %d: %v", len(fromPart), parts, fromPart)
	}
}
