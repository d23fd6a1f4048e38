package metadata_test

import (
	"bytes"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
)

// The transaction coordinator's records: the latest per id is kept, an empty record removes
// the id, bad commands change nothing, and the snapshot section carries them.
func TestPutTxn(t *testing.T) {
	s := metadata.New()
	mustApply(t, s, &metadata.PutTxn{ID: "b", Record: []byte("b1")}, &metadata.PutTxn{ID: "a", Record: []byte("a1")},
		&metadata.PutTxn{ID: "b", Record: []byte("b2")}, &metadata.PutTxn{ID: "c", Record: []byte("c1")},
		&metadata.PutTxn{ID: "c"})
	for _, bad := range []*metadata.PutTxn{{Record: []byte("x")}, {ID: "d", Record: make([]byte, metadata.MaxTxnRecord+1)}} {
		if r := apply(t, s, bad).(*metadata.PutTxnResult); r.Code != metadata.CodeInvalidRequest {
			t.Fatalf("PutTxn %q (%d bytes): code %d", bad.ID, len(bad.Record), r.Code)
		}
	}
	want := map[string]string{"a": "a1", "b": "b2"}
	check := func(s *metadata.State) {
		t.Helper()
		got := s.Txns()
		if len(got) != len(want) {
			t.Fatalf("txns %q, want %q", got, want)
		}
		for id, r := range want {
			if !bytes.Equal(got[id], []byte(r)) {
				t.Fatalf("txns %q, want %q", got, want)
			}
		}
	}
	check(s)
	r := metadata.New()
	if err := r.Restore(snap(t, s)); err != nil {
		t.Fatal(err)
	}
	check(r)
	if !sameContent(t, s, r) {
		t.Fatal("restored state differs")
	}
	// Without transactions there is no section: an empty state's snapshot is unchanged.
	mustApply(t, s, &metadata.PutTxn{ID: "a"}, &metadata.PutTxn{ID: "b"})
	e := metadata.New()
	e.Apply(s.LastApplied(), nil)
	if !bytes.Equal(snap(t, s), snap(t, e)) {
		t.Fatal("a state whose transactions were all removed snapshots differently from an empty one")
	}
}
