package group

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/meshkafka/meshkafka/broker/internal/u64file"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/wal"
)

// StoreOptions configures a Store.
type StoreOptions struct {
	FS wal.FS // nil: wal.OSFS()
	// CompactBytes: compact when the offset log exceeds this many bytes (and twice the size of
	// the last snapshot). 0: 64 MiB.
	CompactBytes int64
	// SegmentBytes of the offset log. 0: 16 MiB.
	SegmentBytes int64
	// Journal tunes the commit journal under the store's directory (FS and Logger are the
	// store's). The zero value is the default.
	Journal wal.StoreOptions
	Clock   clock.Clock  // nil: the real clock (entry timestamps only)
	Logger  *slog.Logger // nil: no logging
	// OnStop, if set, is called once when the store stops (ErrStoreFailed), from the
	// caller's goroutine; it must not block. A binary exits on it.
	OnStop func(err error)
}

// ErrDamaged is returned by OpenStore when the generation the current-generation file names
// is missing, unreadable or lacks its snapshot: the committed offsets cannot be restored, and
// the store refuses to start rather than start empty or from an older state. Nothing is
// deleted; an operator must repair or remove the directory.
var ErrDamaged = errors.New("group: offset log damaged")

// ErrStoreFailed is returned by every Append and Compact after a write whose outcome is
// unknown (the current-generation file may or may not have been replaced): the store stops,
// and reopening it (a restart) finds out which generation is current.
var ErrStoreFailed = errors.New("group: offset store stopped after a write of unknown outcome; restart to recover")

// Store is the durable committed-offset log (layout in the package doc). Not safe for
// concurrent use: the Coordinator's owner goroutine is its only user.
type Store struct {
	dir  string
	opts StoreOptions
	wal  *wal.Store // the commit journal under dir/commitlog that every generation's log joins
	log  *wal.Log   // the current generation; nil after a failed reopen (see reopen)
	// jopts are the journal's options, for reopen.
	jopts  wal.StoreOptions
	closed bool
	gen    uint64
	// nextGen is the generation number the next compaction uses: above every generation
	// directory ever seen or attempted, so a failed attempt's leftovers are never reused.
	nextGen uint64
	failed  error // sticky; wraps ErrStoreFailed

	compactAt int64 // log size that triggers the next compaction
}

// journalOpened, if set (by tests only, before any store is opened), is told of every
// journal opened: crash tests abandon stores without closing them, and their TestMain closes
// the journals (stopping their checkpointers) before checking for leaked goroutines.
var journalOpened func(*wal.Store)

const (
	logPrefix   = "offsets-"
	currentFile = "current-generation"
	curFileLen  = u64file.Len
)

func genDir(dir string, gen uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%016x", logPrefix, gen))
}

