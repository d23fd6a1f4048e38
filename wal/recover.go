package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path/filepath"
	"sort"
)

func (l *Log) open(recs []journalRecord) error {
	var names []string
	var err error
	if l.lazyDir {
		// Created by the first flush (ensureDir).
		if names, err = l.fs.ReadDir(l.dir); isNotExist(err) {
			names, err = nil, nil
			l.dirPending = true
		}
	} else if err = l.fs.MkdirAll(l.dir, 0o755); err == nil {
		names, err = l.fs.ReadDir(l.dir)
	}
	if err != nil {
		return err
	}
	// A cleaning interrupted by a crash: drop its uncommitted files, complete its swap.
	if changed, err := l.recoverCleaning(names); err != nil {
		return err
	} else if changed {
		if names, err = l.fs.ReadDir(l.dir); err != nil {
			return err
		}
	}
	logs := map[int64]bool{}
	idxFiles := map[int64]bool{}
	var bases []int64
	for _, n := range names {
		if b, suf, ok := parseSegmentName(n); ok && suf == logSuffix {
			logs[b] = true
			bases = append(bases, b)
		} else if ok {
			idxFiles[b] = true
		}
	}
	// Index files without their log are left over from an interrupted deletion.
	for _, n := range names {
		if b, suf, ok := parseSegmentName(n); ok && suf != logSuffix && !logs[b] {
			if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil {
				return err
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	if len(bases) == 0 {
		// A new log: create the first segment and make it and the directory itself durable.
		s, err := l.createSegment(0)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
		if !l.managed {
			if err := l.fs.SyncDir(l.dir); err != nil {
				return err
			}
		}
		// A Store member writes no recovery point and fsyncs nothing in its directory: its
		// segment file is created by its first flush, and made durable (with its recovery
		// point and the directory) by its first checkpoint, or Close; until then the journal
		// holds its entries, and replay repairs a crash that loses them. With LazyDir, the
		// directory itself waits for the first flush too (ensureDir).
		switch {
		case l.lazyDir:
			// Made durable by its first checkpoint (ensureDir).
		case l.store != nil:
			// Members created together share the fsync of their parent directory.
			if err := l.store.parentSyncs.sync(l.fs, filepath.Dir(l.dir)); err != nil {
				return err
			}
		case !l.managed:
			if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil {
				return err
			}
		}
	}
	for i, b := range bases {
		s := &segment{base: b, path: filepath.Join(l.dir, segmentName(b)), maxTs: noTimestamp}
		l.segs = append(l.segs, s)
		active := i == len(bases)-1
		flag := osRDONLY
		if active {
			flag = osRDWR
		}
		if s.log, err = l.fs.OpenFile(s.logName(), flag, 0o644); err != nil {
			return err
		}
		if s.size, err = s.log.Size(); err != nil {
			return err
		}
		if active {
			if err := l.recoverActive(s, idxFiles[b]); err != nil {
				return err
			}
		} else if err := l.openSealed(s, bases[i+1]); err != nil {
			return err
		}
	}
	act := l.active()
	l.next = act.next
	l.flushed = act.size
	l.flushedNext = l.next
	clean := false
	if l.managed {
		if err := l.readStateFile(); err != nil {
			return err
		}
		if err := l.replay(recs); err != nil {
			return err
		}
		act = l.active()
		// Nothing changed since the last recovery point: skip the fsyncs (a broker opens
		// thousands of logs).
		// Or: a log never checkpointed (no recovery point) whose only segment is empty.
		cb, cpos, v, ok, missing := l.readCheckpointFile()
		clean = (ok && v == 2 && cb == act.base && cpos == act.size || missing && len(l.segs) == 1 && act.size == 0) &&
			l.stats.TruncatedBytes == 0 && l.stats.Replayed == 0 && l.buf.len() == 0 && l.stateSeq == l.stateWritten
	}
	if !clean {
		if err := l.flushLocked(); err != nil {
			return err
		}
		// What survived the crash may still sit only in the page cache: make it durable
		// before reporting it as synced, and make the validated end the recovery point.
		if f, err := syncSegmentFiles(act); err != nil {
			if f == act.log && l.managed && l.coveredKnown {
				// fsyncgate at open: what recovery or replay wrote past the recovery
				// point may sit in clean but lost pages; the journal still has it.
				if terr := f.Truncate(l.recoveryPos); terr == nil {
					_ = f.Sync()
				}
			}
			return err
		}
		if l.stateSeq != l.stateWritten {
			if err := l.writeStateFile(l.state); err != nil {
				return err
			}
			l.stateWritten = l.stateSeq
		}
		if err := l.writeCheckpoint(act.base, act.size); err != nil {
			return err
		}
	}
	act.ckptPos = act.size
	l.synced = l.next
	l.durablePos, l.durableNext = act.size, l.next
	return nil
}

// The recovery-point file: where Open may start trusting the active segment's index.
//
//	offset size field
//	     0    4 crc       CRC-32C of bytes 4..24
//	     4    1 version   1
//	     5    3 reserved  0
//	     8    8 base      base offset of the segment it refers to
//	    16    8 position  every byte of that segment below this was fsynced and valid
const (
	checkpointName = "recovery-point"
	checkpointSize = 24
)

// readCheckpointFile reads the recovery point; ok is false if it is missing or damaged. version
// is 1 for a standalone log's and 2 for a Store member's (see doc.go).
// missing: the file does not exist (as opposed to damaged or unreadable).
func (l *Log) readCheckpointFile() (base, pos int64, version byte, ok, missing bool) {
	b, err := readWhole(l.fs, filepath.Join(l.dir, checkpointName))
	if err == nil && b == nil {
		return 0, 0, 0, false, true
	}
	if err != nil || len(b) < checkpointSize {
		return 0, 0, 0, false, false
	}
	if crc32.Checksum(b[4:checkpointSize], castagnoli) != beUint32(b[0:4]) || (b[4] != 1 && b[4] != 2) {
		return 0, 0, 0, false, false
	}
	return int64(beUint64(b[8:16])), int64(beUint64(b[16:24])), b[4], true, false
}

// writeCheckpoint overwrites the recovery point in place and fsyncs it. A torn overwrite fails
// its CRC and only costs a longer scan at the next Open.
func (l *Log) writeCheckpoint(base, pos int64) error {
	opened, err := l.putCheckpoint(base, pos, true)
	if err != nil {
		return err
	}
	if opened || l.dirDirty.Load() {
		// The file may be new (or index files were created): make the directory entries
		// durable too.
		l.dirDirty.Store(false)
		if err := l.fs.SyncDir(l.dir); err != nil {
			l.dirDirty.Store(true)
			return err
		}
	}
	return nil
}

// putCheckpoint writes the recovery point (fsynced with sync) and says whether it opened the
// file (its directory entry may be new).
func (l *Log) putCheckpoint(base, pos int64, sync bool) (opened bool, err error) {
	var b [checkpointSize]byte
	b[4] = 1
	if l.managed {
		b[4] = 2
	}
	binary.BigEndian.PutUint64(b[8:16], uint64(base))
	binary.BigEndian.PutUint64(b[16:24], uint64(pos))
	binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:], castagnoli))
	put := overwrite
	if sync {
		put = overwriteSynced
	}
	if opened, err = put(l.fs, &l.ckpt, l.dir, checkpointName, b[:]); err != nil {
		return opened, err
	}
	l.rpBase, l.rpPos = base, pos
	return opened, nil
}

