package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"slices"
	"sort"
)

// Operations for a log that is a replicated partition's raft log (see doc.go, Replicated
// logs): tail truncation, reset, a small durable state, and lookups by tag.

// MaxStateBytes is the largest state SetState accepts.
const MaxStateBytes = 4096

var (
	// ErrNotMember: TruncateFrom, Reset and SetState are made crash-safe by the Store's
	// journal, so only a Store member has them.
	ErrNotMember = errors.New("wal: truncation, reset and state need a Store member")
	// ErrStateTooLarge: SetState got more than MaxStateBytes.
	ErrStateTooLarge = errors.New("wal: state too large")
	// ErrNotBoundary: TruncateFrom got an offset inside an entry.
	ErrNotBoundary = errors.New("wal: offset is not an entry boundary")
)

// TruncateFrom removes every entry whose base offset is at least offset, which must be an
// entry boundary in [StartOffset, NextOffset]; NextOffset is offset afterwards. Like Append it
// is made durable by the journal's next commit (Store.Commit, or a Sync): a crash before that
// may undo it, one after never does, and the removed entries never come back. A truncation
// below what a checkpoint already made durable in the partition files, or one that removes
// segment files, first waits for the journal commit (one shared fsync) and moves the
// recovery point down (rare: raft truncates only entries that were never committed).
func (l *Log) TruncateFrom(offset int64) error {
	if l.store == nil {
		return ErrNotMember
	}
	defer l.lockSegments()() // segment files may be closed and deleted
	switch {
	case l.closed:
		return ErrClosed
	case l.err != nil:
		return l.err
	case offset < l.segs[0].base || offset > l.next:
		return fmt.Errorf("%w: truncate at %d, log holds [%d, %d)", ErrOffsetOutOfRange, offset, l.segs[0].base, l.next)
	case offset == l.next:
		return nil
	}
	k, pos, err := l.boundaryLocked(offset)
	if err != nil {
		if IsCorruption(err) || errors.Is(err, ErrNotBoundary) {
			return err
		}
		return l.fail(err)
	}
	lsn, err := l.store.appendRec(l, journalKindTruncate, nil, offset, 0, 0, 0)
	if err != nil {
		return err
	}
	l.lastLSN = lsn
	if err := l.cutLocked(k, pos, offset); err != nil {
		return l.fail(err)
	}
	return nil
}

// boundaryLocked finds the entry boundary at offset (StartOffset <= offset < NextOffset): the
// segment holding it and its position there. The active segment's buffer is flushed first.
func (l *Log) boundaryLocked(offset int64) (k int, pos int64, err error) {
	k = sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset }) - 1
	s := l.segs[k]
	if offset == s.base {
		return k, 0, nil
	}
	var idx []indexEntry
	end := s.size
	if k == len(l.segs)-1 {
		if err := l.flushLocked(); err != nil {
			return 0, 0, err
		}
		idx, end = s.idx, l.flushed
	} else if idx, err = l.sealedIndex(s); err != nil {
		return 0, 0, err
	}
	p, off := lookup(idx, s.base, offset)
	r := entryReader{f: s.log, end: end, pos: p, chunk: min(l.indexInterval, scanChunk) + headerSize + tagSize}
	for off < offset {
		h, _, err := r.next()
		if err == nil && h.baseOffset != off {
			err = fmt.Errorf("%w: entry at offset %d, want %d", ErrCorrupt, h.baseOffset, off)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w: segment %s ends at offset %d", ErrCorrupt, s.logName(), off)
			}
			return 0, 0, err
		}
		off = h.baseOffset + int64(h.count)
	}
	if off != offset {
		return 0, 0, fmt.Errorf("%w: %d lies inside the entry ending at %d", ErrNotBoundary, offset, off)
	}
	return k, r.pos, nil
}

