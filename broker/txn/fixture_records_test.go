package txn

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
)

// fixtureRecords are the records in testdata/txn.log, a log written by the store code as it
// was before its framing moved to wal/recordlog (commit b2be0a6): the file must still open
// and the framing must still write it byte for byte.
func fixtureRecords() []*Txn {
	return []*Txn{
		{ID: "alpha", ProducerID: 3, Epoch: 2, TimeoutMs: 1000, State: Ongoing, StartMs: 5, UpdateMs: 6,
			Partitions: []TP{{"a", 0}, {"a", 1}, {"b", 0}}, Groups: []string{"g"},
			Offsets: []Offset{{Group: "g", Topic: "in", Partition: 0, Offset: 9, LeaderEpoch: -1, Metadata: "m"}}},
		{ID: "beta", ProducerID: 77, Epoch: 9, TimeoutMs: 1000, State: PrepareCommit, StartMs: 5, UpdateMs: 6,
			Partitions: []TP{{"t", 3}}},
		{ID: "gamma", ProducerID: 1 << 40, TimeoutMs: 60000, State: CompleteAbort, StartMs: 1, UpdateMs: 2},
		{ID: "alpha", ProducerID: 3, Epoch: 2, TimeoutMs: 1000, State: CompleteCommit, StartMs: 5, UpdateMs: 8},
	}
}

// A transaction log written before the framing moved to wal/recordlog opens with the same
// records, and the framing writes the same bytes.
func TestStoreOpensOldLog(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", logName))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, logName), old, 0o644); err != nil {
		t.Fatal(err)
	}
	st, recs, err := OpenStore(wal.OSFS(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if want := fixtureRecords(); !reflect.DeepEqual(recs, want) {
		t.Fatalf("records of the old log:\n%+v\nwant\n%+v", recs, want)
	}
	var again []byte
	for _, r := range fixtureRecords() {
		again = appendFrame(again, r)
	}
	if !bytes.Equal(again, old) {
		t.Fatalf("framing writes\n%x\nthe old log is\n%x", again, old)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, logName)); !bytes.Equal(now, old) {
		t.Fatalf("opening a good log changed it")
	}
}
