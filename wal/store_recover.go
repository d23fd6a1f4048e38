package wal

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
)

// recover reads the journal from its checkpoint, replays it into the partition logs, and
// starts a fresh journal segment at its end.
func (s *Store) recover() error {
	if err := s.fs.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	if err := s.fs.SyncDir(s.root); err != nil {
		return err
	}
	if fss := filesystemSyncer(s.fs); fss != nil && s.opts.SyncFSMinLogs > 0 {
		// Before anything is written: the handle reports the writeback errors since it was
		// opened. Without one, checkpoints fsync each log.
		if sy, err := fss.OpenSyncer(s.root); err == nil {
			s.syncer = sy
		} else if s.logger != nil {
			s.logger.Warn("wal: no filesystem sync; checkpoints fsync each log", "dir", s.root, "err", err)
		}
	}
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var bases []int64
	for _, n := range names {
		if b, ok := parseJournalName(n); ok {
			bases = append(bases, b)
		} else if seq, ok := parseSpareName(n); ok {
			s.spares = append(s.spares, n)
			s.spareSeq = max(s.spareSeq, seq+1)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	ckpt, ckptOK := s.readCheckpoint()
	if !ckptOK && len(bases) > 0 {
		ckpt = bases[0] // a damaged checkpoint only means replaying (verifying) more
	}
	// Read the records from the checkpoint on.
	var recs []journalRecord
	end := ckpt
	for i, b := range bases {
		data, err := readWhole(s.fs, filepath.Join(s.dir, journalName(b)))
		if err != nil {
			return err
		}
		if i < len(bases)-1 && int64(len(data)) > bases[i+1]-b {
			// A sealed segment ends where the next begins; a recycled or preallocated
			// file holds leftovers or zeros past that (doc.go, Recycled segments).
			data = data[:bases[i+1]-b]
		}
		segEnd := b + int64(len(data))
		if segEnd <= ckpt {
			continue
		}
		if b > end && len(recs) > 0 {
			return fmt.Errorf("%w: journal segment %s starts at %d, after the previous one ends at %d", ErrCorrupt, journalName(b), b, end)
		}
		from := max(ckpt-b, 0)
		rs, e, err := readJournal(data, b, from)
		if err != nil {
			return fmt.Errorf("journal segment %s: %w", journalName(b), err)
		}
		if e < int64(len(data)) && i < len(bases)-1 {
			// Only the last segment can have a torn tail: a segment is rolled after its
			// last fsync.
			return fmt.Errorf("%w: journal segment %s damaged at position %d of %d", ErrCorrupt, journalName(b), e, len(data))
		}
		if e < int64(len(data)) && s.logger != nil && !allZero(data[e:]) {
			s.logger.Info("wal: journal: end of the records before the end of the file (a torn tail, or an earlier use of a recycled file)", "segment", journalName(b), "position", e, "bytes", int64(len(data))-e)
		}
		recs = append(recs, rs...)
		end = b + e
	}
	end = max(end, ckpt)
	for _, b := range bases {
		end = max(end, b)
	}
	if err := s.replay(recs); err != nil {
		return err
	}
	// A new segment at the end (a spare file if there is one: its leftovers are older than
	// end); then the checkpoint; then the old segments can go.
	if s.seg, s.segAlloc, err = s.newSegmentLocked(end); err != nil {
		return err
	}
	if err := s.seg.Sync(); err != nil {
		return err
	}
	if err := s.writeCheckpoint(end); err != nil {
		return err
	}
	for _, b := range bases {
		// Removed, not kept as spares: they may have been written by a binary that wrote
		// version-1 records, whose leftovers a recycled file must not hold.
		if b != end {
			if err := s.fs.Remove(filepath.Join(s.dir, journalName(b))); err != nil && !isNotExist(err) {
				return err
			}
		}
	}
	for len(s.spares) > maxJournalSpares {
		if err := s.fs.Remove(filepath.Join(s.dir, s.spares[0])); err != nil && !isNotExist(err) {
			return err
		}
		s.spares = s.spares[1:]
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return err
	}
	s.segs = []int64{end}
	s.segBase, s.appended, s.written, s.durable = end, end, end, end
	return nil
}

// replay hands each partition its journal records: entries it lacks are re-appended, entries
// it has are verified, entries past what the journal and its recovery point cover are cut.
func (s *Store) replay(recs []journalRecord) error {
	byName := map[string][]journalRecord{}
	removed := map[string]bool{}
	// created: the log's first record in the journal shows it was created since the
	// journal checkpoint (its entries start at 0, or it begins with a state or a reset).
	created := map[string]bool{}
	var order []string
	for _, r := range recs {
		if _, ok := byName[r.name]; !ok && !removed[r.name] {
			order = append(order, r.name)
			created[r.name] = r.isEntry() && r.base == 0 || r.kind == journalKindState || r.kind == journalKindReset
		}
		switch r.kind {
		case journalKindRemove:
			// Log.Remove: the records before it are of the removed log.
			byName[r.name], removed[r.name] = nil, true
			continue
		case journalKindReset:
			// Log.Reset: the log is empty from here on; the entries and truncations before
			// it are gone (not its state).
			byName[r.name] = append(slices.DeleteFunc(byName[r.name], func(e journalRecord) bool {
				return e.kind != journalKindState
			}), r)
			continue
		case journalKindTruncate:
			// Log.TruncateFrom: the entries it removes need not be verified or re-appended
			// first (the partition may no longer hold them, durably).
			// An earlier truncation at or above this one is superseded by it.
			byName[r.name] = slices.DeleteFunc(byName[r.name], func(e journalRecord) bool {
				return (e.isEntry() || e.kind == journalKindTruncate) && e.base >= r.base
			})
		}
		byName[r.name] = append(byName[r.name], r)
	}
	sort.Strings(order)
	var recreated []string // one summary line, not one per partition (a crash soon after many were created)
	defer func() {
		if len(recreated) > 0 && s.logger != nil {
			s.logger.Info("wal: journal: recreated log directories lost before their first checkpoint",
				"logs", len(recreated), "first", recreated[:min(3, len(recreated))])
		}
	}()
	for _, name := range order {
		dir := filepath.Join(s.root, filepath.FromSlash(name))
		if n, err := s.nameOf(dir); err != nil || n != name {
			// An intact record (its CRC passed) naming no directory inside the store: never
			// written by us. Refuse rather than write outside the root.
			return fmt.Errorf("%w: journal record names %q, not a log directory inside the store", ErrCorrupt, name)
		}
		if len(byName[name]) == 0 {
			continue // removed
		}
		if _, err := s.fs.ReadDir(dir); err != nil {
			if !isNotExist(err) {
				return err
			}
			// A LazyDir member's directory is created by its first flush and made durable
			// by its first checkpoint, so a crash may have lost it while the journal holds
			// all its entries, from offset 0: create it again. So with a log that begins
			// with a state or a reset (Reset makes the directory durable only after its
			// record). Records that do not start so are those of a log removed since
			// (Log.Remove also leaves a remove record); a log created and deleted since
			// the journal checkpoint without Log.Remove comes back (the broker purges
			// deleted topics' directories after OpenStore).
			if recs := byName[name]; !created[name] {
				if s.logger != nil {
					s.logger.Info("wal: journal: skipping records of a removed log", "log", name, "records", len(recs))
				}
				continue
			}
			if s.logger != nil {
				s.logger.Debug("wal: journal: recreating a log directory lost before its first checkpoint", "log", name, "records", len(byName[name]))
			}
			recreated = append(recreated, name)
			if err := MkdirDurable(s.fs, dir); err != nil {
				return err
			}
		}
		opts := s.opts.Replay
		opts.FS, opts.Logger, opts.Stamp = s.fs, s.logger, nil
		l, err := openLog(dir, opts, nil, true, byName[name])
		if err != nil {
			return err
		}
		st := l.Stats()
		s.stats.Replayed += st.Replayed
		s.stats.Verified += st.Verified
		if err := l.Close(); err != nil {
			return err
		}
	}
	return nil
}
