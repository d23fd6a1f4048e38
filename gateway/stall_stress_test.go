package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// TestProduceStallStress hunts produce stalls: for $MESHKAFKA_STALL_STRESS seconds, rounds of
// concurrent kgo producers (acks=all and acks=1, with and without linger, 1 to 5 requests in
// flight, each a new client on a new topic) against one PLAINTEXT gateway on a broker on
// disk, each topic deleted after its produce. A produce that acknowledges nothing for
// stallAfter leaves a goroutine dump (watchStall). Skipped unless the variable is set.
func TestProduceStallStress(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("MESHKAFKA_STALL_STRESS"))
	if secs <= 0 {
		t.Skip("set MESHKAFKA_STALL_STRESS=seconds to run")
	}
	dir := t.TempDir()
	br, gc, stopped := openStoppable(t, broker.Config{Dir: filepath.Join(dir, "data"), DefaultPartitions: 3}, filepath.Join(dir, "groups"))
	cfg := gateway.Config{Backend: txnBackend{Broker: br, Coordinator: gc}, AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}
	addr := serve.StartProtocol(t, cfg, gateway.Plaintext).Addr
	adm := kadm.NewClient(kafkaclients.KgoClient(t, addr))
	value := make([]byte, 1024)
	end := time.Now().Add(time.Duration(secs) * time.Second)
	var seq atomic.Int64
	for round := 0; time.Now().Before(end); round++ {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				topic := fmt.Sprintf("stall-%d", seq.Add(1))
				ctx, cancel := context.WithTimeout(stopped, 2*time.Minute)
				defer cancel()
				if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
					t.Errorf("create %s: %v", topic, err)
					return
				}
				acks := kgo.AllISRAcks()
				if w%2 == 1 {
					acks = kgo.LeaderAck()
				}
				opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite(),
					kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1 << 12),
					kgo.MaxProduceRequestsInflightPerBroker(1 + (round+w)%5), kgo.ProducerBatchCompression(kgo.NoCompression())}
				if w >= 2 {
					opts = append(opts, kgo.ProducerLinger(time.Millisecond))
				}
				cl, err := kgo.NewClient(opts...)
				if err != nil {
					t.Error(err)
					return
				}
				defer cl.Close()
				if err := produceAll(ctx, t, cl, topic, value, 20000, nil); err != nil {
					t.Errorf("%s: produce: %v", topic, err)
				}
				// Each round writes ~80 MB: delete the topic so that a long hunt does not
				// fill the disk (which itself stops the broker: a different "stall").
				if _, err := adm.DeleteTopic(ctx, topic); err != nil {
					t.Errorf("delete %s: %v", topic, err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		t.Logf("round %d done", round)
	}
}

// openStoppable opens a broker with cfg (its logs discarded) and a group coordinator in
// groupDir, both closed when the test ends. The broker's OnStop (fail-stop, broker/doc.go)
// cancels the returned context with the cause, so produces bound by it end with the reason
// instead of waiting out their deadline.
func openStoppable(tb testing.TB, cfg broker.Config, groupDir string) (*broker.Broker, *group.Coordinator, context.Context) {
	tb.Helper()
	stopped, stop := context.WithCancelCause(context.Background())
	tb.Cleanup(func() { stop(nil) })
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.OnStop = func(err error) { stop(fmt.Errorf("broker stopped: %w", err)) }
	br, err := broker.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	gc, err := group.Open(group.Config{Dir: groupDir})
	if err != nil {
		br.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { gc.Close(); br.Close() }) // after the gateways stop (cleanups run last first)
	return br, gc, stopped
}

// TestProduceAllReportsBrokerStop: when the disk fills up under a produce, the broker stops
// (fail-stop: every later produce answers KAFKA_STORAGE_ERROR, which kgo retries without end,
// so the client sat with a full buffer and the gateway idle between retries, the "stall"
// BenchmarkSecureListener showed when the machine's disk filled). With the broker's OnStop
// cancelling the produce, produceAll ends with the cause (ENOSPC) as soon as the broker stops,
// instead of hanging until its context's deadline.
func TestProduceAllReportsBrokerStop(t *testing.T) {
	fs := waltest.NewCrashFS()
	br, gc, stopped := openStoppable(t, broker.Config{Dir: "/data", FS: fs, DefaultPartitions: 3}, filepath.Join(t.TempDir(), "groups"))
	cfg := gateway.Config{Backend: txnBackend{Broker: br, Coordinator: gc}, AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}
	addr := serve.StartProtocol(t, cfg, gateway.Plaintext).Addr
	// A hang bound only: the produce below ends when the broker stops.
	ctx, cancel := context.WithTimeout(stopped, 2*time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(kafkaclients.KgoClient(t, addr)).CreateTopic(ctx, 3, 1, nil, "full"); err != nil {
		t.Fatal(err)
	}
	cl := kafkaclients.KgoClient(t, addr, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	value := make([]byte, 1024)
	if err := produceAll(ctx, t, cl, "full", value, 10, nil); err != nil {
		t.Fatalf("produce before the disk fills: %v", err)
	}
	fs.SetWriteLimit(0) // the disk is full
	err := produceAll(ctx, t, cl, "full", value, 1000, nil)
	if !errors.Is(err, syscall.ENOSPC) || br.Err() == nil {
		t.Fatalf("produce on a full disk: %v (broker error %v), want the broker's stop for ENOSPC", err, br.Err())
	}
	t.Log(err)
}
