package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path"
	"path/filepath"
	"sort"
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
	// the last checkpoint. 0 means 32 MiB.
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
}

// StoreStats are counters of one open Store.
type StoreStats struct {
	Syncs           int64 // Log.Sync calls that waited for the journal
	Fsyncs          int64 // fsyncs of the journal (group commits)
	Checkpoints     int64 // completed checkpoints
	PartitionFsyncs int64 // partition files fsynced by checkpoints
	JournalBytes    int64 // journal bytes written since OpenStore
	Replayed        int64 // entries OpenStore re-appended to partition logs from the journal
	Verified        int64 // journal entries OpenStore found already present in their partition
	OpenLogs        int   // logs open now
	OpenFiles       int   // descriptors held now (with a MaxOpenFiles cap)
	Reopens         int64 // files reopened after the cap closed them
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
	// checkpointParallel: fsyncs a checkpoint runs at once (short-lived goroutines it waits for).
	checkpointParallel = 8
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
	opts   StoreOptions

	ckptMu sync.Mutex // one checkpoint at a time; taken before mu and before any Log's locks

	mu         sync.Mutex // guards everything below
	cond       sync.Cond  // on mu: a group commit finished
	buf        []byte     // records appended and not yet handed to the file
	spare      []byte     // the other buffer (swapped by the commit leader)
	appended   int64      // journal position after the last appended record
	written    int64      // journal position handed to the file
	durable    int64      // journal position below which everything is fsynced
	segBase    int64      // journal position of the active segment's first byte
	seg        File       // active journal segment
	segs       []int64    // journal segment bases on disk, oldest first (the last is active)
	syncing    bool       // a commit leader is writing/fsyncing with mu released
	cutPending bool       // the Store failed during a commit: the leader cuts the journal after it
	err        error      // sticky: after a failed journal write or fsync, nothing is durable any more
	closed     bool
	since      int64             // journal bytes appended since the last checkpoint began
	dirty      map[*Log]struct{} // logs appended to since the last checkpoint began
	logs       map[string]*Log   // open logs by name
	ckptFile   File              // the checkpoint file, open once written
	stats      StoreStats
	cache      *cachedFS // the descriptor cap, or nil

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
		root:   filepath.Clean(root),
		dir:    filepath.Join(root, journalDirName),
		fs:     opts.FS,
		logger: opts.Logger,
		opts:   opts,
		dirty:  map[*Log]struct{}{},
		logs:   map[string]*Log{},
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
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
	s.cond.L = &s.mu
	if err := s.recover(); err != nil {
		if s.seg != nil {
			s.seg.Close()
		}
		if s.ckptFile != nil {
			s.ckptFile.Close()
		}
		return nil, fmt.Errorf("wal: open store %s: %w", root, err)
	}
	if s.opts.CheckpointInterval > 0 {
		s.wg.Add(1)
		go s.checkpointer()
	}
	return s, nil
}

