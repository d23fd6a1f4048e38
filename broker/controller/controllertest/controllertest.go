// Package controllertest runs brokers on a metadata quorum in one process, for tests of the
// packages above broker/controller (the gateway's cluster view, commands): each broker has a
// loopback mesh endpoint serving kafkaop, a raft node on a shared quorum.LocalNet with
// in-memory raft storage, a broker.Broker on a temporary directory and its Controller.
package controllertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/controller"
	"github.com/meshkafka/meshkafka/broker/quorum"
	"github.com/meshkafka/meshkafka/broker/quorum/raftmesh"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/broker/replica/replmesh"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Broker is one running broker.
type Broker struct {
	RaftID     uint64
	Key        key.SecretKey // the broker's mesh identity (kept by Wipe)
	EP         *endpoint.Endpoint
	Node       *quorum.Node
	Broker     *broker.Broker
	Controller *controller.Controller
	// Replicas runs the raft groups of the broker's replicated partitions over the mesh
	// (as controller.StartNode does).
	Replicas         *replica.Engine
	ReplicaTransport *replmesh.Transport

	stor     *quorum.MemoryStorage // kept by Restart
	dir      string                // the broker's data directory, kept by Restart
	stopOnce sync.Once
}

// Stop stops the broker as a crash looks to the others: its mesh endpoint, raft node,
// controller and broker go. Idempotent.
func (b *Broker) Stop() {
	b.stopOnce.Do(func() {
		b.Controller.Close()
		b.Node.Stop()
		b.Replicas.Stop()
		b.ReplicaTransport.Close()
		b.EP.Close()
		b.Broker.Close()
	})
}

// Cluster is n brokers on one quorum.
type Cluster struct {
	Net     *quorum.LocalNet
	Brokers []*Broker
	Seeds   []endpoint.NodeAddr

	secure bool
	voters int
	trust  []key.PublicKey
	next   uint64 // the last raft id given out
	log    *slog.Logger
}

// Start runs n brokers that trust the given NodeIds (gateways) and waits until they form a
// quorum with min(n, 3) voters: broker 0 bootstraps it, the others join through the seeds
// (all n brokers). Everything is stopped when the test ends.
func Start(t testing.TB, n int, trust ...key.PublicKey) *Cluster {
	t.Helper()
	return StartWith(t, Options{N: n, Trust: trust})
}

// Options configure StartWith.
type Options struct {
	N     int             // brokers
	Trust []key.PublicKey // gateways every broker trusts by configuration (its -trust list)
	// ClusterSecurity keeps ACLs, SCRAM credentials and client quotas on the quorum
	// (controller.Config.ClusterSecurity), as brokers started with seeds do.
	ClusterSecurity bool
	// Logger, if set, is the controllers' logger (nil: discard).
	Logger *slog.Logger
}

// Wipe stops broker i and starts it again as after its data directory was deleted: the same
// mesh identity (NodeId, and the same UDP port when it is free), a new raft id, empty
// storage. It joins the quorum again through the seeds, like a new broker.
func (c *Cluster) Wipe(t testing.TB, i int) *Broker {
	t.Helper()
	old := c.Brokers[i]
	ep := stopAndRebind(t, old)
	c.next++
	b := &Broker{RaftID: c.next, Key: old.Key, EP: ep}
	c.Brokers[i] = b
	c.start(t, b, false, c.voters, c.trust)
	return b
}

