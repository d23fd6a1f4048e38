package wal

import (
	"fmt"
	"time"
)

// Sync returns once every entry with an offset below upTo is durable (upTo beyond NextOffset
// means everything appended so far). Concurrent callers share fsyncs: while one fsync runs,
// later callers wait, and the next fsync covers them all (group commit).
func (l *Log) Sync(upTo int64) error {
	if l.store != nil {
		return l.syncMember(upTo)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		upTo = min(upTo, l.next)
		if l.synced >= upTo {
			return nil
		}
		if l.err != nil {
			return l.err
		}
		if l.closed {
			return ErrClosed
		}
		if l.syncing {
			l.cond.Wait()
			continue
		}
		if err := l.groupCommitLocked(); err != nil {
			return err
		}
	}
}

// groupCommitLocked flushes and fsyncs everything appended so far, with mu released during
// the fsync so that appenders go on and later syncers queue behind this one.
func (l *Log) groupCommitLocked() error {
	l.syncing = true
	target := l.next
	err := l.flushLocked()
	// The files are captured under mu; rolls wait for !syncing, so they stay open.
	act := l.active()
	logF, idxF, tidxF := act.log, act.idxFile, act.tidxFile
	syncIdx := l.flushed-act.ckptPos > indexSyncBytes
	flushedPos := l.flushed
	l.mu.Unlock()
	t0 := time.Now()
	fsyncFailed := false
	if err == nil {
		err = logF.Sync()
		fsyncFailed = err != nil
	}
	if d := time.Since(t0); d > SlowSync && l.logger != nil {
		l.logger.Warn("wal: slow fsync", "dir", l.dir, "duration", d)
	}
	if err == nil && syncIdx {
		// Every index point written so far lies below flushedPos, which is now durable:
		// make the points durable, then record flushedPos as the recovery point.
		if idxF != nil {
			if err = idxF.Sync(); err == nil {
				err = tidxF.Sync()
			}
		}
		if err == nil {
			err = l.writeCheckpoint(act.base, flushedPos)
		}
	}
	l.mu.Lock()
	l.syncing = false
	l.cond.Broadcast()
	if fsyncFailed {
		l.cutToDurableLocked(logF)
	}
	if err != nil {
		return l.fail(err)
	}
	if syncIdx {
		act.ckptPos = flushedPos
	}
	l.stats.GroupCommits++
	l.synced = max(l.synced, target)
	l.durablePos, l.durableNext = flushedPos, target
	return nil
}

// cutToDurableLocked is what follows a failed fsync of the active segment's file (fsyncgate):
// Linux marks the pages of a failed writeback clean, so the page cache now holds bytes the
// disk may not, and a later fsync (through any handle) would report them durable. The file is
// cut back to what an fsync did make durable, so no reopen serves (or verifies a journal
// record against) those bytes; the caller fails the log. A member's entries past the cut are
// in the journal, which restores them at the next OpenStore.
func (l *Log) cutToDurableLocked(logF File) {
	act := l.active()
	if logF != act.log {
		return
	}
	if terr := logF.Truncate(l.durablePos); terr == nil {
		if serr := logF.Sync(); serr == nil && l.managed {
			// A failed recovery-point write may have left a later position in the page
			// cache; make the file say what is durable.
			_ = l.writeCheckpoint(act.base, l.durablePos)
		}
	}
	l.flushed, l.flushedNext = l.durablePos, l.durableNext
	l.buf.reset()
	for len(act.idx) > 0 && int64(act.idx[len(act.idx)-1].pos) >= l.durablePos {
		act.idx = act.idx[:len(act.idx)-1]
	}
}

// fail records a write-path error as sticky: after a failed write or fsync the state of the
// file is unknown, so the log refuses further writes (reads keep working).
//
// A Store member's failure fails the whole Store (fail-stop): its file may now hold less than
// the journal, so the journal must not forget its records at a checkpoint, and nothing may be
// acknowledged as if the node were healthy.
func (l *Log) fail(err error) error {
	if l.err == nil {
		l.err = fmt.Errorf("wal: %s: write failed: %w", l.dir, err)
		if l.store != nil {
			l.store.fail(l.err)
		}
	}
	l.cond.Broadcast()
	return l.err
}
