package main

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/mesh/kafkapipe"
	"github.com/meshkafka/meshkafka/mesh/ticket"
)

// TestKafkaOverMesh: a gateway run with -kafka-over-mesh (here from MESHKAFKA_* variables)
// prints a ticket; a kgo client reaches it over the mesh with kafkapipe.Dialer (its host names
// are never resolved), and another through a local kafkapipe.Proxy port (what `mesh
// kafka-proxy` runs), and each reads what the other wrote.
func TestKafkaOverMesh(t *testing.T) {
	tk := runGateway(t, map[string]string{"MESHKAFKA_KAFKA_OVER_MESH": "true", "MESHKAFKA_MESH_BIND": "127.0.0.1:0"},
		"kafka over mesh: from anywhere, run: mesh kafka-proxy ")["kafka over mesh: from anywhere, run: mesh kafka-proxy "]
	ctx := context.Background()
	gw, err := ticket.Parse(tk)
	if err != nil {
		t.Fatalf("ticket %q: %v", tk, err)
	}

	ep := magicep.Loopback(t)
	direct, err := kgo.NewClient(kgo.SeedBrokers("gateway.mesh.invalid:9092"), kgo.Dialer(kafkapipe.Dialer(ep, gw)),
		kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("anywhere"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	if err := direct.ProduceSync(pctx, &kgo.Record{Value: []byte("via the dialer")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxyCtx, stopProxy := context.WithCancel(ctx)
	proxied := make(chan error, 1)
	go func() { proxied <- kafkapipe.Proxy(proxyCtx, ep, gw, ln, ln.Addr().String()) }()
	defer func() {
		stopProxy()
		if err := <-proxied; err != nil {
			t.Errorf("proxy: %v", err)
		}
	}()
	local, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.ConsumeTopics("anywhere"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic("anywhere"))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	md, err := kadm.NewClient(local).BrokerMetadata(pctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range md.Brokers {
		if net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))) != ln.Addr().String() {
			t.Fatalf("Metadata through the proxy names broker %s:%d, want the proxy's %s", b.Host, b.Port, ln.Addr())
		}
	}
	if err := local.ProduceSync(pctx, &kgo.Record{Value: []byte("via the proxy")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		fs := local.PollFetches(pctx)
		if err := pctx.Err(); err != nil {
			t.Fatalf("read %q, then %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if got[0] != "via the dialer" || got[1] != "via the proxy" {
		t.Fatalf("read %q", got)
	}
}