// recover reads the journal from its checkpoint, replays it into the partition logs, and
// starts a fresh journal segment at its end.
func (s *Store) recover() error {
	if err := s.fs.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	if err := s.fs.SyncDir(s.root); err != nil {
		return err
	}
	names, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var bases []int64
	for _, n := range names {
		if b, ok := parseJournalName(n); ok {
			bases = append(bases, b)
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
		if e < int64(len(data)) && s.logger != nil {
			s.logger.Info("wal: journal: cut torn tail", "segment", journalName(b), "position", e, "bytes", int64(len(data))-e)
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
	// A fresh segment at the end; then the checkpoint; then the old segments can go.
	if s.seg, err = s.fs.OpenFile(filepath.Join(s.dir, journalName(end)), osRDWR|osCREATE|osTRUNC, 0o644); err != nil {
		return err
	}
	if err := s.seg.Sync(); err != nil {
		return err
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return err
	}
	if err := s.writeCheckpoint(end); err != nil {
		return err
	}
	for _, b := range bases {
		if b != end {
			if err := s.fs.Remove(filepath.Join(s.dir, journalName(b))); err != nil && !isNotExist(err) {
				return err
			}
		}
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
	var order []string
	for _, r := range recs {
		if _, ok := byName[r.name]; !ok {
			order = append(order, r.name)
		}
		byName[r.name] = append(byName[r.name], r)
	}
	sort.Strings(order)
	for _, name := range order {
		dir := filepath.Join(s.root, filepath.FromSlash(name))
		if n, err := s.nameOf(dir); err != nil || n != name {
			// An intact record (its CRC passed) naming no directory inside the store: never
			// written by us. Refuse rather than write outside the root.
			return fmt.Errorf("%w: journal record names %q, not a log directory inside the store", ErrCorrupt, name)
		}
		if _, err := s.fs.ReadDir(dir); err != nil {
			if isNotExist(err) {
				// Removed (topic deleted) after these records were written: nothing to do.
				if s.logger != nil {
					s.logger.Info("wal: journal: skipping records of a removed log", "log", name, "records", len(byName[name]))
				}
				continue
			}
			return err
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
	opened := false
	if s.ckptFile == nil {
		f, err := s.fs.OpenFile(filepath.Join(s.dir, journalCheckpointName), osRDWR|osCREATE, 0o644)
		if err != nil {
			return err
		}
		s.ckptFile, opened = f, true
	}
	var b [journalCheckpointSize]byte
	b[4] = 1
	binary.BigEndian.PutUint64(b[8:16], uint64(lsn))
	binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:], castagnoli))
	if _, err := s.ckptFile.WriteAt(b[:], 0); err != nil {
		return err
	}
	if err := s.ckptFile.Sync(); err != nil {
		return err
	}
	if opened {
		return s.fs.SyncDir(s.dir)
	}
	return nil
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

// appendRecord journals one entry of l (called with l.mu held, after the entry was stamped)
// and returns the journal position after it.
func (s *Store) appendRecord(l *Log, data []byte, base int64, count int32, maxTs int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	if s.closed {
		return 0, ErrClosed
	}
	n := journalRecordSize(l.name, data)
	s.buf = appendJournalRecord(s.buf, s.durable, l.name, data, base, count, maxTs)
	s.appended += int64(n)
	s.since += int64(n)
	s.dirty[l] = struct{}{}
	if len(s.buf) >= journalWriteBytes && !s.syncing {
		// Nobody is syncing (acks=1 load): hand the bytes to the file so memory stays bounded.
		if _, err := s.seg.WriteAt(s.buf, s.written-s.segBase); err != nil {
			return 0, s.failLocked(err)
		}
		s.written += int64(len(s.buf))
		s.stats.JournalBytes += int64(len(s.buf))
		s.buf = s.buf[:0]
	}
	if s.since >= s.opts.CheckpointBytes {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return s.appended, nil
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
	buf := s.buf
	s.buf, s.spare = s.spare[:0], nil
	pos := s.written - s.segBase
	s.written += int64(len(buf))
	f := s.seg
	s.mu.Unlock()
	var err error
	if len(buf) > 0 {
		_, err = f.WriteAt(buf, pos)
	}
	t0 := time.Now()
	if err == nil {
		err = f.Sync()
	}
	if d := time.Since(t0); d > SlowSync && s.logger != nil {
		s.logger.Warn("wal: slow journal fsync", "dir", s.dir, "duration", d)
	}
	s.mu.Lock()
	if cap(buf) <= 2*journalWriteBytes {
		s.spare = buf[:0]
	}
	s.stats.Fsyncs++
	if err == nil {
		s.stats.JournalBytes += int64(len(buf))
		s.durable = target
		if s.written-s.segBase >= s.opts.SegmentBytes {
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
	f, err := s.fs.OpenFile(filepath.Join(s.dir, journalName(s.written)), osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.seg.Close()
	s.seg, s.segBase = f, s.written
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
		}
		s.mu.Lock()
		idle := len(s.dirty) == 0 && s.since == 0
		s.mu.Unlock()
		if idle {
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
	s.dirty = map[*Log]struct{}{}
	s.since = 0
	var cold []*Log
	for _, l := range s.logs {
		if _, ok := dirty[l]; !ok && l != nil {
			cold = append(cold, l)
		}
	}
	s.mu.Unlock()
	// Logs not appended to since the last checkpoint are cold: their sealed segments'
	// indexes are dropped from memory (reloaded by the next read that needs one).
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
	// fsync the logs, a few at a time (a filesystem commits concurrent fsyncs together).
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, checkpointParallel)
	for i := range targets {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = targets[i].l.fsyncCheckpoint(targets[i])
		})
	}
	wg.Wait()
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
	s.mu.Lock()
	s.stats.PartitionFsyncs += 2 * int64(len(targets))
	s.mu.Unlock()
	if firstErr != nil {
		return firstErr
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
		if err := s.fs.Remove(filepath.Join(s.dir, journalName(segs[n]))); err != nil && !isNotExist(err) {
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

// forget drops a closed or removed log from the Store's tables.
func (s *Store) forget(l *Log) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.dirty, l)
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
