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
