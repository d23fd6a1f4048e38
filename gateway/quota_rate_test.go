package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
)

// The quota tests below run a real kgo client against the gateway inside a synctest bubble,
// over in-memory connections: the token buckets, the connection mutes and kgo's own
// throttle waits all run on the bubble's clock, so the achieved rate is measured in virtual
// time, exactly, whatever the machine's load.

// pipeGateway serves be in the bubble and returns a kgo dialer whose connections it serves.
func pipeGateway(t *testing.T, be gateway.Backend) func(context.Context, string, string) (net.Conn, error) {
	srv, err := gateway.NewServer(gateway.Config{Backend: be, AdvertisedHost: "gw", AdvertisedPort: 9092,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return func(context.Context, string, string) (net.Conn, error) {
		c, s := net.Pipe()
		srv.ServeConn(s)
		return c, nil
	}
}

// rateMeter keeps (time, bytes) samples and answers the rate over a window.
type rateMeter struct {
	mu      sync.Mutex
	at      []time.Time
	n       []int
	started time.Time
}

func (m *rateMeter) add(n int) {
	m.mu.Lock()
	m.at, m.n = append(m.at, time.Now()), append(m.n, n)
	m.mu.Unlock()
}

// rate is the bytes per second of the samples in [from, to) after started.
func (m *rateMeter) rate(from, to time.Duration) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	sum := 0
	for i, at := range m.at {
		if d := at.Sub(m.started); d >= from && d < to {
			sum += m.n[i]
		}
	}
	return float64(sum) / (to - from).Seconds()
}

// check fails the test unless the rate after the warm-up, over the window, is within 10% of
// quotaRate; who and quota (its key) name the client in the messages.
func (m *rateMeter) check(t *testing.T, who, quota string) {
	t.Helper()
	got := m.rate(quotaWarmup, quotaWarmup+quotaWindow)
	if got < 0.9*quotaRate || got > 1.1*quotaRate {
		t.Fatalf("%s achieved %.0f B/s over %v with %s %d: not within 10%%", who, got, quotaWindow, quota, quotaRate)
	}
	t.Logf("%s: %.0f B/s against a quota of %d (%.1f%%)", who, got, quotaRate, 100*got/quotaRate)
}

const (
	quotaRate   = 200_000 // bytes per second
	quotaWarmup = 5 * time.Second
	quotaWindow = 60 * time.Second
)

func clientQuota(client, key string, rate string) []brokerop.QuotaEntry {
	return []brokerop.QuotaEntry{{
		Entity: []brokerop.QuotaEntityPart{{Type: "client-id", Name: strp(client)}},
		Values: []brokerop.QuotaValue{{Key: key, Value: rate}},
	}}
}

// A kgo producer whose client id has producer_byte_rate produces as fast as it can (its buffer
// always full) for a minute: the produce requests it gets through after a warm-up of five
// seconds (bytes written on the wire, what the gateway charges) come within 10% of the quota.
func TestProduceQuotaRateKgo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &quotaBackend{MemBackend: gatewaytest.NewMem(1), entries: clientQuota("greedy", "producer_byte_rate", "200000")}
		dial := pipeGateway(t, be)
		var m rateMeter
		cl, err := kgo.NewClient(kgo.SeedBrokers("gw:9092"), kgo.Dialer(dial), kgo.ClientID("greedy"),
			kgo.DefaultProduceTopic("q"), kgo.ProducerBatchMaxBytes(16<<10), kgo.MaxBufferedRecords(256),
			kgo.ProducerBatchCompression(kgo.NoCompression()),
			kgo.WithHooks(produceWrites{&m}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx := t.Context()
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "q"); err != nil {
			t.Fatal(err)
		}
		value := []byte(strings.Repeat("x", 1000))
		m.started = time.Now()
		stop := m.started.Add(quotaWarmup + quotaWindow + time.Second)
		// At most 256 records in flight: the loop blocks (and the bubble's clock moves) on
		// the semaphore even if Produce stopped blocking; it ends at the first error.
		sem := make(chan struct{}, 256)
		var failed atomic.Bool
		for time.Now().Before(stop) && !failed.Load() {
			sem <- struct{}{}
			cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil && !errors.Is(err, kgo.ErrClientClosed) { // the buffer left at the end
					t.Errorf("produce: %v", err)
					failed.Store(true)
				}
				<-sem
			})
		}
		m.check(t, "producer", "producer_byte_rate")
		cl.Close()
	})
}

// produceWrites counts the bytes of produce requests written to the gateway.
type produceWrites struct{ m *rateMeter }

func (h produceWrites) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key == 0 && err == nil {
		h.m.add(n)
	}
}

// A kgo consumer whose client id has consumer_byte_rate reads a topic that holds more than it
// may read in the test: the record bytes it is sent after a warm-up of five seconds come
// within 10% of the quota.
func TestFetchQuotaRateKgo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		be := &quotaBackend{MemBackend: gatewaytest.NewMem(1), entries: clientQuota("reader", "consumer_byte_rate", "200000")}
		dial := pipeGateway(t, be)
		ctx := t.Context()
		// Fill: a producer without a quota writes more than the window may read.
		pr, err := kgo.NewClient(kgo.SeedBrokers("gw:9092"), kgo.Dialer(dial), kgo.ClientID("filler"),
			kgo.DefaultProduceTopic("f"), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kadm.NewClient(pr).CreateTopic(ctx, 1, 1, nil, "f"); err != nil {
			t.Fatal(err)
		}
		value := []byte(strings.Repeat("y", 1000))
		total := int((quotaWarmup+quotaWindow).Seconds()*quotaRate*1.5) / len(value)
		for range total {
			pr.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("fill: %v", err)
				}
			})
		}
		if err := pr.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		pr.Close()

		var m rateMeter
		cl, err := kgo.NewClient(kgo.SeedBrokers("gw:9092"), kgo.Dialer(dial), kgo.ClientID("reader"),
			kgo.ConsumeTopics("f"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxBytes(32<<10), kgo.FetchMaxPartitionBytes(32<<10), kgo.WithHooks(fetchReads{&m}))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		m.started = time.Now()
		stop := m.started.Add(quotaWarmup + quotaWindow + time.Second)
		read := 0
		pollCtx, cancel := context.WithDeadline(ctx, stop) // PollFetches waits for data that may never come
		defer cancel()
		for time.Now().Before(stop) {
			fs := cl.PollFetches(pollCtx)
			if pollCtx.Err() != nil {
				break
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
			read += fs.NumRecords()
		}
		if read >= total {
			t.Fatalf("read all %d records: the topic did not outlast the window", read)
		}
		m.check(t, "consumer", "consumer_byte_rate")
		cl.Close()
	})
}

// fetchReads counts the record-batch bytes of fetch answers (what the gateway charges).
type fetchReads struct{ m *rateMeter }

func (h fetchReads) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, fm kgo.FetchBatchMetrics) {
	h.m.add(fm.CompressedBytes) // the records without their 61-byte batch header: under 1% of a 16 KiB batch
}
