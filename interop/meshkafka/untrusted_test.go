package meshkafka_test

// A gateway whose NodeId the broker was not told to trust gets Kafka errors, never data, and
// the broker logs the refusal naming it; a trusted gateway on the same broker keeps working
// and nothing the untrusted one sent is stored.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

func TestMeshUntrustedGateway(t *testing.T) {
	trusted := newGatewayIdentity(t, "gateway-trusted")
	rogue := newGatewayIdentity(t, "gateway-untrusted")
	b := newBroker(t, "broker", trusted.id)
	trusted.startMesh(t, b)
	rogue.startMesh(t, b)

	const topic = "secret"
	createTopic(t, trusted.addr, topic, 1, nil)
	want := produceKgo(t, trusted.addr, topic, "s", 10)

	// Metadata through the untrusted gateway: the named topic answers with an error, and a
	// listing of all topics shows nothing.
	adm := kadm.NewClient(kafkaclients.KgoClient(t, rogue.addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	md, err := adm.Metadata(ctx, topic)
	cancel()
	if err == nil {
		td, ok := md.Topics[topic]
		if !ok || td.Err == nil || len(td.Partitions) > 0 {
			t.Fatalf("untrusted gateway: metadata for %s answered %+v without an error", topic, td)
		}
		t.Logf("untrusted gateway: metadata %s: %v", topic, td.Err)
	} else {
		t.Logf("untrusted gateway: metadata %s: %v", topic, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	tds, err := adm.ListTopics(ctx)
	cancel()
	if err == nil && tds.Has(topic) {
		t.Fatalf("untrusted gateway lists %s", topic)
	}

	// Produce through the untrusted gateway fails.
	pcl := kafkaclients.KgoClient(t, rogue.addr, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.RecordRetries(3))
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	perr := pcl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("from the untrusted gateway")}).FirstErr()
	cancel()
	if perr == nil {
		t.Fatal("produce through the untrusted gateway succeeded")
	}
	t.Logf("untrusted gateway: produce: %v", perr)

	// Consume through the untrusted gateway gets no records.
	ccl := kafkaclients.KgoClient(t, rogue.addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	for ctx.Err() == nil {
		if recs := ccl.PollFetches(ctx).Records(); len(recs) > 0 {
			cancel()
			t.Fatalf("untrusted gateway served %d records, first %q", len(recs), recs[0].Value)
		}
	}
	cancel()
	ccl.Close()

	// The broker says why.
	logs := b.p.Stderr.String()
	if !strings.Contains(logs, "refusing untrusted node") || !strings.Contains(logs, "node="+rogue.id) {
		t.Fatalf("broker did not log a refusal of %s\n%s", rogue.id, b.p.Logs())
	}
	if strings.Contains(logs, "node="+trusted.id) {
		t.Fatalf("broker refused the trusted gateway %s\n%s", trusted.id, b.p.Logs())
	}
	// Nothing the untrusted gateway sent was stored; the trusted one still reads everything.
	if ends := endOffsets(t, trusted.addr, topic); ends[0] != int64(len(want)) {
		t.Fatalf("end offset %d after the untrusted produce, want %d", ends[0], len(want))
	}
	kafkaclients.Verify(t, "trusted gateway after the refusals", want, kafkaclients.ConsumeKgo(t, trusted.addr, topic), true)
}
