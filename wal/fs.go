package wal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// File is the part of an open file the WAL uses. All I/O is positional: the log tracks its own
// write position, so implementations need no seek state and ReadAt may run concurrently with
// WriteAt on another region.
type File interface {
	// ReadAt has io.ReaderAt semantics.
	ReadAt(p []byte, off int64) (int, error)
	// WriteAt has io.WriterAt semantics. Data written is not durable until Sync returns.
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes the file's contents durable (fsync).
	Sync() error
	// Truncate changes the file's size. Not durable until Sync.
	Truncate(size int64) error
	// Size reports the current size of the file.
	Size() (int64, error)
	Close() error
}

// FS is the filesystem the WAL runs on. OSFS is the real disk; package waltest has an
// in-memory implementation that simulates crashes. Names are slash- or OS-separated paths as
// produced by filepath.Join.
type FS interface {
	// OpenFile opens a file with os.OpenFile flags (O_RDONLY, O_RDWR, O_CREATE, O_EXCL, O_TRUNC).
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Remove deletes one file. The removal is durable once SyncDir of its directory returns.
	Remove(name string) error
	// RemoveAll deletes a directory tree; a missing path is not an error.
	RemoveAll(path string) error
	// Rename atomically renames a file. Durable once SyncDir of its directory returns.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(path string, perm fs.FileMode) error
	// ReadDir lists the names of a directory's entries, sorted.
	ReadDir(dir string) ([]string, error)
	// SyncDir makes the directory's entries (creations, renames, removals) durable.
	SyncDir(dir string) error
}

// FilesystemSyncer is implemented by an FS that can make everything written to a whole
// filesystem durable with one call (Linux syncfs(2)). A Store whose checkpoint covers many
// logs uses it instead of fsyncing each log's files (StoreOptions.SyncFSMinLogs).
type FilesystemSyncer interface {
	// OpenSyncer returns a handle on the filesystem holding dir.
	OpenSyncer(dir string) (Syncer, error)
}

// Syncer is a handle on one filesystem (FilesystemSyncer).
type Syncer interface {
	// Sync makes every file's data and every directory entry of the filesystem durable,
	// whoever wrote them, and fails if any writeback of the filesystem failed since the
	// handle was opened (even one that an fsync of the file has already reported): a failed
	// Sync leaves unknown which bytes are durable.
	Sync() error
	Close() error
}

// writeBacker is a File that can write its dirty pages to the disk and wait for them without
// making anything durable (Linux sync_file_range(2): no metadata, no cache flush). A
// checkpoint that syncs the whole filesystem writes each log's data back first, a few files
// at a time, so the sync has little left to write: a whole checkpoint's data handed to the
// disk at once by the sync queues every journal fsync behind it (produce p99 at 1,000
// partitions 96-104 ms with per-log fsyncs, 160-220 ms with the sync alone).
type writeBacker interface {
	WriteBack() error
}

// reserver is a File that can allocate disk blocks past its end without changing its size
// (Linux fallocate(2)); truncating the file to its size frees them again
// (freePastEnd). An append into allocated blocks costs about a third less CPU than
// one that extends the file (the filesystem has no block to reserve and no extent to grow
// per page); see Log.reserveLocked.
type reserver interface {
	Reserve(off, n int64) error
}

// reserve allocates f's blocks of [off, off+n) if f can (nil if it cannot).
func reserve(f File, off, n int64) error {
	if r, ok := f.(reserver); ok {
		return r.Reserve(off, n)
	}
	return nil
}

// writeBack writes f's dirty pages back if f can (nil if it cannot: the sync does it).
func writeBack(f File) error {
	if wb, ok := f.(writeBacker); ok {
		return wb.WriteBack()
	}
	return nil
}

// filesystemSyncer returns fsys's FilesystemSyncer, looking through the Store's descriptor
// cache, or nil.
func filesystemSyncer(fsys FS) FilesystemSyncer {
	for {
		switch f := fsys.(type) {
		case FilesystemSyncer:
			return f
		case *cachedFS:
			fsys = f.FS
		default:
			return nil
		}
	}
}

// OSFS returns the real filesystem.
func OSFS() FS { return osFS{} }

type osFS struct{}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) RemoveAll(path string) error                  { return os.RemoveAll(path) }
func (osFS) Rename(oldname, newname string) error         { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

const (
	osRDONLY = os.O_RDONLY
	osRDWR   = os.O_RDWR
	osCREATE = os.O_CREATE
	osTRUNC  = os.O_TRUNC
)

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// MkdirDurable creates dir and any missing parents on fsys, and fsyncs the parent of each
// directory it created, so that the new entries survive a crash.
func MkdirDurable(fsys FS, dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fsys.ReadDir(d); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing {
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// ReadAll reads the whole of f, as large as it is now.
func ReadAll(f File) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); err != nil && !(n == len(b) && errors.Is(err, io.EOF)) {
		return nil, err
	}
	return b, nil
}

// ReadFile reads the whole of the file name on fsys (as os.ReadFile does on the disk).
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f)
}

// ErrReplaceUnknown is wrapped by a ReplaceFile error from the rename or the directory fsync:
// whether the new content is in place, and whether it would survive a crash, is unknown (a
// caller that must not act on a guess stops writing the file).
var ErrReplaceUnknown = errors.New("wal: file replacement of unknown outcome")

// ReplaceFile makes data the whole content of dir/name, atomically and durably: it is written
// and fsynced under name+".tmp", renamed over name and the directory fsynced. It returns the
// new file, open read-write (for a log that goes on appending to it); on an error the old
// file, if any, is still in place unless the error wraps ErrReplaceUnknown. A new file gets
// mode 0644 (ReplaceFileMode chooses).
func ReplaceFile(fsys FS, dir, name string, data []byte) (File, error) {
	return ReplaceFileMode(fsys, dir, name, data, 0o644)
}

// ReplaceFileMode is ReplaceFile creating the temporary file with mode perm.
func ReplaceFileMode(fsys FS, dir, name string, data []byte, perm fs.FileMode) (File, error) {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := fsys.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync: %w", err)
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, name)); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: rename: %w", ErrReplaceUnknown, err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: sync dir: %w", ErrReplaceUnknown, err)
	}
	return f, nil
}
