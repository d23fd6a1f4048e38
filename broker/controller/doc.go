// Package controller runs the cluster's controller role on the metadata quorum (issue #15):
// every broker runs a raft node (package broker/quorum) applying the metadata state machine
// (package broker/metadata), and the controller is whichever broker is the raft leader.
//
// # What it serves
//
// Controller.Service is the part of brokerop.Service that is cluster-wide: Metadata and the
// admin ops (topics, partitions, configs, DescribeCluster), the group ops, InitProducerID,
// and the quorum ops (ClusterBrokers, Placement, QuorumJoin, QuorumAdmin, DescribeQuorum).
// Every broker serves them on its
// kafkaop ALPN next to its own data ops:
//
//   - On the leader they run locally. Reads (Metadata, DescribeConfigs, OffsetFetch,
//     Placement, ClusterBrokers) first pass a raft ReadBarrier (ReadIndex), so the answer is
//     linearizable. Topic changes go through the local broker.Broker's own admin code (Kafka's
//     validation and error codes), whose Registry is the quorum (Registry, registry.go): its
//     Store proposes the difference (CreateTopics with the broker's new topic ids and owners
//     chosen by the leader, DeleteTopics, CreatePartitions, AlterConfigs) and returns once it
//     is applied here.
//   - On any other broker they are forwarded to the leader over the kafkaop carrier (a
//     broker→broker brokermesh.Caller). While no leader is known the op waits (bounded,
//     Config.LeaderWait, default 3 s) and then fails with a Go error, which the gateway
//     answers with a retriable Kafka error (NOT_LEADER_OR_FOLLOWER / LEADER_NOT_AVAILABLE /
//     COORDINATOR_NOT_AVAILABLE by API) — never a fatal one. A forwarded op is abandoned
//     the moment this broker's raft sees the leader change (quorum.Node.LeaderWatch: an
//     election started, or another broker leads) and forwarded to the new leader: a leader
//     that died never answers, and its connection would only time out after the mesh's idle
//     timeout. (An op retried so may have taken effect on the old leader, as after a Kafka
//     client's own retry: offset commits are idempotent, producer ids fresh, and a topic
//     created there answers TOPIC_ALREADY_EXISTS.) A forward may also arrive late, after its
//     caller gave up and sent the op through another broker, and after newer ops: an offset
//     commit carries its gateway's stamp (brokerop.OffsetCommitReq Writer, Seq), and the
//     coordinator and the quorum's state never let a late copy overwrite the same writer's
//     newer commit (group.Superseded; the stamps are part of the committed offsets).
//   - DescribeQuorum is the leader's raft view (term, commit index, voters and learners with
//     their raft Match and when the leader last heard from them, by Kafka broker id), which
//     the gateway serves as Kafka's DescribeQuorum (API 55); the controller id of Metadata
//     and DescribeCluster is the leader's Kafka id (the gateway passes DescribeCluster's on;
//     its own Metadata names itself, the one broker clients see).
//
// Applied topic changes are pushed into the local broker.Broker on every node
// (broker.Broker.SyncTopicsFrom), so a partition's owner knows its topic without the gateway
// creating it there. The applied state is read under the broker's admin lock: on the leader
// an admin op holds that lock from before its change is applied until the broker made it, so
// a sync that read the state before the apply would undo the op (session 10: a deleted RF=3
// topic came back with an empty log, its raft group bootstrapped again on the leader, and
// etcd raft panicked there on a heartbeat counting the old log's entries). Placement is decided by the leader when partitions are created: owners
// are chosen among live brokers (heard from within Config.LiveWindow, by raft progress
// RecentActive; the leader always counts as live),
// round robin from a hash of the topic name, and stored in the metadata state.
//
// # Replicated partitions (issue #16): placement and reconcile
//
// A topic's replication factor (RF) comes from CreateTopics; -1 (and auto-creation) means
// Config.DefaultReplicationFactor (cmd/broker -default-replication-factor), by default 3 with
// at least three live brokers and the live broker count below that (auto-creation clamps a
// configured default to the live count; an explicit CreateTopics above the live brokers is
// INVALID_REPLICATION_FACTOR). CreatePartitions keeps the topic's RF (INVALID_REPLICATION_FACTOR
// when fewer brokers are live). min.insync.replicas must be 1..RF (INVALID_CONFIG), at
// CreateTopics and at (Incremental)AlterConfigs. RF 1 topics are single-owner partitions,
// placed exactly as before replication.
//
// For RF ≥ 2 each partition gets RF replicas (raft ids of live registered brokers):
// the first, the preferred leader and the partition's owner, round robin from a hash of the
// topic name over the brokers (sorted by NodeId; with rack labels, over a list that
// alternates racks), so leaders spread evenly; the followers are the next brokers after it,
// shifted each time the partitions wrap around the brokers, taken from racks the partition
// has no replica on yet while there are such (cmd/broker -rack). The choice is stored with
// the topic (metadata CreateTopics with replica lists).
//
// Every broker passes the applied replica lists to its broker (broker.SyncTopics,
// TopicRecord.Replicas), which runs a raft group for each partition it replicates. The
// broker's partition state hook (OnPartitionState: it leads at a term, with an ISR) queues a
// report, and a controller goroutine sends it as the UpdatePartition op (forwarded to the
// quorum leader like every controller op; the latest report per partition wins, failed sends
// are retried every Poll). The state keeps it only if its epoch (the raft term) is not older
// than the recorded one. Metadata then shows, per replicated partition, the leader's Kafka id
// and epoch (before any report: the preferred leader, epoch -1), the replicas, the ISR and
// the offline replicas (registered replica brokers the leader has not heard from within
// LiveWindow); a replica whose broker was removed or came back wiped (a new raft id) has no
// Kafka id any more and is left out of those lists until the controller replaces it (below).
// Placement answers each partition's leader NodeId (Leaders), which the gateways route data
// ops by.
//
// # Replica moves (moves.go; issue #16 item 3)
//
// A reassignment (Kafka's AlterPartitionReassignments, served as AlterReassignments and
// forwarded to the leader like every controller op) is recorded on the quorum (metadata
// AlterReassignments: per partition a Target and the Adding replicas) and carried out by the
// partition's raft leader, wherever it is: every broker's moveLoop looks, after each applied
// change and every Config.MoveEvery, at the moving partitions it leads (Config.Partitions, the
// broker's partition raft engine) and takes one step (nextMoveStep, I/O-free): remove a
// learner not in the target; add a missing target replica as a learner; promote a learner
// once recently active and within 64 entries of the commit index; remove a voter not in the
// target, the leader last, by handing its leadership to a caught-up target voter first; when
// the voters are exactly the target, report CompleteReassignment (brokers only, to the quorum
// leader), which settles the replica list (and the owner: the new first replica). Brokers run
// a moving partition's group on Replicas ∪ Adding; the Adding ones start it empty
// (broker.TopicRecord.Joining) and never bootstrap it. A cancel sets the target back to the
// replicas, walked the same way. ListReassignments reads the moves after a barrier; Metadata
// shows a moving partition's whole set, the target first.
//
// ElectLeaders (preferred) asks the broker leading each partition (TransferPartitionLeader,
// broker to broker) to hand the raft leadership to the first replica; it answers once the
// state records the new leader (bounded by LeaderWait). Unclean elections are never done: a
// partition with a leader answers ELECTION_NOT_NEEDED, one without
// ELIGIBLE_LEADERS_NOT_AVAILABLE.
//
// The quorum leader replaces gone replicas (replaceGone): a replica whose raft id is no
// longer a registered broker (removed with quorum remove, or replaced by a new incarnation of
// its NodeId after a wiped data dir) is reassigned to a live broker that is not a replica of
// the partition (pickReplacement: a rack the partition is not on, then the fewest replicas).
// With as many brokers as replicas that is the wiped broker's new incarnation. The
// decommission admin action (QuorumAdmin "decommission"; POST /quorum/decommission; CLI
// broker quorum decommission [-wait]) reassigns every replica of a broker the same way, and
// is refused when some partition has no other live broker to go to; QuorumStatus counts each
// broker's replicas, 0 once drained.
//
// The consumer-group coordinator (package broker/group) runs on the leader only; committed
// offsets are CommitOffsets proposals (group.OffsetLog backed by the quorum), so they survive
// the loss of any minority of brokers. Classic group membership is durable there too
// (package broker/group, "Durable membership"): the coordinator records each group's
// membership (generation, protocol, leader, members and, once Stable, their assignments) as
// a GroupMembers proposal (metadata kind 17, broker/group's Membership encoding) before it
// answers what reveals it (join results, the leader's sync, a leave), and a coordinator
// started on a new leader restores the members (group.Machine.RestoreMembers): they keep
// their ids and generation, their Heartbeat, OffsetCommit and SyncGroup succeed as on the
// old one, their session timeouts start at the takeover, and a rebalance is triggered only
// where Kafka would trigger one. A member that left is not restored (the leave is recorded
// before it is answered). A coordinator belongs
// to the leadership it was started in (the raft LeaderWatch channel of that moment): once
// that leadership ends, or an offset commit failed, it is never used again, and the next
// group op on the leader (or the watcher) starts a new one from the quorum's offsets and
// memberships, even
// if this broker leads again in between. A coordinator kept across a leadership another
// broker held meanwhile answered its own stale offsets (consumers resumed from older ones:
// committed offsets went backwards), accepted commits from members of its old generation
// (zombies rolling offsets back), and parked new joins waiting for those members to rejoin
// until the rebalance timeout. Generations go up across coordinators (each membership record
// carries its generation, recorded before any member learns it; a new coordinator starts
// each group above it): a member's cooperative subscription carries its generation, and the
// assignor believes the higher-generation claim on a partition (KIP-792), so a new
// coordinator numbering generations from 1 again let a member of the old one keep
// partitions another member had consumed and committed since, and commit below. Decision:
// membership became durable because a coordinator that forgot every member answered each of
// them UNKNOWN_MEMBER_ID, and kgo (v1.22) rejoins after that on JoinGroup keeping its owned
// partitions and positions (Java drops them, KAFKA-12983): a member went on consuming a
// partition another member had been given meanwhile, from its old position, and committed
// below it (the MajorityMinoritySplit anomaly of interop/repl). The quorum state keeps the
// last membership per group and ignores one below the group's recorded generation (a
// stale record); a membership record that cannot be decoded is skipped with a warning (its
// members rejoin). KIP-848 consumer-group membership is still not durable (members rejoin
// with epoch 0 after a failover; see broker/group). Producer ids come from the quorum in blocks of 1000 (AllocateProducerIDs): a
// block is never handed out twice.
//
// The transaction coordinator is bound to the leadership the same way, but its state is
// durable on the quorum (txn.go: each transactional id's record a PutTxn command), so a new
// leader's coordinator knows every transaction: it finishes those decided (markers into
// each partition's leader, offsets into the group coordinator) and aborts open ones at
// their transaction.timeout.ms. A TxnOffsetCommit naming a member (KIP-447) is fenced by
// the leader's group coordinator, against the restored membership after a failover, as for
// OffsetCommit.
//
// # Membership and admission
//
// A broker's raft id is random, made on first start and stored with its raft log
// (Dir/quorum/). A broker joins only if its NodeId is one of the leader's seeds
// (-quorum-seeds) or an operator allowed it (quorum allow). A fresh broker asks the seeds
// (QuorumJoin{RaftID, NodeAddr}); the leader registers it (RegisterBroker) and adds it as a
// raft learner, and promotes it to voter once it caught up while the voters are fewer than
// -quorum-voters. If no seed knows a cluster, the seed with the smallest NodeId that has an
// empty raft log bootstraps a cluster of one voter; the others join it. A broker started
// with no seeds is a quorum of one (go tool task up, up-single: unchanged).
// A NodeId that was not admitted can neither join nor be given partitions.
//
// # Security metadata and node roles (security.go)
//
// With Config.ClusterSecurity (cmd/broker sets it when started with seeds other than itself)
// ACL bindings, SCRAM credentials and client quotas are cluster metadata (metadata commands
// 30–33): the security ops (brokerop.SecurityService) and the client-quota ops run on the
// leader like every controller op (reads after a ReadBarrier), through package broker's own
// code (Kafka's validation and error codes) over stores whose Store proposes the difference.
// The founding broker imports the files it kept before (scram.credentials, acls,
// client_quotas); a joining broker's own files are not used (a warning says so). Without it
// (a broker started alone: go tool task up / up-single) they stay in those files.
//
// With NodeConfig.Authorizer (cmd/broker -mesh-authorizer) the broker authorizes the Kafka
// principal each gateway call names against the ACLs it holds (the quorum's, or its file's),
// whatever the gateway decided (authz.go; the rules are brokermesh's guard.go). Whatever the
// setting, only a node trusted as a gateway (Trust, the gateway or admin role) may name a
// principal; forwarded controller ops name none.
//
// Roles of mesh NodeIds (metadata.RoleGateway, RoleAdmin) are cluster metadata too:
// Trusts accepts a node with the gateway or admin role on every broker (besides each broker's
// own -trust list), and QuorumAdmin over the mesh runs only for fellow brokers and nodes with
// the admin role (MayAdminister; the loopback admin API is the operator). The admin actions
// allow-gateway, disallow-gateway, allow-admin and disallow-admin set them; the admin HTTP API
// takes them as POST /quorum/allow?node=<NodeId>&role=gateway (or disallow, role admin), the
// CLI as broker quorum allow -role gateway <NodeId>.
//
// # cmd/broker flags
//
//	-quorum-seeds   seed brokers of the metadata quorum, <nodeid>@host:port, comma separated
//	                (may include this broker itself); empty: a quorum of one
//	                [RAFKA_QUORUM_SEEDS]
//	-quorum-voters  voter target (default 3; 1 with no seeds) [RAFKA_QUORUM_VOTERS]
//	-admin          loopback HTTP address of the admin API, e.g. 127.0.0.1:9644; default off
//	                [RAFKA_ADMIN_ADDR]
//
// Brokers of one cluster must trust each other's kafkaop connections: a broker trusts its
// -trust list plus every seed and registered broker NodeId (forwarded controller ops and
// QuorumJoin travel broker→broker).
//
// # Admin HTTP API (loopback only; JSON answers; errors are 4xx/5xx with a text body)
//
//	GET  /quorum/status              this node's raft view and the brokers (QuorumStatus)
//	GET  /quorum/partitions?topic=T  the topic's partitions as placed: leader, epoch, replicas, ISR (Kafka ids)
//	POST /quorum/allow?node=<NodeId> admit a NodeId (AllowBroker); it may then join
//	POST /quorum/add?node=<NodeId>   admit it and, once it is a learner, promote it to voter
//	POST /quorum/decommission?node=<NodeId> move every replica the broker holds to other live
//	                                 brokers (replica reassignments); its "replicas" count in
//	                                 the status drops to 0 once they are done
//	POST /quorum/remove?node=<NodeId> remove the broker from the quorum and the broker table;
//	                                 its partitions are placed on live brokers again. The
//	                                 leader itself is removed by handing the leadership to
//	                                 the most caught-up live voter first, which removes it
//
// The write calls are forwarded to the leader like any controller op. The CLI wraps them:
//
//	broker quorum status [-admin 127.0.0.1:9644]
//	broker quorum allow|add|remove [-admin 127.0.0.1:9644] <NodeId>
//	broker quorum decommission [-wait] [-admin 127.0.0.1:9644] <NodeId>
//	broker quorum allow|disallow -role gateway|admin [-admin 127.0.0.1:9644] <NodeId>
//
// QuorumStatus (GET /quorum/status) is:
//
//	{"node_id": "<NodeId>", "raft_id": 123, "leader_raft_id": 456, "leader_node_id": "<NodeId>",
//	 "term": 3, "commit": 42, "applied": 42, "cluster_id": "…",
//	 "brokers": [{"node_id": "…", "raft_id": 456, "addrs": ["127.0.0.1:7070"], "relay": "",
//	              "voter": true, "learner": false, "live": true, "leader": true, "replicas": 4}]}
//
// # Decisions
//
//   - The broker's own admin code stays the judge of every topic change (names, configs,
//     limits, Kafka's error codes); the quorum is its Registry. Store proposes only the
//     difference from what the broker last had (synced or stored), so a topic the broker has
//     not applied yet is never proposed for deletion; admin ops run under one lock after a
//     ReadBarrier and a sync.
//   - The broker's admin code still judges CreateTopics (names, partitions, configs); the
//     controller decides the replication factor around it (the broker is given -1 and
//     creates no replicas itself) and hands the factor to the registry's placer for the
//     duration of the call.
//   - A removed broker's single-owner partitions are placed again (empty: their only copy
//     went with it); its replicas of replicated partitions are moved to live brokers by
//     reassignments (replaceGone), which copy the data from the partition's leader.
//   - Replica moves are carried out by the partition's raft leader, not by the controller: a
//     membership change can only be proposed by the group's leader, which also knows best when
//     a learner has caught up. The quorum holds only the intent (target) and the outcome; a
//     leader change mid-move loses nothing (the next leader looks at its raft membership and
//     goes on from there).
//   - One membership change at a time, add before remove (no joint consensus): the group never
//     has fewer voters than the replication factor, at the price of a short moment with one
//     voter more (majority of RF+1).
//   - A reassignment keeps the replication factor (INVALID_REPLICATION_FACTOR otherwise): the
//     metadata state and placement assume one factor per topic.
//   - A moved-away replica's log stays on its broker's disk (not deleted yet); if the replica
//     is later moved back there, raft catches that old log up from where it is.
//   - Decommission does not keep new partitions off the drained broker: remove it once drained.
//   - Liveness for placement is "heard from within LiveWindow" rather than raft's
//     RecentActive, which drops to false for every follower at each quorum check.
//   - A failed offset commit (outcome unknown: the proposal may still commit) rebuilds the
//     group coordinator from the quorum's state (at the next group op, or the watcher's
//     next look); its members are restored from the quorum's last recorded membership, as
//     after a failover.
//   - A joining broker learns the members' raft addresses (ClusterBrokers, and the leader's
//     in the join answer) before it asks to join, so it answers the leader's first messages.
//     It is promoted only once it holds the configuration that added it (broker/quorum's
//     promotion rule), so it never needs a seed's own answer to vote.
//   - Security metadata is served from the leader (forwarded) rather than from each broker's
//     applied copy: a gateway that authenticates right after a user was created through
//     another gateway sees the user. A SASL login costs one forwarded read.
//   - A data directory from before the quorum is imported (topics with their ids, committed
//     offsets, producer ids below its counter) only by the broker that bootstraps the
//     cluster; a joining broker with such a directory refuses to start rather than purge it.
package controller
