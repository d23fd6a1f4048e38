package metadata_test

import (
	"bytes"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
)

// base is a state with brokers, topics and offsets for fuzzed entries to act on.
func base(t testing.TB) *metadata.State {
	t.Helper()
	s := cluster(t, 3)
	mustApply(t, s,
		&metadata.CreateTopics{Topics: []metadata.NewTopic{topic("a", 1, 3, node(1), node(2)), topic("c.d", 2, 1, node(3)),
			{Name: "r", ID: tid(3), Partitions: 2, Owners: []metadata.NodeID{node(1), node(2)}, Replicas: [][]uint64{{1, 2, 3}, {2, 3, 1}}}}},
		&metadata.UpdatePartition{Topic: "r", Partition: 1, Leader: 3, LeaderEpoch: 2, ISR: []uint64{3, 2}},
		&metadata.CommitOffsets{Group: "g1", Offsets: []metadata.OffsetCommit{{Topic: "a", Offset: 5}, {Topic: "b", Offset: 6, Writer: 9, Seq: 3}}},
		&metadata.GroupGenerations{Groups: []metadata.GroupGeneration{{Group: "g1", Generation: 4}}},
		&metadata.GroupMembers{Group: "g1", Generation: 5, Record: []byte("members of g1")},
		&metadata.AllowBroker{NodeID: node(4)},
		&metadata.RegisterBroker{RaftID: 2, NodeID: node(2), Addr: []byte("addr-2"), Rack: "r", Kafka: "broker-2:9093"},
		&metadata.RemoveBroker{RaftID: 3})
	mustApply(t, s, securityCommands()...)
	return s
}

// FuzzApply: arbitrary entries never panic; an entry that is not applied (error result)
// changes nothing but the applied index; the state stays restorable, and a dry run (Validate)
// answers what Apply answers.
func FuzzApply(f *testing.F) {
	for _, c := range allCommands() {
		f.Add(metadata.EncodeCommand(c))
	}
	for _, e := range entries(1, 40) {
		f.Add(e)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 6, 0, 1, 1, 'x'})
	start := snap(f, base(f)) // restoring is cheaper than building: keep executions fast
	f.Fuzz(func(t *testing.T, data []byte) {
		s, ref := metadata.New(), metadata.New()
		if s.Restore(start) != nil || ref.Restore(start) != nil {
			t.Fatal("base snapshot does not restore")
		}
		var dry any
		if c, err := metadata.DecodeCommand(data); err == nil {
			dry = s.Validate(c)
		}
		idx := s.LastApplied() + 1
		r := s.Apply(idx, data)
		if _, isErr := r.(error); isErr || r == nil {
			ref.Apply(idx, nil)
			if !bytes.Equal(snap(t, s), snap(t, ref)) {
				t.Fatalf("entry %x not applied (%v) but the state changed", data, r)
			}
		} else if !sameResult(r, dry) {
			t.Fatalf("Validate %+v, Apply %+v", dry, r)
		}
		sn := snap(t, s)
		n := metadata.New()
		if err := n.Restore(sn); err != nil {
			t.Fatalf("snapshot after %x does not restore: %v", data, err)
		}
		if !bytes.Equal(snap(t, n), sn) {
			t.Fatal("snapshot → restore → snapshot differs")
		}
	})
}

// FuzzRestore: arbitrary snapshots never panic, a refused one changes nothing, and an
// accepted one round-trips and can be applied to. The input is tried as is and with a valid
// header and checksum in front (so the fuzzer reaches the body decoder).
func FuzzRestore(f *testing.F) {
	for seed := range uint64(3) {
		s := metadata.New()
		for i, e := range entries(seed, 60) {
			s.Apply(uint64(i+1), e)
		}
		sn := snap(f, s)
		f.Add(sn)
		f.Add(sn[9:])
	}
	start := snap(f, base(f))
	f.Add(start[9:])
	f.Add([]byte("MKMD\x01"))
	after := entries(9, 30)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, reseal(data)} {
			s := metadata.New()
			if err := s.Restore(start); err != nil {
				t.Fatal(err)
			}
			before := start
			if err := s.Restore(in); err != nil {
				if !bytes.Equal(snap(t, s), before) {
					t.Fatalf("refused Restore (%v) changed the state", err)
				}
				continue
			}
			sn := snap(t, s)
			n := metadata.New()
			if err := n.Restore(sn); err != nil {
				t.Fatalf("re-restore: %v", err)
			}
			if !bytes.Equal(snap(t, n), sn) {
				t.Fatal("snapshot → restore → snapshot differs")
			}
			for i, e := range after {
				s.Apply(s.LastApplied()+uint64(i)+1, e)
			}
			if err := n.Restore(snap(t, s)); err != nil {
				t.Fatalf("state after applying to a restored snapshot does not restore: %v", err)
			}
		}
	})
}