// openSealed reads only the last point of a sealed segment's index files: the end marker
// written when it was sealed gives its end offset, size and newest timestamp. If the marker is
// missing or disagrees with the files, the segment is scanned and its index rebuilt.
func (l *Log) openSealed(s *segment, nextBase int64) error {
	s.sealed = true
	ib, err := readTail(l.fs, s.idxName(), offIndexEntrySize)
	if err != nil {
		return err
	}
	tb, err := readTail(l.fs, s.tidxName(), timeIndexEntrySize)
	if err != nil {
		return err
	}
	if ib != nil && tb != nil {
		var m indexEntry
		m.rel = beUint32(ib[0:4])
		m.pos = beUint32(ib[4:8])
		m.ts = int64(beUint64(tb[0:8]))
		if beUint32(tb[8:12]) == m.rel && int64(m.pos) == s.size && s.base+int64(m.rel) == nextBase {
			s.next = nextBase
			s.maxTs = m.ts
			return nil
		}
	}
	// Rebuild: scan the whole segment. A sealed segment was fsynced when it was sealed, so
	// anything invalid in it is corruption, not a torn write.
	idx, end, next, maxTs, _, _, err := l.scan(s, 0, s.base, noTimestamp, nil, 0, -1)
	if err != nil {
		return err
	}
	if end != s.size || next != nextBase {
		return fmt.Errorf("%w: sealed segment %s ends at offset %d position %d, want offset %d position %d",
			ErrCorrupt, s.logName(), next, end, nextBase, s.size)
	}
	s.next, s.maxTs = next, maxTs
	idx = append(idx, indexEntry{rel: uint32(next - s.base), pos: uint32(end), ts: maxTs})
	if err := l.writeIndexFiles(s, idx); err != nil {
		return err
	}
	s.idx, s.idxLoaded = idx, true
	return nil
}