// OpenStore opens (or creates) the offset log in dir and returns every record it holds, in
// order, for the caller to Apply. The generation named by the current-generation file must be
// intact: if it is missing or its snapshot entry is gone (damage the WAL cut as a torn tail),
// OpenStore fails with ErrDamaged and changes nothing. Generations other than the current one
// (an interrupted compaction, or one superseded) are removed. An entry that the WAL returns
// intact but that does not decode is an error (nothing is dropped silently).
func OpenStore(dir string, opts StoreOptions) (*Store, []Record, error) {
	if opts.FS == nil {
		opts.FS = wal.OSFS()
	}
	if opts.CompactBytes == 0 {
		opts.CompactBytes = 64 << 20
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = 16 << 20
	}
	opts.Clock = clock.Or(opts.Clock)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{dir: dir, opts: opts, compactAt: opts.CompactBytes}
	if err := wal.MkdirDurable(opts.FS, dir); err != nil {
		return nil, nil, fmt.Errorf("group: open store: %w", err)
	}
	fsys := opts.FS
	_ = fsys.Remove(filepath.Join(dir, currentFile+".tmp")) // a replacement cut short
	// The journal is opened (and replayed into every generation directory it names) before
	// the generations are looked at: damage to a synced entry of the current generation past
	// its recovery point is repaired from the journal, and damage wal cannot repair fails
	// OpenStore here rather than being cut as a torn tail.
	jopts := opts.Journal
	jopts.FS, jopts.Logger = opts.FS, opts.Logger
	jopts.Replay.SegmentBytes = opts.SegmentBytes
	if jopts.MaxOpenFiles == 0 {
		jopts.MaxOpenFiles = 64 // a generation has a few segments; the broker's Store has the rest
	}
	s.jopts = jopts
	ws, err := wal.OpenStore(dir, jopts)
	if err == nil && journalOpened != nil {
		journalOpened(ws)
	}
	if wal.IsCorruption(err) {
		return nil, nil, s.damaged(err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("group: open store: %w", err)
	}
	s.wal = ws
	ok := false
	defer func() {
		if !ok {
			if s.log != nil {
				s.log.Close()
			}
			ws.Close()
		}
	}()
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("group: open store: %w", err)
	}
	var gens []uint64
	for _, n := range names {
		hex, ok := strings.CutPrefix(n, logPrefix)
		if !ok || len(hex) != 16 {
			continue
		}
		g, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			continue
		}
		gens = append(gens, g)
	}
	slices.Sort(gens)
	s.nextGen = 1
	if len(gens) > 0 {
		s.nextGen = gens[len(gens)-1] + 1
	}
	cur, haveCur, err := s.readCurrent()
	if err != nil {
		return nil, nil, s.damaged(err)
	}
	var recs []Record
	switch {
	case haveCur && cur == 0, !haveCur && len(gens) == 0:
		// A new store, or one whose first generation never became current: nothing was
		// ever acknowledged. Mark the start first, so that a generation found without a
		// current-generation file can only come from an older release.
		if !haveCur {
			if err := s.writeCurrent(0); err != nil {
				return nil, nil, fmt.Errorf("group: open store: %w", err)
			}
		}
		if err := s.removeGens(gens, 0); err != nil {
			return nil, nil, err
		}
		l, err := s.newGen(nil)
		if err != nil {
			return nil, nil, err
		}
		if err := s.writeCurrent(s.nextGen - 1); err != nil {
			l.Close()
			return nil, nil, fmt.Errorf("group: open store: %w", err)
		}
		s.log, s.gen = l, s.nextGen-1
	case haveCur:
		if !slices.Contains(gens, cur) {
			return nil, nil, s.damaged(fmt.Errorf("generation %d named by %s is missing", cur, currentFile))
		}
		l, r, complete, err := s.openGen(cur)
		if err != nil {
			return nil, nil, s.damaged(err)
		}
		if !complete {
			l.Close()
			return nil, nil, s.damaged(fmt.Errorf("generation %d lost its snapshot entry", cur))
		}
		s.log, s.gen, recs = l, cur, r
	default:
		// Written by a release without the current-generation file: the newest generation
		// whose snapshot is complete wins (newer ones are compactions that crashed).
		for i := len(gens) - 1; i >= 0 && s.log == nil; i-- {
			l, r, complete, err := s.openGen(gens[i])
			if err != nil {
				return nil, nil, s.damaged(err)
			}
			if !complete {
				l.Close()
				continue
			}
			s.log, s.gen, recs = l, gens[i], r
		}
		if s.log == nil {
			return nil, nil, s.damaged(fmt.Errorf("no generation of %v has a complete snapshot", gens))
		}
		if err := s.writeCurrent(s.gen); err != nil {
			return nil, nil, fmt.Errorf("group: open store: %w", err)
		}
	}
	if err := s.removeGens(gens, s.gen); err != nil {
		return nil, nil, err
	}
	s.compactAt = max(opts.CompactBytes, 2*s.log.Size())
	ok = true
	return s, recs, nil
}

// damaged logs err loudly and returns it as an ErrDamaged.
func (s *Store) damaged(err error) error {
	err = fmt.Errorf("%w: %s: %w (refusing to start: the committed offsets would be lost or rolled back; nothing was deleted)",
		ErrDamaged, s.dir, err)
	s.opts.Logger.Error("consumer group offset log is damaged", "dir", s.dir, "err", err)
	return err
}

// openGen opens generation gen and replays it.
func (s *Store) openGen(gen uint64) (l *wal.Log, recs []Record, complete bool, err error) {
	l, err = s.wal.OpenLog(genDir(s.dir, gen), wal.Options{SegmentBytes: s.opts.SegmentBytes})
	if err != nil {
		return nil, nil, false, err
	}
	if cut := l.Stats().TruncatedBytes; cut > 0 {
		s.opts.Logger.Warn("offset log: recovery cut a torn tail (an unacknowledged commit, or damage)",
			"generation", gen, "bytes", cut)
	}
	recs, complete, err = replay(l)
	if err != nil {
		l.Close()
		return nil, nil, false, err
	}
	return l, recs, complete, nil
}

