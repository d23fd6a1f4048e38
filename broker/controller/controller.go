package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/broker/quorum"
	"github.com/meshkafka/meshkafka/broker/share/coord"
	"github.com/meshkafka/meshkafka/broker/txn"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Config configures a Controller.
type Config struct {
	Replica  Replica        // this broker's quorum member (required)
	Broker   *broker.Broker // the local broker, opened with Registry (required)
	Registry *Registry      // the broker's registry (NewRegistry over Replica; required)
	// Self is this broker's NodeId and the addresses it registers for others to dial.
	Self endpoint.NodeAddr
	Rack string
	// Kafka is the host:port of this broker's own Kafka listener, registered for Metadata
	// answers to point clients at it (the direct data path); "" when it has none.
	Kafka string
	// Dial returns the kafkaop caller of another broker (a brokermesh.Caller over the mesh).
	Dial func(endpoint.NodeAddr) brokerop.Service
	// Seeds are the brokers asked to join the quorum (-quorum-seeds); their NodeIds are
	// admitted without an operator's allow. This broker may be among them.
	Seeds []endpoint.NodeAddr
	// JoinEvery is how often a broker that is not registered asks to join; 0 → 1 s.
	JoinEvery time.Duration
	// AddPeer, if set, tells the raft transport a member's address: the leader's when a join
	// is answered, and every registered broker's whenever the state changes (a learner that
	// caught up from a snapshot has applied no membership entry naming its peers).
	AddPeer func(raftID uint64, addr endpoint.NodeAddr)
	// LeaderWait bounds how long an op waits for a leader to be known before it fails with a
	// retriable error; 0 → 3 s.
	LeaderWait time.Duration
	// Poll is how often leadership and the members' activity are looked at (and a leader
	// waited for); 0 → 50 ms.
	Poll time.Duration
	// LiveWindow: a broker the leader heard from (raft RecentActive) within this long is live,
	// i.e. may be given new partitions; 0 → 3 s. (RecentActive alone drops to false for every
	// follower at each of raft's quorum checks.)
	LiveWindow time.Duration
	// Groups configures the group coordinator the leader runs.
	Groups group.MachineConfig
	// Security serves the SCRAM credential ops on this broker (nil: not served).
	Security brokerop.SecurityService
	// DefaultReplicationFactor is the replication factor of topics created with -1 and of
	// auto-created ones (Kafka's default.replication.factor; cmd/broker
	// -default-replication-factor); 0 → 3 when at least three brokers are live, else the
	// live broker count.
	DefaultReplicationFactor int
	// ClusterSecurity serves ACLs, SCRAM credentials and client quotas from the metadata
	// quorum (security.go) instead of Security and the broker's quota file.
	ClusterSecurity bool
	// ProducerIDBlock is how many producer ids the leader takes from the quorum at once;
	// 0 → 1000.
	ProducerIDBlock int64
	// Partitions is the partition raft engine of this broker (package broker/replica): the
	// controller carries out the replica moves of the partitions it leads with it (moves.go).
	// nil: none here (moves of partitions led here do not progress).
	Partitions PartitionEngine
	// MoveEvery is how often replica moves are looked at besides every applied change;
	// 0 → 4 × Poll.
	MoveEvery time.Duration
	// TxnCheckInterval is how often the leader's transaction coordinator retries unfinished
	// completions and aborts timed-out transactions (txn.CoordinatorConfig.CheckInterval;
	// 0 → 1 s, negative: never, tests drive it).
	TxnCheckInterval time.Duration
	Clock            clock.Clock  // nil → the wall clock
	Logger           *slog.Logger // nil → discard
}

// ErrNoController is wrapped by the error of an op that found no quorum leader within
// Config.LeaderWait (the gateway answers it with a retriable Kafka error).
var ErrNoController = errors.New("controller: no metadata quorum leader")

