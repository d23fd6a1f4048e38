package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller/controllertest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// ckRec is a keyed record as produced or read (null: a tombstone).
type ckRec struct {
	key, value string
	null       bool
}

// compactedModel is what a log cleaned up to end holds: below end the latest record of each
// key there (tombstones included: delete.retention.ms has not passed), from end on every
// record.
func compactedModel(produced map[int64]ckRec, end int64) map[int64]ckRec {
	latest := map[string]int64{}
	for off, r := range produced {
		if off < end && off >= latest[r.key] {
			latest[r.key] = off
		}
	}
	out := map[int64]ckRec{}
	for off, r := range produced {
		if off >= end || latest[r.key] == off {
			out[off] = r
		}
	}
	return out
}

// readCompactedMV reads partition 0 of "mv" with kgo from the start until it has read offset
// last (consuming across the cleaner's gaps as any Kafka client does).
func readCompactedMV(t *testing.T, addr string, last int64) map[int64]ckRec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"mv": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[int64]ckRec{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang bound for a loaded machine
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		if _, ok := got[last]; ok {
			break
		}
		fs := cl.PollFetches(ctx)
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				lastErr = e.Err
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Offset] = ckRec{key: string(r.Key), value: string(r.Value), null: r.Value == nil}
		})
	}
	if _, ok := got[last]; !ok {
		t.Fatalf("offset %d not read (read %d records; last fetch error %v)", last, len(got), lastErr)
	}
	return got
}

// sameCompacted fails t unless got is exactly want.
func sameCompacted(t *testing.T, got, want map[int64]ckRec, what string) {
	t.Helper()
	for off, w := range want {
		if g, ok := got[off]; !ok || g != w {
			t.Fatalf("%s: offset %d: read %+v (%v), want %+v", what, off, g, ok, w)
		}
	}
	for off, g := range got {
		if _, ok := want[off]; !ok {
			t.Fatalf("%s: offset %d: read %+v, which the cleaning removes", what, off, g)
		}
	}
}

// checkpointOf runs b's log cleaner and returns its checkpoint of mv-0 once it cleaned
// something (the replica may still be applying the last records: Eventually).
func checkpointOf(t *testing.T, b *broker.Broker, what string) int64 {
	t.Helper()
	var end int64
	eventually(t, what, func(ctx context.Context) error {
		if _, err := b.Compact(ctx); err != nil {
			return err
		}
		var ok bool
		if end, ok = b.CleanerCheckpoint("mv", 0); !ok {
			return errors.New("nothing cleaned yet")
		}
		return nil
	})
	return end
}

