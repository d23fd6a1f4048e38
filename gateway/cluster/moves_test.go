package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// movesSetup runs n brokers behind a gateway and creates topic "mv" with parts partitions
// at replication factor 3.
func movesSetup(t *testing.T, n int, parts int32) (string, *kadm.Client, *controllertest.Cluster) {
	addr, adm, qc, _ := movesSetupGW(t, n, parts)
	return addr, adm, qc
}

// movesSetupGW is movesSetup that also returns the gateway's endpoint.
func movesSetupGW(t *testing.T, n int, parts int32) (string, *kadm.Client, *controllertest.Cluster, *endpoint.Endpoint) {
	t.Helper()
	return movesSetupWith(t, n, parts, nil)
}

// movesSetupWith is movesSetupGW creating "mv" with topic configs.
func movesSetupWith(t *testing.T, n int, parts int32, configs map[string]*string) (string, *kadm.Client, *controllertest.Cluster, *endpoint.Endpoint) {
	t.Helper()
	addr, qc, gw := quorumKafka(t, n)
	adm := kadm.NewClient(kafkaclients.KgoClient(t, addr))
	createTopic(t, adm, parts, 3, configs, "mv")
	return addr, adm, qc, gw
}

// opCtx is a fresh context for one op, cancelled when the test ends.
func opCtx(t *testing.T) context.Context {
	ctx, cancel := controllertest.Context()
	t.Cleanup(cancel)
	return ctx
}

// partDetail is a partition as the metadata quorum places it (Kafka ids).
type partDetail struct {
	Leader, LeaderEpoch int32
	Replicas, ISR       []int32
}

// describe returns partition p of "mv" as the quorum's Metadata shows it (asked of any running
// broker's controller: a stand-alone gateway's own Metadata names itself as every
// partition's leader).
func describe(qc *controllertest.Cluster, p int32) (partDetail, error) {
	var last error = errors.New("no running broker")
	for _, b := range qc.Brokers {
		if b.Controller == nil {
			continue
		}
		ctx, cancel := controllertest.Context()
		resp, err := b.Controller.Metadata(ctx, &brokerop.MetadataReq{Topics: []string{"mv"}})
		cancel()
		if err != nil {
			last = err
			continue
		}
		for _, t := range resp.Topics {
			for _, bp := range t.Partitions {
				if t.Name == "mv" && bp.Partition == p && t.ErrorCode == 0 {
					return partDetail{Leader: bp.Leader, LeaderEpoch: bp.LeaderEpoch, Replicas: bp.Replicas, ISR: bp.ISR}, nil
				}
			}
		}
		last = fmt.Errorf("no partition %d", p)
	}
	return partDetail{}, last
}

// settled waits until partition p's replicas are exactly want (in order), its leader
// reported, every replica in sync and no reassignment listed.
func settled(t *testing.T, adm *kadm.Client, qc *controllertest.Cluster, p int32, want []int32) partDetail {
	t.Helper()
	return waitPart(t, qc, p, fmt.Sprintf("partition %d", p), func(d partDetail) error {
		isr := slices.Sorted(slices.Values(d.ISR))
		reps := slices.Sorted(slices.Values(want))
		if !slices.Equal(d.Replicas, want) || !slices.Equal(isr, reps) || d.LeaderEpoch < 1 {
			return fmt.Errorf("replicas %v isr %v leader %d epoch %d, want replicas %v all in sync", d.Replicas, d.ISR, d.Leader, d.LeaderEpoch, want)
		}
		ctx, cancel := controllertest.Context()
		defer cancel()
		ls, err := adm.ListPartitionReassignments(ctx, nil)
		if err != nil {
			return err
		}
		if r, ok := ls["mv"][p]; ok {
			return fmt.Errorf("still listed: %+v", r)
		}
		return nil
	})
}

