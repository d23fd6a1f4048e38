package quorum

import (
	"errors"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MemoryStorage is an in-memory Storage (raft.MemoryStorage plus Save and CreateSnapshot)
// for tests. It survives Node.Stop, so a Node restarted on the same MemoryStorage sees what
// the old one saved, as if it had been fsynced.
type MemoryStorage struct {
	*raft.MemoryStorage

	mu     sync.Mutex
	keep   uint64 // guarded by mu: entries kept below a snapshot's index
	closed bool   // guarded by mu
}

var errStorageClosed = errors.New("quorum: storage closed")

// NewMemoryStorage returns an empty MemoryStorage that compacts the whole log below each
// snapshot (keep 0; see SetKeep).
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{MemoryStorage: raft.NewMemoryStorage()}
}

// SetKeep sets how many entries below a snapshot's index CreateSnapshot keeps.
func (s *MemoryStorage) SetKeep(n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = n
}

// InitialState returns a copy of the saved hard state and the snapshot's conf state.
func (s *MemoryStorage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hs, cs, err := s.MemoryStorage.InitialState()
	if hs == nil {
		hs = &raftpb.HardState{}
	}
	return proto.Clone(hs).(*raftpb.HardState), cs, err
}

// Save applies snap, then ents, then hs.
func (s *MemoryStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStorageClosed
	}
	if snap != nil && !raft.IsEmptySnap(snap) {
		if err := s.MemoryStorage.ApplySnapshot(snap); err != nil {
			return err
		}
	}
	if err := s.MemoryStorage.Append(ents); err != nil {
		return err
	}
	if hs != nil && !raft.IsEmptyHardState(hs) {
		return s.MemoryStorage.SetHardState(proto.Clone(hs).(*raftpb.HardState))
	}
	return nil
}

// CreateSnapshot records the snapshot at index and compacts the log below index-keep.
func (s *MemoryStorage) CreateSnapshot(index uint64, cs *raftpb.ConfState, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errStorageClosed
	}
	if _, err := s.MemoryStorage.CreateSnapshot(index, cs, data); err != nil {
		return err
	}
	if index > s.keep {
		if err := s.MemoryStorage.Compact(index - s.keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return err
		}
	}
	return nil
}

// Compact drops the entries below index.
func (s *MemoryStorage) Compact(index uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.MemoryStorage.Compact(index)
}

// Close makes later writes fail; the contents stay readable.
func (s *MemoryStorage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
