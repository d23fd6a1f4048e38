package bufpool

import (
	"math/bits"
	"sync"
)

// Pool hands out buffers of 1<<(minShift+c) + slack bytes for classes c = 0 … classes-1.
// The slack lets a request of exactly a class size plus a little framing stay in that class.
type Pool struct {
	minShift int
	slack    int
	pools    []sync.Pool
}

// New returns a pool whose classes run from 1<<minShift to 1<<(minShift+classes-1) bytes,
// each with slack bytes more.
func New(minShift, classes, slack int) *Pool {
	return &Pool{minShift: minShift, slack: slack, pools: make([]sync.Pool, classes)}
}

// Max is the largest n Get serves.
func (p *Pool) Max() int { return 1<<(p.minShift+len(p.pools)-1) + p.slack }

// Get returns a buffer of at least n bytes (its contents do not matter) from the smallest
// class that holds it, or nil when n is above Max. Give it back with Put.
func (p *Pool) Get(n int) *[]byte {
	if n > p.Max() {
		return nil
	}
	c := max(bits.Len(uint(max(n-p.slack, 1)-1))-p.minShift, 0)
	if bp, _ := p.pools[c].Get().(*[]byte); bp != nil {
		return bp
	}
	b := make([]byte, 1<<(c+p.minShift)+p.slack)
	return &b
}

// Put returns a buffer Get handed out; the caller must not use it afterwards.
func (p *Pool) Put(bp *[]byte) {
	p.pools[bits.Len(uint(cap(*bp)-p.slack-1))-p.minShift].Put(bp)
}
