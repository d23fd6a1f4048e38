package raftstore

import (
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
	"sync"

	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/wal"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Options configures a Store.
type Options struct {
	// Describe returns the record count and max timestamp of a data entry's payload (the broker
	// passes its batch validator); control entries are encoded/decoded by raftstore itself.
	// Required.
	Describe func(data []byte) (count int32, maxTimestamp int64, err error)
}

var (
	// ErrNotSnapshotted: Compact was asked to move past the newest snapshot (a follower that
	// needs the entries in between could never catch up).
	ErrNotSnapshotted = errors.New("raftstore: compaction beyond the newest snapshot")
	// ErrNotRaftLog: the wal.Log holds entries raftstore did not write.
	ErrNotRaftLog = errors.New("raftstore: the log holds untagged entries (not a raft log)")
	// ErrUnknownConfState: CreateSnapshot was not given a ConfState and the Store does not
	// know the one in force at the index (no SaveConfState at or below it since the newest
	// snapshot).
	ErrUnknownConfState = errors.New("raftstore: membership at the snapshot index unknown")
	// ErrBadSnapshotData: the newest snapshot's data blob does not match the state's
	// reference to it (damaged or missing).
	ErrBadSnapshotData = errors.New("raftstore: snapshot data damaged")
)

// memCap bounds the entries whose offset and term a Store keeps in memory (the newest ones;
// older ones are looked up in the log: wal.Log.OffsetForTag and a read). The newest appended
// entries are kept whole, so that raft reading them back to apply them (or to send them)
// reads no file: every entry not applied yet (Applied), up to unappliedBytes and
// unappliedEntries, and of the applied ones the newest within cacheBytes and cacheEntries.
var (
	memCap           = 1 << 14
	cacheBytes       = 256 << 10
	cacheEntries     = 512
	unappliedBytes   = 16 << 20
	unappliedEntries = 1 << 14
)

// entMeta is what a Store remembers of a recent entry.
type entMeta struct {
	off  int64 // Kafka base offset
	term uint64
}

// Store is the raft storage of one partition on its wal.Log (see doc.go). All methods are
// safe for concurrent use.
type Store struct {
	l        *wal.Log
	describe func([]byte) (int32, int64, error)

	mu    sync.Mutex
	err   error   // sticky: a failed write leaves memory and log disagreeing
	st    *pstate // as last persisted
	first uint64  // first index available (see firstLocked for retention)
	last  uint64  // last index (first-1 when the log holds no entry)
	end   int64   // Kafka offset after the last entry (the wal's NextOffset)
	// mem holds the offsets and terms of entries memFirst .. last (empty when the log holds no
	// entry); it always includes last when there is one.
	memFirst uint64
	mem      []entMeta
	// Retention: startOff is the wal start offset last seen, retFirst the index of the entry
	// there (retention moved FirstIndex up to it).
	startOff int64
	retFirst uint64
	// cache holds the newest appended entries, as appended (stamped), for indices
	// cacheFirst .. last (empty, or ending at last); cacheSize is their data bytes. applied
	// is the engine's applied index as last told (Applied): the entries above it stay
	// cached until applied (within unappliedBytes), since raft reads each of them back once
	// committed.
	cacheFirst uint64
	cache      []*raftpb.Entry
	cacheSize  int
	applied    uint64
	// confs are the memberships the engine saved (SaveConfState) after the newest snapshot,
	// ascending by index: CreateSnapshot at an index below the applied one takes the
	// ConfState in force there from them. Not persisted: the engine re-applies (and saves)
	// every membership change after the snapshot when it starts.
	confs []savedConf
}

// savedConf is the membership in force from index on.
type savedConf struct {
	index uint64
	cs    *raftpb.ConfState
}

// cacheAdd appends e (entry last) to the cache and evicts the oldest beyond its bounds.
func (s *Store) cacheAdd(e *raftpb.Entry) {
	if len(s.cache) == 0 {
		s.cacheFirst = e.GetIndex()
	}
	s.cache = append(s.cache, e)
	s.cacheSize += len(e.GetData())
	s.cacheTrim()
}

// cacheTrim evicts the oldest cached entries beyond the bounds: an applied one beyond
// cacheBytes or cacheEntries, any beyond unappliedBytes or unappliedEntries. The newest
// entry always stays.
func (s *Store) cacheTrim() {
	drop := 0
	for drop < len(s.cache)-1 {
		n := len(s.cache) - drop
		over := s.cacheSize > unappliedBytes || n > unappliedEntries
		if s.cacheFirst+uint64(drop) <= s.applied {
			over = over || s.cacheSize > cacheBytes || n > cacheEntries
		}
		if !over {
			break
		}
		s.cacheSize -= len(s.cache[drop].GetData())
		s.cache[drop] = nil
		drop++
	}
	if drop > 0 {
		s.cache = s.cache[drop:]
		s.cacheFirst += uint64(drop)
	}
}

// Applied implements replica.ApplyObserver: the entries up to index are applied, so raft
// will not read them back to apply them (the cache keeps only the newest of them).
func (s *Store) Applied(index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.applied {
		return
	}
	s.applied = index
	s.cacheTrim()
}

// cacheCut drops cached entries from index i on (and before first, when first > 0).
func (s *Store) cacheCut(first, i uint64) {
	if len(s.cache) == 0 {
		return
	}
	end := s.cacheFirst + uint64(len(s.cache))
	if i < end {
		if i <= s.cacheFirst {
			s.cache, s.cacheSize = nil, 0
			return
		}
		for _, e := range s.cache[i-s.cacheFirst:] {
			s.cacheSize -= len(e.GetData())
		}
		s.cache = s.cache[:i-s.cacheFirst]
	}
	if first > s.cacheFirst {
		n := min(first-s.cacheFirst, uint64(len(s.cache)))
		for _, e := range s.cache[:n] {
			s.cacheSize -= len(e.GetData())
		}
		s.cache = append([]*raftpb.Entry(nil), s.cache[n:]...)
		s.cacheFirst += n
	}
}

var (
	_ replica.Storage        = (*Store)(nil)
	_ replica.ConfStateSaver = (*Store)(nil)
	_ replica.ApplyObserver  = (*Store)(nil)
)

// Open returns the raft storage kept in l, a Store member's log written only through
// raftstore (or new). It reads the state and the log's last entry.
func Open(l *wal.Log, opts Options) (*Store, error) {
	if opts.Describe == nil {
		return nil, errors.New("raftstore: Options.Describe is required")
	}
	st, err := decodeState(l.State())
	if err != nil {
		return nil, err
	}
	s := &Store{l: l, describe: opts.Describe, st: st}
	if st.installing {
		// ApplySnapshot was interrupted: finish the reset (idempotent).
		if err := l.Reset(st.snapNext); err != nil {
			return nil, err
		}
		st.installing = false
		if err := s.persist(); err != nil {
			return nil, err
		}
	}
	if st.blobID != 0 {
		if _, err := s.readBlob(); err != nil {
			return nil, err
		}
	}
	// Blobs of other snapshots: superseded ones, or written by a snapshot whose state a crash
	// lost. Failing to delete them costs only disk space until the next Open.
	_ = l.RemoveBlobs(func(id uint64) bool { return id == st.blobID })
	bi, _ := st.base()
	s.first, s.last, s.end = bi+1, bi, l.NextOffset()
	s.startOff = l.StartOffset()
	if s.end > s.startOff {
		lastB, err := readOne(l, s.end-1)
		if err != nil {
			return nil, err
		}
		firstB, err := readOne(l, s.startOff)
		if err != nil {
			return nil, err
		}
		if lastB.Tag == 0 || firstB.Tag == 0 {
			return nil, ErrNotRaftLog
		}
		_, term, _, err := decodeEntryData(lastB.Data)
		if err != nil {
			return nil, fmt.Errorf("raftstore: last entry %d: %w", lastB.Tag, err)
		}
		if lastB.Tag < bi {
			return nil, fmt.Errorf("raftstore: log ends at index %d, below its snapshot or compaction point %d", lastB.Tag, bi)
		}
		s.last = lastB.Tag
		s.memFirst, s.mem = lastB.Tag, []entMeta{{off: lastB.BaseOffset, term: term}}
		s.retFirst = firstB.Tag
	}
	return s, nil
}

// readOne reads the entry holding offset off.
func readOne(l *wal.Log, off int64) (wal.Batch, error) {
	bs, err := l.Read(off, 1)
	if err != nil {
		return wal.Batch{}, err
	}
	if len(bs) == 0 {
		return wal.Batch{}, fmt.Errorf("raftstore: no entry at offset %d", off)
	}
	return bs[0], nil
}

// decodeEntryData returns the raft entry type, term and data of a stored entry.
func decodeEntryData(b []byte) (raftpb.EntryType, uint64, []byte, error) {
	if isControl(b) {
		return decodeControl(b)
	}
	term, err := payloadEpoch(b)
	return raftpb.EntryType_EntryNormal, term, b, err
}

func (s *Store) persist() error {
	b, err := encodeState(s.st)
	if err != nil {
		return err
	}
	return s.l.SetState(b)
}

// fail makes err sticky (memory and log may disagree after a failed write).
func (s *Store) fail(err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("raftstore: %w", err)
	}
	return s.err
}

