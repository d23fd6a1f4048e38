package wal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
)

// Log cleaning (compaction): rewriting sealed segments with some entries removed or replaced,
// keeping every remaining entry at its offset. See doc.go, Cleaning.

// Suffixes of a cleaning's files (appended to the segment file names of the group's first
// segment): cleanedSuffix while they are written, swapSuffix once the cleaned .log is the
// committed replacement of its group.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
)

// CleanFunc decides the fate of one entry of a segment being cleaned: keep false drops it (its
// offsets become a hole); keep true with data nil keeps it byte for byte; keep true with data
// replaces its data (same base offset, count and maxTimestamp). The returned data may be
// reused by the caller once the next call begins: it is copied.
type CleanFunc func(b Batch) (data []byte, keep bool, err error)

// CleanOptions configures CleanSegments.
type CleanOptions struct {
	// Throttle, if set, is called before every read and write of n bytes the cleaning does
	// and may block (an I/O rate limit); an error from it aborts the cleaning, which then
	// changes nothing not yet swapped in.
	Throttle func(ctx context.Context, n int) error
	// MaxSegmentBytes: consecutive sealed segments are cleaned into one segment while their
	// sizes before cleaning add up to at most this (0: the log's SegmentBytes).
	MaxSegmentBytes int64
}

// CleanStats counts what one CleanSegments call did.
type CleanStats struct {
	Segments         int   // sealed segments read
	Swapped          int   // cleaned segments swapped in (each replaces one group)
	BytesRead        int64 // segment bytes read
	BytesWritten     int64 // cleaned segment bytes written
	BytesBefore      int64 // size of the groups swapped, before
	BytesAfter       int64 // and after
	EntriesDropped   int64
	EntriesRewritten int64
}

// CleanSegments rewrites the sealed segments whose entries all lie below upTo, oldest first,
// in groups of consecutive segments (see CleanOptions.MaxSegmentBytes): fn sees every entry
// of a group in offset order, and a group in which fn dropped or replaced something is
// replaced by one segment, named by the group's base offset, holding the kept entries at
// their offsets and holes (entryVersionHole) where entries went. The active segment is
// never touched. It returns when every group was cleaned, ctx is done, fn or the throttle
// fails, or the log is closed; groups already swapped in stay so.
//
// Crash safety (doc.go, Cleaning): a group's cleaned files are written under temporary names
// and fsynced; a rename to the swap name is the commit point; Open completes a committed
// swap and deletes the files of an uncommitted one. A Store member first makes the journal
// forget the records of the group's entries (a Store checkpoint), so that replay never checks
// an entry the cleaning changed. A tagged entry (a raft log's) may be kept or rewritten (it keeps
// its tag) but not dropped: a hole has no tag, and raft needs every index it has not compacted.
//
// One CleanSegments at a time per log (others wait). Reads go on meanwhile, with their own
// file handles; a swap holds the segment lock while it renames and fsyncs.
func (l *Log) CleanSegments(ctx context.Context, upTo int64, opts CleanOptions, fn CleanFunc) (CleanStats, error) {
	var st CleanStats
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return st, ErrClosed
	}
	var segs []*segment
	for _, s := range l.segs {
		if !s.sealed || s.next > upTo {
			break
		}
		segs = append(segs, s)
	}
	l.mu.Unlock()
	maxBytes := opts.MaxSegmentBytes
	if maxBytes <= 0 {
		maxBytes = l.segmentBytes
	}
	for i := 0; i < len(segs); {
		j, size := i+1, segs[i].size
		for j < len(segs) && size+segs[j].size <= maxBytes && segs[j].next-segs[i].base <= math.MaxUint32 {
			size += segs[j].size
			j++
		}
		if err := l.cleanGroup(ctx, segs[i:j], opts, fn, &st); err != nil {
			return st, fmt.Errorf("wal: clean %s: %w", l.dir, err)
		}
		i = j
	}
	return st, nil
}

// cleanWriter writes one cleaned segment: entries and holes, with its index as Append builds
// it, through a buffer handed to the file in chunks (each throttled).
type cleanWriter struct {
	l        *Log
	ctx      context.Context
	throttle func(context.Context, int) error
	f        File
	base     int64
	buf      []byte
	pos      int64 // bytes written to f
	size     int64 // bytes of entries so far (written and buffered)
	next     int64 // offset after the last entry or hole
	holeFrom int64 // start of a pending hole (== next: none)
	maxTs    int64
	idx      []indexEntry
	lastIdx  int64
}

