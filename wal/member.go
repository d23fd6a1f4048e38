package wal

import (
	"bytes"
	"fmt"
)

// Methods of a Log that is a member of a Store (see doc.go, Commit journal).

// syncMember is Sync for a Store member: the wait is for the journal's group commit, shared by
// every partition. The partition's buffered bytes stay buffered (decision: the journal makes
// them durable; writing every partition's buffer at every Sync cost one write syscall per
// partition per commit). They reach the file when the buffer fills, when a read reaches them,
// at a checkpoint and at Close.
func (l *Log) syncMember(upTo int64) error {
	l.mu.Lock()
	upTo = min(upTo, l.next)
	switch {
	case l.synced >= upTo:
		l.mu.Unlock()
		return nil
	case l.err != nil:
		err := l.err
		l.mu.Unlock()
		return err
	case l.closed:
		l.mu.Unlock()
		return ErrClosed
	}
	lsn, target := l.lastLSN, l.next
	l.mu.Unlock()
	if err := l.store.syncTo(lsn); err != nil {
		return err
	}
	l.mu.Lock()
	l.stats.GroupCommits++
	l.synced = max(l.synced, target)
	l.mu.Unlock()
	return nil
}

// ckptTarget is what a checkpoint makes durable of one log: the active segment's files up to
// pos, whose entries' journal records end at lsn.
type ckptTarget struct {
	l              *Log
	act            *segment
	pos, next, lsn int64
	logF           File
	// The state to write to the state file, when it changed since it was last written.
	writeState bool
	state      []byte
	stateSeq   uint64
}

// beginCheckpoint hands the log's buffered bytes to its files, releases the write buffer (a
// log idle since the last checkpoint holds none) and pins the active segment's files
// (syncing: rolls, Retain and Close wait). ok is false for a closed log (Close made it
// durable).
func (l *Log) beginCheckpoint() (t ckptTarget, ok bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.syncing {
		l.cond.Wait()
	}
	if l.closed {
		return t, false, nil
	}
	if l.err != nil {
		return t, false, l.err
	}
	if err := l.flushLocked(); err != nil {
		return t, false, l.fail(err)
	}
	// The emptied write buffer stays: a log written in this checkpoint's round is likely
	// written in the next (regrowing it from the pool each round cost an allocation and a
	// copy per doubling, the pool being emptied by the collections in between). The next
	// checkpoint that finds the log cold releases it (dropSealedIndexes), or the
	// checkpointer when nothing at all was written meanwhile (releaseIdleBufs).
	act := l.active()
	l.syncing = true
	return ckptTarget{l: l, act: act, pos: l.flushed, next: l.flushedNext, lsn: l.lastLSN, logF: act.log,
		writeState: l.stateSeq != l.stateWritten, state: l.state, stateSeq: l.stateSeq}, true, nil
}

// fsyncCheckpoint fsyncs the pinned segment file and moves the recovery point to t.pos. The
// index files are not fsynced here (decision: they are hints; an index point lost in a crash
// only makes Open start its scan at an earlier one, and Open checks every point it uses), so
// a checkpoint costs two fsyncs per dirty log; rolls and Close still fsync them.
func (l *Log) fsyncCheckpoint(t ckptTarget) error {
	if t.writeState {
		// Before the recovery point, whose write makes a new state file's entry durable.
		if err := l.writeStateFile(t.state); err != nil {
			return err
		}
	}
	if err := t.logF.Sync(); err != nil {
		return err
	}
	return l.writeCheckpoint(t.act.base, t.pos)
}

// checkpointState and checkpointPoint are fsyncCheckpoint's writes without its fsyncs, for a
// checkpoint that syncs the whole filesystem after each (Store.syncFilesystem): the state file
// when it changed, before the first sync (which also makes the segment's bytes durable) ...
func (l *Log) checkpointState(t ckptTarget) error {
	if !t.writeState {
		return nil
	}
	return l.putStateFile(t.state, false)
}

// ... and the recovery point at t.pos, after it. The second sync makes it durable with every
// directory entry of the log (a new state, recovery point or index file), so none is left for
// a directory fsync; one created after this call stays marked.
func (l *Log) checkpointPoint(t ckptTarget) error {
	l.dirDirty.Store(false)
	_, err := l.putCheckpoint(t.act.base, t.pos, false)
	return err
}

// endCheckpoint unpins the files. ok: the fsync and recovery point succeeded. failed: they
// did not (the bytes past the last checkpoint are cut, see cutToDurableLocked, and the log
// fails); neither: the checkpoint stopped before this log.
func (l *Log) endCheckpoint(t ckptTarget, ok bool, failed error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.syncing = false
	switch {
	case ok:
		t.act.ckptPos = t.pos
		l.durablePos, l.durableNext = t.pos, t.next
		if t.writeState {
			l.stateWritten = max(l.stateWritten, t.stateSeq)
		}
	case failed != nil:
		l.cutToDurableLocked(t.logF)
		l.fail(failed)
	}
	l.cond.Broadcast()
}