// Controller serves the cluster-wide ops of one broker on the metadata quorum (see the
// package doc). New starts its goroutines; Close stops them.
type Controller struct {
	cfg Config
	r   Replica
	b   *broker.Broker
	reg *Registry
	log *slog.Logger
	clk clock.Clock

	adminMu sync.Mutex // serialises topic changes (and the broker syncs around them) on the leader

	mu      sync.Mutex
	callers map[key.PublicKey]callerAt      // guarded by mu: other brokers' callers, by NodeId
	coord   leaderBound[*group.Coordinator] // guarded by mu: the group coordinator, while leader
	leading bool                            // guarded by mu: the watcher saw this node lead
	pidNext int64                           // guarded by mu: next producer id of the current block
	pidEnd  int64                           // guarded by mu: end of the current block (exclusive)
	active  map[uint64]time.Time            // guarded by mu: when the leader last saw each member active

	pendingRF map[string]int // guarded by mu: replication factors of the CreateTopics being applied (placeTopic reads them)

	reportMu   sync.Mutex                         // guards reports
	reports    map[TopicPartition]partitionReport // leader reports not sent yet, by partition
	reportKick chan struct{}                      // a report was queued (capacity 1)
	moveKick   chan struct{}                      // replica moves to look at (capacity 1; moves.go)

	syncMu  sync.Mutex                      // serialises broker syncs
	peerMu  sync.Mutex                      // guards peers
	peers   map[uint64]endpoint.NodeAddr    // addresses given to AddPeer
	pidMu   sync.Mutex                      // serialises producer-id allocation
	coordMu sync.Mutex                      // serialises starting and stopping the group coordinator
	txnMu   sync.Mutex                      // serialises starting and stopping the transaction coordinator
	txnCo   leaderBound[*txn.Coordinator]   // guarded by mu: the transaction coordinator, while leader (txn.go)
	shareMu sync.Mutex                      // serialises starting and stopping the share coordinator
	shareCo leaderBound[*coord.Coordinator] // guarded by mu: the share coordinator, while leader (sharestate.go)
	secOnce sync.Once                       // makes sec
	sec     *clusterSecurity                // the security ops on the quorum (security.go)

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	quit      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type callerAt struct {
	addr endpoint.NodeAddr
	svc  brokerop.Service
}

// New starts a controller: a goroutine applies topic changes to the local broker, and one
// watches leadership (starting the group coordinator and registering this broker while it
// leads).
func New(cfg Config) (*Controller, error) {
	switch {
	case cfg.Replica == nil:
		return nil, errors.New("controller: Config.Replica is required")
	case cfg.Broker == nil:
		return nil, errors.New("controller: Config.Broker is required")
	case cfg.Registry == nil:
		return nil, errors.New("controller: Config.Registry is required")
	case cfg.Self.ID.IsZero():
		return nil, errors.New("controller: Config.Self is required")
	case cfg.Dial == nil:
		return nil, errors.New("controller: Config.Dial is required")
	}
	if cfg.LeaderWait <= 0 {
		cfg.LeaderWait = 3 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 50 * time.Millisecond
	}
	if cfg.LiveWindow <= 0 {
		cfg.LiveWindow = 3 * time.Second
	}
	if cfg.JoinEvery <= 0 {
		cfg.JoinEvery = time.Second
	}
	if cfg.MoveEvery <= 0 {
		cfg.MoveEvery = 4 * cfg.Poll
	}
	if cfg.ProducerIDBlock <= 0 {
		cfg.ProducerIDBlock = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Controller{cfg: cfg, r: cfg.Replica, b: cfg.Broker, reg: cfg.Registry, log: cfg.Logger.With("component", "controller"),
		clk: clock.Or(cfg.Clock), callers: map[key.PublicKey]callerAt{}, quit: make(chan struct{}), reportKick: make(chan struct{}, 1),
		moveKick: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.reg.setPlacer(c.placeTopic)
	c.wireTxn()
	c.b.SetShareReader(shareReader{c}) // share groups read every partition at its leader (shareread.go)
	c.b.SetShareCoordinator(nil)       // the quorum's, while this broker leads (sharestate.go)
	c.b.OnPartitionState(c.partitionState)
	c.syncBroker()
	c.wg.Go(c.syncLoop)
	c.wg.Go(c.watchLoop)
	c.wg.Go(c.reportLoop)
	c.wg.Go(c.moveLoop)
	return c, nil
}

// Close stops the goroutines and the group coordinator. Idempotent.
func (c *Controller) Close() error {
	c.closeOnce.Do(func() {
		close(c.quit)
		c.cancel()
		c.wg.Wait()
		c.stopCoordinator()
		c.stopTxnCoordinator()
		c.stopShareCoordinator()
	})
	return nil
}

// Service is what this broker serves on its kafkaop ALPN: its own data ops and the
// controller's cluster-wide ops.
func (c *Controller) Service() brokerop.Service {
	return brokerop.Parts{Data: brokermesh.StoreSpans{DataService: c.b}, Admin: c, Groups: c, Producers: c, Security: c.securityService(), Quorum: c, Share: c}
}

// Trusts reports whether id may call this broker's kafkaop service: a fellow broker (a seed,
// an allowed NodeId that may be about to join, a registered broker) or a node the metadata
// gives the gateway or admin role.
func (c *Controller) Trusts(id key.PublicKey) bool {
	if c.isSeed(id) || c.r.Allowed(id) || c.HasRole(id, metadata.RoleGateway|metadata.RoleAdmin) {
		return true
	}
	for _, m := range c.r.Brokers() {
		if m.NodeID == id {
			return true
		}
	}
	return false
}

// admitted reports whether id may join the quorum: a seed or allowed by an operator.
func (c *Controller) admitted(id key.PublicKey) bool {
	return c.isSeed(id) || c.r.Allowed(id)
}

func (c *Controller) isSeed(id key.PublicKey) bool {
	return slices.ContainsFunc(c.cfg.Seeds, func(a endpoint.NodeAddr) bool { return a.ID == id })
}

// --- applying the state to the local broker ---

func (c *Controller) syncLoop() {
	for {
		select {
		case <-c.quit:
			return
		case <-c.r.Changed():
			c.syncBroker()
		}
	}
}

// syncBroker makes the local broker's topics those of the applied state, and tells the raft
// transport the registered brokers' addresses.
func (c *Controller) syncBroker() {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.cfg.AddPeer != nil {
		for _, m := range c.r.Brokers() {
			if m.RaftID != c.r.RaftID() {
				c.addPeerOnce(m.RaftID, m.Addr)
			}
		}
	}
	// The state is read under the broker's admin lock: on the leader, an admin op holds it
	// from before its change is applied here until the broker made the change, so a state
	// read before the apply would undo it (SyncTopicsFrom).
	err := c.b.SyncTopicsFrom(func() []broker.TopicRecord {
		recs := records(c.r.Topics())
		c.reg.synced(recs)
		return recs
	})
	if err != nil && !errors.Is(err, broker.ErrClosed) {
		c.log.Error("applying the metadata state to the broker", "err", err)
	}
	c.kickMoves()
}

// --- leadership ---

func (c *Controller) isLeader() bool {
	id, ok := c.r.Leader()
	return ok && id == c.r.RaftID()
}

func (c *Controller) watchLoop() {
	t := c.clk.NewTicker(c.cfg.Poll)
	defer t.Stop()
	var lastJoin time.Time
	for {
		if !c.isLeader() && c.clk.Now().Sub(lastJoin) >= c.cfg.JoinEvery && !c.registered() && !c.r.Status().Removed {
			lastJoin = c.clk.Now()
			c.askToJoin()
		}
		lead := c.isLeader()
		if lead {
			c.sampleActive()
		}
		c.mu.Lock()
		was := c.leading
		c.leading = lead
		running := c.coord.co != nil
		c.mu.Unlock()
		switch {
		case lead && !was:
			c.log.Info("this broker is the controller (metadata quorum leader)")
			c.mu.Lock()
			c.active = nil // what an earlier term saw says nothing now
			c.mu.Unlock()
			c.becameLeader()
		case !lead && was:
			c.log.Info("this broker is no longer the controller")
			c.stopCoordinator()
			c.stopTxnCoordinator()
			c.stopShareCoordinator()
		case !lead && running:
			// Started by an op in a leadership this watcher did not see (or after
			// becameLeader gave up): stale now.
			c.stopCoordinator()
		case lead && running && c.liveCoordinator() == nil:
			c.startCoordinator() // its offset log failed or its leadership ended: rebuild
		}
		switch {
		case !lead && c.liveTxn() == nil:
			c.stopTxnCoordinator() // a stale one (leadership ended, journal failed)
		case lead && was && c.liveTxn() == nil:
			// Not started yet, or its journal failed or its leadership ended: (re)start it,
			// so that in-flight transactions are recovered without waiting for a client.
			c.startTxnCoordinator()
		}
		switch {
		case !lead && c.liveShare() == nil:
			c.stopShareCoordinator() // a stale one (leadership ended, journal failed)
		case lead && was && c.liveShare() == nil:
			c.startShareCoordinator()
		}
		select {
		case <-c.quit:
			return
		case <-t.C():
		}
	}
}

// becameLeader makes sure the cluster has an id and this broker is registered, and starts
// the group coordinator from the committed offsets.
func (c *Controller) becameLeader() {
	ctx, cancel := c.opContext()
	defer cancel()
	if err := c.r.ReadBarrier(ctx); err != nil {
		c.log.Warn("leader read barrier", "err", err)
		c.setLeading(false) // try again on the next tick
		return
	}
	if err := c.ready(ctx); err != nil {
		c.log.Warn("init cluster and register this broker", "err", err)
	}
	c.mu.Lock()
	c.pidNext, c.pidEnd = 0, 0 // a new leader takes a fresh block
	c.mu.Unlock()
	c.startCoordinator()
}

func (c *Controller) setLeading(v bool) {
	c.mu.Lock()
	c.leading = v
	c.mu.Unlock()
}

// registerSelf registers this broker (its raft id, NodeId and addresses) if the state does
// not have it so.
func (c *Controller) registerSelf(ctx context.Context) error {
	self := c.self()
	for _, m := range c.r.Brokers() {
		if m.sameRegistration(self) {
			return nil
		}
	}
	_, err := c.r.Do(ctx, RegisterBroker{Member: self})
	return err
}

// addPeerOnce tells the transport a member's address unless it was told that one already.
func (c *Controller) addPeerOnce(id uint64, a endpoint.NodeAddr) {
	c.peerMu.Lock()
	defer c.peerMu.Unlock()
	if sameAddr(c.peers[id], a) {
		return
	}
	if c.peers == nil {
		c.peers = map[uint64]endpoint.NodeAddr{}
	}
	c.peers[id] = a
	c.cfg.AddPeer(id, a)
}

// registered reports whether the applied state has this broker as it is (raft id, NodeId,
// addresses, rack).
func (c *Controller) registered() bool {
	self := c.self()
	for _, m := range c.r.Brokers() {
		if m.sameRegistration(self) {
			return true
		}
	}
	return false
}

// self is this broker's registration.
func (c *Controller) self() Member {
	return Member{RaftID: c.r.RaftID(), NodeID: c.cfg.Self.ID, Addr: c.cfg.Self, Rack: c.cfg.Rack, Kafka: c.cfg.Kafka}
}

// askToJoin asks the leader (if this node knows it as a registered broker) or else every
// seed but itself to add this broker to the quorum and register it.
func (c *Controller) askToJoin() {
	req := &brokerop.QuorumJoinReq{RaftID: c.r.RaftID(), MeshID: c.cfg.Self.ID.String(), RelayURL: c.cfg.Self.RelayURL, Rack: c.cfg.Rack, Kafka: c.cfg.Kafka}
	for _, d := range c.cfg.Self.Direct {
		req.Direct = append(req.Direct, d.String())
	}
	var targets []Member
	if l, ok := c.r.Leader(); ok {
		for _, m := range c.r.Brokers() {
			if m.RaftID == l {
				targets = append(targets, m)
			}
		}
	}
	if len(targets) == 0 {
		for _, s := range c.cfg.Seeds {
			if s.ID != c.cfg.Self.ID {
				targets = append(targets, Member{NodeID: s.ID, Addr: s})
			}
		}
	}
	for _, m := range targets {
		// Learn the members' raft ids and addresses first, so that this broker answers the
		// leader's first raft messages rather than the ones after its join is answered. (It
		// is promoted only once it holds the configuration that added it, which names
		// every member's address: broker/quorum's promotion rule.)
		ctx, cancel := context.WithTimeout(c.ctx, 10*c.cfg.JoinEvery)
		if cb, err := c.callerOf(m).ClusterBrokers(ctx, &brokerop.ClusterBrokersReq{}); err == nil && c.cfg.AddPeer != nil {
			for _, b := range cb.Brokers {
				if a, ok := brokerAddr(b.MeshID, b.RelayURL, b.Direct); ok && b.RaftID != 0 && b.RaftID != c.r.RaftID() {
					c.addPeerOnce(b.RaftID, a)
				}
			}
		}
		resp, err := c.callerOf(m).QuorumJoin(ctx, req)
		cancel()
		switch {
		case err != nil:
			c.log.Debug("join the quorum", "via", m.NodeID.String(), "err", err)
		case resp.ErrorCode != 0:
			c.log.Warn("the quorum refused this broker", "via", m.NodeID.String(), "code", resp.ErrorCode, "msg", resp.ErrorMessage)
		default:
			c.log.Info("asked to join the metadata quorum", "via", m.NodeID.String(), "leader", resp.Leader)
			if a, ok := brokerAddr(resp.Leader, resp.LeaderRelayURL, resp.LeaderDirect); ok && c.cfg.AddPeer != nil && resp.LeaderRaftID != 0 {
				c.addPeerOnce(resp.LeaderRaftID, a)
			}
			return
		}
	}
}

// brokerAddr parses a broker's address as the quorum ops carry it.
func brokerAddr(meshID, relay string, direct []string) (endpoint.NodeAddr, bool) {
	id, err := key.ParsePublicKey(meshID)
	if err != nil {
		return endpoint.NodeAddr{}, false
	}
	a := endpoint.NodeAddr{ID: id, RelayURL: relay}
	for _, d := range direct {
		if ap, err := netip.ParseAddrPort(d); err == nil {
			a.Direct = append(a.Direct, ap)
		}
	}
	return a, true
}

func sameAddr(a, b endpoint.NodeAddr) bool {
	return a.ID == b.ID && a.RelayURL == b.RelayURL && slices.Equal(a.Direct, b.Direct)
}

func (c *Controller) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, 10*time.Second)
}

// --- routing ---

// leaderOf waits (up to LeaderWait) until a leader is known; it returns whether that is this
// node, and otherwise the leader's caller; changed is closed when that leader is no longer
// this node's raft's leader (quorum.Node.LeaderWatch).
func (c *Controller) leaderOf(ctx context.Context) (self bool, svc brokerop.Service, changed <-chan struct{}, err error) {
	var t clock.Timer
	deadline := c.clk.Now().Add(c.cfg.LeaderWait)
	for {
		id, changed := c.r.LeaderWatch()
		if id != 0 {
			if id == c.r.RaftID() {
				return true, nil, changed, nil
			}
			for _, m := range c.r.Brokers() {
				if m.RaftID == id {
					return false, c.callerOf(m), changed, nil
				}
			}
		}
		if !c.clk.Now().Before(deadline) {
			return false, nil, nil, fmt.Errorf("%w within %v", ErrNoController, c.cfg.LeaderWait)
		}
		if t == nil {
			t = c.clk.NewTimer(c.cfg.Poll)
			defer t.Stop()
		} else {
			t.Reset(c.cfg.Poll)
		}
		select {
		case <-ctx.Done():
			return false, nil, nil, ctx.Err()
		case <-c.quit:
			return false, nil, nil, ErrNoController
		case <-changed: // a leader is known now (or another one): look again at once
		case <-t.C(): // a known leader not registered yet, or the deadline
		}
	}
}

func (c *Controller) callerOf(m Member) brokerop.Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ca, ok := c.callers[m.NodeID]; ok && sameAddr(ca.addr, m.Addr) {
		return ca.svc
	}
	svc := c.cfg.Dial(m.Addr)
	c.callers[m.NodeID] = callerAt{m.Addr, svc}
	return svc
}

