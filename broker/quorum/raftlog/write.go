package raftlog

import (
	"fmt"
	"path/filepath"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/wal"
)

// writable reports why the Log takes no writes, if it does not. Called with wmu held.
func (l *Log) writable() error {
	switch {
	case l.closed:
		return ErrClosed
	case l.err != nil:
		return l.err
	}
	return nil
}

// fail makes err sticky and returns it. Called with wmu held.
func (l *Log) fail(op string, err error) error {
	l.err = fmt.Errorf("raftlog: %s failed, the log takes no more writes (reopen to recover what is durable): %w", op, err)
	if l.log != nil {
		l.log.Error("raftlog: write failed", "op", op, "err", err)
	}
	return l.err
}

func (l *Log) publish(s state) {
	l.mu.Lock()
	l.st = s
	l.mu.Unlock()
}

// Save makes hs, ents and snap durable (one fsync for the hard state and entries together)
// before it returns, applied in the order snap, ents, hs with raft.MemoryStorage's semantics
// (ApplySnapshot, Append, SetHardState): a snapshot replaces the whole log, entries replace a
// conflicting suffix. A nil or empty hs or snap is not saved; a Save with nothing to save
// does nothing. The Log keeps the entries (as MemoryStorage.Append does): they must not be
// modified afterwards.
//
// Input raft never produces (a snapshot not newer than the current one: raft.ErrSnapOutOfDate;
// entries that are not consecutive or leave a gap; a hard state whose term goes back or
// whose vote changes within its term) fails with nothing written. A failed write or fsync
// fails this and every later write (see doc.go); the state served stays what it was.
func (l *Log) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	hasSnap := snap != nil && !raft.IsEmptySnap(snap)
	hasHS := !raft.IsEmptyHardState(hs)
	if !hasSnap && !hasHS && len(ents) == 0 {
		return nil
	}
	cur := l.st
	b := &batch{ents: ents}
	for i := 1; i < len(ents); i++ {
		if ents[i].GetIndex() != ents[i-1].GetIndex()+1 {
			return fmt.Errorf("raftlog: save: entry %d has index %d after %d", i, ents[i].GetIndex(), ents[i-1].GetIndex())
		}
	}
	if hasSnap {
		if si := cur.snap.GetMetadata().GetIndex(); si != 0 && si >= snap.GetMetadata().GetIndex() {
			return raft.ErrSnapOutOfDate
		}
		b.flags |= flagReset | flagSnapshot
		b.index, b.term = snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
		b.mark = point{b.index, b.term}
	}
	if hasHS {
		if old := cur.hs; old != nil {
			if hs.GetTerm() < old.GetTerm() {
				return fmt.Errorf("raftlog: save: hard state term %d below the saved term %d", hs.GetTerm(), old.GetTerm())
			}
			if hs.GetTerm() == old.GetTerm() && old.GetVote() != 0 && hs.GetVote() != old.GetVote() {
				return fmt.Errorf("raftlog: save: vote for %d in term %d, which already voted for %d", hs.GetVote(), hs.GetTerm(), old.GetVote())
			}
		}
		b.flags |= flagHard
		b.hs = proto.CloneOf(hs)
	}
	next, err := cur.apply(b)
	if err != nil {
		return fmt.Errorf("raftlog: save: %w", err)
	}
	if hasSnap {
		next.snap = raftpb.EnsureSnapshot(proto.CloneOf(snap))
		if err := l.writeSnapshot(next.snap, snapFromLeader); err != nil {
			return err
		}
		// The snapshot replaced the whole log: a new segment with the new state lets the
		// old ones go.
		err = l.roll(next)
	} else {
		err = l.write(b, next)
	}
	if err != nil {
		return err
	}
	l.saves.Add(1)
	l.publish(next)
	return nil
}