// producer produces to one partition with acks=all (kgo's idempotent default) until stopped,
// and keeps what was acknowledged: offset → value.
type producer struct {
	cl    *kgo.Client
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	acked map[int64]string
	errs  int
}

func startProducer(t *testing.T, addr string, p int32) *producer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("mv"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	pr := &producer{cl: cl, stop: make(chan struct{}), acked: map[int64]string{}}
	pr.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-pr.stop:
				return
			default:
			}
			v := fmt.Sprintf("v%d", i)
			ctx, cancel := controllertest.Context()
			r, err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(v)}).First()
			cancel()
			pr.mu.Lock()
			if err == nil {
				pr.acked[r.Offset] = v
			} else {
				pr.errs++
			}
			pr.mu.Unlock()
		}
	})
	return pr
}

func (pr *producer) count() int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return len(pr.acked)
}

// finish stops the producer and returns what was acknowledged.
func (pr *producer) finish() map[int64]string {
	close(pr.stop)
	pr.wg.Wait()
	pr.cl.Close()
	return pr.acked
}

// readAll reads partition p of "mv" from the start up to (at least) offset last.
// readsBack reads partition 0 of mv from its start and fails t for each record of want
// (offset to value) not read back at its offset; what says which records they are.
func readsBack(t *testing.T, addr string, want map[int64]string, what string) {
	t.Helper()
	last := int64(-1)
	for o := range want {
		last = max(last, o)
	}
	got := readAll(t, addr, 0, last)
	for o, v := range want {
		if got[o] != v {
			t.Errorf("%s: offset %d: read %q, want %q", what, o, got[o], v)
		}
	}
}

func readAll(t *testing.T, addr string, p int32, last int64) map[int64]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"mv": {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[int64]string{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		max := int64(-1)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			got[r.Offset] = string(r.Value)
			max = r.Offset
		})
		if max >= last {
			break
		}
		if _, ok := got[last]; ok {
			break
		}
	}
	return got
}

