package meshkafka_test

// Gateway restart: the gateway in mesh mode keeps no state of its own (its data directory
// holds only its identity), so after it is killed and restarted the topics (same topic id and
// partition count), topic configs and committed consumer-group offsets are all still there,
// and a group consumer resumes exactly where it committed.

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// groupConsume consumes n records as member of group from the committed offsets (or the
// start), commits them, and leaves the group.
func groupConsume(t *testing.T, addr, group, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kafkaclients.KgoClient(t, addr, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s: consumed %d of %d records", group, len(got), n)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("group fetch %s/%d: %v", tp, p, err) })
		got = append(got, fs.Records()...)
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// Nothing beyond n arrives within a short poll.
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	extra := cl.PollFetches(pctx).Records()
	pcancel()
	if len(extra) > 0 {
		t.Fatalf("group %s: %d records beyond the %d expected, first %s/%d@%d", group, len(extra), n, extra[0].Topic, extra[0].Partition, extra[0].Offset)
	}
	cl.Close()
	return got
}

type gwSnapshot struct {
	id        kadm.TopicID
	parts     int
	retention string
	maxMsg    string
	offsets   map[int32]int64
	ends      map[int32]int64
}

func snapshot(t *testing.T, addr, topic, group string) gwSnapshot {
	t.Helper()
	adm := kadm.NewClient(kafkaclients.KgoClient(t, addr))
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var s gwSnapshot
	tds, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	td, ok := tds[topic]
	if !ok || td.Err != nil {
		t.Fatalf("topic %s not listed (%v); topics %v", topic, td.Err, tds.Names())
	}
	s.id, s.parts = td.ID, len(td.Partitions)
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		switch c.Key {
		case "retention.ms":
			s.retention = c.MaybeValue()
		case "max.message.bytes":
			s.maxMsg = c.MaybeValue()
		}
	}
	ofs, err := adm.FetchOffsets(ctx, group)
	if err != nil || ofs.Error() != nil {
		t.Fatalf("fetch offsets %s: %v %v", group, err, ofs.Error())
	}
	s.offsets = map[int32]int64{}
	ofs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			s.offsets[o.Partition] = o.At
		}
	})
	s.ends = endOffsets(t, addr, topic)
	return s
}

func TestMeshGatewayRestart(t *testing.T) {
	_, g := meshPair(t)
	const topic, group, parts = "kept", "keepers", 3
	createTopic(t, g.addr, topic, parts, map[string]*string{"max.message.bytes": kadm.StringPtr("200000")})
	{
		adm := kadm.NewClient(kafkaclients.KgoClient(t, g.addr))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("7200000")}}, topic)
		cancel()
		if err != nil || r[0].Err != nil {
			t.Fatalf("alter retention.ms: %v %v", err, r)
		}
		adm.Close()
	}
	want := produceKgo(t, g.addr, topic, "first", 30)
	if got := groupConsume(t, g.addr, group, topic, 30); len(got) != 30 {
		t.Fatalf("group consumed %d records", len(got))
	}
	before := snapshot(t, g.addr, topic, group)
	if before.retention != "7200000" || before.maxMsg != "200000" || before.parts != parts {
		t.Fatalf("before restart: %+v", before)
	}
	for p := int32(0); p < parts; p++ {
		if before.offsets[p] != 10 || before.ends[p] != 10 {
			t.Fatalf("before restart: partition %d committed %d, end %d, want 10 and 10", p, before.offsets[p], before.ends[p])
		}
	}

	// The gateway keeps nothing but its identity.
	ents, err := os.ReadDir(g.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "identity.key" {
			t.Errorf("gateway data dir holds %s: state on the gateway", e.Name())
		}
	}

	for i, how := range []string{"SIGKILL", "SIGTERM"} {
		if how == "SIGKILL" {
			g.p.Kill()
		} else if err := g.p.Stop(); err != nil {
			t.Fatalf("gateway SIGTERM: %v\n%s", err, g.p.Logs())
		}
		g.start(t) // same data dir, same Kafka port, same brokers
		after := snapshot(t, g.addr, topic, group)
		if after.id != before.id || after.parts != before.parts || after.retention != before.retention || after.maxMsg != before.maxMsg {
			t.Fatalf("after gateway %s: topic %+v, before %+v", how, after, before)
		}
		for p := int32(0); p < parts; p++ {
			if after.offsets[p] != before.offsets[p]+int64(3*i) || after.ends[p] != before.ends[p]+int64(3*i) {
				t.Fatalf("after gateway %s: partition %d committed %d end %d (before: %d %d)", how, p, after.offsets[p], after.ends[p], before.offsets[p], before.ends[p])
			}
		}
		// The records are all there, and the group resumes from its committed offsets.
		if i == 0 {
			kafkaclients.Verify(t, "after gateway restart", want, kafkaclients.ConsumeKgo(t, g.addr, topic), true)
		}
		more := produceKgo(t, g.addr, topic, how, 9)
		start := time.Now()
		got := groupConsume(t, g.addr, group, topic, 9)
		keys := map[string]bool{}
		for _, m := range more {
			keys[string(m.Key)] = true
		}
		for _, r := range got {
			if !keys[string(r.Key)] {
				t.Fatalf("after gateway %s: group resumed at %s/%d@%d (key %q), not at its committed offset", how, r.Topic, r.Partition, r.Offset, r.Key)
			}
		}
		t.Logf("after gateway %s: topic, configs and offsets unchanged; the group resumed at its commits (%v)", how, time.Since(start).Round(time.Millisecond))
	}
}
