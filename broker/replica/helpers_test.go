package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const tick = defaultTick

func testLog() *slog.Logger {
	level := slog.LevelError + 4 // quiet: errors are asserted, not read
	if os.Getenv("REPLICA_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func gid(i int) GroupID {
	var g GroupID
	g.Topic[0] = 0xAB
	g.Partition = int32(i)
	return g
}

// checker holds the invariants every test checks across all replicas: at most one leader
// per group and term, and one entry per committed index.
type checker struct {
	mu      sync.Mutex
	leaders map[GroupID]map[uint64]uint64 // term → leader
	applied map[GroupID]map[uint64]string // index → term/type/data
	errs    []string
}

func newChecker() *checker {
	return &checker{leaders: map[GroupID]map[uint64]uint64{}, applied: map[GroupID]map[uint64]string{}}
}

// inner returns m[k], made and stored first if there is none.
func inner[K, K2 comparable, V any](m map[K]map[K2]V, k K) map[K2]V {
	in := m[k]
	if in == nil {
		in = map[K2]V{}
		m[k] = in
	}
	return in
}

func (c *checker) leader(g GroupID, lead, term uint64) {
	if lead == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := inner(c.leaders, g)
	if old, ok := m[term]; ok && old != lead {
		c.errs = append(c.errs, fmt.Sprintf("group %v term %d: leaders %d and %d", g, term, old, lead))
	}
	m[term] = lead
}

func (c *checker) entry(g GroupID, e *raftpb.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := inner(c.applied, g)
	k := fmt.Sprintf("%d/%v/%q", e.GetTerm(), e.GetType(), e.GetData())
	if old, ok := m[e.GetIndex()]; ok && old != k {
		c.errs = append(c.errs, fmt.Sprintf("group %v index %d: applied %s and %s", g, e.GetIndex(), old, k))
	}
	m[e.GetIndex()] = k
}

func (c *checker) check(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Error(e)
	}
}

// testSM records what a group applied on one replica.
type testSM struct {
	g   GroupID
	chk *checker

	mu       sync.Mutex
	last     uint64   // last applied index
	data     []string // applied non-empty normal entries
	restores int
	lead     uint64
	term     uint64
	order    bool // Apply saw an index out of order
}

func (s *testSM) Apply(ents []*raftpb.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ents {
		if e.GetIndex() != s.last+1 {
			s.order = true
		}
		s.last = e.GetIndex()
		s.chk.entry(s.g, e)
		if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
			s.data = append(s.data, string(e.GetData()))
		}
	}
}

func (s *testSM) Restore(snap *raftpb.Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restores++
	s.last = snap.GetMetadata().GetIndex()
	s.data = nil
	if d := snap.GetMetadata().GetIndex(); d > 0 {
		s.data = append(s.data, "snap:"+string(snap.GetData()))
	}
}

func (s *testSM) LeaderChanged(lead, term uint64) {
	s.mu.Lock()
	s.lead, s.term = lead, term
	s.mu.Unlock()
	s.chk.leader(s.g, lead, term)
}

func (s *testSM) applied() (uint64, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, slices.Clone(s.data)
}

// tnode is one broker: an Engine, its endpoint, its groups' storages.
type tnode struct {
	id     uint64
	ep     *LocalEndpoint
	eng    *Engine
	stores map[GroupID]*MemoryStorage
	sms    map[GroupID]*testSM

	mu       sync.Mutex
	syncs    int
	syncHook func() error // guarded by mu; called by Sync when set
}

func (n *tnode) sync() error {
	n.mu.Lock()
	n.syncs++
	h := n.syncHook
	n.mu.Unlock()
	if h != nil {
		return h()
	}
	return nil
}

func (n *tnode) setSyncHook(h func() error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.syncHook = h
}

func (n *tnode) syncCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.syncs
}

type cluster struct {
	t      *testing.T
	net    *LocalNet
	chk    *checker
	nodes  map[uint64]*tnode
	groups []GroupID
	voters []uint64
}

// newCluster starts n engines (raft ids 1..n) running the groups 0..groups-1, each
// bootstrapped with all n as voters. Call it inside a synctest bubble.
func newCluster(t *testing.T, n, groups int) *cluster {
	c := &cluster{t: t, net: NewLocalNet(), chk: newChecker(), nodes: map[uint64]*tnode{}}
	for i := range groups {
		c.groups = append(c.groups, gid(i))
	}
	for id := uint64(1); id <= uint64(n); id++ {
		c.voters = append(c.voters, id)
	}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			if tn.eng != nil {
				tn.eng.Stop()
			}
		}
		c.net.Close()
		c.chk.check(t)
		for id, tn := range c.nodes {
			for g, sm := range tn.sms {
				if sm.order {
					t.Errorf("node %d group %v: Apply skipped or repeated an index", id, g)
				}
			}
		}
	})
	for _, id := range c.voters {
		c.nodes[id] = &tnode{id: id, ep: c.net.Endpoint(id), stores: map[GroupID]*MemoryStorage{}, sms: map[GroupID]*testSM{}}
		c.start(id)
		for _, g := range c.groups {
			c.addGroup(id, g, c.voters)
		}
	}
	return c
}

