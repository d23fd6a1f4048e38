package broker

// DeleteRecords, DescribeLogDirs and OffsetForLeaderEpoch.
//
// DeleteRecords moves a partition's log start offset up. The new start is written to
// <partition dir>/log_start (8-byte offset, CRC-32C; replaced atomically and fsynced before
// the answer), so it survives a restart; reads below it answer OFFSET_OUT_OF_RANGE and
// ListOffsets earliest answers it. The partition's effective log start offset is the larger
// of that and the wal's (the base of its oldest segment, which retention moves). Sealed
// segments whose every record lies below the new start are then deleted (Log.Retain by
// bytes, under the partition's write lock so that no append changes the sizes meanwhile);
// the segment holding the new start stays whole, as in Kafka.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/wal"
)

const logStartFile = "log_start"

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// encodeLogStart is the log_start file: offset int64 | crc32c(offset) uint32, big-endian.
func encodeLogStart(off int64) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(off))
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
}

var errBadLogStart = errors.New("broker: corrupt log_start file")

// decodeLogStart reads a log_start file.
func decodeLogStart(b []byte) (int64, error) {
	if len(b) != 12 || crc32.Checksum(b[:8], crc32c) != binary.BigEndian.Uint32(b[8:]) {
		return 0, errBadLogStart
	}
	off := int64(binary.BigEndian.Uint64(b))
	if off < 0 {
		return 0, errBadLogStart
	}
	return off, nil
}

// loadLogStart reads p's log_start file (if any) into p.logStart. Callers hold p.logMu for
// writing (the log is being opened).
func (b *Broker) loadLogStart(p *partition) error {
	buf, ok, err := readSmallFile(b.fs, filepath.Join(p.dir(), logStartFile), 64)
	if err != nil || !ok {
		return err
	}
	off, err := decodeLogStart(buf)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(p.dir(), logStartFile), err)
	}
	p.logStart.Store(off)
	return nil
}

// startOffset is p's log start offset: the wal's, or above it the one DeleteRecords set
// (never past the log end).
func (p *partition) startOffset(l *wal.Log) int64 {
	return min(max(l.StartOffset(), p.logStart.Load()), l.NextOffset())
}