// cutLocked removes the entries from offset on: the segments after segs[k], and segs[k]'s
// bytes from pos (offset's entry boundary). segs[k] becomes the active segment. When the cut
// lies below the recovery point on disk, or segments go, it first waits for the journal to
// hold the truncation (unless replaying: then it does already) and moves the recovery point
// to the cut, so that no crash can leave new bytes below a recovery point claiming them
// durable, nor resurrect deleted segments without the journal's record to cut them again.
func (l *Log) cutLocked(k int, pos, offset int64) error {
	s := l.segs[k]
	later := l.segs[k+1:]
	reactivate := len(later) > 0
	if reactivate || (l.rpBase == s.base && l.rpPos > pos) {
		if l.store != nil {
			if err := l.store.syncTo(l.lastLSN); err != nil {
				return err
			}
		}
		// Below pos the segment is durable: it was sealed (fsynced whole), or pos is below
		// the recovery point.
		if err := l.ensureDir(); err != nil {
			return err
		}
		if err := l.writeCheckpoint(s.base, pos); err != nil {
			return err
		}
		s.ckptPos = pos
		l.durablePos, l.durableNext = pos, offset
	}
	if reactivate {
		// The later segments go first, newest first, each durably before the next (a
		// crash must find a contiguous run of segments, as ever): until then a crash finds
		// segs[k] sealed, intact.
		l.buf.reset()
		for j := len(l.segs) - 1; j > k; j-- {
			l.segs = l.segs[:j]
			if err := l.removeSegment(later[j-k-1]); err != nil {
				return err
			}
		}
		idx, err := l.sealedIndex(s)
		if err != nil {
			return err
		}
		s.idxMu.Lock()
		s.idx = slices.Clone(idx)
		s.idxMu.Unlock()
		f, err := l.fs.OpenFile(s.logName(), osRDWR, 0o644)
		if err != nil {
			return err
		}
		s.log.Close()
		s.log = f
		if s.idxFile, err = l.fs.OpenFile(s.idxName(), osRDWR|osCREATE, 0o644); err != nil {
			return err
		}
		if s.tidxFile, err = l.fs.OpenFile(s.tidxName(), osRDWR|osCREATE, 0o644); err != nil {
			return err
		}
		s.sealed = false
		s.idxFileSize = int64(len(idx)) * offIndexEntrySize
		l.flushed = s.size
	} else if err := l.flushLocked(); err != nil {
		return err
	}
	if err := s.log.Truncate(pos); err != nil {
		return err
	}
	// Index points below the cut stay; the scan from the last of them recomputes the rest.
	keep := 0
	for keep < len(s.idx) && int64(s.idx[keep].pos) < pos {
		keep++
	}
	kept := s.idx[:keep:keep]
	sp, soff, sts := int64(0), s.base, int64(noTimestamp)
	if keep > 0 {
		e := kept[keep-1]
		sp, soff, sts = int64(e.pos), s.base+int64(e.rel), e.ts
	}
	s.size = pos
	idx, end, next, maxTs, lastIdx, _, err := l.scan(s, sp, soff, sts, kept, sp, -1)
	if err != nil {
		return err
	}
	if end != pos || next != offset {
		return fmt.Errorf("%w: %s: rescan after the cut ends at %d/%d, want %d/%d", ErrCorrupt, s.logName(), end, next, pos, offset)
	}
	if s.idxFile != nil {
		if len(idx) == keep {
			// The index files hold exactly the kept points (and maybe more): cut them too.
			// They are hints, so no fsync.
			if err := s.idxFile.Truncate(int64(keep) * offIndexEntrySize); err != nil {
				return err
			}
			if err := s.tidxFile.Truncate(int64(keep) * timeIndexEntrySize); err != nil {
				return err
			}
		} else if err := l.writeIndexFiles(s, idx); err != nil {
			return err
		}
		s.idxFileSize = int64(len(idx)) * offIndexEntrySize
	}
	s.idxMu.Lock()
	s.idx, s.idxLoaded = idx, true
	if pos == 0 {
		s.firstTagKnown = false
	}
	s.idxMu.Unlock()
	s.lastIdxPos, s.next, s.maxTs = lastIdx, offset, maxTs
	s.pendIdx, s.pendTidx = s.pendIdx[:0], s.pendTidx[:0]
	s.ckptPos = min(s.ckptPos, pos)
	l.next, l.flushed, l.flushedNext = offset, pos, offset
	if l.durablePos > pos {
		l.durablePos, l.durableNext = pos, offset
	}
	l.synced = min(l.synced, offset)
	l.cond.Broadcast()
	return nil
}