// firstLocked is the first available index: after the snapshot or compaction point, and
// after what wal retention deleted.
func (s *Store) firstLocked() uint64 {
	if start := s.l.StartOffset(); start != s.startOff {
		s.startOff = start
		if start < s.end {
			if b, err := readOne(s.l, start); err == nil {
				s.retFirst = b.Tag
			}
		} else {
			s.retFirst = s.last + 1
		}
	}
	return max(s.first, s.retFirst)
}

// entryLocked returns the offset and term of entry i (first <= i <= last).
func (s *Store) entryLocked(i uint64) (entMeta, error) {
	if len(s.mem) > 0 && i >= s.memFirst {
		return s.mem[i-s.memFirst], nil
	}
	off, err := s.l.OffsetForTag(i)
	if err != nil {
		return entMeta{}, err
	}
	b, err := readOne(s.l, off)
	if err != nil {
		return entMeta{}, err
	}
	if b.Tag != i {
		return entMeta{}, fmt.Errorf("raftstore: entry %d not found (offset %d holds %d)", i, off, b.Tag)
	}
	_, term, _, err := decodeEntryData(b.Data)
	if err != nil {
		return entMeta{}, err
	}
	return entMeta{off: b.BaseOffset, term: term}, nil
}

// InitialState returns the saved HardState and the snapshot's ConfState.
func (s *Store) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hs *raftpb.HardState
	if s.st.hs != nil {
		hs = proto.Clone(s.st.hs).(*raftpb.HardState)
	}
	var cs *raftpb.ConfState
	if s.st.cs != nil {
		cs = proto.Clone(s.st.cs).(*raftpb.ConfState)
	}
	return hs, raftpb.EnsureConfState(cs), nil
}

