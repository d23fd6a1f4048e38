package gossip

import (
	"container/heap"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Config configures a Gossip node. Transport and Me are required; every
// other zero field takes the default named in its comment.
type Config struct {
	Transport Transport     // required
	Me        key.PublicKey // required: our node id
	// Addr returns our addresses for PeerData (called at start and by
	// UpdateAddr). nil: an empty AddrInfo.
	Addr func() proto.AddrInfo
	// Proto is the protocol configuration. Zero: proto.DefaultConfig().
	Proto proto.Config
	// EventBuffer is the capacity of each subscription's event channel.
	// Zero: 2048 (iroh-gossip 0.28's TOPIC_EVENTS_DEFAULT_CAP).
	EventBuffer int
	// SendQueue is how many frames may wait for one connection before the
	// peer counts as too slow and the connection is dropped. Zero: 1024.
	SendQueue int
	// DialTimeout bounds one dial. Zero: 10s.
	DialTimeout time.Duration
	// CloseGrace is how long a polite close waits for the peer's FIN, and
	// Close for connections to wind down. Zero: 1s.
	CloseGrace time.Duration
	// RejoinInterval: a topic that has had no neighbor for this long sends
	// Join to its bootstrap peers again (then again after each interval).
	// iroh-gossip leaves this to the application; HyParView alone cannot
	// bring back a node whose passive peers are all gone. Zero: 10s;
	// negative: never.
	RejoinInterval time.Duration
	// InLimits bound what peers may send us (limit.go). Zero: the defaults.
	InLimits InLimits
	// Seed seeds the protocol's randomness. Zero: a random seed.
	Seed uint64
	// Logger receives diagnostics. nil: discard.
	Logger *slog.Logger
	// Clock drives the protocol's timers and the rejoin check. nil: the
	// wall clock.
	Clock clock.Clock
}

// Errors.
var (
	ErrClosed   = errors.New("gossip: closed")
	ErrTooLarge = errors.New("gossip: message too large for one frame")
)

// Gossip is a gossip node: it joins topics, broadcasts and serves peers.
type Gossip struct {
	cfg    Config // defaults applied: Logger and Clock are set
	log    *slog.Logger
	clk    clock.Clock
	me     proto.Key
	ctx    context.Context
	cancel context.CancelFunc
	inbox  chan func()
	lim    *inLimiter // inbound budgets (limit.go)

	wg        sync.WaitGroup // every goroutine we start
	connWG    sync.WaitGroup // connection goroutines only
	closeOnce sync.Once
	done      chan struct{} // closed when the actor exits

	// Owned by the actor goroutine.
	state    *proto.State[proto.Key]
	peers    map[proto.Key]*peer
	topics   map[proto.TopicID]*topicSubs
	timers   timerHeap
	timerSeq uint64
	closing  bool
}

type peer struct {
	conns   []*pconn // established; conns[0] sends
	queue   [][]byte // frames waiting for a connection
	dialing bool
}

type topicSubs struct {
	subs      []*Topic
	joined    bool
	neighbors []key.PublicKey
	bootstrap []proto.Key // every peer a subscriber asked to join through
	alone     time.Time   // when the topic last had no neighbor
}

// New starts a gossip node. Close stops it.
func New(cfg Config) (*Gossip, error) {
	switch {
	case cfg.Transport == nil:
		return nil, errors.New("gossip: Config.Transport is required")
	case cfg.Me.IsZero():
		return nil, errors.New("gossip: Config.Me is required")
	}
	if cfg.Proto.MaxMessageSize == 0 {
		cfg.Proto = proto.DefaultConfig()
	}
	if cfg.Proto.MaxMessageSize < proto.MinMaxMessageSize {
		return nil, fmt.Errorf("gossip: MaxMessageSize %d below %d", cfg.Proto.MaxMessageSize, proto.MinMaxMessageSize)
	}
	if cfg.EventBuffer <= 1 {
		cfg.EventBuffer = 2048
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 1024
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.CloseGrace <= 0 {
		cfg.CloseGrace = time.Second
	}
	if cfg.RejoinInterval == 0 {
		cfg.RejoinInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Clock = clock.Or(cfg.Clock)
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	g := &Gossip{
		cfg:    cfg,
		log:    cfg.Logger,
		clk:    cfg.Clock,
		me:     proto.Key(cfg.Me.Bytes()),
		inbox:  make(chan func(), 1024),
		lim:    newInLimiter(cfg.InLimits, cfg.Clock),
		done:   make(chan struct{}),
		peers:  make(map[proto.Key]*peer),
		topics: make(map[proto.TopicID]*topicSubs),
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.state = proto.New(g.me, g.peerData(), cfg.Proto, rand.New(rand.NewPCG(seed, seed>>1|1)))
	g.wg.Add(1)
	go g.run()
	return g, nil
}

func (g *Gossip) peerData() proto.PeerData {
	var a proto.AddrInfo
	if g.cfg.Addr != nil {
		a = g.cfg.Addr()
	}
	return proto.EncodePeerData(a)
}

// NodeID returns our node id.
func (g *Gossip) NodeID() key.PublicKey { return g.cfg.Me }

// MaxContentSize is the largest broadcast payload that fits one frame.
func (g *Gossip) MaxContentSize() int {
	// body = 32 topic + 2 tags + 32 id + varint(len) + len + 1 scope + 1
	// round (rounds stay below 128 hops), at most MaxMessageSize-1 bytes.
	n := g.cfg.Proto.MaxMessageSize - 1 - 68
	for n > 0 && n+68+varintLen(n) > g.cfg.Proto.MaxMessageSize-1 {
		n--
	}
	return n
}

func varintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// post runs f on the actor. It fails once the node is closed.
func (g *Gossip) post(ctx context.Context, f func()) error {
	select {
	case g.inbox <- f:
		return nil
	case <-g.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *Gossip) run() {
	defer g.wg.Done()
	defer close(g.done)
	t := g.clk.NewTimer(time.Hour)
	defer t.Stop()
	var rejoin <-chan time.Time
	if g.cfg.RejoinInterval > 0 {
		tick := g.clk.NewTicker(g.cfg.RejoinInterval / 2)
		defer tick.Stop()
		rejoin = tick.C()
	}
	var armed time.Time
	for {
		var tc <-chan time.Time
		if len(g.timers) > 0 {
			if next := g.timers[0].at; !next.Equal(armed) {
				t.Reset(clock.Until(g.clk, next))
				armed = next
			}
			tc = t.C()
		}
		select {
		case f := <-g.inbox:
			f()
		case <-tc:
			armed = time.Time{}
			now := g.clk.Now()
			for len(g.timers) > 0 && !g.timers[0].at.After(now) {
				e := heap.Pop(&g.timers).(timerEntry)
				g.handle(proto.TimerExpired[proto.Key]{Timer: e.t})
			}
		case now := <-rejoin:
			g.rejoinLonely(now)
		case <-g.ctx.Done():
			for _, p := range g.peers {
				for _, pc := range p.conns {
					_ = pc.c.Close(0, "gossip closed")
				}
			}
			return
		}
	}
}

// rejoinLonely sends Join again for topics that have had no neighbor for
// RejoinInterval. Actor only.
func (g *Gossip) rejoinLonely(now time.Time) {
	for id, ts := range g.topics {
		if len(ts.neighbors) > 0 || len(ts.bootstrap) == 0 || now.Sub(ts.alone) < g.cfg.RejoinInterval {
			continue
		}
		ts.alone = now
		g.handle(proto.JoinTopic[proto.Key]{Topic: id, Peers: slices.Clone(ts.bootstrap)})
	}
}

// handle feeds the core and carries out its outputs. Actor only.
func (g *Gossip) handle(in proto.Input[proto.Key]) {
	now := g.clk.Now()
	outs := slices.Clone(g.state.Handle(now, in))
	for _, o := range outs {
		switch o := o.(type) {
		case proto.SendMessage[proto.Key]:
			g.send(o.To, o.Topic, o.Msg)
		case proto.EmitEvent[proto.Key]:
			g.emit(o.Topic, o.Event)
		case proto.ScheduleTimer[proto.Key]:
			g.timerSeq++
			heap.Push(&g.timers, timerEntry{at: now.Add(o.Delay), seq: g.timerSeq, t: o.Timer})
		case proto.DisconnectPeer[proto.Key]:
			g.disconnectPeer(o.Peer)
		case proto.LearnPeerData[proto.Key]:
			info, err := proto.DecodePeerData(o.Data)
			if err != nil {
				g.log.Debug("gossip: bad peer data", "peer", fmt.Sprintf("%x", o.Peer[:4]), "err", err)
				continue
			}
			if pk, err := key.PublicKeyFromBytes(o.Peer[:]); err == nil {
				g.cfg.Transport.AddPeerAddr(pk, info)
			}
		}
	}
}

func (g *Gossip) send(to proto.Key, topic proto.TopicID, m proto.Msg) {
	if to == g.me {
		return
	}
	frame, err := proto.AppendFrame(nil, topic, m, g.cfg.Proto.MaxMessageSize)
	if err != nil {
		g.log.Warn("gossip: not sending", "kind", m.Kind(), "peer", fmt.Sprintf("%x", to[:4]), "err", err)
		return
	}
	p := g.peers[to]
	if p == nil {
		p = &peer{}
		g.peers[to] = p
	}
	if len(p.conns) > 0 {
		pc := p.conns[0]
		select {
		case pc.sendq <- frame:
		default:
			g.log.Warn("gossip: send queue full, dropping the connection", "peer", fmt.Sprintf("%x", to[:4]))
			pc.abort("send queue full")
		}
		return
	}
	p.queue = append(p.queue, frame)
	if !p.dialing && !g.closing {
		p.dialing = true
		g.dial(to)
	}
}

func (g *Gossip) dial(to proto.Key) {
	pk, err := key.PublicKeyFromBytes(to[:])
	if err != nil {
		g.log.Debug("gossip: cannot dial", "peer", fmt.Sprintf("%x", to[:4]), "err", err)
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		ctx, cancel := context.WithTimeout(g.ctx, g.cfg.DialTimeout)
		c, err := g.cfg.Transport.Dial(ctx, pk)
		cancel()
		if err == nil && c.RemoteID() != pk {
			_ = c.Close(0, "wrong peer")
			err = fmt.Errorf("dialed %s, reached %s", pk.ShortString(), c.RemoteID().ShortString())
		}
		if perr := g.post(context.Background(), func() { g.dialed(to, c, err) }); perr != nil && err == nil {
			_ = c.Close(0, "gossip closed")
		}
	}()
}

func (g *Gossip) dialed(to proto.Key, c Conn, err error) {
	p := g.peers[to]
	if err != nil {
		g.log.Debug("gossip: dial failed", "peer", fmt.Sprintf("%x", to[:4]), "err", err)
		if p == nil {
			return
		}
		p.dialing = false
		p.queue = nil
		if len(p.conns) == 0 {
			delete(g.peers, to)
			g.handle(proto.PeerDisconnected[proto.Key]{Peer: to})
		}
		return
	}
	if p == nil {
		// DisconnectPeer came while we were dialing: nothing wants it now.
		_ = c.Close(0, "close from disconnect")
		return
	}
	p.dialing = false
	g.addConn(to, c, true)
}

// addConn adopts an established connection. Actor only.
func (g *Gossip) addConn(id proto.Key, c Conn, dialed bool) *pconn {
	if g.closing {
		_ = c.Close(0, "gossip closed")
		return nil
	}
	p := g.peers[id]
	if p == nil {
		p = &peer{}
		g.peers[id] = p
	}
	for _, pc := range p.conns {
		if pc.dialed == dialed {
			// 0.28 keeps one connection per direction and drops the rest.
			_ = c.Close(0, "duplicate connection")
			return nil
		}
	}
	pc := &pconn{g: g, id: id, c: c, dialed: dialed, sendq: make(chan []byte, g.cfg.SendQueue), stop: make(chan struct{}), done: make(chan struct{})}
	var first [][]byte
	if len(p.conns) == 0 {
		first, p.queue = p.queue, nil
	}
	p.conns = append(p.conns, pc)
	g.wg.Add(1)
	g.connWG.Add(1)
	go pc.run(first)
	return pc
}

// connEnded is called on the actor when a connection's goroutines are done.
func (g *Gossip) connEnded(pc *pconn, err error) {
	if err != nil {
		g.log.Debug("gossip: connection ended", "peer", fmt.Sprintf("%x", pc.id[:4]), "err", err)
	}
	p := g.peers[pc.id]
	if p == nil || !slices.Contains(p.conns, pc) {
		return // detached by DisconnectPeer: the core already let go
	}
	p.conns = slices.DeleteFunc(p.conns, func(x *pconn) bool { return x == pc })
	if len(p.conns) > 0 || p.dialing {
		return
	}
	if len(p.queue) == 0 {
		delete(g.peers, pc.id)
	}
	g.handle(proto.PeerDisconnected[proto.Key]{Peer: pc.id})
}

func (g *Gossip) disconnectPeer(id proto.Key) {
	p := g.peers[id]
	if p == nil {
		return
	}
	delete(g.peers, id)
	for _, pc := range p.conns {
		pc.finish()
	}
}

func (g *Gossip) emit(topic proto.TopicID, e proto.Event[proto.Key]) {
	ts := g.topics[topic]
	if ts == nil {
		return
	}
	pk, err := key.PublicKeyFromBytes(e.Peer[:])
	if err != nil {
		return
	}
	var ev Event
	switch e.Kind {
	case proto.NeighborUp:
		ts.neighbors = append(ts.neighbors, pk)
		if !ts.joined {
			ts.joined = true
			ev = Event{Kind: Joined, Peers: []key.PublicKey{pk}, Peer: pk}
		} else {
			ev = Event{Kind: NeighborUp, Peer: pk}
		}
	case proto.NeighborDown:
		ts.neighbors = slices.DeleteFunc(ts.neighbors, func(x key.PublicKey) bool { return x == pk })
		if len(ts.neighbors) == 0 {
			ts.alone = g.clk.Now()
		}
		ev = Event{Kind: NeighborDown, Peer: pk}
	case proto.Received:
		ev = Event{Kind: Received, Peer: pk, Content: e.Content, Neighbors: e.Scope.Neighbors, Round: uint16(e.Scope.Round)}
	}
	for _, s := range ts.subs {
		s.deliver(ev)
	}
}

// Neighbors returns the current neighbors of topic.
func (g *Gossip) Neighbors(ctx context.Context, topic proto.TopicID) ([]key.PublicKey, error) {
	res := make(chan []key.PublicKey, 1)
	if err := g.post(ctx, func() {
		var ns []key.PublicKey
		if ts := g.topics[topic]; ts != nil {
			ns = slices.Clone(ts.neighbors)
		}
		res <- ns
	}); err != nil {
		return nil, err
	}
	select {
	case ns := <-res:
		return ns, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-g.done:
		return nil, ErrClosed
	}
}

// UpdateAddr re-reads Config.Addr and announces the new PeerData in later
// Join and Neighbor messages.
func (g *Gossip) UpdateAddr(ctx context.Context) error {
	d := g.peerData()
	return g.post(ctx, func() { g.handle(proto.UpdatePeerData[proto.Key]{Data: d}) })
}

// HandleConn serves an accepted gossip connection (ALPN "/iroh-gossip/0").
// It returns when the connection is done or the node is closed.
func (g *Gossip) HandleConn(ctx context.Context, c Conn) error {
	id := proto.Key(c.RemoteID().Bytes())
	res := make(chan *pconn, 1)
	if err := g.post(ctx, func() { res <- g.addConn(id, c, false) }); err != nil {
		_ = c.Close(0, "gossip closed")
		return err
	}
	var pc *pconn
	select {
	case pc = <-res:
	case <-g.done:
		_ = c.Close(0, "gossip closed")
		return ErrClosed
	}
	if pc == nil {
		return nil
	}
	select {
	case <-pc.done:
	case <-g.done:
	}
	return nil
}

// Close leaves every topic (sending Disconnect to each neighbor), closes
// every connection politely and stops all goroutines. It is safe to call
// more than once.
func (g *Gossip) Close() error {
	g.closeOnce.Do(func() {
		quitDone := make(chan struct{})
		if g.post(context.Background(), func() {
			defer close(quitDone)
			g.closing = true
			for id, ts := range g.topics {
				for _, s := range ts.subs {
					s.closeEvents()
				}
				delete(g.topics, id)
				g.handle(proto.QuitTopic[proto.Key]{Topic: id})
			}
			for id, p := range g.peers {
				delete(g.peers, id)
				for _, pc := range p.conns {
					pc.finish()
				}
			}
		}) == nil {
			<-quitDone
		}
		waited := make(chan struct{})
		go func() { g.connWG.Wait(); close(waited) }()
		grace := g.clk.NewTimer(2 * g.cfg.CloseGrace)
		select {
		case <-waited:
		case <-grace.C():
		}
		grace.Stop()
		g.cancel()
		g.wg.Wait()
	})
	return nil
}

// ---- timers ----

type timerEntry struct {
	at  time.Time
	seq uint64
	t   proto.Timer[proto.Key]
}

type timerHeap []timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
