package quorum

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"go.etcd.io/raft/v3"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// logSM is a state machine whose state is the list of applied commands.
type logSM struct {
	mu       sync.Mutex
	entries  []string
	last     uint64
	restores atomic.Int32
	twice    atomic.Bool // Apply saw an index not above the last one
}

func (s *logSM) Apply(index uint64, data []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.last {
		s.twice.Store(true)
	}
	s.last = index
	s.entries = append(s.entries, string(data))
	return fmt.Sprintf("%d:%s", index, data)
}

func (s *logSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(struct {
		E    []string
		Last uint64
	}{s.entries, s.last})
}

func (s *logSM) Restore(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v struct {
		E    []string
		Last uint64
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	s.entries, s.last = v.E, v.Last
	s.restores.Add(1)
	return nil
}

func (s *logSM) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries)
}

type tnode struct {
	id   uint64
	addr string
	st   Storage
	sm   *logSM
	tr   *LocalTransport
	n    *Node
}

type cluster struct {
	t     *testing.T
	net   *LocalNet
	nodes map[uint64]*tnode
	every uint64      // SnapshotEvery
	vote  int         // Voters
	clock clock.Clock // Clock (nil: real time, which synctest virtualises)
}

// newCluster must be called inside a synctest bubble; it stops everything on cleanup.
func newCluster(t *testing.T, every uint64, voters int) *cluster {
	c := &cluster{t: t, net: NewLocalNet(), nodes: make(map[uint64]*tnode), every: every, vote: voters}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			if tn.n != nil {
				tn.n.Stop()
			}
		}
		c.net.Close()
	})
	return c
}

func addrOf(id uint64) string { return "n" + strconv.FormatUint(id, 10) }

// newFoundedCluster is newCluster with node 1 started, bootstrapping the cluster alone.
func newFoundedCluster(t *testing.T, every uint64, voters int) (*cluster, *tnode) {
	t.Helper()
	c := newCluster(t, every, voters)
	return c, c.start(1, nil, peersOf(1))
}

func peersOf(ids ...uint64) []raft.Peer {
	var ps []raft.Peer
	for _, id := range ids {
		ps = append(ps, raft.Peer{ID: id, Context: []byte(addrOf(id))})
	}
	return ps
}

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("QUORUM_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// start starts id on st (a new MemoryStorage if nil) with a fresh state machine.
func (c *cluster) start(id uint64, st Storage, boot []raft.Peer) *tnode {
	c.t.Helper()
	if st == nil {
		st = NewMemoryStorage()
	}
	tn := &tnode{id: id, addr: addrOf(id), st: st, sm: &logSM{}, tr: c.net.Transport(id)}
	n, err := Start(Config{ID: id, Storage: st, Transport: tn.tr, SM: tn.sm, Log: testLogger(c.t),
		Clock: c.clock, SnapshotEvery: c.every, Voters: c.vote, Bootstrap: boot})
	if err != nil {
		c.t.Fatalf("start %d: %v", id, err)
	}
	tn.n = n
	tn.tr.Attach(n)
	c.nodes[id] = tn
	return tn
}

// bootstrap starts ids as a new cluster with those voters and waits for its leader.
func (c *cluster) bootstrap(ids ...uint64) *tnode {
	c.t.Helper()
	for _, id := range ids {
		c.start(id, nil, peersOf(ids...))
	}
	return c.leader(ids...)
}

func (c *cluster) stop(id uint64) {
	tn := c.nodes[id]
	tn.tr.Attach(nil)
	tn.n.Stop()
	tn.n = nil
}

// waitFor polls cond every virtual 100ms for up to a virtual minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 600 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("still waiting after a virtual minute: %s", what)
}

// leader waits until one of ids is leader and every other one of ids follows it.
func (c *cluster) leader(ids ...uint64) *tnode {
	c.t.Helper()
	var l *tnode
	waitFor(c.t, fmt.Sprintf("a leader among %v", ids), func() bool {
		l = nil
		for _, id := range ids {
			st := c.nodes[id].n.Status()
			if st.State == raft.StateLeader.String() {
				l = c.nodes[id]
			}
		}
		if l == nil {
			return false
		}
		for _, id := range ids {
			if lead, ok := c.nodes[id].n.Leader(); !ok || lead != l.id {
				return false
			}
		}
		return true
	})
	return l
}

func (c *cluster) propose(tn *tnode, data string) string {
	c.t.Helper()
	res, err := tn.n.Propose(context.Background(), []byte(data))
	if err != nil {
		c.t.Fatalf("propose %q on %d: %v", data, tn.id, err)
	}
	s, _ := res.(string)
	if !strings.HasSuffix(s, ":"+data) {
		c.t.Fatalf("propose %q: result %v belongs to another entry", data, res)
	}
	return s
}

// proposeN proposes prefix0 … prefix(n-1) on tn, one at a time, and returns them.
func (c *cluster) proposeN(tn *tnode, prefix string, n int) []string {
	c.t.Helper()
	var ds []string
	for i := range n {
		ds = append(ds, prefix+strconv.Itoa(i))
		c.propose(tn, ds[i])
	}
	return ds
}

// converged waits until every one of ids has applied exactly want.
func (c *cluster) converged(want []string, ids ...uint64) {
	c.t.Helper()
	for _, id := range ids {
		waitFor(c.t, fmt.Sprintf("node %d applies %d entries", id, len(want)), func() bool {
			return slices.Equal(c.nodes[id].sm.list(), want)
		})
		if c.nodes[id].sm.twice.Load() {
			c.t.Fatalf("node %d: Apply called for an index not above the last", id)
		}
	}
}

func isRetriable(err error) bool {
	return errors.Is(err, ErrLeaderChanged) || errors.Is(err, ErrNotLeader)
}
