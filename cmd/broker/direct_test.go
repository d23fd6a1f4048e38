package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/gateway/direct"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/internal/porttest"
)

// directBroker is one broker process of TestDirectDataPath, run in-process.
type directBroker struct {
	id, bind, kafka string
	stop            func() error
}

// backends collects the brokers' Kafka listener backends by advertised address.
type backends struct {
	mu sync.Mutex
	m  map[string]*direct.Backend
}

func (b *backends) stats() map[string]direct.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]direct.Stats{}
	for a, be := range b.m {
		out[a] = be.Stats()
	}
	return out
}

// Three brokers with their own Kafka listeners (-kafka-listen) and no gateway: a kgo client
// bootstrapped at one broker sees every broker at its own listener and each partition's
// leader as the broker leading it; it produces acks=all to a 6-partition RF=3 topic and
// consumes everything back, and the brokers' listener backends show that the produces and
// fetches were served in process by the leaders, not routed over the mesh. Then the leader
// of partition 0 stops: the client produces on (its metadata refresh finds the new leaders)
// and a fresh consumer reads every acknowledged record exactly once.
func TestDirectDataPath(t *testing.T) {
	if testing.Short() {
		t.Skip("three brokers")
	}
	got := &backends{m: map[string]*direct.Backend{}}
	kafkaBackendHook = func(a string, be *direct.Backend) {
		got.mu.Lock()
		got.m[a] = be
		got.mu.Unlock()
	}
	t.Cleanup(func() { kafkaBackendHook = nil })
	noenv := func(string) string { return "" }
	var bs []*directBroker
	var dirs, seeds []string
	for range 3 {
		dir := t.TempDir()
		var out bytes.Buffer
		if err := run(context.Background(), []string{"-data", dir, "-print-node-id"}, noenv, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		b := &directBroker{id: strings.TrimSpace(out.String()), bind: porttest.Addr(t),
			kafka: porttest.Addr(t)}
		bs, dirs, seeds = append(bs, b), append(dirs, dir), append(seeds, b.id+"@"+b.bind)
	}
	for i, b := range bs {
		b.stop = startDirect(dirs[i], b, strings.Join(seeds, ","))
		t.Cleanup(func() {
			if err := b.stop(); err != nil {
				t.Errorf("broker %s: %v", b.kafka, err)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	kafkaclients.WaitFor(t, ctx, "three Kafka listeners", func() bool { return len(got.stats()) == 3 })

	const topic, parts = "direct", 6
	adm := kafkaclients.KgoClient(t, bs[0].kafka)
	ac := kadm.NewClient(adm)
	kafkaclients.WaitFor(t, ctx, "the topic created", func() bool {
		r, err := ac.CreateTopic(ctx, parts, 3, nil, topic)
		return err == nil && r.Err == nil || r.Err == kerr.TopicAlreadyExists
	})
	// Metadata (asked of broker 0) lists the three brokers at their own listeners and every
	// partition led by one of them, with three replicas.
	byID := map[int32]string{}
	kafkaclients.WaitFor(t, ctx, "metadata with a leader per partition", func() bool {
		md, err := ac.Metadata(ctx, topic)
		if err != nil || len(md.Brokers) != 3 {
			return false
		}
		for _, b := range md.Brokers {
			byID[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		}
		td := md.Topics[topic]
		if td.Err != nil || len(td.Partitions) != parts {
			return false
		}
		for _, p := range td.Partitions {
			if p.Err != nil || len(p.Replicas) != 3 || byID[p.Leader] == "" {
				return false
			}
		}
		return true
	})
	for _, b := range bs {
		found := false
		for _, a := range byID {
			found = found || a == b.kafka
		}
		if !found {
			t.Fatalf("broker listener %s not in Metadata's brokers %v", b.kafka, byID)
		}
	}

	prod := kafkaclients.KgoClient(t, bs[0].kafka, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic(topic))
	acked := map[string]int32{} // value → partition
	produce := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			v := fmt.Sprintf("r%05d", i)
			r := &kgo.Record{Value: []byte(v), Partition: int32(i % parts)}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			acked[v] = r.Partition
		}
	}
	produce(0, 60) // warm-up: the client has learned every leader
	before := got.stats()
	produce(60, 300)
	after := got.stats()
	var local, routed uint64
	servers := 0
	for a, s := range after {
		l := s.LocalProduces - before[a].LocalProduces
		local += l
		routed += s.RoutedProduces - before[a].RoutedProduces
		if l > 0 {
			servers++
		}
	}
	t.Logf("produces after warm-up: %d served in process by %d leader brokers, %d routed over the mesh", local, servers, routed)
	if servers < 2 || local == 0 || routed*4 > local {
		t.Fatalf("produces not sent to the leaders directly: per broker %+v (before %+v)", after, before)
	}

	consume := func(want map[string]int32) {
		t.Helper()
		cons := kafkaclients.KgoClient(t, bs[0].kafka, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer cons.Close()
		seen := map[string]bool{}
		last := map[int32]int64{}
		for len(seen) < len(want) {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d: %v", len(seen), len(want), ctx.Err())
			}
			fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch partition %d: %v", p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				v := string(r.Value)
				if seen[v] {
					t.Fatalf("record %s read twice", v)
				}
				if p, ok := want[v]; !ok || p != r.Partition {
					t.Fatalf("record %s in partition %d, acknowledged in %d (%v)", v, r.Partition, p, ok)
				}
				if o, ok := last[r.Partition]; ok && r.Offset <= o {
					t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, o)
				}
				last[r.Partition] = r.Offset
				seen[v] = true
			})
		}
	}
	before = got.stats()
	consume(acked)
	after = got.stats()
	servers = 0
	for a, s := range after {
		if s.LocalFetches > before[a].LocalFetches {
			servers++
		}
	}
	if servers < 2 {
		t.Fatalf("fetches not served by the leaders: per broker %+v (before %+v)", after, before)
	}

	// A request mixing partitions led by several brokers, sent to one broker, is answered
	// for every partition: the broker routes what it does not lead over the mesh.
	id0 := int32(-1)
	for id, a := range byID {
		if a == bs[0].kafka {
			id0 = id
		}
	}
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for p := range int32(parts) {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = p, -1, -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	before = got.stats()
	resp, err := adm.Broker(int(id0)).Request(ctx, lo)
	if err != nil {
		t.Fatalf("list offsets at broker %d: %v", id0, err)
	}
	ends := map[int32]int64{}
	for _, rt := range resp.(*kmsg.ListOffsetsResponse).Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("list offsets of partition %d at broker %d: %v", rp.Partition, id0, kerr.ErrorForCode(rp.ErrorCode))
			}
			ends[rp.Partition] = rp.Offset
		}
	}
	for _, p := range acked {
		if ends[p] <= 0 {
			t.Fatalf("partition %d end offset %d with records acknowledged", p, ends[p])
		}
	}
	if a := got.stats()[bs[0].kafka]; a.RoutedListOffsets <= before[bs[0].kafka].RoutedListOffsets {
		t.Fatalf("a mixed ListOffsets was not routed: %+v (before %+v)", a, before[bs[0].kafka])
	}

	// The leader of partition 0 stops (not the broker the clients bootstrapped from).
	md, err := ac.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	for _, p := range md.Topics[topic].Partitions {
		for i, b := range bs {
			if i > 0 && byID[p.Leader] == b.kafka && victim < 0 {
				victim = i
			}
		}
	}
	if victim < 0 {
		t.Fatalf("every partition led by the bootstrap broker: %+v", md.Topics[topic].Partitions)
	}
	t.Logf("stopping broker %s", bs[victim].kafka)
	if err := bs[victim].stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	bs[victim].stop = func() error { return nil }
	produce(360, 120)
	consume(acked)
}

