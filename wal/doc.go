// Package wal is a Kafka-style per-partition segmented log: the durable storage under a
// broker's partitions.
//
// # Model
//
// One *Log per partition directory (decision: per-partition logs rather than Rafka's single
// shared WAL, so that retention deletes whole segment files and a fetch is a seek inside one
// partition's files). A Log is a sequence of segments; each segment is three files named by
// the segment's base offset, zero-padded to 20 digits so names sort as integers:
//
//	00000000000000000000.log        entries
//	00000000000000000000.index      sparse offset index
//	00000000000000000000.timeindex  time index (parallel to .index)
//	00000000000000004711.log        ... the newest segment is the active one
//	recovery-point                  where Open may start trusting the active segment
//
// Append writes one entry, which occupies count consecutive offsets (a Kafka record batch of
// count records); the WAL never interprets the entry's bytes (Options.Stamp lets the broker
// write the assigned base offset into them).
//
// # Entry layout (.log)
//
// All integers big-endian.
//
//	offset size field
//	     0    4 crc          CRC-32C (Castagnoli) of bytes 4 .. 32+length
//	     4    4 length       length of data in bytes (at most 1 GiB)
//	     8    1 version      1
//	     9    1 flags        0
//	    10    2 reserved     0
//	    12    4 count        offsets the entry occupies (> 0)
//	    16    8 baseOffset   offset of the entry's first record
//	    24    8 maxTimestamp newest timestamp in the entry (ms; the caller's value)
//	    32    n data
//
// Entries follow each other with no padding; entry k+1's baseOffset is entry k's baseOffset +
// count. Format evolution: a new layout gets a new version byte. A reader that meets a version
// it does not know (with a valid CRC) fails with ErrUnsupportedVersion rather than guessing
// (Open too: it never cuts such an entry off as a torn tail), so an old binary neither misreads
// nor destroys newer data; a new binary keeps decoding every older version.
//
// # Index layout (.index, .timeindex)
//
// An index point is added when an entry starts at least IndexIntervalBytes after the previous
// point (the segment start counts as an implicit point at position 0). Each point is stored in
// both files, at the same entry number:
//
//	.index      8 bytes: relOffset u32 (baseOffset - segment base), position u32 (in .log)
//	.timeindex 12 bytes: maxTimestampBefore i64, relOffset u32
//
// maxTimestampBefore is the newest timestamp of all entries before that position in the segment
// (math.MinInt64 if none), so the column never decreases. When a segment is sealed (a new
// segment is rolled) one last point is written whose position is the segment size and whose
// relOffset is the segment's end: the end marker, which carries the segment's size, end offset
// and newest timestamp. Segments therefore stay below 4 GiB (SegmentBytes <= 2 GiB, entries
// <= 1 GiB) and below 2^32 offsets (a roll happens before that).
//
// Index files are hints: every entry read is checked (CRC, expected offset), an index point
// that does not land on a valid entry is ignored, and a read that fails from an index point
// is retried with a scan from the segment start.
//
// # Reads
//
// Read finds the segment by binary search over base offsets, the start position by binary
// search over the segment's index, and scans at most one index interval to the wanted entry,
// using positional reads (pread) of whole windows. Sealed segments' indexes are loaded on first
// use. Appends are buffered in memory (1 MiB) and handed to the file at Sync, when the buffer
// fills, and when a Read reaches the active segment (decision: flush on read, not read through
// the buffer), so an entry is visible to Read as soon as Append returns. An entry of 64 KiB or
// more skips the buffer: Append flushes what is buffered and writes it to the file directly
// (decision: for large entries the copy costs more than the syscalls batching would save).
// ReadInto reads into memory the caller supplies (the broker pools its fetch buffers).
//
// maxBytes in Read counts entry data bytes (not framing); the first entry is returned even if
// it alone exceeds maxBytes (KIP-74). A Read may continue across segment boundaries.
//
// # Durability and group commit
//
// Append never waits for the disk. Sync(upTo) returns once every offset below upTo is durable.
// One caller at a time is the leader: it flushes the buffer and fsyncs the active segment with
// the log lock released, so appends continue; callers arriving meanwhile wait, and when the
// fsync completes one of them leads the next fsync, which covers all of them. N concurrent
// producers thus share about one fsync per fsync latency, not one each. Once the active
// segment has grown by 16 MiB since the last recovery point, the leader also fsyncs the index
// files and writes a new recovery point (see Recovery); index files are otherwise fsynced only
// when a segment is sealed and at Close.
//
// A failed write or fsync is sticky: the state of the page cache is unknown after a failed
// fsync, so the Log refuses further Appends and Syncs with that error, and Close returns it.
// Reads keep working on what reached the file (entries lost in a failed flush are not
// returned, and not reported as corruption either); reopen the log to recover from what is on
// disk.
//
// Rolling a segment fsyncs the old segment's three files, creates the new segment's files and
// fsyncs the directory, all under the log lock. New empty segment files are created in place
// rather than under a temporary name: an empty file has no content that could be half-written,
// and a crash before the directory fsync just leaves the previous segment active.
//
// # Recovery
//
// Open lists the directory, deletes index files whose .log is gone (an interrupted deletion),
// and for each sealed segment reads only the last point of its two index files (20 bytes):
// the end marker gives its size, end offset and newest timestamp. A sealed segment whose marker
// is missing or disagrees with its file size or the next segment's base is scanned once and
// its index rewritten; anything invalid inside a sealed segment is corruption (ErrCorrupt),
// since it was fsynced before it was sealed.
//
// The active segment is re-validated from a trusted start: the last index point at or below
// the recovery point that still lands on a valid entry (segment start if there is none). The
// recovery point is a 24-byte file, overwritten in place and fsynced, recording a position in
// the active segment below which everything was fsynced (and the index points too):
//
//	offset size field
//	     0    4 crc       CRC-32C of bytes 4..24 (a damaged file just means a longer scan)
//	     4    1 version   1
//	     5    3 reserved  0
//	     8    8 base      base offset of the segment it refers to
//	    16    8 position  bytes of that segment below this are durable
//
// It is written by every group commit that finds the log 16 MiB past the previous one, by Open
// (after recovery) and by Close, so the re-validated tail is at most ~16 MiB after a crash
// (with regular Syncs) and one index interval after Close. Index points beyond it are not
// trusted even if they survived: a crash can leave unsynced pages written back out of order
// (a hole, then intact entries), and only a scan through every byte after the last durable
// position finds the hole. The scan stops at the first entry that is partial, fails its CRC or
// has the wrong offset, and the file is truncated there (torn-tail recovery); nothing after
// that point was reported durable by Sync. Recovered data is fsynced before
// Open returns, so SyncedOffset() == NextOffset() after Open. Stats().TruncatedBytes and
// Options.Logger report a cut.
//
// Damage that Open does not look at (inside a sealed segment, or in the active segment before
// the re-validated tail: media corruption, not a torn write) is found by the Read that meets
// it, which returns an error satisfying IsCorruption and never the damaged bytes. Entries from
// the damaged one up to the next index point are then unreadable (they can only be reached by
// walking through it); everything else stays readable. Nothing is deleted or rewritten.
//
// # Time lookups
//
// OffsetForTimestamp skips segments whose newest timestamp is older than the target, then
// binary-searches the time index for the first point whose maxTimestampBefore reaches the
// target and scans from the point before it, so the scan is bounded by about one index
// interval when timestamps grow with offsets (and by the segment otherwise).
//
// # Retention
//
// Retain deletes whole sealed segments from the oldest on: by time while the segment's newest
// timestamp is older than now - retention.ms, and by size while the log minus the oldest
// segment is still at least retention.bytes (Kafka's rule). The active segment is never
// deleted. StartOffset is the base of the oldest remaining segment.
//
// # Filesystem
//
// All I/O goes through the FS interface: OSFS for the disk, waltest.CrashFS in tests, which
// keeps synced and unsynced bytes apart and can crash, tear the last write, or flip bits.
//
// # Concurrency
//
// Every method of Log is safe for concurrent use. The package starts no goroutines. Lock order:
// Log.segMu (segment files' lifetime: readers share it, Retain/Close/Remove own it) before
// Log.mu (appends, offsets, the write buffer, group-commit state) before segment.idxMu (lazy
// index load of a sealed segment).
//
// # Observability
//
// Stats counts appends, group commits, segments and truncated bytes. With Options.Logger set,
// an fsync slower than SlowSync (1 s) is logged as a warning.
package wal
