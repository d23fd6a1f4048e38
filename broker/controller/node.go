package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/broker/quorum"
	"github.com/meshkafka/meshkafka/broker/quorum/raftlog"
	"github.com/meshkafka/meshkafka/broker/quorum/raftmesh"
	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/broker/replica/replmesh"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/wal"
)

// NodeConfig configures a broker process on the metadata quorum (StartNode).
type NodeConfig struct {
	// Broker configures the local broker; Dir is required, Registry is set by StartNode.
	// Its raft log lives in Broker.Dir/quorum.
	Broker broker.Config
	// Endpoint is the broker's mesh endpoint; StartNode registers the raft and kafkaop ALPNs.
	Endpoint *endpoint.Endpoint
	// Seeds are the cluster's seed brokers (may include this one). Empty: a quorum of one.
	Seeds []endpoint.NodeAddr
	// Voters is the voter target (0: 3, or 1 without seeds).
	Voters int
	// Trust reports the non-broker NodeIds (gateways) allowed to call kafkaop ops.
	Trust func(key.PublicKey) bool
	// Groups configures the group coordinator the leader runs.
	Groups group.MachineConfig
	// Security serves the SCRAM credential ops on this broker (nil: not served).
	Security brokerop.SecurityService
	// Rack is this broker's rack label (replicas of a partition go to distinct racks).
	Rack string
	// Kafka is the host:port of this broker's own Kafka listener (Config.Kafka), "" for none.
	Kafka string
	// DefaultReplicationFactor: see Config.DefaultReplicationFactor.
	DefaultReplicationFactor int
	// ClusterSecurity keeps ACLs, SCRAM credentials and client quotas on the quorum
	// (Controller Config.ClusterSecurity); Security is then not used.
	ClusterSecurity bool
	// Authorizer turns on the authorization of the principals gateways act for against the
	// ACLs (authz.go; off: a principal is only checked to come from a node that may name one).
	Authorizer AuthorizerConfig
	// TickInterval is raft's tick (0: 100 ms; an election takes 10 ticks).
	TickInterval time.Duration
	// ProbeTimeout bounds the question to each other seed, at a first start, whether it
	// knows a cluster already (0: 2 s).
	ProbeTimeout time.Duration
	Clock        clock.Clock
	Logger       *slog.Logger
}

// Node is a running broker on the metadata quorum: its raft log, transport and node, its
// broker and its controller, serving kafkaop on the endpoint.
type Node struct {
	Log        *raftlog.Log
	Transport  *raftmesh.Transport
	Raft       *quorum.Node
	Broker     *broker.Broker
	Controller *Controller
	// Replicas runs the raft groups of the replicated partitions this broker holds (package
	// broker/replica), over ReplicaTransport (ALPN /meshkafka/replica/0). Replica ids are
	// metadata-quorum raft ids.
	Replicas         *replica.Engine
	ReplicaTransport *replmesh.Transport

	guard *brokermesh.Guard // the kafkaop server's check (authz.go)
}

