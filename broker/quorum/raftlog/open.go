package raftlog

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/wal"
)

// File names in the directory; see doc.go.
const (
	raftIDFile    = "raft-id"
	snapshotFile  = "snapshot"
	tmpSuffix     = ".tmp"
	segmentSuffix = ".rlog"
	seqDigits     = 20
)

const (
	osRDONLY = os.O_RDONLY
	osRDWR   = os.O_RDWR
	osCREATE = os.O_CREATE
	osTRUNC  = os.O_TRUNC
)

func segmentName(seq uint64) string {
	s := strconv.FormatUint(seq, 10)
	return strings.Repeat("0", seqDigits-len(s)) + s + segmentSuffix
}

func parseSegmentName(name string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(stem) != seqDigits {
		return 0, false
	}
	v, err := strconv.ParseUint(stem, 10, 64)
	return v, err == nil && v > 0
}

// Open opens (creating it if needed) the raft storage in dir on fsys and replays it: the
// raft id, the snapshot, the newest segment's entries and hard state. A torn tail (a write
// that never completed) is cut; damage to bytes that were durable fails Open with an error
// satisfying IsCorruption, and nothing is changed (see doc.go for how the two are told
// apart). On a new directory the raft id is made and stored durably before anything else.
func Open(fsys wal.FS, dir string, opts Options) (*Log, error) {
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.KeepEntries == 0 {
		opts.KeepEntries = DefaultKeepEntries
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	l := &Log{fs: fsys, dir: dir, opts: opts, log: opts.Logger, st: newState()}
	if err := l.open(); err != nil {
		if l.seg != nil {
			l.seg.Close()
		}
		return nil, fmt.Errorf("raftlog: open %s: %w", dir, err)
	}
	return l, nil
}

func (l *Log) open() error {
	if err := wal.MkdirDurable(l.fs, l.dir); err != nil {
		return err
	}
	// What Open reads must be durable before it is served: a rename whose directory fsync
	// failed (a snapshot or segment of a write that failed in this process) is in the
	// namespace but may not survive a crash; so may the directory itself, or a parent, if an
	// earlier Open's fsync of its parent failed (MkdirDurable syncs only what it creates).
	// Hence the directory and every ancestor are fsynced, once per Open.
	for d := filepath.Clean(l.dir); ; d = filepath.Dir(d) {
		l.fsyncs.Add(1)
		if err := l.fs.SyncDir(d); err != nil {
			return err
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var seqs []uint64
	hasID, hasSnap := false, false
	for _, n := range names {
		switch {
		case n == raftIDFile:
			hasID = true
		case n == snapshotFile:
			hasSnap = true
		case strings.HasSuffix(n, tmpSuffix):
			// An atomic replace that did not finish: its target is intact.
			if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil {
				return err
			}
		default:
			if s, ok := parseSegmentName(n); ok {
				seqs = append(seqs, s)
			}
		}
	}
	if !hasID {
		if len(seqs) > 0 || hasSnap {
			return fmt.Errorf("%w: %s is missing but raft state exists", ErrCorrupt, raftIDFile)
		}
		if err := l.makeID(); err != nil {
			return err
		}
	} else if err := l.readID(); err != nil {
		return err
	}
	snap, snapFlags := raftpb.EnsureSnapshot(nil), uint8(0)
	if hasSnap {
		if snap, snapFlags, err = l.readSnapshot(); err != nil {
			return err
		}
	}
	if len(seqs) == 0 {
		if hasSnap {
			return fmt.Errorf("%w: a snapshot but no log segment", ErrCorrupt)
		}
		// A new log: its first segment holds the empty state.
		return l.roll(newState())
	}
	slices.Sort(seqs)
	st, err := l.replay(seqs, snap, snapFlags)
	if err != nil {
		return err
	}
	l.st = st
	return nil
}

// makeID creates the raft-id file durably.
func (l *Log) makeID() error {
	var b [8]byte
	for {
		if _, err := io.ReadFull(l.opts.Rand, b[:]); err != nil {
			return fmt.Errorf("making the raft id: %w", err)
		}
		if l.id = binary.BigEndian.Uint64(b[:]); l.id != 0 {
			break
		}
	}
	return writeFileAtomic(l.fs, l.dir, raftIDFile, appendRecord(nil, kindRaftID, 0, b[:]), &l.fsyncs)
}

func (l *Log) readID() error {
	r, err := l.readOne(raftIDFile, kindRaftID)
	if err != nil {
		return err
	}
	if len(r) != 8 || binary.BigEndian.Uint64(r) == 0 {
		return fmt.Errorf("%w: %s holds %d bytes", ErrCorrupt, raftIDFile, len(r))
	}
	l.id = binary.BigEndian.Uint64(r)
	return nil
}

func (l *Log) readSnapshot() (*raftpb.Snapshot, uint8, error) {
	p, err := l.readOne(snapshotFile, kindSnapshot)
	if err != nil {
		return nil, 0, err
	}
	if len(p) < 1 {
		return nil, 0, fmt.Errorf("%w: %s: empty record", ErrCorrupt, snapshotFile)
	}
	if p[0]&^snapFromLeader != 0 {
		return nil, 0, fmt.Errorf("%w: %s flags %#x", ErrUnsupportedVersion, snapshotFile, p[0])
	}
	snap := &raftpb.Snapshot{}
	if err := proto.Unmarshal(p[1:], snap); err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrCorrupt, snapshotFile, err)
	}
	return raftpb.EnsureSnapshot(snap), p[0], nil
}

// readOne reads a file written by writeFileAtomic: exactly one intact record of kind. Such a
// file was fsynced before it got its name, so anything else is damage.
func (l *Log) readOne(name string, kind uint8) ([]byte, error) {
	data, err := wal.ReadFile(l.fs, filepath.Join(l.dir, name))
	if err != nil {
		return nil, err
	}
	r, n, err := decodeRecord(data)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", name, err)
	case n != len(data) || r.kind != kind:
		return nil, fmt.Errorf("%w: %s: %d bytes, a record of kind %d and %d bytes", ErrCorrupt, name, len(data), r.kind, n)
	}
	return r.payload, nil
}

