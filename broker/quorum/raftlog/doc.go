// Package raftlog is durable storage for one raft node (go.etcd.io/raft/v3): the log
// entries, the hard state (term, vote, commit), the newest snapshot and the node's raft id,
// in one directory on a wal.FS. A *Log implements raft.Storage with the answers of
// raft.MemoryStorage, plus the writes of the metadata quorum's Storage contract (Save,
// CreateSnapshot, Compact, Close) and RaftID. Every write is fsynced before it returns.
//
// # Memory
//
// Every live entry (from the compaction point to the last index) is held in memory, decoded,
// as MemoryStorage holds them: right for cluster metadata, whose log is small and compacted
// after every snapshot (CreateSnapshot compacts to index-KeepEntries). Memory is bounded by
// compaction, not by the package: a node that never compacts keeps its whole log in memory
// (and replays it at Open).
//
// # Files
//
//	raft-id                          the node's raft id (one record)
//	snapshot                         the newest snapshot (one record)
//	00000000000000000007.rlog        log segment, named by its sequence number (20 digits);
//	                                 normally only the newest one exists
//	*.tmp                            an atomic replace in progress (removed by Open)
//
// raft-id and snapshot are replaced atomically: written to name.tmp, fsynced, renamed over
// name, and the directory fsynced. On a new directory raft-id is written (durably) before
// any other file, so raft state never exists without the id it belongs to; a directory
// holding segments or a snapshot but no raft-id is refused (a wiped id must mean a wiped
// node, which rejoins under a new id: it never votes with a forgotten log).
//
// # Record layout
//
// All three kinds of file hold records, framed alike (integers big-endian):
//
//	offset size field
//	     0    4 crc       CRC-32C (Castagnoli) of bytes 4 .. size
//	     4    4 magic     0x524c4f47 ("RLOG")
//	     8    4 size      whole record, header included (at most 1 GiB)
//	    12    1 version   1
//	    13    1 kind      1 = batch (segments), 2 = snapshot, 3 = raft id
//	    14    2 reserved  0
//	    16    8 synced    bytes of this file known durable when the record was written
//	    24    . payload
//
// A raft-id payload is the id (u64, non-zero). A snapshot payload is a flags byte (1: the
// snapshot came with a Save, from the leader, and replaces the log) and the protobuf
// encoding of raftpb.Snapshot (metadata and data). A batch payload is one write of the log:
//
//	flags u8          1 reset, 2 compact, 4 hard state present, 8 snapshot mark present
//	index u64         \ if reset or compact: the entry before the first one kept, and its
//	term  u64         /  term
//	snapIndex u64     \ if mark: the snapshot a Save last reset the log to
//	snapTerm  u64     /
//	len u32, hs       if hard state: protobuf raftpb.HardState
//	count u32         then count × (len u32, protobuf raftpb.Entry), consecutive indexes
//
// A batch is applied as raft.MemoryStorage would apply it: a reset drops every entry (as
// ApplySnapshot), a compaction the entries up to index (as Compact); then the entries (as
// Append: those at or below the compaction point are ignored, and an entry with index i
// replaces the entries from i on, since raft overwrites a conflicting suffix); then the
// hard state. The mark is carried along (every base record repeats it) for recovery. A
// reader meeting an unknown version, kind or flag (in an intact record) fails rather than
// guess; indexes and terms beyond 2^62 are refused as damage.
//
// # Writes
//
// Save(hs, ents, snap) appends one batch record (entries and hard state together) and
// fsyncs the segment once: one fsync per Save, and a Save is atomic (a crash leaves all of it
// or none). A Save with a snapshot first replaces the snapshot file (flagged as from the
// leader), then writes a new segment whose base is reset to the snapshot and carries its
// mark (the snapshot replaced the log). Compact appends a compaction record (one fsync);
// CreateSnapshot replaces the snapshot file (two fsyncs: file and directory) and compacts.
// Close appends an empty record, so that after a clean Close every record has a later
// witness of its durability (see Recovery).
//
// Every segment starts with a base record: a reset batch holding the whole state (the
// compaction point, the hard state, every live entry), so a segment replays on its own. A
// write that would take the active segment past Options.SegmentBytes and past twice the
// encoded size of the live entries writes a new segment instead, whose base record is the
// state after the write (a roll: file fsync and directory fsync), and then removes the
// older segments. So disk use stays below SegmentBytes plus about twice the live entries,
// space freed by compaction is given back at the next roll, and each byte of live entries
// is rewritten about once per SegmentBytes (or live size) written.
//
// A failed write or fsync is sticky: that write and every later Save, Compact and
// CreateSnapshot fail with it, and the state served stays what it was before the failed
// write (except after a CreateSnapshot whose compaction failed: its snapshot was durable
// and is served). After a failed fsync Linux has marked the failed pages clean, so the segment is cut
// back to its last durable size at once: an in-process reopen reads only what is durable
// and never takes page-cache bytes that failed to reach the disk for acknowledged state
// ("fsyncgate", issue #14 item 6). A failed roll removes its new segment. When the outcome
// of a write is unknown (a failed directory fsync after a rename), the Log stops taking
// writes; a reopen finds either outcome, both consistent.
//
// BenchmarkSave (real disk, the development machine): a Save of one 100-byte entry with a
// hard state costs one fsync (about 0.9 ms there), of 64 entries about 1.02 fsyncs with
// the snapshots and rolls included.
//
// # Recovery
//
// Open first fsyncs the directory and each of its ancestors: a rename or creation whose
// directory fsync failed in an earlier Log of this process (or the directory's own
// creation) is in the namespace but might not survive a crash, and Open must serve only
// what is durable. It reads raft-id and snapshot (each must be one intact record: they were
// fsynced before they got their names, so damage is corruption), then the segments from
// the newest on, and replays the first one whose base record is intact. A newer segment
// without an intact base is a roll that did not complete (its base and the directory are fsynced before
// anything else is written to it and before an older segment is removed) and is removed;
// the oldest segment without an intact base is refused unless it is the first segment of
// the log (which holds the empty state).
//
// Inside a segment, replay stops at the first record that is partial or fails its CRC. That
// is a torn tail, cut (the file truncated there and fsynced), unless an intact record after
// it was written when the file was already durable past it (its synced field), which makes
// it damage to synced bytes: Open fails with an error satisfying IsCorruption and changes
// nothing (decision: refuse to open rather than forget acknowledged votes or entries, as
// wal does, issue #14 item 6). Each write is fsynced before the next is written, so every
// record but the last has such a witness; the last one has one after a clean Close (the
// empty record). Damage to the last record written before a crash cannot be told from a
// torn write (as in etcd's WAL and wal's journal): it is cut as a torn tail.
//
// Then the snapshot: a log whose mark is newer than the snapshot file (or at its index with
// another term) lost its snapshot: corruption. A snapshot file flagged as from the leader
// whose mark the log does not carry belongs to a Save whose log reset never became durable
// (the crash came between the snapshot file and the new segment); Open applies the reset
// and writes it (a roll), so that entries saved later are not dropped by the next replay.
// A crash in the middle of a Save with a snapshot therefore leaves the snapshot applied
// and the log reset, without the Save's entries and hard state; one in the middle of
// CreateSnapshot leaves the snapshot without the compaction. Both are states raft can go
// on from (MemoryStorage passes through them too).
//
// # Concurrency
//
// One Log per directory at a time (nothing locks the directory: the broker opens it once).
// All methods are safe for concurrent use. Writers are serialized (Log.wmu) and do their
// I/O without blocking readers: the state served is replaced only after the write is durable
// (Log.mu), and entries handed out are never modified (copy-on-write, as MemoryStorage).
// Lock order: wmu before mu. No goroutines.
//
// # Files of the package
//
// log.go (type, reads), write.go (Save, CreateSnapshot, Compact, Close, rolls, failures),
// open.go (Open, recovery), state.go (in-memory state and MemoryStorage semantics),
// record.go (record framing and batch codec).
package raftlog
