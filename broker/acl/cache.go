package acl

import (
	"slices"
	"sync"
	"sync/atomic"
)

// Cached is an Authorizer with its decisions remembered per (principal, host, ask), for a hot
// path that asks the same few questions again and again (a producer's WRITE on its topics).
// An Authorizer is immutable, so its decisions never go stale: when the bindings change a new
// Cached is built over the new Authorizer and the old one is dropped with its cache. At most
// max decisions are kept (beyond that they are computed each time), so callers naming ever
// new resources cannot grow it without bound. Safe for concurrent use.
type Cached struct {
	a    *Authorizer
	max  int64
	n    atomic.Int64
	seen sync.Map // cacheKey → bool
}

type cacheKey struct {
	principal, host string
	ask             Ask
}

// DefaultCacheSize is the number of decisions a Cached keeps when built with max <= 0.
const DefaultCacheSize = 8192

// NewCached remembers a's decisions, up to max of them (<= 0: DefaultCacheSize).
func NewCached(a *Authorizer, max int) *Cached {
	if max <= 0 {
		max = DefaultCacheSize
	}
	return &Cached{a: a, max: int64(max)}
}

// Authorizer is the authorizer deciding.
func (c *Cached) Authorizer() *Authorizer { return c.a }

// Allows is Authorizer.Allows, remembered.
func (c *Cached) Allows(principal, host string, q Ask) bool {
	if c.a.superUsers[principal] {
		return true
	}
	k := cacheKey{principal, host, q}
	if v, ok := c.seen.Load(k); ok {
		return v.(bool)
	}
	ok := c.a.Allows(principal, host, q)
	if c.n.Load() < c.max {
		if _, loaded := c.seen.LoadOrStore(k, ok); !loaded {
			c.n.Add(1)
		}
	}
	return ok
}

// Len is the number of decisions kept.
func (c *Cached) Len() int { return int(c.n.Load()) }

// Decisions keeps the Cached decisions of the ACL set in force, rebuilt when it changed: a
// broker's view of the ACLs it holds (the metadata quorum's, or its file's). Safe for
// concurrent use; Current is cheap while nothing changed (one call of snap, an atomic load).
type Decisions struct {
	cfg  Config
	snap func() (gen uint64, load func() []Binding)

	mu  sync.Mutex // serialises rebuilds
	cur atomic.Pointer[decisionSet]
}

type decisionSet struct {
	gen      uint64
	bindings []Binding
	dec      *Cached
}

// NewDecisions returns the decisions over snap, which returns a number that changes whenever
// the bindings may have (it may change more often) and a function loading them.
func NewDecisions(cfg Config, snap func() (gen uint64, load func() []Binding)) *Decisions {
	return &Decisions{cfg: cfg, snap: snap}
}

// Current returns the decisions for the bindings in force.
func (d *Decisions) Current() *Cached {
	gen, load := d.snap()
	if s := d.cur.Load(); s != nil && s.gen == gen {
		return s.dec
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.cur.Load(); s != nil && s.gen == gen {
		return s.dec
	}
	bs := load()
	if s := d.cur.Load(); s != nil && slices.Equal(s.bindings, bs) {
		// Something else moved the number: keep the decisions made so far.
		d.cur.Store(&decisionSet{gen: gen, bindings: s.bindings, dec: s.dec})
		return s.dec
	}
	dec := NewCached(New(d.cfg, bs), 0)
	d.cur.Store(&decisionSet{gen: gen, bindings: bs, dec: dec})
	return dec
}
