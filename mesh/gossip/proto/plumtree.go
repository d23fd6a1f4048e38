package proto

import "time"

type ihaveFrom[P comparable] struct {
	peer  P
	round Round
}

// plumtree is the broadcast protocol of one topic (iroh-gossip 0.28
// semantics; see the package doc for the deviations).
type plumtree[P comparable] struct {
	t           *topicState[P]
	cfg         PlumtreeConfig
	eager, lazy indexSet[P]
	lazyQueue   map[P][]IHave
	lazyOrder   []P // peers with queued IHaves, in queue order
	missing     map[MessageID][]ihaveFrom[P]
	seen        timeCache[MessageID, struct{}]
	cache       timeCache[MessageID, Gossip]

	graftScheduled    map[MessageID]bool
	dispatchScheduled bool
	initDone          bool
}

func (g *plumtree[P]) me() P { return g.t.s.me }

// init runs the first cache eviction (which schedules the periodic timer) on
// the first event, as Rust does.
func (g *plumtree[P]) init(now time.Time) {
	if !g.initDone {
		g.initDone = true
		g.onEvict(now)
	}
}

// isNeighbor reports whether p is in the HyParView active view. Unlike 0.28,
// Prune and Graft from (or to) a peer that is not a neighbor do not put it
// into the eager or lazy set, so the two sets always partition the active
// view and we never push to a peer that is no longer a neighbor.
func (g *plumtree[P]) isNeighbor(p P) bool { return g.t.swarm.active.contains(p) }

func (g *plumtree[P]) addEager(p P) {
	g.lazy.remove(p)
	g.eager.insert(p)
}

func (g *plumtree[P]) addLazy(p P) {
	g.eager.remove(p)
	g.lazy.insert(p)
}

func (g *plumtree[P]) onMessage(now time.Time, from P, m Msg) {
	switch m := m.(type) {
	case Gossip:
		g.onGossip(now, from, m)
	case Prune:
		if g.isNeighbor(from) {
			g.addLazy(from)
		}
	case IHaves:
		g.onIHave(from, m)
	case Graft:
		if g.isNeighbor(from) {
			g.addEager(from)
		}
		if m.ID != nil {
			if c, ok := g.cache.get(*m.ID); ok {
				g.t.send(from, c)
			}
		}
	}
}

func (g *plumtree[P]) onTimer(now time.Time, tm Timer[P]) {
	switch tm.Kind {
	case TimerGraft:
		g.onGraftTimer(tm.ID)
	case TimerDispatchLazyPush:
		g.dispatch()
	case TimerEvictCache:
		g.onEvict(now)
	}
}

func (g *plumtree[P]) broadcast(now time.Time, content []byte, neighbors bool) {
	content = append([]byte(nil), content...)
	msg := Gossip{ID: IDOf(content), Content: content, Scope: Scope{Neighbors: neighbors}}
	me := g.me()
	if !neighbors {
		g.seen.insert(msg.ID, struct{}{}, now.Add(g.cfg.MessageIDRetention))
		g.cache.insert(msg.ID, msg, now.Add(g.cfg.MessageCacheRetention))
		g.lazyPush(msg, me)
	}
	g.eagerPush(msg, me)
}

func (g *plumtree[P]) onGossip(now time.Time, sender P, m Gossip) {
	if !m.Valid() {
		return // spoofed id: dropped silently, the connection stays up
	}
	if g.seen.contains(m.ID) {
		if g.isNeighbor(sender) {
			g.addLazy(sender)
		}
		g.t.send(sender, Prune{})
		return
	}
	if !m.Scope.Neighbors {
		g.seen.insert(m.ID, struct{}{}, now.Add(g.cfg.MessageIDRetention))
		next := m
		next.Scope.Round++
		g.cache.insert(m.ID, next, now.Add(g.cfg.MessageCacheRetention))
		g.eagerPush(next, sender)
		g.lazyPush(next, sender)
		delete(g.graftScheduled, m.ID)
		if prev, ok := g.missing[m.ID]; ok {
			delete(g.missing, m.ID)
			g.optimizeTree(sender, next.Scope.Round, prev)
		}
	}
	g.t.emit(Event[P]{Kind: Received, Peer: sender, Content: m.Content, Scope: m.Scope})
}

