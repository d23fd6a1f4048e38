// Package group is the Kafka consumer-group coordinator: JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups and
// OffsetDelete, and the KIP-848 consumer protocol's ConsumerGroupHeartbeat and
// ConsumerGroupDescribe (FindCoordinator is answered by the gateway with its own address).
//
// # Layers
//
//   - Machine is an I/O-free state machine. Each request goes in with the current time and a
//     Token chosen by the caller; answers come out as Outputs carrying that Token, possibly on
//     a later call: a JoinGroup is parked until the rebalance completes, a follower's SyncGroup
//     until the leader has synced. Timers are not goroutines: NextDeadline says when Tick must
//     be called next (a heap of groups by earliest timer keeps that O(1) and a request
//     O(members of its group + log groups)). Offsets change only through Apply, with Records
//     the Machine emitted.
//   - Store is the durable offset log on top of wal.Log (see "Offset log" below).
//   - Coordinator is the thin owner: one goroutine drives the Machine with the time of its
//     clock (Config.Clock, internal/clock; real by default), makes an Output's Records
//     durable (append + fsync; the records of all requests queued at that moment share one
//     entry and one fsync) before it delivers the response, and answers the blocked callers
//     through channels. Its methods have the shape the gateway's
//     GroupBackend expects (ctx, *brokerop.XxxReq) → (*brokerop.XxxResp, error).
//   - Config.OffsetLog replaces the Store with another durable home for the records (an
//     OffsetLog; the metadata quorum's, package broker/controller, whose coordinator runs on
//     the quorum leader and starts from Config.Initial, the quorum's committed offsets).
//
// # Group semantics (Kafka's classic protocol)
//
// States Empty → PreparingRebalance → CompletingRebalance → Stable, as Kafka names them. The
// coordinator is protocol-agnostic: it picks the protocol every member supports (by vote) and
// forwards the leader's assignment; eager and cooperative rebalancing both work because the
// cooperative dance is repeated joins by the clients.
//
//   - JoinGroup: session timeout must lie in [MinSessionTimeout, MaxSessionTimeout]
//     (INVALID_SESSION_TIMEOUT); a new dynamic member on JoinGroup v4+ gets MEMBER_ID_REQUIRED
//     and an id it must rejoin with (an id not used within the session timeout is forgotten);
//     protocol type and protocols must match the group's (INCONSISTENT_GROUP_PROTOCOL). A
//     rebalance completes when every member has rejoined or at the largest rebalance timeout,
//     when members that did not rejoin are dropped. A group that was Empty waits
//     InitialRebalanceDelay for more members first (extended while members keep arriving, up to
//     the rebalance timeout), like Kafka's group.initial.rebalance.delay.ms.
//   - A member that rejoins a Stable group with unchanged protocols and is not the leader gets
//     the current generation back without a rebalance; the leader or changed metadata triggers
//     one. In CompletingRebalance an unchanged rejoin gets the current join result again.
//   - Static members (group.instance.id): a known instance joining with an empty member id gets
//     a new member id and the old one is fenced (FENCED_INSTANCE_ID for requests carrying the
//     old id and the instance id). In a Stable group with unchanged protocols there is no
//     rebalance: the join answers the current generation and the old leader id (so a restarted
//     leader acts as a follower), and SyncGroup returns the member's existing assignment.
//   - SyncGroup: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS while preparing;
//     followers wait for the leader; members the leader did not assign get an empty
//     assignment. If the leader does not sync within the rebalance timeout, members that did
//     not send SyncGroup are dropped and the group rebalances.
//   - Heartbeat refreshes the session and answers REBALANCE_IN_PROGRESS while preparing. A
//     member whose session expires (no request within its session timeout while it is not
//     parked in a JoinGroup or SyncGroup) is removed and the group rebalances.
//   - OffsetCommit: generation -1 with no member id is a "simple" commit, allowed only while
//     the group has no members (UNKNOWN_MEMBER_ID otherwise; for a group that does not exist
//     any other generation is ILLEGAL_GENERATION); otherwise fencing as for Heartbeat, and
//     REBALANCE_IN_PROGRESS in CompletingRebalance. Commits are allowed while preparing a
//     rebalance (eager consumers commit before they rejoin). Metadata over MaxMetadataBytes is
//     OFFSET_METADATA_TOO_LARGE. Topics are not checked against the broker's topics. A
//     commit stamped by its sender (OffsetCommitReq Writer, Seq: the gateway stamps each of
//     its commits) is not applied to a partition whose offset the same Writer committed
//     under a higher Seq (Superseded): it is a late copy of an older commit (the gateway sent
//     it again through another broker, and the first one delivered its copy later) and is
//     answered as committed, overwritten at once by the newer one. Other writers' and
//     unstamped commits apply in arrival order, as Kafka's. The stamps are kept with the
//     offsets in memory and by the metadata quorum (Record Writer, Seq), not in the offset
//     log in Dir (a stand-alone broker's coordinator: no commit reaches it twice).
//   - OffsetFetch returns -1 for partitions without a commit. A commit is applied only once it
//     is durable, so the coordinator never answers UNSTABLE_OFFSET_COMMIT itself; offsets
//     committed in a transaction are held by the transaction coordinator (broker/txn) and
//     applied here with CommitTxnOffsets (no member checks) when the transaction commits, and
//     the gateway answers UNSTABLE_OFFSET_COMMIT to require_stable fetches meanwhile.
//   - DescribeGroups reports an unknown group as Dead with no error (Kafka up to v5);
//     DeleteGroups needs an Empty group (NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND); OffsetDelete
//     refuses topics a consumer group's members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC, read
//     from the consumer-protocol subscription metadata).
//
// # Consumer groups (KIP-848)
//
// ConsumerGroupHeartbeat and ConsumerGroupDescribe (consumer.go, assign.go) serve Kafka 4.0's
// "consumer" group protocol in the same Machine, beside classic groups, sharing their
// committed offsets, timers and owner goroutine. The broker assigns: each heartbeat carries the
// member's subscription and owned partitions and (from the gateway) the cluster's topics;
// the answer carries the member epoch and, when it changed, the member's whole assignment.
//
//   - Epochs: the group epoch is bumped by every join, leave, expiry, subscription or
//     assignor change and every change of a subscribed topic (created, deleted, grown); the
//     target assignment is recomputed at once (its epoch equals the group epoch). A member
//     reconciles towards its target as Kafka's CurrentAssignmentBuilder: partitions it must
//     give up are revoked first (it stays at its epoch, state UNREVOKED, until a heartbeat
//     reports them gone); then it moves to the target epoch and gets the target partitions no
//     other member holds (those others hold stay pending, state UNRELEASED, and are given on a
//     later heartbeat once released). A partition is never held by two members.
//   - Fencing: a heartbeat with an epoch newer than the member's, or older and not (the
//     previous epoch with owned partitions a subset of its assignment), is
//     FENCED_MEMBER_EPOCH; an unknown member is UNKNOWN_MEMBER_ID (FENCED_INSTANCE_ID when its
//     instance id belongs to another member). Epoch 0 joins (the member id is the client's,
//     v1, or minted, v0); a known member rejoining with 0 keeps its state and gets its
//     assignment again. -1 leaves; -2 is a static member's temporary leave: it keeps its
//     assignment and epoch until its session expires or a member with its instance id joins
//     and takes them over without a rebalance. A static member joining while the instance
//     id's member is active is UNRELEASED_INSTANCE_ID.
//   - Timers: a member is removed when it sends nothing for ConsumerSessionTimeout (Kafka's
//     group.consumer.session.timeout.ms, 45 s) or does not finish a revocation within its
//     rebalance timeout; HeartbeatIntervalMs is ConsumerHeartbeatInterval (5 s).
//   - Validation: INVALID_REQUEST (with Kafka's message) for a join without rebalance timeout,
//     subscription or with owned partitions, UNSUPPORTED_ASSIGNOR for a ServerAssignor other
//     than uniform or range, INVALID_REGULAR_EXPRESSION for a regex Go's regexp (RE2, as
//     Kafka's RE2/J) rejects. A regex must match the whole topic name, as in Kafka.
//   - Assignors: the group uses the assignor most members ask for (uniform on a tie or when
//     none asks). range: per topic, the subscribed members sorted by id get contiguous ranges
//     (Kafka's classic range). uniform: every member gets P/M or P/M+1 partitions (same
//     subscriptions), sticky to the previous target (a member keeps what it had up to its
//     share); with different subscriptions each partition goes to the least loaded subscriber
//     (balanced as far as the subscriptions allow, not Kafka's exact heterogeneous algorithm).
//     Racks are not considered.
//   - Offsets: OffsetCommit's generation is the member epoch. The current epoch is accepted;
//     an older one for partitions the member has held since that epoch (Kafka 4.3, KIP-1251:
//     a commit racing a reconciliation is not refused); a newer one, or an older one for a
//     partition not held since, is STALE_MEMBER_EPOCH; a generation-less commit only while
//     the group has no members. OffsetFetch does not check the v9 member epoch (it answers
//     as for an admin fetch). OffsetDelete refuses the topics members subscribe to.
//   - Mixed groups: the first ConsumerGroupHeartbeat to an empty classic group (no members,
//     offsets kept) makes it a consumer group, and a JoinGroup to a consumer group without
//     members makes it classic again (offsets kept), as Kafka 4.0 converts empty groups. A
//     ConsumerGroupHeartbeat to a classic group with members is GROUP_ID_NOT_FOUND ("is a
//     classic group with members"); a JoinGroup to a consumer group with members is
//     INCONSISTENT_GROUP_PROTOCOL; SyncGroup/Heartbeat/LeaveGroup to it are UNKNOWN_MEMBER_ID.
//     Kafka's online migration (classic members inside a consumer group and the reverse) is
//     not implemented. DescribeGroups answers a consumer group with GROUP_ID_NOT_FOUND and
//     ConsumerGroupDescribe a classic group with members likewise, as Kafka (an empty classic
//     group, e.g. a consumer group's offsets after a restart, is described as an Empty
//     consumer group: a decision, since the group type is not durable); ListGroups lists
//     both with their type. DeleteGroups needs a consumer group without members.
//   - Durability: unlike classic membership (see "Durable membership" below), consumer-group
//     membership (epochs, assignments) is not durable and not replicated: after a restart
//     or a coordinator move (the quorum leader changed) members get UNKNOWN_MEMBER_ID and
//     rejoin with epoch 0 (Kafka keeps it in several record types of its own: member
//     metadata, target and current assignments; not done here). Committed
//     offsets are as durable and replicated as for classic groups (the same records).
//     Because a new coordinator does not know which partitions the previous one's members
//     still consume, it gives no partition for ConsumerStartGrace (two heartbeat intervals,
//     10 s) after it starts: every live member heartbeats meanwhile, gets UNKNOWN_MEMBER_ID
//     and lets its partitions go before anyone is given them (joins and epochs proceed;
//     members are UNRELEASED until then). A member that does not heartbeat for that long
//     can still overlap with its successor; durable membership (Kafka keeps it in
//     __consumer_offsets) would close that and is not implemented.
//
// # Durable membership (members.go)
//
// A classic group's membership is durable, as Kafka's GroupMetadata records make it: a
// KindMembers record (a Membership: generation, state, protocol type and name, leader, and
// per member its id, instance id, client id and host, timeouts, protocols and, Stable, its
// assignment) is written where Kafka stores the group and where an answer tells a member
// something a later coordinator must know, and every such answer waits for it:
//
//   - the join phase of a rebalance completes: every JoinGroup answer carries the group as
//     CompletingRebalance (or Empty, recorded on its own, when no member is left), so no
//     member learns a generation that is not durable; rejoins answered with the current
//     generation carry it too (it may be one whose record failed);
//   - the leader's SyncGroup makes the group Stable: the leader's and the parked followers'
//     answers carry the assignments;
//   - a static member is replaced without a rebalance (its join answer);
//   - LeaveGroup removed members: the answer carries the group without them.
//
// A new coordinator (Machine.RestoreMembers, called by Open after the records are applied)
// restores the last record of each group: members keep their ids, generation, protocol and
// leader, and a Stable group its assignments, so their Heartbeat, OffsetCommit and SyncGroup
// succeed as they did; every session timeout and a rebalance in progress (its join or sync
// deadline) count from the takeover. Not recorded, as in Kafka: members that joined a
// rebalance still in its join phase (their retried JoinGroup is UNKNOWN_MEMBER_ID and they
// join afresh; a new member owns nothing), expired sessions and members dropped at a
// rebalance timeout (a new coordinator restores them and they expire again: nobody else was
// given their partitions, which takes a completed, recorded rebalance). A group restored while
// PreparingRebalance (a member left) waits for the recorded members to rejoin. The
// generation is part of the record (KindGeneration is no longer written; earlier logs are
// read): a coordinator started later goes on above it, as Kafka's. A member's cooperative
// subscription carries its generation and the assignor believes the claim of the higher one
// (KIP-792); generations numbered from 1 again let a member of an old coordinator keep
// partitions another member had consumed (and committed) since. A membership whose encoding
// exceeds MaxMembershipBytes (1 MiB) is recorded as Empty at its generation: its members
// rejoin a new coordinator. Membership came to be recorded because kgo (v1.22), told
// UNKNOWN_MEMBER_ID on JoinGroup, rejoins keeping its owned partitions and positions (Java
// drops them, KAFKA-12983): with every member unknown to each new coordinator, a member kept
// consuming a partition another had been given, from its old position, and committed below
// (the MajorityMinoritySplit fault of interop/repl).
//
// Decisions where Kafka's behaviour is not a spec: a second JoinGroup from a member whose first
// is still parked answers the first with REBALANCE_IN_PROGRESS; a late follower's SyncGroup
// in a Stable group is answered at once, without waiting for the record (it carries what the
// leader's recorded answer did, unless that record failed: the group then rebalances at the
// leader's rejoin); committed offsets do not expire (Kafka's offsets.retention.minutes is not
// implemented).
//
// # Offset log
//
// Committed offsets live in a wal.Log under Dir, in a subdirectory named "offsets-" followed by
// a 16-digit hex generation. The log is a member of the Store's own node-wide commit journal
// (wal.OpenStore(Dir), journal files under Dir/commitlog; decision: a journal of its own
// rather than the broker's, so group.Open stays independent of broker.Open; the cost is one
// more fsync when a produce and a commit coincide). So a commit's durability is the journal's
// fsync, and recovery knows the durable point exactly: a flipped bit in an acknowledged commit
// entry past the log's recovery point is repaired from the journal, and damage below it (or in
// the journal) fails OpenStore with ErrDamaged; neither is cut as a torn tail, which would
// roll a committed offset back. A directory written by an earlier release (standalone logs,
// no commitlog) opens as before and is migrated by the first open. Each WAL entry
// (CRC-checked by the WAL) is one batch of records, written atomically and durable before the
// request that caused it is answered:
//
//	entry   = version:u8 (=1) | flags:u8 (bit 0: snapshot) | count:uvarint | record*count
//	record  = kind:u8 | group:str | body
//	body    = kind 1 commit:        topic:str | partition:i32 | offset:i64 | leaderEpoch:i32 |
//	                                metadata:str | commitTimeMs:i64
//	          kind 2 delete offset: topic:str | partition:i32
//	          kind 3 delete group:  (nothing)
//	          kind 4 generation:    generation:i32 (the group's last generation handed out;
//	                                no longer written, read from earlier logs)
//	          kind 5 members:       membership:str (AppendMembership's encoding, below)
//	str     = length:uvarint | bytes
//
//	membership = version:u8 (=1) | generation:i32 | state:u8 (0 Empty, 1 PreparingRebalance,
//	             2 CompletingRebalance, 3 Stable) | protocolType:str | protocol:str |
//	             leader:str | count:uvarint | member*count
//	member     = id:str | instance:str | clientID:str | clientHost:str | sessionMs:i32 |
//	             rebalanceMs:i32 | count:uvarint | (name:str | metadata:str)*count |
//	             assignment:str (Stable only)
//
// The metadata quorum stores the same membership encoding (metadata.GroupMembers).
//
// Integers are big-endian. Replaying every entry in order with Machine.Apply, then
// Machine.RestoreMembers, rebuilds the state.
//
// Which generation holds the state is recorded in Dir/current-generation (14 bytes: magic "OG"
// | generation u64 | CRC-32C of the first 10 bytes u32), replaced atomically (temp file, fsync,
// rename, fsync Dir). A new directory first gets generation 0 ("none yet"), then generation 1
// with an empty snapshot entry, then the file names 1. Compaction: when the log grows past
// CompactBytes, the current state is written as one snapshot entry at the start of a new log
// (numbered above every generation directory that exists or was tried since open) and
// fsynced, the file is switched to it, and only then is the old log removed. On open the
// named generation must be there and start with its snapshot entry; if it does not (damage
// the WAL cut as a torn tail, a lost directory), OpenStore fails with ErrDamaged, logs it as
// an error and deletes nothing: it never starts empty or falls back to an older generation,
// which would lose or roll back committed offsets. Every other generation (a compaction that
// crashed before the switch, or one superseded) is removed. A directory without the file (written by an older release) opens
// with the old rule, the newest generation whose first entry is a snapshot, and gets the
// file; if no generation is complete it is refused as damaged. Damage inside the named
// generation past its snapshot is the WAL's to report (see package wal).
//
// If an append or fsync fails, the commits of that batch are answered
// COORDINATOR_NOT_AVAILABLE (retriable) and are not applied. The journal is then failed
// (fail-stop: it refuses every write, and its tail past the last successful fsync was cut,
// fsyncgate); before the next append the Store closes and reopens it (recovery cuts the
// log's entries the journal lost, so no commit answered with an error comes back) and
// rewrites the applied state as a new snapshot generation, so the coordinator recovers by
// itself once the disk does. If switching the
// current-generation file fails after its rename was attempted, which generation is current
// is unknown: the store stops (ErrStoreFailed, logged as an error, Config.OnStop called: the
// binaries exit on it) and every later commit is answered COORDINATOR_NOT_AVAILABLE until a
// restart finds out.
package group
