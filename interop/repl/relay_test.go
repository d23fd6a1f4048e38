package repl_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker/replica/replmesh"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// startNATRelay starts three brokers forming one metadata quorum, each behind a NAT router of
// its own (cluster.Options.NAT), a cmd/relay on the hub that every node uses as its home relay
// and STUN server, and one gateway on the hub's network; root only (skipped otherwise).
func startNATRelay(tb testing.TB, env []string) *cluster.Cluster {
	tb.Helper()
	cluster.RequireQuorum(tb)
	cluster.RequireNamespaces(tb)
	c := cluster.Start(tb, cluster.Options{Brokers: 3, Gateways: 1, Quorum: true, Netns: true, NAT: true, Relay: true, Env: env})
	tb.Cleanup(func() { idCache.Delete(c) })
	allLive(tb, c)
	return c
}

// blockDirect drops every packet between the brokers' NAT routers on the bridge: the brokers
// then reach each other only through the relay on the hub (the gateway still reaches them
// directly). Heal lifts it.
func blockDirect(c *cluster.Cluster) {
	groups := make([][]*cluster.NetNode, len(c.Brokers))
	for i, b := range c.Brokers {
		groups[i] = []*cluster.NetNode{b.NS}
	}
	c.Net.Partition(groups...)
}

// replicaPaths checks that every broker reports its replica transport's connections (ALPN
// replmesh.ALPN) to every other broker on path want ("direct": at the peer's NAT router's
// public address, a hole punched through both NATs; "relay": through c.RelayURL). It returns
// ok and a description (the paths seen, for the log or the failure).
func replicaPaths(c *cluster.Cluster, want string) (bool, string) {
	ok := true
	var seen []string
	for _, b := range c.Brokers {
		ps, err := b.MeshPaths()
		if err != nil {
			return false, err.Error()
		}
		for _, peer := range c.Brokers {
			if peer == b {
				continue
			}
			n := 0
			for _, p := range ps {
				if p.NodeID != peer.ID || p.ALPN != replmesh.ALPN {
					continue
				}
				n++
				where := p.Relay
				good := p.Path == want
				switch p.Path {
				case "direct":
					where = p.Remote
					host, _, _ := net.SplitHostPort(p.Remote)
					good = good && host == peer.NS.Public.String()
				case "relay":
					good = good && p.Relay == c.RelayURL
				}
				ok = ok && good
				seen = append(seen, fmt.Sprintf("%s→%s %s %s rtt %.1fms", b.Name, peer.Name, p.Path, where, p.RTTMs))
			}
			if n == 0 {
				ok = false
				seen = append(seen, fmt.Sprintf("%s→%s no replica connection", b.Name, peer.Name))
			}
		}
	}
	return ok, strings.Join(seen, "; ")
}

// offPath reports whether any broker reports a replica connection to another broker on
// another path than want, and the paths seen (a connection being redialled may be missing for
// a moment: not counted).
func offPath(tb testing.TB, c *cluster.Cluster, want string) (string, bool) {
	tb.Helper()
	var seen []string
	off := false
	for _, b := range c.Brokers {
		ps, err := b.MeshPaths()
		if err != nil {
			tb.Fatal(err)
		}
		for _, p := range ps {
			if p.ALPN == replmesh.ALPN && slices.Contains(c.BrokerIDs(), p.NodeID) {
				off = off || p.Path != want
				seen = append(seen, fmt.Sprintf("%s→%s %s", b.Name, c.BrokerByNodeID(p.NodeID).Name, p.Path))
			}
		}
	}
	return strings.Join(seen, "; "), off
}

// waitReplicaPaths waits until replicaPaths(c, want) holds and returns what it saw. The bound
// catches a hang only.
func waitReplicaPaths(tb testing.TB, c *cluster.Cluster, want string) string {
	tb.Helper()
	var seen string
	cluster.WaitFor(tb, "every replica connection on the "+want+" path", 2*time.Minute, func() (bool, string) {
		var ok bool
		ok, seen = replicaPaths(c, want)
		return ok, seen
	})
	return seen
}

