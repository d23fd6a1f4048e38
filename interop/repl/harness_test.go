package repl_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/benchtest"
	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// FaultsEnv set to 1 runs TestReplRelay (its own cluster of brokers behind NAT routers and a
// relay), leaves ClientsLeaderKill's victim to chance (whichever broker leads the partition
// then, the metadata quorum's leader or not; by default the libraries alternate between the
// two: see leadPartition), and runs any TestReplFaults phase with a known open anomaly
// (phase.known; none now); `go tool task chaos` sets it. TestReplFaults runs in the default
// suite (`go tool task test`, the faults phase; root and network namespaces needed, skipped
// otherwise) with all eight faults. MajorityMinoritySplit was gated here while it found a
// committed group offset going backwards in about half of its runs: a kgo member answered
// UNKNOWN_MEMBER_ID on JoinGroup (a new group coordinator knew no member) rejoins with its
// owned partitions and keeps their positions (consumer_group.go handleJoinResp clears only
// the member id; the Java client treats that as lost partitions, KAFKA-12983), and went on
// reading a partition another member had been given and had committed further. Durable
// generations and then durable membership (broker/group: a new coordinator restores the
// members, who keep their ids) closed it.
const FaultsEnv = "REPL_FAULTS"

// requireFaults skips unless FaultsEnv is 1.
func requireFaults(tb testing.TB) {
	tb.Helper()
	if os.Getenv(FaultsEnv) != "1" {
		tb.Skipf("runs with %s=1 (go tool task chaos)", FaultsEnv)
	}
}

// KgoLogEnv names a file that gets the workload's kgo clients' logs (info level, with
// times), to see why a consumer or producer stalled.
const KgoLogEnv = "REPL_KGO_LOG"

const (
	topic      = "repl"
	partitions = 6
	rf         = 3
)

// cycles is REPL_CYCLES (`go tool task chaos` sets 100), else def.
func cycles(def int) int { return cluster.EnvCount("REPL_CYCLES", def) }

// startRepl starts three brokers forming one metadata quorum and two gateways, each in its
// own network namespace with netns (root; skipped otherwise), else on loopback.
func startRepl(t testing.TB, netns bool) *cluster.Cluster {
	t.Helper()
	cluster.RequireQuorum(t)
	if netns {
		cluster.RequireNamespaces(t)
	}
	opts := cluster.Options{Brokers: 3, Gateways: 2, Quorum: true, Netns: netns}
	if netns {
		// Each broker serves Kafka too, on its own address (the pause fault sends a produce
		// straight to a paused leader: stalePauseProduce). The gateways do not use it.
		opts.BrokerArgs = func(b *cluster.Broker) []string { return []string{"-kafka-listen", kafkaListener(b)} }
	}
	c := cluster.Start(t, opts)
	t.Cleanup(func() { idCache.Delete(c) })
	allLive(t, c)
	return c
}

// kafkaListener is a broker's Kafka listener in a cluster with Netns (startRepl).
func kafkaListener(b *cluster.Broker) string { return b.NS.Addr.String() + ":9093" }

// allLive waits until the quorum has every broker as a live voter, so that a replication
// factor of 3 is refused only by a tree that cannot replicate, not by a quorum still forming.
func allLive(t testing.TB, c *cluster.Cluster) {
	t.Helper()
	_, s := c.QuorumLeader(t, c.Brokers, time.Minute)
	cluster.WaitFor(t, "every broker a live voter", time.Minute, func() (bool, string) {
		live := 0
		for _, m := range s.Brokers {
			if m.Live && m.Voter {
				live++
			}
		}
		if live == len(c.Brokers) {
			return true, ""
		}
		var err error
		leader := c.BrokerByNodeID(s.NodeID)
		if s, err = leader.QuorumStatus(); err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("%+v", s.Brokers)
	})
}

// seeds are the gateways' Kafka addresses.
func seeds(c *cluster.Cluster) []string {
	var s []string
	for _, g := range c.Gateways {
		s = append(s, g.Addr)
	}
	return s
}

