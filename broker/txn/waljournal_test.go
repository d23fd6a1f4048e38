package txn

import (
	"fmt"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

func openWALJournal(t *testing.T, fs *waltest.CrashFS) (*wal.Store, *WALJournal, []*Txn) {
	t.Helper()
	st, err := wal.OpenStore("/d", wal.StoreOptions{FS: fs, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	j, recs, err := OpenWALJournal(st, "/d/txn/journal", fs, "/d/txn", nil)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return st, j, recs
}

// The journal compacts itself once it holds more than CompactBytes, mostly superseded:
// the state is written after the old records, then the segments below it are deleted; what
// replay rebuilds after a power cut is the latest record of every id, and written-only
// records (Write without Sync) are durable once a Sync covers them.
func TestWALJournalCompactsAndReplays(t *testing.T) {
	fs := waltest.NewCrashFS()
	st, j, recs := openWALJournal(t, fs)
	if len(recs) != 0 {
		t.Fatalf("new journal replayed %d records", len(recs))
	}
	m := NewMachine(Config{})
	var last int64
	for i := range 100_000 {
		r := &Txn{ID: fmt.Sprintf("id-%d", i%10), ProducerID: int64(i % 10), Epoch: int16(i / 10 % 1000), TimeoutMs: 60000,
			State: Ongoing, UpdateMs: int64(i), Partitions: []TP{{Topic: "topic-with-a-longer-name", Partition: int32(i)}}}
		pos, err := j.Write(r)
		if err != nil {
			t.Fatal(err)
		}
		m.Apply(r)
		if i%1000 == 999 {
			if err := j.Sync(pos); err != nil {
				t.Fatal(err)
			}
			if err := j.MaybeCompact(m.All()); err != nil {
				t.Fatal(err)
			}
		}
		last = pos
	}
	if err := j.Sync(last); err != nil {
		t.Fatal(err)
	}
	// Without compaction the log would hold every record written.
	if written, size, bound := j.l.NextOffset()*int64(len(AppendRecord(nil, m.All()[0]))), j.l.Size(), int64(CompactBytes+walJournalSegment); written <= bound || size > bound {
		t.Fatalf("journal of %d bytes after %d written (bound %d): not compacted", size, written, bound)
	}
	// One more record, written only: lost by the power cut.
	if _, err := j.Write(&Txn{ID: "id-0", ProducerID: 99, State: Empty}); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	j.Close()
	st.Close()

	st, j, recs = openWALJournal(t, fs)
	defer st.Close()
	defer j.Close()
	got := NewMachine(Config{})
	for _, r := range recs {
		got.Apply(r)
	}
	want, have := m.All(), got.All()
	if len(have) != len(want) {
		t.Fatalf("replayed %d ids, want %d", len(have), len(want))
	}
	for i := range want {
		if fmt.Sprint(*have[i]) != fmt.Sprint(*want[i]) {
			t.Fatalf("id %s: replayed %+v, want %+v", want[i].ID, *have[i], *want[i])
		}
	}
}
