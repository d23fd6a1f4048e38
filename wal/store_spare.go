package wal

import (
	"fmt"
	"path/filepath"
)

// Recycled and preallocated journal segments (doc.go, Recycled segments).
const (
	spareSuffix = ".spare"
	// maxJournalSpares: spare segment files a Store keeps (disk: this many SegmentBytes).
	maxJournalSpares = 2
	// spareAfterBytes: a Store whose active segment is a new (unallocated) file asks the
	// checkpointer for a zero-filled spare once this much (or a quarter of SegmentBytes, if
	// less) was written into it, and rolls to the spare as soon as it is ready; an idle
	// Store never makes one. Once per open: from then on retired segments are the spares
	// (a checkpoint retires a sealed segment within CheckpointBytes, so while the journal is
	// written one is ready by the next roll; until then the journal extends a new file, and
	// rolls to the spare as soon as one is retired). Decision: zero-filling costs about
	// what extending a file by as much does, so doing it again at every roll that finds no
	// spare (the first ones after the short first segment) would write more zeros than the
	// fresh segment it replaces.
	spareAfterBytes = 4 << 20
	spareFillChunk  = 1 << 20
)

func spareName(seq int64) string { return segmentName(seq) + spareSuffix }

func parseSpareName(name string) (int64, bool) { return parseNumberedName(name, spareSuffix) }

// newSegmentLocked opens the journal segment file starting at journal position base: a spare
// renamed to the segment's name if there is one (its allocated size is returned: writes below
// it overwrite blocks the file already has, so fdatasync has no metadata to commit), else a
// new empty file. The directory is fsynced before it returns, so the name is durable before
// anything is written under it. Called with mu held (or before the Store is shared).
func (s *Store) newSegmentLocked(base int64) (File, int64, error) {
	name := filepath.Join(s.dir, journalName(base))
	for len(s.spares) > 0 {
		spare := s.spares[len(s.spares)-1]
		s.spares = s.spares[:len(s.spares)-1]
		if err := s.fs.Rename(filepath.Join(s.dir, spare), name); err != nil {
			if isNotExist(err) {
				continue
			}
			return nil, 0, err
		}
		f, err := s.fs.OpenFile(name, osRDWR, 0o644)
		if err != nil {
			return nil, 0, err
		}
		size, err := f.Size()
		if err == nil {
			err = s.fs.SyncDir(s.dir)
		}
		if err != nil {
			f.Close()
			return nil, 0, err
		}
		s.stats.SegmentsRecycled++
		return f, size, nil
	}
	f, err := s.fs.OpenFile(name, osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		return nil, 0, err
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, 0, nil
}

// retireSegment disposes of the journal segment at base, wholly below the journal checkpoint
// and closed: it becomes a spare when it is at least SegmentBytes long (size: its length in
// the journal, which its file has at least) and fewer than maxJournalSpares are kept, else
// it is removed. The change is made durable by the caller's directory fsync (a crash before
// it leaves the segment under its name, below the checkpoint: the next OpenStore retires it).
func (s *Store) retireSegment(base, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := filepath.Join(s.dir, journalName(base))
	if size >= s.opts.SegmentBytes && len(s.spares) < maxJournalSpares {
		spare := spareName(s.spareSeq)
		s.spareSeq++
		err := s.fs.Rename(name, filepath.Join(s.dir, spare))
		if err == nil {
			s.spares = append(s.spares, spare)
		}
		if isNotExist(err) {
			return nil
		}
		return err
	}
	if err := s.fs.Remove(name); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

// makeSpare writes a zero-filled spare segment file of SegmentBytes and fsyncs it, when the
// Store has none (run by the checkpointer, asked by appendRec). A failure only costs the
// preallocation: the file is removed and the error logged.
func (s *Store) makeSpare() {
	s.mu.Lock()
	if len(s.spares) > 0 || s.closed || s.err != nil {
		s.mu.Unlock()
		return
	}
	spare := spareName(s.spareSeq)
	name := filepath.Join(s.dir, spare)
	s.spareSeq++
	size := s.opts.SegmentBytes
	s.mu.Unlock()
	err := fillZeros(s.fs, name, size)
	if err != nil {
		_ = s.fs.Remove(name)
		if s.logger != nil {
			s.logger.Warn("wal: preallocating a journal segment", "err", err)
		}
		return
	}
	s.mu.Lock()
	s.spares = append(s.spares, spare)
	s.stats.SparesMade++
	s.mu.Unlock()
}

// fillZeros creates name holding size zero bytes, written (not a sparse file or fallocate's
// unwritten extents, which a later write converts with a metadata commit) and fsynced.
func fillZeros(fsys FS, name string, size int64) error {
	f, err := fsys.OpenFile(name, osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		return err
	}
	zeros := make([]byte, min(size, spareFillChunk))
	for off := int64(0); off < size && err == nil; off += int64(len(zeros)) {
		_, err = f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("zero-filling %s: %w", name, err)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