// removeGens removes every generation in gens except keep, durably.
func (s *Store) removeGens(gens []uint64, keep uint64) error {
	removed := false
	for _, g := range gens {
		if g == keep {
			continue
		}
		if err := s.opts.FS.RemoveAll(genDir(s.dir, g)); err != nil {
			return fmt.Errorf("group: open store: %w", err)
		}
		removed = true
	}
	if removed {
		if err := s.opts.FS.SyncDir(s.dir); err != nil {
			return fmt.Errorf("group: open store: %w", err)
		}
	}
	return nil
}

// readCurrent reads the current-generation file; ok is false if there is none.
func (s *Store) readCurrent() (gen uint64, ok bool, err error) {
	f, err := s.opts.FS.OpenFile(filepath.Join(s.dir, currentFile), os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	b := make([]byte, curFileLen+1)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, err
	}
	gen, err = decodeCurrent(b[:n])
	return gen, err == nil, err
}

// Current-generation file (14 bytes, big-endian): magic "OG" | generation u64 | CRC-32C of
// the first 10 bytes u32. Generation 0: no generation is current yet.
func encodeCurrent(gen uint64) []byte { return u64file.Encode("OG", gen) }

func decodeCurrent(b []byte) (uint64, error) { return u64file.Decode(b, "OG", currentFile) }

// errUnknownOutcome marks a failed replacement of the current-generation file after its
// rename was attempted: the old or the new file may be the durable one.
var errUnknownOutcome = errors.New("outcome unknown")

// writeCurrent replaces the current-generation file durably (temp file, fsync, rename, fsync
// the directory). An error wrapping errUnknownOutcome means the rename was attempted.
func (s *Store) writeCurrent(gen uint64) error {
	fsys := s.opts.FS
	path := filepath.Join(s.dir, currentFile)
	tmp := path + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", currentFile, err)
	}
	if _, err := f.WriteAt(encodeCurrent(gen), 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", currentFile, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", currentFile, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", currentFile, err)
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s (%w): %w", currentFile, errUnknownOutcome, err)
	}
	if err := fsys.SyncDir(s.dir); err != nil {
		return fmt.Errorf("sync dir for %s (%w): %w", currentFile, errUnknownOutcome, err)
	}
	return nil
}

// replay reads every entry; complete reports whether the log starts with a snapshot entry.
func replay(l *wal.Log) (recs []Record, complete bool, err error) {
	off := l.StartOffset()
	first := true
	for off < l.NextOffset() {
		batches, err := l.Read(off, 1<<20)
		if err != nil {
			return nil, false, fmt.Errorf("group: replay offset log at %d: %w", off, err)
		}
		if len(batches) == 0 {
			break
		}
		for _, b := range batches {
			snap, rs, err := DecodeEntry(b.Data)
			if err != nil {
				return nil, false, fmt.Errorf("group: replay offset log at %d: %w", b.BaseOffset, err)
			}
			if first {
				if !snap {
					return nil, false, nil
				}
				first = false
			}
			recs = append(recs, rs...)
			off = b.LastOffset + 1
		}
	}
	return recs, !first, nil
}

// newGen creates generation s.nextGen (and advances nextGen) holding snapshot as its first
// entry, durably. It does not make it current. On error the attempt's directory is removed
// (best effort: its number is never used again, and OpenStore removes it).
func (s *Store) newGen(snapshot []Record) (*wal.Log, error) {
	gen := s.nextGen
	s.nextGen++
	l, err := s.wal.OpenLog(genDir(s.dir, gen), wal.Options{SegmentBytes: s.opts.SegmentBytes})
	if err != nil {
		_ = s.opts.FS.RemoveAll(genDir(s.dir, gen))
		return nil, fmt.Errorf("group: new offset log: %w", err)
	}
	fail := func(err error) (*wal.Log, error) {
		l.Remove()
		return nil, fmt.Errorf("group: new offset log: %w", err)
	}
	next, err := l.Append(AppendEntry(nil, true, snapshot), 1, s.opts.Clock.Now().UnixMilli())
	if err != nil {
		return fail(err)
	}
	if err := l.Sync(next + 1); err != nil {
		return fail(err)
	}
	if err := s.opts.FS.SyncDir(s.dir); err != nil {
		return fail(err)
	}
	return l, nil
}

