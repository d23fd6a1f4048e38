package waltest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshkafka/meshkafka/wal"
)

// ErrCrashed is returned by file handles that were open when the filesystem crashed.
var ErrCrashed = errors.New("waltest: file handle from before a crash")

type inode struct {
	data      []byte // what reads see
	synced    []byte // what survives a crash
	dirty     bool   // data differs from synced at or after dirtyFrom
	dirtyFrom int64
	// [lostFrom, lostTo): bytes whose writeback failed (FailSyncs). Reads see them, but
	// no later Sync makes them durable unless they are written again.
	lostFrom, lostTo int64
}

func (ino *inode) touch(off int64) { ino.touchRange(off, off) }

// touchRange records a change of [off, end).
func (ino *inode) touchRange(off, end int64) {
	if !ino.dirty || off < ino.dirtyFrom {
		ino.dirtyFrom = off
	}
	ino.dirty = true
	if ino.lostFrom < ino.lostTo && off <= ino.lostFrom && end > ino.lostFrom {
		ino.lostFrom = min(end, ino.lostTo) // rewritten: dirty again
	}
}

// CrashFS is an in-memory wal.FS with crash simulation. The zero value is not usable; call
// NewCrashFS. All methods are safe for concurrent use.
type CrashFS struct {
	mu      sync.Mutex
	files   map[string]*inode // current namespace
	durable map[string]*inode // namespace as of the last SyncDir of each directory
	dirs    map[string]bool
	gen     int // bumped by every crash; handles carry the generation they were opened in

	syncs     int64
	dirSyncs  int64
	bytesRead int64
	bytesWrit int64
	syncErr   error
	writeErr  error
	syncDelay time.Duration

	failSyncs  int   // File.Sync calls still to fail Linux-style (FailSyncs)
	failErr    error // their error
	writeLimit int64 // bytes WriteAt may still write before ENOSPC; < 0: no limit
}

var (
	_ wal.FS               = (*CrashFS)(nil)
	_ wal.FilesystemSyncer = (*CrashFS)(nil)
)

// NewCrashFS returns an empty filesystem containing only the root directory.
func NewCrashFS() *CrashFS {
	return &CrashFS{
		files:   map[string]*inode{},
		durable: map[string]*inode{},
		dirs:    map[string]bool{"/": true, ".": true},

		writeLimit: -1,
	}
}

func clean(name string) string { return path.Clean(filepath.ToSlash(name)) }

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// OpenFile implements wal.FS.
func (c *CrashFS) OpenFile(name string, flag int, _ fs.FileMode) (wal.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := clean(name)
	if !c.dirs[path.Dir(n)] {
		return nil, pathErr("open", name, fs.ErrNotExist)
	}
	if c.dirs[n] {
		return nil, pathErr("open", name, errors.New("is a directory"))
	}
	ino, ok := c.files[n]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, fs.ErrExist)
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case !ok:
		ino = &inode{}
		c.files[n] = ino
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if flag&os.O_TRUNC != 0 && writable {
		ino.data = nil
	}
	return &file{fs: c, ino: ino, name: n, gen: c.gen, writable: writable}, nil
}

// Remove implements wal.FS.
func (c *CrashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := clean(name)
	if _, ok := c.files[n]; ok {
		delete(c.files, n)
		return nil
	}
	if c.dirs[n] {
		for f := range c.files {
			if path.Dir(f) == n {
				return pathErr("remove", name, errors.New("directory not empty"))
			}
		}
		delete(c.dirs, n)
		return nil
	}
	return pathErr("remove", name, fs.ErrNotExist)
}

// RemoveAll implements wal.FS. Removed files stay durable until their directory is synced;
// the directory tree itself goes at once.
func (c *CrashFS) RemoveAll(p string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := clean(p)
	in := func(x string) bool { return x == n || strings.HasPrefix(x, n+"/") }
	for f := range c.files {
		if in(f) {
			delete(c.files, f)
		}
	}
	for f := range c.durable {
		if in(f) {
			delete(c.durable, f)
		}
	}
	for d := range c.dirs {
		if in(d) && d != "/" && d != "." {
			delete(c.dirs, d)
		}
	}
	return nil
}

