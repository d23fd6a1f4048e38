// Package raftstore is the raft storage (replica.Storage: etcd raft's raft.Storage plus
// Append, SetHardState, ApplySnapshot) of one replicated partition, kept in the partition's
// wal.Log: the log IS the raft log, so a record's bytes are written once per replica.
//
// # Entries
//
// One wal entry per raft entry, in raft order, tagged with the raft index (wal.AppendTagged;
// the index of each entry is its wal tag, and wal.Log.OffsetForTag finds an entry by index).
//
//   - A normal entry with data is the produce payload (one or more Kafka RecordBatch v2 back
//     to back, as the broker proposed it), stored byte for byte except two fields outside the
//     batch CRC: Append writes the entry's raft term into every batch's partitionLeaderEpoch
//     (as Kafka's broker does; the term of a stored entry is read back from there), and the
//     broker's wal Stamp writes each batch's baseOffset. The wal entry's count is the record
//     count and its max timestamp the payload's (Options.Describe). So the raft entry data that
//     Entries returns for a data entry has its baseOffset and partitionLeaderEpoch fields
//     stamped: identical on every replica, since every replica stores the same entries at the
//     same offsets and terms (decision: stamping in place rather than copying the payload; raft
//     never looks into entry data).
//
//   - An empty normal entry (the no-op a new leader proposes) and a conf change are stored as
//     one Kafka control batch each, occupying one offset like a transaction marker, so every
//     Kafka client skips it. Its bytes (RecordBatch v2, big-endian):
//
//     baseOffset 0 (stamped by the broker), batchLength, partitionLeaderEpoch = term, magic 2,
//     crc (CRC-32C of attributes..end), attributes 0x0020 (control only), lastOffsetDelta 0,
//     baseTimestamp -1, maxTimestamp -1, producerId -1, producerEpoch -1, baseSequence -1,
//     recordCount 1, then one record: length, attributes 0, timestampDelta 0, offsetDelta 0,
//     key length 4, key = version 0 (int16) + type (int16), value length, value, 0 headers
//     (lengths as zigzag varints). Types (ours, far from Kafka's 0 abort / 1 commit):
//     0x7f01 no-op (no value), 0x7f02 EntryConfChange, 0x7f03 EntryConfChangeV2 (value: the
//     entry's raftpb bytes), 0x7f04 application entry (value: its payload). Its wal max
//     timestamp is -1.
//
//   - An application entry is a normal entry whose data is AppEntry(payload): twelve 0xff
//     bytes (a baseOffset and batchLength of -1, which no record batch has) then a small
//     payload the application applies on every replica (the broker's DeleteRecords log start).
//     It is stored as a 0x7f04 control batch and read back as the same data (AppPayload).
//
// Kafka offsets are therefore contiguous except one offset per leader change and per
// membership change, as with transaction markers. A data payload must not start with a
// control batch (Append refuses it; the broker refuses client-produced control batches).
// Terms must fit Kafka's int32 leader epoch.
//
// Entries rebuilds exactly the raft entries appended (Type, Term, Index, Data, with the
// stamps above); it reads the log (wal.Log.Read) from the entry's offset. The broker's log
// cleaner (cleanup.policy=compact) may rewrite a committed data entry's batches in place
// (records removed, batch headers and the tagged wal entry kept: wal.Log.CleanSegments):
// Entries then returns the cleaned data, with the same index, term and offsets.
//
// # State
//
// The HardState, the newest snapshot's metadata and the compaction point are the log's state
// (wal.Log.SetState: made durable by the same journal commit as the appends, kept across
// checkpoints). Layout: version 2, flags (1: installing a snapshot), uvarint-length-prefixed
// protobuf HardState, uvarint snapshot index and term, varint offset after the snapshot,
// uvarint-length-prefixed protobuf ConfState (the snapshot's), uvarint-length-prefixed
// snapshot data kept inline (always empty in version 2; version 1 states, still read, kept the
// application's data here, which bounded it to a few KiB), uvarint compaction index and term,
// then the reference to the blob holding the application's snapshot data: uvarint blob id (0:
// none; else the snapshot index), uvarint length, CRC-32C (4 bytes big-endian). It must fit
// wal.MaxStateBytes.
//
// # Snapshots, compaction, retention
//
// A partition snapshot is metadata only: {index, term, ConfState, the Kafka offset the log
// continues at} plus the application's data (CreateSnapshot; the broker puts its producer
// state and DeleteRecords log start there). The application's data has no size bound: it is
// kept in a blob of the log (wal.Log.WriteBlob, named by the snapshot index, written durably:
// temporary file, fsync, rename, directory fsync) before the state that refers to it is set,
// so a crash leaves either the old state with its blob or the new one with its blob. An old
// blob is deleted only once no durable state can refer to it: CreateSnapshot waits for one
// journal commit (wal.Log.Commit) before deleting the previous snapshot's blob, ApplySnapshot
// after the reset (which commits), Open deletes every blob but the current one. Open checks
// the current blob against its length and CRC (ErrBadSnapshotData: the partition does not
// open). Snapshot() reads the blob; Snapshot().Data is the offset (version byte + 8 bytes)
// followed by the application's data; SnapshotData splits it. A blob that cannot be read
// there makes the Store's error sticky and answers raft.ErrSnapshotTemporarilyUnavailable
// (raft would panic on any other error; the next write fails and the engine stops).
// ApplySnapshot writes the blob, records the snapshot (marked as installing), resets the log
// to start empty at that offset (wal.Log.Reset), and clears the mark: Open finishes an
// install a crash interrupted. Compact(i) moves FirstIndex to i+1 (Term(i) stays) and must not
// pass the newest snapshot (ErrNotSnapshotted). Deleting segments (wal retention) moves
// FirstIndex up too, to the entry at the log's new start offset; the term of the entry before
// it is then gone (Term answers ErrCompacted). Decision: retention must not delete entries
// after the newest snapshot's index (a follower behind them could only be sent that snapshot,
// then still miss them): snapshot first, then retain below its offset; and the snapshot is
// made at the retention point, not above (the broker's replicated_retention.go), so a
// follower installing it starts its log where this one's starts.
//
// A snapshot below the applied index needs the membership in force at its index: the Store
// implements replica.ConfStateSaver and keeps (in memory) every membership the engine saved
// since the newest snapshot; CreateSnapshot with a nil ConfState takes the one in force at its
// index from them (ErrUnknownConfState if it cannot tell). Not persisted: on start the engine
// applies, and saves, every membership change after the snapshot again.
//
// # Durability
//
// Nothing is fsynced by this package: Append, SetHardState, ApplySnapshot's state are durable
// once the node's wal.Store commits (Store.Commit: the engine's Config.Sync), one fsync for
// every group. ApplySnapshot's reset and a truncation below what a checkpoint made durable
// wait for a journal commit themselves (wal.Log.Reset, TruncateFrom).
//
// # Offsets
//
// Offsets(index) and IndexForOffset(offset) map between raft indexes and the Kafka offsets an
// entry occupies, for every entry the log holds (entries behind Compact included: compaction
// is raft's view, the records stay until retention deletes their segments).
//
// # Memory
//
// A Store keeps the offset and term of up to 16384 recent entries (those appended since Open,
// and the last one): Term, Offsets and Entries of older entries look them up in the log
// (wal.Log.OffsetForTag: a bisection over segment and index points) and read one entry. It
// also keeps the newest appended entries themselves, so raft reading freshly appended entries
// back to apply or send them reads no file: every entry above the applied index the engine
// last reported (Applied, replica.ApplyObserver), up to 16 MiB and 16384 entries, and of the
// applied ones the newest within 256 KiB and 512 entries. With only the latter bound (before
// session 8) a leader pipelining produce batches of a few hundred KiB read each one back from
// its segment file (CRC check, a fresh buffer) to apply it: 6% of an RF=3 broker's CPU in
// BenchmarkReplProduce.
package raftstore