// recoverActive re-validates the active segment from its last intact index point and
// truncates a torn tail. haveIdx: index files of the segment exist.
func (l *Log) recoverActive(s *segment, haveIdx bool) error {
	idx, err := readIndexFiles(l.fs, s, s.size)
	if err != nil {
		return err
	}
	// Only index points at or below the recovery point are trusted: the log bytes before it
	// were fsynced before it was written. Beyond it, pages of unsynced writes may have
	// survived out of order, so the scan must walk every byte from there. (This also drops
	// the end marker of a segment sealed just before a crash: its position is the size.)
	limit := int64(0)
	cb, cpos, cv, cok, missing := l.readCheckpointFile()
	if cok && cb == s.base {
		limit = cpos
	}
	if cok {
		l.rpBase, l.rpPos = cb, cpos
	}
	if l.managed && (cok && cv == 2 || missing) {
		// Past the recovery point only what the journal holds was acknowledged. A member
		// without one was never checkpointed (its first checkpoint, or Close, creates it):
		// everything past the active segment's start is the journal's.
		l.coveredKnown = true
	}
	for len(idx) > 0 && (int64(idx[len(idx)-1].pos) > limit || int64(idx[len(idx)-1].pos) >= s.size) {
		idx = idx[:len(idx)-1]
	}
	// Walk back to the last index point that still lands on a valid entry.
	startPos, startOff, startTs := int64(0), s.base, int64(noTimestamp)
	hb := make([]byte, headerSize)
	for len(idx) > 0 {
		e := idx[len(idx)-1]
		if ok := l.validAt(s, int64(e.pos), s.base+int64(e.rel), hb); ok {
			startPos, startOff, startTs = int64(e.pos), s.base+int64(e.rel), e.ts
			break
		}
		idx = idx[:len(idx)-1]
	}
	more, end, next, maxTs, lastIdxPos, atLimit, err := l.scan(s, startPos, startOff, startTs, idx, startPos, limit)
	if err != nil && !IsCorruption(err) {
		return err
	}
	if end < limit {
		// Everything below the recovery point was fsynced and valid when it was written:
		// damage there is not a torn write. Cutting it would hand its offsets out again.
		if err == nil {
			err = fmt.Errorf("%w: segment ends at position %d", ErrCorrupt, end)
		}
		return fmt.Errorf("%w: %s damaged at position %d, below its durable point %d (offset %d): %w",
			ErrCorrupt, s.logName(), end, limit, next, err)
	}
	if limit == 0 {
		atLimit = s.base
	}
	l.covered = atLimit
	l.recoveryPos = limit
	if atLimit < 0 {
		l.coveredKnown = false
	}
	// A corrupt or partial entry ends the valid log: torn tail. Everything from there on was
	// never acknowledged as synced by this log (see doc.go) and is cut off.
	if end < s.size {
		if l.logger != nil {
			l.logger.Info("wal: cut torn tail", "segment", s.logName(), "position", end,
				"bytes", s.size-end, "next_offset", next, "reason", err)
		}
		if err := s.log.Truncate(end); err != nil {
			return err
		}
		l.stats.TruncatedBytes += s.size - end
		s.size = end
	}
	s.next, s.maxTs = next, maxTs
	s.idx, s.idxLoaded = more, true
	s.lastIdxPos = lastIdxPos
	s.ckptPos = s.size
	if l.lazyIndex && !haveIdx && s.size < lazyIndexBytes {
		return nil // created once the segment reaches lazyIndexBytes (ensureIndexFiles)
	}
	if err := l.writeIndexFiles(s, more); err != nil {
		return err
	}
	if s.idxFile, err = l.fs.OpenFile(s.idxName(), osRDWR|osCREATE, 0o644); err != nil {
		return err
	}
	if s.tidxFile, err = l.fs.OpenFile(s.tidxName(), osRDWR|osCREATE, 0o644); err != nil {
		return err
	}
	s.idxFileSize = int64(len(more)) * offIndexEntrySize
	s.ckptPos = s.size
	return nil
}