// TestReplRelay is issue #16's "the direct path blocked so replication runs via the relay",
// with the replicas behind different NATs: three brokers, each behind a NAT router of its own
// that drops unsolicited inbound packets, reach each other at first through the cmd/relay on
// the hub, then punch through the NATs (STUN + disco) and move to direct paths. Under the
// replicated load of the fault suite (a 6-partition RF=3 topic, idempotent acks=all producers,
// consumers and a committing group, through one gateway) each cycle
//
//   - blocks every packet between the brokers' NATs (nftables on the bridge), waits until each
//     broker's admin API (GET /mesh/paths) shows its replica connections to both others on the
//     relay, and until a record is acknowledged on every partition after that: replication runs
//     through the relay;
//   - lifts the block, waits until every replica connection is direct again at the peer's
//     NAT's public address, and for a record acknowledged on every partition after that.
//
// REPL_CYCLES cycles (default 10); then the checker over the whole history: zero anomalies.
// Runs with the fault suite (REPL_FAULTS=1).
func TestReplRelay(t *testing.T) {
	requireFaults(t)
	c := startNATRelay(t, nil)
	cfg, w := replLoad(t, c, topic+"-relay", false)
	// Replica connections exist once partitions are replicated.
	t.Logf("replica paths before any fault: %s", waitReplicaPaths(t, c, "direct"))
	e := &env{c: c, cfg: cfg, w: w}
	n := cycles(10)
	var toRelay, toDirect, stallBlock, stallHeal []time.Duration
	for cycle := range n {
		settled(t, c, cfg, time.Minute)
		at := time.Now()
		blockDirect(c)
		relayed := waitReplicaPaths(t, c, "relay")
		toRelay = append(toRelay, time.Since(at))
		onRelay := time.Now()
		worst := e.allPartitionsAck(t, onRelay)
		relayAcked := time.Now()
		dropped := c.Net.Dropped()
		if dropped == 0 {
			t.Fatalf("cycle %d: blocking the brokers' direct paths dropped no packet: the fault did not happen", cycle)
		}
		// No replica connection direct while blocked: the acknowledgements above went through
		// the relay.
		if seen, off := offPath(t, c, "relay"); off {
			t.Fatalf("cycle %d: a replica connection reports a direct path while every packet between the NATs is dropped: %s", cycle, seen)
		}
		c.Net.Heal()
		healed := time.Now()
		direct := waitReplicaPaths(t, c, "direct")
		toDirect = append(toDirect, time.Since(healed))
		worstDirect := e.allPartitionsAck(t, time.Now())
		h := cfg.Rec.History()
		stallBlock = append(stallBlock, ackGap(h, cfg, at, relayAcked))
		stallHeal = append(stallHeal, ackGap(h, cfg, healed, time.Now()))
		t.Logf("cycle %d: direct blocked (%d packets dropped); relayed after %v (%s); every partition acknowledged within %v on the relay; unblocked; direct after %v (%s); acknowledged within %v; longest acknowledgement gap on a partition: %v while moving to the relay, %v back to direct",
			cycle, dropped, toRelay[cycle].Round(time.Millisecond), relayed, worst.Round(time.Millisecond),
			toDirect[cycle].Round(time.Millisecond), direct, worstDirect.Round(time.Millisecond),
			stallBlock[cycle].Round(time.Millisecond), stallHeal[cycle].Round(time.Millisecond))
	}
	// Reported, never asserted: replication stalls while the blocked direct path is still
	// trusted (mesh/magicsock: until a stay-alive ping to it has gone unanswered for 1 s, at
	// most 6.5 s after its last pong).
	t.Logf("direct → relay: %s; relay → direct: %s", summary(toRelay), summary(toDirect))
	t.Logf("longest acknowledgement gap on a partition while moving to the relay: %s; back to direct: %s", summary(stallBlock), summary(stallHeal))
	check(t, c, cfg, w)
}

// BenchmarkReplRelay: replication throughput through the relay against the direct path, same
// run, same cluster: three brokers each behind a NAT router of its own, a cmd/relay on the
// hub, one gateway on the hub's network, one kgo client; a 3-partition RF=3 topic.
//
//	impl=ours    the brokers' direct paths blocked (nftables): every replica message between
//	             brokers goes through the relay (client → gateway → leader stays direct)
//	impl=direct  unblocked: the replica connections on hole-punched direct paths
//
// so cmd/benchjson's ours/peer ratio is relay over direct. produce-100B-acks=all: b.N
// incompressible 100-byte records, acks=all (each batch committed on a majority of the three
// replicas, so on at least one broker-to-broker hop), records/s and MB/s of record payload,
// the CPU time per record of each process (gateway, relay, broker-0..2) and of all of them
// (server-cpu-ns/record), and the mean RTT of the brokers' replica connections
// (replica-rtt-ms); produce-16KiB-acks=all
// the same with 16 KiB records, where the bytes replicated rather than the per-request costs
// set the pace (what the relay's bandwidth costs). Each sub-benchmark
// first waits until every replica connection reports the path it measures. Root only (network
// namespaces); not gated on REPL_FAULTS, so `go tool task bench` runs it.
func BenchmarkReplRelay(b *testing.B) {
	share := fmt.Sprintf("GOMAXPROCS=%d", max(1, runtime.NumCPU()/2))
	c := startNATRelay(b, []string{share})
	cfg := workload.Config{Seeds: seeds(c), Dial: c.Dialer(), Topic: "bench-relay", Partitions: 3, ReplicationFactor: 3, ClientOpts: clientOpts}
	createReplicated(b, c, cfg)
	blocked := false
	for _, size := range []int{benchRecordSize, 16 << 10} {
		value := make([]byte, size)
		rand.NewChaCha8([32]byte{2}).Read(value)
		name := fmt.Sprintf("produce-%dB-acks=all", size)
		if size >= 1<<10 {
			name = fmt.Sprintf("produce-%dKiB-acks=all", size>>10)
		}
		for _, impl := range []string{"ours", "direct"} {
			benchRelayProduce(b, c, cfg.Topic, name, impl, value, &blocked)
		}
	}
	c.Net.Heal()
}

