package proto

import "bytes"

// hyparview is the membership protocol of one topic (iroh-gossip 0.28
// semantics).
type hyparview[P comparable] struct {
	t                *topicState[P]
	cfg              HyParViewConfig
	active, passive  indexSet[P]
	pending          map[P]bool // outstanding Neighbor requests
	peerData         map[P]PeerData
	shuffleScheduled bool
}

func (h *hyparview[P]) me() P { return h.t.s.me }

// init schedules the first shuffle on the first event, as Rust does.
func (h *hyparview[P]) init() {
	if !h.shuffleScheduled {
		h.shuffleScheduled = true
		var zero P
		h.t.timer(h.cfg.ShuffleInterval, TimerShuffle, zero, MessageID{})
	}
}

func (h *hyparview[P]) activeFull() bool  { return h.active.len() >= h.cfg.ActiveViewCapacity }
func (h *hyparview[P]) passiveFull() bool { return h.passive.len() >= h.cfg.PassiveViewCapacity }

func (h *hyparview[P]) requestJoin(p P) {
	if p == h.me() {
		return
	}
	h.t.send(p, Join{Data: h.t.s.meData})
}

func (h *hyparview[P]) onMessage(from P, m Msg) {
	switch m := m.(type) {
	case Join:
		h.onJoin(from, m.Data)
	case ForwardJoin[P]:
		h.onForwardJoin(from, m)
	case Shuffle[P]:
		h.onShuffle(from, m)
	case ShuffleReply[P]:
		for _, n := range m.Nodes {
			h.addPassive(n.ID, n.Data)
		}
	case Neighbor:
		h.onNeighbor(from, m)
	case Disconnect:
		h.onDisconnect(from, m)
		return
	default:
		return // a Msg with another peer type cannot come off the wire
	}
	// Anything but Disconnect from a peer that is not (or no longer) active
	// ends our use of the connection for this topic.
	if !h.active.contains(from) {
		h.t.s.disconnect(h.t.topic, from)
	}
}

func (h *hyparview[P]) onJoin(p P, data PeerData) {
	if p == h.me() {
		return
	}
	if h.active.contains(p) {
		h.insertPeerInfo(p, data)
		return
	}
	h.addActive(p, data, High)
	for _, n := range h.active.without(p) {
		h.t.send(n, ForwardJoin[P]{Peer: PeerInfo[P]{ID: p, Data: data}, TTL: h.cfg.ActiveRandomWalkLength})
	}
}

func (h *hyparview[P]) onForwardJoin(sender P, m ForwardJoin[P]) {
	if m.TTL == 0 || h.active.len() <= 1 {
		h.addActive(m.Peer.ID, m.Peer.Data, High)
	} else if m.TTL == h.cfg.PassiveRandomWalkLength {
		h.addPassive(m.Peer.ID, m.Peer.Data)
	}
	if !h.active.contains(m.Peer.ID) {
		next, ok := h.active.pickRandomWithout(h.t.s.rng, sender)
		if !ok {
			return // 0.28 panics here (unreachable!); we drop the walk
		}
		ttl := m.TTL
		if ttl > 0 {
			ttl--
		}
		h.t.send(next, ForwardJoin[P]{Peer: m.Peer, TTL: ttl})
	}
}

func (h *hyparview[P]) onNeighbor(from P, m Neighbor) {
	delete(h.pending, from)
	switch {
	case m.Priority == High:
		h.addActive(from, m.Data, High)
	case !h.activeFull():
		h.addActive(from, m.Data, Low)
	}
}

func (h *hyparview[P]) peerInfo(p P) PeerInfo[P] {
	return PeerInfo[P]{ID: p, Data: h.peerData[p]}
}

// insertPeerInfo records data for p and reports it when it changed.
func (h *hyparview[P]) insertPeerInfo(p P, data PeerData) {
	if data == nil || p == h.me() {
		return
	}
	old, ok := h.peerData[p]
	if ok && bytes.Equal(old, data) {
		return
	}
	data = append(PeerData{}, data...)
	h.peerData[p] = data
	h.t.s.out = append(h.t.s.out, LearnPeerData[P]{Peer: p, Data: data})
}

// forget drops the data of a peer that is in neither view, so the map stays
// bounded by the view sizes.
func (h *hyparview[P]) forget(p P) {
	if !h.active.contains(p) && !h.passive.contains(p) {
		delete(h.peerData, p)
	}
}

func (h *hyparview[P]) onShuffle(from P, m Shuffle[P]) {
	if m.TTL == 0 || h.active.len() <= 1 {
		for _, n := range m.Nodes {
			h.addPassive(n.ID, n.Data)
		}
		ids := h.passive.shuffledWithoutCapped(h.t.s.rng, len(m.Nodes))
		nodes := make([]PeerInfo[P], 0, len(ids))
		for _, id := range ids {
			nodes = append(nodes, h.peerInfo(id))
		}
		if m.Origin != h.me() {
			h.t.send(m.Origin, ShuffleReply[P]{Nodes: nodes})
		}
	} else if next, ok := h.active.pickRandomWithout(h.t.s.rng, m.Origin, from); ok {
		h.t.send(next, Shuffle[P]{Origin: m.Origin, Nodes: m.Nodes, TTL: m.TTL - 1})
	}
}

