package broker

import (
	"context"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// SyncTopics creates, grows, re-configures and deletes topics to match the cluster's state,
// keeps data of topics that stay, and writes nothing to the broker's own registry.
func TestSyncTopics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	idA, idB := TopicID{1}, TopicID{2}
	if err := e.b.SyncTopics([]TopicRecord{{Name: "a", ID: idA, Partitions: 2, Configs: map[string]string{"retention.ms": "1000"}}}); err != nil {
		t.Fatal(err)
	}
	e.mustProduce(-1, "a", 1, makeBatch(false, vals(1, "x")...))
	md, err := e.b.Metadata(ctx, &brokerop.MetadataReq{})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].TopicID != idA || len(md.Topics[0].Partitions) != 2 {
		t.Fatalf("metadata after create: %+v, %v", md, err)
	}
	if c := entry(describe(t, e.b, brokerop.ResourceTopic, "a", false), "retention.ms"); c == nil || *c.Value != "1000" {
		t.Fatalf("retention.ms = %+v", c)
	}
	// Grow a, change its configs, add b.
	if err := e.b.SyncTopics([]TopicRecord{
		{Name: "a", ID: idA, Partitions: 3, Configs: map[string]string{"retention.ms": "2000"}},
		{Name: "b", ID: idB, Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	md, _ = e.b.Metadata(ctx, &brokerop.MetadataReq{})
	if len(md.Topics) != 2 || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("metadata after grow: %+v", md)
	}
	if c := entry(describe(t, e.b, brokerop.ResourceTopic, "a", false), "retention.ms"); c == nil || *c.Value != "2000" {
		t.Fatalf("retention.ms = %+v", c)
	}
	if got := e.fetch("a", 1, 0, 1<<20); got.ErrorCode != 0 || got.HighWatermark != 1 {
		t.Fatalf("data of a kept topic: %+v", got)
	}
	// Shrinking is refused for that topic only.
	if err := e.b.SyncTopics([]TopicRecord{{Name: "a", ID: idA, Partitions: 1}, {Name: "b", ID: idB, Partitions: 1}}); err == nil {
		t.Fatal("shrink accepted")
	}
	// A recreated a (new id) loses the old data; b goes away.
	idA2 := TopicID{3}
	if err := e.b.SyncTopics([]TopicRecord{{Name: "a", ID: idA2, Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	md, _ = e.b.Metadata(ctx, &brokerop.MetadataReq{})
	if len(md.Topics) != 1 || md.Topics[0].TopicID != idA2 || len(md.Topics[0].Partitions) != 1 {
		t.Fatalf("metadata after recreate: %+v", md)
	}
	if got := e.fetch("a", 0, 0, 1<<20); got.ErrorCode != 0 || got.HighWatermark != 0 {
		t.Fatalf("recreated topic has old data: %+v", got)
	}
	if got := e.fetch("b", 0, 0, 1<<20); got.ErrorCode == 0 {
		t.Fatalf("deleted topic still served: %+v", got)
	}
	if n := e.b.partitions.Load(); n != 1 {
		t.Fatalf("partition count %d, want 1", n)
	}
	st, err := e.b.reg.Load()
	if err != nil || len(st.Topics) != 0 {
		t.Fatalf("registry written by SyncTopics: %+v, %v", st, err)
	}
}
