// Package waltest provides test helpers for package wal: CrashFS, an in-memory wal.FS that
// keeps track of what is durable and can simulate a crash.
//
// Durability model (close to a journaling filesystem with a write-back cache):
//
//   - A file's contents are durable up to its last File.Sync; writes and truncations after it
//     live only in the "page cache".
//
//   - Directory entries (creation, rename, removal of a file) become durable when the directory
//     is synced with SyncDir. Directories created with MkdirAll are durable at once.
//
//   - Crash discards everything that is not durable. CrashTear does the same but may keep part
//     of each file's unsynced appended tail, optionally ending in garbage: the torn last write of
//     a power cut.
//
//   - CrashTear also tears unsynced overwrites of synced bytes: each 512-byte block of the
//     overwritten range independently keeps its old or takes its new content.
//
//   - FlipBit damages bytes in place, synced ones included (media corruption).
//
//   - FailSyncs fails fsyncs the way Linux does: the failed writeback's bytes stay readable
//     but are no longer dirty, so a retried fsync succeeds without making them durable
//     ("fsyncgate"); SetSyncError instead fails every Sync and keeps the bytes dirty.
//
//   - SetWriteLimit fills the disk: a write that does not fit is short and fails with ENOSPC.
//
// Handles opened before a crash fail with ErrCrashed afterwards. CrashFS starts no goroutines.
//
// DirFaultFS adds the loss and reordering of directory operations not made durable by SyncDir.
// HookFS wraps a file system and calls a hook before every operation that changes something;
// CrashAt is such a hook that cuts the power just before the n-th operation and fails that
// operation and every later one (crash tests count a run's operations, then crash at each in
// turn), and HookFS.Exclusive injects a crash between operations from another goroutine.
package waltest