// Reset empties the log: afterwards it holds no entry and StartOffset and NextOffset are
// nextOffset (a replica installing a snapshot). It journals the reset and waits for the
// journal to hold it durably (one shared fsync), then deletes every segment file and creates
// an empty one at nextOffset, durably: the journal's record redoes the reset if a crash
// interrupts it, and replay drops every earlier record of the log.
func (l *Log) Reset(nextOffset int64) error {
	if l.store == nil {
		return ErrNotMember
	}
	if nextOffset < 0 {
		return fmt.Errorf("%w: reset to negative offset %d", ErrOffsetOutOfRange, nextOffset)
	}
	defer l.lockSegments()()
	switch {
	case l.closed:
		return ErrClosed
	case l.err != nil:
		return l.err
	}
	lsn, err := l.store.appendRec(l, journalKindReset, nil, nextOffset, 0, 0, 0)
	if err != nil {
		return err
	}
	l.lastLSN = lsn
	if err := l.store.syncTo(lsn); err != nil {
		return err
	}
	if err := l.resetLocked(nextOffset); err != nil {
		return l.fail(err)
	}
	if err := l.syncParent(); err != nil {
		return l.fail(err)
	}
	return nil
}

// resetLocked replaces every segment with one empty segment at next: the recovery point
// moves to the new segment's start first, then the old files are deleted durably (a leftover
// segment file below the new one would read as a damaged sealed segment), then the new one is
// created, durably.
func (l *Log) resetLocked(next int64) error {
	if err := l.ensureDir(); err != nil {
		return err
	}
	// First the recovery point: it must never claim bytes of a segment file that is
	// about to be replaced by an empty one of the same name.
	if err := l.writeCheckpoint(next, 0); err != nil {
		return err
	}
	old := l.segs
	ns := &segment{base: next, path: filepath.Join(l.dir, segmentName(next)), next: next, maxTs: noTimestamp, idxLoaded: true}
	// Until the new segment exists, reads find an empty log at next.
	ns.log = memFile(nil)
	l.segs = []*segment{ns}
	l.next, l.flushed, l.flushedNext, l.synced = next, 0, next, next
	l.durablePos, l.durableNext = 0, next
	l.buf.reset()
	// Oldest first, each durably before the next: a crash leaves a contiguous run of
	// segments (what retention leaves), which the journal's record then resets.
	for _, s := range old {
		if err := l.removeSegment(s); err != nil {
			return err
		}
	}
	f, err := l.fs.OpenFile(ns.logName(), osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		return err
	}
	ns.log = f
	if !l.lazyIndex {
		if err := l.ensureIndexFiles(ns); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}
	ns.ckptPos = 0
	l.cond.Broadcast()
	return nil
}

// removeSegment closes a segment's files and deletes them (its .log last: index files without
// their .log are deleted by Open), durably.
func (l *Log) removeSegment(s *segment) error {
	s.closeFiles()
	for _, name := range []string{s.idxName(), s.tidxName(), s.logName()} {
		if err := l.fs.Remove(name); err != nil && !isNotExist(err) {
			return err
		}
	}
	return l.fs.SyncDir(l.dir)
}

// SetState replaces the log's state, a small blob (at most MaxStateBytes) kept with the log:
// a replicated partition's raft HardState, ConfState and snapshot metadata. Like an Append it
// is durable once the journal's next commit returns (Store.Commit); checkpoints and Close
// copy it into the log's state file, so it survives the journal forgetting its record.
// The latest state wins.
func (l *Log) SetState(b []byte) error {
	if l.store == nil {
		return ErrNotMember
	}
	if len(b) > MaxStateBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrStateTooLarge, len(b), MaxStateBytes)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return ErrClosed
	case l.err != nil:
		return l.err
	}
	lsn, err := l.store.appendRec(l, journalKindState, b, 0, 0, 0, 0)
	if err != nil {
		return err
	}
	l.lastLSN = lsn
	l.state = slices.Clone(b)
	l.stateSeq++
	return nil
}

