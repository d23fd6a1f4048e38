// Package metadata is the cluster metadata state machine of the metadata quorum (issue #15):
// deterministic and I/O-free. Every broker runs one State under its raft node (broker/quorum);
// the raft leader (the controller) proposes Commands, and every node applies the committed
// ones in log order, so every node holds the same State.
//
// # State
//
//   - cluster id (InitCluster: the first one wins);
//   - brokers: raft id ↔ mesh NodeID ↔ peer address bytes ↔ rack, plus a Kafka broker id
//     (int32) given to a NodeID on its first registration and kept for it forever. One live
//     raft id per NodeID: a new incarnation (wiped data dir, new raft id) replaces the old one,
//     and RegisterBrokerResult.Replaced names the raft id the leader must remove from raft;
//   - allowed NodeIDs (operator admission, AllowBroker/DisallowBroker; seeds are the
//     controller's configuration, not state);
//   - topics: name, 16-byte id, config overrides, and per partition its owner NodeID and an
//     epoch (0 at creation, +1 on each Reassign). Partitions of a removed broker keep their
//     owner until a Reassign moves them (OrphanedPartitions lists them);
//   - replicated partitions (issue #16; replication factor ≥ 2): the replica list (raft ids,
//     the preferred leader first, whose NodeID is the partition's Owner), and what the
//     partition's raft leader last reported: leader raft id (0: none known), leader epoch
//     (its raft term) and ISR (all replicas at creation). A topic's partitions all have the
//     same replication factor (1 = single-owner). A removed broker incarnation (RemoveBroker,
//     or replaced by a new raft id of its NodeID) leaves every ISR and stops being leader; its
//     replicas stay in the lists, offline (OfflineReplicas), until a replica reassignment
//     moves them. Reassign refuses replicated partitions. The per-broker
//     partition limit (MaxPartitions) counts partitions by Owner, i.e. a replicated
//     partition once, on its preferred leader;
//   - replica reassignments of replicated partitions (reassign.go; Kafka's
//     AlterPartitionReassignments): per partition a Target replica list (same length as
//     Replicas: the replication factor does not change) and Adding, the replicas outside
//     Replicas the move may have added to the raft group. Replicas stays the settled list
//     until the partition's leader, whose raft group's voters are then exactly Target,
//     proposes CompleteReassignment. A cancel makes Target = Replicas (the group is moved
//     back). During a move the leader and ISR may name any member (Replicas ∪ Adding);
//   - the next producer id (AllocateProducerIDs hands out blocks, never reused);
//   - committed offsets by group, topic and partition (offset, leader epoch, metadata, commit
//     time), what group.Record of KindCommit carries. Group membership is the coordinator's
//     soft state and is not here;
//   - security (security.go, issue #17): Kafka ACL bindings, SCRAM credentials (salt,
//     iterations, StoredKey, ServerKey; never a password), client quotas by entity, and the
//     roles of mesh NodeIds (RoleBroker, RoleGateway, RoleAdmin bits). Kafka's validation
//     (principals, mechanisms, iteration bounds, quota keys, per-user all-or-nothing) is the
//     proposer's; Apply keeps the state well formed.
//
// # Commands and results
//
// EncodeCommand gives a command's bytes (the entry to propose); Apply decodes them and
// returns a typed result (result.go) with Kafka error codes (the Code* constants):
//
//	InitCluster          INVALID_REQUEST (empty id), INCONSISTENT_CLUSTER_ID (another id is set)
//	RegisterBroker       INVALID_REQUEST (raft id 0, zero NodeID, raft id of another NodeID)
//	RemoveBroker         BROKER_NOT_AVAILABLE (unknown raft id)
//	Allow/DisallowBroker never fail; Changed says whether the set changed
//	CreateTopics         per topic, in the order package broker checks: INVALID_REQUEST (name
//	                     listed twice), INVALID_TOPIC_EXCEPTION (bad name; collides with a
//	                     topic's name up to '.' vs '_'), TOPIC_ALREADY_EXISTS, INVALID_REQUEST
//	                     (zero or used topic id), INVALID_PARTITIONS (count <= 0),
//	                     INVALID_REPLICA_ASSIGNMENT (not one owner per partition, or an owner
//	                     that is not a registered broker), INVALID_PARTITIONS (an owner would
//	                     exceed MaxPartitions, counting what earlier topics of the command add)
//	DeleteTopics         per topic: INVALID_REQUEST (listed twice), UNKNOWN_TOPIC_OR_PARTITION
//	CreatePartitions     per topic: INVALID_REQUEST (listed twice), UNKNOWN_TOPIC_OR_PARTITION,
//	                     INVALID_PARTITIONS (count not above the current one), then the owner
//	                     and limit checks of CreateTopics
//	AlterConfigs         per topic: INVALID_REQUEST (listed twice, a key named twice),
//	                     UNKNOWN_TOPIC_OR_PARTITION
//	Reassign             per move: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT
//	AllocateProducerIDs  INVALID_REQUEST (count not in 1..MaxProducerIDBlock),
//	                     UNKNOWN_SERVER_ERROR (id space exhausted)
//	GroupGenerations     INVALID_GROUP_ID (an empty group id; nothing recorded); a generation
//	                     at or below the recorded one changes nothing; one above it drops
//	                     the group's recorded membership (GroupMembers)
//	GroupMembers         INVALID_GROUP_ID (empty group id), INVALID_REQUEST (negative
//	                     generation, record over MaxGroupMembersRecord); a record below the
//	                     group's recorded generation is stale (Stale, nothing changes);
//	                     otherwise it replaces the group's membership and raises its
//	                     generation (generation 0 or an empty record: no membership)
//	CommitOffsets        INVALID_GROUP_ID (empty group id); an offset whose Writer (not 0)
//	                     wrote the partition's offset under a higher Seq is skipped, not an
//	                     error (a late copy of an older commit: group.Superseded's rule)
//	DeleteGroups         per group: GROUP_ID_NOT_FOUND (no committed offsets); the recorded
//	                     membership is dropped in either case (the generation stays)
//	DeleteOffsets        GROUP_ID_NOT_FOUND (no committed offsets)
//	AlterReassignments   per partition: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (listed
//	                     twice), INVALID_REPLICA_ASSIGNMENT (single-owner partition; a target
//	                     replica unregistered or listed twice), INVALID_REPLICATION_FACTOR
//	                     (target length not the replication factor), NO_REASSIGNMENT_IN_PROGRESS
//	                     (a cancel with none). A target that only reorders the replicas of a
//	                     partition not moving settles at once (no raft change needed)
//	CompleteReassignment UNKNOWN_TOPIC_OR_PARTITION, NO_REASSIGNMENT_IN_PROGRESS,
//	                     INVALID_REPLICA_ASSIGNMENT (not the current target)
//	PutTxn               INVALID_REQUEST (empty id, record over MaxTxnRecord)
//	PutShares            INVALID_REQUEST (an item with an empty group, an empty key without
//	                     drop_group, or a record over MaxShareRecord; nothing changes)
//	UpdatePartition      UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST (single-owner partition,
//	                     negative epoch, ISR without the leader or with a duplicate),
//	                     INVALID_REPLICA_ASSIGNMENT (leader or ISR member not a replica),
//	                     FENCED_LEADER_EPOCH (epoch below the stored one, or another leader at
//	                     the stored epoch)
//	CreateACLs/DeleteACLs never fail; Changed per binding (added / deleted)
//	AlterScram           per deletion RESOURCE_NOT_FOUND (no such credential, or deleted
//	                     earlier in the command); per upsertion INVALID_REQUEST (empty user,
//	                     mechanism or iterations not positive, empty salt or key)
//	AlterQuotas          per entry INVALID_REQUEST (entity empty, a part without a type,
//	                     types not strictly ascending, a default part with a name; a value
//	                     not finite and positive; a key set and removed, removed twice, or "")
//	SetRoles             INVALID_REQUEST (zero NodeId, unknown role bits); Previous roles
//
// CreateTopics and CreatePartitions with replica lists also answer INVALID_REPLICA_ASSIGNMENT
// for lists that are not one per partition, of one length ≥ 2 (CreatePartitions: the topic's
// replication factor; a single-owner topic takes none), of distinct registered raft ids whose
// first one's NodeID is the partition's owner.
//
// Items of one command are independent: the valid ones are applied, the others answered with
// their code, as Kafka answers per topic. What needs the broker's configuration is checked by
// the proposer before it proposes, not here: config names and values (broker.validateConfigs,
// on the result of ApplyConfigChange), replication factor, the default partition count, offset
// metadata size and group membership. Validate runs a command against the current state
// without changing it (validate-only requests, checks before proposing).
//
// # Errors and bad entries
//
// Apply never panics and never wedges the log: an entry it cannot decode (unknown encoding
// version, unknown kind, truncated or trailing bytes, a map not in canonical order) changes
// nothing but the last applied index and is answered with an error wrapping ErrMalformed,
// ErrUnknownCommand or ErrUnknownVersion. An empty entry (raft's leader no-op) is applied as a
// no-op with a nil result. Indexes must grow but may skip (raft's conf-change entries are not
// applied here); an index at or below the last applied one is refused with ErrStaleIndex and
// changes nothing.
//
// # Determinism
//
// A result is a function of (state, command) only: no clock, no randomness, no map iteration
// order inside Apply (ids, owners and commit times come in the command; where several items
// are checked in a loop, the order is the command's or sorted). Snapshot is canonical: every
// collection in strictly ascending order, so equal states give byte-identical snapshots, and
// Restore accepts only that order.
//
// # Encoding
//
// Commands (postcard primitives of internal/postcard; maps as key/value sequences in strictly
// ascending key order; NodeID and TopicID as fixed arrays; int32/int64 zigzag):
//
//	command  = version:u8 (=1) | kind:varint | fields
//	kind      1 InitCluster         cluster_id:str
//	          2 RegisterBroker      raft_id:u64 | node_id:[32] | addr:bytes | rack:str
//	          3 RemoveBroker        raft_id:u64
//	          4 AllowBroker         node_id:[32]
//	          5 DisallowBroker      node_id:[32]
//	          6 CreateTopics        max_partitions:i32 | seq<name:str | id:[16] |
//	                                partitions:i32 | configs:map<str,str> | owners:seq<[32]>>
//	          7 DeleteTopics        names:seq<str>
//	          8 CreatePartitions    max_partitions:i32 | seq<name:str | count:i32 | owners:seq<[32]>>
//	          9 AlterConfigs        seq<name:str | replace:bool | set:map<str,str> | delete:seq<str>>
//	         10 Reassign            seq<topic:str | partition:i32 | owner:[32]>
//	         11 AllocateProducerIDs count:i32
//	         12 CommitOffsets       group:str | seq<topic:str | partition:i32 | offset:i64 |
//	                                leader_epoch:i32 | metadata:str | commit_time_ms:i64>
//	         13 DeleteGroups        groups:seq<str>
//	         14 DeleteOffsets       group:str | seq<topic:str | partition:i32>
//	         15 CommitOffsets       as 12, each offset followed by writer:u64 | seq:u64
//	                                (written when any offset has a writer; see OffsetCommit)
//	         16 GroupGenerations    seq<group:str | generation:i32>
//	         17 GroupMembers        group:str | generation:i32 | record:bytes (broker/group's
//	                                Membership encoding, opaque here; groupmembers.go)
//	         20 CreateTopics        as 6, each topic followed by replicas:seq<seq<raft_id:u64>>
//	                                (written when any topic has replica lists)
//	         21 CreatePartitions    as 8, each topic followed by replicas:seq<seq<raft_id:u64>>
//	                                (written when any topic has replica lists)
//	         22 UpdatePartition     topic:str | partition:i32 | leader:u64 | leader_epoch:i32 |
//	                                isr:seq<u64>
//	         23 AlterReassignments  seq<topic:str | partition:i32 | target:seq<u64>>  (empty
//	                                target: cancel)
//	         24 CompleteReassignment topic:str | partition:i32 | target:seq<u64>
//
//	         30 CreateACLs          seq<acl>
//	         31 DeleteACLs          seq<acl>
//	         32 AlterScram          seq<user:str | mechanism:i8> |
//	                                seq<user:str | credential>
//	         33 AlterQuotas         seq<entity | set:map<str,f64> | remove:seq<str>>
//	         34 SetRoles            node_id:[32] | roles:u8
//	         50 PutTxn              id:str | record:bytes  (empty record: remove the id)
//	         55 PutShares           seq<group:str | key:str | record:bytes | drop_group:bool>
//	                                (empty record: remove the key; drop_group: the group)
//	acl        = resource_type:i8 | resource_name:str | pattern_type:i8 | principal:str |
//	             host:str | operation:i8 | permission:i8      (i8 = one byte, two's complement)
//	credential = mechanism:i8 | iterations:i32 | salt:bytes | stored_key:bytes | server_key:bytes
//	entity     = seq<type:str | default:bool | name:str>      (f64 = 8 bytes little-endian)
//
// Kinds 20–29 belong to replicated partitions (issue #16), 30–39 to security, 50–54 to the
// transaction coordinator (txn.go), 55–59 to the share-group coordinator (share.go).
//
// Kinds are never renumbered (they live in raft logs); a new field means a new encoding
// version, which older code answers with ErrUnknownVersion rather than misreading.
//
// Snapshots:
//
//	snapshot = "MKMD" | version:u8 (=1) | crc32c(body):u32 big-endian | body
//	body     = applied:u64 | cluster_id:str | next_producer_id:i64 | next_kafka_id:i32 |
//	           seq<node_id:[32] | kafka_id:i32>                  (by NodeID)
//	           seq<raft_id:u64 | node_id:[32] | addr:bytes | rack:str>  (by raft id)
//	           seq<node_id:[32]>                                 allowed, by NodeID
//	           seq<name:str | id:[16] | configs:map<str,str> |
//	               seq<owner:[32] | epoch:i32>>                  topics, by name
//	           seq<group:str | seq<topic:str | partition:i32 | offset:i64 |
//	               leader_epoch:i32 | metadata:str | commit_time_ms:i64>>  by group, topic, partition
//	           section*                                          trailing sections
//	section  = tag:uvarint | body:bytes    in strictly ascending tag order; a section is
//	           written only when its part of the state is not empty (so a state without it
//	           snapshots as before the section existed); an unknown tag is refused
//	tag 2      replicated partitions (issue #16), by topic name (topics without any are left
//	           out), then partition: seq<name:str | seq<partition:i32 | replicas:seq<u64> |
//	           leader:u64 | leader_epoch:i32 | isr:seq<u64>>>
//	tag 3      security: seq<acl> (sorted by every field in order) |
//	           seq<user:str | seq<credential>> (by user, then mechanism) |
//	           seq<entity | map<str,f64>> (by entity) | seq<node_id:[32] | roles:u8> (by NodeId)
//	tag 4      reassignments in progress, by topic name, then partition: seq<name:str |
//	           seq<partition:i32 | target:seq<u64> | adding:seq<u64>>>
//	tag 5      committed offsets' writer stamps (OffsetCommit Writer, Seq), stamped offsets
//	           only, by group, then topic and partition: seq<group:str | seq<topic:str |
//	           partition:i32 | writer:u64 | seq:u64>>, each naming an offset of the body
//	tag 6      groups' recorded generations (GroupGenerations), by group:
//	           seq<group:str | generation:i32>, each above 0
//	tag 7      groups' recorded memberships (GroupMembers), by group: seq<group:str |
//	           generation:i32 | record:bytes>, each generation equal to the group's in
//	           section 6 and each record of 1..MaxGroupMembersRecord bytes
//	tag 12     transaction coordinator records (txn.go), by transactional id:
//	           seq<id:str | record:bytes> (records are broker/txn's encoding, opaque here)
//	tag 13     share-group coordinator records (share.go), by group: seq<group:str |
//	           seq<key:str | record:bytes>> (keys ascending; broker/share's encoding, opaque)
//
// Restore checks the checksum, the order, and the invariants (unique NodeIDs, topic ids and
// names, valid names, every broker with a Kafka id, no empty group; replica lists of ≥ 2
// distinct raft ids, one factor per topic, leader and ISR among the members, targets of the
// replication factor, adding replicas outside the replicas) and leaves the state
// unchanged on any error (wrapping ErrBadSnapshot).
//
// # Concurrency
//
// State is safe for concurrent use: Apply and Restore hold a write lock, Snapshot, Validate and
// the read accessors a read lock; accessors return copies.
package metadata