// startDirect runs a broker with a Kafka listener in-process; the returned stop cancels it and
// returns its error.
func startDirect(dir string, b *directBroker, seeds string) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := []string{"-data", dir, "-bind", b.bind, "-quorum-seeds", seeds, "-kafka-listen", b.kafka}
	go func() { done <- run(ctx, args, func(string) string { return "" }, io.Discard, io.Discard) }()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
}

// A broker's Kafka listener is secured by the gateway's flags, the same way: with a
// SASL_PLAINTEXT listener, -sasl-users and -authorizer, a client without SASL is refused, the
// super user creates a topic and produces, and another user without ACLs may not produce.
func TestDirectListenerSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("a broker process in-process")
	}
	dir := t.TempDir()
	users := dir + "/users"
	if err := os.WriteFile(users, []byte("admin:admin-secret\nbob:bob-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &directBroker{bind: porttest.Addr(t), kafka: porttest.Addr(t)}
	metrics := porttest.Addr(t)
	env := map[string]string{"MESHKAFKA_KAFKA_LISTENERS": "SASL_PLAINTEXT://" + b.kafka, "MESHKAFKA_SASL_USERS": users, "MESHKAFKA_METRICS": metrics}
	runBroker(t, []string{"-data", dir, "-bind", b.bind, "-authorizer", "-super-users", "User:admin", "-sasl-mechanisms", "SCRAM-SHA-256"},
		func(k string) string { return env[k] })
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer wcancel()
	as := func(user, pw string) kgo.Opt {
		return kgo.SASL(scram.Auth{User: user, Pass: pw}.AsSha256Mechanism())
	}
	admin := kadm.NewClient(kafkaclients.KgoClient(t, b.kafka, as("admin", "admin-secret")))
	kafkaclients.WaitFor(t, wctx, "the super user creates a topic", func() bool {
		r, err := admin.CreateTopic(wctx, 2, 1, nil, "secured")
		return err == nil && (r.Err == nil || r.Err == kerr.TopicAlreadyExists)
	})
	adminProd := kafkaclients.KgoClient(t, b.kafka, as("admin", "admin-secret"), kgo.DefaultProduceTopic("secured"))
	if err := adminProd.ProduceSync(wctx, &kgo.Record{Value: []byte("ok")}).FirstErr(); err != nil {
		t.Fatalf("super user produce: %v", err)
	}
	// The listener's counters are on /metrics: the produce went to the partition's owner (a
	// single-owner partition: routed, through this broker's in-memory caller).
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	routed := ""
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "meshkafka_direct_produce_routed{") || strings.HasPrefix(l, "meshkafka_direct_produce_routed ") {
			routed = l[strings.LastIndexByte(l, ' ')+1:]
		}
	}
	if routed == "" || routed == "0" {
		t.Fatalf("meshkafka_direct_produce_routed = %q after a produce", routed)
	}
	bob := kafkaclients.KgoClient(t, b.kafka, as("bob", "bob-secret"), kgo.DefaultProduceTopic("secured"))
	if err := bob.ProduceSync(wctx, &kgo.Record{Value: []byte("no")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob without ACLs produced: %v", err)
	}
	wrong := kafkaclients.KgoClient(t, b.kafka, as("bob", "not-bobs"), kgo.RequestRetries(0))
	if err := wrong.Ping(wctx); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	plain := kafkaclients.KgoClient(t, b.kafka, kgo.RequestRetries(0))
	pctx, pcancel := context.WithTimeout(wctx, 10*time.Second)
	defer pcancel()
	if _, err := kadm.NewClient(plain).ListTopics(pctx); err == nil {
		t.Fatal("a client without SASL was served on a SASL_PLAINTEXT listener")
	}
}

