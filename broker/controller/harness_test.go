package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/broker/quorum"
	"github.com/meshkafka/meshkafka/broker/quorum/raftmesh"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLog is the tests' logger: quiet unless CTL_TEST_LOG=1.
func testLog() *slog.Logger {
	if os.Getenv("CTL_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// tnode is one in-process broker on the quorum: a loopback mesh endpoint serving kafkaop,
// a raft node on the harness's LocalNet, a broker and its controller.
type tnode struct {
	id   uint64
	ep   *endpoint.Endpoint
	sm   *StateMachine
	q    *quorum.Node
	b    *broker.Broker
	ctl  *Controller
	stor *quorum.MemoryStorage

	// hang, once set, makes every kafkaop op served here block until the harness ends (a
	// broker that stopped answering, its connections still open); hung is signalled by each.
	hang atomic.Bool
	hung chan string

	stopOnce sync.Once
}

// stop stops the broker as a crash would look to the others: mesh, raft and broker go.
func (n *tnode) stop() {
	n.stopOnce.Do(func() {
		n.ctl.Close()
		n.q.Stop()
		n.ep.Close()
		n.b.Close()
	})
}

type harness struct {
	t     *testing.T
	net   *quorum.LocalNet
	gw    *endpoint.Endpoint // the gateway's endpoint: every broker trusts it
	seeds []endpoint.NodeAddr
	nodes []*tnode
	end   chan struct{} // closed when the test ends: hung ops return

	clocks map[int]clock.Clock // if set, broker i's controller runs on clocks[i] (default real)
	// forward, if set for broker i, wraps the callers broker i forwards ops to the leader on.
	forward map[int]func(brokerop.Service) brokerop.Service
	groups  group.MachineConfig // the group coordinators' configuration
	// replica, if set for broker i, wraps its Replica (controller and registry); logs, if
	// set for broker i, is its broker's logger.
	replica map[int]func(Replica) Replica
	logs    map[int]*slog.Logger
}

func newEndpoint(t *testing.T) *endpoint.Endpoint {
	t.Helper()
	ep, err := endpoint.New(endpoint.Options{SecretKey: key.GenerateSecretKey(), BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// newHarness makes n broker endpoints (the seeds) and a gateway endpoint; no broker runs yet.
func newHarness(t *testing.T, n int) *harness {
	h := &harness{t: t, net: quorum.NewLocalNet(), gw: newEndpoint(t), end: make(chan struct{})}
	for i := 0; i < n; i++ {
		ep := newEndpoint(t)
		h.seeds = append(h.seeds, ep.Addr())
		h.nodes = append(h.nodes, &tnode{id: uint64(i + 1), ep: ep, hung: make(chan string, 16)})
	}
	t.Cleanup(func() {
		close(h.end)
		for _, n := range h.nodes {
			if n.ctl != nil {
				n.stop()
			} else {
				n.ep.Close()
			}
		}
		h.net.Close()
		h.gw.Close()
	})
	return h
}

// start runs broker i; boot makes it bootstrap a cluster of one voter.
func (h *harness) start(i int, boot bool, seeds []endpoint.NodeAddr) *tnode {
	t := h.t
	t.Helper()
	n := h.nodes[i]
	n.sm = NewStateMachine()
	n.stor = quorum.NewMemoryStorage()
	tr := h.net.Transport(n.id)
	cfg := quorum.Config{ID: n.id, Storage: n.stor, Transport: tr, SM: n.sm, TickInterval: 20 * time.Millisecond, Voters: 3, Log: testLog()}
	if boot {
		cfg.Bootstrap = []raft.Peer{{ID: n.id, Context: raftmesh.EncodeAddr(n.ep.Addr())}}
	}
	q, err := quorum.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr.Attach(q)
	n.q = q
	var rep Replica = NewQuorumReplica(q, n.sm, n.id)
	if w := h.replica[i]; w != nil {
		rep = w(rep)
	}
	reg := NewRegistry(rep, 0)
	blog := testLog()
	if l := h.logs[i]; l != nil {
		blog = l
	}
	b, err := broker.Open(broker.Config{Dir: t.TempDir(), DefaultPartitions: 1, Registry: reg, Logger: blog})
	if err != nil {
		t.Fatal(err)
	}
	n.b = b
	ep := n.ep
	ctl, err := New(Config{Replica: rep, Broker: b, Registry: reg, Self: ep.Addr(), Seeds: seeds, Poll: 10 * time.Millisecond,
		JoinEvery: 100 * time.Millisecond, Logger: testLog(), Clock: h.clocks[i], Groups: h.groups,
		Dial: func(a endpoint.NodeAddr) brokerop.Service {
			var svc brokerop.Service = brokermesh.NewCaller(brokermesh.NewMeshOpener(ep, a), a.ID.ShortString())
			if w := h.forward[i]; w != nil {
				svc = w(svc)
			}
			return svc
		}})
	if err != nil {
		t.Fatal(err)
	}
	n.ctl = ctl
	gw := h.gw.NodeID()
	svc := brokerop.Intercept(ctl.Service(), func(ctx context.Context, op string) (context.Context, func(error)) {
		if n.hang.Load() {
			select {
			case n.hung <- op:
			default:
			}
			<-h.end
		}
		return ctx, func(error) {}
	})
	brokermesh.ServeFunc(ep, brokermesh.NewServer(nil, svc), func(id key.PublicKey) bool { return id == gw || ctl.Trusts(id) }, nil)
	return n
}

// caller is the gateway's caller of broker i.
func (h *harness) caller(i int) *brokermesh.Caller {
	return newGatewayCaller(h.gw, h.nodes[i].ep.Addr())
}

func newGatewayCaller(gw *endpoint.Endpoint, a endpoint.NodeAddr) *brokermesh.Caller {
	return brokermesh.NewCaller(brokermesh.NewMeshOpener(gw, a), a.ID.ShortString())
}

// startGatewayNode starts a node of cfg (Endpoint, Trust and Logger set here) on a new local
// endpoint that trusts only a new gateway endpoint, all closed when the test ends: the node,
// its endpoint and a caller reaching it as the gateway.
func startGatewayNode(t *testing.T, cfg NodeConfig) (*Node, *endpoint.Endpoint, *brokermesh.Caller) {
	t.Helper()
	gw := endpointWith(t, key.GenerateSecretKey(), "127.0.0.1:0")
	t.Cleanup(func() { gw.Close() })
	ep := endpointWith(t, key.GenerateSecretKey(), "127.0.0.1:0")
	t.Cleanup(func() { ep.Close() })
	cfg.Endpoint, cfg.Logger = ep, testLog()
	cfg.Trust = func(k key.PublicKey) bool { return k == gw.NodeID() }
	n, err := StartNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, ep, newGatewayCaller(gw, ep.Addr())
}

// eventually retries f until it returns nil, for at most a minute of attempts (a bound on a
// loaded machine, not a speed target): elections and joins take a few raft ticks.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for i := 0; i < 1200; i++ {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: still failing: %v", what, err)
}

// startThree starts the harness's three nodes (node 0 founds the cluster), waits until all
// three are registered voters, and returns the index of the leader.
func (h *harness) startThree() int {
	h.t.Helper()
	h.formThree(0)
	li, err := h.leaderIndex()
	if err != nil {
		h.t.Fatal(err)
	}
	return li
}

// newThreeHarness is a harness of three nodes started (startThree): it and the leader's index.
func newThreeHarness(t *testing.T) (*harness, int) {
	t.Helper()
	h := newHarness(t, 3)
	return h, h.startThree()
}

// formThree starts node 0 as the seed and nodes 1 and 2 joining it, and waits until node via
// lists the three as voters: its answer.
func (h *harness) formThree(via int) *brokerop.ClusterBrokersResp {
	h.t.Helper()
	h.start(0, true, h.seeds)
	h.start(1, false, h.seeds)
	h.start(2, false, h.seeds)
	return h.waitMembers(via, 3, 3)
}

// leaderIndex is the index of the node that leads, among running ones.
func (h *harness) leaderIndex() (int, error) {
	for i, n := range h.nodes {
		if n.ctl == nil || n.q == nil {
			continue
		}
		if st := n.q.Status(); st.Leader == n.id && !st.Stopped {
			return i, nil
		}
	}
	return -1, errors.New("no leader")
}

// leadOn makes broker to the quorum's leader (transferring the leadership from the current
// leader) and waits until every running broker sees it lead.
func (h *harness) leadOn(to int) {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("broker %d leads", to), func() error {
		li, err := h.leaderIndex()
		if err != nil {
			return err
		}
		if li != to {
			ctx, cancel := ctx5()
			defer cancel()
			if err := h.nodes[li].q.TransferLeadership(ctx, h.nodes[to].id); err != nil {
				return err
			}
			return fmt.Errorf("leader %d", li)
		}
		for i, n := range h.nodes {
			if n.q == nil || n.q.Status().Stopped {
				continue
			}
			if id, ok := n.q.Leader(); !ok || id != h.nodes[to].id {
				return fmt.Errorf("broker %d sees leader %x", i, id)
			}
		}
		return nil
	})
}

// waitMembers waits until broker via lists want registered brokers, all live, with voters
// voters.
func (h *harness) waitMembers(via int, want, voters int) *brokerop.ClusterBrokersResp {
	var last *brokerop.ClusterBrokersResp
	eventually(h.t, "cluster membership", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := h.caller(via).ClusterBrokers(ctx, &brokerop.ClusterBrokersReq{})
		if err != nil {
			return err
		}
		nv, live := 0, 0
		for _, b := range r.Brokers {
			if b.Voter {
				nv++
			}
			if b.Live {
				live++
			}
		}
		if len(r.Brokers) != want || nv != voters || live != want || r.Leader == "" {
			return fmt.Errorf("brokers %d (want %d), voters %d (want %d), live %d, leader %q", len(r.Brokers), want, nv, voters, live, r.Leader)
		}
		last = r
		return nil
	})
	return last
}
