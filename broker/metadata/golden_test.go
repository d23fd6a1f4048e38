package metadata_test

import (
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/broker/internal/brokertest"
	"github.com/meshkafka/meshkafka/broker/metadata"
)

// The encodings live in raft logs and snapshots on disk: these bytes must never change
// (a change needs a new version byte). Layouts in doc.go.
func TestGoldenEncodings(t *testing.T) {
	var n metadata.NodeID
	n[0] = 0xaa
	var id metadata.TopicID
	id[15] = 0x01
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"InitCluster", metadata.EncodeCommand(&metadata.InitCluster{ClusterID: "c"}), "01" + "01" + "0163"},
		{"RemoveBroker", metadata.EncodeCommand(&metadata.RemoveBroker{RaftID: 300}), "01" + "03" + "ac02"},
		{"AllocateProducerIDs", metadata.EncodeCommand(&metadata.AllocateProducerIDs{Count: 1000}), "01" + "0b" + "d00f"},
		{"CreateTopics", metadata.EncodeCommand(&metadata.CreateTopics{MaxPartitions: -1, Topics: []metadata.NewTopic{{
			Name: "t", ID: id, Partitions: 1, Configs: map[string]string{"b": "2", "a": "1"}, Owners: []metadata.NodeID{n}}}}),
			"01" + "06" + "01" + "01" + "0174" + "00000000000000000000000000000001" + "02" +
				"02" + "0161" + "0131" + "0162" + "0132" + "01" + "aa" + "00000000000000000000000000000000000000000000000000000000000000"},
		{"CommitOffsets", metadata.EncodeCommand(&metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
			{Topic: "t", Partition: 2, Offset: 5, LeaderEpoch: -1, Metadata: "", CommitTimeMs: 7}}}),
			"01" + "0c" + "0167" + "01" + "0174" + "04" + "0a" + "01" + "00" + "0e"},
		{"CommitOffsets ordered", metadata.EncodeCommand(&metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
			{Topic: "t", Partition: 2, Offset: 5, LeaderEpoch: -1, Metadata: "", CommitTimeMs: 7, Writer: 300, Seq: 2}}}),
			"01" + "0f" + "0167" + "01" + "0174" + "04" + "0a" + "01" + "00" + "0e" + "ac02" + "02"},
		{"GroupGenerations", metadata.EncodeCommand(&metadata.GroupGenerations{Groups: []metadata.GroupGeneration{{Group: "g", Generation: 300}}}),
			"01" + "10" + "01" + "0167" + "d804"},
		{"GroupMembers", metadata.EncodeCommand(&metadata.GroupMembers{Group: "g", Generation: 300, Record: []byte{1, 2}}),
			"01" + "11" + "0167" + "d804" + "02" + "0102"},
		{"CreateTopics replicated", metadata.EncodeCommand(&metadata.CreateTopics{Topics: []metadata.NewTopic{{
			Name: "t", ID: id, Partitions: 1, Owners: []metadata.NodeID{n}, Replicas: [][]uint64{{1, 300}}}}}),
			"01" + "14" + "00" + "01" + "0174" + "00000000000000000000000000000001" + "02" + "00" +
				"01" + "aa" + "00000000000000000000000000000000000000000000000000000000000000" + "01" + "02" + "01" + "ac02"},
		{"CreatePartitions replicated", metadata.EncodeCommand(&metadata.CreatePartitions{Topics: []metadata.NewPartitions{{
			Name: "t", Count: 2, Owners: []metadata.NodeID{n}, Replicas: [][]uint64{{2, 1}}}}}),
			"01" + "15" + "00" + "01" + "0174" + "04" + "01" + "aa" + "00000000000000000000000000000000000000000000000000000000000000" +
				"01" + "02" + "02" + "01"},
		{"UpdatePartition", metadata.EncodeCommand(&metadata.UpdatePartition{Topic: "t", Partition: 1, Leader: 300, LeaderEpoch: 3, ISR: []uint64{300, 1}}),
			"01" + "16" + "0174" + "02" + "ac02" + "06" + "02" + "ac02" + "01"},
	} {
		if got := hex.EncodeToString(c.got); got != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, got, c.want)
		}
	}
	sn, _ := metadata.New().Snapshot()
	// "MKMD" | 1 | crc32c(body) | applied 0 | "" | pid 0 | next kafka id 1 | five empty tables
	// (no trailing sections: the state has nothing that goes in one)
	if got, want := hex.EncodeToString(sn), "4d4b4d44"+"01"+"6069c860"+"00"+"00"+"00"+"02"+"0000000000"; got != want {
		t.Errorf("empty snapshot:\ngot  %s\nwant %s", got, want)
	}
	// The replicated-partitions section (tag 2), for one topic "t" with partition 0 on raft
	// ids 1 and 2, led by 2 at epoch 3 with both in sync.
	s := metadata.New()
	for _, c := range []metadata.Command{
		&metadata.RegisterBroker{RaftID: 1, NodeID: n},
		&metadata.RegisterBroker{RaftID: 2, NodeID: metadata.NodeID{0xbb}},
		&metadata.CreateTopics{Topics: []metadata.NewTopic{{Name: "t", ID: id, Partitions: 1, Owners: []metadata.NodeID{n}, Replicas: [][]uint64{{1, 2}}}}},
		&metadata.UpdatePartition{Topic: "t", Leader: 2, LeaderEpoch: 3, ISR: []uint64{2, 1}},
	} {
		s.Apply(s.LastApplied()+1, metadata.EncodeCommand(c))
	}
	sn, _ = s.Snapshot()
	section := "02" + "0d" + "01" + "0174" + "01" + "00" + "02" + "0102" + "02" + "06" + "02" + "0201"
	if got := hex.EncodeToString(sn); !strings.HasSuffix(got, section) {
		t.Errorf("replicated-partitions section:\ngot  %s\nwant it to end in %s", got, section)
	}
}

