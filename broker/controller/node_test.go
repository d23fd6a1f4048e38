package controller

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func endpointWith(t *testing.T, sk key.SecretKey, bind string) *endpoint.Endpoint {
	t.Helper()
	ep, err := endpoint.New(endpoint.Options{SecretKey: sk, BindAddr: bind})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// Three brokers started at once with the same seeds over the real raft transport form one
// cluster (the smallest NodeId bootstraps it, the others join); a broker restarted on its data
// directory comes back as the same member with its topics.
func TestStartNodeSeedsAndRestart(t *testing.T) {
	gw := endpointWith(t, key.GenerateSecretKey(), "127.0.0.1:0")
	defer gw.Close()
	type member struct {
		sk  key.SecretKey
		dir string
		ep  *endpoint.Endpoint
		n   *Node
	}
	ms := make([]*member, 3)
	var seeds []endpoint.NodeAddr
	for i := range ms {
		m := &member{sk: key.GenerateSecretKey(), dir: t.TempDir()}
		m.ep = endpointWith(t, m.sk, "127.0.0.1:0")
		seeds = append(seeds, m.ep.Addr())
		ms[i] = m
	}
	start := func(m *member) {
		n, err := StartNode(context.Background(), NodeConfig{Broker: broker.Config{Dir: m.dir}, Endpoint: m.ep, Seeds: seeds,
			Trust: func(k key.PublicKey) bool { return k == gw.NodeID() }, Logger: testLog()})
		if err != nil {
			t.Error(err)
			return
		}
		m.n = n
	}
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() { start(m) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	defer func() {
		for _, m := range ms {
			if m.n != nil {
				m.n.Close()
			}
			m.ep.Close()
		}
	}()
	caller := func(m *member) brokerop.Service {
		return newGatewayCaller(gw, m.ep.Addr())
	}
	eventually(t, "three voters", func() error {
		st := ms[0].n.Controller.Status()
		nv := 0
		for _, b := range st.Brokers {
			if b.Voter {
				nv++
			}
		}
		if len(st.Brokers) != 3 || nv != 3 || st.LeaderNodeID == "" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	ctx, cancel := ctx5()
	cr, err := caller(ms[1]).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "t", NumPartitions: 3, ReplicationFactor: 1}}})
	cancel()
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %+v %v", cr, err)
	}
	// Restart a follower on its directory and port.
	li := -1
	for i, m := range ms {
		if st := m.n.Raft.Status(); st.Leader == st.ID {
			li = i
		}
	}
	r := ms[(li+1)%3]
	raftID := r.n.Log.RaftID()
	bind := r.ep.Addr().Direct[0].String()
	r.n.Close()
	r.ep.Close()
	r.ep = endpointWith(t, r.sk, bind)
	start(r)
	if t.Failed() {
		t.FailNow()
	}
	if r.n.Log.RaftID() != raftID {
		t.Fatalf("raft id changed over a restart: %x → %x", raftID, r.n.Log.RaftID())
	}
	eventually(t, "restarted broker has the topic", func() error {
		md, err := r.n.Broker.Metadata(context.Background(), &brokerop.MetadataReq{Topics: []string{"t"}})
		if err != nil || md.Topics[0].ErrorCode != 0 || md.Topics[0].TopicID != cr.Topics[0].TopicID {
			return fmt.Errorf("%+v %v", md, err)
		}
		return nil
	})
	eventually(t, "still three voters", func() error {
		ctx, cancel := ctx5()
		defer cancel()
		cb, err := caller(r).ClusterBrokers(ctx, &brokerop.ClusterBrokersReq{})
		if err != nil {
			return err
		}
		if len(cb.Brokers) != 3 {
			return fmt.Errorf("brokers %+v", cb.Brokers)
		}
		for _, b := range cb.Brokers {
			if !b.Voter || !b.Live {
				return fmt.Errorf("broker %+v", b)
			}
		}
		return nil
	})
}

// A broker that ran before the metadata quorum keeps its topics (and their data), committed
// offsets and producer ids when it starts as a quorum of one.
func TestStartNodeImportsLegacyState(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := broker.Open(broker.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := b.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "old", NumPartitions: 2, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "123456"}}}})
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("%+v %v", cr, err)
	}
	if r, err := b.Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "old", Partition: 1, Records: batch("x")}}}); err != nil || r.Partitions[0].ErrorCode != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	pid, err := b.InitProducerID(ctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	g, err := group.Open(group.Config{Dir: filepath.Join(dir, "groups")})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := g.OffsetCommit(ctx, &brokerop.OffsetCommitReq{Group: "g", Generation: -1, Topics: []brokerop.OffsetCommitTopic{{Topic: "old", Partitions: []brokerop.OffsetCommitPartition{{Partition: 1, Offset: 1, LeaderEpoch: -1}}}}}); err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	g.Close()

	_, _, c := startGatewayNode(t, NodeConfig{Broker: broker.Config{Dir: dir}})
	var md *brokerop.MetadataResp
	eventually(t, "metadata", func() error {
		cctx, cancel := ctx5()
		defer cancel()
		md, err = c.Metadata(cctx, &brokerop.MetadataReq{})
		return err
	})
	if len(md.Topics) != 1 || md.Topics[0].TopicID != cr.Topics[0].TopicID || len(md.Topics[0].Partitions) != 2 {
		t.Fatalf("topics after import: %+v", md.Topics)
	}
	cctx, cancel := ctx5()
	defer cancel()
	fr, err := c.Fetch(cctx, &brokerop.FetchReq{MaxBytes: 1 << 20, Partitions: []brokerop.FetchPartition{{Topic: "old", Partition: 1, MaxBytes: 1 << 20}}})
	if err != nil || fr.Partitions[0].HighWatermark != 1 {
		t.Fatalf("data after import: %+v %v", fr, err)
	}
	dc, err := c.DescribeConfigs(cctx, &brokerop.DescribeConfigsReq{Resources: []brokerop.DescribeConfigsResource{{Type: brokerop.ResourceTopic, Name: "old", ConfigNames: []string{"retention.ms"}}}})
	if err != nil || *dc.Resources[0].Configs[0].Value != "123456" {
		t.Fatalf("configs after import: %+v %v", dc, err)
	}
	of, err := c.OffsetFetch(cctx, &brokerop.OffsetFetchReq{Group: "g"})
	if err != nil || len(of.Topics) != 1 || of.Topics[0].Partitions[0].Offset != 1 {
		t.Fatalf("offsets after import: %+v %v", of, err)
	}
	p2, err := c.InitProducerID(cctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
	if err != nil || p2.ProducerID <= pid.ProducerID {
		t.Fatalf("producer id after import %+v, before %d, %v", p2, pid.ProducerID, err)
	}
}

// A broker that is a quorum of one answers a CreateTopics sent the moment it started (before
// its leadership watcher registered it): the op registers it first, so the topic's partitions
// have an owner.
func TestSingleBrokerCreatesRightAway(t *testing.T) {
	_, ep, c := startGatewayNode(t, NodeConfig{Broker: broker.Config{Dir: t.TempDir()}})
	ctx, cancel := ctx5()
	defer cancel()
	cr, err := c.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "now", NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || cr.Topics[0].ErrorCode != 0 {
		t.Fatalf("create at start-up: %+v %v", cr, err)
	}
	pl, err := c.Placement(ctx, &brokerop.PlacementReq{Topics: []string{"now"}})
	if err != nil || len(pl.Topics[0].Owners) != 2 || pl.Topics[0].Owners[0] != ep.NodeID().String() {
		t.Fatalf("placement: %+v %v", pl, err)
	}
}
