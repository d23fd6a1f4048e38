package quorum_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// TestUpCluster runs scripts/up-cluster.sh (what `go tool task up-cluster` runs) inside a
// private network namespace, so that its fixed ports cannot collide with anything: the three
// brokers form one quorum, Kafka on :9092 creates, produces and consumes, and a SIGTERM to the
// script stops every process it started.
func TestUpCluster(t *testing.T) {
	cluster.RequireQuorum(t)
	cluster.RequireNamespaces(t)
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "up-cluster.sh")
	ns := cluster.NewNetns(t, "up-cluster")
	data := t.TempDir()
	p := cluster.StartProc(t, "up-cluster", ns, []string{"DATA=" + data, "BIN_DIR=" + cluster.Bins(t)}, "sh", script)
	p.WaitFor(t, "gateway banner", 2*time.Minute, func() bool { return strings.Contains(p.Stdout.String(), cluster.GatewayBanner) })

	for i, admin := range []string{"127.0.0.1:9644", "127.0.0.1:9645", "127.0.0.1:9646"} {
		b := &cluster.Broker{Node: cluster.Node{Name: "broker-" + string(rune('0'+i)), NS: &cluster.NetNode{Netns: ns}}, Admin: admin}
		cluster.WaitFor(t, b.Name+" in a three-voter quorum", time.Minute, func() (bool, string) {
			s, err := b.QuorumStatus()
			if err != nil {
				return false, err.Error()
			}
			return len(s.Voters()) == 3 && s.LeaderNodeID != "", strings.Join(s.Voters(), ",")
		})
	}
	cfg := workload.Config{Seeds: []string{"127.0.0.1:9092"}, Dial: ns.DialContext, Topic: "up", Partitions: 3}
	cfg.CreateTopic(t)
	cl := cfg.Client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("up"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 30 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "up")
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 30 {
		t.Fatalf("%d records stored, want 30", total)
	}

	if err := p.Stop(); err != nil {
		t.Errorf("up-cluster after SIGTERM: %v\n%s", err, p.Tail(30))
	}
	// Every process it started is gone: nothing but the namespace's holder is left in it.
	cluster.WaitFor(t, "every up-cluster process gone", 30*time.Second, func() (bool, string) {
		left, err := ns.Procs()
		return err == nil && len(left) == 0, strings.Join(left, ", ")
	})
}
