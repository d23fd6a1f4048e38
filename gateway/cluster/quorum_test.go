package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// A gateway pointed at one broker (the leader) of a three-broker quorum learns the others from the quorum,
// routes partitions by the quorum's placement (no topic is created on owners), and after the
// leader broker is stopped gets CreateTopics, Metadata, OffsetFetch and InitProducerID
// answered again within bounded retries, with nothing acknowledged missing.
func TestQuorumClusterFailover(t *testing.T) {
	gw, qc := startQuorum(t, 3)
	li := leaderIndex(t, qc)
	// Seed the gateway with the leader only: once it is gone, the gateway must find the
	// others from what the quorum told it.
	c := clusterForAddrs(t, gw, qc.Brokers[li].EP)

	// create creates topic name; with existsOK, TOPIC_ALREADY_EXISTS counts as created.
	create := func(name string, parts int32, existsOK bool) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			r, err := c.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: name, NumPartitions: parts, ReplicationFactor: 1}}})
			if err != nil {
				return err
			}
			if code := r.Topics[0].ErrorCode; code != 0 && (!existsOK || code != errTopicAlreadyExists) {
				return fmt.Errorf("code %d", code)
			}
			return nil
		}
	}
	eventually(t, "create topic", create("orders", 6, false))
	if got := len(c.Brokers()); got != 3 {
		t.Fatalf("the gateway knows %d brokers, want 3 (from the quorum)", got)
	}
	// A node that announces itself on the control plane but is no member of the quorum is
	// never asked anything.
	var rogueCalls atomic.Int64
	rogue := newEP(t)
	brokermesh.Serve(rogue, brokermesh.NewServer(nil, brokerop.Intercept(brokerop.Parts{}, func(ctx context.Context, op string) (context.Context, func(error)) {
		rogueCalls.Add(1)
		return ctx, func(error) {}
	})), trustOnly(gw.NodeID()), nil)
	c.AddBroker(rogue.Addr())
	defer func() {
		if n := rogueCalls.Load(); n != 0 {
			t.Errorf("a node outside the quorum got %d ops", n)
		}
	}()
	// Produce to every partition through the gateway; each owner learned the topic from the quorum.
	for p := int32(0); p < 6; p++ {
		v := []byte(fmt.Sprintf("v%d", p))
		eventually(t, "produce", func(ctx context.Context) error {
			r, err := c.Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "orders", Partition: p, Records: oneRecord(v)}}})
			if err != nil {
				return err
			}
			if code := r.Partitions[0].ErrorCode; code != 0 {
				return fmt.Errorf("produce p%d: code %d", p, code)
			}
			return nil
		})
	}
	ctx, cancel := controllertest.Context()
	pl, err := c.Placement(ctx, &brokerop.PlacementReq{Topics: []string{"orders"}})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	owners := slices.Clone(pl.Topics[0].Owners)
	slices.Sort(owners)
	if len(slices.Compact(owners)) != 3 {
		t.Fatalf("partitions on %v, want all three brokers", pl.Topics[0].Owners)
	}
	for _, b := range qc.Brokers {
		md, err := b.Broker.Metadata(t.Context(), &brokerop.MetadataReq{Topics: []string{"orders"}})
		if err != nil || md.Topics[0].ErrorCode != 0 {
			t.Fatalf("broker %s does not know the topic: %+v %v", b.EP.NodeID().ShortString(), md, err)
		}
	}
	ctx, cancel = controllertest.Context()
	oc, err := c.OffsetCommit(ctx, &brokerop.OffsetCommitReq{Group: "g", Generation: -1, Topics: []brokerop.OffsetCommitTopic{
		{Topic: "orders", Partitions: []brokerop.OffsetCommitPartition{{Partition: 2, Offset: 1, LeaderEpoch: -1}}}}})
	cancel()
	if err != nil || oc.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit: %+v %v", oc, err)
	}
	ctx, cancel = controllertest.Context()
	pid1, err := c.InitProducerID(ctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
	cancel()
	if err != nil || pid1.ErrorCode != 0 {
		t.Fatalf("pid: %+v %v", pid1, err)
	}

	dead := qc.Brokers[li].EP.NodeID().String()
	qc.Brokers[li].Stop()

	eventually(t, "create topic after failover", create("after", 2, true))
	eventually(t, "metadata, offsets and producer ids after failover", func(ctx context.Context) error {
		md, err := c.Metadata(ctx, &brokerop.MetadataReq{})
		if err != nil {
			return err
		}
		if len(md.Topics) != 2 {
			return fmt.Errorf("topics %+v", md.Topics)
		}
		of, err := c.OffsetFetch(ctx, &brokerop.OffsetFetchReq{Group: "g", Topics: []brokerop.OffsetFetchTopic{{Topic: "orders", Partitions: []int32{2}}}})
		if err != nil {
			return err
		}
		if got := of.Topics[0].Partitions[0].Offset; got != 1 {
			t.Fatalf("committed offset after failover: %d", got)
		}
		pid2, err := c.InitProducerID(ctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
		if err != nil {
			return err
		}
		if pid2.ErrorCode != 0 || pid2.ProducerID <= pid1.ProducerID {
			t.Fatalf("producer id %+v after %d", pid2, pid1.ProducerID)
		}
		return nil
	})
	for p, o := range pl.Topics[0].Owners {
		if o == dead {
			continue
		}
		ctx, cancel := controllertest.Context()
		fr, err := c.Fetch(ctx, &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: "orders", Partition: int32(p), MaxBytes: 1 << 20}}})
		cancel()
		if err != nil || fr.Partitions[0].HighWatermark != 1 || len(fr.Partitions[0].Records) == 0 {
			t.Fatalf("acked record of p%d: %+v %v", p, fr, err)
		}
	}
}

func trustOnly(id key.PublicKey) brokermesh.TrustList {
	var t brokermesh.TrustList
	t.Add(id)
	return t
}