// stopAndRebind stops old and opens a new endpoint with its mesh identity, on its UDP port
// when that is free (else on a new one).
func stopAndRebind(t testing.TB, old *Broker) *endpoint.Endpoint {
	t.Helper()
	bind := "127.0.0.1:0"
	if d := old.EP.Addr().Direct; len(d) > 0 {
		bind = d[0].String()
	}
	old.Stop()
	ep, err := endpoint.New(endpoint.Options{SecretKey: old.Key, BindAddr: bind})
	if err != nil {
		ep, err = endpoint.New(endpoint.Options{SecretKey: old.Key, BindAddr: "127.0.0.1:0"})
	}
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// Restart stops broker i (unless Stop already has) and starts it again as after a process
// restart: the same mesh identity (and UDP port when it is free), raft id, raft log and data
// directory.
func (c *Cluster) Restart(t testing.TB, i int) *Broker {
	t.Helper()
	old := c.Brokers[i]
	ep := stopAndRebind(t, old)
	b := &Broker{RaftID: old.RaftID, Key: old.Key, EP: ep, stor: old.stor, dir: old.dir}
	c.Brokers[i] = b
	c.start(t, b, false, c.voters, c.trust)
	return b
}

// StartWith is Start with Options.
func StartWith(t testing.TB, o Options) *Cluster {
	t.Helper()
	n, trust := o.N, o.Trust
	c := &Cluster{Net: quorum.NewLocalNet(), secure: o.ClusterSecurity, log: o.Logger}
	for i := 0; i < n; i++ {
		sk := key.GenerateSecretKey()
		ep, err := endpoint.New(endpoint.Options{SecretKey: sk, BindAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		c.Seeds = append(c.Seeds, ep.Addr())
		c.Brokers = append(c.Brokers, &Broker{RaftID: uint64(i + 1), Key: sk, EP: ep})
	}
	c.next = uint64(n)
	t.Cleanup(func() {
		for _, b := range c.Brokers {
			if b.Controller != nil {
				b.Stop()
			} else {
				b.EP.Close()
			}
		}
		c.Net.Close()
	})
	voters := min(n, 3)
	c.voters, c.trust = voters, trust
	for i, b := range c.Brokers {
		c.start(t, b, i == 0, voters, trust)
	}
	err := Eventually(func() error {
		st := c.Brokers[0].Controller.Status()
		nv := 0
		for _, m := range st.Brokers {
			if m.Voter {
				nv++
			}
		}
		if len(st.Brokers) != n || nv != voters {
			return fmt.Errorf("%d brokers registered, %d voters", len(st.Brokers), nv)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("controllertest: the quorum did not form: %v", err)
	}
	return c
}

func (c *Cluster) start(t testing.TB, b *Broker, boot bool, voters int, trust []key.PublicKey) {
	t.Helper()
	sm := controller.NewStateMachine()
	tr := c.Net.Transport(b.RaftID)
	if b.stor == nil {
		b.stor, b.dir = quorum.NewMemoryStorage(), t.TempDir()
	}
	cfg := quorum.Config{ID: b.RaftID, Storage: b.stor, Transport: tr, SM: sm, TickInterval: 20 * time.Millisecond,
		Voters: voters, Log: slog.New(slog.DiscardHandler)}
	if boot {
		cfg.Bootstrap = []raft.Peer{{ID: b.RaftID, Context: raftmesh.EncodeAddr(b.EP.Addr())}}
	}
	q, err := quorum.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr.Attach(q)
	b.Node = q
	// A restarted broker applies what its raft log committed before its broker opens (as
	// controller.StartNode does), so the broker knows every topic it has data of.
	if hs, _, err := b.stor.InitialState(); err == nil {
		for q.Status().Applied < hs.GetCommit() {
			select {
			case <-q.Done():
				t.Fatalf("controllertest: raft node stopped while replaying: %v", q.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	rep := controller.NewQuorumReplica(q, sm, b.RaftID)
	reg := controller.NewRegistry(rep, 0)
	bk, err := broker.Open(broker.Config{Dir: b.dir, DefaultPartitions: 1, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	b.Broker = bk
	ep := b.EP
	var ctlp atomic.Pointer[controller.Controller] // set once the controller runs
	fellow := func(id key.PublicKey) bool { c := ctlp.Load(); return c != nil && c.Trusts(id) }
	b.ReplicaTransport = replmesh.New(ep, replmesh.Config{Trust: fellow, ID: b.RaftID, Log: slog.New(slog.DiscardHandler)})
	if b.Replicas, err = replica.New(replica.Config{ID: b.RaftID, Transport: b.ReplicaTransport, Sync: bk.SyncStorage,
		TickInterval: 20 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	b.ReplicaTransport.Attach(b.Replicas)
	if err := bk.SetReplication(b.Replicas, b.RaftID); err != nil {
		t.Fatal(err)
	}
	var ctlLog *slog.Logger
	if c.log != nil {
		ctlLog = c.log.With("broker", b.RaftID)
	}
	ctl, err := controller.New(controller.Config{Replica: rep, Broker: bk, Registry: reg, Self: ep.Addr(), Seeds: c.Seeds, Logger: ctlLog,
		Poll: 10 * time.Millisecond, JoinEvery: 100 * time.Millisecond, ClusterSecurity: c.secure, Partitions: b.Replicas,
		AddPeer: func(id uint64, a endpoint.NodeAddr) { b.Replicas.AddPeer(id, raftmesh.EncodeAddr(a)) },
		Dial: func(a endpoint.NodeAddr) brokerop.Service {
			return brokermesh.NewCaller(brokermesh.NewMeshOpener(ep, a), a.ID.ShortString())
		}})
	if err != nil {
		t.Fatal(err)
	}
	b.Controller = ctl
	ctlp.Store(ctl)
	brokermesh.ServeFunc(ep, brokermesh.NewServer(nil, ctl.Service()), func(id key.PublicKey) bool {
		return slices.Contains(trust, id) || ctl.Trusts(id)
	}, nil)
}

// Leader is the index of the running broker that leads the quorum.
func (c *Cluster) Leader() (int, error) {
	for i, b := range c.Brokers {
		if st := b.Node.Status(); !st.Stopped && st.Leader == b.RaftID {
			return i, nil
		}
	}
	return -1, errors.New("controllertest: no leader")
}

// Eventually retries f every 50 ms until it returns nil, at most 1200 times (a minute: a bound
// for a loaded machine, not a speed target), and returns its last error.
func Eventually(f func() error) error {
	var err error
	for i := 0; i < 1200; i++ {
		if err = f(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// Context is a context for one op of a test.
func Context() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}
