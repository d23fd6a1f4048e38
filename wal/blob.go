package wal

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
)

// Blobs: whole files kept next to a Store member's segments (doc.go, Replicated logs), for
// state too large for SetState (a replicated partition's raft snapshot data). A blob is named
// by a number chosen by the caller and written durably in one call; Reset, TruncateFrom and
// Retain leave blobs alone, Remove deletes them with the log's directory.

const (
	blobSuffix    = ".blob"
	blobTmpSuffix = ".blob.tmp"
	// MaxBlobBytes is the largest blob WriteBlob accepts.
	MaxBlobBytes = 1 << 30
)

func blobName(id uint64) string { return fmt.Sprintf("%020d%s", id, blobSuffix) }

// parseBlobName returns the id of a blob file name (ok false: not one).
func parseBlobName(name string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, blobSuffix)
	if !ok || len(stem) != baseDigits {
		return 0, false
	}
	id, err := strconv.ParseUint(stem, 10, 64)
	return id, err == nil
}

// WriteBlob stores data as the log's blob id, replacing any blob of that id, durably: when it
// returns without error, a crash leaves blob id with exactly data (and the log's directory
// entry durable up to the store root); a crash during the call leaves the blob id as it was
// (absent, or its previous contents). The data is written to a temporary file, fsynced and
// renamed over the blob, and the directory fsynced. A Store member only (ErrNotMember).
func (l *Log) WriteBlob(id uint64, data []byte) error {
	if l.store == nil {
		return ErrNotMember
	}
	if len(data) > MaxBlobBytes {
		return fmt.Errorf("wal: blob of %d bytes, at most %d", len(data), MaxBlobBytes)
	}
	l.blobMu.Lock()
	defer l.blobMu.Unlock()
	if err := l.usable(); err != nil {
		return err
	}
	if err := l.ensureDir(); err != nil {
		return err
	}
	final := filepath.Join(l.dir, blobName(id))
	tmp := final + ".tmp"
	f, err := l.fs.OpenFile(tmp, osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		return err
	}
	err = writeSyncClose(f, data, 0)
	if err == nil {
		err = l.fs.Rename(tmp, final)
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err == nil {
		err = l.syncParent()
	}
	if err != nil {
		return fmt.Errorf("wal: write blob %s: %w", final, err)
	}
	return nil
}

// lockBlobs takes blobMu for a blob operation of a usable Store member (ErrNotMember for a
// Log outside a Store); on an error blobMu is not held.
func (l *Log) lockBlobs() error {
	if l.store == nil {
		return ErrNotMember
	}
	l.blobMu.Lock()
	if err := l.usable(); err != nil {
		l.blobMu.Unlock()
		return err
	}
	return nil
}

// ReadBlob returns the contents of blob id (an error satisfying errors.Is(err,
// fs.ErrNotExist) if there is none).
func (l *Log) ReadBlob(id uint64) ([]byte, error) {
	if err := l.lockBlobs(); err != nil {
		return nil, err
	}
	defer l.blobMu.Unlock()
	f, err := l.fs.OpenFile(filepath.Join(l.dir, blobName(id)), osRDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > MaxBlobBytes {
		return nil, fmt.Errorf("wal: blob %d: %d bytes, at most %d", id, size, MaxBlobBytes)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// Blobs lists the ids of the log's blobs, ascending.
func (l *Log) Blobs() ([]uint64, error) {
	if err := l.lockBlobs(); err != nil {
		return nil, err
	}
	defer l.blobMu.Unlock()
	names, err := l.fs.ReadDir(l.dir)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, n := range names {
		if id, ok := parseBlobName(n); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil // ReadDir sorts names; ids are zero-padded
}

// RemoveBlobs deletes every blob whose id keep rejects, and temporary files of interrupted
// WriteBlob calls. Not durable by itself (a crash may bring a deleted blob back; callers
// delete again after the next open).
func (l *Log) RemoveBlobs(keep func(id uint64) bool) error {
	if err := l.lockBlobs(); err != nil {
		return err
	}
	defer l.blobMu.Unlock()
	names, err := l.fs.ReadDir(l.dir)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		id, ok := parseBlobName(n)
		if ok && keep(id) || !ok && !strings.HasSuffix(n, blobTmpSuffix) {
			continue
		}
		if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil && !isNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Commit returns once every record of this log so far (appends, truncations, resets, states)
// is durable in the journal: Store.Commit for one log (a shared group commit). A Store member
// only (ErrNotMember).
func (l *Log) Commit() error {
	if l.store == nil {
		return ErrNotMember
	}
	l.mu.Lock()
	if err := l.usableLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	lsn := l.lastLSN
	l.mu.Unlock()
	return l.store.syncTo(lsn)
}

// usable is nil unless the log is closed or failed.
func (l *Log) usable() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.usableLocked()
}

func (l *Log) usableLocked() error {
	switch {
	case l.closed:
		return ErrClosed
	case l.err != nil:
		return l.err
	}
	return nil
}
