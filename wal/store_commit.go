package wal

import (
	"fmt"
	"time"
)

// appendRecord journals one entry of l (called with l.mu held, after the entry was stamped)
// and returns the journal position after it.
func (s *Store) appendRecord(l *Log, data []byte, base int64, count int32, maxTs int64, tag uint64, tagged bool) (int64, error) {
	kind := uint8(journalKindEntry)
	if tagged {
		kind = journalKindTagged
	}
	return s.appendRec(l, kind, data, base, count, maxTs, tag)
}

// appendRec journals one record of any kind of l (called with l.mu held) and returns the
// journal position after it.
func (s *Store) appendRec(l *Log, kind uint8, data []byte, base int64, count int32, maxTs int64, tag uint64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, ErrClosed
	}
	n := appendJournalTo(&s.buf, s.hdr[:], kind, s.syncedLocked(), l.name, tag, data, base, count, maxTs)
	s.appended += int64(n)
	s.since += int64(n)
	if s.segAlloc == 0 && !s.spareAsked && s.appended-s.segBase >= min(spareAfterBytes, s.opts.SegmentBytes/4) {
		s.spareAsked = true
		select {
		case s.spareKick <- struct{}{}:
		default:
		}
	}
	if l.dirtyGen != s.gen { // one map insert per log per checkpoint, not one per record
		s.dirty[l] = struct{}{}
		l.dirtyGen = s.gen
	}
	if s.buf.len() >= journalWriteBytes && !s.syncing {
		// Nobody is syncing (acks=1 load): hand the bytes to the file so memory stays bounded.
		if _, err := s.buf.writeTo(s.seg, s.written-s.segBase); err != nil {
			return 0, s.failLocked(err)
		}
		s.written += int64(s.buf.len())
		s.stats.JournalBytes += int64(s.buf.len())
		s.buf.reset()
	}
	if s.since >= s.checkpointDueLocked() {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return s.appended, nil
}

// syncedLocked is the synced position a record appended now carries: the durable position,
// or, while a commit leader writes and fsyncs, the position that commit makes durable. The
// record reaches the file only after that commit (the next leader writes it, or appendRec once
// no commit runs; after a failed commit nothing is written), so the position is durable before
// the record is on disk, as readJournal's check for damage below the durable point needs. And
// the records appended during the commit that rolls the journal carry the new segment's base,
// which is what lets a recycled segment file's leftovers be told from its records (version 2).
func (s *Store) syncedLocked() int64 {
	if s.syncing {
		return s.commitTarget
	}
	return s.durable
}

// Commit returns once everything appended, truncated, reset or SetState'd on any member of
// the Store before the call is durable: one journal fsync (group commit: concurrent callers,
// and Log.Sync callers, share it), however many logs it covers. The partition logs' files are
// not fsynced (see doc.go, Commit journal). It returns the Store's sticky error if it failed.
func (s *Store) Commit() error {
	return s.syncTo(s.appendedNow())
}

// syncTo returns once the journal is durable up to lsn (group commit: one leader writes and
// fsyncs everything appended so far while later callers wait for it or for the next round).
func (s *Store) syncTo(lsn int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Syncs++
	for {
		if s.durable >= lsn {
			return nil
		}
		if s.err != nil {
			return s.err
		}
		if s.closed {
			return ErrClosed
		}
		if s.syncing {
			s.cond.Wait()
			continue
		}
		if err := s.commitLocked(); err != nil {
			return err
		}
	}
}

