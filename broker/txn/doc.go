// Package txn is Kafka's transaction coordinator: transactional InitProducerID (with producer
// fencing and epoch bumps, KIP-360/588), AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit
// (pending offsets), EndTxn, transaction timeouts, ListTransactions and DescribeTransactions.
// The broker (package broker) owns one and serves its ops; the data side (markers in
// partitions, last stable offset, read_committed) lives in broker/txn_partition.go.
//
// # Layers
//
//   - Machine is I/O-free: each call takes the current time and returns a Result: an error
//     code, a Record (the transactional id's complete new state, to make durable before
//     anything else) and Markers (commit or abort markers to write into partitions, and for a
//     commit the pending offsets to hand to the groups), after which Complete ends the
//     transaction. Expired aborts transactions older than their timeout; Verify answers
//     whether a partition may append a transactional batch. Replaying Records with Apply
//     rebuilds the state, so the Machine can run on a replicated log (the metadata quorum)
//     as well as on the local Store.
//   - Journal is where Records become durable: WALJournal, the local journal of a single
//     broker (a member log of the broker's commit journal, wal.Store, beside the partitions:
//     see Durability), or, in a cluster, the metadata quorum
//     (broker/controller: each Record a PutTxn command; the metadata state keeps the latest
//     per id). New starts a coordinator on any Journal from its records; its first pass
//     finishes what the previous coordinator left decided, which is how a new quorum
//     leader takes over the transactions of a lost one. Decision (broker/controller
//     txn.go): the quorum, not an internal replicated partition.
//   - Coordinator is the thin shell: one mutex around Machine + Store; Markers are carried out
//     outside it (by the caller of EndTxn, of an InitProducerID that fences an open
//     transaction, or by the background goroutine for timeouts and for transactions a failure
//     or a crash left decided), one goroutine per transaction at a time.
//
// # States (Kafka's names)
//
//	Empty ─AddPartitions/AddOffsets→ Ongoing ─EndTxn(commit)→ PrepareCommit ─markers→ CompleteCommit
//	                                   │      ─EndTxn(abort), timeout, new producer→ PrepareAbort ─markers→ CompleteAbort
//
// A new InitProducerID for the id bumps the epoch (a new producer id at epoch 0 once the
// epoch would reach 32767); if a transaction is Ongoing it is first aborted with the bumped
// epoch, so the old producer is fenced in the partitions too (its batches get
// INVALID_PRODUCER_EPOCH, its coordinator requests PRODUCER_FENCED). An InitProducerID that
// names a producer id and epoch (KIP-360) must name the current ones. A timeout abort also
// bumps the epoch. EndTxn retried after it completed the same way answers success; the other
// way INVALID_TXN_STATE. Requests while a transaction is being completed answer
// CONCURRENT_TRANSACTIONS, which clients retry.
//
// Transactional ids expire as Kafka's do (transactional.id.expiration.ms, 7 days): an id with
// no transaction open (Empty, CompleteCommit, CompleteAbort) and no change for that long gets
// a Dead record at the coordinator's hourly sweep (Machine.ExpiredIDs), and applying it
// forgets the id; on the quorum the id's record is removed. A producer that comes back with
// the id starts anew; its old producer id is refused (INVALID_PRODUCER_ID_MAPPING).
//
// After a restart, a transaction found in PrepareCommit or PrepareAbort is carried out by the
// first pass of the background goroutine (Check); an Ongoing one stays open until its
// producer ends it, a new producer of the id aborts it, or its timeout does, except after an
// unclean stop of the single broker, which aborts it (see Durability: transactional
// produces answered before their fsync).
//
// # Durability (single broker)
//
// Decision: the coordinator's records are entries of a member log of the broker's commit
// journal (WALJournal, Dir/txn/journal), not a file of their own. The journal is one stream
// for every member, fsynced by group commits, and a crash keeps a prefix of it (package wal,
// Commit journal: partition-file bytes whose journal record was not durable are cut at
// recovery). So a partition entry appended after a coordinator record is never durable
// without it, and a durable record implies every earlier one. The Coordinator uses that order
// (the Ordered interface) to wait less, with the same guarantees:
//
//   - AddPartitionsToTxn, AddOffsetsToTxn and TxnOffsetCommit are answered once their record
//     is written, without an fsync. A produce into the added partition is appended after the
//     record, so its own fsync makes the record durable before the produce is acknowledged;
//     EndTxn's PrepareCommit follows it too. A crash that loses the record loses every later
//     batch of the transaction with it: no partition can hold data of a transaction the
//     recovered coordinator does not know (which would hold its last stable offset back
//     forever), and nothing of it was acknowledged.
//   - EndTxn writes PrepareCommit/PrepareAbort, appends the markers to the partitions, and
//     waits for them (WriteTxnMarkers: one group commit, which covers the prepare record
//     written before them; End waits for the prepare record itself only if no local marker
//     did), and only then writes CompleteCommit/CompleteAbort, without waiting: one fsync per
//     EndTxn instead of three (prepare, markers, completion). Lost in a crash, the completion
//     is redone from the prepare state (the same markers again: a marker of a producer with
//     no open transaction in the partition changes nothing, and no batch of its next
//     transaction can be durable there without the completion record, which precedes it).
//   - InitProducerID, timeouts and the fencing abort still wait for their records (an epoch
//     handed out must never be handed out again).
//
// So a transaction of one producer of version 1 costs two fsyncs in sequence (its produce,
// its EndTxn), where the separate txn.log cost five. TestTxnFsyncsPerTransaction counts them;
// TestTxnJournalCrashes cuts power after random steps and checks that every answered commit
// is read whole by read_committed, nothing else is, and no partition is left with an open
// transaction. Transaction version 2 (below) drops the AddPartitionsToTxn round trip and the
// produce's fsync: one fsync per transaction.
//
// # Transactional produces answered before their fsync (transaction version 2)
//
// Decision (measured, issue #18: a transaction of 100 records was 0.88 ms against kfake's
// 0.36 ms, of which the produce's fsync and its write about 0.2 ms): on the single-broker
// path a transactional batch of a Produce v12+ under transaction version 2
// (brokerop.ProduceReq.TxnAdd, acks=-1, verified by this coordinator) is answered once it is
// appended to the commit journal, without waiting for a group commit (broker's
// txnAckedUnsynced). Batches of version 1 producers, idempotent and plain batches, and every
// other record keep their acknowledgement rules. The argument that no guarantee Kafka gives
// is lost:
//
//  1. A transactional record is delivered to read_committed consumers only once its
//     transaction commits, and EndTxn(commit) is answered only after the group commit that
//     makes its markers durable. Every batch of the transaction in a partition was appended
//     before that partition's marker (a batch is verified and appended under the partition's
//     producer-state lock, which the marker's append takes too, so no marker overtakes a
//     verified batch), and the journal is one durable order whose crash leaves a prefix
//     (package wal, Commit journal): an answered commit implies every batch of it durable,
//     whatever was fsynced at the produce. So does a durable PrepareCommit (or PrepareAbort):
//     a batch is answered unsynced only if its transaction is still Ongoing once the batch
//     is appended (checked after the append), so the prepare record comes after it in the
//     journal; a batch that lost that race (a client that sent EndTxn while the produce was
//     unanswered) waits for its fsync as before.
//  2. A crash before the commit's group commit may lose batches already answered. Their
//     transaction must then never commit. A decided one cannot be in that case (1): its
//     prepare record is not durable either. Either no record of the transaction since it
//     began survived (the implicit add of a partition is written before the partition's first
//     batch), or one did. None: the recovered state is the previous one (Empty, or
//     CompleteCommit/CompleteAbort at the epoch EndV2 handed out), and EndTxn(commit) of the
//     producer's epoch answers INVALID_TXN_STATE (an empty commit; a retry of the previous
//     end is recognised only at the previous epoch, PrevProducerID/PrevEpoch), or
//     CONCURRENT_TRANSACTIONS while a completion the crash lost is redone, then
//     INVALID_TXN_STATE (or INVALID_PRODUCER_ID_MAPPING after a producer id change). One: the
//     transaction is Ongoing in the recovered state, and after an unclean stop the
//     coordinator aborts every Ongoing transaction (CoordinatorConfig.AbortOngoing: PrepareAbort
//     with a bumped epoch, made durable before anything is served; the background goroutine's
//     first pass writes the markers), so the producer's EndTxn(commit) is PRODUCER_FENCED and
//     its late batches are fenced in the partitions.
//  3. Unclean means: no clean-stop file (Dir/txn/clean-stop). Broker.Close writes it, file
//     and directory fsynced, only after every log and the commit journal closed without error
//     and the broker did not fail (a journal whose fsync failed cut its unsynced tail: its
//     answered-but-lost batches are exactly what the rule is for); Open removes it, and fsyncs
//     the directory, before the coordinator serves anything, so a crash of this run is never
//     taken for a clean stop of the previous one. A clean stop needs no aborts: Close made
//     everything durable. A missing file errs on the safe side (a first open, an upgrade).
//  4. Readers are shown only durable records: Fetch joins a group commit before it serves
//     records above the synced offset, and ListOffsets(latest) now does too, so a high
//     watermark a client saw never goes back after a crash (read_uncommitted consumers of an
//     open transaction included). The last stable offset is at most the high watermark.
//  5. Idempotence: a retry of an answered batch is answered from the producer state as
//     before; after a crash that lost it the producer's epoch is fenced (2), so a retry
//     cannot be taken for a new batch of the same transaction.
//
// The cost: after an unclean stop every transaction open at the crash is aborted, version 1
// ones included (they lost nothing, but the coordinator does not record which version added
// a partition); their producers get PRODUCER_FENCED or INVALID_PRODUCER_EPOCH and begin
// again, as after a transaction timeout. After a clean stop an open transaction stays open.
// TestTxnUnsyncedProduceCrashes cuts power at random points of version 2 transactions (with
// clean restarts between) and checks that the producer's commit after a crash always fails,
// that every answered commit is read whole and nothing else, and that no high watermark
// shown before a crash is lost; TestTxnFsyncsPerTransaction/tv2 counts one fsync per
// transaction.
//
// # Transaction version 2 (KIP-890 part 2)
//
// Served on the single-broker path (the coordinator of broker.Broker on its WALJournal:
// cmd/gateway with its embedded broker), and advertised there only: ApiVersions' finalized
// feature transaction.version is the backend's TransactionVersion (gateway/api_versions.go),
// which kgo and the Java client read to opt in. Per transaction:
//
//   - A transactional Produce v12+ adds its partition itself (Machine.AddByProduce, through
//     Coordinator.VerifyAdd under the partition's producer-state lock, its record written
//     before the batch in the same journal, so the batch is never durable without it), and
//     is answered before its fsync (Durability, above). A
//     produce below v12 (a version 1 client: librdkafka/kcat, kafkajs, confluent-kafka-python,
//     kgo capped below v12) is checked as before: a partition not added by
//     AddPartitionsToTxn is INVALID_TXN_STATE. A fenced or unknown epoch is
//     INVALID_PRODUCER_EPOCH, a transaction being completed CONCURRENT_TRANSACTIONS (retried).
//   - TxnOffsetCommit v5 adds its group (Machine.AddAndCommitOffsets): no AddOffsetsToTxn.
//   - EndTxn v5 bumps the epoch at every end, commit or abort (Machine.EndV2). The prepare
//     record carries the bumped epoch, which the markers carry too (a late batch of the
//     ended epoch is fenced in the partitions), and the pair the producer continues with
//     (Txn.NextProducerID/NextEpoch: a new producer id at epoch 0 once the epoch is
//     exhausted). Deciding it there makes a completion redone after a crash hand out the
//     pair EndTxn answered; the answer waits for the markers' group commit, which covers the
//     prepare record, so a pair is never handed out twice. The completion keeps the ended
//     pair (PrevProducerID/PrevEpoch) so a retried EndTxn answers success with the same new
//     pair. An abort with nothing in the transaction is allowed (only the bump: kgo sends it
//     when every produce failed after implicit adds may have begun a transaction); an empty
//     commit is INVALID_TXN_STATE. InitProducerID, the timeout abort and the fencing of a
//     new producer work as in version 1.
//
// Records of a version 2 end are written in record version 2 (Txn.V2); every other record
// keeps version 1, so a journal without version 2 ends reads as before.
//
// Decision (cluster): not served there. The cluster's coordinator runs on the metadata
// quorum (broker/controller) and verifies batches of replicated partitions through
// Broker.SetTxnVerifier; an implicit add there would be a quorum write inside the produce
// path of the partition's leader, which is a different design (and a different cost) from
// the one above. A cluster gateway (gateway/cluster) names no TransactionVersion, so it
// advertises no transaction.version and clients run version 1 against it; Broker's
// TransactionVersion answers 1 when an external coordinator or verifier is set, so a broker
// of a cluster never serves version 2 semantics either (EndTxnReq.Bump, ProduceReq.TxnAdd
// and TxnOffsetCommitReq.AddGroup are ignored there).
//
// A txn.log of the earlier layout (Store, below) is moved into the journal at the first open:
// its state is written and made durable, then the file is removed; a crash in between leaves
// the file, and the next open discards the journal's partial copy and moves it again.
//
// # Record layout
//
// See AppendRecord. Deliberately complete state per record rather than deltas: replay is
// last-writer-wins per transactional id, and compaction keeps one record per id.
package txn
