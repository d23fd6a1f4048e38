package quorum_test

import (
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

// TestQuorumLeaderPaused: the quorum leader SIGSTOPped until the others elect a new leader and
// serve metadata writes, then SIGCONTed: it wakes up believing it leads, and must step down
// rather than acknowledge anything on its own (three cycles). The checker then finds every
// acknowledged record, topic, commit and producer id, and no committed offset going back.
func TestQuorumLeaderPaused(t *testing.T) {
	c := startQuorum(t, cluster.Options{Brokers: 3, Gateways: 1})
	cfg, w := startLoad(t, c, true, 0)
	for cycle := range 3 {
		old := caughtUp(t, c, time.Minute)
		old.Pause()
		at := time.Now()
		var others []*cluster.Broker
		for _, b := range c.Brokers {
			if b != old {
				others = append(others, b)
			}
		}
		newLeader, _ := agreedLeader(t, c, others, time.Minute)
		got := w.WaitOK(t, at, time.Minute, metadataOps...)
		old.Resume()
		resumed := time.Now()
		leader := caughtUp(t, c, time.Minute)
		if leader == old {
			t.Logf("cycle %d: %s leads again after its resume (a later election)", cycle, old.Name)
		}
		w.WaitOK(t, resumed, time.Minute, checker.OpProduce)
		t.Logf("cycle %d: paused leader %s; %s elected; metadata writes after %v; resumed, leader now %s",
			cycle, old.Name, newLeader.Name, got.Max().Round(time.Millisecond), leader.Name)
	}
	check(t, cfg, w)
}
