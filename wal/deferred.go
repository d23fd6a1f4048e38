package wal

import (
	"io"
	"os"
	"sync"
)

// deferredFile is a new, empty segment file that is created only by its first write (a Store
// member's segments: see createSegment). Until then it reads as empty and Sync has nothing to
// do. Safe for concurrent use.
type deferredFile struct {
	fs       FS
	name     string
	prepare  func() error // called before the file is created (creates its directory)
	onCreate func()       // called once the file exists (the directory entry is not durable yet)

	mu     sync.Mutex
	f      File // nil until created
	closed bool
}

// file returns the file, creating it first if create is set; nil if it does not exist yet.
func (d *deferredFile) file(create bool) (File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil && create {
		if d.closed {
			return nil, os.ErrClosed
		}
		if d.prepare != nil {
			if err := d.prepare(); err != nil {
				return nil, err
			}
		}
		f, err := d.fs.OpenFile(d.name, osRDWR|osCREATE|osTRUNC, 0o644)
		if err != nil {
			return nil, err
		}
		d.f = f
		if d.onCreate != nil {
			d.onCreate()
		}
	}
	return d.f, nil
}

func (d *deferredFile) ReadAt(p []byte, off int64) (int, error) {
	f, _ := d.file(false)
	if f == nil {
		return 0, io.EOF
	}
	return f.ReadAt(p, off)
}

func (d *deferredFile) WriteAt(p []byte, off int64) (int, error) {
	f, err := d.file(true)
	if err != nil {
		return 0, err
	}
	return f.WriteAt(p, off)
}

func (d *deferredFile) Sync() error {
	f, _ := d.file(false)
	if f == nil {
		return nil // nothing written: nothing to make durable
	}
	return f.Sync()
}

// Reserve is the file's (reserver), if it has one; it creates the file (it comes just
// before a write, which would).
func (d *deferredFile) Reserve(off, n int64) error {
	f, err := d.file(true)
	if err != nil {
		return err
	}
	return reserve(f, off, n)
}

// WriteBack is the file's (writeBacker), if it exists.
func (d *deferredFile) WriteBack() error {
	f, _ := d.file(false)
	if f == nil {
		return nil
	}
	return writeBack(f)
}

func (d *deferredFile) Truncate(size int64) error {
	f, err := d.file(size > 0)
	if err != nil || f == nil {
		return err
	}
	return f.Truncate(size)
}

func (d *deferredFile) Size() (int64, error) {
	f, _ := d.file(false)
	if f == nil {
		return 0, nil
	}
	return f.Size()
}

func (d *deferredFile) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.f == nil {
		return nil
	}
	return d.f.Close()
}

// created reports whether the file exists (was written to).
func (d *deferredFile) created() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f != nil
}

// memFile is a read-only File over bytes in memory (a copy of a write buffer, see Log.view).
type memFile []byte

func (m memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memFile) WriteAt([]byte, int64) (int, error) { return 0, os.ErrPermission }
func (m memFile) Sync() error                        { return nil }
func (m memFile) Truncate(int64) error               { return os.ErrPermission }
func (m memFile) Size() (int64, error)               { return int64(len(m)), nil }
func (m memFile) Close() error                       { return nil }