// commitLocked writes and fsyncs every appended record, with mu released meanwhile.
func (s *Store) commitLocked() error {
	s.syncing = true
	target := s.appended
	s.commitTarget = target
	buf := s.buf
	s.buf, s.spare = s.spare, writeBuf{chunk: journalChunkBytes}
	pos := s.written - s.segBase
	s.written += int64(buf.len())
	f := s.seg
	s.mu.Unlock()
	var err error
	if buf.len() > 0 {
		_, err = buf.writeTo(f, pos)
	}
	t0 := time.Now()
	if err == nil {
		err = f.Sync()
	}
	d := time.Since(t0)
	if d > SlowSync && s.logger != nil {
		s.logger.Warn("wal: slow journal fsync", "dir", s.dir, "duration", d)
	}
	if s.opts.OnCommit != nil && err == nil {
		s.opts.OnCommit(d, buf.len())
	}
	s.mu.Lock()
	// Decision (measured): keeping only buffers up to 8 MiB meant that under acks=all load,
	// where several MiB accumulate while an fsync runs, every commit regrew its buffer by
	// doubling into fresh memory (page faults, zeroing, garbage: 1.5x the journal bytes
	// allocated at 4 partitions). Both buffers now keep their chunks, up to maxJournalSpare.
	written := buf.len()
	buf.reset()
	if buf.cap() <= maxJournalSpare {
		s.spare = buf
	} else {
		buf.release()
	}
	s.stats.Fsyncs++
	if err == nil {
		s.stats.JournalBytes += int64(written)
		s.durable = target
		// Roll at SegmentBytes, or as soon as a spare is ready while the active segment is
		// a new file being extended (its fsyncs commit metadata; a spare's do not).
		if n := s.written - s.segBase; n >= s.opts.SegmentBytes || n > s.segAlloc && len(s.spares) > 0 {
			err = s.rollLocked()
		}
	}
	s.syncing = false
	s.cond.Broadcast()
	if err != nil {
		return s.failLocked(err)
	}
	if s.cutPending {
		s.cutPending = false
		s.cutLocked()
	}
	return nil
}

// rollLocked starts a new journal segment at the durable end (the old one is wholly fsynced).
func (s *Store) rollLocked() error {
	f, alloc, err := s.newSegmentLocked(s.written)
	if err != nil {
		return err
	}
	s.seg.Close()
	s.seg, s.segBase, s.segAlloc = f, s.written, alloc
	s.segs = append(s.segs, s.written)
	return nil
}

// failLocked makes err sticky (fail-stop). After a failed fsync the page cache may hold
// journal bytes the disk does not (Linux drops the failed pages' dirty state): the journal is
// cut back to its last durable position so that no later reader in this process takes them
// for durable, and nothing is acknowledged any more.
func (s *Store) failLocked(err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("wal: journal %s failed, nothing is durable past position %d: %w", s.dir, s.durable, err)
		if s.syncing {
			// A commit leader is writing and fsyncing with mu released: cutting the file
			// under it could remove records it is about to report durable. It cuts when
			// it is done.
			s.cutPending = true
		} else {
			s.cutLocked()
		}
		if s.logger != nil {
			s.logger.Error("wal: journal failed; the store refuses writes until reopened", "err", err)
		}
		if s.onFail != nil {
			s.onFail(s.err)
		}
	}
	s.cond.Broadcast()
	return s.err
}

// cutLocked cuts the active journal segment back to the durable position.
func (s *Store) cutLocked() {
	if s.seg != nil && s.durable >= s.segBase {
		if terr := s.seg.Truncate(s.durable - s.segBase); terr == nil {
			_ = s.seg.Sync()
		}
	}
}

func (s *Store) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failLocked(err)
}

// checkpointDueLocked is how many journal bytes written since the last checkpoint start the
// next one: CheckpointBytes, or checkpointBytesPerLog per dirty log when that is more (up to
// maxCheckpointBytes). Decision: a checkpoint costs two fsyncs per dirty log, so with
// thousands of partitions written a little each it would otherwise cost more fsyncs than the
// commits it retires; this way each log's fsyncs are amortised over at least 256 KiB of
// journal (its own and others'). The journal (disk, replay time) and the partition bytes
// buffered in memory until the checkpoint stay bounded by maxCheckpointBytes.
func (s *Store) checkpointDueLocked() int64 {
	return max(s.opts.CheckpointBytes, min(int64(len(s.dirty))*checkpointBytesPerLog, maxCheckpointBytes))
}

// journalRemove journals the removal of the log name and waits until it is durable (Log.Remove
// deletes the directory only then).
func (s *Store) journalRemove(name string) error {
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	rec := appendJournalRemove(nil, s.syncedLocked(), name)
	s.buf.write(rec)
	s.appended += int64(len(rec))
	s.since += int64(len(rec))
	lsn := s.appended
	s.mu.Unlock()
	return s.syncTo(lsn)
}
