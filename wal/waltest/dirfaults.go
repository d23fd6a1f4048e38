package waltest

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/meshkafka/meshkafka/wal"
)

// DirFaultFS is a CrashFS with the directory-operation failure model of a real filesystem,
// which CrashFS alone does not have:
//
//   - Every namespace change (file creation, Rename, Remove, MkdirAll of a new directory,
//     RemoveAll) is pending until SyncDir of the directory holding the changed entry
//     returns without error (for MkdirAll and RemoveAll: the parent of the created or removed
//     directory; for Rename: the directory of the new name). CrashFS makes a new directory
//     and a RemoveAll durable at once; here they are not.
//   - At a crash each pending change independently survives or is lost (CrashTear and
//     CrashReorder decide with their *rand.Rand, so changes are also reordered: a later one
//     may survive an earlier lost one; Crash loses them all). A lost MkdirAll takes the
//     directory and everything in it; a lost RemoveAll brings back the tree's durable files.
//     A file kept by a surviving creation or rename holds what the crash leaves of its
//     contents, as any durable file does.
//   - SetDirSyncFault makes SyncDir fail; a failed SyncDir makes nothing durable (its changes
//     stay pending: the outcome is unknown, as after a failed fsync of a directory).
//   - SetCreateFault makes the creation of new directory entries fail (ENOSPC on create).
//
// File contents follow CrashFS's model unchanged. Methods are safe for concurrent use; the
// fault functions are called with DirFaultFS's lock held and must not call back into it.
type DirFaultFS struct {
	*CrashFS

	mu          sync.Mutex
	pending     []dirOp // namespace changes not yet made durable by SyncDir, oldest first
	dirSyncErr  func(dir string) error
	createErr   func(name string) error
	dirSyncFail int64
}

var (
	_ wal.FS               = (*DirFaultFS)(nil)
	_ wal.FilesystemSyncer = (*DirFaultFS)(nil)
)

type dirOpKind int

const (
	opCreate dirOpKind = iota
	opRename
	opRemove
	opMkdir
	opRemoveAll
)

type dirOp struct {
	kind dirOpKind
	dir  string // SyncDir of this directory makes the change durable
	name string // created, removed or new name; the directory for opMkdir / opRemoveAll
	from string // opRename: old name
	ino  *inode // opCreate, opRename: the file the entry names
	// opRemoveAll (and opRemove of a directory): what a lost removal brings back.
	files map[string]*inode
	dirs  []string
}

// NewDirFaultFS returns an empty DirFaultFS (over a new CrashFS).
func NewDirFaultFS() *DirFaultFS { return &DirFaultFS{CrashFS: NewCrashFS()} }

// SetDirSyncFault makes SyncDir(dir) fail with f(dir) when that is not nil (f nil: never).
func (d *DirFaultFS) SetDirSyncFault(f func(dir string) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dirSyncErr = f
}

// SetCreateFault makes the creation of a new file (OpenFile with O_CREATE of a name that does
// not exist) or directory (MkdirAll) fail with f(name) when that is not nil, creating nothing.
// f nil: never.
func (d *DirFaultFS) SetCreateFault(f func(name string) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.createErr = f
}

// DirSyncFailures reports how many SyncDir calls failed by SetDirSyncFault.
func (d *DirFaultFS) DirSyncFailures() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dirSyncFail
}

// Pending reports how many namespace changes are not yet durable.
func (d *DirFaultFS) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.pending)
}

// OpenFile implements wal.FS.
func (d *DirFaultFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := clean(name)
	c := d.CrashFS
	c.mu.Lock()
	_, existed := c.files[n]
	c.mu.Unlock()
	if !existed && flag&os.O_CREATE != 0 && d.createErr != nil {
		if err := d.createErr(name); err != nil {
			return nil, pathErr("open", name, err)
		}
	}
	f, err := c.OpenFile(name, flag, perm)
	if err != nil || existed || flag&os.O_CREATE == 0 {
		return f, err
	}
	c.mu.Lock()
	ino := c.files[n]
	c.mu.Unlock()
	d.pending = append(d.pending, dirOp{kind: opCreate, dir: path.Dir(n), name: n, ino: ino})
	return f, nil
}

// Rename implements wal.FS.
func (d *DirFaultFS) Rename(oldname, newname string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	o, n := clean(oldname), clean(newname)
	c := d.CrashFS
	c.mu.Lock()
	ino := c.files[o]
	c.mu.Unlock()
	if err := c.Rename(oldname, newname); err != nil {
		return err
	}
	d.pending = append(d.pending, dirOp{kind: opRename, dir: path.Dir(n), name: n, from: o, ino: ino})
	return nil
}

// Remove implements wal.FS.
func (d *DirFaultFS) Remove(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := clean(name)
	c := d.CrashFS
	c.mu.Lock()
	isDir := c.dirs[n]
	c.mu.Unlock()
	if err := c.Remove(name); err != nil {
		return err
	}
	if isDir {
		d.pending = append(d.pending, dirOp{kind: opRemoveAll, dir: path.Dir(n), name: n, dirs: []string{n}})
	} else {
		d.pending = append(d.pending, dirOp{kind: opRemove, dir: path.Dir(n), name: n})
	}
	return nil
}

// RemoveAll implements wal.FS: the tree is gone at once, but comes back (with its durable
// files) if the crash loses the removal.
func (d *DirFaultFS) RemoveAll(p string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := clean(p)
	c := d.CrashFS
	op := dirOp{kind: opRemoveAll, dir: path.Dir(n), name: n, files: map[string]*inode{}}
	c.mu.Lock()
	for f, ino := range c.durable {
		if inTree(f, n) {
			op.files[f] = ino
		}
	}
	for dir := range c.dirs {
		if inTree(dir, n) && dir != "/" && dir != "." {
			op.dirs = append(op.dirs, dir)
		}
	}
	c.mu.Unlock()
	if err := c.RemoveAll(p); err != nil {
		return err
	}
	if len(op.files) > 0 || len(op.dirs) > 0 {
		d.pending = append(d.pending, op)
	}
	return nil
}