// Rename implements wal.FS.
func (c *CrashFS) Rename(oldname, newname string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, n := clean(oldname), clean(newname)
	ino, ok := c.files[o]
	if !ok {
		return pathErr("rename", oldname, fs.ErrNotExist)
	}
	if !c.dirs[path.Dir(n)] {
		return pathErr("rename", newname, fs.ErrNotExist)
	}
	delete(c.files, o)
	c.files[n] = ino
	return nil
}

// MkdirAll implements wal.FS.
func (c *CrashFS) MkdirAll(p string, _ fs.FileMode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := clean(p)
	for d := n; ; d = path.Dir(d) {
		if _, ok := c.files[d]; ok {
			return pathErr("mkdir", p, errors.New("not a directory"))
		}
		c.dirs[d] = true
		if d == "/" || d == "." {
			return nil
		}
	}
}

// ReadDir implements wal.FS.
func (c *CrashFS) ReadDir(dir string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := clean(dir)
	if !c.dirs[n] {
		return nil, pathErr("readdir", dir, fs.ErrNotExist)
	}
	var names []string
	for f := range c.files {
		if path.Dir(f) == n {
			names = append(names, path.Base(f))
		}
	}
	for d := range c.dirs {
		if d != n && path.Dir(d) == n {
			names = append(names, path.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// SyncDir implements wal.FS: the directory's current entries become durable.
func (c *CrashFS) SyncDir(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := clean(dir)
	if !c.dirs[n] {
		return pathErr("syncdir", dir, fs.ErrNotExist)
	}
	c.dirSyncs++
	for f := range c.durable {
		if path.Dir(f) == n {
			delete(c.durable, f)
		}
	}
	for f, ino := range c.files {
		if path.Dir(f) == n {
			c.durable[f] = ino
		}
	}
	return nil
}

// Crash simulates a power cut: every unsynced write, truncation and directory change is lost,
// and open handles stop working.
func (c *CrashFS) Crash() { c.crash(nil, false) }

// CrashTear is Crash, except that each file whose unsynced changes are appends keeps a random
// prefix of them (chosen with r); with probability 1/2 the last up to 64 kept bytes are then
// replaced by random garbage, as a torn sector would leave them. Synced bytes are never
// touched.
func (c *CrashFS) CrashTear(r *rand.Rand) { c.crash(r, false) }

// CrashReorder is Crash, except that each file whose unsynced changes are appends keeps a
// random length of them in which every 512-byte block independently survived or reads as
// zeros: the page cache wrote some pages back and not others, out of order. Synced bytes are
// never touched.
func (c *CrashFS) CrashReorder(r *rand.Rand) { c.crash(r, true) }

// CrashAny crashes fs in one of the three ways, chosen by r (Crash, CrashTear or
// CrashReorder, each as likely), for randomized crash tests. A function rather than a
// CrashFS method: promoted into DirFaultFS, such a method crashed the files only and kept
// every pending directory change.
func CrashAny(fs Crasher, r *rand.Rand) { CrashBy(fs, r.IntN(3), r) }

// Crasher is a file system that can lose power in the three ways of CrashFS: CrashFS and
// DirFaultFS.
type Crasher interface {
	Crash()
	CrashTear(r *rand.Rand)
	CrashReorder(r *rand.Rand)
}

// CrashBy crashes fs the way mode says: 0 Crash, 1 CrashTear, anything else CrashReorder (r
// choosing what survives), for crash tests that try each way in turn.
func CrashBy(fs Crasher, mode int, r *rand.Rand) {
	switch mode {
	case 0:
		fs.Crash()
	case 1:
		fs.CrashTear(r)
	default:
		fs.CrashReorder(r)
	}
}

func (c *CrashFS) crash(r *rand.Rand, reorder bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.files = map[string]*inode{}
	names := make([]string, 0, len(c.durable))
	for f := range c.durable {
		names = append(names, f)
	}
	sort.Strings(names) // deterministic use of r
	for _, f := range names {
		ino := c.durable[f]
		c.files[f] = ino
		kept := append([]byte(nil), ino.synced...)
		appended := ino.dirty && ino.dirtyFrom >= int64(len(ino.synced))
		if r != nil && ino.dirty && !appended {
			// An unsynced overwrite of synced bytes: each 512-byte block of the overwritten
			// range independently reached the disk or did not (a torn overwrite).
			lo := ino.dirtyFrom
			hi := min(int64(len(ino.data)), int64(len(kept)))
			for b := lo - lo%512; b < hi; b += 512 {
				if r.IntN(2) == 0 {
					from, to := max(b, lo), min(b+512, hi)
					copy(kept[from:to], ino.data[from:to])
				}
			}
		}
		if r != nil && appended && len(ino.data) > len(ino.synced) {
			tail := ino.data[len(ino.synced):]
			k := r.IntN(len(tail) + 1)
			torn := append([]byte(nil), tail[:k]...)
			if reorder {
				for b := 0; b < k; b += 512 {
					if r.IntN(2) == 0 {
						clear(torn[b:min(b+512, k)])
					}
				}
			} else if k > 0 && r.IntN(2) == 0 {
				g := 1 + r.IntN(min(k, 64))
				for i := k - g; i < k; i++ {
					torn[i] = byte(r.Uint32())
				}
			}
			kept = append(kept, torn...)
		}
		ino.data = kept
		ino.synced = append([]byte(nil), kept...)
		ino.dirty = false
		ino.lostFrom, ino.lostTo = 0, 0
	}
}

// FlipBit flips one bit of a file, in both its current and durable contents (media
// corruption). bit counts from the start of the file.
func (c *CrashFS) FlipBit(name string, bit int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ino, ok := c.files[clean(name)]
	if !ok {
		return pathErr("flipbit", name, fs.ErrNotExist)
	}
	i, m := bit/8, byte(1)<<(bit%8)
	if i < 0 || i >= int64(len(ino.data)) {
		return fmt.Errorf("waltest: flipbit %s: bit %d beyond %d bytes", name, bit, len(ino.data))
	}
	ino.data[i] ^= m
	if i < int64(len(ino.synced)) {
		ino.synced[i] ^= m
	}
	return nil
}

// ReadFile returns a copy of a file's current contents.
func (c *CrashFS) ReadFile(name string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ino, ok := c.files[clean(name)]
	if !ok {
		return nil, pathErr("readfile", name, fs.ErrNotExist)
	}
	return append([]byte(nil), ino.data...), nil
}

// WriteFile creates or replaces a file with durable contents (its directory must exist).
func (c *CrashFS) WriteFile(name string, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := clean(name)
	if !c.dirs[path.Dir(n)] {
		return pathErr("writefile", name, fs.ErrNotExist)
	}
	ino := &inode{data: append([]byte(nil), data...), synced: append([]byte(nil), data...)}
	c.files[n] = ino
	c.durable[n] = ino
	return nil
}

// Files lists every file path, sorted.
func (c *CrashFS) Files() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for f := range c.files {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// FilesWithSuffix lists the file paths (Files) that end in suffix, sorted.
func (c *CrashFS) FilesWithSuffix(suffix string) []string {
	var out []string
	for _, f := range c.Files() {
		if strings.HasSuffix(f, suffix) {
			out = append(out, f)
		}
	}
	return out
}

// LastWithSuffix is the last of FilesWithSuffix(suffix), or "" if there is none.
func (c *CrashFS) LastWithSuffix(suffix string) string {
	if fs := c.FilesWithSuffix(suffix); len(fs) > 0 {
		return fs[len(fs)-1]
	}
	return ""
}

// Stats are CrashFS's operation counters.
type Stats struct {
	Syncs        int64 // File.Sync calls
	DirSyncs     int64 // SyncDir calls
	BytesRead    int64 // bytes returned by File.ReadAt
	BytesWritten int64 // bytes accepted by File.WriteAt
}

// Stats returns the counters.
func (c *CrashFS) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Syncs: c.syncs, DirSyncs: c.dirSyncs, BytesRead: c.bytesRead, BytesWritten: c.bytesWrit}
}

// ResetStats zeroes the counters.
func (c *CrashFS) ResetStats() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncs, c.dirSyncs, c.bytesRead, c.bytesWrit = 0, 0, 0, 0
}

// SetSyncError makes every later File.Sync fail with err (nil: succeed again). A failed Sync
// makes nothing durable.
func (c *CrashFS) SetSyncError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncErr = err
}

// SetWriteError makes every later File.WriteAt fail with err without writing (nil: succeed
// again).
func (c *CrashFS) SetWriteError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeErr = err
}

