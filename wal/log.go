package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Options configures a Log. The zero value is usable.
type Options struct {
	// FS is the filesystem; nil means OSFS().
	FS FS
	// SegmentBytes: a new segment is rolled before the active one would exceed this many bytes
	// (a single entry larger than this gets a segment of its own). 0 means 1 GiB; at most 2 GiB.
	SegmentBytes int64
	// IndexIntervalBytes is the sparse index granularity: an index point is added once this
	// many bytes were appended since the last one. 0 means 4096.
	IndexIntervalBytes int
	// Now is the clock for retention.ms; nil means time.Now.
	Now func() time.Time
	// Stamp, if set, is called under the log lock with the entry's bytes and its assigned base
	// offset just before the bytes are written (the broker uses it to write the Kafka batch's
	// baseOffset field). The WAL itself never interprets entry bytes.
	Stamp func(data []byte, baseOffset int64)
	// Logger, if set, receives a warning for every fsync slower than SlowSync and a note when
	// Open cuts a torn tail. nil: no logging.
	Logger *slog.Logger
}

// SlowSync is the fsync duration above which Options.Logger gets a warning.
const SlowSync = time.Second

// Stats are counters of one open Log.
type Stats struct {
	Appends        int64 // entries appended since Open
	GroupCommits   int64 // fsyncs of the active segment by Sync since Open
	Segments       int   // segments now
	TruncatedBytes int64 // bytes of torn tail cut off by Open
	Replayed       int64 // entries re-appended from the Store's journal at open
	Verified       int64 // journal entries found already present at open
}

const (
	defaultSegmentBytes  = 1 << 30
	maxSegmentBytes      = 2 << 30
	defaultIndexInterval = 4096
	writeBufferBytes     = 1 << 20
	// directWriteBytes: an entry this large skips the write buffer (one copy less; the
	// syscalls it saves by batching are few next to its bytes).
	directWriteBytes = 64 << 10
	// indexSyncBytes bounds how much of the active segment a crash can force Open to re-scan:
	// a group commit also fsyncs the index files once they lag the log by more than this.
	indexSyncBytes = 16 << 20
	scanChunk      = 1 << 20
)

// Batch is one entry as returned by Read.
type Batch struct {
	BaseOffset   int64
	LastOffset   int64 // BaseOffset + count - 1
	MaxTimestamp int64
	Data         []byte
}

// Log is one partition's segmented log. All methods are safe for concurrent use.
//
// Lock order: segMu before mu. Read and OffsetForTimestamp hold segMu for reading while they
// pread segment files; Retain, Close and Remove hold it for writing while they close files.
type Log struct {
	// Static after Open.
	dir           string
	fs            FS
	segmentBytes  int64
	indexInterval int64
	now           func() time.Time
	stamp         func([]byte, int64)
	logger        *slog.Logger // or nil

	segMu sync.RWMutex // see the type doc

	mu          sync.Mutex // guards everything below and the active segment's mutable fields
	cond        sync.Cond  // on mu: a group commit finished
	segs        []*segment // oldest first; the last one is active
	next        int64      // next offset to assign
	synced      int64      // every offset below is durable
	flushed     int64      // bytes of the active segment handed to its file
	flushedNext int64      // offset after the last entry handed to the file
	buf         []byte     // bytes of the active segment not yet handed to its file
	syncing     bool       // a group-commit leader is fsyncing with mu released
	err         error      // sticky write/fsync failure; the log refuses writes after one
	durablePos  int64      // active-segment bytes below which an fsync succeeded (for a member: the last checkpoint's)
	durableNext int64      // the offset at durablePos
	recoveryPos int64      // set at open: the recovery point's position in the active segment (0: none)
	closed      bool
	stats       Stats // Segments is computed by Stats()

	// ckpt is the open recovery-point file. Written by Open, by a group-commit leader (the
	// only one running; Close and rolls wait for it) and by Close.
	ckpt File

	// Store membership (see doc.go, Commit journal). store and managed are static after
	// open; name is set by Store.OpenLog before the log is published.
	store   *Store // nil: a standalone log that fsyncs its own files
	name    string // dir relative to the store root, in journal records
	managed bool   // recovery points are version 2: the journal covers what lies past them
	lastLSN int64  // journal position after this log's last record (guarded by mu)
	// Set by recoverActive for a managed log: the offset at the recovery point of the
	// active segment (coveredKnown false: no usable version-2 recovery point).
	covered      int64
	coveredKnown bool
}

