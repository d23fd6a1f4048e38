package cluster_test

import (
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// TestClusterFaultsLoopback: three brokers and a gateway as processes on loopback, under a
// recording workload (producers, a consumer, topic creation, offset commits, InitProducerID):
// a broker paused and resumed, another killed and restarted; afterwards the checker finds
// every acknowledged record, commit and topic. The brokers form one metadata quorum (as every
// multi-broker deployment does: without seeds each broker would be a cluster of its own, and
// a gateway in front of three separate clusters routes by luck, which made these tests fail
// about one run in three).
func TestClusterFaultsLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("process cluster test skipped in -short mode")
	}
	c := cluster.Start(t, cluster.Options{Brokers: 3, Gateways: 1, Quorum: true})
	runFaults(t, c)
}

// TestClusterFaultsNamespacesRelay: the same with every broker and the gateway in its own
// network namespace and direct UDP between them dropped, so that the mesh runs through the
// cmd/relay on the hub.
func TestClusterFaultsNamespacesRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("process cluster test skipped in -short mode")
	}
	cluster.RequireNamespaces(t)
	c := cluster.New(t, cluster.Options{Brokers: 3, Gateways: 1, Netns: true, Relay: true, Quorum: true})
	c.Net.RelayOnly(true)
	c.StartBrokers(t, c.Brokers...)
	c.Gateways[0].Start(t)
	runFaults(t, c)
	if c.Net.Dropped() == 0 {
		t.Errorf("relay-only: no direct UDP packet was dropped, so the relay was not shown to carry the mesh")
	}
}

func runFaults(t *testing.T, c *cluster.Cluster) {
	rec := checker.NewRecorder(nil)
	cfg := workload.Config{Seeds: []string{c.Gateways[0].Addr}, Dial: c.Dialer(), Rec: rec, Metadata: true, Consumers: 1}
	cfg.CreateTopic(t)
	w := workload.Start(t, cfg)
	all := []string{checker.OpProduce, checker.OpCreateTopics, checker.OpOffsetCommit, checker.OpOffsetFetch, checker.OpInitProducerID}
	w.WaitOK(t, time.Time{}, time.Minute, all...)

	b := c.Brokers[2]
	b.Pause()
	at := time.Now()
	time.Sleep(500 * time.Millisecond) // the load runs against a paused broker
	b.Resume()
	t.Logf("after a 500ms pause of %s: %v", b.Name, w.WaitOK(t, at, time.Minute, checker.OpProduce))

	b = c.Brokers[1]
	b.Kill()
	at = time.Now()
	b.Start(t)
	t.Logf("after a kill and restart of %s: %v", b.Name, w.WaitOK(t, at, time.Minute, all...))

	w.Stop()
	workload.Final(t, cfg, w.Topics())
	rep := workload.Check(t, rec.History())
	t.Log(rep.String())
	if rep.AckedSends == 0 || rep.AckedCommits == 0 || rep.AckedTopics == 0 || rep.ProducerIDs == 0 || rep.ReadRecords == 0 {
		t.Fatalf("the workload did not exercise everything: %s", rep.String())
	}
}
