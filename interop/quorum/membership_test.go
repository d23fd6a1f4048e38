package quorum_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// metadataWorkload starts clients writing metadata only: until partitions are replicated
// (issue #16) a lost disk or a removed broker takes its partitions' records with it, which is
// not what these tests are about.
func metadataWorkload(t *testing.T, c *cluster.Cluster) (workload.Config, *workload.Workload) {
	t.Helper()
	cfg := workload.Config{Seeds: []string{c.Gateways[0].Addr}, Dial: c.Dialer(), Rec: checker.NewRecorder(nil), Metadata: true, NoProduce: true}
	cfg.CreateTopic(t)
	w := workload.Start(t, cfg)
	w.WaitOK(t, time.Time{}, time.Minute, metadataOps...)
	return cfg, w
}

// TestQuorumWipedBrokerRejoins: a follower, then the leader, is killed, its data directory
// deleted (identity kept: a replaced disk, same NodeId) and restarted. It must rejoin under a
// new raft id (never voting with a forgotten log), the old raft id must leave the voters, it
// must hold the cluster's state again, and nothing acknowledged is lost.
func TestQuorumWipedBrokerRejoins(t *testing.T) {
	requireQuorum(t)
	c := startQuorum(t, cluster.Options{Brokers: 3, Gateways: 1})
	cfg, w := metadataWorkload(t, c)
	for _, which := range []string{"follower", "leader"} {
		leader := caughtUp(t, c, time.Minute)
		victim := leader
		if which == "follower" {
			victim = c.Brokers[(leader.Index+1)%3]
		}
		before, err := status(victim)
		if err != nil {
			t.Fatal(err)
		}
		victim.Kill()
		victim.Wipe(t, true)
		victim.Start(t)
		at := time.Now()
		waitFor(t, which+" "+victim.Name+" rejoined under a new raft id", time.Minute, func() (bool, string) {
			statuses := map[string]*Status{}
			for _, b := range running(c) {
				s, err := status(b)
				if err != nil {
					return false, err.Error()
				}
				statuses[b.ID] = s
			}
			splitBrain(t, statuses)
			var seen []string
			done := true
			for _, b := range running(c) {
				s := statuses[b.ID]
				m, ok := s.broker(victim.ID)
				seen = append(seen, fmt.Sprintf("%s sees it as raft id %d (was %d), voter %v; %d voters", b.Name, m.RaftID, before.RaftID, m.Voter, len(s.voters())))
				done = done && ok && m.RaftID != before.RaftID && m.Voter && len(s.voters()) == 3
			}
			return done, strings.Join(seen, "; ")
		})
		caughtUp(t, c, time.Minute)
		after, err := status(victim)
		if err != nil {
			t.Fatal(err)
		}
		if after.RaftID == before.RaftID || after.ClusterID != before.ClusterID {
			t.Fatalf("%s after the wipe: raft id %d (was %d), cluster %q (was %q)", victim.Name, after.RaftID, before.RaftID, after.ClusterID, before.ClusterID)
		}
		got := w.WaitOK(t, at, time.Minute, metadataOps...)
		t.Logf("wiped %s %s rejoined as raft id %d (was %d); metadata writes after %v", which, victim.Name, after.RaftID, before.RaftID, got)
	}
	check(t, cfg, w)
}

// TestQuorumAddRemove: with clients writing metadata, a fourth broker is admitted, started and
// promoted to voter; then an original broker (stopped first if it leads: a leader cannot
// remove itself) is removed. The quorum is then the three others, and nothing acknowledged is
// lost.
func TestQuorumAddRemove(t *testing.T) {
	requireQuorum(t)
	c := startQuorum(t, cluster.Options{Brokers: 3, Spares: 1, Gateways: 1})
	cfg, w := metadataWorkload(t, c)
	spare, gone := c.Brokers[3], c.Brokers[0]

	if _, err := admin(c.Brokers[1], http.MethodPost, "/quorum/add?node="+spare.ID); err != nil {
		t.Fatal(err)
	}
	spare.Start(t)
	waitFor(t, spare.Name+" promoted to voter", 2*time.Minute, func() (bool, string) {
		s, err := status(c.Brokers[1])
		if err != nil {
			return false, err.Error()
		}
		m, ok := s.broker(spare.ID)
		if ok && m.Learner {
			// Admitted and a learner: ask again, which promotes it.
			_, _ = admin(c.Brokers[1], http.MethodPost, "/quorum/add?node="+spare.ID)
		}
		return ok && m.Voter, fmt.Sprintf("%+v (listed %v)", m, ok)
	})
	caughtUp(t, c, time.Minute)
	t.Logf("%s added as a voter", spare.Name)

	leader := caughtUp(t, c, time.Minute)
	if leader == gone {
		if err := gone.Stop(); err != nil {
			t.Logf("%s stopped: %v", gone.Name, err)
		}
		leader, _ = agreedLeader(t, c, running(c), time.Minute)
	}
	at := time.Now()
	if _, err := admin(leader, http.MethodPost, "/quorum/remove?node="+gone.ID); err != nil {
		t.Fatal(err)
	}
	if gone.Running() {
		if err := gone.Stop(); err != nil {
			t.Logf("%s stopped: %v", gone.Name, err)
		}
	}
	want := []string{c.Brokers[1].ID, c.Brokers[2].ID, spare.ID}
	slices.Sort(want)
	waitFor(t, gone.Name+" removed, the others voters", time.Minute, func() (bool, string) {
		for _, b := range running(c) {
			s, err := status(b)
			if err != nil {
				return false, err.Error()
			}
			_, listed := s.broker(gone.ID)
			if listed || !slices.Equal(s.voters(), want) {
				return false, fmt.Sprintf("%s: voters %v, %s listed %v", b.Name, s.voters(), gone.Name, listed)
			}
		}
		return true, ""
	})
	caughtUp(t, c, time.Minute)
	t.Logf("%s removed; metadata writes after %v", gone.Name, w.WaitOK(t, at, time.Minute, metadataOps...))
	check(t, cfg, w)
}