// clientOpts make the test clients notice a leader change quickly (kgo's default waits up
// to 5 s between metadata refreshes).
var clientOpts = []kgo.Opt{kgo.MetadataMinAge(250 * time.Millisecond)}

// createReplicated creates cfg's topic with cfg.ReplicationFactor replicas, and skips the test
// when the tree cannot replicate (INVALID_REPLICATION_FACTOR: issue #16 not in it), or fails
// when the answer is some other refusal. It then waits until every partition has a leader
// and a full in-sync replica set.
func createReplicated(t testing.TB, c *cluster.Cluster, cfg workload.Config) {
	t.Helper()
	if err := cfg.TryCreateTopic(t); err != nil {
		// kadm copies the error to attach the broker's message: compare codes.
		if ke := (*kerr.Error)(nil); errors.As(err, &ke) && ke.Code == kerr.InvalidReplicationFactor.Code {
			t.Skipf("CreateTopics with replication factor %d refused (%v): replicated partitions (issue #16) are not in this tree", cfg.ReplicationFactor, err)
		}
		t.Fatalf("create topic %s: %v", cfg.Topic, err)
	}
	// A tree without replication may take the factor and keep one replica: Metadata says.
	var ps map[int32]partition
	cluster.WaitFor(t, "the topic in Metadata", time.Minute, func() (bool, string) {
		var err error
		ps, err = metadata(c, 0, cfg.Topic)
		if err == nil && len(ps) < int(cfg.Partitions) {
			err = fmt.Errorf("%d partitions listed", len(ps))
		}
		return err == nil, fmt.Sprint(err)
	})
	for _, p := range ps {
		if len(p.Replicas) < int(cfg.ReplicationFactor) {
			t.Skipf("topic created with replication factor %d but Metadata lists %v: replicated partitions (issue #16) are not in this tree", cfg.ReplicationFactor, p)
		}
	}
	settled(t, c, cfg, time.Minute)
}

// partition is one partition's Metadata as a gateway answers it, with the leader's process.
type partition struct {
	ID          int32
	Leader      int32 // Kafka broker id (-1: none)
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
	Offline     []int32
	Err         error
	LeaderProc  *cluster.Broker // nil when the leader is not one of the cluster's brokers
}

func (p partition) String() string {
	name := "?"
	if p.LeaderProc != nil {
		name = p.LeaderProc.Name
	}
	return fmt.Sprintf("p%d leader %d (%s) epoch %d replicas %v isr %v offline %v err %v", p.ID, p.Leader, name, p.LeaderEpoch, p.Replicas, p.ISR, p.Offline, p.Err)
}

// metadata asks gateway gw for the topic's partitions, and maps each leader's Kafka id to its
// broker process through the quorum's status.
func metadata(c *cluster.Cluster, gw int, topicName string) (map[int32]partition, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Gateways[gw].Addr), kgo.Dialer(c.Dialer()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx, topicName)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topicName]
	if !ok {
		return nil, fmt.Errorf("topic %s not in Metadata", topicName)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("topic %s: %w", topicName, td.Err)
	}
	ids, err := kafkaIDs(c)
	if err != nil {
		return nil, err
	}
	// The gateway names itself as every partition's leader (clients dial it): the real
	// leader, replicas and ISR come from the quorum's placement, asked of a running broker.
	placed, err := placement(c, topicName)
	if err != nil {
		return nil, err
	}
	out := map[int32]partition{}
	for _, pd := range td.Partitions {
		pv, ok := placed[pd.Partition]
		if !ok {
			return nil, fmt.Errorf("partition %d of %s not in the quorum's placement", pd.Partition, topicName)
		}
		p := partition{ID: pd.Partition, Leader: pv.Leader, LeaderEpoch: pv.LeaderEpoch, Replicas: pv.Replicas, ISR: pv.ISR, Offline: pv.OfflineReplicas, Err: pd.Err}
		if pd.Err == nil && pv.ErrorCode != 0 {
			p.Err = kerr.ErrorForCode(pv.ErrorCode)
		}
		p.LeaderProc = ids[pv.Leader]
		out[p.ID] = p
	}
	return out, nil
}

