package metadata_test

import (
	"fmt"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
)

// BenchmarkApplyCommitOffsets: one OffsetCommit of 10 partitions (the common controller
// write), decoded and applied.
func BenchmarkApplyCommitOffsets(b *testing.B) {
	s := cluster(b, 3)
	c := &metadata.CommitOffsets{Group: "bench-group"}
	for p := range 10 {
		c.Offsets = append(c.Offsets, metadata.OffsetCommit{Topic: "orders", Partition: int32(p), Offset: 12345, LeaderEpoch: 3,
			Metadata: "consumer-1", CommitTimeMs: 1_700_000_000_000})
	}
	data := metadata.EncodeCommand(c)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	idx := s.LastApplied()
	for b.Loop() {
		idx++
		if r, ok := s.Apply(idx, data).(*metadata.CommitOffsetsResult); !ok || r.Code != 0 {
			b.Fatalf("result %+v", r)
		}
	}
}

// BenchmarkApplyCreateTopics: one CreateTopics of a 10-partition topic over three brokers,
// into a state that grows by one topic per iteration.
func BenchmarkApplyCreateTopics(b *testing.B) {
	s := cluster(b, 3)
	var n int
	mk := func() []byte {
		n++
		var id metadata.TopicID
		id[0], id[1], id[2], id[15] = byte(n), byte(n>>8), byte(n>>16), 1
		return metadata.EncodeCommand(&metadata.CreateTopics{MaxPartitions: 1 << 30, Topics: []metadata.NewTopic{{
			Name: fmt.Sprintf("topic-%d", n), ID: id, Partitions: 10,
			Configs: map[string]string{"retention.ms": "86400000"}, Owners: owners(10, node(1), node(2), node(3)),
		}}})
	}
	b.ReportAllocs()
	idx := s.LastApplied()
	for b.Loop() {
		b.StopTimer()
		data := mk()
		b.StartTimer()
		idx++
		if r, ok := s.Apply(idx, data).(*metadata.TopicsResult); !ok || r.Topics[0].Code != 0 {
			b.Fatalf("result %+v", r)
		}
	}
}

// BenchmarkSnapshot: snapshot of a state with 1000 topics and 1000 committed offsets.
func BenchmarkSnapshot(b *testing.B) {
	s := cluster(b, 3)
	for i := range 100 {
		var id metadata.TopicID
		id[0], id[1], id[15] = byte(i), byte(i>>8), 1
		mustApply(b, s, &metadata.CreateTopics{Topics: []metadata.NewTopic{{Name: fmt.Sprintf("t%d", i), ID: id, Partitions: 10,
			Owners: owners(10, node(1), node(2), node(3))}}})
		c := &metadata.CommitOffsets{Group: fmt.Sprintf("g%d", i%10)}
		for p := range 10 {
			c.Offsets = append(c.Offsets, metadata.OffsetCommit{Topic: fmt.Sprintf("t%d", i), Partition: int32(p), Offset: 1})
		}
		mustApply(b, s, c)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
}
