package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// kadm against a gateway in front of a three-broker quorum: CreateTopics with replication
// factor 3 succeeds and the topic's partitions show three replicas, spread leaders and an ISR;
// replication factor 4 is INVALID_REPLICATION_FACTOR; records produced through the gateway
// are read back.
func TestKadmReplicationFactor3(t *testing.T) {
	addr, _, _ := quorumKafka(t, 3)
	cl := kafkaclients.KgoClient(t, addr, kgo.DefaultProduceTopic("r3"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	created := createTopic(t, adm, 6, 3, nil, "r3")
	if created.ReplicationFactor != 3 && created.Topic != "" {
		t.Errorf("created with replication factor %d", created.ReplicationFactor)
	}
	ctx, cancel := controllertest.Context()
	r4, err := adm.CreateTopic(ctx, 1, 4, nil, "r4")
	cancel()
	if err == nil {
		err = r4.Err
	}
	if !errors.Is(err, kerr.InvalidReplicationFactor) {
		t.Errorf("RF 4 on three brokers: %v, want INVALID_REPLICATION_FACTOR", err)
	}

	ctx, cancel = controllertest.Context()
	td, err := adm.ListTopics(ctx, "r3")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	d := td["r3"]
	if d.Err != nil || len(d.Partitions) != 6 {
		t.Fatalf("describe r3: %+v", d)
	}
	ctx, cancel = controllertest.Context()
	bd, err := adm.ListBrokers(ctx)
	cancel()
	if err != nil || len(bd) != 1 {
		t.Fatalf("brokers listed: %+v, %v; want the gateway alone", bd, err)
	}
	gwID := bd[0].NodeID
	preferred := map[int32]bool{}
	for _, p := range d.Partitions {
		reps := slices.Clone(p.Replicas)
		slices.Sort(reps)
		// The gateway names itself the leader (it routes to the real one). Before its raft
		// leader reported: epoch -1, every replica in sync; after: the raft leader's term
		// with the ISR it reported.
		unreported := p.Leader == gwID && p.LeaderEpoch == -1 && len(p.ISR) == 3
		reported := p.Leader == gwID && p.LeaderEpoch >= 1 && len(p.ISR) >= 2
		if len(slices.Compact(reps)) != 3 || !unreported && !reported {
			t.Errorf("partition %d: leader %d epoch %d replicas %v isr %v", p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR)
		}
		preferred[p.Replicas[0]] = true
	}
	if len(preferred) != 3 {
		t.Errorf("preferred leaders on %d brokers, want 3", len(preferred))
	}

	// Produce to every partition (the gateway routes to each partition's raft leader once the
	// quorum recorded it) and read it back.
	for p := range int32(6) {
		var err error
		for range 12 { // kgo retries within each attempt; a bound for a loaded machine
			ctx, cancel := controllertest.Context()
			err = cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: fmt.Appendf(nil, "v%d", p)}).FirstErr()
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("produce to partition %d: %v", p, err)
		}
	}
	cons := kafkaclients.KgoClient(t, addr, kgo.ConsumeTopics("r3"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]bool{}
	// A hang bound, not a speed check: on a loaded 2-core machine the consumer's metadata,
	// offset and fetch round trips through three raft leaders took more than one op's 10 s.
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for len(got) < 6 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	if len(got) != 6 {
		t.Errorf("read back %d of 6 records: %v", len(got), got)
	}
}
