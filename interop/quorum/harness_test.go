package quorum_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// startQuorum starts o.Brokers brokers of one quorum (they are its seeds; every broker,
// spares included, gets -quorum-seeds with them, -quorum-voters 3 and an admin listener),
// then the gateways.
func startQuorum(t testing.TB, o cluster.Options) *cluster.Cluster {
	t.Helper()
	cluster.RequireQuorum(t)
	var c *cluster.Cluster
	seeds := o.Brokers
	o.BrokerArgs = func(b *cluster.Broker) []string {
		if seeds == 1 {
			return []string{"-admin", b.Admin} // no seeds: a quorum of one
		}
		return []string{"-quorum-seeds", cluster.Seeds(c.Brokers[:seeds]...), "-quorum-voters", "3", "-admin", b.Admin}
	}
	c = cluster.New(t, o)
	if c.Net != nil && o.Relay {
		c.Net.RelayOnly(true)
	}
	c.StartBrokers(t, c.Brokers[:seeds]...)
	for _, g := range c.Gateways {
		g.Start(t)
	}
	return c
}

// Status and BrokerStatus are the admin API's quorum view (package interop/cluster reads it).
type (
	Status       = cluster.QuorumStatus
	BrokerStatus = cluster.QuorumMember
)

// agreedLeader returns the broker that every given broker names as the leader, once they all
// agree and the leader names itself.
func agreedLeader(t testing.TB, c *cluster.Cluster, among []*cluster.Broker, timeout time.Duration) (*cluster.Broker, *Status) {
	t.Helper()
	var leader *cluster.Broker
	var leaderStatus *Status
	cluster.WaitFor(t, "a leader all brokers agree on", timeout, func() (bool, string) {
		var views []string
		names := map[string]int{}
		statuses := map[string]*Status{}
		for _, b := range among {
			s, err := b.QuorumStatus()
			if err != nil {
				views = append(views, fmt.Sprintf("%s: %v", b.Name, err))
				continue
			}
			statuses[b.ID] = s
			names[s.LeaderNodeID]++
			views = append(views, fmt.Sprintf("%s: leader %s term %d commit %d applied %d", b.Name, short(s.LeaderNodeID), s.Term, s.Commit, s.Applied))
		}
		splitBrain(t, statuses)
		for id, n := range names {
			if n == len(among) && id != "" && statuses[id] != nil && statuses[id].LeaderNodeID == id {
				leader, leaderStatus = c.BrokerByNodeID(id), statuses[id]
				return true, ""
			}
		}
		return false, strings.Join(views, "; ")
	})
	return leader, leaderStatus
}

// splitBrain fails the test at once if two brokers (by NodeId) report different cluster ids:
// two quorums answer for one cluster.
func splitBrain(t testing.TB, statuses map[string]*Status) {
	t.Helper()
	clusters := map[string][]string{}
	for id, s := range statuses {
		if s.ClusterID != "" {
			clusters[s.ClusterID] = append(clusters[s.ClusterID], short(id)+" (leader "+short(s.LeaderNodeID)+fmt.Sprintf(", %d voters)", len(s.Voters())))
		}
	}
	if len(clusters) > 1 {
		t.Fatalf("split brain: the brokers report %d cluster ids: %v", len(clusters), clusters)
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func running(c *cluster.Cluster) []*cluster.Broker {
	var out []*cluster.Broker
	for _, b := range c.Brokers {
		if b.Running() {
			out = append(out, b)
		}
	}
	return out
}

// caughtUp waits until every running broker agrees on the leader, the quorum has its voters
// (every running broker up to the target of 3: a fault injected before the quorum is whole
// may take the majority with it), and every running broker has applied at least the leader's
// commit index as seen then.
func caughtUp(t testing.TB, c *cluster.Cluster, timeout time.Duration) *cluster.Broker {
	t.Helper()
	bs := running(c)
	want := min(len(bs), 3)
	var leader *cluster.Broker
	var ls *Status
	cluster.WaitFor(t, fmt.Sprintf("a leader with %d voters", want), timeout, func() (bool, string) {
		leader, ls = agreedLeader(t, c, bs, timeout)
		return len(ls.Voters()) >= want, fmt.Sprintf("leader %s, voters %v", leader.Name, ls.Voters())
	})
	cluster.WaitFor(t, "every broker applied the leader's commit index", timeout, func() (bool, string) {
		var behind []string
		for _, b := range bs {
			s, err := b.QuorumStatus()
			if err != nil || s.Applied < ls.Commit {
				behind = append(behind, fmt.Sprintf("%s (%v, %+v)", b.Name, err, s))
			}
		}
		return len(behind) == 0, strings.Join(behind, "; ")
	})
	return leader
}

// killCycles is QUORUM_KILL_CYCLES, else def.
func killCycles(def int) int { return cluster.EnvCount("QUORUM_KILL_CYCLES", def) }

// startLoad starts the recording workload (interop/workload) through the first gateway and
// waits until each of its operations has succeeded once. With produce, idempotent acks=all
// producers and a consumer run besides the metadata writers; without, metadata only: until
// partitions are replicated (issue #16) a lost disk or a removed broker takes its partitions'
// records with it, which is not what those tests are about. interval 0 takes the default.
func startLoad(t testing.TB, c *cluster.Cluster, produce bool, interval time.Duration) (workload.Config, *workload.Workload) {
	t.Helper()
	cfg := workload.Config{Seeds: []string{c.Gateways[0].Addr}, Dial: c.Dialer(), Rec: checker.NewRecorder(nil),
		Metadata: true, NoProduce: !produce, Interval: interval}
	ops := metadataOps
	if produce {
		cfg.Consumers = 1
		ops = append(ops[:len(ops):len(ops)], checker.OpProduce)
	}
	cfg.CreateTopic(t)
	w := workload.Start(t, cfg)
	w.WaitOK(t, time.Time{}, time.Minute, ops...)
	return cfg, w
}

// metadataOps are the operations that must work again after the leader is lost.
var metadataOps = []string{checker.OpCreateTopics, checker.OpOffsetCommit, checker.OpOffsetFetch, checker.OpInitProducerID}

// check runs the final drain and listing and the checker; on anomalies it keeps the history
// and fails.
func check(t testing.TB, cfg workload.Config, w *workload.Workload) checker.Report {
	t.Helper()
	w.Stop()
	workload.Final(t, cfg, w.Topics())
	rep := workload.Check(t, cfg.Rec.History())
	t.Log("checker: " + rep.String())
	return rep
}

// randomNodeID is a NodeId nobody has.
func randomNodeID() string {
	return key.GenerateSecretKey().Public().String()
}
