package replica

import (
	"errors"
	"sort"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// MemoryStorage is an in-memory Storage for tests (raft.MemoryStorage behind the Storage
// interface). It survives Engine.Stop, so a group added again on the same MemoryStorage sees
// everything written before, as if it had been synced. It implements ConfStateSaver, so
// Compact can describe the log it drops with the right membership.
type MemoryStorage struct {
	*raft.MemoryStorage

	mu    sync.Mutex
	confs []confAt // guarded by mu: membership after each applied change, by index
	fail  error    // guarded by mu: returned by every write while set
}

type confAt struct {
	index uint64
	cs    *raftpb.ConfState
}

// NewMemoryStorage returns an empty MemoryStorage.
func NewMemoryStorage() *MemoryStorage {
	return &MemoryStorage{MemoryStorage: raft.NewMemoryStorage()}
}

// InitialState returns copies of the hard state and of the snapshot's membership.
func (s *MemoryStorage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	hs, cs, err := s.MemoryStorage.InitialState()
	if hs == nil {
		hs = &raftpb.HardState{}
	}
	return proto.Clone(hs).(*raftpb.HardState), cloneConf(cs), err
}

// FailWrites makes every later write fail with err (nil: writes work again).
func (s *MemoryStorage) FailWrites(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *MemoryStorage) failing() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}

// Append implements Storage.
func (s *MemoryStorage) Append(ents []*raftpb.Entry) error {
	if err := s.failing(); err != nil {
		return err
	}
	return s.MemoryStorage.Append(ents)
}

// SetHardState implements Storage.
func (s *MemoryStorage) SetHardState(hs *raftpb.HardState) error {
	if err := s.failing(); err != nil {
		return err
	}
	return s.MemoryStorage.SetHardState(proto.Clone(hs).(*raftpb.HardState))
}

// ApplySnapshot implements Storage.
func (s *MemoryStorage) ApplySnapshot(snap *raftpb.Snapshot) error {
	if err := s.failing(); err != nil {
		return err
	}
	if err := s.MemoryStorage.ApplySnapshot(snap); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := snap.GetMetadata().GetIndex()
	s.confs = append(s.confs[:0], confAt{idx, cloneConf(snap.GetMetadata().GetConfState())})
	return nil
}

// SaveConfState implements ConfStateSaver.
func (s *MemoryStorage) SaveConfState(index uint64, cs *raftpb.ConfState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.confs), func(i int) bool { return s.confs[i].index >= index })
	s.confs = append(s.confs[:i], confAt{index, cloneConf(cs)})
	return nil
}

// Compact records a snapshot at index (an applied index) carrying data and the membership
// in effect there, and drops the log up to it: a replica that needs those entries now gets
// the snapshot.
func (s *MemoryStorage) Compact(index uint64, data []byte) error {
	s.mu.Lock()
	var cs *raftpb.ConfState
	for _, c := range s.confs {
		if c.index <= index {
			cs = c.cs
		}
	}
	s.mu.Unlock()
	if cs == nil {
		return errors.New("replica: no membership known at or below the compaction index")
	}
	if _, err := s.MemoryStorage.CreateSnapshot(index, cs, data); err != nil {
		return err
	}
	return s.MemoryStorage.Compact(index)
}