// placement asks running brokers in turn (a paused one times out) for topicName's partitions
// as the quorum places them.
func placement(c *cluster.Cluster, topicName string) (map[int32]cluster.PartitionView, error) {
	var errs []error
	for _, b := range c.Running() {
		ps, err := b.Partitions(topicName)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out := map[int32]cluster.PartitionView{}
		for _, p := range ps {
			out[p.Partition] = p
		}
		return out, nil
	}
	return nil, fmt.Errorf("no broker answered for the placement of %s: %w", topicName, errors.Join(errs...))
}

// idCache holds each cluster's Kafka id → broker map once every broker has one: a NodeId
// keeps its Kafka id forever (a wiped broker too), and asking again could hang on a paused
// broker's admin API.
var idCache sync.Map // *cluster.Cluster → map[int32]*cluster.Broker

// kafkaIDs maps the cluster's brokers' Kafka ids to their processes.
func kafkaIDs(c *cluster.Cluster) (map[int32]*cluster.Broker, error) {
	if m, ok := idCache.Load(c); ok {
		return m.(map[int32]*cluster.Broker), nil
	}
	m, err := c.KafkaIDs()
	if err != nil {
		return nil, err
	}
	if len(m) == len(c.Brokers) {
		idCache.Store(c, m)
	}
	return m, nil
}

// settled waits until gateway 0 shows every partition of cfg's topic with a leader that is a
// running broker, cfg.ReplicationFactor replicas, all of them in sync, none offline; and
// returns that view. The timeout is a hang bound, not a speed assertion.
func settled(t testing.TB, c *cluster.Cluster, cfg workload.Config, timeout time.Duration) map[int32]partition {
	t.Helper()
	var view map[int32]partition
	cluster.WaitFor(t, fmt.Sprintf("every partition of %s led by a running broker with %d in-sync replicas", cfg.Topic, cfg.ReplicationFactor), timeout, func() (bool, string) {
		ps, err := metadata(c, 0, cfg.Topic)
		if err != nil {
			return false, err.Error()
		}
		var bad []string
		for id := range cfg.Partitions {
			p, ok := ps[id]
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("p%d missing", id))
			case p.Err != nil || p.LeaderProc == nil || !p.LeaderProc.Running() || len(p.Replicas) != int(cfg.ReplicationFactor) ||
				len(p.ISR) != len(p.Replicas) || len(p.Offline) > 0:
				bad = append(bad, p.String())
			}
		}
		view = ps
		return len(bad) == 0, strings.Join(bad, "; ")
	})
	return view
}

// followers are the brokers replicating p other than its leader.
func followers(t testing.TB, c *cluster.Cluster, p partition) []*cluster.Broker {
	t.Helper()
	ids, err := kafkaIDs(c)
	if err != nil {
		t.Fatal(err)
	}
	var out []*cluster.Broker
	for _, r := range p.Replicas {
		if b := ids[r]; b != nil && r != p.Leader {
			out = append(out, b)
		}
	}
	if len(out) != len(p.Replicas)-1 {
		t.Fatalf("%v: replicas not all known brokers (%v)", p, ids)
	}
	return out
}

// others are the brokers but bs.
func others(c *cluster.Cluster, bs ...*cluster.Broker) []*cluster.Broker {
	var out []*cluster.Broker
	for _, b := range c.Brokers {
		if !slices.Contains(bs, b) {
			out = append(out, b)
		}
	}
	return out
}