// The Kafka listener flags: off by default, -kafka-listen or MESHKAFKA_KAFKA_LISTEN turn it on,
// -kafka-advertised must be host:port and needs a listener, -kafka-listen and
// -kafka-listeners exclude each other, TLS listeners need a certificate.
func TestParseKafkaListenerFlags(t *testing.T) {
	noenv := func(string) string { return "" }
	if o, err := parse(nil, noenv, io.Discard); err != nil || o.kafka.enabled() {
		t.Fatalf("default: %+v, %v", o.kafka, err)
	}
	o, err := parse(nil, func(k string) string { return map[string]string{"MESHKAFKA_KAFKA_LISTEN": ":9093"}[k] }, io.Discard)
	if err != nil || !o.kafka.enabled() || o.kafka.sec.Listeners[0].String() != "PLAINTEXT://:9093" {
		t.Fatalf("env: %+v, %v", o.kafka, err)
	}
	o, err = parse([]string{"-kafka-listeners", "SASL_PLAINTEXT://:9093,PLAINTEXT://:9094", "-kafka-advertised", "b1.example:9093"}, noenv, io.Discard)
	if err != nil || len(o.kafka.sec.Listeners) != 2 || o.kafka.advertised != "b1.example:9093" {
		t.Fatalf("listeners: %+v, %v", o.kafka, err)
	}
	for _, bad := range [][]string{
		{"-kafka-advertised", "b1.example:9093"},
		{"-kafka-listen", ":9093", "-kafka-advertised", "no-port"},
		{"-kafka-listen", ":9093", "-kafka-advertised", "h:0"},
		{"-kafka-listen", ":9093", "-kafka-listeners", "PLAINTEXT://:9094"},
		{"-kafka-listeners", "SSL://:9093"},
	} {
		if _, err := parse(bad, noenv, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
