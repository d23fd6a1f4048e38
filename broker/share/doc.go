// Package share is the I/O-free core of KIP-932 share groups ("queues for Kafka"): share
// groups and their members, the server-side assignment of partitions to members, share
// sessions, and each share partition's in-flight records with their acquisition locks and
// delivery counts. It takes the current time on every call and reads no clock, file or
// socket; package broker/share/coord is the thin shell (lock, durable log), and the broker
// (broker/share_ops.go) serves the brokerop share ops with it, reading the records it hands
// out from the partitions' logs (its own, or in a cluster each partition's leader's).
// Kafka's names are used throughout.
//
// # Groups, members, assignment
//
// ShareGroupHeartbeat with member epoch 0 joins (a new member must name its subscribed
// topics), -1 leaves, anything else must be the member's current epoch or the one before it
// (FENCED_MEMBER_EPOCH otherwise; UNKNOWN_MEMBER_ID, GROUP_ID_NOT_FOUND). The group epoch
// moves when membership, a subscription or the partition count of a subscribed topic
// changes; the assignment is then recomputed and a member takes the group epoch as its own
// on its next heartbeat, which carries its assignment (as does any heartbeat that names its
// topics). Share groups have no revocation: a partition may be assigned to several members
// at once, and two members fetching one partition simply get different records.
//
// The assignor is Kafka's "simple" share assignor in its plain form: for each subscribed
// topic with P partitions and its S subscribers (sorted by member id), if S ≤ P partition p
// goes to subscriber p mod S; if S > P subscriber i gets partition i mod P (every member
// gets work, partitions are shared). It is recomputed from scratch, not sticky. A member
// whose heartbeats stop for share.session.timeout.ms (45 s;
// a group config, group.share.session.timeout.ms for the broker) is removed and the
// records it holds are released. group.share.max.size (200) caps members
// (GROUP_MAX_SIZE_REACHED).
//
// # Share partitions
//
// A share partition (group, topic, partition) keeps the share-partition start offset
// (SPSO) and a window of records from it: each record Available, Acquired (by a member,
// until its lock deadline), Acknowledged or Archived, with its delivery count. The window
// ends one past the share-partition end offset (SPEO); it never holds more than
// group.share.partition.max.record.locks (2000) records. A new share partition starts at
// the high watermark or, with share.auto.offset.reset=earliest (a group config, or
// Config.AutoOffsetReset), at the log start offset; when the log start moves past SPSO
// (retention, DeleteRecords), SPSO follows.
//
// ShareFetch acquires available records from the window's first available offset on,
// among those the broker read, up to the request's max records: each acquisition counts a
// delivery and takes a lock for share.record.lock.duration.ms (30 s; a group config, and
// group.share.record.lock.duration.ms for the broker). A record whose delivery count reached
// share.delivery.count.limit (5; group.share.delivery.count.limit for the broker) is
// archived instead of delivered again. Acknowledgements (piggy-backed on ShareFetch or in
// ShareAcknowledge) name offset ranges with one type for the range or one per offset:
// Accept acknowledges, Release makes the record available again (archived at the limit),
// Reject and Gap archive it, Renew (v2) extends the lock. All batches of a partition are
// checked before any is applied (INVALID_REQUEST for malformed batches or offsets past the
// window, INVALID_RECORD_STATE for a record the member does not hold, e.g. after its lock
// expired). SPSO then moves past every leading acknowledged or archived record. An expired
// lock makes the record available again (archived at the limit); expiry is evaluated by
// Tick, which the shell calls at the start of every operation. Records acquirable again
// without an append (released, expired, their member or session gone, or past a full
// window that moved) are reported by Freed, and NextLockDeadline tells when the next lock
// of some partitions expires: a ShareFetch waiting at the end of the input wakes for both,
// as Kafka completes its delayed share fetches on them.
//
// Share sessions (per group and member): ShareFetch with epoch 0 opens one (INVALID_REQUEST
// if it carries acknowledgements; SHARE_SESSION_LIMIT_REACHED past
// group.share.max.share.sessions), releasing whatever the member held; each later request
// must carry the session's epoch (INVALID_SHARE_SESSION_EPOCH, SHARE_SESSION_NOT_FOUND),
// adds its partitions and drops the forgotten ones; epoch -1 applies the acknowledgements
// and closes the session, releasing what the member still holds.
//
// AlterShareGroupOffsets sets SPSO and drops the window (and bumps the state epoch);
// DeleteShareGroupOffsets forgets a topic's share partitions; both need a group without
// members (NON_EMPTY_GROUP).
//
// # Durability (decision)
//
// Kafka keeps share-partition state in the __share_group_state topic through a share
// coordinator. Here the durable state is a log of Records (record.go: complete state per
// key, so replay is last-writer-wins), fsynced before the operation that changed it is
// answered: on a single broker (and a gateway-and-broker pair over the mesh) a file,
// coord.Store under <data>/share; with a metadata quorum the quorum itself (each coordinator
// call's records one PutShares proposal, the metadata state keeping the latest record per key:
// broker/controller/sharestate.go), where the transaction coordinator's state and committed
// consumer offsets live too. There every share op is routed to the quorum leader's broker
// (broker/controller/share.go), which reads each partition at its leader
// (broker/controller/shareread.go), and a new leader starts its coordinator from the quorum's
// records, so a share group continues where the lost leader left it (records acquired there
// and not yet acknowledged are delivered again, at least once).
//
// What is durable: groups, group configs, and per share partition SPSO, state epoch and the
// window's records as runs of (state, delivery count). Acquired records are written as
// Available with their count: locks do not survive a restart, the records are delivered
// again. Acquisition itself is not written (no fsync per fetch): a record delivered but not
// yet acknowledged when the broker crashes comes back with the count of its last written
// state. Members and sessions are not durable (clients rejoin, as after a coordinator move
// in Kafka).
//
// share.isolation.level=read_committed (a group config) makes the broker read share
// partitions up to the last stable offset with aborted transactions' batches left out.
// Offsets outside every batch read (an aborted batch left out, records removed by
// compaction) are never handed out: SPSO jumps over them once nothing before them is
// unfinished. Offsets inside a batch without a record (control records) are acquired with
// the batch, and the client acknowledges them as gaps (archived).
//
// ListGroups (v5) lists share groups beside the consumer groups as Kafka does: type and
// protocol type "share", state Empty or Stable (Broker.AddShareGroups, called by the
// controller's ListGroups and Broker.Service's).
//
// Not served: the by_duration auto offset reset, rack-aware assignment, share-group ACL-filtered
// assignment, DeleteGroups for share groups (their group admin goes to the consumer-group
// coordinator).
package share
