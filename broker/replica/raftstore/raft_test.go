package raftstore_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/meshkafka/meshkafka/broker/replica/raftstore"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// member is one replica of a test raft group: its storage and its RawNode, driven in lock
// step by cluster (no goroutines, no clock: ticks are counted).
type member struct {
	id      uint64
	n       *node
	rn      *raft.RawNode
	applied uint64
	// got: the data of every applied data entry, by raft index (stamped as stored).
	got   map[uint64][]byte
	cs    *raftpb.ConfState
	snaps int // snapshots installed
}

type cluster struct {
	t     *testing.T
	ms    map[uint64]*member
	inbox []*raftpb.Message
	down  map[uint64]bool
}

func (c *cluster) start(id uint64, peers []raft.Peer) {
	m := c.ms[id]
	if m == nil {
		m = &member{id: id, n: &node{t: c.t, fs: newFS(c.t), stamp: true}, got: map[uint64][]byte{}}
		c.ms[id] = m
	}
	m.n.mustOpen()
	rn, err := raft.NewRawNode(&raft.Config{
		ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: m.n.s, Applied: m.applied,
		MaxSizePerMsg: 4 << 10, MaxInflightMsgs: 64, CheckQuorum: true, PreVote: true,
		Logger: quietLogger{},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if peers != nil {
		if err := rn.Bootstrap(peers); err != nil {
			c.t.Fatal(err)
		}
	}
	m.rn = rn
}

// round processes every member's Ready once (persist, commit the wal.Store, send, apply,
// advance) and delivers the messages.
func (c *cluster) round() {
	for _, id := range []uint64{1, 2, 3, 4} {
		m := c.ms[id]
		if m == nil || c.down[id] || !m.rn.HasReady() {
			continue
		}
		rd := m.rn.Ready()
		s := m.n.s
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := s.ApplySnapshot(rd.Snapshot); err != nil {
				c.t.Fatalf("member %d ApplySnapshot: %v", id, err)
			}
			m.applied = rd.Snapshot.GetMetadata().GetIndex()
			m.cs = rd.Snapshot.GetMetadata().GetConfState()
			m.snaps++
			next, app, err := raftstore.SnapshotData(rd.Snapshot.GetData())
			if err != nil || string(app) != "producer state" || m.n.l.StartOffset() != next || m.n.l.NextOffset() != next {
				c.t.Fatalf("member %d installed a snapshot continuing at %d (%q, %v): log [%d,%d)",
					id, next, app, err, m.n.l.StartOffset(), m.n.l.NextOffset())
			}
		}
		if err := s.Append(rd.Entries); err != nil {
			c.t.Fatalf("member %d Append: %v", id, err)
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := s.SetHardState(rd.HardState); err != nil {
				c.t.Fatal(err)
			}
		}
		if err := m.n.ws.Commit(); err != nil {
			c.t.Fatal(err)
		}
		c.inbox = append(c.inbox, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			switch e.GetType() {
			case raftpb.EntryType_EntryConfChange:
				var cc raftpb.ConfChange
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					c.t.Fatal(err)
				}
				m.cs = m.rn.ApplyConfChange(&cc)
			case raftpb.EntryType_EntryConfChangeV2:
				var cc raftpb.ConfChangeV2
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					c.t.Fatal(err)
				}
				m.cs = m.rn.ApplyConfChange(&cc)
			default:
				if len(e.GetData()) > 0 {
					m.got[e.GetIndex()] = bytes.Clone(e.GetData())
				}
			}
			m.applied = e.GetIndex()
		}
		m.rn.Advance(rd)
	}
	msgs := c.inbox
	c.inbox = nil
	for _, msg := range msgs {
		to := c.ms[msg.GetTo()]
		if to == nil || c.down[msg.GetTo()] || c.down[msg.GetFrom()] {
			continue
		}
		if msg.GetType() == raftpb.MessageType_MsgSnap {
			c.ms[msg.GetFrom()].rn.ReportSnapshot(msg.GetTo(), raft.SnapshotFinish)
		}
		to.rn.Step(msg)
	}
}

// live returns the members that are up, by id (a fixed order keeps runs deterministic).
func (c *cluster) live() []*member {
	var out []*member
	for id := uint64(1); id <= 4; id++ {
		if m := c.ms[id]; m != nil && !c.down[id] {
			out = append(out, m)
		}
	}
	return out
}

func (c *cluster) leader() *member {
	for _, m := range c.live() {
		if m.rn.BasicStatus().RaftState == raft.StateLeader {
			return m
		}
	}
	return nil
}

// waitLeader ticks until there is a leader (an election takes ~10 ticks).
func (c *cluster) waitLeader() *member {
	for range 100 {
		if l := c.leader(); l != nil {
			return l
		}
		c.settle(1)
	}
	c.t.Fatal("no leader after 100 ticks")
	return nil
}

func (c *cluster) settle(n int) {
	for range n {
		for _, m := range c.live() {
			m.rn.Tick()
		}
		for range 4 {
			c.round()
		}
	}
}