// MkdirAll implements wal.FS: each directory it creates is pending until its parent is synced.
func (d *DirFaultFS) MkdirAll(p string, perm fs.FileMode) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := clean(p)
	c := d.CrashFS
	var created []string
	c.mu.Lock()
	for dir := n; !c.dirs[dir]; dir = path.Dir(dir) {
		if _, isFile := c.files[dir]; isFile {
			break // CrashFS reports the error
		}
		created = append(created, dir)
		if dir == "/" || dir == "." {
			break
		}
	}
	c.mu.Unlock()
	if len(created) > 0 && d.createErr != nil {
		if err := d.createErr(p); err != nil {
			return pathErr("mkdir", p, err)
		}
	}
	if err := c.MkdirAll(p, perm); err != nil {
		return err
	}
	for i := len(created) - 1; i >= 0; i-- { // parents first
		d.pending = append(d.pending, dirOp{kind: opMkdir, dir: path.Dir(created[i]), name: created[i]})
	}
	return nil
}

// SyncDir implements wal.FS: on success, every pending change of dir's entries is durable.
func (d *DirFaultFS) SyncDir(dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dirSyncErr != nil {
		if err := d.dirSyncErr(dir); err != nil {
			d.dirSyncFail++
			return pathErr("syncdir", dir, err)
		}
	}
	if err := d.CrashFS.SyncDir(dir); err != nil {
		return err
	}
	n := clean(dir)
	kept := d.pending[:0]
	for _, op := range d.pending {
		if op.dir != n {
			kept = append(kept, op)
		}
	}
	clear(d.pending[len(kept):])
	d.pending = kept
	return nil
}

// OpenSyncer implements wal.FilesystemSyncer as CrashFS's does; a successful Sync also makes
// every pending namespace change durable, and the SetDirSyncFault function, called with the
// handle's directory, makes it fail as it makes SyncDir fail (nothing made durable).
func (d *DirFaultFS) OpenSyncer(dir string) (wal.Syncer, error) {
	sy, err := d.CrashFS.OpenSyncer(dir)
	if err != nil {
		return nil, err
	}
	return &dirFaultSyncer{d: d, s: sy.(*syncer)}, nil
}

type dirFaultSyncer struct {
	d *DirFaultFS
	s *syncer
}

func (f *dirFaultSyncer) Sync() error {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dirSyncErr != nil {
		if err := d.dirSyncErr(f.s.dir); err != nil {
			d.dirSyncFail++
			return pathErr("syncfs", f.s.dir, err)
		}
	}
	if err := f.s.Sync(); err != nil {
		return err
	}
	clear(d.pending)
	d.pending = d.pending[:0]
	return nil
}

func (f *dirFaultSyncer) Close() error { return nil }

// Crash is CrashFS.Crash, and every pending namespace change is lost.
func (d *DirFaultFS) Crash() { d.crash(nil, d.CrashFS.Crash) }

// CrashTear is CrashFS.CrashTear, and each pending namespace change survives with
// probability 1/2 (chosen with r).
func (d *DirFaultFS) CrashTear(r *rand.Rand) { d.crash(r, func() { d.CrashFS.CrashTear(r) }) }

// CrashReorder is CrashFS.CrashReorder, and each pending namespace change survives with
// probability 1/2 (chosen with r).
func (d *DirFaultFS) CrashReorder(r *rand.Rand) {
	d.crash(r, func() { d.CrashFS.CrashReorder(r) })
}

func (d *DirFaultFS) crash(r *rand.Rand, crashFiles func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.CrashFS
	// Decide, in order, which pending changes reached the disk and apply those to the durable
	// namespace; then CrashFS's crash rebuilds the namespace from it (and resets the
	// contents of every file in it to what survives).
	c.mu.Lock()
	for _, op := range d.pending {
		survived := r != nil && r.IntN(2) == 0
		switch op.kind {
		case opCreate, opRename:
			if !survived || !c.dirs[path.Dir(op.name)] {
				continue
			}
			if op.kind == opRename && c.durable[op.from] == op.ino {
				delete(c.durable, op.from)
			}
			c.durable[op.name] = op.ino
		case opRemove:
			if survived {
				delete(c.durable, op.name)
			}
		case opMkdir:
			if !survived {
				c.dropTreeLocked(op.name)
			}
		case opRemoveAll:
			if survived {
				continue // CrashFS removed it from the durable namespace already
			}
			for _, dir := range op.dirs {
				c.dirs[dir] = true
			}
			for f, ino := range op.files {
				if _, ok := c.durable[f]; !ok && c.dirs[path.Dir(f)] {
					c.durable[f] = ino
				}
			}
		}
	}
	c.mu.Unlock()
	d.pending = nil
	crashFiles()
}

// dropTreeLocked removes a directory tree from the durable namespace and the directories.
// Callers hold c.mu.
func (c *CrashFS) dropTreeLocked(n string) {
	for f := range c.durable {
		if inTree(f, n) {
			delete(c.durable, f)
		}
	}
	for dir := range c.dirs {
		if inTree(dir, n) && dir != "/" && dir != "." {
			delete(c.dirs, dir)
		}
	}
}

func inTree(x, root string) bool { return x == root || strings.HasPrefix(x, root+"/") }
