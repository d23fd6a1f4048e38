package controller

// leaderBound holds a coordinator (the group coordinator, the transaction coordinator) that
// belongs to one leadership of the quorum: it is live until its own durable log fails (gone
// closed) or the leadership it was started in ends (lead closed); after that it is never used
// again, only replaced. Its fields are guarded by Controller.mu.
type leaderBound[T comparable] struct {
	co   T
	gone chan struct{}
	lead <-chan struct{}
}

// set installs co, started in the leadership that lead watches.
func (b *leaderBound[T]) set(co T, gone chan struct{}, lead <-chan struct{}) {
	b.co, b.gone, b.lead = co, gone, lead
}

// live returns the coordinator if it is still valid, else the zero T.
func (b *leaderBound[T]) live() T {
	var zero T
	if b.co == zero || closed(b.gone) || closed(b.lead) {
		return zero
	}
	return b.co
}

// take clears the holder and returns what it held (the zero T if nothing), for the caller
// to close outside Controller.mu.
func (b *leaderBound[T]) take() T {
	co := b.co
	*b = leaderBound[T]{}
	return co
}

// liveIn is b's live coordinator, read under c.mu.
func liveIn[T comparable](c *Controller, b *leaderBound[T]) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.live()
}

// startingIn, called with the coordinator's start mutex held, reports whether a coordinator
// is to be started in b: none is live and this node leads. It then stops a stale one
// (stopLocked) and passes the leadership barrier (logged under what): changed closes when
// this leadership ends.
func startingIn[T comparable](c *Controller, b *leaderBound[T], stopLocked func(), what string) (changed <-chan struct{}, ok bool) {
	var zero T
	if liveIn(c, b) != zero || !c.isLeader() {
		return nil, false
	}
	stopLocked()
	return c.leadershipBarrier(what)
}

// setIn holds co in b, under Controller.mu, until gone or changed closes.
func setIn[T comparable](c *Controller, b *leaderBound[T], co T, gone chan struct{}, changed <-chan struct{}) {
	c.mu.Lock()
	b.set(co, gone, changed)
	c.mu.Unlock()
}

// ensureLive is b's live coordinator, started (or rebuilt) by start if this node leads and
// none is live; the zero T, after stop ended any, if this node does not lead. A stale one is
// never used: after a failed record, or once this node's leadership ended, it is replaced at
// once, not only when the watcher next looks (the watcher can miss a leadership that ended
// and came back between two of its looks, or a start that an op made while it was not
// leading).
func ensureLive[T comparable](c *Controller, b *leaderBound[T], start, stop func()) T {
	var zero T
	if co := liveIn(c, b); co != zero {
		return co
	}
	if !c.isLeader() {
		stop()
		return zero
	}
	start()
	return liveIn(c, b)
}

// stopIn takes b's coordinator (under c.mu) and, if there was one, runs detach (the broker
// stops using it) and closes it outside c.mu.
func stopIn[T interface {
	comparable
	Close() error
}](c *Controller, b *leaderBound[T], detach func()) {
	c.mu.Lock()
	co := b.take()
	c.mu.Unlock()
	var zero T
	if co != zero {
		if detach != nil {
			detach()
		}
		_ = co.Close()
	}
}
