package quorum_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/cluster"
)

// TestQuorumWipedBrokerRejoins: a follower, then the leader, is killed, its data directory
// deleted (identity kept: a replaced disk, same NodeId) and restarted. It must rejoin under a
// new raft id (never voting with a forgotten log), the old raft id must leave the voters, it
// must hold the cluster's state again, and nothing acknowledged is lost.
func TestQuorumWipedBrokerRejoins(t *testing.T) {
	c := startQuorum(t, cluster.Options{Brokers: 3, Gateways: 1})
	cfg, w := startLoad(t, c, false, 0)
	for _, which := range []string{"follower", "leader"} {
		leader := caughtUp(t, c, time.Minute)
		victim := leader
		if which == "follower" {
			victim = c.Brokers[(leader.Index+1)%3]
		}
		before, err := victim.QuorumStatus()
		if err != nil {
			t.Fatal(err)
		}
		victim.Kill()
		victim.Wipe(t, true)
		victim.Start(t)
		at := time.Now()
		cluster.WaitFor(t, which+" "+victim.Name+" rejoined under a new raft id", time.Minute, func() (bool, string) {
			statuses := map[string]*Status{}
			for _, b := range running(c) {
				s, err := b.QuorumStatus()
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
				m, ok := s.Member(victim.ID)
				seen = append(seen, fmt.Sprintf("%s sees it as raft id %d (was %d), voter %v; %d voters", b.Name, m.RaftID, before.RaftID, m.Voter, len(s.Voters())))
				done = done && ok && m.RaftID != before.RaftID && m.Voter && len(s.Voters()) == 3
			}
			return done, strings.Join(seen, "; ")
		})
		caughtUp(t, c, time.Minute)
		after, err := victim.QuorumStatus()
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
// promoted to voter; then the leader is removed, asked through its own admin API (it hands
// the leadership to another voter first, which removes it). The quorum is then the three
// others, and nothing acknowledged is lost.
func TestQuorumAddRemove(t *testing.T) {
	c := startQuorum(t, cluster.Options{Brokers: 3, Spares: 1, Gateways: 1})
	cfg, w := startLoad(t, c, false, 0)
	spare := c.Brokers[3]

	caughtUp(t, c, time.Minute)
	adminRetry(t, c.Brokers[1], "/quorum/add?node="+spare.ID)
	spare.Start(t)
	cluster.WaitFor(t, spare.Name+" promoted to voter", 2*time.Minute, func() (bool, string) {
		s, err := c.Brokers[1].QuorumStatus()
		if err != nil {
			return false, err.Error()
		}
		m, ok := s.Member(spare.ID)
		if ok && m.Learner {
			// Admitted and a learner: ask again, which promotes it.
			_, _ = c.Brokers[1].AdminCall(http.MethodPost, "/quorum/add?node="+spare.ID)
		}
		return ok && m.Voter, fmt.Sprintf("%+v (listed %v)", m, ok)
	})
	caughtUp(t, c, time.Minute)
	t.Logf("%s added as a voter", spare.Name)

	gone := caughtUp(t, c, time.Minute)
	at := time.Now()
	adminRetry(t, gone, "/quorum/remove?node="+gone.ID)
	if err := gone.Stop(); err != nil {
		t.Logf("%s stopped: %v", gone.Name, err)
	}
	var want []string
	for _, b := range c.Brokers {
		if b != gone {
			want = append(want, b.ID)
		}
	}
	slices.Sort(want)
	cluster.WaitFor(t, gone.Name+" removed, the others voters", time.Minute, func() (bool, string) {
		for _, b := range running(c) {
			s, err := b.QuorumStatus()
			if err != nil {
				return false, err.Error()
			}
			_, listed := s.Member(gone.ID)
			if listed || !slices.Equal(s.Voters(), want) {
				return false, fmt.Sprintf("%s: voters %v, %s listed %v", b.Name, s.Voters(), gone.Name, listed)
			}
		}
		return true, ""
	})
	caughtUp(t, c, time.Minute)
	t.Logf("%s removed; metadata writes after %v", gone.Name, w.WaitOK(t, at, time.Minute, metadataOps...))
	check(t, cfg, w)
}

// adminRetry POSTs an admin call until it succeeds: 503 (no leader at the moment, e.g. just
// after a leader change) is retriable, anything else fails the test.
func adminRetry(t *testing.T, b *cluster.Broker, path string) {
	t.Helper()
	cluster.WaitFor(t, "POST "+path, time.Minute, func() (bool, string) {
		body, err := b.AdminCall(http.MethodPost, path)
		if err != nil && !strings.Contains(err.Error(), "503") {
			t.Fatalf("%v", err)
		}
		return err == nil, fmt.Sprintf("%v %s", err, body)
	})
}