// Entries returns the entries [lo, hi) as they were appended (see doc.go: a data entry's
// data has its batches' baseOffset and partitionLeaderEpoch stamped), at most maxSize bytes of
// them (protobuf size) but at least one.
func (s *Store) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lo < s.firstLocked() {
		return nil, raft.ErrCompacted
	}
	if hi > s.last+1 {
		return nil, fmt.Errorf("raftstore: entries up to %d requested, last index %d", hi, s.last)
	}
	if lo >= hi {
		if s.last < s.first {
			return nil, raft.ErrUnavailable
		}
		return nil, nil
	}
	var out []*raftpb.Entry
	var size uint64
	if len(s.cache) > 0 && lo >= s.cacheFirst {
		for _, e := range s.cache[lo-s.cacheFirst : hi-s.cacheFirst] {
			size += uint64(proto.Size(e))
			if len(out) > 0 && size > maxSize {
				break
			}
			out = append(out, e)
		}
		return out, nil
	}
	m, err := s.entryLocked(lo)
	if err != nil {
		return nil, err
	}
	chunk := int(min(maxSize, 8<<20))
	for off, want := m.off, lo; want < hi; {
		bs, err := s.l.Read(off, chunk)
		if err != nil {
			return nil, err
		}
		if len(bs) == 0 {
			return nil, fmt.Errorf("raftstore: log ends at offset %d before entry %d", off, want)
		}
		for _, b := range bs {
			if b.Tag != want {
				return nil, fmt.Errorf("raftstore: offset %d holds entry %d, want %d", b.BaseOffset, b.Tag, want)
			}
			typ, term, data, err := decodeEntryData(b.Data)
			if err != nil {
				return nil, fmt.Errorf("raftstore: entry %d: %w", want, err)
			}
			e := &raftpb.Entry{Term: new(term), Index: new(want), Data: data}
			if typ != raftpb.EntryType_EntryNormal {
				e.Type = typ.Enum() // as raft builds entries: no type for a normal one
			}
			size += uint64(proto.Size(e))
			if len(out) > 0 && size > maxSize {
				return out, nil
			}
			out = append(out, e)
			want++
			off = b.LastOffset + 1
			if want == hi {
				break
			}
		}
	}
	return out, nil
}