// TestRaftGroupOnRaftstore runs etcd raft itself on raftstore: a three-replica group
// bootstraps, elects a leader, commits proposals (Kafka batches), adds a fourth replica,
// survives a leader restart from its storage, compacts its log behind a snapshot, and brings
// a replica that was down up to date by snapshot install and appends. Every replica applies
// the same data at the same raft indexes, and every data entry's stored batches carry the
// same Kafka offsets on every replica.
func TestRaftGroupOnRaftstore(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	c := &cluster{t: t, ms: map[uint64]*member{}, down: map[uint64]bool{}}
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	for id := uint64(1); id <= 3; id++ {
		c.start(id, peers)
	}
	c.settle(30)
	propose := func(k int) {
		t.Helper()
		for range k {
			l := c.leader()
			if l == nil {
				c.settle(20)
				continue
			}
			term := l.rn.BasicStatus().GetTerm()
			if err := l.rn.Propose(makeBatch(r, int32(1+r.IntN(4)), int64(r.IntN(1e6)), term)); err != nil {
				t.Fatal(err)
			}
			c.round()
		}
		c.settle(5)
	}
	propose(40)
	// A fourth replica joins (the log is whole: it is sent entries).
	c.ms[4] = &member{id: 4, n: &node{t: t, fs: newFS(t), stamp: true}, got: map[uint64][]byte{}}
	c.start(4, nil)
	// raft drops a conf change proposed before the leader applied its own term's first entry:
	// retry until the leader's configuration has the new voter.
	for try := 0; ; try++ {
		l := c.leader()
		if l != nil && slices.Contains(l.cs.GetVoters(), 4) {
			break
		}
		if try == 20 {
			t.Fatal("member 4 never joined")
		}
		if l != nil {
			if err := l.rn.ProposeConfChange(&raftpb.ConfChange{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: new(uint64(4))}); err != nil {
				t.Fatal(err)
			}
		}
		c.settle(10)
	}
	c.settle(20)
	// Replica 3 goes down; the leader restarts from its storage.
	c.down[3] = true
	l := c.waitLeader()
	if err := l.n.close(); err != nil {
		t.Fatal(err)
	}
	c.start(l.id, nil)
	c.settle(40)
	propose(40)
	// Compact every live replica's log behind a snapshot at its applied index.
	for _, m := range c.ms {
		if c.down[m.id] {
			continue
		}
		if _, err := m.n.s.CreateSnapshot(m.applied, m.cs, []byte("producer state")); err != nil {
			t.Fatalf("member %d CreateSnapshot(%d): %v", m.id, m.applied, err)
		}
		if err := m.n.s.Compact(m.applied); err != nil {
			t.Fatalf("member %d Compact: %v", m.id, err)
		}
	}
	// Replica 3 comes back, behind the compaction point: it is sent the snapshot.
	delete(c.down, 3)
	if err := c.ms[3].n.close(); err != nil {
		t.Fatal(err)
	}
	c.start(3, nil)
	c.settle(40)
	propose(30)
	c.settle(40)
	// Every replica holds the same log tail, entry for entry, offset for offset.
	ref := c.waitLeader()
	li, _ := ref.n.s.LastIndex()
	for _, m := range c.ms {
		mli, _ := m.n.s.LastIndex()
		if m.applied != li || mli != li {
			t.Fatalf("member %d: last %d applied %d, leader last %d", m.id, mli, m.applied, li)
		}
		fi, _ := m.n.s.FirstIndex()
		start := max(fi, mustFirst(t, ref))
		for i := start; i <= li; i++ {
			b1, n1, ok1 := ref.n.s.Offsets(i)
			b2, n2, ok2 := m.n.s.Offsets(i)
			if !ok1 || !ok2 || b1 != b2 || n1 != n2 {
				t.Fatalf("entry %d: leader offsets [%d,%d) %v, member %d [%d,%d) %v", i, b1, n1, ok1, m.id, b2, n2, ok2)
			}
			e1, _ := ref.n.s.Entries(i, i+1, 1<<30)
			e2, _ := m.n.s.Entries(i, i+1, 1<<30)
			if !proto.Equal(e1[0], e2[0]) {
				t.Fatalf("entry %d differs between the leader and member %d", i, m.id)
			}
			if d := e2[0].GetData(); e2[0].GetType() == raftpb.EntryType_EntryNormal && len(d) > 0 {
				if got := int64(binary.BigEndian.Uint64(d)); got != b2 {
					t.Fatalf("member %d entry %d: batch baseOffset %d, stored at %d", m.id, i, got, b2)
				}
				if got := uint64(binary.BigEndian.Uint32(d[12:])); got != e2[0].GetTerm() {
					t.Fatalf("member %d entry %d: partitionLeaderEpoch %d, term %d", m.id, i, got, e2[0].GetTerm())
				}
			}
		}
		// What both applied, they applied identically.
		for i, d := range m.got {
			if rd, ok := ref.got[i]; ok && !bytes.Equal(rd, d) {
				t.Fatalf("member %d applied different data at %d", m.id, i)
			}
		}
	}
	if len(c.ms[4].got) == 0 {
		t.Fatal("the new member applied nothing")
	}
	if c.ms[3].snaps == 0 {
		t.Fatal("member 3 caught up without a snapshot: the test did not test snapshot install")
	}
	for _, m := range c.ms {
		if err := m.n.close(); err != nil {
			t.Fatalf("member %d close: %v", m.id, err)
		}
	}
}

func mustFirst(t *testing.T, m *member) uint64 {
	fi, err := m.n.s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// quietLogger drops raft's logging (a panic still panics).
type quietLogger struct{}

func (quietLogger) Debug(...any)              {}
func (quietLogger) Debugf(string, ...any)     {}
func (quietLogger) Error(...any)              {}
func (quietLogger) Errorf(string, ...any)     {}
func (quietLogger) Info(...any)               {}
func (quietLogger) Infof(string, ...any)      {}
func (quietLogger) Warning(...any)            {}
func (quietLogger) Warningf(string, ...any)   {}
func (quietLogger) Fatal(v ...any)            { panic(fmt.Sprint(v...)) }
func (quietLogger) Fatalf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
func (quietLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (quietLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
