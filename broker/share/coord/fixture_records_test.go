package coord

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/wal"
)

// fixtureRecords are the records in testdata/share.log, a log written by the store code as
// it was before its framing moved to wal/recordlog (commit b2be0a6): the file must still
// open and the framing must still write it byte for byte.
func fixtureRecords() []*share.Record {
	return append(recs(),
		&share.Record{Kind: share.KindPartition, Group: "g", Topic: "q", Partition: 2, StateEpoch: 3, Start: 40,
			Runs: []share.Run{{First: 40, Last: 41, State: share.Acknowledged, Count: 1}, {First: 42, Last: 50, State: share.Archived, Count: 5}}},
		&share.Record{Kind: share.KindDeletePartition, Group: "g", Topic: "old", Partition: 0},
		&share.Record{Kind: share.KindDeleteGroup, Group: "gone"})
}

// A share-group state log written before the framing moved to wal/recordlog opens with the same
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
	st, recs, err := OpenStore(wal.OSFS(), dir, slog.New(slog.DiscardHandler))
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
