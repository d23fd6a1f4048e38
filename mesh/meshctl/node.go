package meshctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Defaults (the binaries let RAFKA_MESH_ID, RAFKA_GOSSIP_INTERVAL_MS and RAFKA_STALENESS_MS
// override them; see cmd/internal/cli).
const (
	DefaultMeshID    = "meshkafka"
	DefaultInterval  = 2 * time.Second
	DefaultStaleness = 30 * time.Second
	// DefaultMaxNodes bounds the directory: a digest is at most MaxDigestSize bytes, so the
	// directory holds at most about 1 MiB of digests.
	DefaultMaxNodes = 2048
)

// Config configures a Node. Zero fields take the defaults named.
type Config struct {
	Role   Role   // required
	MeshID string // "": DefaultMeshID
	// Interval between digests. Zero: DefaultInterval.
	Interval time.Duration
	// Staleness after which a silent node expires. Zero: DefaultStaleness.
	Staleness time.Duration
	// Bootstrap peers of the control topic (may be empty: wait to be
	// joined). Their addresses are added to the endpoint's address book.
	Bootstrap []endpoint.NodeAddr
	// Addrs returns the direct addresses to announce. nil: the endpoint's.
	Addrs func() []netip.AddrPort
	// Load returns the load to announce (partitions, bytes). nil: zeros.
	Load func() (partitions, bytes uint64)
	// OnChange is called on the node's goroutine for every directory
	// change, in order. It must not block for long. The addresses of every
	// node heard from are added to the endpoint's address book before.
	OnChange func(Change)
	// Believe decides whose digests are heard at all (issue #17 item 4: the control topic is
	// open to anyone, so a digest is believed only from a member): a digest it refuses is
	// dropped before it reaches the directory, the address book or OnChange. It is called on
	// the node's goroutine and must not block. nil: every digest (a development mesh).
	Believe func(Digest) bool
	// MaxNodes bounds the directory (memory under a flood of fresh keys): a digest from a
	// node not in it is dropped while it holds MaxNodes entries. Zero: DefaultMaxNodes.
	MaxNodes int
	// Clock drives publication, expiry and freshness. nil: the wall clock.
	Clock clock.Clock
	// Logger receives diagnostics. nil: discard.
	Logger *slog.Logger
}

// Node is a member of a mesh's control topic: it publishes its digest every
// interval and keeps the Directory of the others. One goroutine owns the
// directory; Close stops it.
type Node struct {
	cfg   Config
	ep    *endpoint.Endpoint
	sk    key.SecretKey
	topic *gossip.Topic

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	dir     *Directory // guarded by mu
	lastSeq uint64     // run goroutine only

	believed, notBelieved, dirFull, malformed atomic.Uint64
}

// Stats counts what a Node did with the digests it heard (operators watch NotBelieved and
// DirectoryFull grow under a flood of phantom nodes; nothing else changes).
type Stats struct {
	Believed      uint64 // digests taken into the directory
	NotBelieved   uint64 // digests dropped because Config.Believe refused their node
	DirectoryFull uint64 // digests of new nodes dropped while the directory held MaxNodes
	Malformed     uint64 // frames on the control topic that are not a valid signed digest
}

// Stats returns the digest counters so far.
func (n *Node) Stats() Stats {
	return Stats{Believed: n.believed.Load(), NotBelieved: n.notBelieved.Load(),
		DirectoryFull: n.dirFull.Load(), Malformed: n.malformed.Load()}
}

// Join subscribes to the control topic of cfg.MeshID on g (a gossip node
// attached to ep) and starts publishing. Close the Node before g.
func Join(ctx context.Context, ep *endpoint.Endpoint, g *gossip.Gossip, cfg Config) (*Node, error) {
	if cfg.Role != RoleBroker && cfg.Role != RoleGateway {
		return nil, errors.New("meshctl: Config.Role must be RoleBroker or RoleGateway")
	}
	if cfg.MeshID == "" {
		cfg.MeshID = DefaultMeshID
	}
	if len(cfg.MeshID) > MaxMeshID {
		return nil, fmt.Errorf("meshctl: mesh id longer than %d bytes", MaxMeshID)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Staleness <= 0 {
		cfg.Staleness = DefaultStaleness
	}
	if cfg.MaxNodes <= 0 {
		cfg.MaxNodes = DefaultMaxNodes
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Addrs == nil {
		cfg.Addrs = func() []netip.AddrPort { return ep.Addr().Direct }
	}
	var boot []key.PublicKey
	for _, b := range cfg.Bootstrap {
		if b.ID == ep.NodeID() {
			continue
		}
		ep.AddNodeAddr(b)
		boot = append(boot, b.ID)
	}
	t, err := g.Subscribe(ctx, TopicFor(cfg.MeshID), boot)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	n := &Node{cfg: cfg, ep: ep, sk: ep.SecretKey(), topic: t, cancel: cancel, done: make(chan struct{}),
		dir: NewDirectory(cfg.MeshID, cfg.Staleness)}
	go n.run(rctx)
	return n, nil
}

// Directory returns the fresh entries with the given role (0: all) as of
// now, sorted by node id. Our own node is not listed.
func (n *Node) Directory(role Role) []Entry {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dir.List(n.cfg.Clock.Now(), role)
}

// JoinPeers asks more peers to let us into the topic.
func (n *Node) JoinPeers(ctx context.Context, peers ...endpoint.NodeAddr) error {
	ids := make([]key.PublicKey, 0, len(peers))
	for _, p := range peers {
		n.ep.AddNodeAddr(p)
		ids = append(ids, p.ID)
	}
	return n.topic.JoinPeers(ctx, ids...)
}

// Close stops publishing and leaves the topic. It may be called more than
// once.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		n.cancel()
		<-n.done
		err = n.topic.Close()
	})
	return err
}

