package wal

import (
	"errors"
	"fmt"
	"io"
)

// OffsetForTimestamp returns the base offset of the first entry with MaxTimestamp >= ts;
// ok is false if there is none. Segments are skipped by their newest timestamp and the time
// index bounds the scan inside the segment.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, ok bool, err error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, false, ErrClosed
	}
	segs := l.segs
	maxTs := make([]int64, len(segs))
	for i, s := range segs {
		maxTs[i] = s.maxTs
	}
	l.mu.Unlock()
	for i, s := range segs {
		if maxTs[i] < ts {
			continue
		}
		v, err := l.view(s)
		if err != nil {
			return 0, false, err
		}
		pos, off := lookupTime(v.idx, s.base, ts)
		o, found, err := l.scanForTime(v, pos, off, ts)
		if errors.Is(err, errIndexPoint) && pos > 0 {
			o, found, err = l.scanForTime(v, 0, s.base, ts)
		}
		if err != nil {
			return 0, false, fmt.Errorf("wal: read %s: %w", s.logName(), err)
		}
		if found {
			return o, true, nil
		}
	}
	return 0, false, nil
}

func (l *Log) scanForTime(v segView, pos, off, ts int64) (int64, bool, error) {
	r := entryReader{f: v.f, end: v.end, pos: pos, chunk: 64 << 10}
	next := off
	for {
		h, _, err := r.next()
		if errors.Is(err, io.EOF) {
			return 0, false, nil
		}
		if err == nil && h.baseOffset != next {
			err = fmt.Errorf("%w: entry at offset %d, want %d", ErrCorrupt, h.baseOffset, next)
		}
		if err != nil {
			return 0, false, atIndexPoint(err, next == off)
		}
		if h.maxTimestamp >= ts && !h.isHole() {
			return h.baseOffset, true, nil
		}
		next = h.baseOffset + int64(h.count)
	}
}
