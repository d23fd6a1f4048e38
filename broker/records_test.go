package broker

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func (e *env) deleteRecords(topic string, part int32, off int64) brokerop.DeleteRecordsPartitionResp {
	e.t.Helper()
	resp, err := e.b.DeleteRecords(context.Background(), &brokerop.DeleteRecordsReq{Partitions: []brokerop.DeleteRecordsPartition{{Topic: topic, Partition: part, Offset: off}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Partitions[0]
}

func (e *env) earliest(topic string, part int32, ts int64) int64 {
	e.t.Helper()
	resp, err := e.b.ListOffsets(context.Background(), &brokerop.ListOffsetsReq{Partitions: []brokerop.ListOffsetsPartition{{Topic: topic, Partition: part, Timestamp: ts}}})
	if err != nil || resp.Partitions[0].ErrorCode != 0 {
		e.t.Fatalf("list offsets: %v %+v", err, resp)
	}
	return resp.Partitions[0].Offset
}

// DeleteRecords moves the start durably (a crash right after the answer keeps it), reclaims
// whole segments below it and keeps everything from it on.
func TestDeleteRecordsDurableAndReclaims(t *testing.T) {
	e := newEnv(t)
	e.create("t", 1, map[string]string{"segment.bytes": "1024"})
	const n = 100
	for i := range n {
		e.mustProduce(-1, "t", 0, makeBatch(false, vals(int64(1000+i), fmt.Sprintf("v%03d-%0100d", i, 0))...))
	}
	segsBefore := e.partLog("t", 0).Stats().Segments
	if segsBefore < 5 {
		t.Fatalf("%d segments; the test needs several", segsBefore)
	}
	if r := e.deleteRecords("t", 0, 60); r.ErrorCode != 0 || r.LowWatermark != 60 {
		t.Fatalf("delete records: %+v", r)
	}
	if segs := e.partLog("t", 0).Stats().Segments; segs >= segsBefore {
		t.Fatalf("segments %d after delete, %d before: none reclaimed", segs, segsBefore)
	}
	if s := e.partLog("t", 0).StartOffset(); s > 60 {
		t.Fatalf("wal start %d past the log start 60: records lost", s)
	}
	e.crash(nil)
	if got := e.earliest("t", 0, tsEarliest); got != 60 {
		t.Fatalf("earliest after crash %d, want 60", got)
	}
	if got := e.earliest("t", 0, 1000); got != 60 { // the first record's timestamp lies below the start
		t.Fatalf("offset for an old timestamp %d, want the start 60", got)
	}
	if r := e.fetch("t", 0, 59, 1<<20); r.ErrorCode != kerr.OffsetOutOfRange.Code || r.LogStartOffset != 60 {
		t.Fatalf("fetch below the start: %+v", r)
	}
	offs, _ := e.readAll("t", 0, 60)
	if len(offs) != n-60 || offs[0] != 60 {
		t.Fatalf("read %d records from 60 (first %v)", len(offs), offs[:1])
	}
	if r := e.produce(-1, "t", 0, makeBatch(false, vals(5000, "x")...)); r.LogStartOffset != 60 || r.BaseOffset != n {
		t.Fatalf("produce answer %+v", r)
	}
	// Errors and no-ops.
	for _, c := range []struct {
		off   int64
		code  int16
		low   int64
		topic string
		part  int32
	}{{n + 2, kerr.OffsetOutOfRange.Code, -1, "t", 0}, {-2, kerr.OffsetOutOfRange.Code, -1, "t", 0},
		{10, 0, 60, "t", 0}, {1, kerr.UnknownTopicOrPartition.Code, -1, "t", 3}, {1, kerr.UnknownTopicOrPartition.Code, -1, "x", 0}} {
		if r := e.deleteRecords(c.topic, c.part, c.off); r.ErrorCode != c.code || r.LowWatermark != c.low {
			t.Fatalf("delete %s-%d to %d: %+v, want code %d low %d", c.topic, c.part, c.off, r, c.code, c.low)
		}
	}
}

// A corrupt log_start file fails the partition's open (storage error) instead of serving
// records that were deleted.
func TestDeleteRecordsCorruptStartFile(t *testing.T) {
	e := newTopicEnv(t, 1)
	e.mustProduce(-1, "t", 0, makeBatch(false, vals(1, "a", "b", "c")...))
	if r := e.deleteRecords("t", 0, 2); r.ErrorCode != 0 || r.LowWatermark != 2 {
		t.Fatalf("delete records: %+v", r)
	}
	p := e.b.lookup("t", 0)
	path := filepath.Join(p.dir(), logStartFile)
	e.b.Close()
	if err := writeFileAtomic(e.fs, path, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	e.open()
	if r := e.fetch("t", 0, 0, 1<<20); r.ErrorCode != kerr.KafkaStorageError.Code {
		t.Fatalf("fetch with a corrupt log_start: %+v", r)
	}
}

// Deletes racing appends never lose a record at or above the start (the reclaim runs under
// the partition's write lock).
func TestDeleteRecordsConcurrentProduce(t *testing.T) {
	e := newEnv(t)
	e.create("t", 1, map[string]string{"segment.bytes": "512"})
	const n = 300
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			e.mustProduce(1, "t", 0, makeBatch(false, vals(int64(i), fmt.Sprintf("v%03d-%040d", i, 0))...))
		}
	})
	for off := int64(0); off < n-50; off += 7 {
		hw := e.partLog("t", 0).NextOffset()
		r := e.deleteRecords("t", 0, min(off, hw))
		if r.ErrorCode != 0 {
			t.Errorf("delete to %d: %+v", off, r)
		}
	}
	wg.Wait()
	start := e.earliest("t", 0, tsEarliest)
	if s := e.partLog("t", 0).StartOffset(); s > start {
		t.Fatalf("wal start %d past the log start %d", s, start)
	}
	offs, vs := e.readAll("t", 0, start)
	if int64(len(offs)) != n-start {
		t.Fatalf("%d records from %d, want %d", len(offs), start, n-start)
	}
	for i, o := range offs {
		if o != start+int64(i) || vs[i][:4] != fmt.Sprintf("v%03d", o) {
			t.Fatalf("record %d: offset %d value %q", i, o, vs[i])
		}
	}
}

func FuzzDecodeLogStart(f *testing.F) {
	f.Add(encodeLogStart(0))
	f.Add(encodeLogStart(1 << 40))
	f.Add([]byte("garbage"))
	fuzzSameBytes(f, decodeLogStart, encodeLogStart, func(off int64) bool { return off >= 0 })
}

// A delete right after the first appends (the partition's files and directory may exist
// only in the journal yet) is durable across a crash.
func TestDeleteRecordsFreshPartitionCrash(t *testing.T) {
	e := newTopicEnv(t, 2)
	e.mustProduce(-1, "t", 1, makeBatch(false, vals(1, "a", "b", "c", "d")...))
	if r := e.deleteRecords("t", 1, 3); r.ErrorCode != 0 || r.LowWatermark != 3 {
		t.Fatalf("delete records: %+v", r)
	}
	e.crash(nil)
	if got := e.earliest("t", 1, tsEarliest); got != 3 {
		t.Fatalf("earliest after crash %d, want 3", got)
	}
	if offs, vs := e.readAll("t", 1, 3); len(offs) != 1 || vs[0] != "d" {
		t.Fatalf("after crash: %v %v", offs, vs)
	}
}
