package workload_test

import (
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// TestWorkloadRecordsEveryActor: against one broker and two gateways (real processes), every
// actor records what it did: producers spread over both gateways, from-the-start consumers,
// two group members committing what they read with their assignment changes, and the
// OffsetFetch reader; the drain covers every partition; the checker finds nothing wrong in a
// run without faults, and every kind of operation was recorded.
func TestWorkloadRecordsEveryActor(t *testing.T) {
	cluster.RequireQuorum(t)
	c := cluster.Start(t, cluster.Options{Brokers: 1, Gateways: 2, Quorum: true})
	cfg := workload.Config{Seeds: []string{c.Gateways[0].Addr, c.Gateways[1].Addr}, Dial: c.Dialer(), Rec: checker.NewRecorder(nil),
		Topic: "wl", Partitions: 3, Producers: 2, Consumers: 2, GroupConsumers: 2}
	cfg.CreateTopic(t)
	w := workload.Start(t, cfg)
	w.WaitOK(t, time.Time{}, time.Minute, checker.OpProduce, checker.OpOffsetCommit, checker.OpOffsetFetch)
	since := time.Now()
	for p := range cfg.Partitions {
		w.WaitSendOK(t, since, checker.TP{Topic: cfg.Topic, Partition: p}, time.Minute)
	}
	w.Stop()
	workload.Final(t, w.Config(), nil)
	h := cfg.Rec.History()
	rep := workload.Check(t, h)
	producers, consumers := map[string]bool{}, map[string]bool{}
	for _, s := range h.Sends {
		producers[s.Producer] = true
	}
	for _, p := range h.Polls {
		consumers[p.Consumer] = true
	}
	groupCommits := 0
	for _, cm := range h.Commits {
		if cm.Group == "wl-cg" && cm.OK {
			groupCommits++
		}
	}
	resets := 0
	for _, r := range h.Resets {
		if r.Consumer == "g0" || r.Consumer == "g1" {
			resets++
		}
	}
	if len(producers) != 2 || !consumers["c0"] || !consumers["c1"] || !consumers["g0"] && !consumers["g1"] ||
		groupCommits == 0 || len(h.OffsetReads) == 0 || resets == 0 || len(h.Drains) != 3 {
		t.Fatalf("not every actor recorded: producers %v, consumers %v, %d group commits, %d offset reads, %d group resets, %d drains",
			producers, consumers, groupCommits, len(h.OffsetReads), resets, len(h.Drains))
	}
	t.Logf("checker: %s; %d group commits, %d assignment changes", rep.String(), groupCommits, resets)
}
