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
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// rcStack is one gateway + broker on a data directory, with a group coordinator of its own
// when grpStart started it.
type rcStack struct {
	t    testing.TB
	dir  string
	b    *broker.Broker
	c    *group.Coordinator // nil: the broker's service answers the group ops (rcStart)
	g    *serve.Gateway
	addr string
}

// rcStart opens the broker on dir and serves the gateway on addr ("" = any loopback port).
func rcStart(t testing.TB, dir, addr string) *rcStack {
	t.Helper()
	return startStack(t, dir, addr, false)
}

// startStack is rcStart, or with groups grpStart: a group coordinator in dir/groups serves the
// group ops.
func startStack(t testing.TB, dir, addr string, groups bool) *rcStack {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	b, err := broker.Open(broker.Config{Dir: dir, DefaultPartitions: 1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s := &rcStack{t: t, dir: dir, b: b}
	backend := b.Service(nil)
	if groups {
		if s.c, err = group.Open(group.Config{Dir: dir + "/groups", Logger: log,
			Machine: group.MachineConfig{InitialRebalanceDelay: 500 * time.Millisecond}}); err != nil {
			b.Close()
			t.Fatal(err)
		}
		backend = grpBackend{Broker: b, Coordinator: s.c}
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
		if s.c != nil {
			s.c.Close()
		}
		b.Close()
		t.Fatal(err)
	}
	s.g = serve.Start(t, gateway.Config{Backend: backend, AdvertisedHost: "127.0.0.1", Logger: log}, ln)
	s.addr = s.g.Addr
	t.Cleanup(s.stop)
	return s
}

// stop shuts the gateway, the group coordinator and the broker down (idempotent).
func (s *rcStack) stop() {
	if s.g == nil {
		return
	}
	s.g.Stop()
	if s.c != nil {
		s.c.Close()
	}
	if err := s.b.Close(); err != nil {
		s.t.Errorf("broker close: %v", err)
	}
	s.g = nil
}

// restart stops the stack and starts a new one on the same directory and address.
func (s *rcStack) restart() *rcStack {
	s.stop()
	return startStack(s.t, s.dir, s.addr, s.c != nil)
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