// CreateSnapshot records a snapshot of the state machine at index (an entry the log holds;
// data is the state machine's image as of it, cs the configuration then, nil: the previous
// snapshot's) and, unless Options.KeepEntries < 0, compacts the log to index-KeepEntries.
// An index not newer than the current snapshot fails with raft.ErrSnapOutOfDate, one below
// the compaction point with raft.ErrCompacted. Both the snapshot file and the compaction
// are durable when it returns.
func (l *Log) CreateSnapshot(index uint64, cs *raftpb.ConfState, data []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	cur := l.st
	if index <= cur.snap.GetMetadata().GetIndex() {
		return raft.ErrSnapOutOfDate
	}
	if index > cur.lastIndex() {
		return fmt.Errorf("raftlog: snapshot at %d past the last index %d: %w", index, cur.lastIndex(), raft.ErrUnavailable)
	}
	term, err := cur.term(index)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = cur.snap.GetMetadata().GetConfState()
	}
	snap := raftpb.EnsureSnapshot(&raftpb.Snapshot{
		Data:     data,
		Metadata: &raftpb.SnapshotMetadata{Index: new(index), Term: new(term), ConfState: proto.CloneOf(cs)},
	})
	if err := l.writeSnapshot(snap, 0); err != nil {
		return err
	}
	next := cur
	next.snap = snap
	l.publish(next)
	keep := uint64(l.opts.KeepEntries)
	if l.opts.KeepEntries < 0 || index <= keep || index-keep <= next.offset() {
		return nil
	}
	return l.compact(index - keep)
}

// Compact discards the entries up to and including index (raft.MemoryStorage.Compact: the
// term of entry index stays known); it is durable when Compact returns. An index at or
// below the compaction point fails with raft.ErrCompacted, one past the last index with an
// error wrapping raft.ErrUnavailable. Compacting past the snapshot is allowed, as in
// MemoryStorage, but leaves followers that need those entries without a way to catch up.
func (l *Log) Compact(index uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.writable(); err != nil {
		return err
	}
	return l.compact(index)
}

func (l *Log) compact(index uint64) error {
	cur := l.st
	if index <= cur.offset() {
		return raft.ErrCompacted
	}
	if index > cur.lastIndex() {
		return fmt.Errorf("raftlog: compact to %d past the last index %d: %w", index, cur.lastIndex(), raft.ErrUnavailable)
	}
	term, _ := cur.term(index)
	b := &batch{flags: flagCompact, index: index, term: term}
	next, err := cur.apply(b)
	if err != nil {
		return fmt.Errorf("raftlog: compact: %w", err)
	}
	if err := l.write(b, next); err != nil {
		return err
	}
	l.publish(next)
	return nil
}

// Close makes a clean end: it appends an empty record (so the next Open can tell damage
// to the last write from a torn one) and closes the files. It returns the sticky error of
// a failed write, if any. Reads keep answering from memory after Close; writes fail with
// ErrClosed. Close may be called more than once.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.seg == nil {
		return l.err
	}
	if l.err == nil {
		if err := l.appendRecord(&batch{}); err != nil {
			l.fail("close", err)
		}
	}
	if err := l.seg.Close(); err != nil && l.err == nil {
		l.err = err
	}
	l.seg = nil
	return l.err
}

// write makes b durable: appended to the active segment, or as a new segment holding next
// when the active one has grown past Options.SegmentBytes and twice the live entries.
func (l *Log) write(b *batch, next state) error {
	payload, err := encodeBatch(nil, b)
	if err != nil {
		return err
	}
	if len(payload)+recHeaderSize > maxRecordBytes {
		return fmt.Errorf("raftlog: a write of %d bytes: more than a record holds", len(payload))
	}
	// The base record of a new segment: the live entries, their length prefixes, the
	// header, reset point, mark and hard state.
	baseSize := next.live + 4*int64(len(next.ents)) + 128
	if n := l.size + recHeaderSize + int64(len(payload)); l.seg == nil || n > l.opts.SegmentBytes && n > 2*baseSize {
		return l.roll(next)
	}
	if err := l.appendPayload(payload); err != nil {
		return l.fail("write", err)
	}
	return nil
}

// appendRecord encodes b and appends it with one write and one fsync.
func (l *Log) appendRecord(b *batch) error {
	payload, err := encodeBatch(nil, b)
	if err != nil {
		return err
	}
	return l.appendPayload(payload)
}

