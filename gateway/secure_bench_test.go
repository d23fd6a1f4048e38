package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/wal"
)

// BenchmarkSecureListener: what SASL_SSL costs against PLAINTEXT (issue #17's target: ≥ 0.8×
// for 1 KiB records), same broker, same run. One broker on disk (broker.Open: the WAL and
// its fsyncs as cmd/gateway's embedded broker runs them) behind two gateway servers:
//
//	impl=ours       SASL_SSL listener (TLS 1.3 with the gateway's certificate, SCRAM-SHA-256)
//	impl=plaintext  PLAINTEXT listener
//
// produce-1KiB: b.N incompressible 1 KiB records, acks=all, idempotence off, up to 5 requests
// in flight, round robin over 3 partitions of a fresh topic; consume-1KiB: b.N records read
// from the start of a 100,000-record topic (as often as b.N needs), a new client for each
// pass, so every 100 MB also pay the client's connections (TLS handshake and SCRAM on each
// of its three; with 20,000 records these were ~10% of the SASL_SSL consume's CPU time). records/s, MB/s, and cpu-ns/record: the CPU time of the whole
// process (client and server) per record, which a loaded machine disturbs less than the
// wall clock. connect: one new client to its first answer (Ping: one connection, the TLS
// handshake and SCRAM, ApiVersions, Metadata), ns/op.
//
// A produce that has nothing acknowledged for 10 s writes a goroutine dump of the process
// (and, with $MESHKAFKA_STALL_KGOLOG set, the client's recent kgo debug log) to a file it
// names in the log (watchStall). If the broker stops (fail-stop after a failed journal write
// or fsync: a full disk), the produce fails at once with the reason; before, kgo retried the
// KAFKA_STORAGE_ERROR answers without end and the benchmark sat for 5 minutes with a full
// client buffer and an idle gateway, the "PLAINTEXT produce stall" seen while the machine's
// disk was full.
func BenchmarkSecureListener(b *testing.B) {
	const (
		size       = 1024
		partitions = 3
		consumeSet = 100_000
	)
	dir := b.TempDir()
	// A broker that stops (a failed journal write or fsync, e.g. the disk filled up: fail-stop,
	// broker/doc.go) answers every produce KAFKA_STORAGE_ERROR, which kgo retries without end;
	// stopped ends every produce with the reason instead of a silent hang until its context
	// runs out.
	br, gc, stopped := openStoppable(b, broker.Config{Dir: filepath.Join(dir, "data"), DefaultPartitions: partitions}, filepath.Join(dir, "groups"))
	sec, err := broker.OpenFileSecurity(wal.OSFS(), dir)
	if err != nil {
		b.Fatal(err)
	}
	creds, acls := sec.Credentials, sec.ACLs
	addScramUser(b, creds, "bench", "bench-pw")
	certs := gatewaytest.NewCerts(b, dir, "bench")
	tcfg, _, err := gateway.NewTLSConfig(gateway.TLSOptions{CertFile: certs.Cert, KeyFile: certs.Key})
	if err != nil {
		b.Fatal(err)
	}
	cfg := gateway.Config{Backend: txnBackend{Broker: br, Coordinator: gc, Security: broker.Security{Credentials: creds, ACLs: acls}},
		AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}
	plainAddr := serve.StartProtocol(b, cfg, gateway.Plaintext).Addr
	cfg.TLS = tcfg
	secureAddr := serve.StartProtocol(b, cfg, gateway.SASLSSL).Addr

	secureOpts := []kgo.Opt{kgo.DialTLSConfig(certs.ClientTLS()),
		kgo.SASL(scram.Auth{User: "bench", Pass: "bench-pw"}.AsSha256Mechanism())}
	targets := []struct {
		impl string
		addr string
		opts []kgo.Opt
	}{{"ours", secureAddr, secureOpts}, {"plaintext", plainAddr, nil}}

	value := make([]byte, size)
	rand.NewChaCha8([32]byte{7}).Read(value)
	var seq atomic.Int64
	newTopic := func(b *testing.B) string {
		topic := fmt.Sprintf("secure-bench-%d", seq.Add(1))
		adm := kadm.NewClient(kafkaclients.KgoClient(b, plainAddr))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
			b.Fatalf("create %s: %v", topic, err)
		}
		return topic
	}
	stallLog := newStallLog() // nil unless $MESHKAFKA_STALL_KGOLOG is set
	produce := func(b *testing.B, addr string, opts []kgo.Opt, topic string, n int) {
		cl := kafkaclients.KgoClient(b, addr, append([]kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
			kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MaxBufferedRecords(1 << 14), kgo.MaxProduceRequestsInflightPerBroker(5),
			kgo.ProducerBatchCompression(kgo.NoCompression())}, append(opts, stallLog.opts()...)...)...)
		defer cl.Close()
		ctx, cancel := context.WithTimeout(stopped, 5*time.Minute)
		defer cancel()
		if err := produceAll(ctx, b, cl, topic, value, n, stallLog); err != nil {
			b.Fatalf("produce: %v", err)
		}
	}
	report := func(b *testing.B, d time.Duration, cpu int64) {
		b.ReportMetric(float64(b.N)/d.Seconds(), "records/s")
		b.ReportMetric(float64(b.N)*size/1e6/d.Seconds(), "MB/s")
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/record")
	}
	for _, tg := range targets {
		b.Run("produce-1KiB/impl="+tg.impl, func(b *testing.B) {
			topic := newTopic(b)
			produce(b, tg.addr, tg.opts, topic, partitions) // warm: connection, handshake, leaders
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			produce(b, tg.addr, tg.opts, topic, b.N)
			d, cpu := time.Since(start), processCPU()-cpu0
			b.StopTimer()
			report(b, d, cpu)
		})
	}
	consumeTopic := ""
	for _, tg := range targets {
		b.Run("consume-1KiB/impl="+tg.impl, func(b *testing.B) {
			if consumeTopic == "" {
				consumeTopic = newTopic(b)
				produce(b, plainAddr, nil, consumeTopic, consumeSet)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			for left := b.N; left > 0; {
				cl := kafkaclients.KgoClient(b, tg.addr, append([]kgo.Opt{kgo.ConsumeTopics(consumeTopic),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond)}, tg.opts...)...)
				for pass := min(left, consumeSet); pass > 0; {
					fs := cl.PollFetches(ctx)
					if ctx.Err() != nil {
						b.Fatalf("consumed %d of %d records", b.N-left, b.N)
					}
					fs.EachError(func(tp string, p int32, err error) { b.Fatalf("fetch %s/%d: %v", tp, p, err) })
					n := fs.NumRecords()
					pass -= n
					left -= n
				}
				cl.Close()
			}
			d, cpu := time.Since(start), processCPU()-cpu0
			b.StopTimer()
			report(b, d, cpu)
		})
	}
	for _, tg := range targets {
		b.Run("connect/impl="+tg.impl, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			for b.Loop() {
				cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tg.addr)}, tg.opts...)...)
				if err != nil {
					b.Fatal(err)
				}
				if err := cl.Ping(ctx); err != nil {
					b.Fatal(err)
				}
				cl.Close()
			}
		})
	}
}
