package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// partitionSegment returns the path of a partition's first segment file.
func (e *env) partitionSegment(part int) string {
	e.t.Helper()
	suffix := fmt.Sprintf("/%d/00000000000000000000.log", part)
	for _, f := range e.fs.Files() {
		if strings.HasPrefix(f, "/data/topics/") && strings.HasSuffix(f, suffix) {
			return f
		}
	}
	e.t.Fatalf("no segment file for partition %d in %v", part, e.fs.Files())
	return ""
}

// writeBack makes a file's current bytes durable, as the kernel's writeback eventually does.
func (e *env) writeBack(name string) {
	e.t.Helper()
	f, err := e.fs.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		e.t.Fatal(err)
	}
	f.Close()
	// And its directory entry (a new partition's segment file is not fsynced into its
	// directory before the journal's first checkpoint).
	if err := e.fs.SyncDir(filepath.Dir(name)); err != nil {
		e.t.Fatal(err)
	}
}

// A flipped bit inside fsynced, acknowledged data is never cut off as a torn tail (issue #14
// item 6; before the commit journal, Open cut the partition at the damaged entry and handed
// its offsets out again): after kill -9 every acknowledged record is still served at its
// offset and the next produce continues after them.
func TestBitFlipInAckedDataIsNotCut(t *testing.T) {
	e := newTopicEnv(t, 1)
	const n = 1000
	for i := range n {
		if off := e.mustProduce(-1, "t", 0, makeBatch(false, vals(int64(i), fmt.Sprint("v", i))...)); off != int64(i) {
			t.Fatalf("offset %d, want %d", off, i)
		}
	}
	// A flush hands the partition's buffered entries to its file (an acknowledged produce
	// leaves them buffered: the commit journal holds them), and writeback makes them durable.
	if offs, _ := e.readAll("t", 0, 0); len(offs) != n {
		t.Fatalf("%d records before the crash, want %d", len(offs), n)
	}
	if err := e.b.lookup("t", 0).log.Flush(); err != nil {
		t.Fatal(err)
	}
	seg := e.partitionSegment(0)
	e.writeBack(seg)
	e.fs.Crash() // kill -9: no Close
	// Flip one bit in the record data of entry 10.
	b, _ := e.fs.ReadFile(seg)
	pos := 0
	for range 10 {
		pos += 32 + int(binary.BigEndian.Uint32(b[pos+4:pos+8]))
	}
	if err := e.fs.FlipBit(seg, int64(pos+32+40)*8); err != nil {
		t.Fatal(err)
	}
	e.b.Close()
	b2, err := Open(e.cfg)
	if err != nil {
		// Refusing to serve damaged data is allowed; cutting it is not.
		t.Logf("Open refused the damaged partition: %v", err)
		return
	}
	e.b = b2
	offs, vs := e.readAll("t", 0, 0)
	if len(offs) != n {
		t.Fatalf("%d records after a bit flip in record 10, want all %d (acknowledged offsets cut)", len(offs), n)
	}
	for i := range offs {
		if offs[i] != int64(i) || vs[i] != fmt.Sprint("v", i) {
			t.Fatalf("record %d: offset %d value %q", i, offs[i], vs[i])
		}
	}
	if off := e.mustProduce(-1, "t", 0, makeBatch(false, vals(1, "next")...)); off != n {
		t.Fatalf("next offset %d, want %d (offsets reused)", off, n)
	}
}

// After a failed fsync ("fsyncgate": Linux drops the failed pages' dirty state, a retried
// fsync succeeds without writing them) a batch answered KAFKA_STORAGE_ERROR is never served
// as durable afterwards: what a reopen serves survives a power cut.
func TestFailedFsyncIsNotAcknowledgedLater(t *testing.T) {
	e := newTopicEnv(t, 1)
	e.mustProduce(-1, "t", 0, makeBatch(false, vals(1, "acked")...))
	e.fs.FailSyncs(1, errors.New("EIO"))
	if r := e.produce(-1, "t", 0, makeBatch(false, vals(2, "failed")...)); r.ErrorCode == 0 {
		t.Fatal("produce over a failed fsync was acknowledged")
	}
	// The node does not keep going as if the data were durable.
	if r := e.produce(-1, "t", 0, makeBatch(false, vals(3, "after")...)); r.ErrorCode == 0 {
		t.Fatal("produce after a failed fsync was acknowledged")
	}
	// The broker stops (Config.OnStop tells the binary to exit, so that a restart recovers).
	if err := e.b.Err(); err == nil {
		t.Fatal("the broker keeps running after its journal failed an fsync")
	}
	e.b.Close() // reports the failure; the data directory is reopened in-process
	e.open()
	_, served := e.readAll("t", 0, 0)
	e.fs.Crash()
	e.b.Close()
	e.open()
	_, survived := e.readAll("t", 0, 0)
	if !slices.Equal(served, survived) {
		t.Fatalf("served %v after the failed fsync, but only %v survived a power cut", served, survived)
	}
	if !slices.Contains(survived, "acked") {
		t.Fatalf("acknowledged record lost: %v", survived)
	}
}

// One acks=all produce spread over 100 partitions costs one fsync (the commit journal's),
// not one per partition (issue #14 item 1).
func TestProduceOverManyPartitionsIsOneFsync(t *testing.T) {
	e := newTopicEnv(t, 100)
	req := &brokerop.ProduceReq{Acks: -1}
	for p := range int32(100) {
		req.Partitions = append(req.Partitions, brokerop.ProducePartition{
			Topic: "t", Partition: p, Records: makeBatch(false, vals(int64(p), fmt.Sprint("v", p))...)})
	}
	for p := range int32(100) {
		e.partLog("t", p) // logs open on first use: create them before counting
	}
	e.fs.ResetStats()
	e.produceAll(req)
	if got := e.fs.Stats().Syncs; got != 1 {
		t.Fatalf("%d fsyncs for one acks=all produce over 100 partitions, want 1", got)
	}
	// And it is durable: kill -9 and every record is there.
	e.crash(nil)
	for p := range int32(100) {
		if _, vs := e.readAll("t", p, 0); !slices.Equal(vs, []string{fmt.Sprint("v", p)}) {
			t.Fatalf("partition %d after a crash: %v", p, vs)
		}
	}
}