// Term returns the term of entry i, in [FirstIndex()-1, LastIndex()].
func (s *Store) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bi, bt := s.st.base()
	first := s.firstLocked()
	switch {
	case i == bi && i < first:
		return bt, nil
	case i+1 < first:
		return 0, raft.ErrCompacted
	case i > s.last:
		return 0, raft.ErrUnavailable
	case i < first:
		// The entry before the first one, deleted by retention: its term is gone.
		return 0, raft.ErrCompacted
	}
	m, err := s.entryLocked(i)
	if err != nil {
		return 0, err
	}
	return m.term, nil
}

// LastIndex returns the index of the last entry.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

// FirstIndex returns the index of the first available entry.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstLocked(), nil
}

// Snapshot returns the newest snapshot (CreateSnapshot or ApplySnapshot); its Data carries the
// offset the log continues at (SnapshotData) and the application's data, read from the log's
// blob. A blob that cannot be read makes the Store's error sticky (the next write fails, and
// the engine stops) and answers raft.ErrSnapshotTemporarilyUnavailable.
func (s *Store) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.snapshotLocked()
	if err != nil {
		s.fail(err)
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return snap, nil
}

// readBlob reads and checks the blob of the newest snapshot.
func (s *Store) readBlob() ([]byte, error) {
	b, err := s.l.ReadBlob(s.st.blobID)
	if err != nil {
		return nil, fmt.Errorf("raftstore: snapshot %d data: %w", s.st.snapIndex, err)
	}
	if uint64(len(b)) != s.st.blobLen || crc32.Checksum(b, castagnoli) != s.st.blobCRC {
		return nil, fmt.Errorf("raftstore: snapshot %d data: %w (blob of %d bytes does not match its reference: %d bytes, crc %#x)",
			s.st.snapIndex, ErrBadSnapshotData, len(b), s.st.blobLen, s.st.blobCRC)
	}
	return b, nil
}

func (s *Store) snapshotLocked() (*raftpb.Snapshot, error) {
	var cs *raftpb.ConfState
	if s.st.cs != nil {
		cs = proto.Clone(s.st.cs).(*raftpb.ConfState)
	}
	cs = raftpb.EnsureConfState(cs)
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		ConfState: cs, Index: new(s.st.snapIndex), Term: new(s.st.snapTerm),
	}}
	if s.st.snapIndex > 0 {
		data := s.st.snapData
		if s.st.blobID != 0 {
			var err error
			if data, err = s.readBlob(); err != nil {
				return nil, err
			}
		}
		snap.Data = encodeSnapData(s.st.snapNext, data)
	}
	return snap, nil
}