// Append writes recs as one entry and returns once it is fsynced.
func (s *Store) Append(recs []Record) error {
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return errors.New("group: store closed")
	}
	if s.log == nil {
		return errors.New("group: offset journal failed and is not reopened yet")
	}
	off, err := s.log.Append(AppendEntry(nil, false, recs), 1, s.opts.Clock.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("group: append offsets: %w", err)
	}
	if err := s.log.Sync(off + 1); err != nil {
		return fmt.Errorf("group: sync offsets: %w", err)
	}
	return nil
}

// NeedsCompaction reports whether the log has grown past its compaction threshold.
func (s *Store) NeedsCompaction() bool {
	return s.log != nil && s.log.Size() > s.compactAt
}

// Compact starts a new log generation from snapshot (the complete current state), makes it
// current and removes the old one. On error the old log stays in use, unless the outcome of
// making the new one current is unknown: then the store stops (ErrStoreFailed from then on).
func (s *Store) Compact(snapshot []Record) error {
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return errors.New("group: store closed")
	}
	if s.log == nil || s.wal.Err() != nil {
		if err := s.reopen(); err != nil {
			return err
		}
	}
	l, err := s.newGen(snapshot)
	if err != nil {
		return err
	}
	gen := s.nextGen - 1
	if err := s.writeCurrent(gen); err != nil {
		if !errors.Is(err, errUnknownOutcome) {
			l.Remove()
			return fmt.Errorf("group: compact offset log: %w", err)
		}
		// Generation gen may or may not be current after a crash: writing to either log
		// could lose acknowledged commits.
		l.Close()
		s.failed = fmt.Errorf("%w: %w", ErrStoreFailed, err)
		s.opts.Logger.Error("consumer group offset store stopped: a write's outcome is unknown; restart the broker",
			"dir", s.dir, "err", err)
		if s.opts.OnStop != nil {
			s.opts.OnStop(s.failed)
		}
		return s.failed
	}
	old, oldGen := s.log, s.gen
	s.log, s.gen = l, gen
	s.compactAt = max(s.opts.CompactBytes, 2*s.log.Size())
	if err := old.Remove(); err != nil {
		// Harmless: it is no longer current, and the next open removes it.
		s.opts.Logger.Warn("offset log: remove compacted generation", "generation", oldGen, "err", err)
	}
	return nil
}

// reopen closes the failed journal and opens it again, with the current generation's log.
// After a failed write or fsync the wal.Store refuses every write (its state past the last
// successful fsync is unknown); reopening recovers from what is durable: the journal was cut
// back to its last successful fsync and OpenStore cuts the log's entries past it, so no commit
// answered with an error can come back (fsyncgate). The caller then writes the applied state
// as a new generation (Compact), so what the reopened log holds is not replayed.
func (s *Store) reopen() error {
	if s.log != nil {
		_ = s.log.Close() // it fails with the journal's error
		s.log = nil
	}
	if s.wal != nil {
		_ = s.wal.Close()
		s.wal = nil
	}
	ws, err := wal.OpenStore(s.dir, s.jopts)
	if err == nil && journalOpened != nil {
		journalOpened(ws)
	}
	if err != nil {
		return fmt.Errorf("group: reopen offset journal: %w", err)
	}
	l, err := ws.OpenLog(genDir(s.dir, s.gen), wal.Options{SegmentBytes: s.opts.SegmentBytes})
	if err != nil {
		ws.Close()
		return fmt.Errorf("group: reopen offset log generation %d: %w", s.gen, err)
	}
	s.wal, s.log = ws, l
	s.opts.Logger.Warn("offset journal reopened after a failed write", "dir", s.dir)
	return nil
}

// Close closes the log and the journal. Idempotent.
func (s *Store) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.log != nil {
		errs = append(errs, s.log.Close())
		s.log = nil
	}
	if s.wal != nil {
		errs = append(errs, s.wal.Close())
		s.wal = nil
	}
	return errors.Join(errs...)
}
