package wal

import (
	"fmt"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// StoreOptions configures a Store. The zero value is usable.
type StoreOptions struct {
	// FS is the filesystem; nil means OSFS().
	FS FS
	// Logger, if set, receives notes about recovery and warnings about slow fsyncs.
	Logger *slog.Logger
	// SegmentBytes: the journal rolls to a new segment file once the active one is this
	// large. 0 means 64 MiB.
	SegmentBytes int64
	// CheckpointBytes: the checkpointer runs once this many journal bytes were written since
	// the last checkpoint (or 256 KiB per log appended to since, when that is more, up to
	// 256 MiB: a checkpoint fsyncs every such log). Partition bytes buffered in memory are
	// bounded by the same figure. 0 means 32 MiB.
	CheckpointBytes int64
	// CheckpointInterval: the checkpointer also runs this often while there is anything to
	// checkpoint. 0 means 30 s; < 0 means no background checkpointer at all (the owner calls
	// Checkpoint; CheckpointBytes is then not acted on).
	CheckpointInterval time.Duration
	// NewTicker makes the checkpointer's ticker; nil means time.NewTicker. Tests inject a
	// channel they drive.
	NewTicker func(d time.Duration) (c <-chan time.Time, stop func())
	// Replay configures the partition logs OpenStore opens to replay the journal into
	// (SegmentBytes, IndexIntervalBytes; FS and Logger are the Store's).
	Replay Options
	// MaxOpenFiles caps the descriptors the Store and its logs keep open: files are opened
	// lazily and the least recently used are closed (and reopened at their next use) beyond
	// it. 0 means half the process's soft RLIMIT_NOFILE, at least 64 (512 where the limit is
	// unknown): under `ulimit -n 1024` that leaves 512 for connections and the rest of the
	// process. < 0 means no cap.
	MaxOpenFiles int
	// OnFail, if set, is called once when the Store fails (a failed journal write or fsync, or
	// a failed checkpoint: from then on it refuses writes until reopened). It is called with the
	// Store's lock held, from the failing goroutine: it must not block or call the Store. The
	// broker uses it to stop and have the process restarted, so that recovery runs.
	OnFail func(err error)
	// OnCommit, if set, is called after every journal fsync (a group commit) with how long
	// the fsync took and how many journal bytes the commit made durable (metrics: fsync
	// latency and group-commit sizes). It is called from the committing goroutine with no
	// lock held and must be quick.
	OnCommit func(fsync time.Duration, bytes int)
	// SyncFSMinLogs: a checkpoint that covers at least this many logs makes them durable
	// with two syncs of the whole filesystem (syncfs(2), when FS is a FilesystemSyncer)
	// instead of two or three fsyncs per log; 0 means 64; < 0 means never (a filesystem
	// shared with heavy unrelated writers, whose dirty data a syncfs would write too). OSFS
	// offers no syncer on a kernel before Linux 5.8, whose syncfs reports no writeback error.
	SyncFSMinLogs int
}

// StoreStats are counters of one open Store.
type StoreStats struct {
	Syncs           int64 // Log.Sync calls that waited for the journal
	Fsyncs          int64 // fsyncs of the journal (group commits)
	Checkpoints     int64 // completed checkpoints
	PartitionFsyncs int64 // partition files fsynced by checkpoints
	FilesystemSyncs int64 // syncs of the whole filesystem by checkpoints (SyncFSMinLogs)
	JournalBytes    int64 // journal bytes written since OpenStore
	Replayed        int64 // entries OpenStore re-appended to partition logs from the journal
	Verified        int64 // journal entries OpenStore found already present in their partition
	OpenLogs        int   // logs open now
	OpenFiles       int   // descriptors held now (with a MaxOpenFiles cap)
	Reopens         int64 // files reopened after the cap closed them
	// SegmentsRecycled: journal segments begun on a spare file (a retired segment or a
	// zero-filled one) rather than a new file; SparesMade: zero-filled spares written.
	SegmentsRecycled int64
	SparesMade       int64
}

const (
	defaultJournalSegmentBytes = 64 << 20
	defaultCheckpointBytes     = 32 << 20
	defaultCheckpointInterval  = 30 * time.Second
	journalDirName             = "commitlog"
	journalCheckpointName      = "checkpoint"
	journalCheckpointSize      = 24
	// journalWriteBytes: buffered journal bytes are handed to the file by Append once there
	// are this many and no group commit is running (acks=1 load without Syncs).
	journalWriteBytes = 4 << 20
	// maxJournalSpare: the commit leader keeps the buffer it wrote, for the appends after the
	// next swap, when it is at most this large (the two buffers then stop growing once they
	// hold what accumulates during one fsync; an idle Store drops them, releaseIdleBufs).
	maxJournalSpare = 64 << 20
	// journalChunkBytes: the journal buffers grow by chunks of this size (writebuf.go), so
	// reaching their working size copies nothing; the leader writes one chunk per call.
	journalChunkBytes = 1 << 20
	// checkpointParallel: fsyncs a checkpoint runs at once (short-lived goroutines it waits for).
	checkpointParallel = 8
	// checkpointBytesPerLog, maxCheckpointBytes: with many dirty logs the checkpointer waits
	// for this much journal per dirty log, at most maxCheckpointBytes (checkpointDueLocked).
	checkpointBytesPerLog = 256 << 10
	maxCheckpointBytes    = 256 << 20
	// defaultSyncFSMinLogs: StoreOptions.SyncFSMinLogs's default. Measured on this project's
	// ext4 over virtio (2,000 files with 100 KB dirty each): fdatasync of each took 210-220 ms
	// of the process's CPU and 0.7-2.2 s, one syncfs 5-7 ms of CPU and 0.27-0.40 s; a
	// checkpoint of 64 logs costs about 20 ms of fsyncs.
	defaultSyncFSMinLogs = 64
)

// Store is a node-wide commit journal shared by many partition logs: one fsync makes a whole
// group commit durable however many partitions it covers. See doc.go (Commit journal).
// All methods are safe for concurrent use.
type Store struct {
	// Static after OpenStore.
	root   string // the directory partition names are relative to
	dir    string // root/commitlog
	fs     FS
	logger *slog.Logger
	onFail func(error) // StoreOptions.OnFail, or nil
	opts   StoreOptions

	ckptMu sync.Mutex // one checkpoint at a time; taken before mu and before any Log's locks

	mu           sync.Mutex                        // guards everything below
	cond         sync.Cond                         // on mu: a group commit finished
	buf          writeBuf                          // records appended and not yet handed to the file
	spare        writeBuf                          // the other buffer (swapped by the commit leader)
	hdr          [journalHeaderSize + tagSize]byte // scratch for a record header (appendJournalTo)
	appended     int64                             // journal position after the last appended record
	written      int64                             // journal position handed to the file
	durable      int64                             // journal position below which everything is fsynced
	segBase      int64                             // journal position of the active segment's first byte
	seg          File                              // active journal segment
	segs         []int64                           // journal segment bases on disk, oldest first (the last is active)
	segAlloc     int64                             // bytes the active segment's file had when it became active (a spare's)
	spares       []string                          // spare segment files (store_spare.go), names in dir
	spareSeq     int64                             // the next spare file's number
	spareAsked   bool                              // appendRec asked the checkpointer for the Store's one zero-filled spare
	spareKick    chan struct{}                     // wakes the checkpointer to make a spare
	syncing      bool                              // a commit leader is writing/fsyncing with mu released
	commitTarget int64                             // while syncing: the journal position the commit makes durable
	cutPending   bool                              // the Store failed during a commit: the leader cuts the journal after it
	err          error                             // sticky: after a failed journal write or fsync, nothing is durable any more
	closed       bool
	since        int64             // journal bytes appended since the last checkpoint began
	dirty        map[*Log]struct{} // logs appended to since the last checkpoint began
	gen          uint64            // checkpoint generation: a log with dirtyGen == gen is in dirty
	heldBufs     bool              // the last checkpoint left write buffers with logs (releaseIdleBufs)
	logs         map[string]*Log   // open logs by name
	ckptFile     File              // the checkpoint file, open once written
	syncer       Syncer            // the filesystem's, opened by recover (nil: fsync each log)
	stats        StoreStats
	cache        *cachedFS // the descriptor cap, or nil
	parentSyncs  dirSyncs  // new members' parent directory fsyncs, shared (store_dirsync.go)

	kick chan struct{} // wakes the checkpointer (CheckpointBytes reached)
	stop chan struct{} // closed by Close
	wg   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// OpenStore opens (or creates) the commit journal under root/commitlog, replays it into the
// partition logs it names (directories relative to root), fsyncs them, checkpoints, and
// starts the background checkpointer. Partition logs are then opened with OpenLog.
func OpenStore(root string, opts StoreOptions) (*Store, error) {
	s := &Store{
		root:      filepath.Clean(root),
		dir:       filepath.Join(root, journalDirName),
		fs:        opts.FS,
		logger:    opts.Logger,
		onFail:    opts.OnFail,
		opts:      opts,
		dirty:     map[*Log]struct{}{},
		logs:      map[string]*Log{},
		kick:      make(chan struct{}, 1),
		spareKick: make(chan struct{}, 1),
		stop:      make(chan struct{}),
		buf:       writeBuf{chunk: journalChunkBytes},
		spare:     writeBuf{chunk: journalChunkBytes},
	}
	if s.fs == nil {
		s.fs = OSFS()
	}
	if s.opts.MaxOpenFiles == 0 {
		s.opts.MaxOpenFiles = defaultMaxOpenFiles()
	}
	if s.opts.MaxOpenFiles > 0 {
		s.cache = newCachedFS(s.fs, s.opts.MaxOpenFiles)
		s.fs = s.cache
	}
	if s.opts.SegmentBytes <= 0 {
		s.opts.SegmentBytes = defaultJournalSegmentBytes
	}
	if s.opts.CheckpointBytes <= 0 {
		s.opts.CheckpointBytes = defaultCheckpointBytes
	}
	if s.opts.CheckpointInterval == 0 {
		s.opts.CheckpointInterval = defaultCheckpointInterval
	}
	if s.opts.SyncFSMinLogs == 0 {
		s.opts.SyncFSMinLogs = defaultSyncFSMinLogs
	}
	s.cond.L = &s.mu
	s.gen = 1 // a new Log's dirtyGen is 0: not in dirty
	if err := s.recover(); err != nil {
		if s.seg != nil {
			s.seg.Close()
		}
		if s.ckptFile != nil {
			s.ckptFile.Close()
		}
		if s.syncer != nil {
			s.syncer.Close()
		}
		return nil, fmt.Errorf("wal: open store %s: %w", root, err)
	}
	if s.opts.CheckpointInterval > 0 {
		s.wg.Add(1)
		go s.checkpointer()
	}
	return s, nil
}

// OpenLog opens the partition log in dir (which must lie under the Store's root) as a member of
// the Store: its appends are journaled and its Syncs wait for the journal's group commit.
// opts.FS and opts.Logger are ignored (the Store's are used).
func (s *Store) OpenLog(dir string, opts Options) (*Log, error) {
	name, err := s.nameOf(dir)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, ErrClosed
	case s.err != nil:
		err := s.err
		s.mu.Unlock()
		return nil, err
	case s.logs[name] != nil:
		s.mu.Unlock()
		return nil, fmt.Errorf("wal: log %s is already open", dir)
	}
	s.logs[name] = nil // reserved while opening
	s.mu.Unlock()
	opts.FS, opts.Logger = s.fs, s.logger
	l, err := openLog(dir, opts, s, true, nil)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.logs, name)
		return nil, err
	}
	l.name = name
	s.logs[name] = l
	return l, nil
}

