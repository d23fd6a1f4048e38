package metadata_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
)

// A broker's advertised Kafka listener is recorded by its registration, replaced or cleared
// by a later one, kept by snapshots, and refused when too long.
func TestBrokerKafkaListener(t *testing.T) {
	s := cluster(t, 3)
	kafka := func(s *metadata.State, id uint64) string {
		b, ok := s.Broker(id)
		if !ok {
			t.Fatalf("broker %d missing", id)
		}
		return b.Kafka
	}
	reg := func(id uint64, addr string) *metadata.RegisterBroker {
		return &metadata.RegisterBroker{RaftID: id, NodeID: node(byte(id)), Addr: []byte(fmt.Sprintf("addr-%d", id)), Rack: "r", Kafka: addr}
	}
	mustApply(t, s, reg(1, "b1.example:9093"), reg(2, "[::1]:9093"))
	if kafka(s, 1) != "b1.example:9093" || kafka(s, 2) != "[::1]:9093" || kafka(s, 3) != "" {
		t.Fatalf("listeners %q %q %q", kafka(s, 1), kafka(s, 2), kafka(s, 3))
	}
	n := metadata.New()
	if err := n.Restore(snap(t, s)); err != nil {
		t.Fatal(err)
	}
	if kafka(n, 1) != "b1.example:9093" || kafka(n, 2) != "[::1]:9093" || kafka(n, 3) != "" {
		t.Fatalf("after restore: %q %q %q", kafka(n, 1), kafka(n, 2), kafka(n, 3))
	}
	mustApply(t, s, reg(1, ""))
	if kafka(s, 1) != "" {
		t.Fatalf("cleared listener still %q", kafka(s, 1))
	}
	r := s.Apply(s.LastApplied()+1, metadata.EncodeCommand(reg(2, strings.Repeat("h", metadata.MaxKafkaAddr)+":1")))
	if err, ok := r.(error); ok && !errors.Is(err, metadata.ErrMalformed) || !ok && r.(*metadata.RegisterBrokerResult).Code != metadata.CodeInvalidRequest {
		t.Fatalf("a too long listener: %+v", r)
	}
	if res := s.Validate(reg(2, strings.Repeat("h", metadata.MaxKafkaAddr)+":1")); res.(*metadata.RegisterBrokerResult).Code != metadata.CodeInvalidRequest {
		t.Fatalf("a too long listener validated: %+v", res)
	}
	if kafka(s, 2) != "[::1]:9093" {
		t.Fatalf("refused registration changed the listener to %q", kafka(s, 2))
	}
}
