package wal

import (
	"container/list"
	"io/fs"
	"os"
	"sync"
)

// fdCache bounds the descriptors a Store's logs hold: files are opened through cachedFS,
// whose handles keep their real file open only while it is among the MaxOpenFiles most
// recently used; a cold handle's file is closed and reopened (without O_CREATE, O_TRUNC,
// O_EXCL) at its next use. A handle is never closed while an operation on it runs (an fsync
// in particular), so the cap can be exceeded briefly by operations in flight.
type fdCache struct {
	fs  FS
	max int

	mu   sync.Mutex // guards the list, open and every lazyFile's f, elem and users
	lru  list.List  // *lazyFile whose f is open, most recently used first
	open int
	// Reopens counts files reopened after eviction (StoreStats).
	reopens int64
}

type cachedFS struct {
	FS
	c *fdCache
}

func newCachedFS(base FS, max int) *cachedFS {
	return &cachedFS{FS: base, c: &fdCache{fs: base, max: max}}
}

// OpenFile opens the file (creating or truncating it as flag says) and returns a handle that
// may close and reopen it behind the scenes.
func (c *cachedFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	lf := &lazyFile{c: c.c, name: name, flag: flag &^ (os.O_CREATE | os.O_TRUNC | os.O_EXCL), last: f}
	c.c.mu.Lock()
	lf.f = f
	lf.elem = c.c.lru.PushFront(lf)
	c.c.open++
	c.c.evictLocked()
	c.c.mu.Unlock()
	return lf, nil
}

// evictLocked closes the least recently used idle files while more than max are open.
func (c *fdCache) evictLocked() {
	for e := c.lru.Back(); e != nil && c.open > c.max; {
		lf := e.Value.(*lazyFile)
		prev := e.Prev()
		if lf.users == 0 {
			c.lru.Remove(e)
			lf.elem = nil
			// A close error of a file opened for reading or already written out is not
			// actionable here; write errors surface at the next fsync.
			_ = lf.f.Close()
			lf.f = nil
			c.open--
		}
		e = prev
	}
}

// reopener is implemented by files that know how to reopen themselves better than by name
// (waltest.CrashFS: a handle from before a simulated crash must not reopen into the
// filesystem after it).
type reopener interface {
	Reopen() (File, error)
}

type lazyFile struct {
	c    *fdCache
	name string
	flag int

	// Guarded by c.mu.
	last   File // the last underlying file (for reopener)
	f      File
	elem   *list.Element
	users  int
	closed bool
}

// acquire returns the open file, reopening it if it was evicted, and pins it.
func (lf *lazyFile) acquire() (File, error) {
	c := lf.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if lf.closed {
		return nil, &fs.PathError{Op: "use", Path: lf.name, Err: fs.ErrClosed}
	}
	if lf.f == nil {
		var f File
		var err error
		if r, ok := lf.last.(reopener); ok {
			f, err = r.Reopen()
		} else {
			f, err = c.fs.OpenFile(lf.name, lf.flag, 0)
		}
		if err != nil {
			return nil, err
		}
		lf.last = f
		lf.f = f
		lf.elem = c.lru.PushFront(lf)
		c.open++
		c.reopens++
		lf.users++ // before evicting: never this one
		c.evictLocked()
	} else {
		c.lru.MoveToFront(lf.elem)
		lf.users++
	}
	return lf.f, nil
}

func (lf *lazyFile) release() {
	c := lf.c
	c.mu.Lock()
	defer c.mu.Unlock()
	lf.users--
	if lf.closed && lf.users == 0 && lf.f != nil {
		lf.closeLocked() // Close came while an operation ran
		return
	}
	c.evictLocked()
}

func (lf *lazyFile) closeLocked() error {
	lf.c.lru.Remove(lf.elem)
	lf.elem = nil
	err := lf.f.Close()
	lf.f = nil
	lf.c.open--
	return err
}

func (lf *lazyFile) ReadAt(p []byte, off int64) (int, error) {
	f, err := lf.acquire()
	if err != nil {
		return 0, err
	}
	defer lf.release()
	return f.ReadAt(p, off)
}

func (lf *lazyFile) WriteAt(p []byte, off int64) (int, error) {
	f, err := lf.acquire()
	if err != nil {
		return 0, err
	}
	defer lf.release()
	return f.WriteAt(p, off)
}

func (lf *lazyFile) Sync() error {
	f, err := lf.acquire()
	if err != nil {
		return err
	}
	defer lf.release()
	return f.Sync()
}

// WriteBack is the underlying file's (writeBacker).
func (lf *lazyFile) WriteBack() error {
	f, err := lf.acquire()
	if err != nil {
		return err
	}
	defer lf.release()
	return writeBack(f)
}

// Reserve is the underlying file's (reserver), a no-op if it has none.
func (lf *lazyFile) Reserve(off, n int64) error {
	f, err := lf.acquire()
	if err != nil {
		return err
	}
	defer lf.release()
	return reserve(f, off, n)
}

func (lf *lazyFile) Truncate(size int64) error {
	f, err := lf.acquire()
	if err != nil {
		return err
	}
	defer lf.release()
	return f.Truncate(size)
}

func (lf *lazyFile) Size() (int64, error) {
	f, err := lf.acquire()
	if err != nil {
		return 0, err
	}
	defer lf.release()
	return f.Size()
}

func (lf *lazyFile) Close() error {
	c := lf.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if lf.closed {
		return &fs.PathError{Op: "close", Path: lf.name, Err: fs.ErrClosed}
	}
	lf.closed = true
	if lf.f == nil || lf.users > 0 {
		return nil // closed by the last release
	}
	return lf.closeLocked()
}
