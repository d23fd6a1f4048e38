package broker

// A scripted stand-in for the partition raft engine, for tests of the broker's replicated
// partition logic that must control exactly when entries commit and who leads: every
// proposal is stored at once on every replica that is up (so any of them can be elected
// without losing it), commits when a majority of voters is up and commits are not held, and
// leadership moves only when a test calls elect. Raft itself (elections, truncation,
// catch-up) is the real engine's, tested with it in replicated_test.go.

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/wal"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

type fakeNet struct {
	mu     sync.Mutex
	groups map[replica.GroupID]*fakeGroup
}

type fakeGroup struct {
	voters  []uint64
	members map[uint64]*fakeMember
	leader  uint64
	term    uint64
	log     []*raftpb.Entry
	commit  int // entries committed
	hold    bool
	pending map[uint64]chan error // proposal index → Committed
}

type fakeMember struct {
	st      replica.Storage
	sm      replica.StateMachine
	stored  int
	applied int
	up      bool
}

func newFakeNet() *fakeNet { return &fakeNet{groups: map[replica.GroupID]*fakeGroup{}} }

// engine is node id's view of the net (a Replication).
func (n *fakeNet) engine(id uint64) *fakeEngine { return &fakeEngine{n: n, id: id} }

type fakeEngine struct {
	n  *fakeNet
	id uint64
}

func (e *fakeEngine) AddGroup(id replica.GroupID, st replica.Storage, sm replica.StateMachine, voters []uint64) error {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	g := e.n.groups[id]
	if g == nil {
		g = &fakeGroup{voters: slices.Clone(voters), members: map[uint64]*fakeMember{}, pending: map[uint64]chan error{}}
		e.n.groups[id] = g
	}
	g.members[e.id] = &fakeMember{st: st, sm: sm, up: true}
	e.n.replicateLocked(g)
	if g.leader != 0 {
		sm.LeaderChanged(g.leader, g.term)
	}
	return nil
}

func (e *fakeEngine) RemoveGroup(id replica.GroupID) error {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	if g := e.n.groups[id]; g != nil {
		if m := g.members[e.id]; m != nil {
			m.up = false
		}
	}
	return nil
}

func (e *fakeEngine) Propose(ctx context.Context, id replica.GroupID, data []byte) (*replica.Proposal, error) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	g := e.n.groups[id]
	if g == nil {
		return nil, replica.ErrUnknownGroup
	}
	if g.leader != e.id || !g.members[e.id].up {
		return nil, &replica.NotLeaderError{Leader: g.leader, Term: g.term}
	}
	idx := uint64(len(g.log) + 1)
	g.log = append(g.log, &raftpb.Entry{Index: proto.Uint64(idx), Term: proto.Uint64(g.term), Data: data})
	ch := make(chan error, 1)
	g.pending[idx] = ch
	e.n.replicateLocked(g)
	return &replica.Proposal{Index: idx, Term: g.term, Committed: ch}, nil
}

func (e *fakeEngine) Status(id replica.GroupID) (replica.GroupStatus, bool) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	g := e.n.groups[id]
	if g == nil {
		return replica.GroupStatus{}, false
	}
	st := replica.GroupStatus{ID: e.id, Leader: g.leader, Term: g.term, Commit: uint64(g.commit), Voters: slices.Clone(g.voters)}
	if g.leader == e.id {
		st.Progress = map[uint64]replica.Progress{}
		for _, v := range g.voters {
			if m := g.members[v]; m != nil {
				st.Progress[v] = replica.Progress{Match: uint64(m.stored), RecentActive: m.up}
			}
		}
	}
	return st, true
}

