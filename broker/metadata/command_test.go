package metadata_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/internal/postcard"
)

// allCommands has one filled-in example of every command kind (and the zero values).
func allCommands() []metadata.Command {
	return append([]metadata.Command{
		&metadata.InitCluster{ClusterID: "cluster-ü"},
		&metadata.RegisterBroker{RaftID: 1<<63 + 5, NodeID: node(7), Addr: []byte{0, 1, 2}, Rack: "rack-a"},
		&metadata.RegisterBroker{RaftID: 6, NodeID: node(8), Rack: "rack-b", Kafka: "broker-8.example:9093"},
		&metadata.RemoveBroker{RaftID: 300},
		&metadata.AllowBroker{NodeID: node(9)},
		&metadata.DisallowBroker{NodeID: node(10)},
		&metadata.CreateTopics{MaxPartitions: 1000, Topics: []metadata.NewTopic{
			{Name: "a", ID: tid(1), Partitions: 2, Configs: map[string]string{"z": "1", "cleanup.policy": "compact"}, Owners: owners(2, node(1), node(2))},
			{Name: "b", ID: tid(2), Partitions: -1},
		}},
		&metadata.DeleteTopics{Names: []string{"a", "", "b"}},
		&metadata.CreatePartitions{MaxPartitions: -3, Topics: []metadata.NewPartitions{{Name: "a", Count: 5, Owners: owners(3, node(1))}, {Name: "c"}}},
		&metadata.AlterConfigs{Topics: []metadata.ConfigChange{
			{Name: "a", Replace: true, Set: map[string]string{"retention.ms": "-1"}},
			{Name: "b", Set: map[string]string{"x": ""}, Delete: []string{"y", "z"}},
		}},
		&metadata.Reassign{Moves: []metadata.Move{{Topic: "a", Partition: -1, Owner: node(3)}, {Topic: "b", Partition: 1 << 30, Owner: node(4)}}},
		&metadata.AllocateProducerIDs{Count: 1000},
		&metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
			{Topic: "a", Partition: 3, Offset: 1 << 40, LeaderEpoch: -1, Metadata: "meta", CommitTimeMs: 1_700_000_000_000},
			{Topic: "b", Partition: -7, Offset: -1, LeaderEpoch: 5, CommitTimeMs: -5},
		}},
		&metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
			{Topic: "a", Partition: 3, Offset: 9, LeaderEpoch: -1, CommitTimeMs: 1, Writer: 1 << 63, Seq: 1 << 40},
			{Topic: "b", Partition: 0, Offset: 2, CommitTimeMs: 2},
		}},
		&metadata.DeleteGroups{Groups: []string{"g", "h"}},
		&metadata.GroupGenerations{Groups: []metadata.GroupGeneration{{Group: "g", Generation: 7}, {Group: "h", Generation: -1}}},
		&metadata.DeleteOffsets{Group: "g", Partitions: []metadata.TopicPartition{{Topic: "a", Partition: 1}, {Topic: "b", Partition: 0}}},
		&metadata.CreateTopics{MaxPartitions: 7, Topics: []metadata.NewTopic{
			{Name: "r", ID: tid(3), Partitions: 2, Owners: owners(2, node(1), node(2)), Replicas: [][]uint64{{1, 2, 3}, {2, 3, 1 << 60}}},
			{Name: "s", ID: tid(4), Partitions: 1, Owners: owners(1, node(1))},
		}},
		&metadata.CreatePartitions{Topics: []metadata.NewPartitions{{Name: "r", Count: 3, Owners: owners(1, node(3)), Replicas: [][]uint64{{3, 1, 2}}}}},
		&metadata.UpdatePartition{Topic: "r", Partition: 1, Leader: 3, LeaderEpoch: 7, ISR: []uint64{3, 2}},
		&metadata.AlterReassignments{Partitions: []metadata.ReassignPartition{{Topic: "r", Partition: 1, Target: []uint64{4, 2, 3}}, {Topic: "r", Partition: 0}}},
		&metadata.CompleteReassignment{Topic: "r", Partition: 1, Target: []uint64{4, 2, 1 << 60}},
		// zero values
		&metadata.InitCluster{}, &metadata.RegisterBroker{}, &metadata.RemoveBroker{}, &metadata.AllowBroker{},
		&metadata.DisallowBroker{}, &metadata.CreateTopics{}, &metadata.DeleteTopics{}, &metadata.CreatePartitions{},
		&metadata.AlterConfigs{}, &metadata.Reassign{}, &metadata.AllocateProducerIDs{}, &metadata.CommitOffsets{},
		&metadata.DeleteGroups{}, &metadata.DeleteOffsets{}, &metadata.GroupGenerations{}, &metadata.UpdatePartition{},
		&metadata.AlterReassignments{}, &metadata.CompleteReassignment{},
		&metadata.CreateACLs{}, &metadata.DeleteACLs{}, &metadata.AlterScram{}, &metadata.AlterQuotas{}, &metadata.SetRoles{},
		&metadata.PutTxn{ID: "txn-ü", Record: []byte{1, 2, 3}}, &metadata.PutTxn{},
		&metadata.PutShares{Items: []metadata.ShareItem{{Group: "g", Key: "p\x00t\x001", Record: []byte{1, 3}}, {Group: "h", DropGroup: true}}}, &metadata.PutShares{},
		&metadata.GroupMembers{Group: "g", Generation: 1 << 30, Record: []byte{1, 0, 0, 0, 7}}, &metadata.GroupMembers{},
	}, securityCommands()...)
}

