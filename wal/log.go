package wal

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
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
	// LazyDir (Store members only): a log whose directory does not exist is opened without
	// creating it; its first flush creates it and its first checkpoint (or Close) makes it
	// durable, while the journal holds its entries (see doc.go, Commit journal). Without it,
	// OpenLog creates the directory and fsyncs its parent (shared by members created
	// together).
	LazyDir bool
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
	// lazyIndexBytes: an active segment gets its index files once it is this large (or when
	// it is sealed); below it, its index points are kept in memory only.
	lazyIndexBytes = 1 << 20
	scanChunk      = 1 << 20
)

// Batch is one entry as returned by Read.
type Batch struct {
	BaseOffset   int64
	LastOffset   int64 // BaseOffset + count - 1
	MaxTimestamp int64
	Tag          uint64 // AppendTagged's tag; 0 for an entry written by Append
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

	// cleanMu: one CleanSegments at a time (clean.go); Remove takes it too. Before segMu.
	cleanMu sync.Mutex

	mu          sync.Mutex                 // guards everything below and the active segment's mutable fields
	cond        sync.Cond                  // on mu: a group commit finished
	segs        []*segment                 // oldest first; the last one is active
	next        int64                      // next offset to assign
	synced      int64                      // every offset below is durable
	flushed     int64                      // bytes of the active segment handed to its file
	flushedNext int64                      // offset after the last entry handed to the file
	buf         writeBuf                   // bytes of the active segment not yet handed to its file
	hdr         [headerSize + tagSize]byte // scratch: the header of an entry being buffered
	syncing     bool                       // a group-commit leader is fsyncing with mu released
	err         error                      // sticky write/fsync failure; the log refuses writes after one
	durablePos  int64                      // active-segment bytes below which an fsync succeeded (for a member: the last checkpoint's)
	durableNext int64                      // the offset at durablePos
	recoveryPos int64                      // set at open: the recovery point's position in the active segment (0: none)
	closed      bool
	noReserve   bool  // the active segment's file cannot allocate blocks ahead (reserveLocked)
	stats       Stats // Segments is computed by Stats()

	// ckpt is the open recovery-point file. Written by Open, by a group-commit leader (the
	// only one running; Close and rolls wait for it) and by Close.
	ckpt File

	// Store membership (see doc.go, Commit journal). store and managed are static after
	// open; name is set by Store.OpenLog before the log is published.
	store   *Store // nil: a standalone log that fsyncs its own files
	name    string // dir relative to the store root, in journal records
	managed bool   // recovery points are version 2: the journal covers what lies past them
	// lazyIndex: the active segment's index files are created only once it reaches
	// lazyIndexBytes or is sealed (Store members; see ensureIndexFiles). Static.
	lazyIndex bool
	// dirDirty: files were created in dir since its last fsync whose entries the next
	// recovery point write makes durable (lazily created index files).
	dirDirty atomic.Bool
	// dirPending (guarded by dirMu): a member's directory does not exist yet; ensureDir
	// creates it at the first flush. parentDirty: it was created, and its entry in the
	// parent directory is made durable by the next checkpoint (or Close) of the log.
	lazyDir     bool // Options.LazyDir, for a Store member (static)
	dirMu       sync.Mutex
	dirPending  bool
	blobMu      sync.Mutex // serialises blob operations (blob.go)
	parentDirty atomic.Bool
	lastLSN     int64  // journal position after this log's last record (guarded by mu)
	dirtyGen    uint64 // Store.gen when this log was last put in Store.dirty (guarded by store.mu)
	// Set by recoverActive for a managed log: the offset at the recovery point of the
	// active segment (coveredKnown false: no usable version-2 recovery point).
	covered      int64
	coveredKnown bool

	// rpBase, rpPos: the recovery point last written or read at open (rpBase -1: none), so
	// that a truncation knows whether it lies below it (guarded by mu; see cutLocked).
	rpBase, rpPos int64

	// The log's small durable state (SetState; guarded by mu). stateSeq counts SetState
	// calls and replayed state records, stateWritten is the stateSeq the state file holds;
	// stateFileSeq is the sequence number of the newest slot in the state file (written by
	// checkpoints and Close, which never run at once).
	state        []byte
	stateSeq     uint64
	stateWritten uint64
	stateFileSeq uint64
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
		lazyIndex:     managed,
		lazyDir:       st != nil && opts.LazyDir,
		dir:           dir,
		fs:            opts.FS,
		segmentBytes:  opts.SegmentBytes,
		indexInterval: int64(opts.IndexIntervalBytes),
		now:           opts.Now,
		stamp:         opts.Stamp,
		logger:        opts.Logger,
		rpBase:        -1,
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

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

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

// Offsets returns StartOffset, NextOffset and SyncedOffset together (one lock, for a caller
// that wants them for every partition of a request).
func (l *Log) Offsets() (start, next, synced int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segs[0].base, l.next, l.synced
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

// Close flushes and fsyncs the log, then closes its files. It returns the sticky error of a
// failed log. It is idempotent: later calls return nil, other methods return ErrClosed.
func (l *Log) Close() error {
	l.segMu.Lock()
	defer l.segMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeLocked()
}

// lockSegments takes segMu and mu, in the lock order, for a change to the segment list or
// files (retention, truncation, reset, a cleaner's swap), and waits out a checkpoint's fsync
// (syncing, run with mu released). The func it returns releases both: defer
// l.lockSegments()().
func (l *Log) lockSegments() (unlock func()) {
	l.segMu.Lock()
	l.mu.Lock()
	for l.syncing {
		l.cond.Wait()
	}
	return func() {
		l.mu.Unlock()
		l.segMu.Unlock()
	}
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
	if act := l.active(); err == nil && l.store != nil && act.ckptPos == act.size && l.buf.len() == 0 && len(act.pendIdx) == 0 &&
		l.stateSeq == l.stateWritten {
		// Nothing appended since the last checkpoint made the files durable: a broker
		// closing thousands of idle partitions pays no fsync for them. The directory may
		// still be new (a truncation or reset created it): its entry is made durable now,
		// as the journal may forget the log's records once it is closed.
		if err = l.syncParent(); err == nil {
			l.synced = l.next
		} else {
			l.store.fail(fmt.Errorf("close %s: %w", l.dir, err))
		}
	} else if err == nil {
		err = l.flushLocked()
		if err == nil {
			var f File
			if f, err = syncSegmentFiles(act); err != nil && f == act.log {
				l.cutToDurableLocked(f)
			}
		}
		if err == nil && l.stateSeq != l.stateWritten {
			if err = l.writeStateFile(l.state); err == nil {
				l.stateWritten = l.stateSeq
			}
		}
		if err == nil {
			err = l.writeCheckpoint(act.base, act.size)
		}
		if err == nil && l.store != nil {
			err = l.syncParent()
		}
		if err == nil {
			l.synced = l.next
		} else if l.store != nil {
			// The journal may forget nothing this log did not make durable: fail-stop.
			l.store.fail(fmt.Errorf("close %s: %w", l.dir, err))
		}
	}
	if err == nil {
		l.releaseBuf()
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
	l.cleanMu.Lock() // a cleaning writes files into the directory
	defer l.cleanMu.Unlock()
	l.segMu.Lock()
	defer l.segMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.closeLocked() // the data is going away; a failed final fsync does not matter
	if l.store != nil {
		// A remove record first: replay must not bring the directory back (it recreates a
		// member's directory that a crash lost).
		if err := l.store.journalRemove(l.name); err != nil {
			return fmt.Errorf("wal: remove %s: %w", l.dir, err)
		}
	}
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("wal: remove %s: %w", l.dir, err)
	}
	if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil && !isNotExist(err) {
		return fmt.Errorf("wal: remove %s: %w", l.dir, err)
	}
	return nil
}