// A replica moves to a fourth broker with a producer running (the partition's leader is the
// replica moved away, so it hands its leadership over first): the answer is immediate, the
// move shows in ListPartitionReassignments, the partition ends on the target with every
// replica in sync, and every acknowledged record is read back at its offset. Kafka's error
// codes for bad requests; a cancel undoes a move (or, if the move finished first, answers
// NO_REASSIGNMENT_IN_PROGRESS).
func TestKadmReassignWhileProducing(t *testing.T) {
	addr, adm, qc := movesSetup(t, 4, 2)
	d := stable(t, qc, 0)
	var bs []int32 // the brokers' Kafka ids
	for i := range qc.Brokers {
		bs = append(bs, kafkaIDOf(t, qc, i))
	}
	var spare int32 = -1
	for _, b := range bs {
		if !slices.Contains(d.Replicas, b) {
			spare = b
		}
	}
	if spare < 0 {
		t.Fatalf("no broker outside %v", d.Replicas)
	}
	pr := startProducer(t, addr, 0)
	if err := controllertest.Eventually(func() error {
		if pr.count() < 20 {
			return errors.New("waiting for acknowledged records")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Replace the leader by the spare broker.
	target := []int32{spare}
	for _, r := range d.Replicas {
		if r != d.Leader {
			target = append(target, r)
		}
	}
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("mv", 0, target)
	res, err := adm.AlterPartitionAssignments(opCtx(t), req)
	if err != nil || res["mv"][0].Err != nil {
		t.Fatalf("alter: %v %+v", err, res)
	}
	ls, err := adm.ListPartitionReassignments(opCtx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := ls["mv"][0]; ok && (!slices.Equal(r.AddingReplicas, []int32{spare}) || !slices.Equal(r.RemovingReplicas, []int32{d.Leader})) {
		t.Errorf("listed %+v, want adding [%d] removing [%d]", r, spare, d.Leader)
	}
	after := settled(t, adm, qc, 0, target)
	n := pr.count()
	if err := controllertest.Eventually(func() error {
		if pr.count() < n+20 {
			return errors.New("waiting for records acknowledged after the move")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	acked := pr.finish()
	readsBack(t, addr, acked, "acknowledged")
	t.Logf("moved %v → %v (leader %d → %d); %d records acknowledged, %d produce errors (retried by the client)",
		d.Replicas, after.Replicas, d.Leader, after.Leader, len(acked), pr.errs)

	// Kafka's codes.
	req = kadm.AlterPartitionAssignmentsReq{}
	req.CancelAssign("mv", 1)
	res, err = adm.AlterPartitionAssignments(opCtx(t), req)
	if err != nil || !errors.Is(res["mv"][1].Err, kerr.NoReassignmentInProgress) {
		t.Errorf("cancel with none: %v %+v", err, res)
	}
	for _, c := range []struct {
		reps []int32
		want error
	}{
		{[]int32{target[0], target[1], 999}, kerr.InvalidReplicaAssignment},
		{[]int32{target[0], target[0], target[1]}, kerr.InvalidReplicaAssignment},
		{[]int32{target[0], target[1]}, kerr.InvalidReplicationFactor},
	} {
		req = kadm.AlterPartitionAssignmentsReq{}
		req.Assign("mv", 1, c.reps)
		req.Assign("nope", 0, target)
		res, err = adm.AlterPartitionAssignments(opCtx(t), req)
		if err != nil || !errors.Is(res["mv"][1].Err, c.want) || !errors.Is(res["nope"][0].Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("assign %v: %v %+v, want %v", c.reps, err, res, c.want)
		}
	}

	// A move cancelled at once: it either is undone or had finished first.
	d1 := stable(t, qc, 1)
	var other int32 = -1
	for _, b := range bs {
		if !slices.Contains(d1.Replicas, b) {
			other = b
		}
	}
	moved := append([]int32{other}, d1.Replicas[1:]...)
	req = kadm.AlterPartitionAssignmentsReq{}
	req.Assign("mv", 1, moved)
	if res, err := adm.AlterPartitionAssignments(opCtx(t), req); err != nil || res["mv"][1].Err != nil {
		t.Fatalf("alter: %v %+v", err, res)
	}
	req = kadm.AlterPartitionAssignmentsReq{}
	req.CancelAssign("mv", 1)
	res, err = adm.AlterPartitionAssignments(opCtx(t), req)
	switch {
	case err != nil:
		t.Fatal(err)
	case res["mv"][1].Err == nil:
		settled(t, adm, qc, 1, d1.Replicas)
	case errors.Is(res["mv"][1].Err, kerr.NoReassignmentInProgress):
		settled(t, adm, qc, 1, moved)
	default:
		t.Fatalf("cancel: %+v", res)
	}
}

// stable waits until partition p has a reported leader and three replicas all in sync.
func stable(t *testing.T, qc *controllertest.Cluster, p int32) partDetail {
	t.Helper()
	return waitPart(t, qc, p, fmt.Sprintf("partition %d", p), func(d partDetail) error {
		if d.LeaderEpoch < 1 || len(d.Replicas) != 3 || len(d.ISR) != 3 {
			return fmt.Errorf("leader %d epoch %d replicas %v isr %v", d.Leader, d.LeaderEpoch, d.Replicas, d.ISR)
		}
		return nil
	})
}

// waitPart waits (controllertest.Eventually) until partition p as the quorum places it passes
// check, and returns it; else the test fails with what and check's last error.
func waitPart(t *testing.T, qc *controllertest.Cluster, p int32, what string, check func(partDetail) error) partDetail {
	t.Helper()
	var d partDetail
	if err := controllertest.Eventually(func() error {
		var err error
		if d, err = describe(qc, p); err != nil {
			return err
		}
		return check(d)
	}); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

// waitReplaced waits for the controller's replacement of a wiped broker's old incarnation
// (raft id oldRaft) by the new one, nb: nb in groups partitions' raft groups, the old one in
// none.
func waitReplaced(t *testing.T, nb *controllertest.Broker, oldRaft uint64, groups int) {
	t.Helper()
	if err := controllertest.Eventually(func() error {
		counts := map[uint64]int{}
		for _, m := range nb.Controller.Status().Brokers {
			counts[m.RaftID] = m.Replicas
		}
		if counts[nb.RaftID] != groups || counts[oldRaft] != 0 {
			return fmt.Errorf("the new incarnation is in %d partitions' groups and the old one in %d, want %d and 0", counts[nb.RaftID], counts[oldRaft], groups)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// ElectLeaders: after the preferred replica changes (a reassignment that only reorders the
// replicas settles at once), a preferred election moves the leadership to it; asked again it
// is not needed; an unclean election is never needed while a leader exists.
func TestKadmElectLeaders(t *testing.T) {
	_, adm, qc, gw := movesSetupGW(t, 3, 1)
	d := stable(t, qc, 0)
	// The broker-to-broker ops refuse a gateway.
	for _, b := range qc.Brokers {
		call := brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, b.EP.Addr()), "b")
		tr, err := call.TransferPartitionLeader(opCtx(t), &brokerop.TransferPartitionLeaderReq{Topic: "mv", Partition: 0, To: 1})
		if err != nil || tr.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
			t.Errorf("TransferPartitionLeader from a gateway: %+v %v", tr, err)
		}
		cr, err := call.CompleteReassignment(opCtx(t), &brokerop.CompleteReassignmentReq{Topic: "mv", Partition: 0, Target: []uint64{1, 2, 3}})
		if err != nil || cr.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
			t.Errorf("CompleteReassignment from a gateway: %+v %v", cr, err)
		}
	}
	// The preferred replica becomes one that does not lead.
	var pref int32 = -1
	for _, r := range d.Replicas {
		if r != d.Leader {
			pref = r
		}
	}
	preferReplica(t, adm, "mv", 0, pref, d.Replicas)
	if ls, err := adm.ListPartitionReassignments(opCtx(t), nil); err != nil || len(ls["mv"]) != 0 {
		t.Errorf("a reorder is no reassignment in progress: %+v %v", ls, err)
	}
	set := kadm.TopicsSet{}
	set.Add("mv", 0)
	if err := controllertest.Eventually(func() error { return electPreferred(adm, qc, pref) }); err != nil {
		t.Fatalf("preferred election: %v", err)
	}
	r, err := adm.ElectLeaders(opCtx(t), kadm.ElectPreferredReplica, set)
	if err != nil || !errors.Is(r["mv"][0].Err, kerr.ElectionNotNeeded) {
		t.Errorf("second preferred election: %v %+v, want ELECTION_NOT_NEEDED", err, r)
	}
	r, err = adm.ElectLeaders(opCtx(t), kadm.ElectLiveReplica, set)
	if err != nil || !errors.Is(r["mv"][0].Err, kerr.ElectionNotNeeded) {
		t.Errorf("unclean election with a leader: %v %+v, want ELECTION_NOT_NEEDED", err, r)
	}
	// All partitions: the ones not needing an election are left out.
	r, err = adm.ElectLeaders(opCtx(t), kadm.ElectPreferredReplica, nil)
	if err != nil || len(r["mv"]) != 0 {
		t.Errorf("election of all partitions: %v %+v, want none listed", err, r)
	}
}

// kafkaIDOf is the Kafka id the quorum gave broker i's NodeId.
func kafkaIDOf(t *testing.T, qc *controllertest.Cluster, i int) int32 {
	t.Helper()
	want := qc.Brokers[i].EP.NodeID().String()
	for _, b := range qc.Brokers {
		if b.Controller == nil {
			continue
		}
		for _, m := range b.Controller.Status().Brokers {
			if m.NodeID == want && m.KafkaID > 0 {
				return m.KafkaID
			}
		}
	}
	t.Fatalf("no Kafka id for broker %d", i)
	return -1
}

// produceN produces n records to partition p of "mv" and returns them by offset.
func produceN(t *testing.T, addr string, p int32, n int) map[int64]string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("mv"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[int64]string{}
	for i := range n {
		v := fmt.Sprintf("p%d-%d", p, i)
		eventually(t, "produce "+v, func(ctx context.Context) error {
			r, err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(v)}).First()
			if err == nil {
				out[r.Offset] = v
			}
			return err
		})
	}
	return out
}

// A follower's data directory is wiped: it comes back with the same NodeId (and Kafka id)
// and a new raft id. The controller replaces its old replicas by the new incarnation through
// reassignments, so every partition is back at three replicas all in sync; the new replica
// holds the records written before the wipe (made the leader, it serves them).
func TestWipedBrokerIsPutBack(t *testing.T) {
	addr, adm, qc := movesSetup(t, 3, 2)
	for p := range int32(2) {
		stable(t, qc, p)
	}
	before := produceN(t, addr, 0, 20)
	li := leaderIndex(t, qc)
	w := (li + 1) % 3
	kid := kafkaIDOf(t, qc, w)
	oldRaft := qc.Brokers[w].RaftID
	nb := qc.Wipe(t, w)
	if nb.RaftID == oldRaft {
		t.Fatal("the wiped broker kept its raft id")
	}
	// The Kafka view alone cannot tell the incarnations apart (both have Kafka id kid): right
	// after the wipe it still shows the old one's replicas in sync.
	waitReplaced(t, nb, oldRaft, 2)
	for p := range int32(2) {
		waitPart(t, qc, p, fmt.Sprintf("partition %d after the wipe", p), func(d partDetail) error {
			if reps := slices.Sorted(slices.Values(d.Replicas)); len(reps) != 3 || !slices.Contains(reps, kid) || len(d.ISR) != 3 {
				return fmt.Errorf("replicas %v isr %v", d.Replicas, d.ISR)
			}
			ctx, cancel := controllertest.Context()
			defer cancel()
			if ls, err := adm.ListPartitionReassignments(ctx, nil); err != nil || len(ls["mv"]) != 0 {
				return fmt.Errorf("reassignments %+v %v", ls, err)
			}
			return nil
		})
	}
	// Make the new replica the leader of partition 0 and read the old records from it.
	d := stable(t, qc, 0)
	preferReplica(t, adm, "mv", 0, kid, d.Replicas)
	if err := controllertest.Eventually(func() error { return electPreferred(adm, qc, kid) }); err != nil {
		t.Fatalf("the new replica leads: %v", err)
	}
	readsBack(t, addr, before, "from the new replica")
}

// Decommission drains a broker: every partition it had a replica of moves to another live
// broker (three replicas, all in sync, none on it), it is then removed; draining another
// broker with too few left is refused.
func TestDecommission(t *testing.T) {
	_, _, qc := movesSetup(t, 4, 4)
	for p := range int32(4) {
		stable(t, qc, p)
	}
	li := leaderIndex(t, qc)
	k := (li + 1) % 4
	kid := kafkaIDOf(t, qc, k)
	ctl := qc.Brokers[li].Controller
	if err := ctl.Decommission(opCtx(t), qc.Brokers[k].EP.NodeID()); err != nil {
		t.Fatal(err)
	}
	if err := controllertest.Eventually(func() error {
		for _, m := range ctl.Status().Brokers {
			if m.KafkaID == kid && m.Replicas != 0 {
				return fmt.Errorf("broker %d still in %d groups", kid, m.Replicas)
			}
		}
		for p := range int32(4) {
			d, err := describe(qc, p)
			if err != nil {
				return err
			}
			if len(d.Replicas) != 3 || slices.Contains(d.Replicas, kid) || len(d.ISR) != 3 {
				return fmt.Errorf("partition %d: replicas %v isr %v", p, d.Replicas, d.ISR)
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if err := ctl.Remove(opCtx(t), qc.Brokers[k].EP.NodeID()); err != nil {
		t.Fatalf("remove the drained broker: %v", err)
	}
	qc.Brokers[k].Stop()
	for p := range int32(4) {
		stable(t, qc, p)
	}
	other := (li + 2) % 4
	if other == k {
		other = (li + 3) % 4
	}
	err := ctl.Decommission(opCtx(t), qc.Brokers[other].EP.NodeID())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(kerr.InvalidReplicationFactor.Code)) {
		t.Errorf("decommission with three brokers left at RF 3: %v, want INVALID_REPLICATION_FACTOR", err)
	}
}

// The preferred leader's broker restarts: another replica takes the partition over; once
// the preferred one is back and in sync, a preferred election (kadm ElectLeaders) moves the
// leadership back to it.
func TestKadmElectLeadersAfterLeaderReturns(t *testing.T) {
	_, adm, qc := movesSetup(t, 3, 1)
	d := stable(t, qc, 0)
	pref := d.Replicas[0]
	elect := func() error { return electPreferred(adm, qc, pref) }
	if err := controllertest.Eventually(elect); err != nil {
		t.Fatalf("the preferred replica leads: %v", err)
	}
	idx := -1
	for i := range qc.Brokers {
		if kafkaIDOf(t, qc, i) == pref {
			idx = i
		}
	}
	// The preferred replica stays down until another replica leads: restarted at once, it
	// may win the partition's next election itself (its log is as long as any), and then
	// nothing is left for the preferred election to do.
	qc.Brokers[idx].Stop()
	waitPart(t, qc, 0, "partition 0 with its leader down", func(d partDetail) error {
		if d.Leader == pref || d.Leader < 0 {
			return fmt.Errorf("leader %d: want another leader", d.Leader)
		}
		return nil
	})
	qc.Restart(t, idx)
	waitPart(t, qc, 0, "partition 0", func(d partDetail) error {
		if d.Leader == pref || len(d.ISR) != 3 {
			return fmt.Errorf("leader %d isr %v: want another leader and the restarted replica back in sync", d.Leader, d.ISR)
		}
		return nil
	})
	if err := controllertest.Eventually(elect); err != nil {
		t.Fatalf("preferred election after the return: %v", err)
	}
}

// preferReplica reorders partition p of topic so that first (one of replicas) comes first,
// its preferred replica, the others in their order: a reassignment to the same replicas.
func preferReplica(t *testing.T, adm *kadm.Client, topic string, p, first int32, replicas []int32) {
	t.Helper()
	order := []int32{first}
	for _, r := range replicas {
		if r != first {
			order = append(order, r)
		}
	}
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign(topic, p, order)
	if res, err := adm.AlterPartitionAssignments(opCtx(t), req); err != nil || res[topic][p].Err != nil {
		t.Fatalf("reorder: %v %+v", err, res)
	}
}

// electPreferred runs one preferred-replica election of mv-0 (ELECTION_NOT_NEEDED counts as
// done) and fails unless pref then leads it.
func electPreferred(adm *kadm.Client, qc *controllertest.Cluster, pref int32) error {
	set := kadm.TopicsSet{}
	set.Add("mv", 0)
	ctx, cancel := controllertest.Context()
	defer cancel()
	r, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
	if err != nil {
		return err
	}
	if e := r["mv"][0].Err; e != nil && !errors.Is(e, kerr.ElectionNotNeeded) {
		return fmt.Errorf("%v: %s", e, r["mv"][0].ErrMessage)
	}
	d, err := describe(qc, 0)
	if err == nil && d.Leader != pref {
		err = fmt.Errorf("leader %d, want %d", d.Leader, pref)
	}
	return err
}
