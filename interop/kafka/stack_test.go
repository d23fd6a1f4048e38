package kafka_test

// Shared harness for the real-client tests: the gateway with the real broker in process,
// restartable on the same data directory.

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// rcStack is one gateway + broker on a data directory.
type rcStack struct {
	t    testing.TB
	dir  string
	b    *broker.Broker
	g    *serve.Gateway
	addr string
}

// rcStart opens the broker on dir and serves the gateway on addr ("" = any loopback port).
func rcStart(t testing.TB, dir, addr string) *rcStack {
	t.Helper()
	b, err := broker.Open(broker.Config{Dir: dir, DefaultPartitions: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for i := 0; ; i++ { // the previous incarnation's port may take a moment to free
		if ln, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	g := serve.Start(t, gateway.Config{Backend: b.Service(nil), AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}, ln)
	s := &rcStack{t: t, dir: dir, b: b, g: g, addr: g.Addr}
	t.Cleanup(s.stop)
	return s
}

// stop shuts the gateway and the broker down (idempotent).
func (s *rcStack) stop() {
	if s.g == nil {
		return
	}
	s.g.Stop()
	if err := s.b.Close(); err != nil {
		s.t.Errorf("broker close: %v", err)
	}
	s.g = nil
}

// restart stops the stack and starts a new one on the same directory and address.
func (s *rcStack) restart() *rcStack {
	s.stop()
	return rcStart(s.t, s.dir, s.addr)
}

func (s *rcStack) kgo(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (s *rcStack) createTopic(t testing.TB, name string, partitions int32) {
	t.Helper()
	adm := kadm.NewClient(s.kgo(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := adm.CreateTopic(ctx, partitions, 1, nil, name)
	if err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", name, err, r.Err)
	}
}

// endOffsets returns each partition's high watermark.
func (s *rcStack) endOffsets(t testing.TB, topic string) map[int32]int64 {
	return kafkaclients.EndOffsets(t, s.addr, topic)
}
