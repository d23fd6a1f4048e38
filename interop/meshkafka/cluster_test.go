package meshkafka_test

// Three brokers and two gateways: each broker trusts both gateways, both gateways get all
// three brokers as seeds. Records produced through one gateway are consumed in full through
// the other, and the topic's partitions are stored on more than one broker.

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// produceKgo produces n records with keys "<prefix>-<i>" round robin over the partitions, acks=all,
// and returns the acknowledged records.
func produceKgo(t *testing.T, addr, topic, prefix string, n int) []kafkaclients.Msg {
	t.Helper()
	cl := kafkaclients.KgoClient(t, addr, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(0))
	base := time.Now().Add(-time.Minute).UnixMilli()
	want := make([]kafkaclients.Msg, n)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		want[i] = kafkaclients.Msg{Key: fmt.Appendf(nil, "%s-%05d", prefix, i), Value: fmt.Appendf(nil, "value %d via %s", i, addr),
			Headers: [][2]string{{"i", fmt.Sprint(i)}}, TS: base + int64(i)}
		recs[i] = &kgo.Record{Topic: topic, Key: want[i].Key, Value: want[i].Value, Timestamp: time.UnixMilli(want[i].TS),
			Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce via %s: %v", addr, err)
	}
	for i, r := range recs {
		want[i].Partition, want[i].Offset = r.Partition, r.Offset
	}
	cl.Close()
	return want
}

func TestMeshThreeBrokersTwoGateways(t *testing.T) {
	ga := newGatewayIdentity(t, "gateway-a")
	gb := newGatewayIdentity(t, "gateway-b")
	brokers := newQuorumBrokers(t, 3, ga.id, gb.id)
	ga.startMesh(t, brokers...)
	gb.startMesh(t, brokers[2], brokers[0], brokers[1]) // seed order does not matter

	const topic, parts, n = "spread", 6, 600
	createTopic(t, ga.addr, topic, parts, nil)
	want := produceKgo(t, ga.addr, topic, "a", n)

	// Gateway B sees the topic with all its partitions and the same end offsets.
	endsA, endsB := endOffsets(t, ga.addr, topic), endOffsets(t, gb.addr, topic)
	if len(endsB) != parts {
		t.Fatalf("gateway B lists %d partitions of %s, want %d (ends %v)", len(endsB), topic, parts, endsB)
	}
	for p, o := range endsA {
		if endsB[p] != o || o != n/parts {
			t.Fatalf("partition %d: end offset %d via A, %d via B, want %d", p, o, endsB[p], n/parts)
		}
	}
	got := kafkaclients.ConsumeKgo(t, gb.addr, topic)
	kafkaclients.Verify(t, "consumed via gateway B", want, got, true)
	for _, g := range got { // at the offsets gateway A acknowledged
		for _, w := range want {
			if string(w.Key) == string(g.Key) && (w.Partition != g.Partition || w.Offset != g.Offset) {
				t.Fatalf("%s: acknowledged at %d/%d via A, read at %d/%d via B", g.Key, w.Partition, w.Offset, g.Partition, g.Offset)
			}
		}
	}

	// And the other way round, on a topic created through gateway B.
	createTopic(t, gb.addr, "back", parts, nil)
	wantBack := produceKgo(t, gb.addr, "back", "b", 120)
	kafkaclients.Verify(t, "consumed via gateway A", wantBack, kafkaclients.ConsumeKgo(t, ga.addr, "back"), true)

	// Where the data lives: each partition's bytes are under exactly one broker's data dir,
	// and more than one broker holds data. A partition's files are made by the wal's first
	// checkpoint or when the broker closes (until then its records are durable in the commit
	// journal), so the brokers are stopped first.
	for _, b := range brokers {
		if err := b.p.Stop(); err != nil {
			t.Errorf("%s SIGTERM: %v\n%s", b.name, err, b.p.Logs())
		}
	}
	holders := map[int32][]string{}
	perBroker := map[string][]int32{}
	for _, b := range brokers {
		for p, size := range partitionBytes(b.dir, topic) {
			if size > 0 {
				holders[p] = append(holders[p], b.name)
				perBroker[b.name] = append(perBroker[b.name], p)
			}
		}
	}
	for _, ps := range perBroker {
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	}
	t.Logf("partitions of %s with data, by broker: %v", topic, perBroker)
	for p := int32(0); p < parts; p++ {
		if len(holders[p]) != 1 {
			t.Errorf("partition %d has data on %d brokers %v, want exactly 1", p, len(holders[p]), holders[p])
		}
	}
	if len(perBroker) < 2 {
		t.Errorf("all partitions of %s are stored on %d broker(s) %v: not spread across the 3 brokers", topic, len(perBroker), perBroker)
	}
}