// FailSyncs makes the next n File.Sync calls fail with err the way Linux fails an fsync
// ("fsyncgate"): the file's unsynced changes stay readable but are dropped from what is
// durable, and a later Sync succeeds without making them durable. Unlike SetSyncError, the
// failure does not persist: a caller that retries the fsync is told everything is durable.
func (c *CrashFS) FailSyncs(n int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failSyncs, c.failErr = n, err
}

// SetWriteLimit lets File.WriteAt write n more bytes in all; a write that does not fit
// writes what fits and fails with ENOSPC (a short write), and later writes fail with ENOSPC
// until SetWriteLimit(-1) lifts the limit.
func (c *CrashFS) SetWriteLimit(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeLimit = n
}

// SetSyncDelay makes every later File.Sync take at least d, like a real disk's fsync.
func (c *CrashFS) SetSyncDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncDelay = d
}

type file struct {
	fs       *CrashFS
	ino      *inode
	name     string
	gen      int
	writable bool
	closed   bool
}

func (f *file) check(op string) error {
	switch {
	case f.closed:
		return pathErr(op, f.name, fs.ErrClosed)
	case f.gen != f.fs.gen:
		return pathErr(op, f.name, ErrCrashed)
	}
	return nil
}

func (f *file) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("read", f.name, errors.New("negative offset"))
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	f.fs.bytesRead += int64(n)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *file) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if !f.writable {
		return 0, pathErr("write", f.name, errors.New("file not open for writing"))
	}
	if f.fs.writeErr != nil {
		return 0, pathErr("write", f.name, f.fs.writeErr)
	}
	if off < 0 {
		return 0, pathErr("write", f.name, errors.New("negative offset"))
	}
	var short error
	if f.fs.writeLimit >= 0 && int64(len(p)) > f.fs.writeLimit {
		// The disk fills up: a short write of what fits, then ENOSPC.
		p, short = p[:f.fs.writeLimit], pathErr("write", f.name, syscall.ENOSPC)
	}
	if f.fs.writeLimit >= 0 {
		f.fs.writeLimit -= int64(len(p))
	}
	if short != nil && len(p) == 0 {
		return 0, short
	}
	end := off + int64(len(p))
	if end > int64(len(f.ino.data)) {
		if end <= int64(cap(f.ino.data)) {
			f.ino.data = f.ino.data[:end]
		} else {
			nd := make([]byte, end, max(end, 2*int64(cap(f.ino.data))))
			copy(nd, f.ino.data)
			f.ino.data = nd
		}
	}
	copy(f.ino.data[off:], p)
	f.ino.touchRange(off, end)
	f.fs.bytesWrit += int64(len(p))
	return len(p), short
}