// Close stops the controller, the raft node and transport, and closes the broker and the raft
// log (the endpoint is the caller's).
func (n *Node) Close() error {
	var errs []error
	if n.Controller != nil {
		errs = append(errs, n.Controller.Close())
	}
	if n.Raft != nil {
		n.Raft.Stop()
	}
	if n.Transport != nil {
		errs = append(errs, n.Transport.Close())
	}
	if n.Replicas != nil {
		n.Replicas.Stop()
	}
	if n.ReplicaTransport != nil {
		errs = append(errs, n.ReplicaTransport.Close())
	}
	if n.Broker != nil {
		if err := n.Broker.Close(); !errors.Is(err, broker.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if n.Log != nil {
		errs = append(errs, n.Log.Close())
	}
	return errors.Join(errs...)
}

// StartNode opens the raft log (Dir/quorum; the raft id is made on first start), starts the
// raft node (bootstrapping a cluster of one when this broker has no seeds, or is the seed with
// the smallest NodeId, has an empty log and no other seed knows a cluster), waits until the
// locally committed entries are applied, opens the broker with the quorum as its registry,
// starts the controller and serves kafkaop (this broker's data ops and the controller's ops)
// on the endpoint. A broker that is not a member yet joins through the seeds by itself.
func StartNode(ctx context.Context, cfg NodeConfig) (_ *Node, err error) {
	if cfg.Endpoint == nil || cfg.Broker.Dir == "" {
		return nil, errors.New("controller: NodeConfig needs Endpoint and Broker.Dir")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fsys := cfg.Broker.FS
	if fsys == nil {
		fsys = wal.OSFS()
	}
	self := cfg.Endpoint.Addr()
	seeds := slices.Clone(cfg.Seeds)
	voters := cfg.Voters
	if voters <= 0 {
		voters = 3
		if len(seeds) == 0 || len(seeds) == 1 && seeds[0].ID == self.ID {
			voters = 1
		}
	}
	n := &Node{}
	defer func() {
		if err != nil {
			_ = n.Close()
		}
	}()
	if err := wal.MkdirDurable(fsys, filepath.Join(cfg.Broker.Dir, "quorum")); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	if n.Log, err = raftlog.Open(fsys, filepath.Join(cfg.Broker.Dir, "quorum"), raftlog.Options{Logger: log}); err != nil {
		return nil, err
	}
	id := n.Log.RaftID()
	hs, _, err := n.Log.InitialState()
	if err != nil {
		return nil, err
	}
	last, err := n.Log.LastIndex()
	if err != nil {
		return nil, err
	}
	empty := last == 0 && hs.GetCommit() == 0
	sm := NewStateMachine()
	var raftNode atomic.Pointer[quorum.Node]
	isSeed := func(k key.PublicKey) bool {
		return slices.ContainsFunc(seeds, func(a endpoint.NodeAddr) bool { return a.ID == k })
	}
	fellow := func(k key.PublicKey) bool {
		if isSeed(k) || sm.st.Allowed(metadata.NodeID(k.Bytes())) {
			return true
		}
		_, ok := sm.st.BrokerByNode(metadata.NodeID(k.Bytes()))
		return ok
	}
	n.Transport = raftmesh.NewWithConfig(cfg.Endpoint, raftmesh.Config{
		Trust: fellow, ID: id, Log: log, Clock: cfg.Clock,
		Deliver: func(m *raftpb.Message) {
			if q := raftNode.Load(); q != nil {
				_ = q.Step(ctx, m)
			}
		},
		Unreachable: func(to uint64) {
			if q := raftNode.Load(); q != nil {
				q.ReportUnreachable(to)
			}
		},
		SnapshotStatus: func(to uint64, err error) {
			if q := raftNode.Load(); q != nil {
				st := raft.SnapshotFinish
				if err != nil {
					st = raft.SnapshotFailure
				}
				q.ReportSnapshot(to, st)
			}
		},
	})
	dial := func(a endpoint.NodeAddr) brokerop.Service {
		// Broker to broker (forwarded controller ops): no principal, whatever the context.
		return brokermesh.NewCaller(brokermesh.NewMeshOpener(cfg.Endpoint, a), a.ID.ShortString()).AsNode()
	}
	var boot []raft.Peer
	if empty && bootstraps(ctx, self, seeds, dial, cfg.ProbeTimeout, log) {
		boot = []raft.Peer{{ID: id, Context: raftmesh.EncodeAddr(self)}}
		log.Info("bootstrapping a new metadata quorum", "raft_id", fmt.Sprintf("%x", id))
	} else if empty {
		if st, err := (&broker.FileRegistry{FS: fsys, Path: filepath.Join(cfg.Broker.Dir, "topics.registry")}).Load(); err == nil && st != nil && len(st.Topics) > 0 {
			return nil, fmt.Errorf("controller: %s holds %d topics from before the metadata quorum, and this broker is joining an existing cluster: only the broker that bootstraps the cluster imports its topics; move the directory away or start this broker alone first", cfg.Broker.Dir, len(st.Topics))
		}
	}
	q, err := quorum.Start(quorum.Config{ID: id, Storage: n.Log, Transport: n.Transport, SM: sm, Clock: cfg.Clock, Log: log,
		TickInterval: cfg.TickInterval, Voters: voters, Bootstrap: boot})
	if err != nil {
		return nil, err
	}
	n.Raft = q
	raftNode.Store(q)
	// Everything committed locally is applied before the broker opens, so the topics it sees
	// include every one it ever stored data for (it purges the others' directories).
	for q.Status().Applied < hs.GetCommit() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.Done():
			return nil, fmt.Errorf("controller: raft node stopped while replaying: %w", q.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	rep := NewQuorumReplica(q, sm, id)
	if boot != nil {
		if err := importLegacy(ctx, fsys, cfg.Broker.Dir, rep, Member{RaftID: id, NodeID: self.ID, Addr: self}, log); err != nil {
			return nil, err
		}
	}
	if cfg.ClusterSecurity && boot != nil {
		if err := importSecurity(ctx, fsys, cfg.Broker.Dir, cfg.Security, rep, log); err != nil { // security.go
			return nil, err
		}
	} else if cfg.ClusterSecurity && empty {
		warnUnusedSecurity(ctx, fsys, cfg.Broker.Dir, cfg.Security, log)
	}
	reg := NewRegistry(rep, 0)
	bcfg := cfg.Broker
	bcfg.Registry = reg
	if n.Broker, err = broker.Open(bcfg); err != nil {
		return nil, err
	}
	// The partition raft engine: its writes become durable with the broker's journal commit
	// (one fsync per engine round for all groups); replicas are the brokers the quorum knows.
	n.ReplicaTransport = replmesh.New(cfg.Endpoint, replmesh.Config{Trust: fellow, ID: id, Log: log, Clock: cfg.Clock})
	if n.Replicas, err = replica.New(replica.Config{ID: id, Transport: n.ReplicaTransport, Sync: n.Broker.SyncStorage,
		Clock: cfg.Clock, Log: log}); err != nil {
		return nil, err
	}
	n.ReplicaTransport.Attach(n.Replicas)
	if err := n.Broker.SetReplication(n.Replicas, id); err != nil {
		return nil, err
	}
	tr := n.Transport
	if n.Controller, err = New(Config{Replica: rep, Broker: n.Broker, Registry: reg, Self: self, Seeds: seeds, Dial: dial,
		Groups: cfg.Groups, Clock: cfg.Clock, Logger: log, Security: cfg.Security, Rack: cfg.Rack, Kafka: cfg.Kafka, DefaultReplicationFactor: cfg.DefaultReplicationFactor, ClusterSecurity: cfg.ClusterSecurity,
		Partitions: n.Replicas,
		AddPeer: func(id uint64, a endpoint.NodeAddr) {
			tr.AddPeer(id, raftmesh.EncodeAddr(a))
			n.Replicas.AddPeer(id, raftmesh.EncodeAddr(a))
		}}); err != nil {
		return nil, err
	}
	ctl := n.Controller
	trust := cfg.Trust
	srv := brokermesh.NewServer(log, ctl.Service())
	n.guard = guard(cfg, ctl, sm.st) // authz.go
	srv.SetGuard(n.guard)
	brokermesh.ServeFunc(cfg.Endpoint, srv, func(k key.PublicKey) bool {
		return trust != nil && trust(k) || ctl.Trusts(k)
	}, log)
	return n, nil
}

// bootstraps decides whether a broker with an empty raft log starts a new cluster: with no
// seeds (or only itself) always; otherwise only the seed with the smallest NodeId, and only
// once EVERY other seed has answered that it knows no cluster. A seed that does not answer
// (not started yet, or cut off) is asked again until it does: a broker whose data dir was
// wiped must never found a second cluster beside the one its peers still hold, so it waits
// for them rather than guess (the split brain a single unanswered probe caused). It returns
// false when a seed knows a cluster (the broker then joins it) or when ctx ends.
func bootstraps(ctx context.Context, self endpoint.NodeAddr, seeds []endpoint.NodeAddr, dial func(endpoint.NodeAddr) brokerop.Service, probe time.Duration, log *slog.Logger) bool {
	var others []endpoint.NodeAddr
	smallest := true
	for _, s := range seeds {
		if s.ID == self.ID {
			continue
		}
		others = append(others, s)
		if strings.Compare(s.ID.String(), self.ID.String()) < 0 {
			smallest = false
		}
	}
	if len(others) == 0 {
		return true
	}
	if !smallest || !slices.ContainsFunc(seeds, func(a endpoint.NodeAddr) bool { return a.ID == self.ID }) {
		return false
	}
	if probe <= 0 {
		probe = 2 * time.Second
	}
	answered := map[key.PublicKey]bool{}
	for {
		for _, s := range others {
			if answered[s.ID] {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, probe)
			r, err := dial(s).ClusterBrokers(pctx, &brokerop.ClusterBrokersReq{Local: true})
			cancel()
			switch {
			case err == nil && r.ClusterID != "":
				log.Info("a seed knows a cluster: joining it", "seed", s.ID.String(), "cluster_id", r.ClusterID)
				return false
			case err == nil:
				answered[s.ID] = true
			default:
				log.Info("waiting for every seed to answer before founding a new cluster", "seed", s.ID.String(), "err", err)
			}
		}
		if len(answered) == len(others) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(probe):
		}
	}
}

// importLegacy brings the state a broker kept before the metadata quorum (its topic
// registry, committed group offsets and producer-id counter) into the quorum it just
// bootstrapped, so that nothing it stored is purged or reused.
func importLegacy(ctx context.Context, fsys wal.FS, dir string, rep *QuorumReplica, me Member, log *slog.Logger) error {
	self := me.NodeID
	st, err := (&broker.FileRegistry{FS: fsys, Path: filepath.Join(dir, "topics.registry")}).Load()
	if err != nil {
		return fmt.Errorf("controller: import the topic registry: %w", err)
	}
	var pidEnd int64
	if pidEnd, err = broker.ProducerIDsEnd(fsys, dir); err != nil {
		return fmt.Errorf("controller: import the producer-id counter: %w", err)
	}
	var offsets []group.Record
	if names, _ := fsys.ReadDir(dir); slices.Contains(names, "groups") {
		gs, recs, err := group.OpenStore(filepath.Join(dir, "groups"), group.StoreOptions{FS: fsys, Logger: log})
		if err != nil {
			return fmt.Errorf("controller: import committed offsets: %w", err)
		}
		_ = gs.Close()
		offsets = recs
	}
	if (st == nil || len(st.Topics) == 0) && pidEnd == 0 && len(offsets) == 0 {
		return nil
	}
	if err := waitLeader(ctx, rep); err != nil {
		return err
	}
	if st != nil && st.ClusterID != "" {
		if _, err := rep.Do(ctx, InitCluster{ClusterID: st.ClusterID}); err != nil {
			return err
		}
	}
	if _, err := rep.Do(ctx, RegisterBroker{Member: me}); err != nil { // the owner of the imported partitions
		return err
	}
	if st != nil && len(st.Topics) > 0 {
		var ts []Topic
		for _, t := range st.Topics {
			owners := make([]key.PublicKey, t.Partitions)
			for i := range owners {
				owners[i] = self
			}
			ts = append(ts, Topic{Name: t.Name, ID: t.ID, Partitions: t.Partitions, Configs: t.Configs, Owners: owners})
		}
		res, err := rep.Do(ctx, CreateTopics{Topics: ts})
		if err := firstCode("import topics", res, err); err != nil {
			return err
		}
	}
	for _, cmd := range commandsOf(offsets) {
		if _, err := rep.Do(ctx, cmd); err != nil {
			return fmt.Errorf("controller: import committed offsets: %w", err)
		}
	}
	for next := int64(0); next < pidEnd; {
		n := min(pidEnd-next, metadata.MaxProducerIDBlock)
		res, err := rep.Do(ctx, AllocateProducerIDs{Count: n})
		if err != nil {
			return fmt.Errorf("controller: import the producer-id counter: %w", err)
		}
		first, _ := res.(int64)
		next = first + n
	}
	log.Info("imported the broker's state from before the metadata quorum", "topics", len(st.Topics), "offsets", len(offsets), "producer_ids_below", pidEnd)
	return nil
}

func waitLeader(ctx context.Context, rep *QuorumReplica) error {
	for {
		if l, ok := rep.Leader(); ok && l == rep.RaftID() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
