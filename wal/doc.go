// Package wal is a Kafka-style per-partition segmented log, plus a node-wide commit journal
// (Store) that makes the appends of every partition durable with one fsync per group commit:
// the durable storage under a broker's partitions.
//
// # Model
//
// One *Log per partition directory, for reads and retention (decision: per-partition segment
// files rather than Rafka's single shared WAL with a virtual index, so that retention and
// topic deletion delete whole files and a fetch is a seek inside one partition's files). The
// cost of durability is made independent of the partition count by the Store (see Commit
// journal): partition files are written on the produce path but fsynced only in the
// background, and one shared journal is fsynced per group commit (TiKV raft-engine /
// CockroachDB / Redpanda style). A Log opened with Open (no Store) fsyncs its own files, as
// before (the broker's consumer-group offsets log is a member of a Store of its own). A Log is
// a sequence of segments;
// each segment is up to three files named by the segment's base offset, zero-padded to 20
// digits so names sort as integers (a Store member creates them late: see Commit journal):
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
//	     4    4 length       bytes after the 32-byte header (at most 1 GiB)
//	     8    1 version      1 (Append), 2 (AppendTagged), 3 (a hole: see Cleaning)
//	     9    1 flags        0
//	    10    2 reserved     0
//	    12    4 count        offsets the entry occupies (> 0)
//	    16    8 baseOffset   offset of the entry's first record
//	    24    8 maxTimestamp newest timestamp in the entry (ms; the caller's value)
//	    32    8 tag          version 2 only: the caller's tag (Batch.Tag); length counts it
//	 32/40    n data
//
// Entries follow each other with no padding; entry k+1's baseOffset is entry k's baseOffset +
// count. Format evolution: a new layout gets a new version byte. A reader that meets a version
// it does not know (with a valid CRC) fails with ErrUnsupportedVersion rather than guessing
// (Open too: it never cuts such an entry off as a torn tail), so an old binary neither misreads
// nor destroys newer data; a new binary keeps decoding every older version. Version 2 (a tagged
// entry) keeps version 1's 32-byte fixed part and puts its tag at the start of what length
// counts (decision: so a binary that knows only version 1 still verifies its CRC and refuses it
// as a newer format, instead of taking it for a torn write). A log without tagged entries is
// byte for byte what it was before version 2 existed; the two versions may be mixed in a log.
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
// use. Appends are buffered in memory (up to 1 MiB, in 64 KiB chunks after a first chunk
// that grows by doubling from 1 KiB: writebuf.go) and handed to the file at Sync (a Store
// member's: at checkpoints and Close instead), when the buffer fills, and when a Read reaches the active segment (decision: flush on read, not read through
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
// This section describes a standalone Log (Open). A Store member's Sync waits for the shared
// journal instead, and its files are fsynced by checkpoints (see Commit journal).
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
// After a failed fsync the active segment is also cut back to the last position an fsync made
// durable (Linux marks the failed pages clean: a reopen would otherwise read them from the page
// cache, fsync them "successfully" through a new handle and serve them as durable —
// "fsyncgate"). Reads keep working on what remains in the file (entries lost in a failed
// flush or cut are not returned, and not reported as corruption either); reopen the log to
// recover from what is on disk.
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
// (with regular Syncs) and one index interval after Close. Version 1 is written by a
// standalone Log, version 2 by a Store member (see Commit journal); both are read. Index
// points beyond it are not trusted even if they survived: a crash can leave unsynced pages
// written back out of order (a hole, then intact entries), and only a scan through every byte
// after the last durable position finds the hole. The scan stops at the first entry that is
// partial, fails its CRC or has the wrong offset. If that is at or past the recovery point,
// the file is truncated there (torn-tail recovery). If it is below the recovery point, the
// bytes there were fsynced and valid when the point was written: that is damage to durable
// data (bit rot), not a torn write, and Open fails with an error satisfying IsCorruption and
// changes nothing (decision: refuse to serve the partition rather than cut it and hand its
// offsets out again). A standalone Log only knows its durable point at its recovery point, so
// damage to synced entries past it (up to 16 MiB) is still indistinguishable from a torn tail
// and cut; a Store member knows it exactly (the journal). Recovered data is fsynced before
// Open returns, so SyncedOffset() == NextOffset() after Open. Stats().TruncatedBytes and
// Options.Logger report a cut.
//
// Damage that Open does not look at (inside a sealed segment, or in the active segment before
// the re-validated tail: media corruption, not a torn write) is found by the Read that meets
// it, which returns an error satisfying IsCorruption and never the damaged bytes. Entries from
// the damaged one up to the next index point are then unreadable (they can only be reached by
// walking through it); everything else stays readable. Nothing is deleted or rewritten.
//
// # Commit journal (Store)
//
// OpenStore(root) owns one segmented journal under root/commitlog/; Store.OpenLog(dir) opens a
// partition log in a directory under root as a member. A member's method set is the Log's:
//
//   - Append writes the entry into the partition's buffer (handed to its segment file, never
//     fsynced, when the buffer fills, on reads of the buffered tail, at a checkpoint and at
//     Close; not on Sync), and one journal record into the Store's in-memory buffer, under
//     the log lock (so a partition's records are in offset order in the journal).
//   - Sync(upTo) waits for the journal's group commit, leaving the partition's buffer
//     buffered (decision: the journal record is what makes the entry durable; handing every
//     partition's buffer to its file at every Sync cost one write per partition per commit;
//     the bytes buffered in all members together stay about as large as the journal written
//     since the last checkpoint, which the checkpoint trigger bounds, and 1 MiB per member): one
//     leader writes every buffered record of every partition and fsyncs the journal once
//     (two journal buffers alternate: appends fill one while the leader writes the other;
//     each is a list of 1 MiB chunks, writebuf.go, written one chunk per call and kept up to
//     64 MiB, so a busy Store stops allocating them and never copies them to grow them; an
//     idle one drops them),
//     with the Store lock released; callers arriving meanwhile wait and the next leader
//     covers them all. One fsync per commit however many partitions it covers
//     (StoreStats.Fsyncs counts them, StoreStats.Syncs the Sync calls).
//   - The checkpointer (one goroutine per Store, run every CheckpointInterval while anything
//     is dirty and when CheckpointBytes of journal were written, or 256 KiB per dirty log when
//     that is more, at most 256 MiB: a checkpoint costs fsyncs per dirty log, so with
//     thousands of partitions written a little each they are amortised over more journal;
//     Store.Checkpoint runs it by hand) takes the journal end C and the set of logs appended
//     since the last checkpoint, hands each one's buffer to its file (creating the segment
//     file, and a LazyDir member's directory, if this is the first time) and empties the
//     buffer (keeping it: see Bounded resources), commits the journal past their records,
//     fsyncs each log's active segment file (not its index files: they are hints, and Open
//     checks every index point it uses), writes its recovery point (version 2) at what it
//     fsynced (creating the file, and then fsyncing the log's directory, the first time), and
//     fsyncs the directories above members whose directory it created (each once, up to the
//     store root); then it writes the journal checkpoint C and deletes journal segments
//     wholly below C: two fsyncs per dirty log, plus one directory fsync per new log.
//   - A checkpoint of many logs (StoreOptions.SyncFSMinLogs, 64 by default) syncs the whole
//     filesystem instead, twice (syncfs(2) through the FS's FilesystemSyncer, on a descriptor
//     of the store root opened before recovery writes anything, so every writeback error
//     since then fails it): each log's segment data is first written back, eight files at a
//     time, without being made durable (sync_file_range(2), writeBacker), and its state file
//     written when it changed; the first sync makes those durable; each recovery point is
//     written; the second sync makes the recovery points and every new directory entry
//     durable. A recovery point is thus written only over durable bytes, as with the per-log
//     fsyncs; a failed write-back or sync fails the log (a sync: every log of the
//     checkpoint) and the Store (which bytes a failed sync made durable is unknown).
//     Decision (measured, BenchmarkKafkaScaleProduce at 1,000 partitions): per dirty log a
//     checkpoint cost about 130 us of CPU for the segment's fdatasync (a journal commit, as
//     the file grew), 50 for the recovery point's and 55 for the state file's (open, write,
//     fdatasync, close), every ~250 MB of journal; over 20M records the server spent 531-605
//     ns per record, with write-back and two syncs 448-504 (throughput 1.17-1.21 -> 1.22-1.41
//     M records/s, produce p99 unchanged). The write-back comes first because a sync alone,
//     handing the whole checkpoint's data to the disk at once, queued every journal fsync
//     behind it: produce p99 160-220 ms against 87-127 (at 390-412 ns per record, the
//     write-back then done by the kernel's flusher threads instead of the broker). The cost:
//     syncfs also writes other processes' dirty data on the same filesystem; set
//     SyncFSMinLogs < 0 where that is large. On a kernel before Linux 5.8, whose syncfs
//     reports no writeback error, OSFS offers no syncer and every checkpoint fsyncs each log
//     (a warning at OpenStore). TestStoreFilesystemSyncCheckpointOrder cuts the power during
//     each sync, with only the recovery points written; the crash property tests run a third
//     of their seeds this way, with failed syncs among their faults.
//   - Close commits the journal up to the log's records, then fsyncs the partition files and
//     writes the recovery point at the end (skipped when nothing changed since the last
//     checkpoint), so the journal may forget them.
//
// Invariant: every acknowledged entry of a member is either below its recovery point (fsynced
// in the partition), in a sealed segment (fsynced when it was sealed), or in the journal at or
// after the checkpoint. Hence, for a version-2 recovery point, an entry past it that the
// journal does not hold was never acknowledged.
//
// Journal segment files are named by the journal position (byte offset in the endless
// journal stream) of their first byte, 20 digits + ".journal"; the journal rolls to a new
// segment after a commit leaves the active one at least SegmentBytes (64 MiB) long, so every
// segment but the last was wholly fsynced. Record layout (big-endian):
//
//	offset size field
//	     0    4 crc          CRC-32C of bytes 4 .. size
//	     4    4 magic        0x574a4e4c ("WJNL")
//	     8    4 size         whole record, header included
//	    12    1 version      1
//	    13    1 kind         1 = entry, 2 = remove, 3 = tagged entry, 4 = truncate,
//	                         5 = reset, 6 = state (below)
//	    14    2 nameLength   n: the log's directory relative to the store root, slash-separated
//	    16    8 synced       journal position known durable when the record was appended
//	    24    8 baseOffset
//	    32    4 count
//	    36    4 reserved     0
//	    40    8 maxTimestamp
//	    48    n name
//	  48+n    8 tag          kind 3 only
//	     .    . data         the entry's bytes, as stamped (kind 6: the state)
//
// Kinds: 2 remove (Log.Remove; base, count, maxTimestamp 0, no data: replay drops the log's
// earlier records), 4 truncate (Log.TruncateFrom; base = the first offset removed; count,
// maxTimestamp 0, no data), 5 reset (Log.Reset; base = the new start offset), 6 state
// (Log.SetState; base, count, maxTimestamp 0; data = the state, at most MaxStateBytes). A
// binary that knows only kinds 1 and 2 refuses the others (ErrUnsupportedVersion).
//
// commitlog/checkpoint is a 24-byte file overwritten in place and fsynced: CRC-32C of bytes
// 4..24, version 1, 3 reserved bytes, the journal position replay starts at (8 bytes), 8
// reserved bytes. A damaged checkpoint means replaying (verifying) from the oldest segment.
//
// Record versions: 1 (earlier releases) and 2, which this release writes. Version 2 has the
// same layout and one more rule: a record's synced position is at or past the base of the
// segment it is written into. A record appended while a commit writes and fsyncs carries the
// position that commit makes durable (it reaches the file only after that commit succeeds), so
// the records appended during the commit that rolls the journal carry the new segment's base.
// Both versions are read; a binary that knows only version 1 refuses version 2
// (ErrUnsupportedVersion), so a downgrade after this release wrote its journal fails to open
// instead of misreading it.
//
// # Recycled segments
//
// A journal segment that a checkpoint leaves wholly below the journal checkpoint is not
// deleted but renamed to a spare file (<20 digits>.spare in commitlog/, at most two kept;
// segments shorter than SegmentBytes, rolled early as below, are deleted), and the next roll
// renames a spare to the new segment's name (the directory is fsynced before anything is
// written into it). A busy Store also gets one zero-filled spare per open: once a quarter of
// SegmentBytes (at most 4 MiB) is written into a segment that is a new file, the checkpointer
// writes SegmentBytes of zeros into a new spare and fsyncs it (a failure only costs the
// preallocation), and the next commit rolls to it. After that the spares are retired
// segments; a roll that finds none starts a new file and rolls again as soon as a
// checkpoint retires one. Decision (measured, ext4):
// writing over blocks a file already has costs about half the CPU of extending a file, and an
// fdatasync that has no size or block allocation to commit takes about half as long (~140
// against ~260 µs on this project's test machine), and every acks=all produce waits for one;
// RocksDB recycles its log files and etcd preallocates its WAL segments for the same reasons.
// Disk: up to two spares of SegmentBytes each beside the journal.
//
// Partition segments are not recycled (retention deletes them), but a busy log allocates its
// active segment's disk blocks ahead of its writes, 4 MiB at a time once the segment holds
// 4 MiB, without changing the file's size (fallocate FALLOC_FL_KEEP_SIZE; Log.reserveLocked),
// and frees what is left past the end when the segment is sealed, by truncating the file to
// its size (a hole punched past the end frees nothing on ext4), which also frees what an
// earlier run allocated past the end of a segment reopened after a restart. An append over
// allocated blocks costs about a third less CPU than one extending the file; a quiet log
// holds no block it has not written. Recovery and readers see only the file's size.
//
// A segment file may then be longer than its records: a recycled one still holds records of
// its earlier use after them, a preallocated one zeros. Recovery reads a segment that is not
// the last only up to the next segment's base (its end in the journal), and in the last one a
// version-2 record whose synced position lies below the segment's base is a leftover (every
// record of the segment carries at least the base, by the rule above): it ends the records as
// a damaged record would (torn tail, unless an intact record after it shows otherwise, which
// a leftover never does: its synced position is older still). Only segments this release
// wrote are ever recycled (OpenStore deletes the segments it replayed, which an earlier
// release may have written), so no version-1 leftover can follow the records.
//
// Recovery (OpenStore): read the records from the checkpoint on. A record that is partial or
// fails its CRC ends the journal: a torn tail if no intact record after it was appended when
// the journal was already durable past it, and corruption (OpenStore fails) if one was (the
// synced field, as etcd keeps the durable point in its WAL). Damage in a segment that is not
// the last is corruption. Records are grouped by log; records before a remove record of
// their log are dropped. A log whose directory is gone is recreated (MkdirDurable) if its
// records start at offset 0: a LazyDir member whose directory a crash lost before its first
// checkpoint (the journal then holds all of it). Otherwise it was removed (its directory
// deleted with its parent, as the broker deletes a topic) and its records are skipped; a log
// created and deleted without Log.Remove since the journal checkpoint comes back (the broker
// purges deleted topics' directories after OpenStore). Each other log is opened with its
// records: recovery of the active segment as above (torn tail cut past the recovery point,
// damage below it is corruption), then each record is verified (the log holds the same entry
// at its offset), re-appended (the log ends at its offset), or replaces damaged entries (the
// log holds different bytes at its offset past the recovery point: the log is cut there and
// the journal's entries appended). A record past the log's end is a gap the journal cannot
// fill: corruption. Then entries past both the recovery point and the last record are cut:
// they were written to the partition file but their journal record never became durable (a
// crash, or a failed journal fsync). Each replayed log is fsynced and gets a recovery point at
// its end; then OpenStore starts a fresh journal segment at the end, writes the checkpoint
// there and deletes the old segments. A log whose recovery point is version 1 (written by the
// per-partition layout of earlier releases, or damaged) is trusted as that layout was: its
// validated tail is kept (migration: the first open writes version 2). A member without a
// recovery point file was never checkpointed (its first checkpoint or Close creates it): the
// journal covers its active segment from the start, so anything there the journal does not
// hold is cut (a standalone log always has one, written by Open).
//
// Failures are fail-stop. A failed journal write or fsync makes the Store's error sticky:
// every later Append, Sync and OpenLog of every member fails with it, the checkpointer stops,
// and the active journal segment is truncated back to the last successful fsync (on Linux a
// failed fsync drops the dirty state of the failed pages, so a later reader or fsync would
// otherwise take the page cache's bytes for durable: "fsyncgate"). The partitions' bytes past
// that point are cut by the next OpenLog or OpenStore (they lie past the recovery point and
// the journal). Any failed write or fsync of a member's files fails the Store too (the
// journal must not forget records the partition does not hold durably); after a failed fsync
// of a partition's segment file, that file is cut back to its last checkpoint (its recovery
// point is rewritten to match), so an in-process reopen re-appends those entries from the
// journal instead of verifying the journal against page-cache bytes that never became durable.
// A commit in flight when the Store fails finishes first (what it fsynced is durable), and
// the journal is cut after it.
//
// A roll (sealing a member's segment, which fsyncs it) first commits the journal up to the
// log's last record (one shared journal fsync per segment; decision: a member's files never
// run ahead of its journal, so a crash always recovers the log, its truncations and its state
// as of one journal prefix, and no sealed segment can hold entries written over truncated ones
// whose truncation the journal lost).
//
// Retention and deletion: Retain deletes whole sealed segment files of a member as of a
// standalone log; records of deleted entries are skipped at replay. Remove journals a remove
// record and waits for it to be durable, then deletes the directory and fsyncs its parent; its
// records are skipped at replay and go with the next checkpoint. A removed log's directory name must not
// be reused while its records can remain in the journal (the broker's topic directories carry
// the topic id, so they never are).
//
// Every fsync of partition data happens in the checkpointer, at Close, when a segment is
// sealed (rolled), and at open after recovery changed something; none on the produce path.
// A member's files are created late (decision, measured: creating a file or directory cost
// 200-600 µs of kernel CPU on the 2-core test VM, more than a thousand record appends):
//
//   - its active segment's .log file at the first flush of its buffer (buffer full, a read
//     of the buffered tail, a checkpoint, Close; deferred.go), and nothing before;
//   - its index files once the active segment reaches 1 MiB, or when it is sealed (a smaller
//     active segment is scanned from its start by Open: at most 1 MiB);
//   - its recovery point file at its first checkpoint or Close, which also fsyncs the
//     directory (the segment file's entry with it);
//   - with Options.LazyDir (the broker's partitions), its directory at the first flush too,
//     its entry made durable by that first checkpoint or Close (every directory from the
//     parent up to the store root); without it, OpenLog creates the directory and fsyncs the
//     parent, shared by members created at the same time in one directory (a caller waits
//     for a parent fsync that began after its own mkdir; one caller leads it for all).
//
// Until its first checkpoint the journal holds every entry of a new member, so a crash that
// loses any of these files or directories is repaired by replay (TestStoreLazyFilesSurviveCrashes
// runs crashes on waltest.DirFaultFS, which loses and reorders namespace changes not fsynced).
// Creating a LazyDir member costs no file system operation but a ReadDir; opening a member
// that was closed cleanly or checkpointed costs no fsync.
//
// Resources: StoreOptions.MaxOpenFiles caps the descriptors of the Store and all its logs
// (default half the soft RLIMIT_NOFILE): every file is opened through a handle that keeps its
// descriptor only while it is among the most recently used, closes it beyond the cap and
// reopens it (without O_CREATE/O_TRUNC) at its next use; a handle in use (an fsync in flight)
// is never closed. Index memory of sealed segments is loaded on first use and dropped again by
// a checkpoint that finds the log cold (not appended to since the previous checkpoint); the
// active segment's index stays in memory. A member's write buffer is emptied by every
// checkpoint but kept while the log is written (decision: a partition written in one round is
// likely written in the next, and regrowing its buffer each round cost an allocation and a
// copy per doubling, the pool being emptied by the garbage collections in between; the memory
// kept is what the buffer held before the checkpoint; the buffer is a list of 64 KiB chunks
// past its first, so growing it never copies more than 64 KiB: writebuf.go). It is released,
// into a size-classed pool (1 KiB .. 1 MiB, bufpool.go) that the next growing buffer takes
// from, by the first
// checkpoint that finds the log cold, or by the checkpointer's next tick when nothing at all
// was written since the last checkpoint (Store.releaseIdleBufs): an idle member holds no
// write buffer from the second checkpoint (or checkpointer tick) after its last append. An idle member with small
// segments costs about 2.3 KB of heap and no goroutine, and holds descriptors only while they
// are among the most recently used (measured by TestStoreManyLogsBoundedResources). Decision, as Linux reports a writeback error to an fsync
// through a descriptor opened after it (since 4.16, for errors nobody has seen): closing a
// cold descriptor does not hide a write error from the checkpoint's fsync.
//
// # Replicated logs
//
// A replicated partition's log is its raft log (package broker/replica/raftstore): one tagged
// entry per raft entry (AppendTagged; the tag is the raft index), and a Store member has what
// raft storage needs besides appends, each made crash-safe by the journal:
//
//   - TruncateFrom(offset) removes the entries from an entry boundary on (raft overwriting an
//     uncommitted suffix). It journals a truncate record and cuts the active segment (and,
//     when the cut lies in an older segment, deletes the later segments and makes that one
//     active again). Like an Append it is durable at the next journal commit; a crash before
//     that may undo it, one after never does. Replay applies truncations in journal order with
//     the appends, and Store recovery drops the records of entries a later truncation removes
//     (and truncations a later, lower one supersedes) before replaying, so removed entries
//     never come back and the partition need not still hold them. Cuts below the recovery
//     point on disk, and cuts that delete segments, first wait for the journal commit and move
//     the recovery point down to the cut (so no crash can leave new bytes below a recovery
//     point that claims them durable); segments are deleted newest first, each durably (a
//     crash must find a contiguous run of segments). Rare: raft truncates only entries that
//     were never committed.
//   - Reset(nextOffset) empties the log, which then starts at nextOffset (a replica installing
//     a snapshot). It journals a reset record and waits for it to be durable, moves the
//     recovery point to the new start, deletes every segment oldest first (each durably), and
//     creates the new empty segment durably. Recovery drops the log's records before its last
//     reset (not its states) and redoes the reset, so an interrupted one completes.
//   - SetState(b) keeps a small blob (at most MaxStateBytes: raft's HardState, ConfState and
//     snapshot metadata), latest wins, durable by the same journal commit as the appends
//     before it. Checkpoints (and Close, and open after replay) copy a changed state into the
//     log's state file before the journal may forget its record: two 4 KiB slots written
//     alternately and fsynced, so a torn write leaves the previous state (slot layout in
//     repl.go: CRC-32C, version, sequence number, length, state; the valid slot with the
//     higher sequence number is current).
//   - Store.Commit makes everything appended, truncated, reset or SetState'd on any member
//     before the call durable: one journal fsync (group commit, shared with concurrent Commit
//     and Sync callers) however many logs; no partition file is fsynced. Log.Commit does the
//     same for one log's records (its states included; Sync(upTo) covers appends only).
//   - WriteBlob(id, data) keeps a file of any size next to the segments (a raft snapshot's
//     data, too large for SetState), named by the caller's id (20 digits + ".blob"), durably:
//     a temporary file (".blob.tmp") written and fsynced, renamed over the blob, the directory
//     fsynced (and its entry up to the store root, for a LazyDir member). A crash during the
//     call leaves the blob as it was; after it returns the blob is durable. ReadBlob, Blobs and
//     RemoveBlobs (not durable; it also deletes temporary files) complete the set. Reset,
//     TruncateFrom and retention leave blobs alone; Remove deletes them with the directory;
//     Open ignores them. The caller keeps the reference to its blob in its state and deletes
//     old blobs only once a commit made the new reference durable.
//   - Segments describes the segments; RetainBelow(offset) deletes the sealed segments whose
//     entries all lie below offset, oldest first, each durably (a replicated partition's
//     retention, which chooses its own bound). Like Retain it does not wait for the journal,
//     and records of deleted entries still in the journal are replayed after a crash when no
//     segment file at or above them is on disk (a log never checkpointed since): deleted
//     entries may come back then, never a gap.
//   - OffsetForTag(tag) finds the first entry whose tag is at least tag (tags must not
//     decrease along a log; untagged entries count as 0): a bisection over the segments'
//     first entries (their tags cached), then over the segment's index points (reading the
//     header at each), then a scan of one index interval.
//
// These need the journal, so a standalone Log refuses them (ErrNotMember). A lost LazyDir
// directory is recreated at replay when its log's first journal record is an entry at offset 0,
// a state or a reset (Reset makes the directory durable only after its record).
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
// # Cleaning
//
// CleanSegments (clean.go) rewrites sealed segments for log compaction; the caller (the
// broker's cleaner) decides per entry: drop it, keep it, or replace its data (same base
// offset, count and timestamp). Consecutive sealed segments whose sizes add up to at most
// SegmentBytes form a group, cleaned into one segment named by the group's base offset.
// Dropped entries leave holes: entries of version 3 with no data whose count covers the
// dropped offsets (decision: holes rather than gaps, so that every check that entry k+1
// starts where entry k ends, in reads, Open and recovery scans, holds unchanged for cleaned
// segments; a hole costs 32 bytes, consecutive drops share one). Read never returns a hole:
// a read from an offset inside one starts with the next entry. The active segment is never
// cleaned. A tagged entry (a raft log's: the broker's replicated partitions) is never dropped,
// only kept or rewritten with its tag (CleanSegments fails if fn drops one), so every raft
// index keeps its entry, offsets and tag. Protocol, per group:
//
//  1. Read the group's files through handles of its own (reads and appends go on) and write
//     <base>.log.cleaned, <base>.index.cleaned and <base>.timeindex.cleaned, fsynced. An I/O
//     throttle (CleanOptions.Throttle) sees every byte read and written. A group nothing
//     changed in is not written.
//  2. A Store member checkpoints the Store, so that the journal no longer holds records of
//     the group's entries (replay would find them changed).
//  3. Under the segment lock, if the group is still the log's: fsync the directory, rename
//     <base>.log.cleaned to <base>.log.swap and fsync the directory: the commit point.
//  4. Delete the group's other segments and the first segment's index files, fsync the
//     directory (a cleaned segment must never sit next to a segment whose offsets it
//     covers), rename the swap file over <base>.log and the index files into place, fsync.
//
// Open deletes every *.cleaned file (a cleaning that did not commit) and completes every
// <base>.log.swap: it scans the swap file to its end offset E, deletes every segment file
// whose base lies in (base, E) and the base segment's index files, fsyncs, renames the swap
// file over <base>.log (its index is rebuilt by the sealed-segment scan). TestCleanSegmentsCrash
// cuts the power at every operation of a cleaning (clean, torn and reordered crashes with lost
// directory operations) and checks each entry is as before or as cleaned, never lost.
// Remove waits for a cleaning in progress; Close does not (the swap then finds the log
// closed and deletes its files).
//
// # Filesystem
//
// All I/O goes through the FS interface: OSFS for the disk, waltest.CrashFS in tests, which
// keeps synced and unsynced bytes apart and can crash, tear the last writes and overwrites,
// flip bits, fail fsyncs the way Linux does, and fill the disk.
//
// # Concurrency
//
// Every method of Log and Store is safe for concurrent use. A standalone Log starts no
// goroutines; a Store starts one (the checkpointer, unless CheckpointInterval < 0), which
// Store.Close stops and waits for, and a checkpoint fsyncs up to 8 logs at once in
// short-lived goroutines it waits for. Lock order: Store.ckptMu (one checkpoint at a time) before
// Log.segMu (segment files' lifetime: readers share it, Retain/Close/Remove own it) before
// Log.mu (appends, offsets, the write buffer, group-commit state; a checkpoint pins a member's
// files with its syncing flag, as a group-commit leader does) before Store.mu (journal buffer,
// positions, commit state) before segment.idxMu (lazy index load of a sealed segment). The
// descriptor cap's lock is a leaf taken inside every file operation.
//
// # Observability
//
// Stats counts appends, group commits, segments, truncated bytes and the entries replayed or
// verified from the journal. StoreStats counts journal fsyncs and Sync calls (fsyncs per Sync),
// checkpoints and the partition fsyncs they did, journal bytes and open logs. With a Logger
// set, an fsync slower than SlowSync (1 s) is logged as a warning, and recovery notes cuts,
// replays and skipped records.
//
// # Files
//
// Log: log.go (type, Open, Close, offsets), recover.go (Open's recovery and the recovery-point
// file), append.go (Append, AppendTagged, write buffer, segment roll), repl.go (TruncateFrom,
// Reset, SetState and the state file, OffsetForTag), writebuf.go (write buffer), bufpool.go (its pool),
// commit.go (Sync, group commit, fsync failure), read.go (Read), timeindex.go
// (OffsetForTimestamp), retention.go (Retain), clean.go (CleanSegments and its recovery), member.go (a Store member's Sync, checkpoint
// steps and replay). Store: store.go (type, OpenStore, OpenLog, Close), store_recover.go
// (journal recovery and replay), store_commit.go (journal append and group commit),
// store_checkpoint.go (checkpointer and the checkpoint file), store_dirsync.go (shared
// directory fsyncs). Formats: entry.go (entry header), segment.go (segment files, index
// files, entry reader), journal.go (journal records). I/O: fs.go (FS, OSFS), deferred.go
// (segment files created by their first write), fdcache.go
// (descriptor cap).
package wal