// replay applies the journal's records for this log at open (single-threaded, before the log
// is published): entries the log has are verified, entries it lacks are appended, damage past
// the recovery point is replaced from the journal, and entries past both the recovery point
// and the journal (never acknowledged: a torn write, or writes whose journal fsync failed)
// are cut. A gap the journal cannot fill, or a mismatch below the recovery point, is
// corruption.
func (l *Log) replay(recs []journalRecord) error {
	covered := l.next // a standalone-era log (no version-2 recovery point): trust its tail
	if l.coveredKnown {
		covered = l.covered
	}
	for i := range recs {
		r := &recs[i]
		switch r.kind {
		case journalKindState:
			l.state = bytes.Clone(r.data)
			l.stateSeq++
			continue
		case journalKindReset:
			// Store.replay dropped the records before it.
			if err := l.resetLocked(r.base); err != nil {
				return err
			}
			covered = r.base
			continue
		case journalKindTruncate:
			if r.base < l.segs[0].base {
				// Retention deleted the segment holding the cut since: the truncation
				// took effect before (the segment was sealed, fsynced, after it).
				continue
			}
			if r.base > l.next {
				return fmt.Errorf("%w: %s: log ends at offset %d but the journal truncates at %d", ErrCorrupt, l.dir, l.next, r.base)
			}
			if r.base < l.next {
				k, pos, err := l.boundaryLocked(r.base)
				if err != nil {
					return err
				}
				if err := l.cutLocked(k, pos, r.base); err != nil {
					return err
				}
			}
			covered = min(covered, r.base)
			continue
		}
		start := l.segs[0].base
		if r.end() <= start {
			continue // removed by retention since
		}
		if r.base < start {
			return fmt.Errorf("%w: %s: journal entry [%d,%d) straddles the log start %d", ErrCorrupt, l.dir, r.base, r.end(), start)
		}
		if r.base < l.next {
			same, err := l.hasEntry(r)
			if err != nil && !IsCorruption(err) {
				return err
			}
			if same {
				l.stats.Verified++
				covered = max(covered, r.end())
				continue
			}
			if r.base < l.active().base || r.base < covered {
				return fmt.Errorf("%w: %s: the entry at offset %d differs from its journal record and lies below the durable point", ErrCorrupt, l.dir, r.base)
			}
			if l.logger != nil {
				l.logger.Warn("wal: replacing damaged entries from the journal", "dir", l.dir, "offset", r.base, "err", err)
			}
			if err := l.truncateActive(r.base); err != nil {
				return err
			}
		}
		if r.base > l.next {
			return fmt.Errorf("%w: %s: log ends at offset %d but the journal continues at %d", ErrCorrupt, l.dir, l.next, r.base)
		}
		l.mu.Lock()
		_, err := l.appendLocked(r.data, r.count, r.maxTs, r.tag, r.kind == journalKindTagged)
		l.mu.Unlock()
		if err != nil {
			return err
		}
		l.stats.Replayed++
		covered = r.end()
	}
	// Sealed segments were fsynced whole when they were sealed.
	covered = max(covered, l.active().base)
	if l.next > covered {
		if l.logger != nil {
			l.logger.Info("wal: cutting entries the journal never made durable", "dir", l.dir,
				"from_offset", covered, "next_offset", l.next)
		}
		return l.truncateActive(covered)
	}
	return nil
}

// hasEntry reports whether the log holds exactly r's entry at r's offset.
func (l *Log) hasEntry(r *journalRecord) (bool, error) {
	bs, err := l.Read(r.base, 1)
	if err != nil {
		return false, err
	}
	if len(bs) == 0 {
		return false, nil
	}
	b := bs[0]
	return b.BaseOffset == r.base && b.LastOffset == r.end()-1 && b.MaxTimestamp == r.maxTs &&
		b.Tag == r.tag && bytes.Equal(b.Data, r.data), nil
}

// truncateActive cuts the active segment at offset off (an entry boundary in it) and rebuilds
// its index. Only at open.
func (l *Log) truncateActive(off int64) error {
	if err := l.flushLocked(); err != nil {
		return err
	}
	s := l.active()
	pos := int64(0)
	if off > s.base {
		r := entryReader{f: s.log, end: s.size, chunk: scanChunk}
		next := s.base
		for next != off {
			h, _, err := r.next()
			if err != nil || h.baseOffset != next || next > off {
				return fmt.Errorf("%w: %s: no entry boundary at offset %d (%v)", ErrCorrupt, s.logName(), off, err)
			}
			next = h.baseOffset + int64(h.count)
		}
		pos = r.pos
	}
	if err := s.log.Truncate(pos); err != nil {
		return err
	}
	l.stats.TruncatedBytes += s.size - pos
	s.size = pos
	idx, end, next, maxTs, lastIdx, _, err := l.scan(s, 0, s.base, noTimestamp, nil, 0, -1)
	if err != nil {
		return err
	}
	if end != pos || next != off {
		return fmt.Errorf("%w: %s: rescan after cut ends at %d/%d, want %d/%d", ErrCorrupt, s.logName(), end, next, pos, off)
	}
	if s.idxFile != nil { // otherwise they do not exist yet (ensureIndexFiles)
		if err := l.writeIndexFiles(s, idx); err != nil {
			return err
		}
	}
	s.idx, s.idxLoaded, s.lastIdxPos = idx, true, lastIdx
	s.idxFileSize = int64(len(idx)) * offIndexEntrySize
	s.pendIdx, s.pendTidx = s.pendIdx[:0], s.pendTidx[:0]
	s.next, s.maxTs = next, maxTs
	l.next, l.flushed, l.flushedNext = off, pos, off
	return nil
}

// dropSealedIndexes forgets the in-memory indexes of the log's sealed segments (sealedIndex
// reloads one from its files when a read needs it; readers holding an index keep their copy)
// and releases its empty write buffer: the log is cold (Checkpoint).
func (l *Log) dropSealedIndexes() {
	// Under mu: a truncation may make a sealed segment active again (cutLocked), and the
	// active segment's index is the appenders'.
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseBuf()
	for _, s := range l.segs {
		if !s.sealed {
			continue
		}
		s.idxMu.Lock()
		s.idx, s.idxLoaded = nil, false
		s.idxMu.Unlock()
	}
}
