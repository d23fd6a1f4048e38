// Package broker keeps Kafka topics: partitions as per-partition logs joined to one node-wide
// commit journal (package wal), offsets, produce/fetch/list-offsets semantics, the durable topic registry and topic
// administration. It answers the ops of package brokerop; the gateway (Kafka wire) and the
// mesh carrier call it and it knows neither.
//
//	b, err := broker.Open(broker.Config{Dir: "./data", DefaultPartitions: 1})
//	defer b.Close()
//	resp, err := b.Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: ...})
//
// # Storage
//
//	Dir/topics.registry                     cluster id + topics (names, ids, partition counts, configs)
//	Dir/commitlog/                          the commit journal (wal.Store) every partition log writes through
//	Dir/topics/<name>-<topic id hex>/<p>/   one wal.Log per partition, opened through the Store
//	Dir/producer_ids                        producer id counter (InitProducerID; producer_ids.go)
//	Dir/topics/…/<p>/producer.snapshot      idempotent producers' sequence state and the partition's
//	                                        transaction state (producer_state.go, txn_partition.go)
//	Dir/txn/journal/                        the transaction coordinator's records: a wal.Log member of the
//	                                        commit journal (txn.WALJournal; a txn.log of earlier releases
//	                                        is moved into it at the first open)
//	Dir/share/share.log                     share groups' state: groups, group configs, share-partition
//	                                        start offsets and in-flight record states (broker/share)
//	Dir/scram.credentials                   SCRAM credentials (Credentials; OpenFileSecurity, called by cmd/, not by Open;
//	                                        a cluster keeps them on the metadata quorum instead)
//	Dir/topics/…/<p>/log_start              log start offset set by DeleteRecords (records.go)
//	Dir/client_quotas                       client quotas (quotas.go; enforced by the gateway; a cluster
//	                                        keeps them on the metadata quorum: ClientQuota, *Of)
//
// A produced partition payload (one or more RecordBatch v2 back to back) is validated by its
// headers only (ValidateBatches: framing, magic 2, CRC-32C, counts, max.message.bytes) and
// appended as one WAL entry, byte for byte as produced: it is never decompressed to be stored
// or served. The WAL's Stamp hook writes the assigned base offset into each batch (bytes
// 0..8, outside the batch CRC) under the log lock, so offsets are assigned exactly once, in
// log order. Fetch returns whole stored entries; a single-entry answer is the stored copy
// itself. FetchPooled reads into pooled buffers (power-of-two classes from 64 KiB to 8 MiB)
// that the caller hands back with release once the answer is written, so a steady consumer
// costs no fresh allocation per fetch; a caller that never releases only loses the reuse.
//
// # Idle partitions cost almost nothing
//
// A partition's log is opened on first use, not by Open or CreateTopics: a produce opens it; a
// fetch or list-offsets opens it only if the partition was ever written (its directory exists,
// or its log was opened since Open), and otherwise answers an empty log at offset 0 without
// touching the disk. A partition's first write creates no directory or file: its log is a
// wal.Options.LazyDir member, whose directory, segment file and recovery point are created by
// the Store's next checkpoint (or when its write buffer is first flushed) while the commit
// journal holds its records (wal/doc.go); the producer snapshot creates the directory when it
// is written first.
// So an idle partition holds no descriptor, no goroutine and no wal memory, only its small
// broker struct (about 120 bytes of heap, measured by TestIdlePartitionMemory); its producer
// state and fetch-waiter list are allocated when first needed. Recovery of a partition's torn
// tail happens at that first open. Retention reaches a partition that has data on disk but is
// not open by opening it, removing expired segments and closing it again. CreateTopics and
// CreatePartitions make only the topic directory; a 100,000-partition topic is one registry
// write (TestHundredThousandPartitions). Config.MaxPartitions (default 1,000,000) caps the
// partitions of all topics: CreateTopics, CreatePartitions and auto-creation past it answer
// INVALID_PARTITIONS with a message naming the limit. Stats reports partitions, open logs,
// produce requests and fsyncs.
//
// Errors the broker puts in a Kafka response never carry internal paths: a storage failure of
// an admin op answers KAFKA_STORAGE_ERROR with a message that says what failed (and whether
// descriptors or disk space ran out); the details go to the broker log.
//
// The high watermark of a single-owner partition is its log end offset (replicated
// partitions: see below), and a fetch serves only fsynced records: one that reaches records
// produced with acks=0/1 (or transactional under transaction.version 2, below) and not yet
// synced joins the journal's group commit first (one shared fsync), so a record a consumer
// has read is never taken back by a crash; ListOffsets(latest) does the same, so no high
// watermark a client is shown goes back after a crash (topics with flush.ms/flush.messages
// opt out). The last stable offset is the
// first offset of the oldest open transaction in the partition, or the high watermark.
//
// # Transactions
//
// The broker hosts the transaction coordinator (package broker/txn, opened by Open under
// Dir/txn; its ops are txn_ops.go): it takes producer ids from the broker's counter and writes
// its commit/abort markers into the broker's partitions with WriteTxnMarkers (control batches
// in Kafka's format, fsynced before the coordinator completes the transaction). Its records
// go through the same commit journal as the partitions (txn.WALJournal), which gives them
// and the partitions' appends one durable order: see broker/txn's doc, Durability, for the
// fsyncs this saves (none for AddPartitionsToTxn, one per EndTxn). In a cluster
// the controller replaces it (SetTxnCoordinator) with a coordinator whose journal is the
// metadata quorum, running on the quorum leader (broker/controller txn.go), and serves
// WriteMarkers and VerifyTxn between brokers. Offsets
// committed in a transaction go, on commit, to the TxnOffsetCommitter set with
// SetTxnOffsetSink (the group coordinator). A transactional batch is accepted only if its
// producer's transaction is ongoing at that epoch and includes the partition (checked with
// the coordinator under the partition's producer lock, so no marker overtakes it;
// INVALID_TXN_STATE otherwise); clients may never write control batches. Fetch with
// read_committed returns data below the last stable offset only and leaves the batches of
// aborted transactions out (reading on past them, so the answer always moves the consumer
// forward; the abort marker at the latest); ListOffsets latest with read_committed answers the
// last stable offset. txn_partition.go has the details.
//
// # Share groups
//
// The broker also hosts the share-group coordinator (KIP-932; package broker/share, its
// shell broker/share/coord opened by Open under Dir/share; its ops are share_ops.go, group
// configs share_configs.go): ShareFetch reads the broker's own partitions from each share
// partition's first available offset and acquires what it read for the member; every
// change to the durable share state (acknowledgements, lock expiries, start offsets, group
// configs) is fsynced before the op that made it answers. The semantics and the decision
// on where the state lives are in package broker/share's doc.
//
// The log start offset is the base of the oldest segment (retention moves it) or, above
// it, the offset DeleteRecords set (records.go: durable in the partition's log_start file
// before the answer; sealed segments wholly below it are deleted). Fetch below it answers
// OFFSET_OUT_OF_RANGE, ListOffsets earliest answers it, and a timestamp lookup never answers
// below it. DescribeLogDirs reports Dir and each partition's segment bytes (file system
// totals -1); OffsetForLeaderEpoch answers epoch 0 with the log end offset (every partition
// has had one leader at epoch 0) and any other epoch as undefined (-1, -1).
//
// # Replicated partitions
//
// A partition whose TopicRecord.Replicas entry lists more than one raft id is replicated: a
// raft group of those replicas (issue #16), run by the partition raft engine (package
// broker/replica) that SetReplication gives the broker together with its raft id (the
// broker's metadata-quorum raft id). All other partitions are single-owner and behave as
// the rest of this doc says. SyncTopics (and SetReplication, for topics already known) starts
// the group of each replicated partition this broker is a replica of: it opens the
// partition's wal.Log for as long as the group runs, opens its raft storage on it
// (Config.RaftStorage, default raftstore.Open: one wal entry per raft entry, so record bytes
// are stored once) and adds the group with the replica list as its bootstrap voters (a
// replica listed in TopicRecord.Joining, which a replica reassignment adds to a running
// group, starts it empty instead and waits for the leader to catch it up). The
// engine makes its writes durable with SyncStorage (one journal fsync per engine round).
// Groups stop when the topic goes, when this broker leaves the replica list, and at Close.
//
//	b, _ := broker.Open(cfg)
//	eng, _ := replica.New(replica.Config{ID: raftID, Transport: tr, Sync: b.SyncStorage})
//	b.SetReplication(eng, raftID)
//	b.OnPartitionState(report) // the controller proposes leader/ISR changes
//	b.SyncTopics(recs)         // TopicRecord.Replicas from the metadata quorum
//	…
//	eng.Stop(); b.Close()      // or Close first: it removes its groups from the engine
//
// Produce goes to the leader only (others answer NOT_LEADER_OR_FOLLOWER, naming the leader's
// raft id in the message), and only once it has applied an entry of its own term (its
// producer state then holds every batch committed before it). The payload is validated as
// for a single-owner partition (no control batches), copied, its batches' partitionLeaderEpoch
// set to the raft term, and proposed. acks=0/1 are answered when Propose returns (the entry
// is durable on the leader), acks=all when the entry is committed (durable on a majority)
// and applied here (the high watermark covers it);
// leadership lost first answers NOT_LEADER_OR_FOLLOWER (outcome unknown, retriable).
// acks=all with fewer in-sync replicas than min.insync.replicas answers NOT_ENOUGH_REPLICAS
// before anything is proposed. The base offset comes from the raft storage (Offsets of the
// entry's index).
//
// Idempotence: every replica applies committed batches to the partition's producer state
// (replayed from the committed entries: the same state on every replica, so a new leader
// answers a retry exactly as the old one would have). The leader checks a batch against that
// state plus its own batches in flight (proposed at its term, not applied yet), holding a
// per-partition lock from the check until the proposal is durable here, so one producer's
// batches enter the log in the order they were checked. A retry of a batch in flight is
// answered with its offset (acks=all: once the original commits). The producer snapshot file
// is not used: after a restart the engine restores the partition's raft snapshot (below) and
// re-applies the committed log after it.
//
// Retention (retention.ms, retention.bytes) and the DeleteRecords log start are enforced by
// every replica on its own log (as Kafka's replicas do), only below what raft no longer
// needs (replicated_retention.go). When whole old segments are due, on the engine goroutine
// (Engine.AtApplied: nothing is appended or applied meanwhile, A is the applied index and HW
// the offset after it) the broker picks the segments to delete: those whose records all lie
// below the retention bound, below HW, and on the leader below what every follower raft saw
// recently already has (a live follower that is behind keeps getting entries). The first
// segment kept starts at offset L with entry S+1; S is the retention point. The broker then
// creates a raft snapshot at S, never above it (raftstore.CreateSnapshot, with the membership
// in force at S), compacts raft's log to S, makes that durable (wal.Log.Commit), and only then
// deletes the segments below L (wal.Log.RetainBelow). A follower that is down or behind S is
// sent the snapshot: it resets its log to start at L, exactly where the leader's starts
// (raftstore.ApplySnapshot), gets every entry after S from the leader's log, and restores the
// producer state and log start from the snapshot's data (Restore), so once it leads it serves
// every record the old leader still retained and deduplicates as it did. Decision (the first
// version snapshotted at A: a follower installing it reset its log past records the leader
// still retained, and lost them for good if it then led): the snapshot's index is the
// retention point, while its data is the state as of A (the DeleteRecords start and every
// producer's window, with HW as the producer state's "up to" offset). A replica restoring it
// applies S+1..A again and skips their producer updates (they are in the state already);
// those entries are committed, so every replica applies the same ones. The data has no size
// bound: raftstore keeps it in a blob file of the log (wal.Log.WriteBlob), so every producer's
// idempotence state travels with the snapshot. Segments are deleted where raft allows at each
// check (every RetentionCheckInterval); the leader's may lag its followers' while one is
// behind, and replicas' log starts differ by their segment boundaries (as in Kafka).
//
// DeleteRecords is taken by the leader only (others NOT_LEADER_OR_FOLLOWER): the new log
// start (at most the high watermark) is proposed as a raft application entry
// (raftstore.AppEntry: stored as one control batch, so it occupies one offset clients skip),
// answered once committed and applied here; every replica applies it (replicated_records.go),
// so it is the same on every replica and after failover, and it is kept in the raft snapshots.
// Reads below it are OFFSET_OUT_OF_RANGE, ListOffsets earliest answers it, and segments below
// it go at once on the leader (within what raft allows) and at the followers' next retention
// check.
//
// The high watermark is the next offset after the last applied entry. Fetch, ListOffsets
// and OffsetForLeaderEpoch are served by the leader only, once it applied an entry of its
// term (so the high watermark never goes back across a failover), and never past the high
// watermark: a fetch at or above it (up to the log end) is empty, one past the log end is
// OFFSET_OUT_OF_RANGE, ListOffsets latest is the high watermark and a timestamp lookup that
// only uncommitted records answer is -1. The current leader epoch a client sends (Fetch,
// ListOffsets, OffsetForLeaderEpoch) is checked: older than the term FENCED_LEADER_EPOCH,
// newer UNKNOWN_LEADER_EPOCH; leader epochs of replicated partitions are raft terms (≥ 1), so
// 0 and -1 mean none given. OffsetForLeaderEpoch answers from the terms of the applied
// entries as Kafka answers from its leader epoch cache (the latest epoch ends at the high
// watermark). Fetch long polls are woken by applied entries and leadership changes.
//
// Kafka offsets stay contiguous across leader changes, except that raft's own entries (the
// empty entry each new leader appends, conf changes) each occupy one offset as a control
// batch (broker/replica doc.go), like transaction markers: clients skip them.
//
// OnPartitionState's function is told, from the background goroutine, when this broker
// serves a partition as leader at a new term (once an entry of its term is applied, so a
// majority has acknowledged it) and whenever the ISR it sees changes (the leader and every
// voter raft saw recently whose log reaches the commit index of 10 to 20 s ago, Kafka's
// replica.lag.time.max.ms rule: a wiped replica copying the log is not in sync until it has it);
// CheckReplicas runs that check (every Config.ReplicaCheckInterval and as soon as this
// broker starts serving a partition).
//
// Transactions on replicated partitions (replicated_txn.go): a transactional batch is
// verified with the transaction coordinator (its own, or the one SetTxnVerifier names when
// the coordinator runs on another broker) under the partition's proposal lock and proposed
// like any idempotent batch; a marker (WriteTxnMarkers, taken by the leader only, else an
// error wrapping ErrNotPartitionLeader) is a raft application entry proposed under the same
// lock, so a verified batch always precedes its transaction's marker, and answered once
// committed and applied here. Every replica applies batches and markers to the partition's
// producer state, so open transactions, the last stable offset and the aborted list are the
// same on every replica at an applied index; a new leader serves read_committed from its own
// applied state. The raft snapshot carries open transactions and the aborted transactions
// whose markers are at or after the new log start. A marker is stored as one raftstore
// control batch (an application entry), not as Kafka's commit/abort control record:
// clients skip both, and read_committed filtering is done by the broker.
//
// Not done yet on replicated partitions: changes of a partition's replica list other than
// joining or leaving it (raft conf changes are the controller's), and turning a
// single-owner partition with data into a replicated one.
// flush.messages / flush.ms do not apply (raft makes every entry durable before it counts).
//
// # Topic registry
//
// The Registry interface holds the cluster id and every topic's name, 16-byte random id,
// partition count and config overrides; FileRegistry (the default) replaces one
// checksummed file atomically (temp file, fsync, rename, fsync dir). Admin ops write the
// registry before they touch data: CreateTopics registers and then opens logs; DeleteTopics
// unregisters and then removes directories, and Open purges directories no registered topic
// owns (a delete or failed create cut short by a crash), so disk space is always reclaimed.
//
// On the metadata quorum (package broker/controller) the Registry is the quorum: Load reads
// its applied topics and Store proposes the admin op's changes, so the broker's own admin code
// decides and the quorum makes it durable; every broker applies the cluster's topic changes
// through SyncTopics (create with the cluster's ids, grow, configs, delete; no registry write).
//
// A registry write whose outcome is unknown (FileRegistry: the rename or the directory fsync
// after it failed, so the old or the new file may be the durable one) stops the broker
// (ErrRegistryFailed, Broker.Err): it is logged as an error, and from then on every admin op
// that writes the registry answers UNKNOWN_SERVER_ERROR and every produce
// KAFKA_STORAGE_ERROR, with a message saying to restart where the answer has a message
// field (DeleteTopics has none); a restart reads whichever state is
// durable. Config.OnStop is called once when that happens: cmd/broker and cmd/gateway (embedded
// mode) log it and exit non-zero, so a supervisor restarts them and recovery runs. Continuing
// could acknowledge records of a topic whose deletion is already on disk. A failed write or
// fsync of the commit journal stops the broker the same way (wal.StoreOptions.OnFail): after a
// failed fsync Linux may have dropped the dirty pages, so nothing past the last good fsync may
// be taken for durable, and only a reopen (recovery) knows what is.
// A failure before the rename leaves the old file and is an ordinary error. CreateTopics
// fails (and is rolled back) if the topics directory cannot be fsynced after the topic
// directories were made, and Open fsyncs every directory it creates (Dir, topics, a
// registered topic's directory a crash lost), so no acknowledged record sits in a directory
// whose entry is not durable.
//
// The producer-id counter and the producer snapshots are also replaced atomically, but a
// failed write of either is retried rather than fatal: a counter block is used only once a
// write of it fully succeeded (and every write carries an end at least as high as any
// before), and either version of a snapshot is a valid summary of the durable log below its
// offset.
//
// # SCRAM credentials
//
// Credentials (credentials.go) serves brokerop.SecurityService — Kafka's
// DescribeUserScramCredentials and AlterUserScramCredentials with Kafka's per-user rules —
// over a CredentialStore, so that the metadata quorum can hold them later.
// FileCredentialStore keeps them in one checksummed file (mode 0600) replaced as the
// registry is; an alteration is applied in memory only after the store returned, a failed
// write answers UNKNOWN_SERVER_ERROR for the users and changes nothing, and a write of
// unknown outcome (rename or directory fsync) fails every later alteration
// (ErrCredentialsFailed) until a restart. Only salt, iterations, StoredKey and ServerKey are
// stored: upsertions carry a salted password, from which the keys are derived.
//
// # ACLs
//
// ACLs (acls.go) serves the ACL ops of brokerop.SecurityService (DescribeAcls, CreateAcls,
// DeleteAcls) over an ACLStore with Kafka's validation (package broker/acl: concrete types,
// LITERAL or PREFIXED, "Type:name" principals, kafka-cluster as the CLUSTER's name); an
// invalid creation is INVALID_REQUEST while the others in the request are stored, and a
// binding is stored once. FileACLStore keeps them in one checksummed file (<data>/acls, mode
// 0600) with the credentials file's format and rules (metafile.go): applied in memory only
// after the store returned, a failed write answers UNKNOWN_SERVER_ERROR and changes nothing,
// an unknown outcome fails every later change (ErrACLsFailed). Security is both halves of
// brokerop.SecurityService, as cmd/broker and cmd/gateway serve them.
//
// # Durability policy
//
// By default a produce with acks=-1 (all) is answered only after its data is fsynced: Open
// opens one wal.Store under Dir (Config.Store tunes it; Close closes it after the logs) and
// every partition log joins it, so a Sync waits for the journal's group commit — one fsync
// covers every partition of every request waiting at that moment, however many partitions
// they touch. The partitions of one request are synced in parallel (they share that fsync);
// partition files themselves are fsynced by the Store's background checkpointer. A failed
// journal fsync fails the Store: every later produce answers KAFKA_STORAGE_ERROR until the
// broker is reopened, and the reopen serves only what was durable. This is stronger than Apache Kafka's default, which
// relies on replication and the page cache. acks=1 and acks=0 are answered after the append;
// their data is fsynced by the background flusher within Config.FlushInterval (default 1s).
// One exception for acks=all: a transactional batch of transaction.version 2 on this
// broker's own coordinator is answered once appended; the EndTxn that commits it makes it
// durable, and after an unclean stop (no clean-stop file from Close) the coordinator aborts
// every transaction that was open, so a transaction that lost answered records never
// commits (broker/txn's doc, Durability; TestTxnUnsyncedProduceCrashes).
//
// A topic relaxes this with Kafka's flush configs. Once flush.messages or flush.ms is set
// (on the topic, or as a broker default in Config.TopicDefaults), acks=all no longer implies
// an fsync: the producer whose append leaves flush.messages or more offsets unsynced fsyncs
// (whatever its acks, as in Kafka), and the background flusher fsyncs data whose last fsync
// is flush.ms old (with only flush.messages set, data below the threshold waits for more, as
// in Kafka). DescribeConfigs reports Kafka's defaults for both (Long.MAX_VALUE).
//
// ProduceStaged splits a produce into the append (done before it returns, so calls keep
// their order) and the wait for fsync: a front door that pipelines the requests of one
// connection lets them share fsyncs instead of paying one each.
//
// Data is readable by consumers as soon as it is appended (the high watermark is the log end
// offset), before it is fsynced; an acknowledged acks=all record always survives a crash.
//
// # Topic configs
//
// Honoured: cleanup.policy (delete, compact, compact,delete; see Compacted topics),
// delete.retention.ms, min.cleanable.dirty.ratio, min.compaction.lag.ms,
// max.compaction.lag.ms, retention.ms and retention.bytes (enforced by the background goroutine
// every Config.RetentionCheckInterval, whole segments, the active one never; EnforceRetention
// runs it on demand), segment.bytes (an altered value reopens the topic's logs, so it applies
// from the next segment on, as in Kafka), max.message.bytes (MESSAGE_TOO_LARGE),
// flush.messages, flush.ms. Accepted only at the value we honour: compression.type=producer,
// message.timestamp.type=CreateTime. min.insync.replicas (any value ≥ 1): an acks=all produce
// to a partition with fewer in-sync replicas answers NOT_ENOUGH_REPLICAS (a single-owner
// partition has one). Anything else is INVALID_CONFIG.
//
// # Compacted topics
//
// The log cleaner (compact.go, compact_records.go; Kafka's LogCleaner) runs in a goroutine of
// its own every Config.CleanerBackoff (log.cleaner.backoff.ms, 15 s; Compact runs a pass on
// demand) over the partitions whose cleanup.policy includes compact (replicated ones below). A partition
// is cleaned when its dirty bytes (sealed segments at or past its cleaner checkpoint) reach
// min.cleanable.dirty.ratio of its cleanable bytes, or its first dirty entry is older than
// max.compaction.lag.ms. The cleanable part ends before the first segment that is active,
// reaches the last stable offset (an open transaction) or holds a record younger than
// min.compaction.lag.ms (the active segment is never cleaned: with no segment.ms here, data
// waits for a roll by size). Pass 1 reads the cleanable part and maps every key of the dirty
// part (a 128-bit digest) to its latest offset, leaving out aborted transactions and control
// batches, and notes each producer's last batch; the map is bounded by
// Config.CleanerDedupeBufferBytes (log.cleaner.dedupe.buffer.size, 128 MiB at Kafka's 24 bytes
// a key): a round ends before the dirty segment at which it is full and the next round goes
// on from there. Pass 2 (wal.Log.CleanSegments) rewrites the
// sealed segments in groups of at most segment.bytes: a record stays unless a later record of
// its key is mapped, or it is a tombstone whose delete.retention.ms has passed since it was
// first cleaned; batches of aborted transactions go; a transaction marker stays while its
// transaction kept a record, then until delete.retention.ms; a producer's last batch stays
// (emptied) so its sequence survives a producer-state rebuild; records without a key and
// batches the cleaner cannot parse stay. A batch that loses records is rebuilt uncompressed
// with its base offset, last offset delta, timestamps and producer fields (decision: no
// recompression); untouched batches stay byte for byte. Offsets never change: consumers see
// gaps, and a fetch inside one gets the next batch (wal holes). The cleaner state
// (cleaner.state in the partition directory: first dirty offset, and when each region was
// first cleaned, which dates tombstones) is written after the swaps; lost, the log is dirty
// again and tombstones are kept longer, never shorter. Reads and writes of both passes go
// through one byte-rate limit for all partitions (Config.CleanerIOBytesPerSecond,
// log.cleaner.io.max.bytes.per.second), with an injectable sleep. Retention by time and size
// applies only when the policy includes delete. A produce to a compacted topic holding a
// record without a key is refused with INVALID_RECORD, as Kafka does. Crash safety is wal's
// (doc.go, Cleaning).
//
// Replicated partitions (replication factor > 1; replicated_compact.go) are compacted too,
// each replica cleaning its own log (the raft log) independently, as each Kafka replica runs
// its own cleaner: offsets are stable, so replicas may differ in which superseded records
// they still hold but agree on every offset they serve. Decisions (session 9):
//
//   - Raft entries are rewritten, never removed. A raft log's wal entries are tagged with
//     their raft index (raftstore), and a hole has no tag, so the cleaner runs in raft mode:
//     a batch that loses all its records is kept emptied (its header intact: base offset,
//     last offset delta, partitionLeaderEpoch = the entry's raft term, producer id, epoch and
//     sequence), control batches (transaction markers, raft's no-ops, membership changes,
//     DeleteRecords entries) stay whole, and so every raft index keeps its entry at the same
//     offsets with the same term. A batch keeps 61 bytes plus the wal entry's 40 where a
//     single-owner partition's cleaner leaves a 32-byte hole shared by consecutive drops
//     (a cost for many one-record produces; tagged holes would lift it).
//   - Only committed data is cleaned: the cleanable part ends at this replica's high
//     watermark (its applied index) and last stable offset, besides the single-owner rules
//     (sealed segments, min.compaction.lag.ms). Uncommitted entries may still be replaced by
//     another leader's, and a key's later record must exist for good before an older one goes.
//   - The raft log is not compacted for the cleaner: raft may still send a cleaned entry
//     (to a follower that is behind, or to a new replica: a wiped broker comes back with a new
//     raft id and an empty log), and it sends what this replica's log holds, cleaned or not;
//     raft compares only indexes and terms, which cleaning keeps, so the follower stores the
//     same entries at the same offsets (Kafka's followers likewise fetch the leader's cleaned
//     segments). With compact,delete, retention still snapshots at its retention point and a
//     follower behind it is sent the snapshot and then the (cleaned) entries after it.
//   - A replica applying cleaned entries rebuilds the same state: the producer state reads
//     only batch headers (kept), transaction markers are kept, and an aborted transaction's
//     batches stay (emptied) with their producer fields, so the open and aborted transactions
//     and every producer's sequence window come out as from the original entries.
//   - Tombstones: a tombstone goes delete.retention.ms after this replica first cleaned it;
//     on the leader also only below the offset every replica it tracks has (raft's Match,
//     live or not: cleanBounds), because a replica behind a tombstone that the leader dropped
//     would never get it and would keep the value it deleted. A follower sends nothing and
//     drops its tombstones by time alone (if it leads later with a replica still behind them,
//     that replica keeps the deleted value, as in Kafka, where delete.retention.ms is the
//     bound).
//   - The dirty ratio, the cleaner checkpoint (cleaner.state in the partition directory) and
//     the tombstone clock are per replica; the topic's configs (cleanup.policy and the rest)
//     come from the metadata quorum to every replica's broker like any topic config, so an
//     AlterConfigs to compact on an existing replicated topic reaches each replica's cleaner.
//   - With cleanup.policy=compact (no delete), retention.ms and retention.bytes delete nothing
//     on replicated partitions either; DeleteRecords still moves the log start.
//
// # Decisions where Kafka is silent or differs
//
//   - A partition payload may hold several batches (Kafka's Produce v3+ demands exactly one);
//     they are stored together and get consecutive offsets.
//   - An empty payload is INVALID_RECORD, legacy magic 0/1 message sets are INVALID_RECORD
//     (as Kafka 4 does for Produce v3+), an unknown magic or bad CRC is CORRUPT_MESSAGE.
//   - ListOffsets by timestamp is exact to the record: it is the one place the broker
//     decompresses a batch (to find the record, never to store or serve it).
//   - CreateTopics accepts replication factor 1 or -1 only (one replica per partition).
//   - DescribeConfigs treats an empty ConfigNames like a null one (all configs).
//
// # Goroutines and locks
//
// Open starts one goroutine (retention + flusher) and the Store its checkpointer; Close stops
// and waits for both. Fetch long polls wait in the caller's goroutine on a per-request
// channel registered with each requested partition; every append wakes the partition's
// waiters. A produce whose partitions' logs are not open yet opens them first in up to 32
// short-lived goroutines it waits for (opening a log on disk costs reads, which overlap that way);
// its acks=all waits then run one after the other in the caller (one journal group commit
// covers them all). (With LazyDir an open costs a ReadDir and no fsync, so the goroutines
// matter only when logs on disk are reopened after a restart.)
//
// Lock order: Broker.adminMu, then partition.logMu (read-held around every use of a
// partition's log, write-held only to open, reopen, close or remove it), then partition.mu
// (waiters only), then the wal's own locks. A raft group's propMu (held across Propose)
// comes before its mu; the engine's callbacks take only mu, and wake fetch waiters after
// releasing it. A produce's fsync runs without logMu.
// Produce, Fetch and ListOffsets take no broker-wide lock: topics are read through atomic
// pointers that admin ops replace under adminMu.
package broker