// State returns a copy of the state last set (nil if none).
func (l *Log) State() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.state)
}

// The state file holds two slots, written alternately, so a torn write leaves the previous
// state intact (and the journal then still holds the newer one: a checkpoint forgets the
// journal's records only after the write succeeded). Slot layout (big-endian):
//
//	offset size field
//	     0    4 crc      CRC-32C of bytes 4 .. 24+length
//	     4    1 version  1
//	     5    3 reserved 0
//	     8    8 seq      slot sequence number: the slot with the higher valid one is current
//	    16    4 length   state bytes (at most MaxStateBytes)
//	    20    4 reserved 0
//	    24    n state
const (
	stateFileName   = "state"
	stateHeaderSize = 24
	stateSlotSize   = stateHeaderSize + MaxStateBytes
)

// decodeStateSlot decodes one slot; ok is false for a damaged, partial or empty one.
func decodeStateSlot(b []byte) (seq uint64, state []byte, ok bool) {
	if len(b) < stateHeaderSize {
		return 0, nil, false
	}
	n := int(binary.BigEndian.Uint32(b[16:20]))
	if n > MaxStateBytes || len(b) < stateHeaderSize+n || b[4] != 1 || b[5] != 0 || b[6] != 0 || b[7] != 0 ||
		binary.BigEndian.Uint32(b[20:24]) != 0 {
		return 0, nil, false
	}
	if crc32.Checksum(b[4:stateHeaderSize+n], castagnoli) != binary.BigEndian.Uint32(b[0:4]) {
		return 0, nil, false
	}
	seq = binary.BigEndian.Uint64(b[8:16])
	return seq, b[stateHeaderSize : stateHeaderSize+n : stateHeaderSize+n], seq > 0
}

func encodeStateSlot(seq uint64, state []byte) []byte {
	b := make([]byte, stateHeaderSize+len(state))
	b[4] = 1
	binary.BigEndian.PutUint64(b[8:16], seq)
	binary.BigEndian.PutUint32(b[16:20], uint32(len(state)))
	copy(b[stateHeaderSize:], state)
	binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:], castagnoli))
	return b
}

// decodeStateFile returns the current state of a state file's bytes (seq 0: none).
func decodeStateFile(b []byte) (seq uint64, state []byte) {
	for i := range 2 {
		if int64(len(b)) <= int64(i)*stateSlotSize {
			break
		}
		if s, st, ok := decodeStateSlot(b[i*stateSlotSize : min(len(b), (i+1)*stateSlotSize)]); ok && s > seq {
			seq, state = s, st
		}
	}
	return seq, state
}

// readStateFile loads the state file at open.
func (l *Log) readStateFile() error {
	b, err := readWhole(l.fs, filepath.Join(l.dir, stateFileName))
	if err != nil {
		return err
	}
	seq, st := decodeStateFile(b)
	l.stateFileSeq = seq
	l.state = slices.Clone(st)
	return nil
}

// writeStateFile writes state into the slot after the current one and fsyncs it. The caller
// owns the state file (a checkpoint pinning the log, or Close/open under mu).
func (l *Log) writeStateFile(state []byte) error { return l.putStateFile(state, true) }

// putStateFile is writeStateFile, with sync false without the fsync (a checkpoint that syncs
// the whole filesystem afterwards).
func (l *Log) putStateFile(state []byte, sync bool) error {
	if err := l.ensureDir(); err != nil {
		return err
	}
	name := filepath.Join(l.dir, stateFileName)
	f, err := l.fs.OpenFile(name, osRDWR, 0o644)
	created := false
	if isNotExist(err) {
		f, err = l.fs.OpenFile(name, osRDWR|osCREATE, 0o644)
		created = true
	}
	if err != nil {
		return err
	}
	seq := l.stateFileSeq + 1
	write := writeSyncClose
	if !sync {
		write = writeClose
	}
	if err := write(f, encodeStateSlot(seq, state), int64(seq%2)*stateSlotSize); err != nil {
		return err
	}
	if created {
		l.dirDirty.Store(true) // made durable by the recovery point write that follows
	}
	l.stateFileSeq = seq
	return nil
}

