package raftstore

// SetLimitsForTest replaces the memory bounds (entries whose offsets and terms are kept, cached
// entry bytes and count, applied or not) and returns a func restoring them. Tests using it
// must not run in parallel.
func SetLimitsForTest(mem, bytes, entries int) (restore func()) {
	m, b, e, ub, ue := memCap, cacheBytes, cacheEntries, unappliedBytes, unappliedEntries
	memCap, cacheBytes, cacheEntries, unappliedBytes, unappliedEntries = mem, bytes, entries, bytes, entries
	return func() { memCap, cacheBytes, cacheEntries, unappliedBytes, unappliedEntries = m, b, e, ub, ue }
}

// CachedForTest returns the first index and the count of the entries the cache holds.
func (s *Store) CachedForTest() (first uint64, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cacheFirst, len(s.cache)
}
