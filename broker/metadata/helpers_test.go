package metadata_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
)

func node(b byte) metadata.NodeID {
	var n metadata.NodeID
	n[0], n[31] = b, b
	return n
}

func tid(b byte) metadata.TopicID {
	var id metadata.TopicID
	id[0], id[15] = b, 0xee
	return id
}

// apply applies c at the next index and returns the result.
func apply(t testing.TB, s *metadata.State, c metadata.Command) any {
	t.Helper()
	return s.Apply(s.LastApplied()+1, metadata.EncodeCommand(c))
}

// mustApply applies commands and fails the test on an error result.
func mustApply(t testing.TB, s *metadata.State, cs ...metadata.Command) {
	t.Helper()
	for _, c := range cs {
		if err, ok := apply(t, s, c).(error); ok {
			t.Fatalf("apply %T: %v", c, err)
		}
	}
}

func snap(t testing.TB, s *metadata.State) []byte {
	t.Helper()
	b, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameContent reports whether a and b hold the same metadata apart from the applied index:
// b is brought to a's index with an empty entry on a restored copy.
func sameContent(t testing.TB, a, b *metadata.State) bool {
	t.Helper()
	sa, sb := snap(t, a), snap(t, b)
	cb := metadata.New()
	if err := cb.Restore(sb); err != nil {
		t.Fatal(err)
	}
	ca := metadata.New()
	if err := ca.Restore(sa); err != nil {
		t.Fatal(err)
	}
	top := max(a.LastApplied(), b.LastApplied()) + 1
	ca.Apply(top, nil)
	cb.Apply(top, nil)
	return bytes.Equal(snap(t, ca), snap(t, cb))
}

func owners(n int, ids ...metadata.NodeID) []metadata.NodeID {
	out := make([]metadata.NodeID, n)
	for i := range out {
		out[i] = ids[i%len(ids)]
	}
	return out
}

// cluster returns a state with a cluster id and brokers 1..n (raft id i, NodeID node(i)).
func cluster(t testing.TB, n int) *metadata.State {
	t.Helper()
	s := metadata.New()
	mustApply(t, s, &metadata.InitCluster{ClusterID: "c1"})
	for i := 1; i <= n; i++ {
		mustApply(t, s, &metadata.RegisterBroker{RaftID: uint64(i), NodeID: node(byte(i)), Addr: []byte(fmt.Sprintf("addr-%d", i)), Rack: "r"})
	}
	return s
}

func check(t *testing.T, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func codes(r *metadata.TopicsResult) []int16 {
	var out []int16
	for _, t := range r.Topics {
		out = append(out, t.Code)
	}
	return out
}

// reseal wraps a snapshot body in a header with its checksum.
func reseal(body []byte) []byte {
	out := append([]byte("MKMD\x01"), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(out[5:], crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(out, body...)
}
