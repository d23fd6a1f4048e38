package wal

import "fmt"

// SegmentInfo describes one segment of a log (Segments).
type SegmentInfo struct {
	Base, Next   int64 // offsets: the first entry's base, after the last entry
	Size         int64 // bytes of entries
	MaxTimestamp int64 // newest entry timestamp (math.MinInt64 if none)
	Sealed       bool  // false for the active (last) segment
}

// Segments describes the log's segments, oldest first (the last is the active one).
func (l *Log) Segments() []SegmentInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = SegmentInfo{Base: s.base, Next: s.next, Size: s.size, MaxTimestamp: s.maxTs, Sealed: s.sealed}
	}
	return out
}

// RetainBelow deletes the sealed segments, oldest first, whose entries all lie below offset
// (a replicated partition's retention, which decides its own bound). The active segment is
// never deleted. It returns how many segments went; StartOffset moves to the new oldest one.
// Each segment's deletion is durable (the directory is fsynced) before the next one's, so a
// crash leaves a contiguous run of segments. It does not wait for the journal: a caller whose state must be durable first commits it (Commit).
func (l *Log) RetainBelow(offset int64) (removed int, err error) {
	defer l.lockSegments()()
	if l.closed {
		return 0, ErrClosed
	}
	n := 0
	for n < len(l.segs)-1 && l.segs[n+1].base <= offset {
		n++
	}
	if n == 0 {
		return 0, nil
	}
	// Oldest first, each durably before the next: a crash leaves a contiguous run.
	for removed < n {
		s := l.segs[0]
		l.segs = append([]*segment(nil), l.segs[1:]...)
		removed++
		if err := l.removeSegment(s); err != nil {
			return removed, fmt.Errorf("wal: retain %s below %d: %w", l.dir, offset, err)
		}
	}
	return removed, nil
}
