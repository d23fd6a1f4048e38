package brokermesh

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// durablePlacement reads the placement log of a broker directory the way a gateway folds it.
func durablePlacement(t *testing.T, b *broker.Broker) map[string]placement {
	t.Helper()
	table := map[string]placement{}
	for from := int64(0); ; {
		resp, err := b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{
			{Topic: PlacementTopic, Offset: from, MaxBytes: 1 << 20}}})
		if err != nil {
			t.Fatal(err)
		}
		p := resp.Partitions[0]
		if p.ErrorCode != 0 || len(p.Records) == 0 {
			return table
		}
		next, err := decodeRecords(p.Records, func(off int64, k, v []byte) {
			if off < from {
				return
			}
			pl, err := decodePlacement(v)
			if err != nil {
				t.Fatal(err)
			}
			applyPlacement(table, string(k), pl)
		})
		if err != nil {
			t.Fatal(err)
		}
		from = next
	}
}

// A placement record another gateway appended but that is not yet fsynced on the controller
// must not decide where a gateway sends a partition: a crash can drop it, and the placement
// the log then holds differs. Here a record appended with acks=1 (durable only at the next
// flush) stands for another gateway's append whose fsync has not finished.
func TestPlacementNotReadPastDurablePoint(t *testing.T) {
	fs := waltest.NewCrashFS()
	bcfg := broker.Config{Dir: "/ctl", DefaultPartitions: 1, FS: fs, RetentionCheckInterval: -1, FlushInterval: -1}
	b, err := broker.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	caller, _ := setup(t, b)
	ids := []key.PublicKey{key.GenerateSecretKey().Public(), key.GenerateSecretKey().Public()}
	slices.SortFunc(ids, func(a, b key.PublicKey) int {
		switch {
		case a.String() < b.String():
			return -1
		case a.String() > b.String():
			return 1
		}
		return 0
	})
	ctx := context.Background()
	for _, name := range []string{"orders", PlacementTopic} {
		if _, err := b.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{
			{Name: name, NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	md, err := b.Metadata(ctx, &brokerop.MetadataReq{Topics: []string{"orders"}})
	if err != nil {
		t.Fatal(err)
	}
	// The other gateway's record: orders-0 on the second broker. Appended, not fsynced.
	other := placement{TopicID: topicIDHex(md.Topics[0].TopicID), Owners: []string{ids[1].String()}}
	pr, err := b.Produce(ctx, &brokerop.ProduceReq{Acks: 1, Partitions: []brokerop.ProducePartition{
		{Topic: PlacementTopic, Records: encodeRecordBatch([]byte("orders"), encodePlacement(other), time.UnixMilli(1))}}})
	if err != nil || pr.Partitions[0].ErrorCode != 0 {
		t.Fatalf("append: %v %+v", err, pr)
	}

	// This gateway sees only the controller (ids[0] < ids[1]), so it would place on ids[0].
	c, err := NewCluster([]endpoint.NodeAddr{{ID: ids[0]}, {ID: ids[1]}}, func(endpoint.NodeAddr) *Caller { return caller }, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, owner, code, err := c.owner(ctx, "orders", 0)
	if err != nil || code != 0 {
		t.Fatalf("owner: %v code %d", err, code)
	}

	// Power cut on the controller: what the gateway acted on must be what the log keeps.
	fs.Crash()
	b.Close()
	b2, err := broker.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	durable := durablePlacement(t, b2)
	p, ok := durable["orders"]
	if !ok {
		t.Fatalf("the gateway sends orders-0 to %s by a placement record the crash dropped (none is durable)", owner)
	}
	if p.Owners[0] != owner {
		t.Fatalf("the gateway sends orders-0 to %s, the durable placement says %s", owner, p.Owners[0])
	}
}

// A gateway's own placement record is fsynced before it acts on it, even on a controller whose
// default flush policy is relaxed (acks=all alone would not fsync there).
func TestPlacementDurableUnderRelaxedFlushDefaults(t *testing.T) {
	fs := waltest.NewCrashFS()
	bcfg := broker.Config{Dir: "/ctl", DefaultPartitions: 1, FS: fs, RetentionCheckInterval: -1, FlushInterval: -1,
		TopicDefaults: map[string]string{"flush.ms": "3600000"}}
	b, err := broker.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	caller, _ := setup(t, b)
	ctx := context.Background()
	if _, err := b.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{
		{Name: "orders", NumPartitions: 2, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	seeds := []endpoint.NodeAddr{{ID: key.GenerateSecretKey().Public()}, {ID: key.GenerateSecretKey().Public()}}
	c, err := NewCluster(seeds, func(endpoint.NodeAddr) *Caller { return caller }, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, owner, code, err := c.owner(ctx, "orders", 1)
	if err != nil || code != 0 {
		t.Fatalf("owner: %v code %d", err, code)
	}
	fs.Crash()
	b.Close()
	b2, err := broker.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	p, ok := durablePlacement(t, b2)["orders"]
	if !ok || len(p.Owners) != 2 || p.Owners[1] != owner {
		t.Fatalf("gateway routes orders-1 to %s; durable placement after a crash: %+v (found %v)", owner, p, ok)
	}
}
