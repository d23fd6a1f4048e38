package group

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

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
	Now          func() time.Time // nil: time.Now (entry timestamps only)
}

// Store is the durable committed-offset log (layout in the package doc). Not safe for
// concurrent use: the Coordinator's owner goroutine is its only user.
type Store struct {
	dir  string
	opts StoreOptions
	gen  uint64
	log  *wal.Log

	compactAt int64 // log size that triggers the next compaction
}

const logPrefix = "offsets-"

func genDir(dir string, gen uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%016x", logPrefix, gen))
}

// OpenStore opens (or creates) the offset log in dir and returns every record it holds, in
// order, for the caller to Apply. A crash during compaction is recovered from; an entry that the
// WAL returns intact but that does not decode is an error (nothing is dropped silently).
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{dir: dir, opts: opts, compactAt: opts.CompactBytes}
	if err := opts.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("group: open store: %w", err)
	}
	names, err := opts.FS.ReadDir(dir)
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
	var recs []Record
	for i := len(gens) - 1; i >= 0 && s.log == nil; i-- {
		l, err := wal.Open(genDir(dir, gens[i]), wal.Options{FS: opts.FS, SegmentBytes: opts.SegmentBytes})
		if err != nil {
			return nil, nil, fmt.Errorf("group: open store: %w", err)
		}
		r, complete, err := replay(l)
		if err != nil {
			l.Close()
			return nil, nil, err
		}
		if !complete {
			// A compaction that crashed before its snapshot was durable: the older log
			// still holds everything.
			if err := l.Remove(); err != nil {
				return nil, nil, fmt.Errorf("group: open store: %w", err)
			}
			continue
		}
		s.log, s.gen, recs = l, gens[i], r
		for _, old := range gens[:i] {
			if err := opts.FS.RemoveAll(genDir(dir, old)); err != nil {
				s.log.Close()
				return nil, nil, fmt.Errorf("group: open store: %w", err)
			}
		}
	}
	if s.log == nil {
		next := uint64(1)
		if len(gens) > 0 {
			next = gens[len(gens)-1] + 1
		}
		if err := s.startLog(next, nil); err != nil {
			return nil, nil, err
		}
	}
	s.compactAt = max(opts.CompactBytes, 2*s.log.Size())
	return s, recs, nil
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

// startLog creates generation gen holding snapshot as its first entry, durably.
func (s *Store) startLog(gen uint64, snapshot []Record) error {
	l, err := wal.Open(genDir(s.dir, gen), wal.Options{FS: s.opts.FS, SegmentBytes: s.opts.SegmentBytes})
	if err != nil {
		return fmt.Errorf("group: new offset log: %w", err)
	}
	fail := func(err error) error {
		l.Remove()
		return fmt.Errorf("group: new offset log: %w", err)
	}
	next, err := l.Append(AppendEntry(nil, true, snapshot), 1, s.opts.Now().UnixMilli())
	if err != nil {
		return fail(err)
	}
	if err := l.Sync(next + 1); err != nil {
		return fail(err)
	}
	if err := s.opts.FS.SyncDir(s.dir); err != nil {
		return fail(err)
	}
	s.log, s.gen = l, gen
	return nil
}

// Append writes recs as one entry and returns once it is fsynced.
func (s *Store) Append(recs []Record) error {
	if s.log == nil {
		return errors.New("group: store closed")
	}
	off, err := s.log.Append(AppendEntry(nil, false, recs), 1, s.opts.Now().UnixMilli())
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

// Compact starts a new log generation from snapshot (the complete current state) and removes
// the old one. On error the old log stays in use.
func (s *Store) Compact(snapshot []Record) error {
	old := s.log
	if err := s.startLog(s.gen+1, snapshot); err != nil {
		return err
	}
	s.compactAt = max(s.opts.CompactBytes, 2*s.log.Size())
	if err := old.Remove(); err != nil {
		return fmt.Errorf("group: remove compacted offset log: %w", err)
	}
	return nil
}

// Close closes the log. Idempotent.
func (s *Store) Close() error {
	if s.log == nil {
		return nil
	}
	err := s.log.Close()
	s.log = nil
	return err
}
