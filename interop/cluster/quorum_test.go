package cluster_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/controller"
	"github.com/meshkafka/meshkafka/interop/cluster"
)

// TestQuorumHelpers: three brokers started with Options.Quorum form one quorum whose leader
// every broker names; each broker's Kafka id maps back to it; after the leader is killed the
// two others agree on another leader, and the restarted broker rejoins under the same Kafka
// id.
func TestQuorumHelpers(t *testing.T) {
	cluster.RequireQuorum(t)
	c := cluster.Start(t, cluster.Options{Brokers: 3, Quorum: true})
	leader, s := c.QuorumLeader(t, c.Brokers, time.Minute)
	if len(s.Voters()) != 3 {
		t.Fatalf("leader %s: voters %v", leader.Name, s.Voters())
	}
	ids, err := c.KafkaIDs()
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, b := range ids {
		named = append(named, b.Name)
	}
	slices.Sort(named)
	if !slices.Equal(named, []string{"broker-0", "broker-1", "broker-2"}) {
		t.Fatalf("Kafka ids map to %v", named)
	}
	leader.Kill()
	next, _ := c.QuorumLeader(t, c.Running(), time.Minute)
	if next == leader || !next.Running() {
		t.Fatalf("after killing %s the others name %s", leader.Name, next.Name)
	}
	leader.Start(t)
	cluster.WaitFor(t, leader.Name+" back under its Kafka id", time.Minute, func() (bool, string) {
		again, err := c.KafkaIDs()
		if err != nil {
			return false, err.Error()
		}
		for id, b := range ids {
			if again[id] != b {
				return false, "ids differ"
			}
		}
		st, err := leader.QuorumStatus()
		return err == nil && st.LeaderNodeID != "", "no leader seen yet"
	})
}

// TestQuorumStatusDecodes: the admin API's JSON of a controller.QuorumStatus decodes into the
// harness's QuorumStatus field for field, and Member and Voters read it.
func TestQuorumStatusDecodes(t *testing.T) {
	want := controller.QuorumStatus{NodeID: "n1", RaftID: 1, LeaderRaftID: 2, LeaderNodeID: "n2", Term: 3,
		Commit: 4, Applied: 5, ClusterID: "c", Brokers: []controller.StatusBroker{
			{NodeID: "n2", RaftID: 2, KafkaID: 7, Addrs: []string{"127.0.0.1:1"}, Voter: true, Live: true, Leader: true},
			{NodeID: "n1", RaftID: 1, KafkaID: 6, Relay: "r", Voter: true},
			{NodeID: "n3", RaftID: 3, KafkaID: 8, Learner: true, Replicas: 2},
		}}
	body, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got cluster.QuorumStatus
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.QuorumStatus, want) {
		t.Fatalf("decoded %+v, want %+v", got.QuorumStatus, want)
	}
	if m, ok := got.Member("n3"); !ok || m.KafkaID != 8 || !m.Learner {
		t.Fatalf("Member(n3) = %+v, %v", m, ok)
	}
	if v := got.Voters(); !slices.Equal(v, []string{"n1", "n2"}) {
		t.Fatalf("Voters() = %v", v)
	}
}
