package repl_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// phase is one fault of TestReplFaults: n cycles of inject on a fresh topic under the
// replicated load, then the final drain and the checker. inject returns what it did, for the
// log, and the time from the fault to the first record acknowledged on the partition again
// (0: not measured), reported as p50/p99 at the end of the phase, never asserted.
type phase struct {
	name        string
	metadataOps bool // the metadata writers too (the quorum leader's faults)
	inject      func(t *testing.T, e *env, p partition) (string, time.Duration)
	// known, if set, is an open anomaly the phase still finds: it then runs only with
	// FaultsEnv=1 (go tool task chaos), and the skip says why.
	known string
}

// TestReplFaults: one cluster in network namespaces (three brokers forming the metadata
// quorum, two gateways) goes through every fault in turn, REPL_CYCLES cycles each (default
// 10), each fault on a topic of its own (deleted afterwards) with its own recorded workload
// and checker run; then kafka-go and librdkafka clients through a leader kill. One cluster
// for all: its start (the quorum forming) would otherwise cost more than the cycles. A failed
// phase ends the test (the cluster may be broken). Part of the default suite (the faults
// phase of `go tool task test`, 10 cycles); `go tool task chaos` runs 100.
func TestReplFaults(t *testing.T) {
	c := startRepl(t, true)
	n := cycles(10)
	for i, ph := range phases() {
		ok := t.Run(ph.name, func(t *testing.T) {
			if ph.known != "" && os.Getenv(FaultsEnv) != "1" {
				t.Skipf("runs with %s=1 (go tool task chaos) until this is fixed: %s", FaultsEnv, ph.known)
			}
			begin := time.Now()
			cfg, w := replLoad(t, c, fmt.Sprintf("%s-%d", topic, i), ph.metadataOps)
			e := &env{c: c, cfg: cfg, w: w}
			var waits []time.Duration
			for cycle := range n {
				e.cycle = cycle
				t0 := time.Now()
				view := settled(t, c, cfg, time.Minute)
				p := view[int32(cycle%partitions)]
				t1 := time.Now()
				what, d := ph.inject(t, e, p)
				what += fmt.Sprintf(" [settle %v, inject %v]", t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
				if d > 0 {
					waits = append(waits, d)
					what += fmt.Sprintf("; first record acknowledged on p%d %v after the fault", p.ID, d.Round(time.Millisecond))
				}
				t.Logf("cycle %d: %s", cycle, what)
			}
			if len(waits) > 0 {
				t.Logf("fault → first acknowledged record on the partition: %s", summary(waits))
			}
			cycled := time.Now()
			check(t, c, cfg, w)
			checked := time.Now()
			deleteTopic(t, cfg)
			t.Logf("phase times: load and %d cycles %v, drain and check %v, topic deletion %v", n,
				cycled.Sub(begin).Round(time.Millisecond), checked.Sub(cycled).Round(time.Millisecond), time.Since(checked).Round(time.Millisecond))
		})
		if !ok {
			return
		}
	}
	t.Run("ClientsLeaderKill", func(t *testing.T) { clientsLeaderKill(t, c) })
}

func phases() []phase {
	return []phase{
		{"PartitionLeaderKill", false, partitionLeaderKill, ""},
		{"FollowerKill", false, followerKill, ""},
		{"QuorumLeaderKill", true, quorumLeaderKill, ""},
		{"LeaderPause", false, leaderPause, ""},
		{"LeaderIsolated", false, leaderIsolated, ""},
		{"MajorityMinoritySplit", false, majorityMinoritySplit, ""},
		{"FlappingLink", false, flappingLink, ""},
		{"FollowerWiped", false, followerWiped, ""},
	}
}

// env is what an inject function works on.
type env struct {
	c     *cluster.Cluster
	cfg   workload.Config
	w     *workload.Workload
	cycle int
}

// newLeader waits until gateway 0's Metadata shows p led by another running broker than
// old, under a higher leader epoch: the failover is visible to clients.
func (e *env) newLeader(t *testing.T, p partition, old *cluster.Broker) partition {
	t.Helper()
	var now partition
	cluster.WaitFor(t, fmt.Sprintf("p%d led by another broker than %s with an epoch above %d", p.ID, old.Name, p.LeaderEpoch), time.Minute, func() (bool, string) {
		ps, err := metadata(e.c, 0, e.cfg.Topic)
		if err != nil {
			return false, err.Error()
		}
		now = ps[p.ID]
		return now.LeaderProc != nil && now.LeaderProc != old && now.LeaderEpoch > p.LeaderEpoch, now.String()
	})
	return now
}

// allPartitionsAck waits until a record has been acknowledged on every partition after since.
func (e *env) allPartitionsAck(t *testing.T, since time.Time) time.Duration {
	t.Helper()
	var worst time.Duration
	for p := range int32(partitions) {
		worst = max(worst, e.w.WaitSendOK(t, since, tp(e.cfg.Topic, p), time.Minute))
	}
	return worst
}

// leaderOut takes p's leader out with stop (its Kill or Pause) and waits until records on p
// are acknowledged again (d after the stop, at) under another leader (now).
func (e *env) leaderOut(t *testing.T, p partition, stop func()) (at time.Time, d time.Duration, now partition) {
	t.Helper()
	at = time.Now()
	stop()
	d = e.w.WaitSendOK(t, at, tp(e.cfg.Topic, p.ID), time.Minute)
	return at, d, e.newLeader(t, p, p.LeaderProc)
}

// partitionLeaderKill: the leader of a partition SIGKILLed; the two others elect a
// leader that acknowledges records on it again; the killed broker restarts and catches up.
func partitionLeaderKill(t *testing.T, e *env, p partition) (string, time.Duration) {
	victim := p.LeaderProc
	at, d, now := e.leaderOut(t, p, victim.Kill)
	e.allPartitionsAck(t, at)
	victim.Start(t)
	return fmt.Sprintf("killed %s, leader of p%d (epoch %d); now led by %s (epoch %d)", victim.Name, p.ID, p.LeaderEpoch, now.LeaderProc.Name, now.LeaderEpoch), d
}

// followerKill: a follower of a partition SIGKILLed (it leads others, which fail
// over); the partition goes on with two replicas; the follower restarts and catches up.
func followerKill(t *testing.T, e *env, p partition) (string, time.Duration) {
	fs := followers(t, e.c, p)
	victim := fs[e.cycle%len(fs)]
	at := time.Now()
	victim.Kill()
	d := e.w.WaitSendOK(t, at, tp(e.cfg.Topic, p.ID), time.Minute)
	worst := e.allPartitionsAck(t, at)
	victim.Start(t)
	return fmt.Sprintf("killed %s, follower of p%d (led by %s); every partition acknowledged again within %v", victim.Name, p.ID, p.LeaderProc.Name, worst.Round(time.Millisecond)), d
}

// quorumLeaderKill: the metadata quorum's leader SIGKILLed (it also leads and follows
// partitions); metadata writes (topics, offset commits, producer ids) and every partition
// work again; it restarts.
func quorumLeaderKill(t *testing.T, e *env, p partition) (string, time.Duration) {
	victim, _ := e.c.QuorumLeader(t, e.c.Running(), time.Minute)
	at := time.Now()
	victim.Kill()
	got := e.w.WaitOK(t, at, time.Minute, checker.OpCreateTopics, checker.OpOffsetCommit, checker.OpOffsetFetch, checker.OpInitProducerID)
	first, what, _ := e.cfg.Rec.FirstWriteAfter(at)
	worst := e.allPartitionsAck(t, at)
	victim.Start(t)
	return fmt.Sprintf("killed quorum leader %s; first metadata write (%s) %v after, all of them by %v; every partition acknowledged again within %v",
		victim.Name, what, first.Sub(at).Round(time.Millisecond), got.Max().Round(time.Millisecond), worst.Round(time.Millisecond)), first.Sub(at)
}

// leaderPause: a partition's leader SIGSTOPped until the others elect a leader that
// acknowledges records, then SIGCONTed: it wakes believing it leads and must not acknowledge
// anything after losing its leadership. The checker asserts it: every acknowledged record is
// in the log at its offset, and an acknowledgement the old leader gave on its own would be
// lost or moved. So that the old leader does get a write to acknowledge wrongly, a produce
// (acks=all) is sent to its own Kafka listener while it sleeps and goes into the history
// (stalePauseProduce): it is among the first things the broker reads when it wakes, while it
// still believes it leads.
func leaderPause(t *testing.T, e *env, p partition) (string, time.Duration) {
	victim := p.LeaderProc
	_, d, now := e.leaderOut(t, p, victim.Pause)
	answer, err := stalePauseProduce(t, e, victim, p)
	victim.Resume()
	if err != nil {
		t.Fatal(err)
	}
	got := answer()
	return fmt.Sprintf("paused %s, leader of p%d (epoch %d); %s elected (epoch %d); resumed; a produce sent to it while paused: %s",
		victim.Name, p.ID, p.LeaderEpoch, now.LeaderProc.Name, now.LeaderEpoch, got), d
}

// stalePauseProduce sends a Produce (acks=all, one record) for p to the paused broker's own
// Kafka listener (brokers of the fault cluster serve Kafka too: startRepl): the connection
// and the request wait in the kernel until the broker wakes. answer waits for the reply
// (bounded), records the send in the history and says what the answer was. Refused is the
// expected answer while the broker still believes it leads (it may append the record as the
// old leader, and raft must not commit that); once it follows, its listener routes the
// produce to the new leader (package gateway/direct) and an acknowledgement is legitimate.
// Either way the checker holds the acknowledgement to its offset.
func stalePauseProduce(t *testing.T, e *env, victim *cluster.Broker, p partition) (answer func() string, err error) {
	addr := kafkaListener(victim)
	value := fmt.Sprintf("pause-probe-%s-%d", e.cfg.Topic, e.cycle)
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 7, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = e.cfg.Topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = p.ID
	rp.Records = kafkawire.AppendRecordBatch(nil, []kafkawire.BatchRecord{{Timestamp: time.Now().UnixMilli(), Value: []byte(value)}})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("pause-probe")).AppendRequest(nil, req, 1)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := e.c.Dialer()(ctx, "tcp", addr) // the kernel completes it while the broker sleeps
	if err != nil {
		return nil, fmt.Errorf("dial the paused broker's Kafka listener %s: %w", addr, err)
	}
	inv := e.cfg.Rec.Begin()
	if _, err := conn.Write(frame); err != nil {
		conn.Close()
		return nil, fmt.Errorf("send a produce to the paused broker: %w", err)
	}
	send := checker.Send{Producer: "pause-probe", Seq: int64(e.cycle), Topic: e.cfg.Topic, Value: value, Partition: p.ID, Offset: -1, Invoke: inv}
	return func() string {
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Minute)) // a hang bound
		resp, err := readProduceResponse(conn)
		var pr *kmsg.ProduceResponseTopicPartition
		if err == nil {
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				err = fmt.Errorf("produce answer with %d topics", len(resp.Topics))
			} else {
				pr = &resp.Topics[0].Partitions[0]
			}
		}
		switch {
		case err != nil:
			send.Err = err.Error()
		case pr.ErrorCode != 0:
			send.Err = kerr.ErrorForCode(pr.ErrorCode).Error()
		default:
			send.OK, send.Offset = true, pr.BaseOffset
		}
		e.cfg.Rec.AddSend(send)
		if send.OK {
			return fmt.Sprintf("acknowledged at offset %d (routed to the new leader once it followed; checked)", send.Offset)
		}
		return "refused (" + send.Err + ")"
	}, nil
}

