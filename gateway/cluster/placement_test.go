package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
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

// meshController serves b as the controller over a loopback mesh endpoint. It returns seeds
// for a gateway (the controller, which has the smallest NodeId, and a second broker that is
// never dialled) and a dial function that reaches the controller whatever the address.
// routeThenCrash has a new Cluster on seeds route topic's partition, then cuts the power under
// the controller b (opened with bcfg on fs) and opens it again: it returns the owner the
// gateway routes to and the placements the reopened controller holds durably.
func routeThenCrash(t *testing.T, seeds []endpoint.NodeAddr, dial func(endpoint.NodeAddr) *brokermesh.Caller,
	topic string, partition int32, fs *waltest.CrashFS, b *broker.Broker, bcfg broker.Config,
) (owner string, durable map[string]placement) {
	t.Helper()
	c, err := New(seeds, dial, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, owner, code, err := c.owner(context.Background(), topic, partition)
	if err != nil || code != 0 {
		t.Fatalf("owner: %v code %d", err, code)
	}
	fs.Crash()
	b.Close()
	b2, err := broker.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	return owner, durablePlacement(t, b2)
}

func meshController(t *testing.T, b *broker.Broker) ([]endpoint.NodeAddr, func(endpoint.NodeAddr) *brokermesh.Caller) {
	t.Helper()
	gw, ctl := newEP(t), newEP(t)
	var trust brokermesh.TrustList
	trust.Add(gw.NodeID())
	brokermesh.Serve(ctl, brokermesh.NewServer(nil, brokerop.Parts{Data: b, Admin: b, Producers: b}), trust, nil)
	other := key.GenerateSecretKey().Public()
	for other.String() < ctl.NodeID().String() {
		other = key.GenerateSecretKey().Public()
	}
	seeds := []endpoint.NodeAddr{ctl.Addr(), {ID: other}}
	caller := brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, ctl.Addr()), "controller")
	return seeds, func(endpoint.NodeAddr) *brokermesh.Caller { return caller }
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
	seeds, dial := meshController(t, b)
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
	other := placement{TopicID: topicIDHex(md.Topics[0].TopicID), Owners: []string{seeds[1].ID.String()}}
	pr, err := b.Produce(ctx, &brokerop.ProduceReq{Acks: 1, Partitions: []brokerop.ProducePartition{
		{Topic: PlacementTopic, Records: encodeRecordBatch([]byte("orders"), encodePlacement(other), time.UnixMilli(1))}}})
	if err != nil || pr.Partitions[0].ErrorCode != 0 {
		t.Fatalf("append: %v %+v", err, pr)
	}

	// Power cut on the controller: what the gateway acted on must be what the log keeps.
	owner, durable := routeThenCrash(t, seeds, dial, "orders", 0, fs, b, bcfg)
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
	seeds, dial := meshController(t, b)
	ctx := context.Background()
	if _, err := b.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{
		{Name: "orders", NumPartitions: 2, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	owner, durable := routeThenCrash(t, seeds, dial, "orders", 1, fs, b, bcfg)
	p, ok := durable["orders"]
	if !ok || len(p.Owners) != 2 || p.Owners[1] != owner {
		t.Fatalf("gateway routes orders-1 to %s; durable placement after a crash: %+v (found %v)", owner, p, ok)
	}
}