// appendPayload appends one batch record to the active segment and fsyncs it. On failure
// the segment is cut back to its durable size: after a failed fsync Linux has marked the
// failed pages clean, so an in-process reopen would otherwise read them as if they were
// durable ("fsyncgate").
func (l *Log) appendPayload(payload []byte) error {
	rec := appendRecord(nil, kindBatch, l.size, payload)
	_, err := l.seg.WriteAt(rec, l.size)
	if err == nil {
		l.fsyncs.Add(1)
		err = l.seg.Sync()
	}
	if err != nil {
		if terr := l.seg.Truncate(l.size); terr == nil {
			l.fsyncs.Add(1)
			_ = l.seg.Sync() // best effort: the error that matters is err
		}
		return err
	}
	l.size += int64(len(rec))
	return nil
}

// roll writes a new segment holding s (its base record), makes it durable (file and
// directory fsync) and removes the older segments. Old segments need no directory fsync:
// if their removal is lost, Open replays the newest intact segment and removes them again.
func (l *Log) roll(s state) error {
	payload, err := encodeBatch(nil, s.base())
	if err != nil {
		return err
	}
	if len(payload)+recHeaderSize > maxRecordBytes {
		return fmt.Errorf("raftlog: %d bytes of live entries: more than a record holds (compact the log)", len(payload))
	}
	rec := appendRecord(nil, kindBatch, 0, payload)
	seq := l.segSeq + 1
	name := filepath.Join(l.dir, segmentName(seq))
	f, err := l.fs.OpenFile(name, osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		return l.fail("roll", err)
	}
	_, err = f.WriteAt(rec, 0)
	if err == nil {
		l.fsyncs.Add(1)
		err = f.Sync()
	}
	if err == nil {
		l.fsyncs.Add(1)
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		// Not durable (or not known to be): the previous segment stays the one to replay.
		f.Close()
		_ = l.fs.Remove(name)
		return l.fail("roll", err)
	}
	old, oldSeq := l.seg, l.segSeq
	l.seg, l.segSeq, l.size = f, seq, int64(len(rec))
	l.rolls.Add(1)
	if old != nil {
		old.Close()
	}
	if oldSeq > 0 {
		l.removeSegmentsBelow(seq)
	}
	return nil
}

// removeSegmentsBelow removes the segments older than seq, best effort (Open removes what
// is left).
func (l *Log) removeSegmentsBelow(seq uint64) {
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return
	}
	for _, n := range names {
		if s, ok := parseSegmentName(n); ok && s < seq {
			if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil && l.log != nil {
				l.log.Warn("raftlog: removing an old segment", "file", n, "err", err)
			}
		}
	}
}

// Snapshot file flags.
const (
	// snapFromLeader: the snapshot came with a Save and replaces the log (a reset to it
	// follows in the log; Open applies the reset if it is not there).
	snapFromLeader = 1 << 0
)

// writeSnapshot replaces the snapshot file atomically: a temporary file written and
// fsynced, renamed over it, the directory fsynced. Its payload is flags u8 and the
// protobuf-encoded snapshot.
func (l *Log) writeSnapshot(snap *raftpb.Snapshot, flags uint8) error {
	payload, err := marshal.MarshalAppend([]byte{flags}, snap)
	if err != nil {
		return fmt.Errorf("raftlog: marshal snapshot: %w", err)
	}
	if len(payload)+recHeaderSize > maxRecordBytes {
		return fmt.Errorf("raftlog: snapshot of %d bytes: more than a record holds", len(payload))
	}
	if err := writeFileAtomic(l.fs, l.dir, snapshotFile, appendRecord(nil, kindSnapshot, 0, payload), &l.fsyncs); err != nil {
		return l.fail("snapshot", err)
	}
	return nil
}

// writeFileAtomic replaces dir/name with data: written to name.tmp, fsynced, renamed,
// directory fsynced. On failure the temporary file is removed (best effort); if the rename
// happened, whether it is durable is unknown.
func writeFileAtomic(fsys wal.FS, dir, name string, data []byte, fsyncs interface{ Add(int64) int64 }) error {
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := fsys.OpenFile(tmp, osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		fsyncs.Add(1)
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		_ = fsys.Remove(tmp)
		return err
	}
	fsyncs.Add(1)
	return fsys.SyncDir(dir)
}