// replicateLocked stores the log on every member that is up, commits what a majority
// stores (unless held) and applies it.
func (n *fakeNet) replicateLocked(g *fakeGroup) {
	for _, m := range g.members {
		if m.up && m.stored < len(g.log) {
			if err := m.st.Append(g.log[m.stored:]); err != nil {
				panic(err)
			}
			m.stored = len(g.log)
		}
	}
	if !g.hold {
		up := 0
		for _, v := range g.voters {
			if m := g.members[v]; m != nil && m.up && m.stored == len(g.log) {
				up++
			}
		}
		if up*2 > len(g.voters) {
			g.commit = len(g.log)
		}
	}
	for _, m := range g.members {
		if m.up && m.applied < g.commit {
			m.sm.Apply(g.log[m.applied:g.commit])
			m.applied = g.commit
		}
	}
	for idx, ch := range g.pending {
		if idx <= uint64(g.commit) {
			ch <- nil
			delete(g.pending, idx)
		}
	}
}

// elect makes id the leader at a new term: pending proposals fail (outcome unknown), the
// new leader appends its empty entry.
func (n *fakeNet) elect(t testing.TB, gid replica.GroupID, id uint64) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	g := n.groups[gid]
	g.term++
	g.leader = id
	for idx, ch := range g.pending {
		ch <- &replica.NotLeaderError{Leader: id, Term: g.term}
		delete(g.pending, idx)
	}
	for _, m := range g.members {
		if m.up {
			m.sm.LeaderChanged(id, g.term)
		}
	}
	g.log = append(g.log, &raftpb.Entry{Index: proto.Uint64(uint64(len(g.log) + 1)), Term: proto.Uint64(g.term)})
	n.replicateLocked(g)
}

// setUp marks a member up or down (down: it stores and applies nothing).
func (n *fakeNet) setUp(gid replica.GroupID, id uint64, up bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	g := n.groups[gid]
	g.members[id].up = up
	n.replicateLocked(g)
}

// setHold stops (true) or resumes (false) commits.
func (n *fakeNet) setHold(gid replica.GroupID, hold bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	g := n.groups[gid]
	g.hold = hold
	n.replicateLocked(g)
}

// fakeRaftStorage is a RaftStorage over the partition's wal.Log that keeps raft's state and
// the raft index → offsets map in memory (the real one, raftstore, tags wal entries with the
// index and survives restarts). Empty entries and conf changes are stored as one control
// batch each, as raftstore does. It cannot overwrite a suffix (the wal cannot truncate yet).
type fakeRaftStorage struct {
	*raft.MemoryStorage
	l        *wal.Log
	describe func([]byte) (int32, int64, error)

	mu      sync.Mutex
	offsets map[uint64][2]int64
}

func openFakeRaftStorage(l *wal.Log, describe func([]byte) (int32, int64, error)) (RaftStorage, error) {
	return &fakeRaftStorage{MemoryStorage: raft.NewMemoryStorage(), l: l, describe: describe, offsets: map[uint64][2]int64{}}, nil
}

func (s *fakeRaftStorage) Append(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	s.mu.Lock()
	_, have := s.offsets[ents[0].GetIndex()]
	s.mu.Unlock()
	if have {
		return fmt.Errorf("fake raft storage: entry %d overwritten (the wal cannot truncate yet)", ents[0].GetIndex())
	}
	if err := s.MemoryStorage.Append(ents); err != nil {
		return err
	}
	for _, e := range ents {
		data, count, maxTs := e.GetData(), int32(1), int64(0)
		if len(data) == 0 || e.GetType() != raftpb.EntryType_EntryNormal {
			data = markerBatch(-1, -1, false, 0)
			binary.BigEndian.PutUint16(data[batchHeaderLen+7:], 0x7f01) // our own control type: no-op
			binary.BigEndian.PutUint32(data[offCRC:], crc32.Checksum(data[offAttributes:], castagnoli))
		} else {
			var err error
			if count, maxTs, err = s.describe(data); err != nil {
				return err
			}
		}
		base, err := s.l.Append(data, count, maxTs)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.offsets[e.GetIndex()] = [2]int64{base, base + int64(count)}
		s.mu.Unlock()
	}
	return nil
}

func (s *fakeRaftStorage) Offsets(index uint64) (base, next int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.offsets[index]
	return o[0], o[1], ok
}

func (e *fakeEngine) Stats() replica.Stats { return replica.Stats{} }