// newLedCluster starts three engines running one group and waits for its leader: the
// cluster, the group and the leader.
func newLedCluster(t *testing.T) (c *cluster, g GroupID, l uint64) {
	c = newCluster(t, 3, 1)
	g = c.groups[0]
	return c, g, c.leader(g)
}

// start starts node id's Engine (with no groups).
func (c *cluster) start(id uint64) {
	c.t.Helper()
	n := c.nodes[id]
	e, err := New(Config{ID: id, Transport: n.ep, Sync: n.sync, Log: testLog()})
	if err != nil {
		c.t.Fatal(err)
	}
	n.eng = e
	n.ep.Attach(e)
}

// addGroup runs g on node id, on the node's storage for g (a new one the first time).
func (c *cluster) addGroup(id uint64, g GroupID, voters []uint64) {
	c.t.Helper()
	n := c.nodes[id]
	st := n.stores[g]
	if st == nil {
		st = NewMemoryStorage()
		n.stores[g] = st
	}
	sm := &testSM{g: g, chk: c.chk}
	n.sms[g] = sm
	if err := n.eng.AddGroup(g, st, sm, voters); err != nil {
		c.t.Fatal(err)
	}
}

// stop stops node id's Engine (its storages stay: a restart finds them).
func (c *cluster) stop(id uint64) {
	n := c.nodes[id]
	n.ep.Attach(nil)
	n.eng.Stop()
	n.eng = nil
}

// restart starts node id again and re-adds every group it had.
func (c *cluster) restart(id uint64) {
	c.t.Helper()
	c.start(id)
	for _, g := range c.groups {
		if _, ok := c.nodes[id].stores[g]; ok {
			c.addGroup(id, g, c.voters)
		}
	}
}

// leader waits (in virtual time) until the running nodes agree on a leader of g that leads
// in its own view, and returns it.
func (c *cluster) leader(g GroupID, among ...uint64) uint64 {
	c.t.Helper()
	if len(among) == 0 {
		among = c.voters
	}
	for range 600 {
		votes := map[uint64]int{}
		running := 0
		var leading uint64
		for _, id := range among {
			n := c.nodes[id]
			if n.eng == nil {
				continue
			}
			running++
			st, ok := n.eng.Status(g)
			if !ok {
				continue
			}
			votes[st.Leader]++
			if st.Leader == id {
				leading = id
			}
		}
		if leading != 0 && votes[leading] == running {
			return leading
		}
		time.Sleep(tick)
	}
	c.t.Fatalf("group %v: no leader agreed among %v", g, among)
	return 0
}

// transfer moves g's leadership to node to, asking again while it has not happened (raft
// abandons a transfer after an election timeout, e.g. when the target had not yet applied
// its promotion), at most 50 times.
func (c *cluster) transfer(g GroupID, to uint64) {
	c.t.Helper()
	for range 50 {
		l := c.leader(g)
		if l == to {
			return
		}
		c.nodes[l].eng.TransferLeader(g, to)
		for range 3 * electionTicks {
			time.Sleep(tick)
			if st, _ := c.nodes[to].eng.Status(g); st.Leader == to {
				break
			}
		}
	}
	c.t.Fatalf("group %v: leadership not transferred to %d", g, to)
}

// waitApplied waits until node id applied index of g.
func (c *cluster) waitApplied(id uint64, g GroupID, index uint64) {
	c.t.Helper()
	for range 600 {
		if last, _ := c.nodes[id].sms[g].applied(); last >= index {
			return
		}
		time.Sleep(tick)
	}
	last, _ := c.nodes[id].sms[g].applied()
	c.t.Fatalf("node %d group %v: applied %d, want %d", id, g, last, index)
}

// propose proposes data to g on node id and waits for the commit.
func (c *cluster) propose(id uint64, g GroupID, data string) *Proposal {
	c.t.Helper()
	p, err := c.nodes[id].eng.Propose(context.Background(), g, []byte(data))
	if err != nil {
		c.t.Fatalf("propose %q on %d: %v", data, id, err)
	}
	if err := <-p.Committed; err != nil {
		c.t.Fatalf("commit %q on %d: %v", data, id, err)
	}
	return p
}

func isNotLeader(err error) (*NotLeaderError, bool) {
	var nl *NotLeaderError
	ok := errors.As(err, &nl)
	return nl, ok && errors.Is(err, ErrNotLeader)
}

// poll reports whether ch has a value now (after the bubble settled).
func poll[T any](ch <-chan T) (T, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
		var zero T
		return zero, false
	}
}