// Append stores ents, replacing any stored suffix from ents[0].Index on (a truncation of the
// log at that entry's offset). Entries at or below the compaction point are ignored. Nothing
// is durable until the wal.Store commits (Store.Commit). A data entry's batches get their
// partitionLeaderEpoch set to the entry's term, in place.
func (s *Store) Append(ents []*raftpb.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if len(ents) == 0 {
		return nil
	}
	first := s.firstLocked()
	if last := ents[0].GetIndex() + uint64(len(ents)) - 1; last < first {
		return nil
	}
	if first > ents[0].GetIndex() {
		ents = ents[first-ents[0].GetIndex():]
	}
	idx := ents[0].GetIndex()
	if idx > s.last+1 {
		return fmt.Errorf("raftstore: missing entries: append at %d, last index %d", idx, s.last)
	}
	// Encode everything before touching the log: bad input changes nothing.
	type enc struct {
		data  []byte
		count int32
		maxTs int64
	}
	encs := make([]enc, len(ents))
	for k, e := range ents {
		if e.GetIndex() != idx+uint64(k) {
			return fmt.Errorf("raftstore: entries not consecutive: %d after %d", e.GetIndex(), idx+uint64(k)-1)
		}
		if e.GetTerm() > 1<<31-1 {
			return fmt.Errorf("raftstore: term %d does not fit a Kafka leader epoch", e.GetTerm())
		}
		if _, app := AppPayload(e.GetData()); e.GetType() == raftpb.EntryType_EntryNormal && len(e.GetData()) > 0 && !app {
			if isControl(e.GetData()) {
				return fmt.Errorf("raftstore: entry %d: a data entry starts with a control batch", e.GetIndex())
			}
			count, maxTs, err := s.describe(e.GetData())
			if err != nil {
				return fmt.Errorf("raftstore: entry %d: %w", e.GetIndex(), err)
			}
			encs[k] = enc{data: e.GetData(), count: count, maxTs: maxTs}
			continue
		}
		b, err := encodeControl(e.GetType(), e.GetTerm(), e.GetData())
		if err != nil {
			return err
		}
		encs[k] = enc{data: b, count: 1, maxTs: -1}
	}
	if idx <= s.last {
		m, err := s.entryLocked(idx)
		if err != nil {
			return err
		}
		if err := s.l.TruncateFrom(m.off); err != nil {
			return s.fail(err)
		}
		s.last, s.end = idx-1, m.off
		s.cacheCut(0, idx)
		if len(s.mem) > 0 && idx > s.memFirst {
			s.mem = s.mem[:idx-s.memFirst]
		} else {
			s.mem = nil
			if s.last >= s.first && s.end > s.l.StartOffset() {
				// Keep the new last entry in memory.
				b, err := readOne(s.l, s.end-1)
				if err != nil {
					return s.fail(err)
				}
				_, term, _, err := decodeEntryData(b.Data)
				if err != nil {
					return s.fail(err)
				}
				s.memFirst, s.mem = b.Tag, []entMeta{{off: b.BaseOffset, term: term}}
			}
		}
	}
	for k, e := range ents {
		if _, app := AppPayload(e.GetData()); e.GetType() == raftpb.EntryType_EntryNormal && len(e.GetData()) > 0 && !app {
			stampEpoch(encs[k].data, e.GetTerm())
		}
		base, err := s.l.AppendTagged(encs[k].data, encs[k].count, encs[k].maxTs, e.GetIndex())
		if err != nil {
			return s.fail(err)
		}
		if base != s.end {
			return s.fail(fmt.Errorf("entry %d stored at offset %d, want %d", e.GetIndex(), base, s.end))
		}
		if len(s.mem) == 0 {
			s.memFirst = e.GetIndex()
		}
		s.mem = append(s.mem, entMeta{off: base, term: e.GetTerm()})
		s.last, s.end = e.GetIndex(), base+int64(encs[k].count)
		s.cacheAdd(e)
	}
	if len(s.mem) > memCap {
		drop := len(s.mem) - memCap/2
		s.mem = append([]entMeta(nil), s.mem[drop:]...)
		s.memFirst += uint64(drop)
	}
	return nil
}

// SetHardState saves hs (durable with the wal.Store's next commit).
func (s *Store) SetHardState(hs *raftpb.HardState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	old := s.st.hs
	s.st.hs = proto.Clone(hs).(*raftpb.HardState)
	if err := s.persist(); err != nil {
		s.st.hs = old
		return err
	}
	return nil
}