func (g *plumtree[P]) optimizeTree(sender P, round Round, prev []ihaveFrom[P]) {
	best := prev[0]
	for _, ih := range prev[1:] {
		if ih.round < best.round {
			best = ih
		}
	}
	if best.round < round && round-best.round >= g.cfg.OptimizationThreshold {
		// Unlike 0.28 (and like 0.90+), both ends agree on the new tree:
		// the peer we graft becomes eager here too and the peer we prune
		// lazy. 0.28 changes only the remote ends, which leaves one-way
		// eager links that can cut the eager graph for some senders.
		if !g.eager.contains(best.peer) {
			g.t.send(best.peer, Graft{Round: best.round})
			if g.isNeighbor(best.peer) {
				g.addEager(best.peer)
			}
		}
		g.t.send(sender, Prune{})
		if g.isNeighbor(sender) {
			g.addLazy(sender)
		}
	}
}

func (g *plumtree[P]) onIHave(sender P, ihs IHaves) {
	for _, ih := range ihs {
		if g.seen.contains(ih.ID) {
			continue
		}
		g.missing[ih.ID] = append(g.missing[ih.ID], ihaveFrom[P]{sender, ih.Round})
		if !g.graftScheduled[ih.ID] {
			g.graftScheduled[ih.ID] = true
			var zero P
			g.t.timer(g.cfg.GraftTimeout1, TimerGraft, zero, ih.ID)
		}
	}
}

func (g *plumtree[P]) onGraftTimer(id MessageID) {
	if g.seen.contains(id) {
		return
	}
	q := g.missing[id]
	if len(q) == 0 {
		// Nobody left to ask: forget the id instead of keeping it forever.
		delete(g.missing, id)
		delete(g.graftScheduled, id)
		return
	}
	first := q[0]
	if len(q) == 1 {
		delete(g.missing, id)
	} else {
		g.missing[id] = q[1:]
	}
	if g.isNeighbor(first.peer) {
		g.addEager(first.peer)
	}
	mid := id
	g.t.send(first.peer, Graft{ID: &mid, Round: first.round})
	var zero P
	g.t.timer(g.cfg.GraftTimeout2, TimerGraft, zero, id)
}

func (g *plumtree[P]) onNeighborDown(p P) {
	for id, q := range g.missing {
		kept := q[:0]
		for _, ih := range q {
			if ih.peer != p {
				kept = append(kept, ih)
			}
		}
		if len(kept) == 0 {
			delete(g.missing, id)
		} else {
			g.missing[id] = kept
		}
	}
	g.eager.remove(p)
	g.lazy.remove(p)
	if _, ok := g.lazyQueue[p]; ok {
		delete(g.lazyQueue, p)
		for i, q := range g.lazyOrder {
			if q == p {
				g.lazyOrder = append(g.lazyOrder[:i], g.lazyOrder[i+1:]...)
				break
			}
		}
	}
}

func (g *plumtree[P]) onEvict(now time.Time) {
	g.cache.expireUntil(now)
	g.seen.expireUntil(now)
	var zero P
	g.t.timer(g.cfg.CacheEvictInterval, TimerEvictCache, zero, MessageID{})
}

func (g *plumtree[P]) eagerPush(m Gossip, sender P) {
	me := g.me()
	for _, p := range g.eager.items {
		if p != me && p != sender {
			g.t.send(p, m)
		}
	}
}

func (g *plumtree[P]) lazyPush(m Gossip, sender P) {
	if m.Scope.Neighbors {
		return
	}
	for _, p := range g.lazy.items {
		if p == sender {
			continue
		}
		if _, ok := g.lazyQueue[p]; !ok {
			g.lazyOrder = append(g.lazyOrder, p)
		}
		g.lazyQueue[p] = append(g.lazyQueue[p], IHave{ID: m.ID, Round: m.Scope.Round})
	}
	if !g.dispatchScheduled {
		g.dispatchScheduled = true
		var zero P
		g.t.timer(g.cfg.DispatchTimeout, TimerDispatchLazyPush, zero, MessageID{})
	}
}

// maxIHaves is how many announcements fit one frame: each takes at most 35
// bytes (32-byte id + 3-byte round) after the 33-byte frame header and a
// 3-byte count (the 0.35 rule).
func (g *plumtree[P]) maxIHaves() int {
	n := (g.t.s.cfg.MaxMessageSize - FrameOverhead - 3) / 35
	return max(n, 1)
}

func (g *plumtree[P]) dispatch() {
	chunk := g.maxIHaves()
	for _, p := range g.lazyOrder {
		list := g.lazyQueue[p]
		for len(list) > 0 {
			n := min(len(list), chunk)
			g.t.send(p, IHaves(list[:n:n]))
			list = list[n:]
		}
		delete(g.lazyQueue, p)
	}
	g.lazyOrder = g.lazyOrder[:0]
	g.dispatchScheduled = false
}
