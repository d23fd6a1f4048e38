package raftlog_test

import (
	"fmt"
	"io"
	"log"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/broker/quorum/raftlog"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// rnode is one member of a three-node raft cluster run by hand (RawNode, synchronous
// Ready handling as broker/quorum does it) on a Log over its own CrashFS.
type rnode struct {
	id      uint64
	fs      *waltest.CrashFS
	log     *raftlog.Log
	rn      *raft.RawNode
	values  []string // the state machine: applied proposals
	applied uint64
	snapIdx uint64
	cs      *raftpb.ConfState
	snaps   int // snapshots received from the leader
}

type cluster struct {
	t     *testing.T
	nodes []*rnode
	queue []*raftpb.Message
}

var quietRaft = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

func (c *cluster) start(n *rnode, bootstrap bool) {
	n.log = mustOpen(c.t, n.fs, raftlog.Options{KeepEntries: 5})
	snap, _ := n.log.Snapshot()
	n.values = decodeValues(snap.GetData())
	n.applied, n.snapIdx = snap.GetMetadata().GetIndex(), snap.GetMetadata().GetIndex()
	n.cs = snap.GetMetadata().GetConfState()
	rn, err := raft.NewRawNode(&raft.Config{ID: n.id, ElectionTick: 10, HeartbeatTick: 1, Storage: n.log,
		MaxSizePerMsg: 4096, MaxInflightMsgs: 64, Applied: n.applied, CheckQuorum: true, PreVote: true, Logger: quietRaft})
	if err != nil {
		c.t.Fatal(err)
	}
	if bootstrap {
		if err := rn.Bootstrap([]raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}); err != nil {
			c.t.Fatal(err)
		}
	}
	n.rn = rn
}

// crash cuts n's power: what it did not fsync is gone, and it is down until start.
func (c *cluster) crash(n *rnode) {
	n.fs.Crash()
	n.log.Close() // fails: its handles died with the power
	n.rn, n.log = nil, nil
}

func encodeValues(v []string) []byte { return []byte(strings.Join(v, ",")) }
func decodeValues(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), ",")
}

func (c *cluster) ready(n *rnode) {
	for n.rn.HasReady() {
		rd := n.rn.Ready()
		if err := n.log.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			c.t.Fatalf("node %d: save: %v", n.id, err)
		}
		if !raft.IsEmptySnap(rd.Snapshot) {
			n.values = decodeValues(rd.Snapshot.GetData())
			n.applied = rd.Snapshot.GetMetadata().GetIndex()
			n.snapIdx = n.applied
			n.cs = rd.Snapshot.GetMetadata().GetConfState()
			n.snaps++
		}
		c.queue = append(c.queue, rd.Messages...)
		for _, e := range rd.CommittedEntries {
			switch e.GetType() {
			case raftpb.EntryNormal:
				if len(e.GetData()) > 0 {
					n.values = append(n.values, string(e.GetData()))
				}
			case raftpb.EntryConfChange:
				var cc raftpb.ConfChange
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					c.t.Fatal(err)
				}
				n.cs = n.rn.ApplyConfChange(&cc)
			}
			n.applied = e.GetIndex()
		}
		if n.applied >= n.snapIdx+20 {
			if err := n.log.CreateSnapshot(n.applied, n.cs, encodeValues(n.values)); err != nil {
				c.t.Fatalf("node %d: snapshot at %d: %v", n.id, n.applied, err)
			}
			n.snapIdx = n.applied
		}
		n.rn.Advance(rd)
	}
}

