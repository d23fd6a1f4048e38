package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// kgo and kadm through a gateway in front of three brokers, on a replicated (RF 3) topic with
// small segments: DeleteRecords moves the log start, retention then deletes the segments
// below it on every replica; after leadership moved to another replica, the new leader
// answers the same log start, a consumer from the start reads every record from it on in
// order, and producing goes on.
func TestKadmDeleteRecordsAndRetentionAcrossLeaderChange(t *testing.T) {
	addr, qc, _ := quorumKafka(t, 3)
	const topic = "rret"
	cl := kafkaclients.KgoClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	seg, ret := "1024", "-1"
	createTopic(t, adm, 1, 3, map[string]*string{"segment.bytes": &seg, "retention.ms": &ret}, topic)
	value := func(i int) string { return fmt.Sprintf("%03d-%s", i, strings.Repeat("v", 200)) }
	offs := map[int]int64{}
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			// One attempt (kgo retries inside it, deduplicated by the idempotent producer):
			// producing the record again after an error would store it twice.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound for a loaded machine
			r, err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(value(i))}).First()
			cancel()
			if err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
			offs[i] = r.Offset
		}
	}
	produce(0, 40)
	t.Logf("produced 40 records at offsets %d..%d", offs[0], offs[39])
	const start = 25
	low := offs[start]
	eventually(t, "DeleteRecords", func(ctx context.Context) error {
		rs, err := adm.DeleteRecords(ctx, kadm.Offsets{topic: {0: {Topic: topic, Partition: 0, At: low}}})
		if err != nil {
			return err
		}
		r, _ := rs.Lookup(topic, 0)
		if r.Err != nil {
			return r.Err
		}
		if r.LowWatermark != low {
			return fmt.Errorf("low watermark %d, want %d", r.LowWatermark, low)
		}
		return nil
	})
	// Retention on every replica deletes the segments below the new start.
	for i, b := range qc.Brokers {
		if _, err := b.Broker.EnforceRetention(); err != nil {
			t.Fatalf("broker %d: retention: %v", i, err)
		}
	}
	leader := -1
	if err := controllertest.Eventually(func() error {
		for i, b := range qc.Brokers {
			if serves(b.Broker, topic) {
				leader = i
				return nil
			}
		}
		return errors.New("no broker serves the partition")
	}); err != nil {
		t.Fatal(err)
	}
	checkStart := func(what string) {
		t.Helper()
		eventually(t, what, func(ctx context.Context) error {
			os, err := adm.ListStartOffsets(ctx, topic)
			if err != nil {
				return err
			}
			o, _ := os.Lookup(topic, 0)
			if o.Err != nil {
				return o.Err
			}
			if o.Offset != low {
				return fmt.Errorf("start offset %d, want %d", o.Offset, low)
			}
			return nil
		})
	}
	checkStart("after DeleteRecords")
	// Leadership moves to another replica (raft's leadership transfer; the broker-level
	// tests kill the leader instead).
	next := (leader + 1) % len(qc.Brokers)
	gid := groupOf(t, adm, topic)
	if _, ok := qc.Brokers[next].Replicas.Status(gid); !ok {
		t.Fatalf("broker %d runs no raft group %v", next, gid)
	}
	t.Logf("log start %d; leadership moves from broker %d to %d", low, leader, next)
	moveLeader(t, qc, topic, gid, next)
	checkStart("after the leader changed")
	produce(40, 45)
	t.Logf("produced 5 more records after the leader change")
	cons := kafkaclients.KgoClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound for a loaded machine
	defer cancel()
	for len(got) < 45-start && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if r.Offset < low {
				t.Errorf("read offset %d below the log start %d", r.Offset, low)
			}
			got = append(got, string(r.Value))
		})
	}
	if len(got) != 45-start {
		t.Fatalf("read %d records from the start, want %d", len(got), 45-start)
	}
	for k, v := range got {
		if v != value(start+k) {
			t.Fatalf("record %d read from the start is %.10q, want %.10q", k, v, value(start+k))
		}
	}
}

// groupOf is the raft group of partition 0 of topic.
func groupOf(t *testing.T, adm *kadm.Client, topic string) replica.GroupID {
	t.Helper()
	ctx, cancel := controllertest.Context()
	td, err := adm.ListTopics(ctx, topic)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	return replica.GroupID{Topic: td[topic].ID, Partition: 0}
}

// moveLeader moves the leadership of partition 0 of topic (raft group gid) to broker next by
// raft's leadership transfer, and waits until next serves it.
func moveLeader(t *testing.T, qc *controllertest.Cluster, topic string, gid replica.GroupID, next int) {
	t.Helper()
	if err := controllertest.Eventually(func() error {
		if serves(qc.Brokers[next].Broker, topic) {
			return nil
		}
		for _, b := range qc.Brokers { // whichever leads now hands over
			b.Replicas.TransferLeader(gid, qc.Brokers[next].RaftID)
		}
		return errors.New("not moved yet")
	}); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
}

// serves reports whether b serves partition 0 of topic (it leads it).
func serves(b *broker.Broker, topic string) bool {
	r, err := b.ListOffsets(context.Background(), &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: topic, Timestamp: -2}}})
	return err == nil && r.Partitions[0].ErrorCode == 0
}
