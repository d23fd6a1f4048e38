package quorum_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// TestUpCluster runs scripts/up-cluster.sh (what `go tool task up-cluster` runs) inside a
// private network namespace, so that its fixed ports cannot collide with anything: the three
// brokers form one quorum, Kafka on :9092 creates, produces and consumes, the gateway's status
// page shows the cluster and a group's lag going to 0 in headless Chromium, and a SIGTERM to
// the script stops every process it started.
func TestUpCluster(t *testing.T) {
	cluster.RequireQuorum(t)
	cluster.RequireNamespaces(t)
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "up-cluster.sh")
	ns := cluster.NewNetns(t, "up-cluster")
	data := t.TempDir()
	p := cluster.StartProc(t, "up-cluster", ns, []string{"DATA=" + data, "BIN_DIR=" + cluster.Bins(t)}, "sh", script)
	// A failing test still stops the script's servers before the script is killed (cleanups
	// run last-in first-out; a SIGKILLed script could not stop them).
	t.Cleanup(func() { p.SignalAndWait(syscall.SIGTERM, 15*time.Second) })
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

	// The gateway's status page (the task's default, 127.0.0.1:9464) in headless Chromium
	// inside the namespace: the three brokers as mesh peers, the controller, the topic, and a consumer
	// group's lag going from 30 to 0 as it reads and commits.
	const group = "up-readers"
	if err := kadm.NewClient(cl).CommitAllOffsets(t.Context(), group, kadm.Offsets{"up": {
		0: {At: 0}, 1: {At: 0}, 2: {At: 0}}}); err != nil {
		t.Fatalf("commit the group's start: %v", err)
	}
	pctx, pcancel := context.WithTimeout(t.Context(), 5*time.Minute) // a hang bound
	defer pcancel()
	bctx := cluster.StartChromium(t, pctx, cluster.Chromium(t), ns)
	url := "http://127.0.0.1:9464/"
	v := cluster.WaitStatusPage(t, bctx, url, "three brokers, topic up and the group's lag 30", time.Minute, func(v cluster.StatusView) bool {
		g, ok := v.Group(group)
		return v.MeshPeers("broker") == 3 && strings.Contains(v.Body, "controller") && v.HasTopic("up") && ok && g.Lag == 30
	})
	t.Logf("status page: %v", v)
	reader := cfg.Client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics("up"), kgo.DisableAutoCommit())
	for read := 0; read < 30; {
		fs := reader.PollFetches(pctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("group read after %d records: %v", read, err)
		}
		read += fs.NumRecords()
	}
	if err := reader.CommitUncommittedOffsets(pctx); err != nil {
		t.Fatalf("group commit: %v", err)
	}
	v = cluster.WaitStatusPage(t, bctx, url, "the group's lag 0", time.Minute, func(v cluster.StatusView) bool {
		g, ok := v.Group(group)
		return ok && g.Lag == 0
	})
	t.Logf("status page: %v", v)
	cluster.Screenshot(t, bctx, "up-cluster-status.png")
	reader.Close()
	if err := cluster.CloseChromium(bctx); err != nil {
		t.Errorf("closing chromium: %v", err)
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
