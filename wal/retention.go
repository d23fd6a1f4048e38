package wal

import "fmt"

// Retain deletes whole sealed segments, oldest first: while the oldest one's newest timestamp
// is older than now-retentionMs (retentionMs < 0: no time limit), and then while deleting the
// oldest one still leaves at least retentionBytes of log (retentionBytes < 0: no size limit;
// this is Kafka's retention.bytes rule). The active segment is never deleted. It returns how
// many segments went; StartOffset moves to the new oldest segment.
func (l *Log) Retain(retentionMs, retentionBytes int64) (removed int, err error) {
	defer l.lockSegments()()
	if l.closed {
		return 0, ErrClosed
	}
	now := l.now().UnixMilli()
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	n := 0
	for n < len(l.segs)-1 {
		s := l.segs[n]
		byTime := retentionMs >= 0 && s.maxTs < now-retentionMs
		bySize := retentionBytes >= 0 && total-s.size >= retentionBytes
		if !byTime && !bySize {
			break
		}
		total -= s.size
		n++
	}
	if n == 0 {
		return 0, nil
	}
	doomed := l.segs[:n]
	l.segs = append([]*segment(nil), l.segs[n:]...)
	for _, s := range doomed {
		s.closeFiles()
		for _, name := range []string{s.logName(), s.idxName(), s.tidxName()} {
			if rerr := l.fs.Remove(name); rerr != nil && !isNotExist(rerr) && err == nil {
				err = rerr
			}
		}
	}
	if serr := l.fs.SyncDir(l.dir); err == nil {
		err = serr
	}
	if err != nil {
		return n, fmt.Errorf("wal: retain %s: %w", l.dir, err)
	}
	return n, nil
}
