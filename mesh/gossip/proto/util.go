package proto

import (
	"math/rand/v2"
	"time"
)

// indexSet is an insertion-ordered set, so that iteration (and therefore the
// order of outputs) is deterministic for a given seed.
type indexSet[P comparable] struct {
	items []P
	index map[P]int
}

func (s *indexSet[P]) len() int { return len(s.items) }

func (s *indexSet[P]) contains(p P) bool {
	_, ok := s.index[p]
	return ok
}

func (s *indexSet[P]) insert(p P) bool {
	if s.contains(p) {
		return false
	}
	if s.index == nil {
		s.index = make(map[P]int)
	}
	s.index[p] = len(s.items)
	s.items = append(s.items, p)
	return true
}

func (s *indexSet[P]) remove(p P) bool {
	i, ok := s.index[p]
	if !ok {
		return false
	}
	s.removeIndex(i)
	return true
}

func (s *indexSet[P]) removeIndex(i int) P {
	p := s.items[i]
	delete(s.index, p)
	copy(s.items[i:], s.items[i+1:])
	var zero P
	s.items[len(s.items)-1] = zero
	s.items = s.items[:len(s.items)-1]
	for j := i; j < len(s.items); j++ {
		s.index[s.items[j]] = j
	}
	return p
}

// without returns the items not in skip, in order.
func (s *indexSet[P]) without(skip ...P) []P {
	out := make([]P, 0, len(s.items))
outer:
	for _, p := range s.items {
		for _, q := range skip {
			if p == q {
				continue outer
			}
		}
		out = append(out, p)
	}
	return out
}

func (s *indexSet[P]) pickRandomWithout(rng *rand.Rand, skip ...P) (P, bool) {
	c := s.without(skip...)
	if len(c) == 0 {
		var zero P
		return zero, false
	}
	return c[rng.IntN(len(c))], true
}

// shuffledWithoutCapped returns up to n random items not in skip.
func (s *indexSet[P]) shuffledWithoutCapped(rng *rand.Rand, n int, skip ...P) []P {
	c := s.without(skip...)
	rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	if len(c) > n {
		c = c[:n]
	}
	return c
}

// timeCache maps keys to values that expire at a deadline. Deadlines are
// inserted in non-decreasing order (now + a fixed retention), so a FIFO is
// enough to expire them.
type timeCache[K comparable, V any] struct {
	m     map[K]timeEntry[V]
	queue []timeKey[K]
}

type timeEntry[V any] struct {
	v       V
	expires time.Time
}

type timeKey[K comparable] struct {
	k       K
	expires time.Time
}

func (c *timeCache[K, V]) insert(k K, v V, expires time.Time) {
	if c.m == nil {
		c.m = make(map[K]timeEntry[V])
	}
	c.m[k] = timeEntry[V]{v, expires}
	c.queue = append(c.queue, timeKey[K]{k, expires})
}

func (c *timeCache[K, V]) get(k K) (V, bool) {
	e, ok := c.m[k]
	return e.v, ok
}

func (c *timeCache[K, V]) contains(k K) bool {
	_, ok := c.m[k]
	return ok
}

func (c *timeCache[K, V]) len() int { return len(c.m) }

// expireUntil drops entries whose deadline is not after now.
func (c *timeCache[K, V]) expireUntil(now time.Time) {
	i := 0
	for ; i < len(c.queue) && !c.queue[i].expires.After(now); i++ {
		q := c.queue[i]
		if e, ok := c.m[q.k]; ok && e.expires.Equal(q.expires) {
			delete(c.m, q.k)
		}
	}
	if i > 0 {
		c.queue = append(c.queue[:0:0], c.queue[i:]...)
	}
}
