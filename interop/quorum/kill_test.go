package quorum_test

import (
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/benchtest"
	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

// TestQuorumLeaderKill: SIGKILL the quorum leader while clients create topics, commit and
// fetch offsets, produce (acks=all) and call InitProducerID; the metadata operations work
// again without it, the killed broker is restarted and catches up, and the next cycle kills
// whoever leads then. The time from each kill to the first successful metadata write is
// logged (p50/p99 at the end), not asserted: this machine is shared. Afterwards the checker
// finds every acknowledged record, topic, config, commit, and no producer id handed out twice.
func TestQuorumLeaderKill(t *testing.T) {
	cycles := killCycles(20)
	c := startQuorum(t, cluster.Options{Brokers: 3, Gateways: 1})
	cfg, w := startLoad(t, c, true, 0)

	var failovers []time.Duration
	killed := map[string]int{}
	for cycle := range cycles {
		leader := caughtUp(t, c, time.Minute)
		time.Sleep(300 * time.Millisecond) // load running against a settled cluster
		leader.Kill()
		at := time.Now()
		killed[leader.Name]++
		rec := w.WaitOK(t, at, time.Minute, metadataOps...)
		first, what, _ := w.Config().Rec.FirstWriteAfter(at)
		failovers = append(failovers, first.Sub(at))
		leader.Start(t)
		back := time.Now()
		w.WaitOK(t, back, time.Minute, checker.OpProduce)
		t.Logf("cycle %d: killed leader %s; first metadata write (%s) %v after the kill; all of %v by %v",
			cycle, leader.Name, what, first.Sub(at).Round(time.Millisecond), metadataOps, rec.Max().Round(time.Millisecond))
	}
	caughtUp(t, c, time.Minute)
	t.Logf("failover (kill → first successful metadata write) over %d kills: p50 %v, p99 %v, max %v; leaders killed: %v",
		len(failovers), benchtest.Percentile(failovers, 0.5).Round(time.Millisecond), benchtest.Percentile(failovers, 0.99).Round(time.Millisecond),
		benchtest.Percentile(failovers, 1).Round(time.Millisecond), killed)
	rep := check(t, cfg, w)
	if rep.AckedTopics == 0 || rep.AckedCommits == 0 || rep.ProducerIDs == 0 || rep.AckedSends == 0 {
		t.Fatalf("the workload did not exercise every operation: %s", rep.String())
	}
	if cycles >= 3 && len(killed) < 2 {
		t.Errorf("the leadership never moved between brokers across %d kills: %v", cycles, killed)
	}
}
