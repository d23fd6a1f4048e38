package broker

// Log compaction of replicated partitions (cleanup.policy=compact on a topic with more than
// one replica). doc.go (Compacted topics) and broker/replica's doc.go (Compaction) give the
// design; compact.go is the cleaner, which calls cleanBounds for a replicated partition.

import "math"

// cleanBounds is what the cleaner may touch in this replica's log: nothing at or above lso
// (the last stable offset at the high watermark: only committed, applied entries, never an
// open transaction), the aborted transactions to empty, and matched, the offset below which
// a tombstone may go. On the leader matched is the offset every other replica's log reaches
// (raft's Match, of every replica it tracks, live or not): a replica behind a tombstone the
// leader removed would never receive it and could keep the value it deleted. On a follower it
// is unbounded: a follower sends nothing (if it leads later, the leader rule applies then to
// what it still holds).
func (g *replGroup) cleanBounds() (lso int64, aborted []abortedTxn, matched int64) {
	hw := g.highWatermark()
	lso, aborted = g.stable(hw, 0)
	lso = min(lso, hw)
	matched = math.MaxInt64
	st, ok := g.eng.Status(g.id)
	if !ok {
		return lso, aborted, g.log.StartOffset() // unknown: keep every tombstone
	}
	if st.Leader != g.self {
		return lso, aborted, matched
	}
	for id, pr := range st.Progress {
		if id == g.self {
			continue
		}
		_, next, ok := g.st.Offsets(pr.Match)
		if !ok {
			next = g.log.StartOffset() // not stored here (0, or below the log): keep them all
		}
		matched = min(matched, next)
	}
	return lso, aborted, matched
}
