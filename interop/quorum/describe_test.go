package quorum_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// TestQuorumDescribe: a Kafka client's view of the quorum through the gateway. DescribeQuorum
// (API 55; kadm v1.20 has no helper, so the kmsg request, which kgo sends to the controller)
// names the quorum leader by its Kafka broker id, with the three voters; DescribeCluster's
// controller id is that same broker (Metadata's stays the gateway's own id: the gateway is
// the one broker clients see there). After the leader is killed, both name the new leader,
// DescribeQuorum at a higher epoch.
func TestQuorumDescribe(t *testing.T) {
	c := startQuorum(t, cluster.Options{Brokers: 3, Gateways: 1})
	cfg := workload.Config{Seeds: []string{c.Gateways[0].Addr}, Dial: c.Dialer()}
	cl := cfg.Client(t)

	var lastEpoch int32 = -1
	for round := range 2 {
		leader := caughtUp(t, c, time.Minute)
		s, err := leader.QuorumStatus()
		if err != nil {
			t.Fatal(err)
		}
		lb, _ := s.Member(leader.ID)
		var voters []int32
		for _, b := range s.Brokers {
			if b.Voter {
				voters = append(voters, b.KafkaID)
			}
		}
		slices.Sort(voters)
		cluster.WaitFor(t, "DescribeQuorum and the controller id name the leader", time.Minute, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req := kmsg.NewPtrDescribeQuorumRequest()
			rt := kmsg.NewDescribeQuorumRequestTopic()
			rt.Topic = "__cluster_metadata"
			rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return false, err.Error()
			}
			if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				return false, fmt.Sprintf("%+v", resp)
			}
			p := resp.Topics[0].Partitions[0]
			var got []int32
			for _, v := range p.CurrentVoters {
				got = append(got, v.ReplicaID)
			}
			slices.Sort(got)
			dc := kmsg.NewPtrDescribeClusterRequest()
			dcr, err := dc.RequestWith(ctx, cl)
			if err != nil {
				return false, err.Error()
			}
			ok := p.ErrorCode == 0 && p.LeaderID == lb.KafkaID && p.LeaderEpoch > lastEpoch && p.HighWatermark > 0 &&
				slices.Equal(got, voters) && dcr.ControllerID == lb.KafkaID
			if ok {
				lastEpoch = p.LeaderEpoch
			}
			return ok, fmt.Sprintf("leader %s is Kafka id %d; DescribeQuorum: leader %d epoch %d (before %d) hw %d voters %v (want %v); DescribeCluster controller %d",
				leader.Name, lb.KafkaID, p.LeaderID, p.LeaderEpoch, lastEpoch, p.HighWatermark, got, voters, dcr.ControllerID)
		})
		t.Logf("round %d: DescribeQuorum names %s (Kafka id %d) at epoch %d", round, leader.Name, lb.KafkaID, lastEpoch)
		if round == 0 {
			leader.Kill()
			cluster.WaitFor(t, "a new leader", time.Minute, func() (bool, string) {
				l, _ := agreedLeader(t, c, running(c), time.Minute)
				return l != leader, l.Name
			})
			leader.Start(t)
		}
	}
}