// Readers run while entries are applied (run with -race).
func TestConcurrentReads(t *testing.T) {
	s := metadata.New()
	es := entries(3, 300)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	brokertest.Repeat(&wg, stop, func() bool {
		for _, tp := range s.Topics() {
			s.Owner(tp.Name, 0)
			s.TopicByID(tp.ID)
		}
		for _, b := range s.Brokers() {
			s.BrokerByNode(b.NodeID)
		}
		for _, g := range s.Groups() {
			s.GroupOffsets(g)
		}
		s.OrphanedPartitions()
		s.Validate(&metadata.CreateTopics{Topics: []metadata.NewTopic{{Name: "a", ID: tid(1), Partitions: 1, Owners: owners(1, node(1))}}})
		if _, err := s.Snapshot(); err != nil {
			t.Error(err)
			return false
		}
		return true
	})
	for i, e := range es {
		s.Apply(uint64(i+1), e)
	}
	close(stop)
	wg.Wait()
}

// stateMachine is quorum.StateMachine's method set (this package does not import quorum).
type stateMachine interface {
	Apply(index uint64, data []byte) any
	Snapshot() ([]byte, error)
	Restore(data []byte) error
}

var _ stateMachine = (*metadata.State)(nil)

// The offset-stamps section (tag 5): group "g", its offset of "t"/0 stamped writer 300 seq 2
// (its unstamped offset of "u"/0 left out).
func TestGoldenOffsetStampsSection(t *testing.T) {
	s := metadata.New()
	s.Apply(1, metadata.EncodeCommand(&metadata.CommitOffsets{Group: "g", Offsets: []metadata.OffsetCommit{
		{Topic: "t", Offset: 5, Writer: 300, Seq: 2}, {Topic: "u", Offset: 6}}}))
	sn, _ := s.Snapshot()
	section := "05" + "09" + "0167" + "01" + "0174" + "00" + "ac02" + "02"
	if got := hex.EncodeToString(sn); !strings.HasSuffix(got, section) {
		t.Errorf("offset-stamps section:\ngot  %s\nwant it to end in %s", got, section)
	}
	r := metadata.New()
	if err := r.Restore(sn); err != nil {
		t.Fatal(err)
	}
	if c, _ := r.CommittedOffset("g", "t", 0); c.Writer != 300 || c.Seq != 2 {
		t.Errorf("restored stamp %d/%d, want 300/2", c.Writer, c.Seq)
	}
}