// point adds an index point for the entry (or hole) at offset off starting at w.size, as
// Append would.
func (w *cleanWriter) point(off int64) {
	if w.size > 0 && w.size-w.lastIdx >= w.l.indexInterval {
		w.idx = append(w.idx, indexEntry{rel: uint32(off - w.base), pos: uint32(w.size), ts: w.maxTs})
		w.lastIdx = w.size
	}
}

// flushHole writes the pending hole [holeFrom, next) (in pieces of at most MaxInt32 offsets).
func (w *cleanWriter) flushHole() error {
	for w.holeFrom < w.next {
		n := min(w.next-w.holeFrom, math.MaxInt32)
		w.point(w.holeFrom)
		w.buf = appendHole(w.buf, w.holeFrom, int32(n))
		w.size += headerSize
		w.holeFrom += n
	}
	return w.spill(false)
}

func (w *cleanWriter) hole(base int64, count int32) {
	w.next = base + int64(count)
}

// entry appends a whole framed entry e (header h) after flushing any pending hole.
func (w *cleanWriter) entry(h *entryHeader, e []byte) error {
	if err := w.flushHole(); err != nil {
		return err
	}
	w.point(h.baseOffset)
	w.buf = append(w.buf, e...)
	w.size += int64(len(e))
	w.next = h.baseOffset + int64(h.count)
	w.holeFrom = w.next
	w.maxTs = max(w.maxTs, h.maxTimestamp)
	return w.spill(false)
}

