package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// DescribeQuorum, asked of any broker, is the leader's raft view: the leader's Kafka id (the
// controller id DescribeCluster gives), its term, the commit index, the three voters and the
// fourth broker as an observer (the voter target is 3), each under its Kafka broker id.
func TestDescribeQuorum(t *testing.T) {
	h := newHarness(t, 4)
	for i := range 4 {
		h.start(i, i == 0, h.seeds)
	}
	cb := h.waitMembers(0, 4, 3)
	li, err := h.leaderIndex()
	if err != nil {
		t.Fatal(err)
	}
	kafkaID := map[uint64]int32{} // by raft id
	for _, m := range h.nodes[li].ctl.members() {
		kafkaID[m.RaftID] = m.KafkaID
	}
	var voters, learners []int32
	for _, b := range cb.Brokers {
		if b.Voter {
			voters = append(voters, kafkaID[b.RaftID])
		} else {
			learners = append(learners, kafkaID[b.RaftID])
		}
	}
	slices.Sort(voters)
	via := (li + 1) % 4
	var q *brokerop.DescribeQuorumResp
	eventually(t, "every member replicated up to the commit index", func() error {
		ctx, cancel := ctx5()
		defer cancel()
		var err error
		if q, err = h.caller(via).DescribeQuorum(ctx, &brokerop.DescribeQuorumReq{}); err != nil {
			return err
		}
		for _, m := range append(slices.Clone(q.Voters), q.Observers...) {
			if m.LogEnd < q.Commit || m.LastContactMs < 0 {
				return fmt.Errorf("member %+v behind commit %d or never seen", m, q.Commit)
			}
		}
		return nil
	})
	ctx, cancel := ctx5()
	defer cancel()
	dc, err := h.caller(via).DescribeCluster(ctx, &brokerop.DescribeClusterReq{})
	if err != nil {
		t.Fatal(err)
	}
	st := h.nodes[li].q.Status()
	if q.ErrorCode != 0 || q.LeaderKafkaID != kafkaID[h.nodes[li].id] || q.LeaderKafkaID != dc.ControllerID || q.Term != st.Term || q.Commit == 0 {
		t.Fatalf("describe quorum %+v; DescribeCluster controller %d; leader's Kafka id %d, term %d", q, dc.ControllerID, kafkaID[h.nodes[li].id], st.Term)
	}
	var gotVoters, gotObservers []int32
	for _, m := range q.Voters {
		gotVoters = append(gotVoters, m.KafkaID)
	}
	for _, m := range q.Observers {
		gotObservers = append(gotObservers, m.KafkaID)
	}
	slices.Sort(gotVoters)
	if !slices.Equal(gotVoters, voters) || !slices.Equal(gotObservers, learners) || len(learners) != 1 {
		t.Fatalf("voters %v observers %v, want %v and %v", gotVoters, gotObservers, voters, learners)
	}
}