func (n *Node) run(ctx context.Context) {
	defer close(n.done)
	pub := n.cfg.Clock.NewTicker(n.cfg.Interval)
	defer pub.Stop()
	exp := n.cfg.Clock.NewTicker(min(n.cfg.Interval, n.cfg.Staleness/4))
	defer exp.Stop()
	n.publish(ctx)
	events := n.topic.Events()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pub.C():
			n.publish(ctx)
		case <-exp.C():
			n.mu.Lock()
			changes := n.dir.Expire(n.cfg.Clock.Now())
			n.mu.Unlock()
			for _, c := range changes {
				n.report(c)
			}
		case ev, ok := <-events:
			if !ok {
				return // the gossip node closed
			}
			switch ev.Kind {
			case gossip.Joined, gossip.NeighborUp:
				n.publish(ctx)
			case gossip.Received:
				n.receive(ev.Content)
			}
		}
	}
}

func (n *Node) publish(ctx context.Context) {
	now := n.cfg.Clock.Now()
	seq := uint64(max(now.UnixMicro(), 0))
	if seq <= n.lastSeq {
		seq = n.lastSeq + 1
	}
	n.lastSeq = seq
	addrs := n.cfg.Addrs()
	if len(addrs) > MaxAddrs {
		addrs = addrs[:MaxAddrs]
	}
	d := Digest{Node: n.ep.NodeID(), Role: n.cfg.Role, MeshID: n.cfg.MeshID, Seq: seq,
		TimeMs: uint64(max(now.UnixMilli(), 0)), Addrs: addrs}
	if n.cfg.Load != nil {
		d.Partitions, d.Bytes = n.cfg.Load()
	}
	b, err := Encode(d, n.sk)
	if err != nil {
		n.cfg.Logger.Warn("meshctl: encode digest", "err", err)
		return
	}
	if err := n.topic.Broadcast(ctx, b); err != nil && ctx.Err() == nil {
		n.cfg.Logger.Debug("meshctl: broadcast", "err", err)
	}
}

func (n *Node) receive(b []byte) {
	d, err := Decode(b)
	if err != nil {
		n.malformed.Add(1)
		n.cfg.Logger.Debug("meshctl: dropping digest", "err", err)
		return
	}
	if d.Node == n.ep.NodeID() {
		return
	}
	if n.cfg.Believe != nil && !n.cfg.Believe(d) {
		n.notBelieved.Add(1)
		n.cfg.Logger.Debug("meshctl: digest from a node that is not believed", "node", d.Node.ShortString(), "role", d.Role.String())
		return
	}
	now := n.cfg.Clock.Now()
	n.mu.Lock()
	if _, known := n.dir.nodes[d.Node]; !known && n.dir.Len() >= n.cfg.MaxNodes {
		if ch := n.dir.Expire(now); len(ch) > 0 {
			n.mu.Unlock()
			for _, c := range ch {
				n.report(c)
			}
			n.mu.Lock()
		}
		if n.dir.Len() >= n.cfg.MaxNodes {
			n.mu.Unlock()
			n.dirFull.Add(1)
			n.cfg.Logger.Debug("meshctl: directory full, digest of a new node dropped", "node", d.Node.ShortString())
			return
		}
	}
	c, ok := n.dir.Observe(now, d)
	n.mu.Unlock()
	n.believed.Add(1)
	if len(d.Addrs) > 0 {
		n.ep.AddNodeAddr(endpoint.NodeAddr{ID: d.Node, Direct: d.Addrs})
	}
	if ok {
		n.report(c)
	}
}

func (n *Node) report(c Change) {
	n.cfg.Logger.Debug("meshctl: directory change", "kind", c.Kind.String(), "role", c.Digest.Role.String(), "node", c.Digest.Node.ShortString(), "addrs", c.Digest.Addrs)
	if n.cfg.OnChange != nil {
		n.cfg.OnChange(c)
	}
}
