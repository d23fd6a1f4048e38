package share

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord: DecodeRecord never panics, and what it accepts encodes back to the same
// bytes and replays without panicking.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []*Record{
		{Kind: KindGroup, Group: "g"},
		{Kind: KindDeleteGroup, Group: "g"},
		{Kind: KindPartition, Group: "g", Topic: "t", Partition: 3, StateEpoch: 1, Start: 10,
			Runs: []Run{{10, 12, Acknowledged, 1}, {14, 20, Available, 2}, {21, 21, Archived, 5}}},
		{Kind: KindDeletePartition, Group: "g", Topic: "t", Partition: 1},
		{Kind: KindConfig, Group: "g", Configs: [][2]string{{"share.auto.offset.reset", "earliest"}}},
	} {
		f.Add(AppendRecord(nil, r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if again := AppendRecord(nil, r); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
		}
		m := NewMachine(Config{})
		m.Apply(r)
		_ = m.State()
	})
}
