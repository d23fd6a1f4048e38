package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"sync"
	"time"
)

// checkpointer runs Checkpoint when CheckpointBytes of journal were written or every
// CheckpointInterval while there is something to checkpoint. Stopped by Close.
func (s *Store) checkpointer() {
	defer s.wg.Done()
	newTicker := s.opts.NewTicker
	if newTicker == nil {
		newTicker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	tc, stop := newTicker(s.opts.CheckpointInterval)
	defer stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-tc:
		case <-s.spareKick:
			s.makeSpare()
			continue
		}
		s.mu.Lock()
		idle := len(s.dirty) == 0 && s.since == 0
		held := s.heldBufs
		if idle {
			s.releaseJournalBufsLocked()
		}
		s.mu.Unlock()
		if idle {
			if held {
				s.releaseIdleBufs()
			}
			continue
		}
		if err := s.Checkpoint(); err != nil && !errors.Is(err, ErrClosed) && s.logger != nil {
			s.logger.Error("wal: checkpoint", "err", err)
		}
	}
}

// Checkpoint makes every partition file durable up to what the journal holds, records that
// in the journal checkpoint, and deletes journal segments wholly below it. A failure is
// sticky (the Store fails).
func (s *Store) Checkpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	// Every record below c belongs to a log in dirty (or to a log closed or removed since,
	// whose Close made it durable): once those logs are fsynced, replay can start at c.
	c := s.appended
	dirty := s.dirty
	s.dirty = make(map[*Log]struct{}, len(dirty))
	s.gen++
	s.since = 0
	s.heldBufs = len(dirty) > 0 // beginCheckpoint leaves each its (emptied) write buffer
	var cold []*Log
	for _, l := range s.logs {
		if _, ok := dirty[l]; !ok && l != nil {
			cold = append(cold, l)
		}
	}
	s.mu.Unlock()
	// Logs not appended to since the last checkpoint are cold: their sealed segments'
	// indexes are dropped from memory (reloaded by the next read that needs one), and so is
	// the write buffer the last checkpoint left them.
	for _, l := range cold {
		l.dropSealedIndexes()
	}
	logs := make([]*Log, 0, len(dirty))
	for l := range dirty {
		logs = append(logs, l)
	}
	var targets []ckptTarget
	defer func() {
		for _, t := range targets {
			if t.l != nil {
				t.l.endCheckpoint(t, false, nil)
			}
		}
	}()
	upTo := c
	for _, l := range logs {
		t, ok, err := l.beginCheckpoint()
		if err != nil {
			// A log whose file write failed holds less than the journal: the journal must
			// not forget its records.
			return s.fail(fmt.Errorf("checkpoint %s: %w", l.dir, err))
		}
		if ok {
			targets = append(targets, t)
			upTo = max(upTo, t.lsn)
		}
	}
	// The recovery points written below cover only entries whose records are durable.
	if err := s.syncTo(upTo); err != nil {
		return err
	}
	var errs []error
	if s.syncer != nil && len(targets) >= s.opts.SyncFSMinLogs {
		errs = s.syncFilesystem(targets)
	} else {
		errs = s.fsyncEach(targets)
	}
	var firstErr error
	for i, t := range targets {
		if errs[i] != nil {
			err := s.fail(fmt.Errorf("checkpoint %s: %w", t.l.dir, errs[i]))
			if firstErr == nil {
				firstErr = err
			}
			t.l.endCheckpoint(t, false, err)
		} else {
			t.l.endCheckpoint(t, true, nil)
		}
		targets[i].l = nil
	}
	if firstErr != nil {
		return firstErr
	}
	// New members' directory entries: every directory from their parents up to the root,
	// each once.
	var created []*Log
	synced := map[string]bool{}
	for _, l := range logs {
		if !l.parentDirty.Load() {
			continue
		}
		created = append(created, l)
		err := s.syncAncestors(l.dir, func(d string) error {
			if synced[d] {
				return nil
			}
			synced[d] = true
			return s.fs.SyncDir(d)
		})
		if err != nil {
			return s.fail(fmt.Errorf("checkpoint: directories of %s: %w", l.dir, err))
		}
	}
	for _, l := range created {
		l.parentDirty.Store(false)
	}
	// A log that failed meanwhile (and is no target) may hold less than the journal.
	s.mu.Lock()
	err := s.err
	segs := append([]int64(nil), s.segs...)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	// The checkpoint file and old segments are touched only under ckptMu: appends and
	// commits go on meanwhile.
	if err := s.writeCheckpoint(c); err != nil {
		return s.fail(err)
	}
	// Segments wholly below c (every segment but the active one ends where the next begins).
	n := 0
	for n < len(segs)-1 && segs[n+1] <= c {
		if err := s.retireSegment(segs[n], segs[n+1]-segs[n]); err != nil {
			return s.fail(err)
		}
		n++
	}
	if n > 0 {
		if err := s.fs.SyncDir(s.dir); err != nil {
			return s.fail(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.segs = s.segs[n:] // rolls only append, so the removed ones are still the first n
	s.stats.Checkpoints++
	return nil
}

// fsyncEach makes the targets durable with their own fsyncs (Log.fsyncCheckpoint), a few at a
// time; errs[i] is targets[i]'s error.
func (s *Store) fsyncEach(targets []ckptTarget) (errs []error) {
	errs = make([]error, len(targets))
	inParallel(len(targets), func(i int) { errs[i] = targets[i].l.fsyncCheckpoint(targets[i]) })
	s.mu.Lock()
	s.stats.PartitionFsyncs += 2 * int64(len(targets))
	s.mu.Unlock()
	return errs
}

// syncFilesystem makes the targets durable as fsyncEach does, with two syncs of the whole
// filesystem instead of two or three fsyncs per log: every log's segment data is written back
// (not made durable) and its state file written when it changed; one sync makes those
// durable; every recovery point is written; a second sync makes them and the logs' new
// directory entries durable. The recovery point moves only over bytes already durable, as
// with fsyncEach. A failed sync fails every target: which bytes it made durable is unknown.
func (s *Store) syncFilesystem(targets []ckptTarget) (errs []error) {
	errs = make([]error, len(targets))
	failAll := func(err error) {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	syncAll := func() bool {
		err := s.syncer.Sync()
		s.mu.Lock()
		s.stats.FilesystemSyncs++
		s.mu.Unlock()
		if err != nil {
			failAll(err)
		}
		return err == nil
	}
	// The segments' data goes to the disk a few files at a time first (writeBacker), as
	// fsyncEach's fsyncs would send it; the sync then makes it durable with little to write.
	inParallel(len(targets), func(i int) { errs[i] = writeBack(targets[i].logF) })
	for i, t := range targets {
		if errs[i] == nil {
			errs[i] = t.l.checkpointState(t)
		}
	}
	if !syncAll() {
		return errs
	}
	for i, t := range targets {
		if errs[i] == nil {
			errs[i] = t.l.checkpointPoint(t)
		}
	}
	syncAll()
	return errs
}

// inParallel runs fn(0) … fn(n-1), checkpointParallel at a time (a filesystem commits
// concurrent fsyncs together), on short-lived goroutines it waits for.
func inParallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, checkpointParallel)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}

// releaseJournalBufsLocked drops journal buffers larger than journalWriteBytes that a busy
// period left (the commit leader keeps them, up to maxJournalSpare), once the Store is idle.
// Called with mu held.
func (s *Store) releaseJournalBufsLocked() {
	if s.spare.cap() > journalWriteBytes {
		s.spare.release()
	}
	if !s.syncing && s.buf.len() == 0 && s.buf.cap() > journalWriteBytes {
		s.buf.release()
	}
}

// releaseIdleBufs hands back the write buffers that the last checkpoint left with its logs,
// once nothing was appended since (the checkpointer, when it finds nothing to checkpoint):
// an idle log holds no write buffer.
func (s *Store) releaseIdleBufs() {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.mu.Lock()
	if len(s.dirty) > 0 || s.closed {
		s.mu.Unlock()
		return // a checkpoint will come, and release them
	}
	s.heldBufs = false
	logs := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		if l != nil {
			logs = append(logs, l)
		}
	}
	s.mu.Unlock()
	for _, l := range logs {
		l.mu.Lock()
		l.releaseBuf()
		l.mu.Unlock()
	}
}