// OffsetForTag returns the base offset of the first entry whose tag is at least tag, or
// NextOffset if there is none (an untagged entry counts as tag 0). Tags must not decrease
// along the log (see AppendTagged). It bisects over the segments' first entries and the
// segment's index points, then scans at most one index interval.
func (l *Log) OffsetForTag(tag uint64) (int64, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrClosed
	}
	segs, next := l.segs, l.next
	l.mu.Unlock()
	var ferr error
	i := sort.Search(len(segs), func(i int) bool {
		ft, ok, err := l.segFirstTag(segs[i])
		if err != nil && ferr == nil {
			ferr = err
		}
		return err != nil || !ok || ft >= tag
	})
	if ferr != nil {
		return 0, fmt.Errorf("wal: offset for tag %d: %w", tag, ferr)
	}
	if i == 0 {
		return min(segs[0].base, next), nil
	}
	off, err := l.searchTag(segs[i-1], tag)
	if err != nil {
		return 0, fmt.Errorf("wal: offset for tag %d: %w", tag, err)
	}
	return off, nil
}

// segFirstTag returns the tag of s's first entry (ok false: s holds no entry yet).
func (l *Log) segFirstTag(s *segment) (uint64, bool, error) {
	s.idxMu.Lock()
	if s.firstTagKnown {
		defer s.idxMu.Unlock()
		return s.firstTag, true, nil
	}
	s.idxMu.Unlock()
	v, err := l.view(s)
	if err != nil {
		return 0, false, err
	}
	if v.end == 0 {
		return 0, false, nil
	}
	tag, err := tagAt(v.f, 0, v.end)
	if err != nil {
		return 0, false, err
	}
	s.idxMu.Lock()
	s.firstTag, s.firstTagKnown = tag, true
	s.idxMu.Unlock()
	return tag, true, nil
}

// tagAt reads the tag of the entry at pos (unverified: a hint for a bisection).
func tagAt(f File, pos, end int64) (uint64, error) {
	var b [headerSize + tagSize]byte
	n, err := f.ReadAt(b[:min(int64(len(b)), end-pos)], pos)
	if n < headerSize {
		if err == nil || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: short entry header at %d", ErrCorrupt, pos)
		}
		return 0, err
	}
	h, err := parseHeader(b[:])
	if err != nil {
		return 0, err
	}
	if h.version == entryVersionTagged {
		if n < headerSize+tagSize {
			return 0, fmt.Errorf("%w: short entry tag at %d", ErrCorrupt, pos)
		}
		return beUint64(b[headerSize:]), nil
	}
	return 0, nil
}

// searchTag returns the base offset of the first entry of s with a tag of at least tag, or
// s's end offset.
func (l *Log) searchTag(s *segment, tag uint64) (int64, error) {
	v, err := l.view(s)
	if err != nil {
		return 0, err
	}
	var terr error
	j := sort.Search(len(v.idx), func(j int) bool {
		if int64(v.idx[j].pos) >= v.end {
			return true
		}
		t, err := tagAt(v.f, int64(v.idx[j].pos), v.end)
		if err != nil {
			terr = err
			return true
		}
		return t >= tag
	})
	pos, off := int64(0), s.base
	if j > 0 && terr == nil {
		pos, off = int64(v.idx[j-1].pos), s.base+int64(v.idx[j-1].rel)
	}
	r := entryReader{f: v.f, end: v.end, pos: pos, chunk: min(l.indexInterval, scanChunk) + headerSize + tagSize}
	for {
		h, e, err := r.next()
		if errors.Is(err, io.EOF) {
			return v.next, nil
		}
		if err == nil && h.baseOffset != off {
			err = fmt.Errorf("%w: entry at offset %d, want %d", ErrCorrupt, h.baseOffset, off)
		}
		if err != nil {
			return 0, err
		}
		if entryTag(&h, e) >= tag {
			return h.baseOffset, nil
		}
		off = h.baseOffset + int64(h.count)
	}
}