// Open opens the log in dir, creating dir if needed. It re-validates only the tail of the
// active (newest) segment, from the last intact index point at or below the recovery point,
// and truncates a torn tail. Of sealed segments it reads only the end marker of their index
// files (see doc.go, Recovery).
func Open(dir string, opts Options) (*Log, error) {
	return openLog(dir, opts, nil, false, nil)
}

// openLog opens a log; st is the Store it joins (nil: standalone, or replay by OpenStore),
// managed selects the journal-covered recovery rules and recs are journal records to replay.
func openLog(dir string, opts Options, st *Store, managed bool, recs []journalRecord) (*Log, error) {
	l := &Log{
		store:         st,
		managed:       managed,
		dir:           dir,
		fs:            opts.FS,
		segmentBytes:  opts.SegmentBytes,
		indexInterval: int64(opts.IndexIntervalBytes),
		now:           opts.Now,
		stamp:         opts.Stamp,
		logger:        opts.Logger,
	}
	if l.fs == nil {
		l.fs = OSFS()
	}
	switch {
	case l.segmentBytes == 0:
		l.segmentBytes = defaultSegmentBytes
	case l.segmentBytes < 0 || l.segmentBytes > maxSegmentBytes:
		return nil, fmt.Errorf("wal: SegmentBytes %d out of range (0, %d]", l.segmentBytes, int64(maxSegmentBytes))
	}
	switch {
	case l.indexInterval == 0:
		l.indexInterval = defaultIndexInterval
	case l.indexInterval < 0:
		return nil, fmt.Errorf("wal: negative IndexIntervalBytes %d", l.indexInterval)
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.cond.L = &l.mu
	if st != nil {
		if n, err := st.nameOf(dir); err == nil {
			l.name = n
		}
	}
	if err := l.open(recs); err != nil {
		for _, s := range l.segs {
			s.closeFiles()
		}
		if l.ckpt != nil {
			l.ckpt.Close()
		}
		return nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	return l, nil
}

func (l *Log) open(recs []journalRecord) error {
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return err
	}
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	logs := map[int64]bool{}
	var bases []int64
	for _, n := range names {
		if b, suf, ok := parseSegmentName(n); ok && suf == logSuffix {
			logs[b] = true
			bases = append(bases, b)
		}
	}
	// Index files without their log are left over from an interrupted deletion.
	for _, n := range names {
		if b, suf, ok := parseSegmentName(n); ok && suf != logSuffix && !logs[b] {
			if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil {
				return err
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	if len(bases) == 0 {
		// A new log: create the first segment and make it and the directory itself durable.
		s, err := l.createSegment(0)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
		if l.managed {
			// The recovery point at the (empty) end, then the directory: with it the open
			// below finds the log clean and fsyncs nothing more (the segment files are
			// empty; their entries are made durable by the directory fsync). Three fsyncs
			// per new partition in all.
			if err := l.writeCheckpoint(0, 0); err != nil {
				return err
			}
		} else if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
		if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil {
			return err
		}
	}
	for i, b := range bases {
		s := &segment{base: b, path: filepath.Join(l.dir, segmentName(b)), maxTs: noTimestamp}
		l.segs = append(l.segs, s)
		active := i == len(bases)-1
		flag := osRDONLY
		if active {
			flag = osRDWR
		}
		if s.log, err = l.fs.OpenFile(s.logName(), flag, 0o644); err != nil {
			return err
		}
		if s.size, err = s.log.Size(); err != nil {
			return err
		}
		if active {
			if err := l.recoverActive(s); err != nil {
				return err
			}
		} else if err := l.openSealed(s, bases[i+1]); err != nil {
			return err
		}
	}
	act := l.active()
	l.next = act.next
	l.flushed = act.size
	l.flushedNext = l.next
	clean := false
	if l.managed {
		if err := l.replay(recs); err != nil {
			return err
		}
		act = l.active()
		// Nothing changed since the last recovery point: skip the fsyncs (a broker opens
		// thousands of logs).
		cb, cpos, v, ok := l.readCheckpoint()
		clean = ok && v == 2 && cb == act.base && cpos == act.size && l.stats.TruncatedBytes == 0 &&
			l.stats.Replayed == 0 && len(l.buf) == 0
	}
	if !clean {
		if err := l.flushLocked(); err != nil {
			return err
		}
		// What survived the crash may still sit only in the page cache: make it durable
		// before reporting it as synced, and make the validated end the recovery point.
		for _, f := range []File{act.log, act.idxFile, act.tidxFile} {
			if err := f.Sync(); err != nil {
				if f == act.log && l.managed && l.coveredKnown {
					// fsyncgate at open: what recovery or replay wrote past the recovery
					// point may sit in clean but lost pages; the journal still has it.
					if terr := f.Truncate(l.recoveryPos); terr == nil {
						_ = f.Sync()
					}
				}
				return err
			}
		}
		if err := l.writeCheckpoint(act.base, act.size); err != nil {
			return err
		}
	}
	act.ckptPos = act.size
	l.synced = l.next
	l.durablePos, l.durableNext = act.size, l.next
	return nil
}

// The recovery-point file: where Open may start trusting the active segment's index.
//
//	offset size field
//	     0    4 crc       CRC-32C of bytes 4..24
//	     4    1 version   1
//	     5    3 reserved  0
//	     8    8 base      base offset of the segment it refers to
//	    16    8 position  every byte of that segment below this was fsynced and valid
const (
	checkpointName = "recovery-point"
	checkpointSize = 24
)

// readCheckpoint reads the recovery point; ok is false if it is missing or damaged. version
// is 1 for a standalone log's and 2 for a Store member's (see doc.go).
func (l *Log) readCheckpoint() (base, pos int64, version byte, ok bool) {
	b, err := readWhole(l.fs, filepath.Join(l.dir, checkpointName))
	if err != nil || len(b) < checkpointSize {
		return 0, 0, 0, false
	}
	if crc32.Checksum(b[4:checkpointSize], castagnoli) != beUint32(b[0:4]) || (b[4] != 1 && b[4] != 2) {
		return 0, 0, 0, false
	}
	return int64(beUint64(b[8:16])), int64(beUint64(b[16:24])), b[4], true
}

// writeCheckpoint overwrites the recovery point in place and fsyncs it. A torn overwrite fails
// its CRC and only costs a longer scan at the next Open.
func (l *Log) writeCheckpoint(base, pos int64) error {
	opened := false
	if l.ckpt == nil {
		f, err := l.fs.OpenFile(filepath.Join(l.dir, checkpointName), osRDWR|osCREATE, 0o644)
		if err != nil {
			return err
		}
		l.ckpt, opened = f, true
	}
	var b [checkpointSize]byte
	b[4] = 1
	if l.managed {
		b[4] = 2
	}
	binary.BigEndian.PutUint64(b[8:16], uint64(base))
	binary.BigEndian.PutUint64(b[16:24], uint64(pos))
	binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:], castagnoli))
	if _, err := l.ckpt.WriteAt(b[:], 0); err != nil {
		return err
	}
	if err := l.ckpt.Sync(); err != nil {
		return err
	}
	if opened {
		// The file may be new: make its directory entry durable too.
		return l.fs.SyncDir(l.dir)
	}
	return nil
}

// openSealed reads only the last point of a sealed segment's index files: the end marker
// written when it was sealed gives its end offset, size and newest timestamp. If the marker is
// missing or disagrees with the files, the segment is scanned and its index rebuilt.
func (l *Log) openSealed(s *segment, nextBase int64) error {
	s.sealed = true
	ib, err := readTail(l.fs, s.idxName(), offIndexEntrySize)
	if err != nil {
		return err
	}
	tb, err := readTail(l.fs, s.tidxName(), timeIndexEntrySize)
	if err != nil {
		return err
	}
	if ib != nil && tb != nil {
		var m indexEntry
		m.rel = beUint32(ib[0:4])
		m.pos = beUint32(ib[4:8])
		m.ts = int64(beUint64(tb[0:8]))
		if beUint32(tb[8:12]) == m.rel && int64(m.pos) == s.size && s.base+int64(m.rel) == nextBase {
			s.next = nextBase
			s.maxTs = m.ts
			return nil
		}
	}
	// Rebuild: scan the whole segment. A sealed segment was fsynced when it was sealed, so
	// anything invalid in it is corruption, not a torn write.
	idx, end, next, maxTs, _, _, err := l.scan(s, 0, s.base, noTimestamp, nil, 0, -1)
	if err != nil {
		return err
	}
	if end != s.size || next != nextBase {
		return fmt.Errorf("%w: sealed segment %s ends at offset %d position %d, want offset %d position %d",
			ErrCorrupt, s.logName(), next, end, nextBase, s.size)
	}
	s.next, s.maxTs = next, maxTs
	idx = append(idx, indexEntry{rel: uint32(next - s.base), pos: uint32(end), ts: maxTs})
	if err := l.writeIndexFiles(s, idx); err != nil {
		return err
	}
	s.idx, s.idxLoaded = idx, true
	return nil
}

// recoverActive re-validates the active segment from its last intact index point and
// truncates a torn tail.
func (l *Log) recoverActive(s *segment) error {
	idx, err := readIndexFiles(l.fs, s, s.size)
	if err != nil {
		return err
	}
	// Only index points at or below the recovery point are trusted: the log bytes before it
	// were fsynced before it was written. Beyond it, pages of unsynced writes may have
	// survived out of order, so the scan must walk every byte from there. (This also drops
	// the end marker of a segment sealed just before a crash: its position is the size.)
	limit := int64(0)
	cb, cpos, cv, cok := l.readCheckpoint()
	if cok && cb == s.base {
		limit = cpos
	}
	if l.managed && cok && cv == 2 {
		// Past the recovery point only what the journal holds was acknowledged.
		l.coveredKnown = true
	}
	for len(idx) > 0 && (int64(idx[len(idx)-1].pos) > limit || int64(idx[len(idx)-1].pos) >= s.size) {
		idx = idx[:len(idx)-1]
	}
	// Walk back to the last index point that still lands on a valid entry.
	startPos, startOff, startTs := int64(0), s.base, int64(noTimestamp)
	hb := make([]byte, headerSize)
	for len(idx) > 0 {
		e := idx[len(idx)-1]
		if ok := l.validAt(s, int64(e.pos), s.base+int64(e.rel), hb); ok {
			startPos, startOff, startTs = int64(e.pos), s.base+int64(e.rel), e.ts
			break
		}
		idx = idx[:len(idx)-1]
	}
	more, end, next, maxTs, lastIdxPos, atLimit, err := l.scan(s, startPos, startOff, startTs, idx, startPos, limit)
	if err != nil && !IsCorruption(err) {
		return err
	}
	if end < limit {
		// Everything below the recovery point was fsynced and valid when it was written:
		// damage there is not a torn write. Cutting it would hand its offsets out again.
		if err == nil {
			err = fmt.Errorf("%w: segment ends at position %d", ErrCorrupt, end)
		}
		return fmt.Errorf("%w: %s damaged at position %d, below its durable point %d (offset %d): %w",
			ErrCorrupt, s.logName(), end, limit, next, err)
	}
	if limit == 0 {
		atLimit = s.base
	}
	l.covered = atLimit
	l.recoveryPos = limit
	if atLimit < 0 {
		l.coveredKnown = false
	}
	// A corrupt or partial entry ends the valid log: torn tail. Everything from there on was
	// never acknowledged as synced by this log (see doc.go) and is cut off.
	if end < s.size {
		if l.logger != nil {
			l.logger.Info("wal: cut torn tail", "segment", s.logName(), "position", end,
				"bytes", s.size-end, "next_offset", next, "reason", err)
		}
		if err := s.log.Truncate(end); err != nil {
			return err
		}
		l.stats.TruncatedBytes += s.size - end
		s.size = end
	}
	s.next, s.maxTs = next, maxTs
	s.idx, s.idxLoaded = more, true
	s.lastIdxPos = lastIdxPos
	if err := l.writeIndexFiles(s, more); err != nil {
		return err
	}
	if s.idxFile, err = l.fs.OpenFile(s.idxName(), osRDWR|osCREATE, 0o644); err != nil {
		return err
	}
	if s.tidxFile, err = l.fs.OpenFile(s.tidxName(), osRDWR|osCREATE, 0o644); err != nil {
		return err
	}
	s.idxFileSize = int64(len(more)) * offIndexEntrySize
	s.ckptPos = s.size
	return nil
}

// validAt reports whether a whole valid entry with the given base offset starts at pos.
func (l *Log) validAt(s *segment, pos, off int64, hb []byte) bool {
	if pos+headerSize > s.size {
		return false
	}
	if _, err := s.log.ReadAt(hb, pos); err != nil {
		return false
	}
	h, err := parseHeader(hb)
	if err != nil || h.baseOffset != off || pos+h.size() > s.size {
		return false
	}
	e := make([]byte, h.size())
	if _, err := s.log.ReadAt(e, pos); err != nil {
		return false
	}
	return verify(&h, e) == nil
}

// scan validates entries of s from pos (whose entry has offset off; ts is the max timestamp
// before pos) to the end of the file, adding index points after lastIdxPos to idx the way
// Append would. It stops at the first invalid entry and returns the index, the end of the
// valid entries, the next offset, the max timestamp and the last index point; err is the
// reason it stopped early (an ErrCorrupt error) or an I/O error.
//
// mark is a position: atMark is the offset of the entry starting there (-1 if none does).
func (l *Log) scan(s *segment, pos, off, ts int64, idx []indexEntry, lastIdxPos, mark int64) (
	_ []indexEntry, end, next, maxTs, lastIdx, atMark int64, err error) {
	r := entryReader{f: s.log, end: s.size, pos: pos, chunk: scanChunk}
	next, maxTs, lastIdx, atMark = off, ts, lastIdxPos, -1
	for {
		start := r.pos
		if start == mark {
			atMark = next
		}
		h, _, err := r.next()
		if err == nil && h.baseOffset != next {
			err = fmt.Errorf("%w: entry at position %d has offset %d, want %d", ErrCorrupt, start, h.baseOffset, next)
		}
		if err == nil && h.baseOffset+int64(h.count)-s.base > math.MaxUint32 {
			err = fmt.Errorf("%w: entry at position %d overflows the segment", ErrCorrupt, start)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return idx, start, next, maxTs, lastIdx, atMark, err
		}
		if start > 0 && start-lastIdx >= l.indexInterval {
			idx = append(idx, indexEntry{rel: uint32(next - s.base), pos: uint32(start), ts: maxTs})
			lastIdx = start
		}
		next = h.baseOffset + int64(h.count)
		maxTs = max(maxTs, h.maxTimestamp)
	}
}

// writeIndexFiles replaces a segment's index files with idx and fsyncs them.
func (l *Log) writeIndexFiles(s *segment, idx []indexEntry) error {
	ib, tb := encodeIndex(idx)
	for _, w := range []struct {
		name string
		b    []byte
	}{{s.idxName(), ib}, {s.tidxName(), tb}} {
		f, err := l.fs.OpenFile(w.name, osRDWR|osCREATE|osTRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(w.b, 0)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// createSegment creates the empty files of a new active segment at base. The caller syncs the
// directory.
func (l *Log) createSegment(base int64) (*segment, error) {
	s := &segment{base: base, path: filepath.Join(l.dir, segmentName(base)), next: base, maxTs: noTimestamp, idxLoaded: true}
	var err error
	if s.log, err = l.fs.OpenFile(s.logName(), osRDWR|osCREATE|osTRUNC, 0o644); err != nil {
		return nil, err
	}
	if s.idxFile, err = l.fs.OpenFile(s.idxName(), osRDWR|osCREATE|osTRUNC, 0o644); err != nil {
		s.closeFiles()
		return nil, err
	}
	if s.tidxFile, err = l.fs.OpenFile(s.tidxName(), osRDWR|osCREATE|osTRUNC, 0o644); err != nil {
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

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// Append writes one entry occupying count consecutive offsets (a Kafka batch of count records)
// with the given max timestamp (ms) and returns its base offset. The entry is readable at once
// but durable only after Sync. Safe for concurrent use.
func (l *Log) Append(data []byte, count int32, maxTimestamp int64) (baseOffset int64, err error) {
	if count <= 0 {
		return 0, ErrBadCount
	}
	if len(data) > maxEntryBytes {
		return 0, ErrEntryTooLarge
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	size := int64(headerSize + len(data))
	var act *segment
	for {
		if l.closed {
			return 0, ErrClosed
		}
		if l.err != nil {
			return 0, l.err
		}
		act = l.active()
		if act.size == 0 || (act.size+size <= l.segmentBytes && l.next+int64(count)-act.base <= math.MaxUint32) {
			break
		}
		if l.syncing {
			// A group commit is fsyncing the segment we are about to seal; let it finish
			// (once per segment), then look again: another appender may have rolled.
			l.cond.Wait()
			continue
		}
		if err := l.rollLocked(); err != nil {
			return 0, l.fail(err)
		}
	}
	base := l.next
	if l.stamp != nil {
		l.stamp(data, base)
	}
	if l.store != nil {
		// The journal record first: if the journal refuses, no offset was used.
		lsn, err := l.store.appendRecord(l, data, base, count, maxTimestamp)
		if err != nil {
			return 0, err
		}
		l.lastLSN = lsn
	}
	if act.size > 0 && act.size-act.lastIdxPos >= l.indexInterval {
		rel := uint32(base - act.base)
		act.idx = append(act.idx, indexEntry{rel: rel, pos: uint32(act.size), ts: act.maxTs})
		act.pendIdx = append(act.pendIdx, make([]byte, offIndexEntrySize)...)
		putOffIndex(act.pendIdx[len(act.pendIdx)-offIndexEntrySize:], rel, uint32(act.size))
		act.pendTidx = append(act.pendTidx, make([]byte, timeIndexEntrySize)...)
		putTimeIndex(act.pendTidx[len(act.pendTidx)-timeIndexEntrySize:], act.maxTs, rel)
		act.lastIdxPos = act.size
	}
	direct := size >= directWriteBytes
	if int64(len(l.buf))+size > writeBufferBytes || (direct && len(l.buf) > 0) {
		if err := l.flushLocked(); err != nil {
			return 0, l.fail(err)
		}
	}
	if direct {
		// Large: write header and data straight to the file rather than copy the data
		// into the buffer first (the entries before it were flushed just above).
		var hdr [headerSize]byte
		putHeader(hdr[:], data, base, count, maxTimestamp)
		if _, err := act.log.WriteAt(hdr[:], l.flushed); err != nil {
			return 0, l.fail(err)
		}
		if _, err := act.log.WriteAt(data, l.flushed+headerSize); err != nil {
			return 0, l.fail(err)
		}
		l.flushed += size
		l.flushedNext = base + int64(count)
	} else {
		// The buffer grows with use (up to writeBufferBytes), so idle partitions stay small.
		l.buf = appendEntry(l.buf, data, base, count, maxTimestamp)
	}
	act.size += size
	l.stats.Appends++
	l.next = base + int64(count)
	act.next = l.next
	act.maxTs = max(act.maxTs, maxTimestamp)
	return base, nil
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
	l.buf = l.buf[:0]
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

// flushLocked hands buffered log bytes, then pending index points, to the files.
func (l *Log) flushLocked() error {
	act := l.active()
	if len(l.buf) > 0 {
		if _, err := act.log.WriteAt(l.buf, l.flushed); err != nil {
			return err
		}
		l.flushed += int64(len(l.buf))
		l.flushedNext = l.next // the buffer holds every entry not yet handed over
		l.buf = l.buf[:0]
	}
	if len(act.pendIdx) > 0 {
		n := act.idxFileSize / offIndexEntrySize
		if _, err := act.idxFile.WriteAt(act.pendIdx, act.idxFileSize); err != nil {
			return err
		}
		if _, err := act.tidxFile.WriteAt(act.pendTidx, n*timeIndexEntrySize); err != nil {
			return err
		}
		act.idxFileSize += int64(len(act.pendIdx))
		act.pendIdx, act.pendTidx = act.pendIdx[:0], act.pendTidx[:0]
	}
	return nil
}

// rollLocked seals the active segment (flush, end marker, fsync) and starts a new one at l.next.
// The caller makes sure no group commit is running (it would be fsyncing files roll closes).
func (l *Log) rollLocked() error {
	old := l.active()
	if err := l.flushLocked(); err != nil {
		return err
	}
	marker := indexEntry{rel: uint32(l.next - old.base), pos: uint32(old.size), ts: old.maxTs}
	var ib [offIndexEntrySize]byte
	var tb [timeIndexEntrySize]byte
	putOffIndex(ib[:], marker.rel, marker.pos)
	putTimeIndex(tb[:], marker.ts, marker.rel)
	n := old.idxFileSize / offIndexEntrySize
	if _, err := old.idxFile.WriteAt(ib[:], old.idxFileSize); err != nil {
		return err
	}
	if _, err := old.tidxFile.WriteAt(tb[:], n*timeIndexEntrySize); err != nil {
		return err
	}
	for _, f := range []File{old.log, old.idxFile, old.tidxFile} {
		if err := f.Sync(); err != nil {
			if f == old.log {
				l.cutToDurableLocked(f)
			}
			return err
		}
	}
	s, err := l.createSegment(l.next)
	if err != nil {
		return err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		s.closeFiles()
		return err
	}
	l.durablePos, l.durableNext = 0, l.next
	// The old segment's index files are no longer written; the log file stays open for reads.
	old.idxFile.Close()
	old.tidxFile.Close()
	old.idxFile, old.tidxFile = nil, nil
	old.idx = append(old.idx, marker)
	old.sealed = true
	l.segs = append(l.segs, s)
	l.flushed = 0
	l.synced = max(l.synced, l.next)
	l.cond.Broadcast()
	return nil
}

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
		if err = idxF.Sync(); err == nil {
			if err = tidxF.Sync(); err == nil {
				err = l.writeCheckpoint(act.base, flushedPos)
			}
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

// Read returns whole entries, starting with the one containing offset, until adding the next
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
		if len(l.buf) > 0 && l.err == nil && s == l.active() {
			if err := l.flushLocked(); err != nil {
				return segView{}, l.fail(err)
			}
		}
		// After a failed flush the buffer's entries never reach the file: read what did.
		return segView{s: s, end: l.flushed, next: l.flushedNext, idx: s.idx}, nil
	}
	l.mu.Unlock()
	idx, err := l.sealedIndex(s)
	if err != nil {
		return segView{}, err
	}
	return segView{s: s, end: s.size, next: s.next, idx: idx}, nil
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
	r := entryReader{f: v.s.log, end: v.end, pos: pos, chunk: chunk, spare: *spare}
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
		if next <= offset {
			continue
		}
		if len(*out) > 0 && *used+int(h.length) > maxBytes {
			return true, nil
		}
		*out = append(*out, Batch{
			BaseOffset:   h.baseOffset,
			LastOffset:   next - 1,
			MaxTimestamp: h.maxTimestamp,
			Data:         e[headerSize:len(e):len(e)],
		})
		*used += int(h.length)
		if *used >= maxBytes {
			return true, nil
		}
	}
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.Segments = len(l.segs)
	return st
}

// StartOffset returns the log start offset (the base of the oldest segment); it moves with
// retention.
func (l *Log) StartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[0].base
}

// NextOffset returns the log end offset: the next offset Append assigns.
func (l *Log) NextOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

// SyncedOffset returns the offset below which every entry is durable.
func (l *Log) SyncedOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.synced
}

// Size returns the bytes of all segment .log files, buffered bytes included (index files are
// not counted; retention.bytes is measured the same way).
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// OffsetForTimestamp returns the base offset of the first entry with MaxTimestamp >= ts;
// ok is false if there is none. Segments are skipped by their newest timestamp and the time
// index bounds the scan inside the segment.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, ok bool, err error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, false, ErrClosed
	}
	segs := l.segs
	maxTs := make([]int64, len(segs))
	for i, s := range segs {
		maxTs[i] = s.maxTs
	}
	l.mu.Unlock()
	for i, s := range segs {
		if maxTs[i] < ts {
			continue
		}
		v, err := l.view(s)
		if err != nil {
			return 0, false, err
		}
		pos, off := lookupTime(v.idx, s.base, ts)
		o, found, err := l.scanForTime(v, pos, off, ts)
		if errors.Is(err, errIndexPoint) && pos > 0 {
			o, found, err = l.scanForTime(v, 0, s.base, ts)
		}
		if err != nil {
			return 0, false, fmt.Errorf("wal: read %s: %w", s.logName(), err)
		}
		if found {
			return o, true, nil
		}
	}
	return 0, false, nil
}

func (l *Log) scanForTime(v segView, pos, off, ts int64) (int64, bool, error) {
	r := entryReader{f: v.s.log, end: v.end, pos: pos, chunk: 64 << 10}
	next := off
	for {
		h, _, err := r.next()
		if errors.Is(err, io.EOF) {
			return 0, false, nil
		}
		if err == nil && h.baseOffset != next {
			err = fmt.Errorf("%w: entry at offset %d, want %d", ErrCorrupt, h.baseOffset, next)
		}
		if err != nil {
			return 0, false, atIndexPoint(err, next == off)
		}
		if h.maxTimestamp >= ts {
			return h.baseOffset, true, nil
		}
		next = h.baseOffset + int64(h.count)
	}
}

// Retain deletes whole sealed segments, oldest first: while the oldest one's newest timestamp
// is older than now-retentionMs (retentionMs < 0: no time limit), and then while deleting the
// oldest one still leaves at least retentionBytes of log (retentionBytes < 0: no size limit;
// this is Kafka's retention.bytes rule). The active segment is never deleted. It returns how
// many segments went; StartOffset moves to the new oldest segment.
func (l *Log) Retain(retentionMs, retentionBytes int64) (removed int, err error) {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.syncing {
		l.cond.Wait()
	}
	if l.closed {
		return 0, ErrClosed
	}
	now := l.now().UnixMilli()
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	n := 0
	for n < len(l.segs)-1 {
		s := l.segs[n]
		byTime := retentionMs >= 0 && s.maxTs < now-retentionMs
		bySize := retentionBytes >= 0 && total-s.size >= retentionBytes
		if !byTime && !bySize {
			break
		}
		total -= s.size
		n++
	}
	if n == 0 {
		return 0, nil
	}
	doomed := l.segs[:n]
	l.segs = append([]*segment(nil), l.segs[n:]...)
	for _, s := range doomed {
		s.closeFiles()
		for _, name := range []string{s.logName(), s.idxName(), s.tidxName()} {
			if rerr := l.fs.Remove(name); rerr != nil && !isNotExist(rerr) && err == nil {
				err = rerr
			}
		}
	}
	if serr := l.fs.SyncDir(l.dir); err == nil {
		err = serr
	}
	if err != nil {
		return n, fmt.Errorf("wal: retain %s: %w", l.dir, err)
	}
	return n, nil
}

// Close flushes and fsyncs the log, then closes its files. It returns the sticky error of a
// failed log. It is idempotent: later calls return nil, other methods return ErrClosed.
func (l *Log) Close() error {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeLocked()
}

func (l *Log) closeLocked() error {
	for l.syncing {
		l.cond.Wait()
	}
	if l.closed {
		return nil
	}
	l.closed = true
	if l.store != nil {
		defer l.store.forget(l)
	}
	err := l.err // a failed log reports that not everything was made durable
	if err == nil && l.store != nil {
		// The partition files may be made durable (recovery point at the end) only for
		// entries the journal holds durably: otherwise a failed journal fsync would be
		// followed by a partition that claims the lost entries.
		err = l.store.syncTo(l.lastLSN)
	}
	if act := l.active(); err == nil && l.store != nil && act.ckptPos == act.size && len(l.buf) == 0 && len(act.pendIdx) == 0 {
		// Nothing appended since the last checkpoint made the files durable: a broker
		// closing thousands of idle partitions pays no fsync for them.
		l.synced = l.next
	} else if err == nil {
		err = l.flushLocked()
		for _, f := range []File{act.log, act.idxFile, act.tidxFile} {
			if err == nil {
				if err = f.Sync(); err != nil && f == act.log {
					l.cutToDurableLocked(f)
				}
			}
		}
		if err == nil {
			err = l.writeCheckpoint(act.base, act.size)
		}
		if err == nil {
			l.synced = l.next
		} else if l.store != nil {
			// The journal may forget nothing this log did not make durable: fail-stop.
			l.store.fail(fmt.Errorf("close %s: %w", l.dir, err))
		}
	}
	for _, s := range l.segs {
		if cerr := s.closeFiles(); err == nil {
			err = cerr
		}
	}
	if l.ckpt != nil {
		if cerr := l.ckpt.Close(); err == nil {
			err = cerr
		}
		l.ckpt = nil
	}
	l.cond.Broadcast()
	if err != nil {
		return fmt.Errorf("wal: close %s: %w", l.dir, err)
	}
	return nil
}

// Remove closes the log and deletes its directory (topic deletion).
func (l *Log) Remove() error {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.closeLocked() // the data is going away; a failed final fsync does not matter
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("wal: remove %s: %w", l.dir, err)
	}
	if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil && !isNotExist(err) {
		return fmt.Errorf("wal: remove %s: %w", l.dir, err)
	}
	return nil
}
