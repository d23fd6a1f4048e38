package waltest

import (
	"io/fs"
	"os"
	"sync"

	"github.com/meshkafka/meshkafka/wal"
)

// HookFS wraps a wal.FS and calls Before ahead of every operation that changes something
// (File.WriteAt, Sync, Truncate; OpenFile with O_CREATE or O_TRUNC; Remove, RemoveAll, Rename,
// MkdirAll, SyncDir); an error from it fails the operation without performing it. Crash tests
// count the operations of a run and crash the filesystem at each one in turn (see CrashAt).
// Safe for concurrent use: Before is called with a lock held, so it sees operations one at a
// time.
type HookFS struct {
	wal.FS
	mu     sync.Mutex
	before func(op, name string) error
	// ops is held shared by every operation (hook and operation) and exclusively by
	// Exclusive, so a simulated crash happens between operations, never inside one.
	ops sync.RWMutex
}

// Exclusive runs fn while no operation is in flight (a crash injected from another
// goroutine: no operation that passed the hook before it lands on the file system after it).
func (h *HookFS) Exclusive(fn func()) {
	h.ops.Lock()
	defer h.ops.Unlock()
	fn()
}

// NewHookFS wraps fsys; before may be nil (SetBefore sets it later).
func NewHookFS(fsys wal.FS, before func(op, name string) error) *HookFS {
	return &HookFS{FS: fsys, before: before}
}

// SetBefore replaces the hook (nil: none).
func (h *HookFS) SetBefore(before func(op, name string) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.before = before
}

func (h *HookFS) call(op, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.before == nil {
		return nil
	}
	return h.before(op, name)
}

// hooked runs do, an operation op on name, once the hook let it through (under ops' read
// lock, as every operation).
func (h *HookFS) hooked(op, name string, do func() error) error {
	h.ops.RLock()
	defer h.ops.RUnlock()
	if err := h.call(op, name); err != nil {
		return err
	}
	return do()
}

func (h *HookFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	h.ops.RLock()
	defer h.ops.RUnlock()
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		if err := h.call("create", name); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &hookFile{File: f, h: h, name: name}, nil
}

func (h *HookFS) Remove(name string) error {
	return h.hooked("remove", name, func() error { return h.FS.Remove(name) })
}

func (h *HookFS) RemoveAll(p string) error {
	return h.hooked("removeall", p, func() error { return h.FS.RemoveAll(p) })
}

func (h *HookFS) Rename(oldname, newname string) error {
	return h.hooked("rename", newname, func() error { return h.FS.Rename(oldname, newname) })
}

func (h *HookFS) MkdirAll(p string, perm fs.FileMode) error {
	return h.hooked("mkdir", p, func() error { return h.FS.MkdirAll(p, perm) })
}

func (h *HookFS) SyncDir(dir string) error {
	return h.hooked("syncdir", dir, func() error { return h.FS.SyncDir(dir) })
}

type hookFile struct {
	wal.File
	h    *HookFS
	name string
}

func (f *hookFile) WriteAt(p []byte, off int64) (n int, err error) {
	err = f.h.hooked("write", f.name, func() error {
		n, err = f.File.WriteAt(p, off)
		return err
	})
	return n, err
}

func (f *hookFile) Sync() error {
	return f.h.hooked("sync", f.name, f.File.Sync)
}

func (f *hookFile) Truncate(size int64) error {
	return f.h.hooked("truncate", f.name, func() error { return f.File.Truncate(size) })
}

// CrashAt returns a HookFS hook that lets n-1 operations through, then calls crash (a
// CrashFS's Crash, CrashTear or CrashReorder: the power is cut just before operation n) and
// fails operation n and every later one with ErrCrashed, as if the process had died. ops
// reports how many operations the hook saw (with n < 0 it never crashes: a counting run).
func CrashAt(n int64, crash func()) (hook func(op, name string) error, ops func() int64) {
	var mu sync.Mutex
	var seen int64
	dead := false
	hook = func(op, name string) error {
		mu.Lock()
		defer mu.Unlock()
		if dead {
			return ErrCrashed
		}
		seen++
		if seen == n {
			dead = true
			crash()
			return ErrCrashed
		}
		return nil
	}
	ops = func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
	return hook, ops
}

// Reopen reopens the wrapped file the way it knows (CrashFS: a handle from before a crash
// stays dead), for the wal's descriptor cache.
func (f *hookFile) Reopen() (wal.File, error) {
	r, ok := f.File.(interface{ Reopen() (wal.File, error) })
	if !ok {
		return nil, &fs.PathError{Op: "reopen", Path: f.name, Err: fs.ErrInvalid}
	}
	nf, err := r.Reopen()
	if err != nil {
		return nil, err
	}
	return &hookFile{File: nf, h: f.h, name: f.name}, nil
}