// replay rebuilds the state from the newest segment that holds an intact base record,
// cuts its torn tail, reconciles it with the snapshot and removes the other segments.
func (l *Log) replay(seqs []uint64, snap *raftpb.Snapshot, snapFlags uint8) (state, error) {
	var (
		data []byte
		recs []record
		end  int64
		seq  uint64
		drop []uint64 // segments not to replay: newer ones whose base never became durable
	)
	for i := len(seqs) - 1; i >= 0; i-- {
		var err error
		seq = seqs[i]
		if data, err = wal.ReadFile(l.fs, filepath.Join(l.dir, segmentName(seq))); err != nil {
			return state{}, err
		}
		if recs, end, err = readRecords(data); err != nil {
			return state{}, fmt.Errorf("segment %s: %w", segmentName(seq), err)
		}
		if len(recs) > 0 {
			break
		}
		// No intact base: the segment's creation did not complete (its base is fsynced, and
		// the directory too, before an older segment is removed or anything else appended).
		// With no older segment that is only possible for the first segment of a log.
		if i == 0 && seq != 1 {
			return state{}, fmt.Errorf("%w: segment %s has no intact base record and no older segment exists", ErrCorrupt, segmentName(seq))
		}
		drop = append(drop, seq)
		if i == 0 {
			// The first segment of a new log, torn: nothing was ever saved.
			if snap.GetMetadata().GetIndex() != 0 {
				return state{}, fmt.Errorf("%w: a snapshot but no intact log segment", ErrCorrupt)
			}
			for _, s := range drop {
				if err := l.fs.Remove(filepath.Join(l.dir, segmentName(s))); err != nil {
					return state{}, err
				}
			}
			l.segSeq = 0
			return newState(), l.roll(newState())
		}
	}
	st := newState()
	st.snap = snap
	for i, r := range recs {
		if r.kind != kindBatch {
			return state{}, fmt.Errorf("%w: segment %s: record of kind %d", ErrCorrupt, segmentName(seq), r.kind)
		}
		b, err := decodeBatch(r.payload)
		if err != nil {
			return state{}, fmt.Errorf("segment %s: %w", segmentName(seq), err)
		}
		if i == 0 && b.flags&flagReset == 0 {
			return state{}, fmt.Errorf("%w: segment %s does not start with a base record", ErrCorrupt, segmentName(seq))
		}
		if st, err = st.apply(b); err != nil {
			return state{}, fmt.Errorf("%w: segment %s: %v", ErrCorrupt, segmentName(seq), err)
		}
	}
	sp := point{snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()}
	if st.mark.index > sp.index || st.mark.index == sp.index && st.mark != sp {
		return state{}, fmt.Errorf("%w: the log was reset to a snapshot at %d (term %d), but the snapshot file is at %d (term %d)",
			ErrCorrupt, st.mark.index, st.mark.term, sp.index, sp.term)
	}

	// Nothing changes on disk before this point: damage found above leaves every file as
	// it was.
	for _, s := range drop {
		if err := l.fs.Remove(filepath.Join(l.dir, segmentName(s))); err != nil {
			return state{}, err
		}
	}
	if len(drop) > 0 {
		l.fsyncs.Add(1)
		if err := l.fs.SyncDir(l.dir); err != nil {
			return state{}, err
		}
	}
	name := filepath.Join(l.dir, segmentName(seq))
	f, err := l.fs.OpenFile(name, osRDWR, 0o644)
	if err != nil {
		return state{}, err
	}
	l.seg, l.segSeq, l.size = f, seq, end
	if end < int64(len(data)) {
		if l.log != nil {
			l.log.Info("raftlog: cut torn tail", "segment", segmentName(seq), "position", end, "bytes", int64(len(data))-end)
		}
		l.truncated.Add(int64(len(data)) - end)
		if err := f.Truncate(end); err != nil {
			return state{}, err
		}
		l.fsyncs.Add(1)
		if err := f.Sync(); err != nil {
			return state{}, err
		}
	}
	if seq != seqs[0] {
		l.removeSegmentsBelow(seq)
	}

	// A snapshot that came with a Save replaces the log; if the log's reset to it is not
	// there, the Save's write after the snapshot file never became durable: apply the reset
	// now, durably, so that entries saved after it are not dropped by the next replay.
	if snapFlags&snapFromLeader != 0 && st.mark != sp {
		if l.log != nil {
			l.log.Info("raftlog: resetting the log to the snapshot", "index", sp.index, "term", sp.term, "last index", st.lastIndex())
		}
		var err error
		if st, err = st.apply(&batch{flags: flagReset | flagSnapshot, index: sp.index, term: sp.term, mark: sp}); err != nil {
			return state{}, err
		}
		if err := l.roll(st); err != nil {
			return state{}, err
		}
	}
	return st, nil
}