// Journal checkpoint file: every record below lsn is reflected in fsynced partition files.
//
//	offset size field
//	     0    4 crc      CRC-32C of bytes 4..24
//	     4    1 version  1
//	     5    3 reserved 0
//	     8    8 lsn      journal position replay starts at
//	    16    8 reserved 0
func (s *Store) readCheckpoint() (int64, bool) {
	b, err := readWhole(s.fs, filepath.Join(s.dir, journalCheckpointName))
	if err != nil || len(b) < journalCheckpointSize {
		return 0, false
	}
	if crc32.Checksum(b[4:journalCheckpointSize], castagnoli) != beUint32(b[0:4]) || b[4] != 1 {
		return 0, false
	}
	return int64(beUint64(b[8:16])), true
}

func (s *Store) writeCheckpoint(lsn int64) error {
	var b [journalCheckpointSize]byte
	b[4] = 1
	binary.BigEndian.PutUint64(b[8:16], uint64(lsn))
	binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:], castagnoli))
	opened, err := overwriteSynced(s.fs, &s.ckptFile, s.dir, journalCheckpointName, b[:])
	if err != nil {
		return err
	}
	if opened {
		return s.fs.SyncDir(s.dir)
	}
	return nil
}

// syncAncestors calls syncDir for every directory from dir's parent up to the store root.
func (s *Store) syncAncestors(dir string, syncDir func(string) error) error {
	for d := filepath.Dir(filepath.Clean(dir)); ; d = filepath.Dir(d) {
		if err := syncDir(d); err != nil {
			return err
		}
		if d == s.root || len(d) <= len(s.root) || filepath.Dir(d) == d {
			return nil
		}
	}
}
