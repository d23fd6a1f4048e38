package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// noTimestamp is the running maximum of a segment that holds no entry yet.
const noTimestamp = math.MinInt64

const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	baseDigits      = 20
)

// segmentName returns the file name stem of the segment starting at base.
func segmentName(base int64) string {
	s := strconv.FormatInt(base, 10)
	return strings.Repeat("0", baseDigits-len(s)) + s
}

// parseSegmentName splits a directory entry into base offset and suffix. ok is false for names
// that are not ours.
func parseSegmentName(name string) (base int64, suffix string, ok bool) {
	if len(name) <= baseDigits {
		return 0, "", false
	}
	stem, suffix := name[:baseDigits], name[baseDigits:]
	switch suffix {
	case logSuffix, indexSuffix, timeIndexSuffix:
	default:
		return 0, "", false
	}
	for _, c := range stem {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	base, err := strconv.ParseInt(stem, 10, 64)
	if err != nil {
		return 0, "", false
	}
	return base, suffix, true
}

// indexEntry is one sparse index point: the entry starting at pos has base offset
// segment.base+rel, and every entry before pos in the segment has MaxTimestamp <= ts.
// The same point is stored in two files: rel and pos in .index, ts and rel in .timeindex.
type indexEntry struct {
	rel uint32
	pos uint32
	ts  int64
}

// segment is one .log file with its two index files.
type segment struct {
	base int64
	path string // directory + segmentName(base), without suffix

	// log is open for the segment's lifetime. Closed only with Log.segMu held for writing.
	log File

	// Fields below are guarded by Log.mu while the segment is active and immutable once
	// it is sealed (sealed is set under Log.mu by roll, or at Open).
	sealed bool
	size   int64 // bytes in .log, including the log's unflushed buffer when active
	next   int64 // offset after the last entry
	maxTs  int64 // max MaxTimestamp of all entries; noTimestamp if empty

	// Active segment only (guarded by Log.mu).
	idxFile, tidxFile File
	idxFileSize       int64 // bytes written to .index (the .timeindex holds the same count of entries)
	pendIdx, pendTidx []byte
	lastIdxPos        int64 // position of the last index point (0 at the start)
	ckptPos           int64 // position of the last recovery point written for this segment
	reserved          int64 // the log file's blocks allocated up to here (reserveLocked)

	// idx is the index in memory. For the active segment it is complete and guarded by
	// Log.mu (readers snapshot the slice header). For a sealed segment opened from disk it
	// is loaded on first use under idxMu.
	idxMu     sync.Mutex
	idx       []indexEntry
	idxLoaded bool
	// firstTag is the tag of the segment's first entry, once looked up (guarded by idxMu;
	// dropped when a truncation empties the segment).
	firstTag      uint64
	firstTagKnown bool
}

func (s *segment) logName() string  { return s.path + logSuffix }
func (s *segment) idxName() string  { return s.path + indexSuffix }
func (s *segment) tidxName() string { return s.path + timeIndexSuffix }

// lookup returns the position and offset of the last index point at or before offset
// (the segment start if there is none).
func lookup(idx []indexEntry, base, offset int64) (pos int64, off int64) {
	i := sort.Search(len(idx), func(i int) bool { return base+int64(idx[i].rel) > offset })
	if i == 0 {
		return 0, base
	}
	return int64(idx[i-1].pos), base + int64(idx[i-1].rel)
}

// lookupTime returns where to start scanning for the first entry with MaxTimestamp >= ts.
func lookupTime(idx []indexEntry, base, ts int64) (pos int64, off int64) {
	i := sort.Search(len(idx), func(i int) bool { return idx[i].ts >= ts })
	if i == 0 {
		return 0, base
	}
	return int64(idx[i-1].pos), base + int64(idx[i-1].rel)
}

// readIndexFiles reads a segment's two index files and returns the longest consistent prefix
// of index points: parallel entries with equal relative offsets, strictly increasing offsets and
// positions, non-decreasing timestamps and positions below logSize (logSize < 0: no bound).
func readIndexFiles(fsys FS, s *segment, logSize int64) ([]indexEntry, error) {
	ib, err := readWhole(fsys, s.idxName())
	if err != nil {
		return nil, err
	}
	tb, err := readWhole(fsys, s.tidxName())
	if err != nil {
		return nil, err
	}
	n := min(len(ib)/offIndexEntrySize, len(tb)/timeIndexEntrySize)
	idx := make([]indexEntry, 0, n)
	for i := range n {
		o := ib[i*offIndexEntrySize:]
		t := tb[i*timeIndexEntrySize:]
		e := indexEntry{
			rel: binary.BigEndian.Uint32(o[0:4]),
			pos: binary.BigEndian.Uint32(o[4:8]),
			ts:  int64(binary.BigEndian.Uint64(t[0:8])),
		}
		if binary.BigEndian.Uint32(t[8:12]) != e.rel || e.pos == 0 {
			break
		}
		if logSize >= 0 && int64(e.pos) > logSize {
			break
		}
		if len(idx) > 0 {
			p := idx[len(idx)-1]
			if e.rel <= p.rel || e.pos <= p.pos || e.ts < p.ts {
				break
			}
		}
		idx = append(idx, e)
	}
	return idx, nil
}

// readWhole reads a whole file; a missing file reads as empty.
func readWhole(fsys FS, name string) ([]byte, error) { return readTail(fsys, name, -1) }

// readTail reads the last n bytes of a file (nil if it is shorter or missing); n < 0 reads
// all of it.
func readTail(fsys FS, name string, n int) ([]byte, error) {
	f, err := fsys.OpenFile(name, osRDONLY, 0)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		n = int(size)
	}
	if size < int64(n) {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, size-int64(n)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// encodeIndex returns the .index and .timeindex bytes of idx.
func encodeIndex(idx []indexEntry) (ib, tb []byte) {
	ib = make([]byte, len(idx)*offIndexEntrySize)
	tb = make([]byte, len(idx)*timeIndexEntrySize)
	for i, e := range idx {
		putOffIndex(ib[i*offIndexEntrySize:], e.rel, e.pos)
		putTimeIndex(tb[i*timeIndexEntrySize:], e.ts, e.rel)
	}
	return ib, tb
}

// entryReader walks whole entries of one segment file with positional reads through a window.
// Windows are freshly allocated (or spare, once), so slices it returns stay valid after
// further reads.
type entryReader struct {
	f      File
	end    int64 // stop at this position
	pos    int64 // position of the next entry
	chunk  int64 // preferred window size
	buf    []byte
	bufPos int64
	read   int64  // bytes read from f
	spare  []byte // memory for the next window, used once, when its capacity is enough
}

// next returns the entry at r.pos (header and the whole framed bytes) and advances.
// It returns io.EOF at r.end and an ErrCorrupt error for anything that is not a whole valid
// entry.
func (r *entryReader) next() (entryHeader, []byte, error) {
	if r.pos >= r.end {
		return entryHeader{}, nil, io.EOF
	}
	if r.end-r.pos < headerSize {
		return entryHeader{}, nil, fmt.Errorf("%w: partial header at position %d", ErrCorrupt, r.pos)
	}
	hb, err := r.window(r.pos, headerSize)
	if err != nil {
		return entryHeader{}, nil, err
	}
	h, err := parseHeader(hb)
	if err != nil {
		return h, nil, fmt.Errorf("%w (position %d)", err, r.pos)
	}
	if r.pos+h.size() > r.end {
		return h, nil, fmt.Errorf("%w: entry at position %d runs past the end", ErrCorrupt, r.pos)
	}
	e, err := r.window(r.pos, h.size())
	if err != nil {
		return h, nil, err
	}
	if err := verify(&h, e); err != nil {
		return h, nil, fmt.Errorf("%w (position %d)", err, r.pos)
	}
	r.pos += h.size()
	return h, e, nil
}

// peekLength returns the data length the header at r.pos announces, reading only the
// header when it is not in the window already; ok is false when there is no readable header
// there (next reports why). The length is unverified (the CRC covers the whole entry): it
// serves only to stop before an entry that would not be returned anyway.
func (r *entryReader) peekLength() (n int, ok bool) {
	if r.end-r.pos < headerSize {
		return 0, false
	}
	var hb []byte
	if r.pos >= r.bufPos && r.pos+headerSize <= r.bufPos+int64(len(r.buf)) {
		hb = r.buf[r.pos-r.bufPos:]
	} else {
		var small [headerSize]byte
		m, _ := r.f.ReadAt(small[:], r.pos)
		r.read += int64(m)
		if m < headerSize {
			return 0, false
		}
		hb = small[:]
	}
	h, err := parseHeader(hb)
	if err != nil {
		return 0, false
	}
	return h.dataLen(), true
}

func (r *entryReader) window(pos, n int64) ([]byte, error) {
	if pos >= r.bufPos && pos+n <= r.bufPos+int64(len(r.buf)) {
		o := pos - r.bufPos
		return r.buf[o : o+n], nil
	}
	size := min(max(n, r.chunk), r.end-pos)
	var b []byte
	if int64(cap(r.spare)) >= size {
		b, r.spare = r.spare[:size], nil
	} else {
		b = make([]byte, size)
	}
	// Bytes of pos.. already in the old window are copied, not read again.
	have := int64(0)
	if pos >= r.bufPos && pos < r.bufPos+int64(len(r.buf)) {
		have = int64(copy(b, r.buf[pos-r.bufPos:]))
	}
	m, err := r.f.ReadAt(b[have:], pos+have)
	r.read += int64(m)
	if have+int64(m) < size {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("wal: read at %d: %w", pos, err)
	}
	r.buf, r.bufPos = b, pos
	return b[:n], nil
}

// createSegment creates the empty files of a new active segment at base (for a Store member
// only the .log file: see ensureIndexFiles). The caller syncs the
// directory.
func (l *Log) createSegment(base int64) (*segment, error) {
	s := &segment{base: base, path: filepath.Join(l.dir, segmentName(base)), next: base, maxTs: noTimestamp, idxLoaded: true}
	if l.lazyIndex {
		// A Store member's segment file is created by its first write (a flush of the
		// write buffer: when it fills, when a read reaches it, at a checkpoint or at Close),
		// its index files once it reaches lazyIndexBytes (ensureIndexFiles). Until a
		// checkpoint the journal holds its entries; the checkpoint's recovery point write
		// fsyncs the directory (dirDirty).
		s.log = &deferredFile{fs: l.fs, name: s.logName(), prepare: l.ensureDir, onCreate: func() { l.dirDirty.Store(true) }}
		return s, nil
	}
	var err error
	if s.log, err = l.fs.OpenFile(s.logName(), osRDWR|osCREATE|osTRUNC, 0o644); err != nil {
		return nil, err
	}
	if err := l.ensureIndexFiles(s); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func (s *segment) closeFiles() error {
	var first error
	for _, f := range []*File{&s.log, &s.idxFile, &s.tidxFile} {
		if *f != nil {
			if err := (*f).Close(); err != nil && first == nil {
				first = err
			}
			*f = nil
		}
	}
	return first
}

// ensureDir creates a Store member's directory if it does not exist yet (decision: a member
// creates no directory when it is opened, only at its first flush, so a partition written a
// little costs no file system operation on the produce path; the journal holds its entries
// until its first checkpoint, which fsyncs its segment file, its directory and the parent's
// entry for it, before the journal forgets them). OpenStore recreates a directory a crash
// lost (replay), unless Log.Remove removed the log or its parent is gone.
func (l *Log) ensureDir() error {
	l.dirMu.Lock()
	defer l.dirMu.Unlock()
	if !l.dirPending {
		return nil
	}
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	l.dirPending = false
	l.parentDirty.Store(true)
	return nil
}

// syncParent makes the log's directory entry durable if it was created since: it fsyncs every
// directory from the parent up to the store root (ensureDir may have created more than one
// level; members closing together share the fsyncs).
func (l *Log) syncParent() error {
	if !l.parentDirty.Load() {
		return nil
	}
	if err := l.store.syncAncestors(l.dir, func(d string) error { return l.store.parentSyncs.sync(l.fs, d) }); err != nil {
		return err
	}
	l.parentDirty.Store(false)
	return nil
}

// MakeDir creates the log's directory now if it was opened with LazyDir and has not created it
// yet (for files a caller keeps next to the log). Its entry in the parent directory becomes
// durable with the log's next checkpoint (or Close).
func (l *Log) MakeDir() error { return l.ensureDir() }

// Flush hands the log's buffered entries to its segment file (creating it if needed) without
// fsyncing it: what the kernel's writeback would find. A Store member otherwise does so only
// when its buffer fills, at a checkpoint and at Close (a Read of a member whose segment file
// does not exist yet reads a copy of the buffer instead).
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.err != nil {
		return l.err
	}
	if err := l.flushLocked(); err != nil {
		return l.fail(err)
	}
	return nil
}
