package txn

import (
	"path/filepath"
	"testing"

	"github.com/meshkafka/meshkafka/wal/recordlog/recordlogtest"
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

// A log written before the framing moved to wal/recordlog opens with the same records, and
// the framing writes the same bytes.
func TestStoreOpensOldLog(t *testing.T) {
	recordlogtest.OpensOldLog(t, filepath.Join("testdata", logName), logName, &format, fixtureRecords(), OpenStore)
}

// appendFrame appends t's frame in the log (for tests that write logs byte by byte).
func appendFrame(b []byte, t *Txn) []byte { return format.AppendFrame(b, t) }