// ApplySnapshot replaces the log with snap: the log is reset to the Kafka offset in its data
// (empty, starting there) and the snapshot's metadata kept. A snapshot with index 0 (a
// bootstrap ConfState only) just sets the ConfState.
func (s *Store) ApplySnapshot(snap *raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	md := snap.GetMetadata()
	idx := md.GetIndex()
	if s.st.snapIndex != 0 && s.st.snapIndex >= idx {
		return raft.ErrSnapOutOfDate
	}
	cs := proto.Clone(raftpb.EnsureConfState(md.GetConfState())).(*raftpb.ConfState)
	if idx == 0 {
		old := s.st.cs
		s.st.cs = cs
		if err := s.persist(); err != nil {
			s.st.cs = old
			return err
		}
		return nil
	}
	next, data, err := SnapshotData(snap.GetData())
	if err != nil {
		return err
	}
	// The application's data in a blob first (durable), then the state, marked as
	// installing: Open finishes an interrupted reset.
	old := *s.st
	if err := s.setDataLocked(idx, data); err != nil {
		*s.st = old
		return err
	}
	s.st.installing = true
	s.st.snapIndex, s.st.snapTerm, s.st.snapNext = idx, md.GetTerm(), next
	s.st.cs = cs
	s.st.compIndex, s.st.compTerm = idx, md.GetTerm()
	if err := s.persist(); err != nil {
		*s.st = old
		return err
	}
	// Reset waits for the journal to hold its record durably, and with it the state above.
	if err := s.l.Reset(next); err != nil {
		return s.fail(err)
	}
	s.st.installing = false
	if err := s.persist(); err != nil {
		return s.fail(err)
	}
	s.confs = nil
	s.dropOldBlobs()
	s.first, s.last, s.end = idx+1, idx, next
	s.mem, s.memFirst = nil, 0
	s.cache, s.cacheSize = nil, 0
	s.startOff, s.retFirst = next, 0
	return nil
}

// CreateSnapshot records a snapshot at index i (at most LastIndex, above the previous
// snapshot) with the ConfState in force there and the application's data (any size: it is
// kept in a blob of the log, written durably first). cs nil means the ConfState the engine
// saved for i (SaveConfState: the last membership change at or below i, else the previous
// snapshot's; ErrUnknownConfState if the Store cannot tell). Snapshot returns it from then
// on. When the previous snapshot had data, its blob is deleted once the new state is durable
// (this waits for one journal commit).
func (s *Store) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if i <= s.st.snapIndex {
		return nil, raft.ErrSnapOutOfDate
	}
	if i > s.last {
		return nil, fmt.Errorf("raftstore: snapshot at %d beyond the last index %d", i, s.last)
	}
	bi, bt := s.st.base()
	var term uint64
	var next int64
	switch {
	case i == bi:
		term, next = bt, s.l.StartOffset()
		if s.last > bi {
			m, err := s.entryLocked(bi + 1)
			if err != nil {
				return nil, err
			}
			next = m.off
		}
	case i < s.firstLocked():
		return nil, raft.ErrCompacted
	default:
		m, err := s.entryLocked(i)
		if err != nil {
			return nil, err
		}
		term, next = m.term, s.end
		if i < s.last {
			n, err := s.entryLocked(i + 1)
			if err != nil {
				return nil, err
			}
			next = n.off
		}
	}
	if cs == nil {
		var ok bool
		if cs, ok = s.confAtLocked(i); !ok {
			return nil, fmt.Errorf("%w at index %d", ErrUnknownConfState, i)
		}
	}
	old := *s.st
	if err := s.setDataLocked(i, data); err != nil {
		*s.st = old
		return nil, err
	}
	s.st.snapIndex, s.st.snapTerm, s.st.snapNext = i, term, next
	s.st.cs = proto.Clone(cs).(*raftpb.ConfState)
	if err := s.persist(); err != nil {
		*s.st = old
		return nil, err
	}
	k := 0
	for k < len(s.confs) && s.confs[k].index <= i {
		k++
	}
	s.confs = slices.Clone(s.confs[k:])
	if old.blobID != 0 {
		// The old blob goes once no durable state can refer to it any more.
		if err := s.l.Commit(); err != nil {
			return nil, s.fail(err)
		}
		s.dropOldBlobs()
	}
	return s.snapshotLocked()
}

// setDataLocked sets the application's data of the snapshot being made at index (in s.st,
// not persisted): written durably to blob index, or none when data is empty.
func (s *Store) setDataLocked(index uint64, data []byte) error {
	s.st.snapData = nil
	s.st.blobID, s.st.blobLen, s.st.blobCRC = 0, 0, 0
	if len(data) == 0 {
		return nil
	}
	if err := s.l.WriteBlob(index, data); err != nil {
		return err
	}
	s.st.blobID, s.st.blobLen, s.st.blobCRC = index, uint64(len(data)), crc32.Checksum(data, castagnoli)
	return nil
}

