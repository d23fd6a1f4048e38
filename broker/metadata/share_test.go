package metadata_test

import (
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
)

// The share coordinator's records: the latest per (group, key) is kept, an item without a
// record removes its key (and an emptied group), DropGroup removes a group's whole state, a
// bad item refuses the whole command, and the snapshot section carries the state.
func TestPutShares(t *testing.T) {
	s := metadata.New()
	it := func(g, k, r string) metadata.ShareItem {
		return metadata.ShareItem{Group: g, Key: k, Record: []byte(r)}
	}
	mustApply(t, s,
		&metadata.PutShares{Items: []metadata.ShareItem{it("a", "g", "a-g1"), it("a", "p1", "a-p1"), it("b", "g", "b-g1")}},
		&metadata.PutShares{Items: []metadata.ShareItem{it("a", "p1", "a-p1'"), it("a", "p2", "a-p2"), it("c", "g", "c-g1")}},
		&metadata.PutShares{Items: []metadata.ShareItem{it("a", "p2", ""), {Group: "b", DropGroup: true}, it("d", "x", "d-x"), it("d", "x", "")}})
	for _, bad := range []*metadata.PutShares{
		{Items: []metadata.ShareItem{it("a", "g", "a-g2"), it("", "g", "x")}},
		{Items: []metadata.ShareItem{it("a", "g", "a-g2"), it("a", "", "x")}},
		{Items: []metadata.ShareItem{{Group: "a", Key: "p1", Record: make([]byte, metadata.MaxShareRecord+1)}}},
	} {
		if r := apply(t, s, bad).(*metadata.PutSharesResult); r.Code != metadata.CodeInvalidRequest {
			t.Fatalf("PutShares %+v: code %d", bad.Items[0].Group, r.Code)
		}
	}
	want := map[string]map[string][]byte{
		"a": {"g": []byte("a-g1"), "p1": []byte("a-p1'")},
		"c": {"g": []byte("c-g1")},
	}
	if got := s.Shares(); !reflect.DeepEqual(got, want) {
		t.Fatalf("shares %q, want %q", got, want)
	}
	r := metadata.New()
	if err := r.Restore(snap(t, s)); err != nil {
		t.Fatal(err)
	}
	if got := r.Shares(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored shares %q, want %q", got, want)
	}
}