// The generations section (tag 6): group "g" at generation 300. A lower generation changes
// nothing; the snapshot restores it.
func TestGoldenGenerationsSection(t *testing.T) {
	s := metadata.New()
	s.Apply(1, metadata.EncodeCommand(&metadata.GroupGenerations{Groups: []metadata.GroupGeneration{{Group: "g", Generation: 300}}}))
	s.Apply(2, metadata.EncodeCommand(&metadata.GroupGenerations{Groups: []metadata.GroupGeneration{{Group: "g", Generation: 299}}}))
	sn, _ := s.Snapshot()
	section := "06" + "05" + "01" + "0167" + "d804"
	if got := hex.EncodeToString(sn); !strings.HasSuffix(got, section) {
		t.Errorf("generations section:\ngot  %s\nwant it to end in %s", got, section)
	}
	r := metadata.New()
	if err := r.Restore(sn); err != nil {
		t.Fatal(err)
	}
	if got := r.GroupGenerations(); len(got) != 1 || got[0] != (metadata.GroupGeneration{Group: "g", Generation: 300}) {
		t.Errorf("restored generations %+v, want g at 300", got)
	}
	if res := s.Apply(3, metadata.EncodeCommand(&metadata.GroupGenerations{Groups: []metadata.GroupGeneration{{Generation: 5}}})); res.(*metadata.GroupGenerationsResult).Code != metadata.CodeInvalidGroupID {
		t.Errorf("empty group id: %+v", res)
	}
}

// The group members section (tag 7): group "g" recorded at generation 300, after the
// generations section. A stale record (below the recorded generation) changes nothing; a
// higher GroupGenerations drops the membership of an older generation, and DeleteGroups
// drops it too; the snapshot restores it.
func TestGoldenGroupMembersSection(t *testing.T) {
	s := metadata.New()
	s.Apply(1, metadata.EncodeCommand(&metadata.GroupMembers{Group: "g", Generation: 300, Record: []byte{1, 2}}))
	if r := s.Apply(2, metadata.EncodeCommand(&metadata.GroupMembers{Group: "g", Generation: 299, Record: []byte{9}})).(*metadata.GroupMembersResult); !r.Stale || r.Code != 0 {
		t.Errorf("stale record: %+v", r)
	}
	sn, _ := s.Snapshot()
	section := "06" + "05" + "01" + "0167" + "d804" + "07" + "08" + "01" + "0167" + "d804" + "02" + "0102"
	if got := hex.EncodeToString(sn); !strings.HasSuffix(got, section) {
		t.Errorf("group members section:\ngot  %s\nwant it to end in %s", got, section)
	}
	r := metadata.New()
	if err := r.Restore(sn); err != nil {
		t.Fatal(err)
	}
	want := metadata.GroupMembership{Group: "g", Generation: 300, Record: []byte{1, 2}}
	if got := r.GroupMemberships(); len(got) != 1 || got[0].Group != want.Group || got[0].Generation != want.Generation || string(got[0].Record) != string(want.Record) {
		t.Errorf("restored memberships %+v, want %+v", got, want)
	}
	for _, c := range []struct {
		name string
		cmd  metadata.Command
		code int16
	}{
		{"empty group id", &metadata.GroupMembers{Generation: 5, Record: []byte{1}}, metadata.CodeInvalidGroupID},
		{"negative generation", &metadata.GroupMembers{Group: "h", Generation: -1, Record: []byte{1}}, metadata.CodeInvalidRequest},
		{"oversized record", &metadata.GroupMembers{Group: "h", Generation: 1, Record: make([]byte, metadata.MaxGroupMembersRecord+1)}, metadata.CodeInvalidRequest},
	} {
		if res := r.Apply(r.LastApplied()+1, metadata.EncodeCommand(c.cmd)).(*metadata.GroupMembersResult); res.Code != c.code {
			t.Errorf("%s: %+v, want code %d", c.name, res, c.code)
		}
	}
	r.Apply(r.LastApplied()+1, metadata.EncodeCommand(&metadata.GroupGenerations{Groups: []metadata.GroupGeneration{{Group: "g", Generation: 301}}}))
	if got := r.GroupMemberships(); len(got) != 0 {
		t.Errorf("memberships %+v after a higher generation, want none", got)
	}
	s.Apply(3, metadata.EncodeCommand(&metadata.DeleteGroups{Groups: []string{"g"}}))
	if got := s.GroupMemberships(); len(got) != 0 {
		t.Errorf("memberships %+v after DeleteGroups, want none", got)
	}
	// A snapshot whose membership is not at the group's recorded generation is refused.
	bad := metadata.New()
	bad.Apply(1, metadata.EncodeCommand(&metadata.GroupMembers{Group: "g", Generation: 3, Record: []byte{1}}))
	bsn, _ := bad.Snapshot()
	before := string(bsn)
	bsn = []byte(strings.Replace(before, "\x06\x04\x01\x01g\x06", "\x06\x04\x01\x01g\x08", 1))
	if string(bsn) == before {
		t.Fatalf("generations section of generation 3 not found in %x", bsn)
	}
	if err := metadata.New().Restore(reseal(bsn[9:])); err == nil {
		t.Errorf("a membership of generation 3 under recorded generation 4 restored")
	}
}
