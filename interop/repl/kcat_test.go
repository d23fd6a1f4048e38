package repl_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/interop/checker"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/workload"
)

// TestKcatStreams runs ClientsLeaderKill's kcat invocations (kcatConsume, kcatProduceRange)
// through a gateway and a broker in process, on loopback (no root, no kill): the kcat
// consumer must hand each record to the test while it runs, not when it exits.
// ClientsLeaderKill waits for the consumer to read the first third before it kills the
// leader and lets the producer send the rest; a kcat consumer whose stdout is a pipe
// buffers it (stdio's full buffering, up to 4 KiB) and wrote nothing until its -c count was
// reached, which the held producer never let happen, so kcat got "nothing through" in two
// minutes. Here the consumer is started with a count of n while only the first half
// exists: it must have printed that half before the second half is produced.
func TestKcatStreams(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skipf("kcat not installed (%v): librdkafka's command line not covered in this run", err)
	}
	b, err := broker.Open(broker.Config{Dir: t.TempDir(), DefaultPartitions: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the gateway's Stop (cleanups run last registered first)
		if err := b.Close(); err != nil {
			t.Errorf("broker close: %v", err)
		}
	})
	g := serve.Start(t, gateway.Config{Backend: b.Service(nil), AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}, nil)

	const n = 20
	cfg := workload.Config{Seeds: []string{g.Addr}, Rec: checker.NewRecorder(nil), Topic: "kcat-streams", Partitions: 1, ReplicationFactor: 1}
	adm := kadm.NewClient(cfg.Client(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang bound
	defer cancel()
	if res, err := adm.CreateTopic(ctx, 1, 1, nil, cfg.Topic); err != nil || res.Err != nil {
		t.Fatalf("create %s: %v %v", cfg.Topic, err, res.Err)
	}
	r := &clientRun{cn: clientNet{dial: (&net.Dialer{}).DialContext, command: exec.CommandContext},
		addr: g.Addr, topic: cfg.Topic, n: n, rec: cfg.Rec, producer: "kcat-producer", consumer: "kcat-consumer",
		resumeSeq: n, read: map[string]bool{}, logs: map[string]*tailBuffer{}}
	defer func() {
		if t.Failed() {
			for name, l := range r.logs {
				t.Logf("%s stderr:\n%s", name, l)
			}
		}
	}()

	var consErr error
	consDone := make(chan struct{})
	go func() { defer close(consDone); consErr = kcatConsume(ctx, r) }()
	defer func() { cancel(); <-consDone }() // the process ends with ctx

	if err := kcatProduceRange(ctx, r, 0, n/2); err != nil {
		t.Fatal(err)
	}
	cluster.WaitFor(t, "the kcat consumer printing the first half while it runs", time.Minute, func() (bool, string) {
		select {
		case <-consDone:
			t.Fatalf("kcat consumer ended with %d of %d values: %v; %v", r.readCount(), n, consErr, r.errors())
		default:
		}
		got := r.readCount()
		return got == n/2, fmt.Sprintf("%d values read; %v", got, r.errors())
	})
	if err := kcatProduceRange(ctx, r, n/2, n); err != nil {
		t.Fatal(err)
	}
	<-consDone
	if consErr != nil {
		t.Fatal(consErr)
	}
	for _, e := range r.errors() {
		t.Errorf("reached the application: %s", e)
	}
	workload.Final(t, cfg, nil)
	checkClientRun(t, libClient{name: "kcat", idempotent: true}, r, cfg.Rec.History())
}