// benchRelayProduce is one sub-benchmark of BenchmarkReplRelay: b.N records of value through
// the gateway with the brokers' direct paths blocked (impl=ours) or not (impl=direct).
func benchRelayProduce(b *testing.B, c *cluster.Cluster, topicName, name, impl string, value []byte, blocked *bool) {
	b.Run(name+"/impl="+impl, func(b *testing.B) {
		// b.Run calls this more than once (b.N ramping up): the rules change only once.
		path := "direct"
		if impl == "ours" {
			path = "relay"
		}
		switch {
		case path == "relay" && !*blocked:
			blockDirect(c)
		case path == "direct" && *blocked:
			c.Net.Heal()
		}
		*blocked = path == "relay"
		waitReplicaPaths(b, c, path)
		cl := kafkaclients.KgoClient(b, c.Gateways[0].Addr, append(kafkaclients.BenchProducerOpts(), kgo.Dialer(c.Dialer()))...)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		// Connections and metadata first, outside the timing.
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topicName, Value: value}).FirstErr(); err != nil {
			b.Fatalf("warm-up produce: %v", err)
		}
		names := []string{"gateway", "relay"}
		procs := []*kafkaclients.CPUMeter{kafkaclients.StartCPU(c.Gateways[0].P.Pid()), kafkaclients.StartCPU(c.Relay.Pid())}
		for _, br := range c.Brokers {
			names = append(names, br.Name)
			procs = append(procs, kafkaclients.StartCPU(br.P.Pid()))
		}
		b.ResetTimer()
		d := produceTimed(b, ctx, cl, topicName, value, b.N)
		b.StopTimer()
		// The path held for the whole run.
		if seen, off := offPath(b, c, path); off {
			b.Fatalf("replica connections left the %s path during the run: %s", path, seen)
		}
		reportThroughput(b, b.N, len(value), d)
		reportCPU(b, names, procs, nil)
		if rtt, ok := replicaRTT(c); ok {
			b.ReportMetric(rtt, "replica-rtt-ms")
		}
	})
}

// replicaRTT is the mean smoothed RTT of the brokers' replica connections to each other.
func replicaRTT(c *cluster.Cluster) (float64, bool) {
	var rtts []float64
	for _, b := range c.Brokers {
		ps, err := b.MeshPaths()
		if err != nil {
			return 0, false
		}
		for _, p := range ps {
			if p.ALPN == replmesh.ALPN && p.RTTMs > 0 && slices.Contains(c.BrokerIDs(), p.NodeID) {
				rtts = append(rtts, p.RTTMs)
			}
		}
	}
	if len(rtts) == 0 {
		return 0, false
	}
	var sum float64
	for _, r := range rtts {
		sum += r
	}
	return sum / float64(len(rtts)), true
}

// ackGap is the longest time within [from, to] during which some partition of cfg's topic had
// no acknowledged record: how long replication stalled while the paths changed.
func ackGap(h checker.History, cfg workload.Config, from, to time.Time) time.Duration {
	last := map[int32]time.Time{}
	for p := range cfg.Partitions {
		last[p] = from
	}
	var worst time.Duration
	sends := slices.Clone(h.Sends)
	slices.SortFunc(sends, func(a, b checker.Send) int { return a.Wall.Compare(b.Wall) })
	for _, s := range sends {
		if !s.OK || s.Topic != cfg.Topic || s.Wall.Before(from) || s.Wall.After(to) {
			continue
		}
		worst = max(worst, s.Wall.Sub(last[s.Partition]))
		last[s.Partition] = s.Wall
	}
	for _, l := range last {
		worst = max(worst, to.Sub(l))
	}
	return worst
}