// kgo and kadm against a gateway in front of three brokers: a compacted topic with
// replication factor 3 is created (as changelogs and schema registries are); an existing RF=3
// topic is switched to compaction (IncrementalAlterConfigs), which reaches every replica's broker.
// Keyed records with tombstones are produced, every replica cleans its own log, and a
// consumer reads exactly the latest record of each key below the leader's cleaner checkpoint
// (and everything after) at the offsets produced. Leadership moves: the new leader serves its
// own compacted log, exactly the model at its checkpoint. A broker whose data directory was
// wiped is put back (new raft id, empty log): it is sent the log, cleans it, and once it leads
// it serves exactly the model at its checkpoint.
func TestKadmCompactedRF3(t *testing.T) {
	compact := map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "segment.bytes": kadm.StringPtr("16384"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01"), "delete.retention.ms": kadm.StringPtr("3600000")}
	addr, adm, qc, _ := movesSetupWith(t, 3, 1, compact) // "mv": RF=3, compacted
	stable(t, qc, 0)
	// An RF=3 topic created without compaction is switched to it.
	createTopic(t, adm, 1, 3, nil, "changelog")
	eventually(t, "alter changelog to compact", func(ctx context.Context) error {
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: kadm.StringPtr("compact")}}, "changelog")
		if err != nil {
			return err
		}
		return rs[0].Err
	})
	for i, b := range qc.Brokers {
		for _, topic := range []string{"mv", "changelog"} {
			if err := controllertest.Eventually(func() error {
				dc, err := b.Broker.DescribeConfigs(context.Background(), &brokerop.DescribeConfigsReq{Resources: []brokerop.DescribeConfigsResource{
					{Type: brokerop.ResourceTopic, Name: topic, ConfigNames: []string{"cleanup.policy"}}}})
				if err != nil {
					return err
				}
				if cs := dc.Resources[0].Configs; len(cs) != 1 || cs[0].Value == nil || *cs[0].Value != "compact" {
					return fmt.Errorf("cleanup.policy %+v", cs)
				}
				return nil
			}); err != nil {
				t.Fatalf("broker %d, topic %s: %v", i, topic, err)
			}
		}
	}

	cl := kafkaclients.KgoClient(t, addr, kgo.DefaultProduceTopic("mv"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0))
	r := rand.New(rand.NewPCG(3, 16))
	produced := map[int64]ckRec{}
	last := int64(-1)
	pad := strings.Repeat("p", 300)
	for i := range 80 {
		var recs []*kgo.Record
		for j := range 20 {
			rec := &kgo.Record{Key: fmt.Appendf(nil, "k%02d", r.IntN(40))}
			if r.IntN(8) != 0 {
				rec.Value = fmt.Appendf(nil, "v%d-%d-%s", i, j, pad)
			}
			recs = append(recs, rec)
		}
		// One attempt (kgo retries inside it, deduplicated by the idempotent producer).
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang bound
		rs := cl.ProduceSync(ctx, recs...)
		cancel()
		if err := rs.FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		for _, rec := range recs {
			produced[rec.Offset] = ckRec{key: string(rec.Key), value: string(rec.Value), null: rec.Value == nil}
			last = max(last, rec.Offset)
		}
	}

	// Every replica cleans its own log.
	ends := make([]int64, len(qc.Brokers))
	for i, b := range qc.Brokers {
		ends[i] = checkpointOf(t, b.Broker, fmt.Sprintf("broker %d", i))
		if ends[i] < last/2 {
			t.Fatalf("broker %d cleaned only up to %d of %d", i, ends[i], last)
		}
	}
	leader := -1
	if err := controllertest.Eventually(func() error {
		for i, b := range qc.Brokers {
			if serves(b.Broker, "mv") {
				leader = i
				return nil
			}
		}
		return errors.New("no broker serves mv-0")
	}); err != nil {
		t.Fatal(err)
	}
	got := readCompactedMV(t, addr, last)
	sameCompacted(t, got, compactedModel(produced, ends[leader]), "read from the leader")
	if len(got) >= len(produced) {
		t.Fatalf("read %d records of %d produced", len(got), len(produced))
	}
	t.Logf("%d records produced, %d read after cleaning (checkpoints %v)", len(produced), len(got), ends)

	// Leadership moves to another replica (raft's leadership transfer; the broker-level test
	// TestReplicatedCompaction kills the leader instead): it serves its own compacted log.
	next := (leader + 1) % len(qc.Brokers)
	moveLeader(t, qc, "mv", groupOf(t, adm, "mv"), next)
	sameCompacted(t, readCompactedMV(t, addr, last), compactedModel(produced, ends[next]), "read from the new leader")

	// A broker other than the partition's and the quorum's leaders is wiped and comes back
	// as a new replica (new raft id, empty log): the controller puts it back.
	li := leaderIndex(t, qc)
	w := -1
	for i := range qc.Brokers {
		if i != next && i != li {
			w = i
		}
	}
	kid := kafkaIDOf(t, qc, w)
	oldRaft := qc.Brokers[w].RaftID
	nb := qc.Wipe(t, w)
	// The controller replaces the old incarnation by the new one in both topics' groups (the
	// Kafka view alone cannot tell them apart: see TestWipedBrokerIsPutBack).
	waitReplaced(t, nb, oldRaft, 2)
	waitPart(t, qc, 0, "after the wipe", func(d partDetail) error {
		if len(d.Replicas) != 3 || len(d.ISR) != 3 || !slices.Contains(d.Replicas, kid) {
			return fmt.Errorf("replicas %v isr %v", d.Replicas, d.ISR)
		}
		return nil
	})
	endW := checkpointOf(t, nb.Broker, "the wiped broker")
	d := stable(t, qc, 0)
	preferReplica(t, adm, "mv", 0, kid, d.Replicas)
	if err := controllertest.Eventually(func() error { return electPreferred(adm, qc, kid) }); err != nil {
		t.Fatalf("the wiped broker leads: %v", err)
	}
	if e, _ := nb.Broker.CleanerCheckpoint("mv", 0); e != endW {
		endW = e // its background cleaner went further meanwhile (nothing new was produced)
	}
	sameCompacted(t, readCompactedMV(t, addr, last), compactedModel(produced, endW), "read from the wiped broker")
}