// readProduceResponse reads one Produce v7 answer (size, correlation id, body).
func readProduceResponse(r io.Reader) (*kmsg.ProduceResponse, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return nil, fmt.Errorf("answer of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 7
	if err := resp.ReadFrom(buf[4:]); err != nil {
		return nil, err
	}
	return resp, nil
}

// leaderIsolated: a partition's leader cut off from every node by nftables; the
// majority elects a leader that acknowledges records; healed, the old leader follows.
func leaderIsolated(t *testing.T, e *env, p partition) (string, time.Duration) {
	victim := p.LeaderProc
	at := time.Now()
	e.c.Net.Isolate(victim.NS)
	d := e.w.WaitSendOK(t, at, tp(e.cfg.Topic, p.ID), time.Minute)
	now := e.newLeader(t, p, victim)
	dropped := e.c.Net.Dropped()
	e.c.Net.Heal()
	if dropped == 0 {
		t.Fatalf("isolating %s dropped no packet: the fault did not happen", victim.Name)
	}
	return fmt.Sprintf("isolated %s, leader of p%d (epoch %d); %s elected (epoch %d); %d packets dropped; healed", victim.Name, p.ID, p.LeaderEpoch, now.LeaderProc.Name, now.LeaderEpoch, dropped), d
}

// majorityMinoritySplit: the network split into a majority (two brokers and gateway 0)
// and a minority (a partition's leader and gateway 1). The majority elects a leader and
// acknowledges records through gateway 0; the clients of gateway 1 wait; healed, everything
// goes on.
func majorityMinoritySplit(t *testing.T, e *env, p partition) (string, time.Duration) {
	victim := p.LeaderProc
	majority := []*cluster.NetNode{e.c.Gateways[0].NS}
	for _, b := range others(e.c, victim) {
		majority = append(majority, b.NS)
	}
	minority := []*cluster.NetNode{victim.NS, e.c.Gateways[1].NS}
	at := time.Now()
	e.c.Net.Partition(majority, minority)
	d := e.w.WaitSendOK(t, at, tp(e.cfg.Topic, p.ID), time.Minute)
	now := e.newLeader(t, p, victim)
	dropped := e.c.Net.Dropped()
	e.c.Net.Heal()
	if dropped == 0 {
		t.Fatalf("the split dropped no packet: the fault did not happen")
	}
	healed := time.Now()
	e.allPartitionsAck(t, healed)
	return fmt.Sprintf("split {%s, gateway-1} from the rest; p%d: %s elected (epoch %d); %d packets dropped; healed", victim.Name, p.ID, now.LeaderProc.Name, now.LeaderEpoch, dropped), d
}

// flappingLink: the link between a partition's leader and one follower goes down and
// up four times (down 0.2-1.4 s, around the 1 s election timeout; up 0.2-0.4 s; seeded per
// cycle), the third broker still reaching both. The partition acknowledges records again
// after the last flap.
func flappingLink(t *testing.T, e *env, p partition) (string, time.Duration) {
	leader := p.LeaderProc
	f := followers(t, e.c, p)[e.cycle%2]
	rng := rand.New(rand.NewPCG(uint64(e.cycle), 16))
	var dropped int64
	var plan []string
	for range 4 {
		down := time.Duration(200+rng.IntN(1200)) * time.Millisecond
		up := time.Duration(200+rng.IntN(200)) * time.Millisecond
		e.c.Net.Partition([]*cluster.NetNode{leader.NS}, []*cluster.NetNode{f.NS})
		time.Sleep(down)
		dropped += e.c.Net.Dropped()
		e.c.Net.Heal()
		time.Sleep(up)
		plan = append(plan, fmt.Sprintf("%v/%v", down, up))
	}
	if dropped == 0 {
		t.Fatalf("the flapping link dropped no packet: the fault did not happen")
	}
	at := time.Now()
	e.allPartitionsAck(t, at)
	return fmt.Sprintf("link %s–%s (leader and follower of p%d) down/up %s; %d packets dropped", leader.Name, f.Name, p.ID, strings.Join(plan, " "), dropped), 0
}

// followerWiped: a follower of a partition killed, its data directory deleted (its
// identity kept: a replaced disk) and restarted. It comes back as a new replica (a new raft
// id: it never votes with a log it forgot); the partitions it replicated get back their full
// in-sync replica sets, caught up from the others, and nothing acknowledged is lost.
func followerWiped(t *testing.T, e *env, p partition) (string, time.Duration) {
	fs := followers(t, e.c, p)
	victim := fs[e.cycle%len(fs)]
	before, err := victim.QuorumStatus()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	victim.Kill()
	victim.Wipe(t, true)
	victim.Start(t)
	d := e.w.WaitSendOK(t, at, tp(e.cfg.Topic, p.ID), time.Minute)
	e.allPartitionsAck(t, at)
	// Until the new incarnation has joined, the old one is still a registered member, and
	// within an election timeout of the kill it still looks live and in sync: the placement
	// then shows full in-sync replica sets while every group the victim was in has a dead
	// voter. A next fault on another replica of such a group leaves it without a majority
	// (a CI run failed so). So wait for the join, which removes the old incarnation, before
	// waiting for full replica sets, which the replica moves then restore.
	after := rejoined(t, e.c, victim, before.RaftID, 2*time.Minute)
	settled(t, e.c, e.cfg, 2*time.Minute)
	back := time.Since(at)
	return fmt.Sprintf("wiped %s, follower of p%d (raft id %d → %d); full in-sync replica sets again %v after the kill", victim.Name, p.ID, before.RaftID, after.RaftID, back.Round(time.Millisecond)), d
}

// rejoined waits until the quorum, asked of another running broker, lists victim under a
// raft id other than old and no broker under old, and returns the victim's status.
func rejoined(t *testing.T, c *cluster.Cluster, victim *cluster.Broker, old uint64, timeout time.Duration) *cluster.QuorumStatus {
	t.Helper()
	var self *cluster.QuorumStatus
	cluster.WaitFor(t, fmt.Sprintf("%s rejoined under a new raft id (old %d)", victim.Name, old), timeout, func() (bool, string) {
		st, err := victim.QuorumStatus()
		if err != nil {
			return false, err.Error()
		}
		if st.RaftID == old {
			t.Fatalf("%s came back from a wiped disk under its old raft id %d", victim.Name, old)
		}
		self = st
		for _, b := range others(c, victim) {
			if !b.Running() {
				continue
			}
			view, err := b.QuorumStatus()
			if err != nil {
				return false, err.Error()
			}
			m, ok := view.Member(st.NodeID)
			if !ok || m.RaftID != st.RaftID {
				return false, fmt.Sprintf("%s lists it as %+v", b.Name, m)
			}
			for _, o := range view.Brokers {
				if o.RaftID == old {
					return false, fmt.Sprintf("%s still lists the old incarnation", b.Name)
				}
			}
			return true, ""
		}
		return false, "no other broker running"
	})
	return self
}
