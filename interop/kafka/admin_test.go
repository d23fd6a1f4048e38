package kafka_test

// Rafka's quickstart admin lifecycle with a real AdminClient (kadm): create orders-v1 with 3
// partitions and retention.ms=3600000, list, describe configs, alter to 60000, delete — and
// the error answers Kafka gives on the way.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAdminLifecycleKadm(t *testing.T) {
	s := rcStart(t, t.TempDir(), "")
	adm := kadm.NewClient(s.kgo(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ret := "3600000"
	cr, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": &ret}, "orders-v1")
	if err != nil || cr.Err != nil {
		t.Fatalf("create: %v %v", err, cr.Err)
	}
	if cr.ID == (kadm.TopicID{}) {
		t.Fatal("created topic has no id")
	}
	// Creating it again: TOPIC_ALREADY_EXISTS.
	if again, _ := adm.CreateTopic(ctx, 3, 1, nil, "orders-v1"); !errors.Is(again.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("second create: %v", again.Err)
	}
	// Bad name, bad replication factor, an unknown cleanup policy.
	if r, _ := adm.CreateTopic(ctx, 1, 1, nil, "bad/name"); !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v", r.Err)
	}
	if r, _ := adm.CreateTopic(ctx, 1, 3, nil, "rf3"); !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 3: %v", r.Err)
	}
	shred := "compact,shred"
	if r, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &shred}, "compacted"); !errors.Is(r.Err, kerr.InvalidConfig) {
		t.Fatalf("unknown cleanup.policy: %v", r.Err)
	}

	// List.
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := td["orders-v1"]; !ok || len(d.Partitions) != 3 || d.ID != cr.ID {
		t.Fatalf("list: %+v", td)
	}

	describe := func() kadm.Config {
		t.Helper()
		rc, err := adm.DescribeTopicConfigs(ctx, "orders-v1")
		if err != nil {
			t.Fatal(err)
		}
		r, err := rc.On("orders-v1", nil)
		if err != nil || r.Err != nil {
			t.Fatalf("describe: %v %v", err, r.Err)
		}
		for _, c := range r.Configs {
			if c.Key == "retention.ms" {
				return c
			}
		}
		t.Fatal("retention.ms not described")
		return kadm.Config{}
	}
	c := describe()
	if c.MaybeValue() != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms: %s source %v", c.MaybeValue(), c.Source)
	}
	if len(c.Synonyms) < 2 || c.Synonyms[1].Key != "log.retention.ms" {
		t.Fatalf("synonyms: %+v", c.Synonyms)
	}

	// Alter (incremental) to 60000.
	v := "60000"
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: &v}}, "orders-v1")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, ar)
	}
	if c := describe(); c.MaybeValue() != "60000" {
		t.Fatalf("after alter: %s", c.MaybeValue())
	}
	// Legacy AlterConfigs (full replace) with an unsupported config: INVALID_CONFIG.
	seg := "soon"
	ar, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &seg}}, "orders-v1")
	if err != nil || !errors.Is(ar[0].Err, kerr.InvalidConfig) {
		t.Fatalf("bad legacy alter: %v %+v", err, ar)
	}

	// Grow to 5 partitions; shrinking is INVALID_PARTITIONS.
	if r, err := adm.CreatePartitions(ctx, 2, "orders-v1"); err != nil || r["orders-v1"].Err != nil {
		t.Fatalf("create partitions: %v %+v", err, r)
	}
	if r, _ := adm.UpdatePartitions(ctx, 4, "orders-v1"); !errors.Is(r["orders-v1"].Err, kerr.InvalidPartitions) {
		t.Fatalf("shrink: %+v", r)
	}

	// Describe cluster: one broker at the advertised address.
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil || len(meta.Brokers) != 1 || meta.Cluster == "" {
		t.Fatalf("cluster: %v %+v", err, meta)
	}

	// Delete, then it is gone.
	dr, err := adm.DeleteTopics(ctx, "orders-v1")
	if err != nil || dr["orders-v1"].Err != nil {
		t.Fatalf("delete: %v %+v", err, dr)
	}
	if dr, _ := adm.DeleteTopics(ctx, "orders-v1"); !errors.Is(dr["orders-v1"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %+v", dr)
	}
	td, _ = adm.ListTopics(ctx)
	if _, ok := td["orders-v1"]; ok {
		t.Fatal("deleted topic still listed")
	}
}
