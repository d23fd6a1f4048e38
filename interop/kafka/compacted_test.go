package kafka_test

// Compacted topics with real clients: kgo (idempotent, so the cleaner keeps an emptied batch
// for the producer) writes keyed records with tombstones to a cleanup.policy=compact topic,
// the broker's cleaner runs, and kgo and kcat (librdkafka) consume it from offset 0 across
// the compaction gaps to the end: every record read is the one produced at its offset, each
// key's latest record is there, and both clients read the same records.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
)

type compRec struct {
	key, value string
	null       bool
}

func TestCompactedTopicConsumedFromZero(t *testing.T) {
	b, err := broker.Open(broker.Config{Dir: t.TempDir(), DefaultPartitions: 1, CleanerBackoff: -1,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g := serve.Start(t, gateway.Config{Backend: b.Service(nil), AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}, nil)
	defer g.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "changelog"
	cl, err := kgo.NewClient(kgo.SeedBrokers(g.Addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cfg := map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "segment.bytes": kadm.StringPtr("4096"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"), "delete.retention.ms": kadm.StringPtr("3600000")}
	if r, err := adm.CreateTopic(ctx, 1, 1, cfg, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	dc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := dc.On(topic, nil); err != nil || !strings.Contains(fmt.Sprint(c.Configs), "compact") {
		t.Fatalf("describe: %v %v", err, c)
	}
	r := rand.New(rand.NewPCG(1, 2))
	produced := map[int64]compRec{}
	latest := map[string]int64{}
	for i := 0; i < 3000; i += 30 {
		var recs []*kgo.Record
		for j := range 30 {
			k := fmt.Sprintf("k%03d", r.IntN(100))
			rec := &kgo.Record{Key: []byte(k)}
			if r.IntN(8) != 0 {
				rec.Value = fmt.Appendf(nil, "v%d", i+j)
			}
			recs = append(recs, rec)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			produced[rec.Offset] = compRec{key: string(rec.Key), value: string(rec.Value), null: rec.Value == nil}
			latest[string(rec.Key)] = rec.Offset
		}
	}
	st, err := b.Compact(ctx)
	if err != nil || st.Swapped == 0 || st.RecordsRemoved == 0 {
		t.Fatalf("compact: %+v %v", st, err)
	}
	check := func(client string, got []int64, recs map[int64]compRec) {
		t.Helper()
		prev := int64(-1)
		for _, off := range got {
			if off <= prev {
				t.Fatalf("%s: offset %d after %d", client, off, prev)
			}
			prev = off
			if recs[off] != produced[off] {
				t.Fatalf("%s: offset %d holds %+v, produced %+v", client, off, recs[off], produced[off])
			}
		}
		for k, off := range latest {
			if _, ok := recs[off]; !ok {
				t.Fatalf("%s: the latest record of %s (offset %d) is missing", client, k, off)
			}
		}
		if len(got) >= len(produced) {
			t.Fatalf("%s: read %d records of %d produced: nothing compacted", client, len(got), len(produced))
		}
	}
	// kgo from offset 0 to the end.
	cons, err := kgo.NewClient(kgo.SeedBrokers(g.Addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	end := int64(3000)
	var kgoOffs []int64
	kgoRecs := map[int64]compRec{}
	for len(kgoOffs) == 0 || kgoOffs[len(kgoOffs)-1] < end-1 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("kgo poll after %d records: %v", len(kgoOffs), err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			kgoOffs = append(kgoOffs, rec.Offset)
			kgoRecs[rec.Offset] = compRec{key: string(rec.Key), value: string(rec.Value), null: rec.Value == nil}
		})
	}
	check("kgo", kgoOffs, kgoRecs)
	t.Logf("kgo read %d records of %d produced (%d bytes -> %d)", len(kgoOffs), len(produced), st.BytesBefore, st.BytesAfter)

	bin := kcatBin(t)
	out, err := exec.CommandContext(ctx, bin, "-C", "-b", g.Addr, "-t", topic, "-o", "beginning", "-e", "-q",
		"-Z", "-f", "%o %k %S %s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	var kcOffs []int64
	kcRecs := map[int64]compRec{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) < 3 {
			t.Fatalf("kcat line %q", line)
		}
		off, _ := strconv.ParseInt(f[0], 10, 64)
		size, _ := strconv.Atoi(f[2])
		c := compRec{key: f[1], null: size < 0}
		if !c.null && len(f) == 4 {
			c.value = f[3]
		}
		kcOffs = append(kcOffs, off)
		kcRecs[off] = c
	}
	check("kcat", kcOffs, kcRecs)
	if len(kcOffs) != len(kgoOffs) {
		t.Fatalf("kcat read %d records, kgo %d", len(kcOffs), len(kgoOffs))
	}
}