// validAt reports whether a whole valid entry with the given base offset starts at pos.
func (l *Log) validAt(s *segment, pos, off int64, hb []byte) bool {
	if pos+headerSize > s.size {
		return false
	}
	if _, err := s.log.ReadAt(hb, pos); err != nil {
		return false
	}
	h, err := parseHeader(hb)
	if err != nil || h.baseOffset != off || pos+h.size() > s.size {
		return false
	}
	e := make([]byte, h.size())
	if _, err := s.log.ReadAt(e, pos); err != nil {
		return false
	}
	return verify(&h, e) == nil
}

// scan validates entries of s from pos (whose entry has offset off; ts is the max timestamp
// before pos) to the end of the file, adding index points after lastIdxPos to idx the way
// Append would. It stops at the first invalid entry and returns the index, the end of the
// valid entries, the next offset, the max timestamp and the last index point; err is the
// reason it stopped early (an ErrCorrupt error) or an I/O error.
//
// mark is a position: atMark is the offset of the entry starting there (-1 if none does).
func (l *Log) scan(s *segment, pos, off, ts int64, idx []indexEntry, lastIdxPos, mark int64) (
	_ []indexEntry, end, next, maxTs, lastIdx, atMark int64, err error) {
	r := entryReader{f: s.log, end: s.size, pos: pos, chunk: scanChunk}
	next, maxTs, lastIdx, atMark = off, ts, lastIdxPos, -1
	for {
		start := r.pos
		if start == mark {
			atMark = next
		}
		h, _, err := r.next()
		if err == nil && h.baseOffset != next {
			err = fmt.Errorf("%w: entry at position %d has offset %d, want %d", ErrCorrupt, start, h.baseOffset, next)
		}
		if err == nil && h.baseOffset+int64(h.count)-s.base > math.MaxUint32 {
			err = fmt.Errorf("%w: entry at position %d overflows the segment", ErrCorrupt, start)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return idx, start, next, maxTs, lastIdx, atMark, err
		}
		if start > 0 && start-lastIdx >= l.indexInterval {
			idx = append(idx, indexEntry{rel: uint32(next - s.base), pos: uint32(start), ts: maxTs})
			lastIdx = start
		}
		next = h.baseOffset + int64(h.count)
		maxTs = max(maxTs, h.maxTimestamp)
	}
}

// writeIndexFiles replaces a segment's index files with idx and fsyncs them.
func (l *Log) writeIndexFiles(s *segment, idx []indexEntry) error {
	ib, tb := encodeIndex(idx)
	for _, w := range []struct {
		name string
		b    []byte
	}{{s.idxName(), ib}, {s.tidxName(), tb}} {
		if err := writeSynced(l.fs, w.name, w.b); err != nil {
			return err
		}
	}
	return nil
}
