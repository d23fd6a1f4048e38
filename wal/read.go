package wal

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// Read returns whole entries, starting with the one containing offset (or, when offset lies
// in a hole a cleaning left, the first entry after it), until adding the next
// would take the total data length past maxBytes; the first entry is returned even if it alone
// is larger (KIP-74). offset == NextOffset() returns (nil, nil); offset below StartOffset() or
// above NextOffset() returns ErrOffsetOutOfRange. The start is found through the segment list
// and the sparse index, then at most one index interval is scanned.
func (l *Log) Read(offset int64, maxBytes int) ([]Batch, error) {
	return l.ReadInto(offset, maxBytes, nil)
}

// ReadInto is Read that reads into buf instead of fresh memory when buf's capacity is
// enough for the first read window (a window is at most 8 MiB + 512 bytes and, where more
// is stored, at least min(max(maxBytes, IndexIntervalBytes), 8 MiB) + 512): the returned
// Data may then alias buf, which the caller must not reuse while it uses them. A caller
// that pools read memory passes it here; buf's contents before the call do not matter.
func (l *Log) ReadInto(offset int64, maxBytes int, buf []byte) ([]Batch, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	if offset < l.segs[0].base || offset > l.next {
		l.mu.Unlock()
		return nil, ErrOffsetOutOfRange
	}
	if offset == l.next {
		l.mu.Unlock()
		return nil, nil
	}
	segs := l.segs
	l.mu.Unlock()
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset }) - 1
	var out []Batch
	used := 0
	for ; i < len(segs); i++ {
		v, err := l.view(segs[i])
		if err != nil {
			return out, err
		}
		if offset >= v.next {
			continue
		}
		chunk := min(max(int64(maxBytes), l.indexInterval), 8<<20) + 16*headerSize
		pos, off := lookup(v.idx, v.s.base, offset)
		full, err := l.readSegment(v, pos, off, offset, chunk, maxBytes, &out, &used, &buf)
		if errors.Is(err, errIndexPoint) && pos > 0 && len(out) == 0 {
			// The index point may be what is damaged: retry with a scan from the segment start.
			full, err = l.readSegment(v, 0, v.s.base, offset, chunk, maxBytes, &out, &used, &buf)
		}
		if err != nil {
			return out, fmt.Errorf("wal: read %s: %w", v.s.logName(), err)
		}
		if full {
			break
		}
		offset = v.next
	}
	return out, nil
}

// segView is a consistent snapshot of one segment for a reader.
type segView struct {
	s    *segment
	f    File  // what to read: s.log, or a copy of the buffered bytes (see view)
	end  int64 // readable bytes
	next int64
	idx  []indexEntry
}

// view snapshots s. For the active segment it first hands buffered bytes to the file, so a
// Read sees every Append that returned before it (decision: flush on read rather than read
// through the buffer).
func (l *Log) view(s *segment) (segView, error) {
	l.mu.Lock()
	if !s.sealed {
		defer l.mu.Unlock()
		if l.buf.len() > 0 && l.err == nil && s == l.active() {
			if d, ok := s.log.(*deferredFile); ok && l.flushed == 0 && !d.created() {
				// The segment file does not exist yet and the buffer holds the whole
				// segment: read a copy of it rather than create the file on the read path
				// (a consumer's first fetch of thousands of new partitions would create
				// them all; the checkpoint does, off the fetch path).
				return segView{s: s, f: memFile(l.buf.bytes()), end: int64(l.buf.len()), next: l.next, idx: s.idx}, nil
			}
			if err := l.flushLocked(); err != nil {
				return segView{}, l.fail(err)
			}
		}
		// After a failed flush the buffer's entries never reach the file: read what did.
		return segView{s: s, f: s.log, end: l.flushed, next: l.flushedNext, idx: s.idx}, nil
	}
	l.mu.Unlock()
	idx, err := l.sealedIndex(s)
	if err != nil {
		return segView{}, err
	}
	return segView{s: s, f: s.log, end: s.size, next: s.next, idx: idx}, nil
}

// sealedIndex returns a sealed segment's index, loading it on first use. A damaged index file
// yields a shorter index (more scanning), never wrong data: every entry read is checked.
func (l *Log) sealedIndex(s *segment) ([]indexEntry, error) {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if s.idxLoaded {
		return s.idx, nil
	}
	idx, err := readIndexFiles(l.fs, s, s.size)
	if err != nil {
		return nil, err
	}
	s.idx, s.idxLoaded = idx, true
	return idx, nil
}

// errIndexPoint marks a corruption found at the very entry an index point led to: the index
// point itself may be wrong, so the caller retries with a scan from the segment start. Damage
// found after at least one good entry is not retried (the index was right).
var errIndexPoint = errors.New("at an index point")

func atIndexPoint(err error, first bool) error {
	if first && IsCorruption(err) {
		return fmt.Errorf("%w (%w)", err, errIndexPoint)
	}
	return err
}

// readSegment appends entries of v from the one containing offset on; scanning starts at pos
// (the entry with offset off). full reports that maxBytes was reached.
// spare is memory for the first window; it is set to nil once a window took it (a retry
// after a damaged index point then allocates, as the first attempt's batches may alias it).
func (l *Log) readSegment(v segView, pos, off, offset, chunk int64, maxBytes int, out *[]Batch, used *int, spare *[]byte) (full bool, err error) {
	r := entryReader{f: v.f, end: v.end, pos: pos, chunk: chunk, spare: *spare}
	defer func() {
		if r.spare == nil {
			*spare = nil
		}
	}()
	next := off
	for {
		if len(*out) > 0 {
			// Stop before an entry that would take the answer past maxBytes without reading
			// (and checking) all of it only to drop it.
			if n, ok := r.peekLength(); ok && *used+n > maxBytes {
				return true, nil
			}
		}
		h, e, err := r.next()
		if errors.Is(err, io.EOF) {
			if next != v.next {
				return false, fmt.Errorf("%w: segment ends at offset %d, want %d", ErrCorrupt, next, v.next)
			}
			return false, nil
		}
		if err == nil && h.baseOffset != next {
			err = fmt.Errorf("%w: entry at offset %d, want %d", ErrCorrupt, h.baseOffset, next)
		}
		if err != nil {
			return false, atIndexPoint(err, next == off)
		}
		next = h.baseOffset + int64(h.count)
		if next <= offset || h.isHole() {
			continue // a hole (clean.go) is never returned: its offsets are a gap
		}
		if len(*out) > 0 && *used+h.dataLen() > maxBytes {
			return true, nil
		}
		*out = append(*out, Batch{
			BaseOffset:   h.baseOffset,
			LastOffset:   next - 1,
			MaxTimestamp: h.maxTimestamp,
			Tag:          entryTag(&h, e),
			Data:         e[h.dataStart():len(e):len(e)],
		})
		*used += h.dataLen()
		if *used >= maxBytes {
			return true, nil
		}
	}
}
