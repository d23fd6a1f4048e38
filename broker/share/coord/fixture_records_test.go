package coord

import (
	"path/filepath"
	"testing"

	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/wal/recordlog/recordlogtest"
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

// A log written before the framing moved to wal/recordlog opens with the same records, and
// the framing writes the same bytes.
func TestStoreOpensOldLog(t *testing.T) {
	recordlogtest.OpensOldLog(t, filepath.Join("testdata", logName), logName, &format, fixtureRecords(), OpenStore)
}

// frameHead is the bytes of a log frame before its payload (length and checksum).
const frameHead = 8

// appendFrame appends r's frame in the log (for tests that write logs byte by byte).
func appendFrame(b []byte, r *share.Record) []byte { return format.AppendFrame(b, r) }