func (f *file) Sync() error {
	f.fs.mu.Lock()
	d := f.fs.syncDelay
	f.fs.mu.Unlock()
	if d > 0 {
		time.Sleep(d) // a disk's fsync latency; taken without holding the filesystem lock
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("sync"); err != nil {
		return err
	}
	f.fs.syncs++
	if f.fs.syncErr != nil {
		return pathErr("sync", f.name, f.fs.syncErr)
	}
	if f.fs.failSyncs > 0 {
		// Linux: the failed writeback's pages are marked clean. Reads still see the new
		// bytes, but they are not durable, and the next fsync has nothing to write.
		f.fs.failSyncs--
		f.ino.lose()
		return pathErr("sync", f.name, f.fs.failErr)
	}
	f.ino.sync()
	return nil
}

// lose is a failed writeback of the inode's dirty bytes (FailSyncs).
func (ino *inode) lose() {
	if ino.dirty {
		lo := ino.dirtyFrom
		if ino.lostFrom < ino.lostTo {
			lo = min(lo, ino.lostFrom)
		}
		ino.lostFrom, ino.lostTo = lo, max(int64(len(ino.data)), ino.lostTo)
	}
	ino.dirty = false
}

// sync makes the inode's dirty bytes durable.
func (ino *inode) sync() {
	if !ino.dirty {
		return
	}
	// Copy only what changed since the last Sync (appends make this cheap).
	old := ino.synced
	from := min(ino.dirtyFrom, int64(len(ino.synced)), int64(len(ino.data)))
	if ino.lostFrom < ino.lostTo {
		old = append([]byte(nil), old...)
		from = min(from, ino.lostFrom)
	}
	ino.synced = append(ino.synced[:from], ino.data[from:]...)
	// Failed-writeback bytes not written since stay as the disk had them.
	for i := max(ino.lostFrom, from); i < min(ino.lostTo, int64(len(ino.synced))); i++ {
		if i < int64(len(old)) {
			ino.synced[i] = old[i]
		} else {
			ino.synced[i] = 0
		}
	}
	ino.lostFrom, ino.lostTo = 0, 0
	ino.dirty = false
}

// OpenSyncer implements wal.FilesystemSyncer: the handle's Sync is syncfs(2) on the whole
// CrashFS. It makes every file's bytes and the whole namespace durable; SetSyncError,
// FailSyncs (one Sync consumes one failure, and every dirty file's writeback fails: which
// bytes a failed syncfs wrote is unknown, this takes the worst case) and SetSyncDelay apply to
// it as to a File's Sync. A handle from before a crash fails with ErrCrashed.
func (c *CrashFS) OpenSyncer(dir string) (wal.Syncer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirs[clean(dir)] {
		return nil, pathErr("open", dir, fs.ErrNotExist)
	}
	return &syncer{fs: c, dir: dir, gen: c.gen}, nil
}

type syncer struct {
	fs  *CrashFS
	dir string
	gen int
}

func (s *syncer) Sync() error {
	c := s.fs
	c.mu.Lock()
	d := c.syncDelay
	c.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.gen != c.gen {
		return pathErr("syncfs", s.dir, ErrCrashed)
	}
	c.syncs++
	if c.syncErr != nil {
		return pathErr("syncfs", s.dir, c.syncErr)
	}
	if c.failSyncs > 0 {
		c.failSyncs--
		for _, ino := range c.files {
			ino.lose()
		}
		return pathErr("syncfs", s.dir, c.failErr)
	}
	for _, ino := range c.files {
		ino.sync()
	}
	c.dirSyncs++
	c.durable = maps.Clone(c.files)
	return nil
}

func (s *syncer) Close() error { return nil }

// SyncWhere makes durable the current contents of the files whose names keep accepts, and
// their directory entries, and nothing else: the part of a writeback (a syncfs, the
// kernel's flusher) that reached the disk before a power cut. Crash after it.
func (c *CrashFS) SyncWhere(keep func(name string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, ino := range c.files {
		if keep(name) {
			ino.sync()
			c.durable[name] = ino
		}
	}
}

// Reopen opens the same file again for the same access, as reopening it by name would, except
// that a handle from before a crash fails with ErrCrashed (a process does not outlive its
// power cut). Used by wal's descriptor cap to reopen files it closed.
func (f *file) Reopen() (wal.File, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.gen != f.fs.gen {
		return nil, pathErr("reopen", f.name, ErrCrashed)
	}
	ino, ok := f.fs.files[f.name]
	if !ok {
		return nil, pathErr("reopen", f.name, fs.ErrNotExist)
	}
	return &file{fs: f.fs, ino: ino, name: f.name, gen: f.gen, writable: f.writable}, nil
}

func (f *file) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("truncate"); err != nil {
		return err
	}
	if !f.writable {
		return pathErr("truncate", f.name, errors.New("file not open for writing"))
	}
	if size < 0 {
		return pathErr("truncate", f.name, errors.New("negative size"))
	}
	f.ino.touch(min(size, int64(len(f.ino.data))))
	f.ino.lostTo = min(f.ino.lostTo, size)
	if size <= int64(len(f.ino.data)) {
		// Copy so that a later extension does not resurrect the cut bytes from the array.
		f.ino.data = append([]byte(nil), f.ino.data[:size]...)
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	return nil
}

func (f *file) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}

func (f *file) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	f.closed = true
	return nil
}