// forwarded reports whether the op's caller is a fellow broker (a forwarded op: it is never
// forwarded again, so two brokers with different views of the leader cannot bounce it).
func (c *Controller) forwarded(ctx context.Context) bool {
	p := brokermesh.PeerOf(ctx)
	if p == "" {
		return false
	}
	id, err := key.ParsePublicKey(p)
	if err != nil {
		return false
	}
	if c.isSeed(id) {
		return true
	}
	for _, m := range c.r.Brokers() {
		if m.NodeID == id {
			return true
		}
	}
	return false
}

// maxRoutes bounds how often one op is routed again after the leadership moved under it.
const maxRoutes = 4

// route runs an op on the leader: here (local) if this node leads, else forwarded over the
// leader's caller (remote). A local op that finds leadership gone (ErrNotLeader, or
// quorum.ErrLeaderChanged: its proposal's outcome was left to another leader) is routed
// again. A forwarded op is abandoned the moment this node's raft sees the leader change (an
// election started, or another node leads): a leader that died never answers, and waiting
// for its connection to time out was most of a failover's time. It is then forwarded to the
// new leader. An op retried so may have taken effect on the old leader; that is what a Kafka
// client's own retry after NOT_CONTROLLER or a timeout meets too: the ops are idempotent
// (offset commits) or allocate afresh (producer ids) or answer as such a retry would
// (CreateTopics: TOPIC_ALREADY_EXISTS).
func route[Req, Resp any](c *Controller, ctx context.Context, req *Req,
	local func(context.Context, *Req) (*Resp, error),
	remote func(brokerop.Service, context.Context, *Req) (*Resp, error)) (*Resp, error) {
	for attempt := 1; ; attempt++ {
		self, svc, changed, err := c.leaderOf(ctx)
		if err != nil {
			return nil, err
		}
		if self {
			resp, err := local(ctx, req)
			if (errors.Is(err, ErrNotLeader) || errors.Is(err, quorum.ErrLeaderChanged)) && attempt < maxRoutes {
				continue
			}
			return resp, err
		}
		if c.forwarded(ctx) {
			return nil, fmt.Errorf("%w: a forwarded op reached a broker that is not the leader", ErrNoController)
		}
		resp, err := whileLeads(ctx, changed, func(ctx context.Context) (*Resp, error) { return remote(svc, ctx, req) })
		if err != nil && ctx.Err() == nil && closed(changed) && attempt < maxRoutes {
			c.log.Debug("the leader changed while an op was forwarded to it: forwarding it again", "err", err)
			continue
		}
		return resp, err
	}
}