func (h *hyparview[P]) onDisconnect(p P, d Disconnect) {
	h.disconnected(p, d)
}

// disconnected handles a Disconnect message, or (transport) a lost
// connection, which Rust reports as Disconnect{alive: true}. Unlike 0.28, a
// refused or failed Neighbor request makes us ask another passive peer at
// once, instead of waiting with a short active view until the next loss. An
// unreachable peer stays passive: it may be reachable again after a
// partition heals.
func (h *hyparview[P]) disconnected(p P, d Disconnect) {
	wasPending := h.pending[p] && !h.active.contains(p)
	delete(h.pending, p)
	h.removeActive(p, d.Respond)
	if wasPending {
		h.refill(p)
	}
	if d.Alive {
		if data, ok := h.peerData[p]; ok {
			h.addPassive(p, data)
		}
	} else {
		h.passive.remove(p)
		h.forget(p)
	}
}

func (h *hyparview[P]) quit() {
	for _, p := range append([]P(nil), h.active.items...) {
		h.onDisconnect(p, Disconnect{Alive: false, Respond: true})
	}
}

func (h *hyparview[P]) onShuffleTimer() {
	rng := h.t.s.rng
	if node, ok := h.active.pickRandomWithout(rng); ok {
		act := h.active.shuffledWithoutCapped(rng, h.cfg.ShuffleActiveViewCount, node)
		pas := h.passive.shuffledWithoutCapped(rng, h.cfg.ShufflePassiveViewCount, node)
		nodes := make([]PeerInfo[P], 0, len(act)+len(pas))
		for _, id := range append(act, pas...) {
			nodes = append(nodes, h.peerInfo(id))
		}
		h.t.send(node, Shuffle[P]{Origin: h.me(), Nodes: nodes, TTL: h.cfg.ShuffleRandomWalkLength})
	}
	var zero P
	h.t.timer(h.cfg.ShuffleInterval, TimerShuffle, zero, MessageID{})
}

func (h *hyparview[P]) addPassive(p P, data PeerData) {
	h.insertPeerInfo(p, data)
	if h.active.contains(p) || h.passive.contains(p) || p == h.me() {
		return
	}
	if h.passiveFull() {
		i := h.t.s.rng.IntN(h.passive.len())
		old := h.passive.removeIndex(i)
		h.forget(old)
	}
	h.passive.insert(p)
}

func (h *hyparview[P]) removeActive(p P, respond bool) {
	i, ok := h.active.index[p]
	if !ok {
		return
	}
	h.removeActiveByIndex(i, respond)
	h.refill(p)
}

func (h *hyparview[P]) refill(skip ...P) {
	if h.active.len()+len(h.pending) >= h.cfg.ActiveViewCapacity {
		return
	}
	for p := range h.pending {
		skip = append(skip, p)
	}
	node, ok := h.passive.pickRandomWithout(h.t.s.rng, skip...)
	if !ok {
		return
	}
	prio := Low
	if h.active.len() == 0 {
		prio = High
	}
	h.t.send(node, Neighbor{Priority: prio, Data: h.t.s.meData})
	h.t.timer(h.cfg.NeighborRequestTimeout, TimerNeighborRequest, node, MessageID{})
	h.pending[node] = true
}

func (h *hyparview[P]) onNeighborRequestTimer(p P) {
	if h.pending[p] {
		delete(h.pending, p)
		h.passive.remove(p)
		h.forget(p)
		h.refill()
	}
}

func (h *hyparview[P]) removeActiveByIndex(i int, respond bool) P {
	p := h.active.removeIndex(i)
	if respond {
		// 0.28 always sends these values, whatever the reason.
		h.t.send(p, Disconnect{Alive: true, Respond: false})
	}
	h.t.s.disconnect(h.t.topic, p)
	h.t.emit(Event[P]{Kind: NeighborDown, Peer: p})
	h.addPassive(p, nil)
	return p
}

func (h *hyparview[P]) addActive(p P, data PeerData, prio Priority) bool {
	h.insertPeerInfo(p, data)
	if h.active.contains(p) || p == h.me() {
		return true
	}
	full := h.activeFull()
	if prio == Low && full {
		return false
	}
	if full {
		h.removeActiveByIndex(h.t.s.rng.IntN(h.active.len()), true)
	}
	h.passive.remove(p)
	h.active.insert(p)
	h.t.send(p, Neighbor{Priority: prio, Data: h.t.s.meData})
	h.t.emit(Event[P]{Kind: NeighborUp, Peer: p})
	return true
}