// round ticks every running node and delivers messages until none are left.
func (c *cluster) round() {
	for _, n := range c.nodes {
		if n.rn != nil {
			n.rn.Tick()
			c.ready(n)
		}
	}
	for len(c.queue) > 0 {
		q := c.queue
		c.queue = nil
		for _, m := range q {
			to := c.nodes[m.GetTo()-1]
			if to.rn == nil {
				continue // down: the message is lost
			}
			if err := to.rn.Step(m); err != nil {
				c.t.Fatalf("node %d: step %v: %v", to.id, m.GetType(), err)
			}
			c.ready(to)
			if m.GetType() == raftpb.MsgSnap {
				if from := c.nodes[m.GetFrom()-1]; from.rn != nil {
					from.rn.ReportSnapshot(to.id, raft.SnapshotFinish)
				}
			}
		}
	}
}

func (c *cluster) leader() *rnode {
	for _, n := range c.nodes {
		if n.rn != nil && n.rn.BasicStatus().RaftState == raft.StateLeader {
			return n
		}
	}
	return nil
}

// until runs rounds until cond holds (at most 3000 rounds: logical time, not wall time).
func (c *cluster) until(what string, cond func() bool) {
	for range 3000 {
		if cond() {
			return
		}
		c.round()
	}
	c.t.Fatalf("never: %s", what)
}

// propose commits n values through the leader.
func (c *cluster) propose(n int, prefix string, want *[]string) {
	for i := range n {
		v := fmt.Sprint(prefix, i)
		c.until("a leader", func() bool { return c.leader() != nil })
		l := c.leader()
		if err := l.rn.Propose([]byte(v)); err != nil {
			c.t.Fatal(err)
		}
		*want = append(*want, v)
		c.until("commit of "+v, func() bool { return c.leader() != nil && slices.Contains(c.leader().values, v) })
	}
}

// TestRaftClusterOnLog runs real raft (three RawNodes) on Logs: a follower is crashed
// while the others go on and compact, comes back from its Log and catches up through a
// snapshot saved from the leader; then the leader is crashed and comes back. Every node
// ends with every committed value, in order, and a reopened Log serves what raft saved.
func TestRaftClusterOnLog(t *testing.T) {
	c := &cluster{t: t}
	for id := uint64(1); id <= 3; id++ {
		c.nodes = append(c.nodes, &rnode{id: id, fs: waltest.NewCrashFS()})
	}
	for _, n := range c.nodes {
		c.start(n, true)
	}
	var want []string
	c.propose(30, "a", &want)

	follower := c.nodes[0]
	if follower == c.leader() {
		follower = c.nodes[1]
	}
	c.crash(follower)
	c.propose(60, "b", &want) // the others snapshot every 20 entries and compact
	c.start(follower, false)
	c.until("the follower catching up", func() bool { return len(follower.values) == len(want) })
	if follower.snaps == 0 {
		t.Errorf("node %d caught up without a snapshot from the leader", follower.id)
	}
	first, _ := follower.log.FirstIndex()
	t.Logf("node %d caught up: %d values, %d snapshots received, first index %d", follower.id, len(follower.values), follower.snaps, first)

	leader := c.leader()
	c.crash(leader)
	c.propose(30, "c", &want)
	c.start(leader, false)
	c.until("the old leader catching up", func() bool { return len(leader.values) == len(want) })

	for _, n := range c.nodes {
		if !slices.Equal(n.values, want) {
			t.Errorf("node %d applied %v, want %v", n.id, n.values, want)
		}
		// The Log serves after a reopen what raft had saved.
		hs, _, _ := n.log.InitialState()
		last, _ := n.log.LastIndex()
		t.Logf("node %d: hard state %v, last index %d, stats %+v", n.id, hs, last, n.log.Stats())
		before := dump(n.log)
		if err := n.log.Close(); err != nil {
			t.Fatal(err)
		}
		l := mustOpen(t, n.fs, raftlog.Options{KeepEntries: 5})
		if got := dump(l); got != before {
			t.Errorf("node %d: reopened log differs:\n%s\nwas\n%s", n.id, got, before)
		}
		if hs.GetCommit() > last || hs.GetCommit() < uint64(len(want)) {
			t.Errorf("node %d: commit %d, last index %d, %d values", n.id, hs.GetCommit(), last, len(want))
		}
		l.Close()
	}
}