func (s *Store) nameOf(dir string) (string, error) {
	rel, err := filepath.Rel(s.root, filepath.Clean(dir))
	if err != nil {
		return "", fmt.Errorf("wal: log %s: %w", dir, err)
	}
	rel = filepath.ToSlash(rel)
	if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) ||
		rel == journalDirName || strings.HasPrefix(rel, journalDirName+"/") || len(rel) > maxJournalName {
		return "", fmt.Errorf("wal: log %s is not a directory inside the store %s", dir, s.root)
	}
	return rel, nil
}

// Err returns the Store's sticky error, if it failed.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stats returns the Store's counters.
func (s *Store) Stats() StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.OpenLogs = len(s.logs)
	if s.cache != nil {
		s.cache.c.mu.Lock()
		st.OpenFiles, st.Reopens = s.cache.c.open, s.cache.c.reopens
		s.cache.c.mu.Unlock()
	}
	return st
}

// forget drops a closed or removed log from the Store's tables.
func (s *Store) forget(l *Log) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.dirty, l)
	l.dirtyGen = 0
	if s.logs[l.name] == l {
		delete(s.logs, l.name)
	}
}

// Close stops the checkpointer, commits and checkpoints what is pending (when the Store has
// not failed) and closes the journal. Logs still open keep their data in the journal and are
// replayed by the next OpenStore; close them first for a clean shutdown. It returns the
// sticky error of a failed Store and is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	close(s.stop)
	s.wg.Wait()
	err := s.syncTo(s.appendedNow())
	if err == nil {
		err = s.Checkpoint()
	}
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.syncing {
		s.cond.Wait()
	}
	s.closed = true
	if s.err != nil {
		err = s.err
	}
	if s.seg != nil {
		if cerr := s.seg.Close(); err == nil {
			err = cerr
		}
		s.seg = nil
	}
	if s.ckptFile != nil {
		s.ckptFile.Close()
		s.ckptFile = nil
	}
	if s.syncer != nil {
		s.syncer.Close()
		s.syncer = nil
	}
	s.cond.Broadcast()
	if err != nil {
		return fmt.Errorf("wal: close store %s: %w", s.root, err)
	}
	return nil
}

func (s *Store) appendedNow() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appended
}