// spill hands the buffer to the file once it holds a chunk (all of it when final).
func (w *cleanWriter) spill(final bool) error {
	if len(w.buf) == 0 || !final && len(w.buf) < scanChunk {
		return nil
	}
	if w.throttle != nil {
		if err := w.throttle(w.ctx, len(w.buf)); err != nil {
			return err
		}
	}
	if _, err := w.f.WriteAt(w.buf, w.pos); err != nil {
		return err
	}
	w.pos += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

func (l *Log) cleanedNames(base int64) (logTmp, idxTmp, tidxTmp, swap string) {
	p := filepath.Join(l.dir, segmentName(base))
	return p + logSuffix + cleanedSuffix, p + indexSuffix + cleanedSuffix, p + timeIndexSuffix + cleanedSuffix, p + logSuffix + swapSuffix
}

// cleanGroup cleans one group of consecutive sealed segments.
func (l *Log) cleanGroup(ctx context.Context, group []*segment, opts CleanOptions, fn CleanFunc, st *CleanStats) (err error) {
	base, end := group[0].base, group[len(group)-1].next
	logTmp, idxTmp, tidxTmp, swap := l.cleanedNames(base)
	out, err := l.fs.OpenFile(logTmp, osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if out != nil {
			out.Close()
		}
		if !committed {
			for _, n := range []string{logTmp, idxTmp, tidxTmp} {
				if rerr := l.fs.Remove(n); rerr != nil && !isNotExist(rerr) && err == nil {
					err = rerr
				}
			}
		}
	}()
	w := &cleanWriter{l: l, ctx: ctx, throttle: opts.Throttle, f: out, base: base, next: base, holeFrom: base, maxTs: noTimestamp}
	changed := len(group) > 1
	var before int64
	for _, s := range group {
		st.Segments++
		before += s.size
		ch, err := l.cleanSegment(ctx, s, w, opts, fn, st)
		if err != nil {
			return err
		}
		changed = changed || ch
	}
	if w.next != end {
		return fmt.Errorf("%w: cleaned group ends at offset %d, want %d", ErrCorrupt, w.next, end)
	}
	if !changed {
		return nil
	}
	if err := w.flushHole(); err != nil {
		return err
	}
	if err := w.spill(true); err != nil {
		return err
	}
	st.BytesWritten += w.pos
	if err := out.Sync(); err != nil {
		return err
	}
	idx := append(w.idx, indexEntry{rel: uint32(end - base), pos: uint32(w.size), ts: w.maxTs})
	ib, tb := encodeIndex(idx)
	for _, f := range []struct {
		name string
		b    []byte
	}{{idxTmp, ib}, {tidxTmp, tb}} {
		if err := writeSynced(l.fs, f.name, f.b); err != nil {
			return err
		}
	}
	if err := out.Close(); err != nil {
		out = nil
		return err
	}
	out = nil
	if l.store != nil {
		// The journal may still hold records of the group's entries (a checkpoint has not
		// passed them since the roll that sealed them): replay would check them against the
		// cleaned segment. A checkpoint makes the journal forget every record appended so
		// far, the group's among them.
		if err := l.store.Checkpoint(); err != nil {
			return err
		}
	}
	ns := &segment{base: base, path: filepath.Join(l.dir, segmentName(base)), sealed: true, size: w.size, next: end,
		maxTs: w.maxTs, idx: idx, idxLoaded: true}
	ok, err := l.swapCleaned(group, ns, logTmp, idxTmp, tidxTmp, swap, &committed)
	if err != nil || !ok {
		return err
	}
	st.Swapped++
	st.BytesBefore += before
	st.BytesAfter += w.size
	return nil
}

// cleanSegment passes s's entries through fn into w, reading s with a handle of its own.
func (l *Log) cleanSegment(ctx context.Context, s *segment, w *cleanWriter, opts CleanOptions, fn CleanFunc, st *CleanStats) (changed bool, err error) {
	f, err := l.fs.OpenFile(s.logName(), osRDONLY, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r := entryReader{f: f, end: s.size, chunk: scanChunk}
	next := s.base
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		before := r.read
		h, e, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && h.baseOffset != next {
			err = fmt.Errorf("%w: %s: entry at offset %d, want %d", ErrCorrupt, s.logName(), h.baseOffset, next)
		}
		if err != nil {
			return false, err
		}
		if n := r.read - before; n > 0 {
			st.BytesRead += n
			if opts.Throttle != nil {
				if err := opts.Throttle(ctx, int(n)); err != nil {
					return false, err
				}
			}
		}
		next = h.baseOffset + int64(h.count)
		switch {
		case h.isHole():
			w.hole(h.baseOffset, h.count)
			continue
		}
		tagged := h.version == entryVersionTagged
		data, keep, err := fn(Batch{BaseOffset: h.baseOffset, LastOffset: next - 1, MaxTimestamp: h.maxTimestamp,
			Data: e[h.dataStart():len(e):len(e)]})
		if err != nil {
			return false, err
		}
		switch {
		case !keep && tagged:
			return false, fmt.Errorf("entry at offset %d is tagged (a raft log entry): it may be rewritten, not dropped", h.baseOffset)
		case !keep:
			changed = true
			st.EntriesDropped++
			w.hole(h.baseOffset, h.count)
		case data == nil:
			if err := w.entry(&h, e); err != nil {
				return false, err
			}
		default:
			if len(data) > maxEntryBytes {
				return false, fmt.Errorf("%w: %d bytes", ErrEntryTooLarge, len(data))
			}
			changed = true
			st.EntriesRewritten++
			var ne []byte
			if tagged {
				ne = appendEntryTagged(nil, data, h.baseOffset, h.count, h.maxTimestamp, entryTag(&h, e))
			} else {
				ne = appendEntry(nil, data, h.baseOffset, h.count, h.maxTimestamp)
			}
			nh, _ := parseHeader(ne)
			if err := w.entry(&nh, ne); err != nil {
				return false, err
			}
		}
	}
	if next != s.next {
		return false, fmt.Errorf("%w: %s ends at offset %d, want %d", ErrCorrupt, s.logName(), next, s.next)
	}
	return changed, nil
}

// writeSynced creates (or replaces) a file with b and fsyncs it.
func writeSynced(fsys FS, name string, b []byte) error {
	f, err := fsys.OpenFile(name, osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		return err
	}
	return writeSyncClose(f, b, 0)
}

// overwriteSynced writes b at the start of *f and fsyncs it, opening dir/name (created if
// need be) into *f first if *f is nil; opened says whether this call did (its directory entry
// may be new).
func overwriteSynced(fsys FS, f *File, dir, name string, b []byte) (opened bool, err error) {
	if opened, err = overwrite(fsys, f, dir, name, b); err != nil {
		return opened, err
	}
	return opened, (*f).Sync()
}

// overwrite is overwriteSynced without the fsync.
func overwrite(fsys FS, f *File, dir, name string, b []byte) (opened bool, err error) {
	if *f == nil {
		nf, err := fsys.OpenFile(filepath.Join(dir, name), osRDWR|osCREATE, 0o644)
		if err != nil {
			return false, err
		}
		*f, opened = nf, true
	}
	_, err = (*f).WriteAt(b, 0)
	return opened, err
}

// writeSyncClose writes b at off in f, fsyncs and closes f, and returns the first error.
func writeSyncClose(f File, b []byte, off int64) error { return writeAndClose(f, b, off, true) }

// writeClose writes b at off in f and closes f, and returns the first error.
func writeClose(f File, b []byte, off int64) error { return writeAndClose(f, b, off, false) }

func writeAndClose(f File, b []byte, off int64, sync bool) error {
	_, err := f.WriteAt(b, off)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// swapCleaned replaces group by the cleaned segment ns (files written and fsynced under the
// temporary names). ok is false if the group is no longer the log's (retention, a truncation
// or Close got there first): nothing changed then.
func (l *Log) swapCleaned(group []*segment, ns *segment, logTmp, idxTmp, tidxTmp, swap string, committed *bool) (ok bool, err error) {
	defer l.lockSegments()()
	if l.closed {
		return false, ErrClosed
	}
	if l.err != nil {
		return false, l.err
	}
	k := -1
	for i, s := range l.segs {
		if s == group[0] {
			k = i
			break
		}
	}
	if k < 0 || k+len(group) > len(l.segs)-1 {
		return false, nil
	}
	for i, s := range group {
		if l.segs[k+i] != s || !s.sealed {
			return false, nil
		}
	}
	// The temporary files' entries, then the commit point: the rename to the swap name.
	if err := l.fs.SyncDir(l.dir); err != nil {
		return false, err
	}
	if err := l.fs.Rename(logTmp, swap); err != nil {
		return false, err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		// Unknown whether the rename is durable: fail the log (Open completes or drops
		// the swap, whichever the disk holds).
		*committed = true
		return false, l.fail(err)
	}
	*committed = true
	// Committed: from here a failure leaves what Open completes (completeSwap); the log
	// fails so that nothing more is served from files in an unknown state.
	if err := l.finishSwap(group, swap, idxTmp, tidxTmp); err != nil {
		return false, l.fail(err)
	}
	f, err := l.fs.OpenFile(ns.logName(), osRDONLY, 0)
	if err != nil {
		return false, l.fail(err)
	}
	ns.log = f
	segs := make([]*segment, 0, len(l.segs)-len(group)+1)
	segs = append(segs, l.segs[:k]...)
	segs = append(segs, ns)
	segs = append(segs, l.segs[k+len(group):]...)
	l.segs = segs
	return true, nil
}

// finishSwap deletes the group's files (all but the first segment's .log, which the rename of
// the swap file replaces), durably, then renames the swap and index files into place.
func (l *Log) finishSwap(group []*segment, swap, idxTmp, tidxTmp string) error {
	for i, s := range group {
		s.closeFiles()
		names := []string{s.idxName(), s.tidxName()}
		if i > 0 {
			names = append(names, s.logName())
		}
		for _, n := range names {
			if err := l.fs.Remove(n); err != nil && !isNotExist(err) {
				return err
			}
		}
	}
	// The deletions are durable before the rename: a cleaned segment must never sit next to
	// a segment whose offsets it covers.
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}
	if err := l.fs.Rename(swap, group[0].logName()); err != nil {
		return err
	}
	if err := l.fs.Rename(idxTmp, group[0].idxName()); err != nil {
		return err
	}
	if err := l.fs.Rename(tidxTmp, group[0].tidxName()); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}

// recoverCleaning runs at Open, before the segments are listed: it deletes the files of a
// cleaning that never reached its commit point and completes every committed swap. It
// reports whether it changed the directory (the caller lists it again).
func (l *Log) recoverCleaning(names []string) (bool, error) {
	changed := false
	for _, n := range names {
		if strings.HasSuffix(n, cleanedSuffix) && len(n) > baseDigits {
			if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil && !isNotExist(err) {
				return changed, err
			}
			changed = true
		}
	}
	for _, n := range names {
		if !strings.HasSuffix(n, logSuffix+swapSuffix) {
			continue
		}
		base, suf, ok := parseSegmentName(strings.TrimSuffix(n, swapSuffix))
		if !ok || suf != logSuffix {
			continue
		}
		if err := l.completeSwap(base, names); err != nil {
			return changed, fmt.Errorf("complete cleaning swap %s: %w", n, err)
		}
		changed = true
	}
	if changed {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// completeSwap finishes a committed swap of the segment at base: the swap file (fsynced before
// its rename) covers base up to where its entries end; every segment starting inside that
// range is deleted, durably, then the swap file replaces the base segment's .log (its index
// files are rebuilt by Open).
func (l *Log) completeSwap(base int64, names []string) error {
	s := &segment{base: base, path: filepath.Join(l.dir, segmentName(base))}
	swap := s.logName() + swapSuffix
	f, err := l.fs.OpenFile(swap, osRDONLY, 0)
	if err != nil {
		return err
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return err
	}
	s.log, s.size = f, size
	_, end, next, _, _, _, serr := l.scan(s, 0, base, noTimestamp, nil, 0, -1)
	f.Close()
	if serr != nil || end != size {
		return fmt.Errorf("%w: swap file %s is damaged at position %d: %v", ErrCorrupt, swap, end, serr)
	}
	for _, n := range names {
		b, suf, ok := parseSegmentName(n)
		if !ok || b < base || b >= next || b == base && suf == logSuffix {
			continue
		}
		if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil && !isNotExist(err) {
			return err
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return err
	}
	return l.fs.Rename(swap, s.logName())
}
