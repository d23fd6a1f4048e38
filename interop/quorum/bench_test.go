package quorum_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/meshkafka/meshkafka/internal/benchtest"
	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// BenchmarkQuorumMetadataWrite: CreateTopics and OffsetCommit latency through a gateway, on a
// three-broker quorum (impl=ours) beside a single broker (impl=single-broker: a quorum of
// one), same run; cmd/benchjson groups the two and reports three-broker/single-broker ratios.
// Each op is one CreateTopics of a new 1-partition topic and one OffsetCommit; p50/p99 of
// each are reported.
func BenchmarkQuorumMetadataWrite(b *testing.B) {
	for _, v := range []struct {
		impl    string
		brokers int
	}{{"single-broker", 1}, {"ours", 3}} {
		b.Run("impl="+v.impl, func(b *testing.B) {
			c := startQuorum(b, cluster.Options{Brokers: v.brokers, Gateways: 1})
			cfg := workload.Config{Seeds: []string{c.Gateways[0].Addr}, Dial: c.Dialer(), Topic: "bench", Partitions: 1}
			cfg.CreateTopic(b)
			adm := kadm.NewClient(cfg.Client(b))
			ctx := context.Background()
			var creates, commits []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				r, err := adm.CreateTopic(ctx, 1, 1, nil, "bench-"+strconv.Itoa(i))
				if err == nil {
					err = r.Err
				}
				if err != nil {
					b.Fatalf("create topic: %v", err)
				}
				mid := time.Now()
				var offs kadm.Offsets
				offs.Add(kadm.Offset{Topic: "bench", Partition: 0, At: int64(i), LeaderEpoch: -1})
				resp, err := adm.CommitOffsets(ctx, "bench-group", offs)
				if err == nil {
					err = resp.Error()
				}
				if err != nil {
					b.Fatalf("commit: %v", err)
				}
				creates, commits = append(creates, mid.Sub(start)), append(commits, time.Since(mid))
			}
			benchtest.ReportMs(b, "create-", creates)
			benchtest.ReportMs(b, "commit-", commits)
		})
	}
}

// BenchmarkQuorumFailover: the time from a SIGKILL of the quorum leader to the first
// successful metadata write (CreateTopics, OffsetCommit or InitProducerID through the
// gateway, each tried every 50 ms), over QUORUM_BENCH_KILLS kills (default 20) per op; p50 and
// p99 reported. Target in issue #15: p99 ≤ 3 s.
func BenchmarkQuorumFailover(b *testing.B) {
	kills := cluster.EnvCount("QUORUM_BENCH_KILLS", 20)
	c := startQuorum(b, cluster.Options{Brokers: 3, Gateways: 1})
	cfg, w := startLoad(b, c, false, 5*time.Millisecond)
	var failovers []time.Duration
	b.ResetTimer()
	for b.Loop() {
		for range kills {
			leader := caughtUp(b, c, time.Minute)
			leader.Kill()
			at := time.Now()
			w.WaitOK(b, at, time.Minute, checker.OpCreateTopics, checker.OpOffsetCommit)
			first, _, _ := cfg.Rec.FirstWriteAfter(at)
			failovers = append(failovers, first.Sub(at))
			leader.Start(b)
		}
	}
	benchtest.ReportMs(b, "failover-", failovers)
	w.Stop()
}