func TestCommandRoundTrip(t *testing.T) {
	kinds := map[byte]bool{}
	for _, c := range allCommands() {
		b := metadata.EncodeCommand(c)
		kinds[b[1]] = true
		got, err := metadata.DecodeCommand(b)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%T round trip:\ngot  %+v\nwant %+v", c, got, c)
		}
	}
	if len(kinds) != 29 {
		t.Errorf("%d command kinds covered, want 29", len(kinds))
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	if _, err := metadata.DecodeCommand(nil); !errors.Is(err, metadata.ErrMalformed) {
		t.Errorf("empty: %v", err)
	}
	if _, err := metadata.DecodeCommand([]byte{2, 1, 0}); !errors.Is(err, metadata.ErrUnknownVersion) {
		t.Errorf("version 2: %v", err)
	}
	if _, err := metadata.DecodeCommand([]byte{1, 99}); !errors.Is(err, metadata.ErrUnknownCommand) {
		t.Errorf("kind 99: %v", err)
	}
	if _, err := metadata.DecodeCommand([]byte{1, 0}); !errors.Is(err, metadata.ErrUnknownCommand) {
		t.Errorf("kind 0: %v", err)
	}
	if _, err := metadata.DecodeCommand([]byte{1, 0x80}); !errors.Is(err, metadata.ErrMalformed) {
		t.Errorf("truncated kind: %v", err)
	}
	for _, c := range allCommands() {
		b := metadata.EncodeCommand(c)
		// A cut exactly before an optional trailing field is the older form, which decodes.
		optional := -1
		if rb, ok := c.(*metadata.RegisterBroker); ok && rb.Kafka != "" {
			old := *rb
			old.Kafka = ""
			optional = len(metadata.EncodeCommand(&old))
			got, err := metadata.DecodeCommand(b[:optional])
			if err != nil || got.(*metadata.RegisterBroker).Kafka != "" {
				t.Errorf("RegisterBroker without its Kafka address: %+v, %v", got, err)
			}
		}
		for n := 2; n < len(b); n++ {
			if n == optional {
				continue
			}
			if _, err := metadata.DecodeCommand(b[:n]); !errors.Is(err, metadata.ErrMalformed) {
				t.Errorf("%T cut to %d of %d bytes: %v", c, n, len(b), err)
			}
		}
		if _, err := metadata.DecodeCommand(append(b, 0)); !errors.Is(err, metadata.ErrMalformed) {
			t.Errorf("%T with a trailing byte: %v", c, err)
		}
	}
	// The ordered CommitOffsets encoding without any stamped offset is not canonical.
	unstamped := metadata.EncodeCommand(&metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{{Topic: "t"}}})
	unstamped[1] = 15
	unstamped = append(unstamped, 0, 0)
	if _, err := metadata.DecodeCommand(unstamped); !errors.Is(err, metadata.ErrMalformed) {
		t.Errorf("ordered CommitOffsets without a writer: %v", err)
	}
	// A map whose keys are not strictly ascending is not canonical: refused.
	for _, keys := range [][2]string{{"b", "a"}, {"a", "a"}} {
		b := []byte{1, 9, 1} // AlterConfigs, one topic
		b = postcard.AppendString(b, "t")
		b = postcard.AppendBool(b, false)
		b = postcard.AppendUvarint(b, 2)
		for _, k := range keys {
			b = postcard.AppendString(b, k)
			b = postcard.AppendString(b, "v")
		}
		b = postcard.AppendUvarint(b, 0)
		if _, err := metadata.DecodeCommand(b); !errors.Is(err, metadata.ErrMalformed) {
			t.Errorf("map keys %q: %v", keys, err)
		}
	}
	// A count larger than the input could hold fails without allocating it.
	b := postcard.AppendUvarint([]byte{1, 7}, 1<<40)
	if _, err := metadata.DecodeCommand(b); !errors.Is(err, metadata.ErrMalformed) {
		t.Errorf("huge count: %v", err)
	}
	// Invalid UTF-8 in a string.
	if _, err := metadata.DecodeCommand([]byte{1, 1, 1, 0xff}); !errors.Is(err, metadata.ErrMalformed) {
		t.Errorf("bad utf-8: %v", err)
	}
}

// Decoded byte fields do not alias the entry: raft may reuse its buffers.
func TestDecodeCopiesBytes(t *testing.T) {
	b := metadata.EncodeCommand(&metadata.RegisterBroker{RaftID: 1, NodeID: node(1), Addr: []byte("addr")})
	c, err := metadata.DecodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if got := string(c.(*metadata.RegisterBroker).Addr); got != "addr" {
		t.Errorf("addr after clearing the input: %q", got)
	}
}