// dropOldBlobs deletes the blobs the durable state no longer refers to (a failure costs only
// disk space: Open deletes them again).
func (s *Store) dropOldBlobs() {
	_ = s.l.RemoveBlobs(func(id uint64) bool { return id == s.st.blobID })
}

// SaveConfState implements replica.ConfStateSaver: the engine applied a membership change at
// index (cs is the membership from then on). Kept in memory for CreateSnapshot.
func (s *Store) SaveConfState(index uint64, cs *raftpb.ConfState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.st.snapIndex {
		return nil
	}
	for len(s.confs) > 0 && s.confs[len(s.confs)-1].index >= index {
		s.confs = s.confs[:len(s.confs)-1] // saved again (re-applied): the latest wins
	}
	s.confs = append(s.confs, savedConf{index: index, cs: proto.Clone(raftpb.EnsureConfState(cs)).(*raftpb.ConfState)})
	return nil
}

// confAtLocked returns the membership in force at index i (at or above the newest snapshot).
func (s *Store) confAtLocked(i uint64) (*raftpb.ConfState, bool) {
	if i < s.st.snapIndex {
		return nil, false
	}
	for k := len(s.confs) - 1; k >= 0; k-- {
		if s.confs[k].index <= i {
			return s.confs[k].cs, true
		}
	}
	if s.st.snapIndex == 0 && s.st.cs == nil {
		return nil, false // no snapshot and no membership change saved below i
	}
	return raftpb.EnsureConfState(s.st.cs), true
}

// Compact discards the entries before i from raft's view: FirstIndex becomes i+1 and Term(i)
// stays available. i must not pass the newest snapshot (ErrNotSnapshotted): a follower behind
// the compaction point is sent that snapshot. The Kafka records stay in the log until wal
// retention deletes their segments.
func (s *Store) Compact(i uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	bi, _ := s.st.base()
	if i <= bi {
		return raft.ErrCompacted
	}
	if i > s.last {
		return fmt.Errorf("raftstore: compact %d beyond the last index %d", i, s.last)
	}
	if i > s.st.snapIndex {
		return fmt.Errorf("%w: compact %d, snapshot at %d", ErrNotSnapshotted, i, s.st.snapIndex)
	}
	var term uint64
	if i < s.firstLocked() {
		if i != s.st.snapIndex {
			return raft.ErrCompacted
		}
		term = s.st.snapTerm
	} else {
		m, err := s.entryLocked(i)
		if err != nil {
			return err
		}
		term = m.term
	}
	old := *s.st
	s.st.compIndex, s.st.compTerm = i, term
	if err := s.persist(); err != nil {
		*s.st = old
		return err
	}
	s.first = i + 1
	s.cacheCut(i+1, s.last+1)
	if len(s.mem) > 0 && i > s.memFirst && i <= s.last {
		s.mem = append([]entMeta(nil), s.mem[i-s.memFirst:]...)
		s.memFirst = i
	}
	return nil
}

// Offsets returns the Kafka offsets entry index occupies: [base, next). ok is false for an
// index the log does not hold (deleted by retention or a snapshot install, or beyond the
// last). Raft compaction (Compact) does not delete records: their entries still answer.
func (s *Store) Offsets(index uint64) (base, next int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firstLocked() // notices retention
	if s.l.StartOffset() >= s.end || index < s.retFirst || index > s.last {
		return 0, 0, false
	}
	m, err := s.entryLocked(index)
	if err != nil {
		return 0, 0, false
	}
	next = s.end
	if index < s.last {
		n, err := s.entryLocked(index + 1)
		if err != nil {
			return 0, 0, false
		}
		next = n.off
	}
	return m.off, next, true
}

// IndexForOffset returns the index of the entry holding Kafka offset off (ok false if the log
// holds no entry there; entries behind a Compact still answer).
func (s *Store) IndexForOffset(off int64) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if off < s.l.StartOffset() || off >= s.end {
		return 0, false
	}
	if len(s.mem) > 0 && off >= s.mem[0].off {
		k := sort.Search(len(s.mem), func(k int) bool { return s.mem[k].off > off }) - 1
		return s.memFirst + uint64(k), true
	}
	b, err := readOne(s.l, off)
	if err != nil || b.Tag == 0 {
		return 0, false
	}
	return b.Tag, true
}
