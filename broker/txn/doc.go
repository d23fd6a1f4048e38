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
//   - Journal is where Records become durable: Store, the local log of a single broker
//     (a wal/recordlog log, see its doc: length + CRC-32C framed records, fsync per append,
//     torn tail cut, damage refused, compaction by rewrite and rename), or, in a cluster, the metadata quorum
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
// After a restart, a transaction found in PrepareCommit or PrepareAbort is carried out by the
// first pass of the background goroutine (Check); an Ongoing one stays open until its
// producer ends it, a new producer of the id aborts it, or its timeout does.
//
// # Record layout
//
// See AppendRecord. Deliberately complete state per record rather than deltas: replay is
// last-writer-wins per transactional id, and compaction keeps one record per id.
package txn
