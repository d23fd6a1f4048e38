package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
)

// TestProduceStallStress hunts produce stalls: for $MESHKAFKA_STALL_STRESS seconds, rounds of
// concurrent kgo producers (acks=all and acks=1, with and without linger, 1 to 5 requests in
// flight, each a new client on a new topic) against one PLAINTEXT gateway on a broker on
// disk. A produce that acknowledges nothing for stallAfter leaves a goroutine dump
// (stallWatchdog). Skipped unless the variable is set.
func TestProduceStallStress(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("MESHKAFKA_STALL_STRESS"))
	if secs <= 0 {
		t.Skip("set MESHKAFKA_STALL_STRESS=seconds to run")
	}
	dir := t.TempDir()
	br, err := broker.Open(broker.Config{Dir: filepath.Join(dir, "data"), DefaultPartitions: 3, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := group.Open(group.Config{Dir: filepath.Join(dir, "groups")})
	if err != nil {
		br.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { gc.Close(); br.Close() })
	cfg := gateway.Config{Backend: txnBackend{Broker: br, Coordinator: gc}, AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}
	addr := serve.StartProtocol(t, cfg, gateway.Plaintext).Addr
	adm := kadm.NewClient(newClient(t, addr))
	value := make([]byte, 1024)
	end := time.Now().Add(time.Duration(secs) * time.Second)
	var seq atomic.Int64
	for round := 0; time.Now().Before(end); round++ {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				topic := fmt.Sprintf("stall-%d", seq.Add(1))
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
				n := 20000
				var done, failed atomic.Int64
				stop := stallWatchdogT(t, topic, &done, n)
				defer stop()
				for range n {
					cl.Produce(ctx, &kgo.Record{Topic: topic, Value: value}, func(_ *kgo.Record, err error) {
						done.Add(1)
						if err != nil {
							failed.Add(1)
						}
					})
				}
				if err := cl.Flush(ctx); err != nil || failed.Load() > 0 {
					t.Errorf("%s: produce: %v (%d failed)", topic, err, failed.Load())
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