// DeleteRecords moves each partition's log start offset to the given offset (-1: the high
// watermark). An offset above the high watermark or below -1 is OFFSET_OUT_OF_RANGE; one at
// or below the current start changes nothing. The answer's low watermark is the start after
// the call.
func (b *Broker) DeleteRecords(ctx context.Context, req *brokerop.DeleteRecordsReq) (*brokerop.DeleteRecordsResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if err := b.Err(); err != nil {
		return nil, err
	}
	b.adminMu.Lock() // one log_start writer per partition at a time
	defer b.adminMu.Unlock()
	resp := &brokerop.DeleteRecordsResp{Partitions: make([]brokerop.DeleteRecordsPartitionResp, len(req.Partitions))}
	for i := range req.Partitions {
		dp := &req.Partitions[i]
		r := &resp.Partitions[i]
		*r = brokerop.DeleteRecordsPartitionResp{Topic: dp.Topic, Partition: dp.Partition, LowWatermark: -1}
		p := b.lookup(dp.Topic, dp.Partition)
		if p == nil || p.deleted.Load() {
			r.ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		if p.replicated() { // the log start moves through raft (replicated_records.go)
			r.ErrorCode, r.LowWatermark = b.deleteRecordsReplicated(ctx, p, dp.Offset, req.TimeoutMs)
			continue
		}
		r.ErrorCode, r.LowWatermark = b.deleteRecords(p, dp.Offset)
	}
	return resp, nil
}

func (b *Broker) deleteRecords(p *partition, off int64) (int16, int64) {
	l, err := b.useLog(p, false)
	if err != nil {
		p.logMu.RUnlock()
		return b.storageError(p, "delete records", err), -1
	}
	if l == nil { // never written: an empty log at 0
		p.logMu.RUnlock()
		if off != 0 && off != -1 {
			return kerr.OffsetOutOfRange.Code, -1
		}
		return 0, 0
	}
	hw, start := l.NextOffset(), p.startOffset(l)
	if off == -1 {
		off = hw
	}
	if off < 0 || off > hw {
		p.logMu.RUnlock()
		return kerr.OffsetOutOfRange.Code, -1
	}
	if off <= start {
		p.logMu.RUnlock()
		return 0, start
	}
	err = b.writeLogStart(p, off)
	if err == nil {
		p.logStart.Store(off)
	}
	p.logMu.RUnlock()
	if err != nil {
		return b.storageError(p, "write log start", err), -1
	}
	if err := b.reclaimBelow(p, off); err != nil && !p.deleted.Load() {
		// The start moved durably; the disk space comes back with retention or the next call.
		b.log.Warn("broker: delete records: segments not reclaimed", "topic", p.t.name, "partition", p.index, "err", err)
	}
	return 0, off
}

// writeLogStart stores p's log start offset durably. The partition directory may not exist
// yet (the wal creates a log's directory at its first flush and makes its entry durable at
// the first checkpoint): it is created, and its entry made durable, first.
func (b *Broker) writeLogStart(p *partition, off int64) error {
	if err := b.fs.MkdirAll(p.dir(), 0o755); err != nil {
		return err
	}
	if err := b.fs.SyncDir(p.t.dir); err != nil {
		return err
	}
	return writeFileAtomic(b.fs, filepath.Join(p.dir(), logStartFile), encodeLogStart(off))
}

// reclaimBelow deletes the sealed segments of p whose records all lie below off.
func (b *Broker) reclaimBelow(p *partition, off int64) error {
	p.lockLogForWrite()
	defer p.logMu.Unlock()
	l := p.log
	if l == nil || p.deleted.Load() {
		return nil
	}
	names, err := b.fs.ReadDir(p.dir())
	if err != nil {
		return err
	}
	var bases []int64
	for _, n := range names {
		stem, ok := strings.CutSuffix(n, ".log")
		if !ok || len(stem) != 20 {
			continue
		}
		if base, err := strconv.ParseInt(stem, 10, 64); err == nil {
			bases = append(bases, base)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	var doomed int64 // bytes of the segments that end at or below off (never the last one)
	for i := 0; i+1 < len(bases) && bases[i+1] <= off; i++ {
		size, err := fileSize(b.fs, filepath.Join(p.dir(), fmt.Sprintf("%020d.log", bases[i])))
		if err != nil {
			return err
		}
		doomed += size
	}
	if doomed == 0 {
		return nil
	}
	// Retain by bytes deletes oldest segments while what remains is at least the limit:
	// exactly the doomed ones (no append runs meanwhile: logMu is write-held).
	if _, err := l.Retain(-1, l.Size()-doomed); err != nil {
		return err
	}
	if s := l.StartOffset(); s > off {
		return fmt.Errorf("reclaim moved the wal start to %d past the log start %d", s, off)
	}
	return nil
}

func fileSize(fsys wal.FS, name string) (int64, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Size()
}

// dirLogBytes sums the segment .log files of a partition directory (a log not open now).
func dirLogBytes(fsys wal.FS, dir string) (int64, error) {
	names, err := fsys.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	var n int64
	for _, name := range names {
		if strings.HasSuffix(name, ".log") {
			s, err := fileSize(fsys, filepath.Join(dir, name))
			if err != nil {
				return 0, err
			}
			n += s
		}
	}
	return n, nil
}

// DescribeLogDirs describes the broker's one data directory (Config.Dir): each partition's
// segment bytes and offset lag 0 (the only replica is the leader). Partitions asked about
// that do not exist are left out, as Kafka does. File system totals are not reported (-1).
func (b *Broker) DescribeLogDirs(ctx context.Context, req *brokerop.DescribeLogDirsReq) (*brokerop.DescribeLogDirsResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	dir := brokerop.LogDir{Path: b.cfg.Dir, TotalBytes: -1, UsableBytes: -1}
	if abs, err := filepath.Abs(b.cfg.Dir); err == nil {
		dir.Path = abs
	}
	add := func(p *partition) {
		size, err := b.partitionBytes(p)
		if err != nil {
			if !p.deleted.Load() {
				b.log.Warn("broker: describe log dirs", "topic", p.t.name, "partition", p.index, "err", err)
				dir.ErrorCode = kerr.KafkaStorageError.Code
			}
			return
		}
		dir.Partitions = append(dir.Partitions, brokerop.LogDirPartition{Topic: p.t.name, Partition: p.index, Size: size})
	}
	if req.All {
		for _, t := range b.sortedTopics() {
			for _, p := range *t.parts.Load() {
				if !p.deleted.Load() {
					add(p)
				}
			}
		}
	} else {
		for _, tp := range req.Partitions {
			if p := b.lookup(tp.Topic, tp.Partition); p != nil && !p.deleted.Load() {
				add(p)
			}
		}
	}
	return &brokerop.DescribeLogDirsResp{Dirs: []brokerop.LogDir{dir}}, nil
}

func (b *Broker) partitionBytes(p *partition) (int64, error) {
	p.logMu.RLock()
	defer p.logMu.RUnlock()
	switch {
	case p.log != nil:
		return p.log.Size(), nil
	case !p.onDisk:
		return 0, nil
	}
	return dirLogBytes(b.fs, p.dir())
}

// OffsetForLeaderEpoch answers for a single replica that has been leader at epoch 0 since
// the partition was created: epoch 0 ends at the log end offset; any other epoch is
// undefined (-1, -1), as Kafka answers an epoch above the latest one it knows.
func (b *Broker) OffsetForLeaderEpoch(ctx context.Context, req *brokerop.OffsetForLeaderEpochReq) (*brokerop.OffsetForLeaderEpochResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.OffsetForLeaderEpochResp{Partitions: make([]brokerop.OffsetForLeaderEpochPartitionResp, len(req.Partitions))}
	for i := range req.Partitions {
		op := &req.Partitions[i]
		r := &resp.Partitions[i]
		*r = brokerop.OffsetForLeaderEpochPartitionResp{Topic: op.Topic, Partition: op.Partition, LeaderEpoch: -1, EndOffset: -1}
		p := b.lookup(op.Topic, op.Partition)
		if p == nil || p.deleted.Load() {
			r.ErrorCode = kerr.UnknownTopicOrPartition.Code
			continue
		}
		if p.replicated() { // from the raft terms of the applied entries (replicated_read.go)
			g, _, code := p.serving(op.CurrentLeaderEpoch)
			if r.ErrorCode = code; g != nil {
				r.LeaderEpoch, r.EndOffset = g.endOffsetFor(op.LeaderEpoch)
			}
			continue
		}
		if op.CurrentLeaderEpoch > 0 {
			// A single-owner partition's leader epoch is always 0: a client that knows a
			// later one is ahead of this broker.
			r.ErrorCode = kerr.UnknownLeaderEpoch.Code
			continue
		}
		if op.LeaderEpoch != 0 {
			continue
		}
		l, err := b.useLog(p, false)
		switch {
		case err != nil:
			r.ErrorCode = b.storageError(p, "offset for leader epoch", err)
		case l == nil:
			r.LeaderEpoch, r.EndOffset = 0, 0
		default:
			r.LeaderEpoch, r.EndOffset = 0, l.NextOffset()
		}
		p.logMu.RUnlock()
	}
	return resp, nil
}
