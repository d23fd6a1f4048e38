package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse(t *testing.T) {
	o, err := parse(nil, env(map[string]string{"RAFKA_KAFKA_CLIENT_HOST": "kafka.example", "RAFKA_KAFKA_CLIENT_PORT": "19092"}), io.Discard)
	if err != nil || o.listen != ":9092" || o.data != "./data" || o.partitions != 1 || o.advertisedHost != "kafka.example" || o.advertisedPort != 19092 {
		t.Fatalf("defaults with env: %+v %v", o, err)
	}
	o, err = parse([]string{"-advertised-host", "h", "-advertised-port", "1", "-partitions", "8"}, env(map[string]string{"RAFKA_KAFKA_CLIENT_HOST": "x"}), io.Discard)
	if err != nil || o.advertisedHost != "h" || o.advertisedPort != 1 || o.partitions != 8 {
		t.Fatalf("flags over env: %+v %v", o, err)
	}
	if o.sessionSlots != 1000 || o.sessionParts != 1_000_000 {
		t.Fatalf("fetch-session defaults: %+v", o)
	}
	if o.directBrokers {
		t.Fatal("-direct-brokers on by default")
	}
	if o.storage != (cli.Storage{}) {
		t.Fatalf("storage defaults: %+v", o.storage)
	}
	if o, err = parse([]string{"-wal-checkpoint-interval", "250ms", "-wal-syncfs-min-logs", "-1"}, env(nil), io.Discard); err != nil ||
		o.storage != (cli.Storage{CheckpointInterval: 250 * time.Millisecond, SyncFSMinLogs: -1}) {
		t.Fatalf("storage flags: %+v %v", o.storage, err)
	}
	var bcfg broker.Config
	o.storage.Apply(&bcfg)
	if bcfg.Store.CheckpointInterval != 250*time.Millisecond || bcfg.Store.SyncFSMinLogs != -1 {
		t.Fatalf("storage flags applied: %+v", bcfg.Store)
	}
	if _, err := parse([]string{"-wal-checkpoint-interval", "-1s"}, env(nil), io.Discard); err == nil {
		t.Fatal("a negative -wal-checkpoint-interval accepted")
	}
	if o, err = parse(nil, env(map[string]string{"MESHKAFKA_DIRECT_BROKERS": "true"}), io.Discard); err != nil || !o.directBrokers {
		t.Fatalf("MESHKAFKA_DIRECT_BROKERS: %+v %v", o, err)
	}
	if _, err = parse([]string{"-listen", ":9093", "-listeners", "PLAINTEXT://:9094"}, env(nil), io.Discard); err == nil {
		t.Fatal("-listen and -listeners both accepted")
	}
	if o, err = parse([]string{"-fetch-session-slots", "0"}, env(nil), io.Discard); err != nil || o.sessionSlots != -1 {
		t.Fatalf("-fetch-session-slots 0 must turn sessions off: %+v %v", o, err)
	}
	for _, bad := range [][]string{{"-partitions", "0"}, {"-advertised-port", "70000"}, {"extra"}, {"-nope"},
		{"-fetch-session-slots", "-2"}, {"-fetch-session-partitions", "0"}} {
		if _, err := parse(bad, env(nil), io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parse(nil, env(map[string]string{"RAFKA_KAFKA_CLIENT_PORT": "port"}), io.Discard); err == nil {
		t.Error("bad RAFKA_KAFKA_CLIENT_PORT accepted")
	}
}

// runCmd runs the command in-process on dir with the environment vars, and returns the address
// its banner names (the kcat hint must follow), what run returns, and the cancel of run's
// context.
func runCmd(t *testing.T, dir string, vars map[string]string) (addr string, done <-chan error, cancel context.CancelFunc) {
	t.Helper()
	pr, result, cancel := goRun(dir, vars)
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		t.Fatalf("no banner: %v", <-result)
	}
	line := sc.Text() // "gateway listening on ADDR (advertised ...)"
	addr = strings.Fields(strings.TrimPrefix(line, "gateway listening on "))[0]
	if !sc.Scan() || !strings.Contains(sc.Text(), "kcat -b ") {
		cancel()
		t.Fatalf("no kcat hint after %q (run: %v)", line, <-result)
	}
	go io.Copy(io.Discard, pr)
	return addr, result, cancel
}

// goRun starts the command in-process on dir (listening on a loopback port) with the
// environment vars: its stdout, what run returns, and the cancel of run's context.
func goRun(dir string, vars map[string]string) (stdout *io.PipeReader, result <-chan error, cancel context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	res := make(chan error, 1)
	go func() {
		res <- run(ctx, []string{"-listen", "127.0.0.1:0", "-data", dir}, env(vars), pw, io.Discard)
		pw.Close()
	}()
	return pr, res, cancel
}

// startRun runs the command in-process and returns the address it prints and a stop func.
func startRun(t *testing.T, dir string) (string, func()) {
	t.Helper()
	return startRunEnv(t, dir, nil)
}

func startRunEnv(t *testing.T, dir string, vars map[string]string) (string, func()) {
	t.Helper()
	addr, done, cancel := runCmd(t, dir, vars)
	return addr, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}

func TestRunRestartKeepsRecords(t *testing.T) {
	dir := t.TempDir()
	addr, stop := startRun(t, dir)
	cl := kgoClient(t, addr, kgo.AllowAutoTopicCreation())
	var recs []*kgo.Record
	for i := range 50 {
		recs = append(recs, &kgo.Record{Topic: "restart", Value: []byte{byte(i)}})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	stop()

	addr, stop = startRun(t, dir)
	defer stop()
	cl = kgoClient(t, addr, kgo.ConsumeTopics("restart"), kgo.FetchMaxWait(100*time.Millisecond))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < len(recs) && ctx.Err() == nil {
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	if len(got) != len(recs) {
		t.Fatalf("after restart: %d of %d records", len(got), len(recs))
	}
	for i, r := range got {
		if r.Offset != int64(i) || r.Value[0] != byte(i) {
			t.Fatalf("record %d: offset %d value %v", i, r.Offset, r.Value)
		}
	}
}

// TestAdvertisedFromEnv: RAFKA_KAFKA_CLIENT_HOST/PORT are what Metadata tells clients to dial.
func TestAdvertisedFromEnv(t *testing.T) {
	addr, stop := startRunEnv(t, t.TempDir(), map[string]string{"RAFKA_KAFKA_CLIENT_HOST": "kafka.example", "RAFKA_KAFKA_CLIENT_PORT": "19999"})
	defer stop()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	md.Topics = []kmsg.MetadataRequestTopic{}
	if _, err := c.Write(kmsg.NewRequestFormatter().AppendRequest(nil, md, 1)); err != nil {
		t.Fatal(err)
	}
	resp := gatewaytest.ReadResponse(t, kafkawire.NewFrameReader(c, 0), md, 1).(*kmsg.MetadataResponse)
	if len(resp.Brokers) != 1 || resp.Brokers[0].Host != "kafka.example" || resp.Brokers[0].Port != 19999 {
		t.Fatalf("advertised %+v", resp.Brokers)
	}
}

// Fail-stop: when the embedded broker stops after a write of unknown outcome, the gateway
// exits with an error (so a supervisor restarts it and recovery runs) instead of serving
// errors forever. The registry file is replaced by a non-empty directory, so the rename of the
// next registry write (a CreateTopics) fails: its outcome is unknown to the broker.
func TestGatewayExitsWhenBrokerStops(t *testing.T) {
	dir := t.TempDir()
	addr, done, cancel := runCmd(t, dir, nil)
	defer cancel()

	reg := filepath.Join(dir, "topics.registry")
	if _, err := os.Stat(reg); err != nil {
		cancel()
		<-done
		t.Fatalf("test setup: %v", err)
	}
	if err := os.Remove(reg); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(reg, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	cl := kgoClient(t, addr)
	defer cl.Close()
	rctx, rcancel := context.WithCancel(context.Background())
	reqDone := make(chan struct{})
	go func() {
		defer close(reqDone)
		req := kmsg.NewPtrCreateTopicsRequest()
		tp := kmsg.NewCreateTopicsRequestTopic()
		tp.Topic, tp.NumPartitions, tp.ReplicationFactor = "a", 1, 1
		req.Topics = append(req.Topics, tp)
		_, _ = req.RequestWith(rctx, cl) // answered with an error, or cut by the exit
	}()
	err := <-done // the gateway exits by itself: ctx is not cancelled
	rcancel()
	<-reqDone
	if err == nil || !errors.Is(err, broker.ErrRegistryFailed) || !strings.Contains(err.Error(), "restart to recover") {
		t.Fatalf("run returned %v, want the broker's stop (ErrRegistryFailed)", err)
	}
}