// replLoad is the workload of every fault test: the 6-partition RF=3 topic, an idempotent
// acks=all producer and a from-the-start consumer on each gateway, and a consumer group of
// two members (one per gateway) committing what they read; metadata adds the metadata
// writers (topic creation, offset commits, InitProducerID) for the tests that hit the quorum.
func replLoad(t testing.TB, c *cluster.Cluster, topicName string, metadataOps bool) (workload.Config, *workload.Workload) {
	t.Helper()
	opts := clientOpts
	if f := os.Getenv(KgoLogEnv); f != "" { // the clients' own account of a stall
		lf, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lf.Close() })
		opts = append(slices.Clone(opts), kgo.WithLogger(kgo.BasicLogger(lf, kgo.LogLevelInfo, func() string { return time.Now().Format("15:04:05.000 ") })))
	}
	cfg := workload.Config{Seeds: seeds(c), Dial: c.Dialer(), Rec: checker.NewRecorder(nil),
		Topic: topicName, Partitions: partitions, ReplicationFactor: rf, Producers: 2, Consumers: 2, GroupConsumers: 2,
		MaxInFlight: 4096, Metadata: metadataOps, ClientOpts: opts}
	createReplicated(t, c, cfg)
	w := workload.Start(t, cfg)
	ops := []string{checker.OpProduce, checker.OpOffsetCommit, checker.OpOffsetFetch}
	if metadataOps {
		ops = append(ops, checker.OpCreateTopics, checker.OpInitProducerID)
	}
	w.WaitOK(t, time.Time{}, time.Minute, ops...)
	return w.Config(), w
}

// check stops the load, drains every partition once the cluster has settled, and runs the
// checker; anomalies keep the history in the test's artifact directory and fail the test.
// Enough of every operation must have happened for the run to show anything.
func check(t testing.TB, c *cluster.Cluster, cfg workload.Config, w *workload.Workload) checker.Report {
	t.Helper()
	w.Stop()
	settled(t, c, cfg, 2*time.Minute)
	workload.Final(t, cfg, w.Topics())
	h := cfg.Rec.History()
	rep := workload.Check(t, h)
	if rep.AckedSends == 0 || rep.ReadRecords == 0 || rep.AckedCommits == 0 || rep.OffsetReads == 0 {
		t.Fatalf("the workload did not exercise every operation: %s", rep.String())
	}
	t.Log("checker: " + rep.String())
	t.Log("consumers (liveness, not checked): " + consumed(h))
	return rep
}

// consumed says how far each consumer got: records read and, per partition, the offset after
// the last one read against the drained high watermark ("-": nothing read there, e.g. a group
// member the partition was not assigned to).
func consumed(h checker.History) string {
	hw := map[checker.TP]int64{}
	for _, d := range h.Drains {
		hw[d.TP] = d.HighWatermark
	}
	type key struct {
		consumer string
		tp       checker.TP
	}
	last, count := map[key]int64{}, map[string]int{}
	for _, p := range h.Polls {
		k := key{p.Consumer, p.TP}
		if l, ok := last[k]; !ok || p.Offset > l {
			last[k] = p.Offset
		}
		count[p.Consumer]++
	}
	var out []string
	for _, c := range slices.Sorted(maps.Keys(count)) {
		var parts []string
		for _, tp := range slices.SortedFunc(maps.Keys(hw), func(a, b checker.TP) int { return int(a.Partition - b.Partition) }) {
			if l, ok := last[key{c, tp}]; ok {
				parts = append(parts, fmt.Sprintf("p%d %d/%d", tp.Partition, l+1, hw[tp]))
			} else {
				parts = append(parts, fmt.Sprintf("p%d -/%d", tp.Partition, hw[tp]))
			}
		}
		out = append(out, fmt.Sprintf("%s read %d (%s)", c, count[c], strings.Join(parts, " ")))
	}
	return strings.Join(out, "; ")
}

func summary(ds []time.Duration) string {
	return fmt.Sprintf("p50 %v, p99 %v, max %v over %d", benchtest.Percentile(ds, 0.5).Round(time.Millisecond),
		benchtest.Percentile(ds, 0.99).Round(time.Millisecond), benchtest.Percentile(ds, 1).Round(time.Millisecond), len(ds))
}

func tp(topic string, p int32) checker.TP { return checker.TP{Topic: topic, Partition: p} }

// deleteTopic deletes cfg's topic once a phase is done with it, so that the raft groups of
// finished phases do not load the next ones.
func deleteTopic(t testing.TB, cfg workload.Config) {
	t.Helper()
	adm := kadm.NewClient(cfg.Client(t))
	cluster.WaitFor(t, "delete topic "+cfg.Topic, time.Minute, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := adm.DeleteTopic(ctx, cfg.Topic)
		if err == nil {
			err = r.Err
		}
		return err == nil, fmt.Sprint(err)
	})
}
