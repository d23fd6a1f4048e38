package raftstore

// SetLimitsForTest replaces the memory bounds (entries whose offsets and terms are kept, cached
// entry bytes and count) and returns a func restoring them. Tests using it must not run in
// parallel.
func SetLimitsForTest(mem, bytes, entries int) (restore func()) {
	m, b, e := memCap, cacheBytes, cacheEntries
	memCap, cacheBytes, cacheEntries = mem, bytes, entries
	return func() { memCap, cacheBytes, cacheEntries = m, b, e }
}
