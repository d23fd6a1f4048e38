package txn

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"

	"github.com/meshkafka/meshkafka/wal"
)

// WALJournal keeps the coordinator's records in a member log of the broker's commit journal
// (wal.Store), beside the partitions: one wal entry per record (AppendRecord's encoding),
// under Dir/txn/journal. Its records and the partitions' entries share one durable order —
// the journal's — so a partition entry appended after a record is never durable without that
// record (a crash keeps a prefix of the journal; see package wal, Commit journal). The
// Coordinator relies on that order (Ordered) to answer AddPartitionsToTxn, AddOffsetsToTxn
// and TxnOffsetCommit without an fsync of their own, and to make EndTxn's PrepareCommit
// record, its markers and CompleteCommit durable with one shared fsync: see doc.go.
//
// Compaction: when the log holds more than CompactBytes and more than twice the live state,
// MaybeCompact appends the state (one record per transactional id), waits for it to be
// durable, and deletes the sealed segments wholly below it; replay is last-writer-wins per
// id, so what remains of older segments before the snapshot changes nothing.
type WALJournal struct {
	l    *wal.Log
	buf  []byte
	live int64 // bytes of the last snapshot (or of the replayed state)
}

// walJournalSegment is the journal member's segment size: small, so that compaction frees
// the superseded records a segment at a time.
const walJournalSegment = 1 << 20

var _ Ordered = (*WALJournal)(nil)

// OpenWALJournal opens the coordinator's journal as a member of store in dir and returns its
// records in order. If legacyDir holds a transaction log of the earlier layout (Store,
// txn.log), its state is moved into the journal first (written, made durable, then the old
// file removed); a crash during the move leaves the old file, and the next open redoes it
// from the start.
func OpenWALJournal(store *wal.Store, dir string, fsys wal.FS, legacyDir string, log *slog.Logger) (*WALJournal, []*Txn, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l, err := store.OpenLog(dir, wal.Options{SegmentBytes: walJournalSegment, LazyDir: true})
	if err != nil {
		return nil, nil, err
	}
	j := &WALJournal{l: l}
	fail := func(err error) (*WALJournal, []*Txn, error) {
		l.Close()
		return nil, nil, err
	}
	if legacyDir != "" {
		if err := j.migrate(fsys, legacyDir, log); err != nil {
			return fail(fmt.Errorf("txn: moving %s into the commit journal: %w", filepath.Join(legacyDir, logName), err))
		}
	}
	recs, err := j.replay()
	if err != nil {
		return fail(err)
	}
	return j, recs, nil
}

// replay reads every record.
func (j *WALJournal) replay() ([]*Txn, error) {
	start, next, _ := j.l.Offsets()
	var recs []*Txn
	for off := start; off < next; {
		bs, err := j.l.Read(off, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("txn: read journal at %d: %w", off, err)
		}
		if len(bs) == 0 {
			return nil, fmt.Errorf("txn: read journal at %d: nothing below %d", off, next)
		}
		for _, b := range bs {
			t, err := DecodeRecord(b.Data)
			if err != nil {
				return nil, fmt.Errorf("txn: journal entry %d: %w", b.BaseOffset, err)
			}
			recs = append(recs, t)
			j.live += int64(len(b.Data))
			off = b.LastOffset + 1
		}
	}
	return recs, nil
}

// migrate moves a legacy txn.log into the journal (see OpenWALJournal).
func (j *WALJournal) migrate(fsys wal.FS, legacyDir string, log *slog.Logger) error {
	if fsys == nil {
		fsys = wal.OSFS()
	}
	legacy := filepath.Join(legacyDir, logName)
	names, err := fsys.ReadDir(legacyDir)
	if err != nil || !slices.Contains(names, logName) {
		return nil // nothing to move
	}
	st, recs, err := OpenStore(fsys, legacyDir, log)
	if err != nil {
		return err
	}
	defer st.Close()
	// Records in the journal beside a legacy log are an interrupted move: start over.
	if start, next, _ := j.l.Offsets(); next > start {
		if err := j.l.TruncateFrom(start); err != nil {
			return err
		}
	}
	m := NewMachine(Config{})
	for _, r := range recs {
		m.Apply(r)
	}
	state := m.All()
	if len(state) > 0 {
		if _, err := j.Write(state...); err != nil {
			return err
		}
	}
	if err := j.Sync(j.l.NextOffset()); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	if err := fsys.Remove(legacy); err != nil {
		return err
	}
	_ = fsys.Remove(legacy + ".tmp") // a compaction's leftover, if any
	if err := fsys.SyncDir(legacyDir); err != nil {
		return err
	}
	log.Info("txn: moved the transaction log into the commit journal", "records", len(recs), "ids", len(state))
	return nil
}

// Write appends recs; they are durable once a Sync covers them, or once any later append to
// the same commit journal is durable. It returns the position to Sync to.
func (j *WALJournal) Write(recs ...*Txn) (int64, error) {
	var next int64
	for _, t := range recs {
		j.buf = AppendRecord(j.buf[:0], t)
		base, err := j.l.Append(j.buf, 1, t.UpdateMs)
		if err != nil {
			return 0, err
		}
		next = base + 1
	}
	return next, nil
}

// Sync returns once everything written below pos is durable (one group commit of the shared
// journal, or none if a commit already covered it).
func (j *WALJournal) Sync(pos int64) error { return j.l.Sync(pos) }

// Append writes recs and waits for them to be durable.
func (j *WALJournal) Append(recs ...*Txn) error {
	pos, err := j.Write(recs...)
	if err != nil {
		return err
	}
	return j.Sync(pos)
}

// MaybeCompact writes state as a snapshot and drops the segments below it when the log is
// large and mostly superseded.
func (j *WALJournal) MaybeCompact(state []*Txn) error {
	if size := j.l.Size(); size <= CompactBytes || size <= 2*j.live {
		return nil
	}
	start := j.l.NextOffset()
	var live int64
	for _, t := range state {
		j.buf = AppendRecord(j.buf[:0], t)
		live += int64(len(j.buf))
	}
	if err := j.Append(state...); err != nil {
		return err
	}
	j.live = live
	_, err := j.l.RetainBelow(start)
	return err
}

// Close closes the member log (its records stay in the commit journal and its files).
func (j *WALJournal) Close() error {
	if err := j.l.Close(); err != nil && !errors.Is(err, wal.ErrClosed) {
		return err
	}
	return nil
}