// routeAfterBarrier is route with fn run on the leader after a ReadBarrier: on a state that
// holds every entry committed before the call.
func routeAfterBarrier[Req, Resp any](c *Controller, ctx context.Context, req *Req,
	fn func(context.Context, *Req) (*Resp, error),
	remote func(brokerop.Service, context.Context, *Req) (*Resp, error)) (*Resp, error) {
	return route(c, ctx, req, func(ctx context.Context, req *Req) (*Resp, error) {
		if err := c.r.ReadBarrier(ctx); err != nil {
			return nil, err
		}
		return fn(ctx, req)
	}, remote)
}

// whileLeads runs call with a context that is also cancelled when changed closes.
func whileLeads[Resp any](ctx context.Context, changed <-chan struct{}, call func(context.Context) (*Resp, error)) (*Resp, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-changed:
			cancel()
		case <-done:
		}
	})
	defer wg.Wait()
	defer close(done)
	return call(cctx)
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// --- placement (placement.go) ---

// sampleActive records which members the leader sees active now.
func (c *Controller) sampleActive() map[uint64]bool {
	st := c.r.Status()
	now := c.clk.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == nil {
		c.active = map[uint64]time.Time{}
	}
	for id, p := range st.Progress {
		if p.RecentActive {
			c.active[id] = now
		}
	}
	live := map[uint64]bool{c.r.RaftID(): true}
	for id, at := range c.active {
		if now.Sub(at) < c.cfg.LiveWindow {
			live[id] = true
		}
	}
	return live
}
