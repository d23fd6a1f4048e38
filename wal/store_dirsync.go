package wal

import "sync"

// dirSyncs shares directory fsyncs among members created at the same time (a broker creates a
// topic's partitions concurrently, all in one parent directory): a caller needs an fsync of
// the directory that started after it called (its own change is then covered), so callers
// arriving while one runs wait for the next, which one of them leads for all of them. One
// fsync per round instead of one per new member.
type dirSyncs struct {
	mu   sync.Mutex
	cond sync.Cond
	dirs map[string]*dirSyncRound
}

type dirSyncRound struct {
	started, done uint64 // rounds begun and finished (one at a time per directory)
	err           error  // the result of round done
	waiters       int    // callers in sync for this directory (the entry is dropped at 0)
}

// sync returns once an fsync of dir that began after the call has returned, with its result.
func (d *dirSyncs) sync(fs FS, dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dirs == nil {
		d.dirs = map[string]*dirSyncRound{}
		d.cond.L = &d.mu
	}
	r := d.dirs[dir]
	if r == nil {
		r = &dirSyncRound{}
		d.dirs[dir] = r
	}
	r.waiters++
	defer func() {
		if r.waiters--; r.waiters == 0 {
			delete(d.dirs, dir)
		}
	}()
	need := r.started + 1 // the in-flight round (if any) may have begun before our change
	for r.done < need {
		if r.started == r.done {
			r.started++
			d.mu.Unlock()
			err := fs.SyncDir(dir)
			d.mu.Lock()
			r.done, r.err = r.started, err
			d.cond.Broadcast()
			continue
		}
		d.cond.Wait()
	}
	// Every round from need on began after the call: the latest one's result answers.
	return r.err
}
