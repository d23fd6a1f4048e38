package brokerop

// Metadata-quorum ops (package broker/controller serves them on every broker; a broker that
// is not the quorum leader forwards them to it). Op codes: codes.go, 0x60–0x6F.

// ClusterBrokersReq asks for the brokers the metadata quorum knows. Local asks the broker
// itself, not the leader: its own applied view, no leader needed, with itself listed even
// before it is registered (a first-starting seed asks the others whether they know a
// cluster so, and a gateway uses it as a liveness probe of a broker).
type ClusterBrokersReq struct {
	Local bool
}

// ClusterBrokersResp lists the quorum's brokers (sorted by MeshID) and its leader, the
// controller. A gateway routes by it: it dials brokers at these addresses, and sends
// controller ops to any of them (a non-leader forwards).
type ClusterBrokersResp struct {
	ErrorCode    int16
	ErrorMessage string
	ClusterID    string
	Leader       string // NodeId text of the quorum leader; "" while there is none
	Brokers      []ClusterBroker
}

// ClusterBroker is one registered broker: its mesh identity and addresses, its raft id, and
// what the leader knows of it.
type ClusterBroker struct {
	MeshID   string   // NodeId text
	RaftID   uint64   // current incarnation's raft id
	RelayURL string   // home relay, "" for none
	Direct   []string // direct addresses, ip:port
	Rack     string
	Live     bool   // the leader heard from it recently (raft RecentActive; the leader is always live)
	Voter    bool   // a voter of the quorum (else a learner)
	Leader   bool   // the quorum leader (the controller)
	Kafka    string // advertised Kafka listener host:port (direct data path), "" for none
}

// PlacementReq asks which broker owns each partition of topics; Topics nil means every topic.
type PlacementReq struct {
	Topics []string
}

// PlacementResp answers PlacementReq: requested topics in request order (an unknown one with
// UNKNOWN_TOPIC_OR_PARTITION), or every topic sorted by name.
type PlacementResp struct {
	ErrorCode    int16
	ErrorMessage string
	Topics       []TopicPlacement
}

// TopicPlacement is one topic's owners: Owners[p] is the NodeId text of partition p's owner.
// Leaders[p] is the NodeId text of the broker to send partition p's produce, fetch and list
// offsets to: for a replicated partition its raft leader as last reported (UpdatePartition),
// else its preferred leader; for a single-owner partition its owner. LeaderEpochs[p] is the
// leader's epoch (-1: none reported; 0 for single-owner partitions).
type TopicPlacement struct {
	Name         string
	ErrorCode    int16
	TopicID      [16]byte
	Owners       []string
	Leaders      []string
	LeaderEpochs []int32
}

// QuorumJoinReq asks the quorum to add a broker: a fresh one (a new raft id) joins as a
// learner and is promoted to voter once caught up. A broker is admitted only if its NodeId
// is a seed of the leader or was allowed by an operator.
type QuorumJoinReq struct {
	RaftID   uint64
	MeshID   string   // NodeId text; must be the caller's own NodeId
	RelayURL string   // its home relay, "" for none
	Direct   []string // its direct addresses, ip:port
	Rack     string
	Kafka    string // its advertised Kafka listener host:port (direct data path), "" for none
}

// QuorumJoinResp answers QuorumJoinReq: ErrorCode 0 once the broker is a learner (or was
// already a member with this raft id).
type QuorumJoinResp struct {
	ErrorCode    int16
	ErrorMessage string
	ClusterID    string
	Leader       string // NodeId text of the leader that added it
	// The leader's raft id and addresses: a fresh learner can answer the leader's raft
	// messages before it has applied any entry that names the leader.
	LeaderRaftID   uint64
	LeaderRelayURL string
	LeaderDirect   []string
}

// Quorum admin actions (QuorumAdminReq.Action).
const (
	QuorumAllow    = "allow"    // admit a NodeId: it may join
	QuorumDisallow = "disallow" // withdraw an allow (a registered broker stays)
	QuorumAdd      = "add"      // admit it and, once it is a learner, promote it to voter
	QuorumRemove   = "remove"   // remove it from the quorum and the broker table; its partitions are placed again
)

// QuorumAdminReq is an operator's membership change (cmd/broker quorum …), run on the leader.
type QuorumAdminReq struct {
	Action string // QuorumAllow, QuorumDisallow, QuorumAdd or QuorumRemove
	MeshID string // NodeId text of the broker
}

// QuorumAdminResp answers QuorumAdminReq.
type QuorumAdminResp struct {
	ErrorCode    int16
	ErrorMessage string
}

// UpdatePartitionReq is what the leader of a replicated partition reports (the broker's
// partition state hook): Leader (its raft id) leads at LeaderEpoch (its raft term) with the
// in-sync replicas ISR (raft ids). The controller proposes it (metadata.UpdatePartition) on
// the quorum leader.
type UpdatePartitionReq struct {
	Topic       string
	Partition   int32
	Leader      uint64
	LeaderEpoch int32
	ISR         []uint64
}

// UpdatePartitionResp answers UpdatePartitionReq: 0 once recorded (or already so);
// FENCED_LEADER_EPOCH for a report older than the recorded one; UNKNOWN_TOPIC_OR_PARTITION,
// INVALID_REQUEST or INVALID_REPLICA_ASSIGNMENT for one the state refuses.
type UpdatePartitionResp struct {
	ErrorCode    int16
	ErrorMessage string
}

// DescribeQuorumReq asks the quorum leader for the raft state of the metadata quorum
// (Kafka's DescribeQuorum, API 55, of the __cluster_metadata partition).
type DescribeQuorumReq struct{}

// DescribeQuorumResp is the leader's view of the quorum. Kafka ids are the brokers' own
// (ClusterBroker, Metadata); a raft member not registered as a broker yet has KafkaID -1.
type DescribeQuorumResp struct {
	ErrorCode     int16
	ErrorMessage  string
	LeaderKafkaID int32  // -1 while there is no leader
	Term          uint64 // the leader's raft term (Kafka's leader epoch)
	Commit        uint64 // the raft commit index (Kafka's high watermark)
	Voters        []QuorumMember
	Observers     []QuorumMember // learners
}

// QuorumMember is one raft member as the leader sees it.
type QuorumMember struct {
	KafkaID int32
	MeshID  string // NodeId text, "" if not registered
	RaftID  uint64
	LogEnd  uint64 // the last log index known replicated there (raft Match; the leader's own last index)
	// LastContactMs is when the leader last saw it active (Unix ms; the leader: now); -1 unknown.
	LastContactMs int64
}

// Replica moves (issue #16 item 3): Kafka's AlterPartitionReassignments (API 45),
// ListPartitionReassignments (API 46) and ElectLeaders (API 43), served by the controller
// (forwarded to the quorum leader), and the leadership transfer the quorum leader asks of a
// partition's raft leader. Replicas are named by Kafka broker ids here, as clients name them.

// QuorumDecommission is the QuorumAdminReq action that drains a broker: every replica it
// holds is moved to another live broker (a replica reassignment per partition); once none
// is left it can be removed (QuorumRemove). The answer comes when the moves are recorded,
// not when they are done (QuorumStatus shows the replicas a broker still holds).
const QuorumDecommission = "decommission"

// AlterReassignmentsReq is Kafka's AlterPartitionReassignments: per partition the target
// replicas (Kafka broker ids, preferred leader first), or Cancel.
type AlterReassignmentsReq struct {
	Topics []ReassignTopic
}

// ReassignTopic is one topic's partitions of an AlterReassignmentsReq.
type ReassignTopic struct {
	Name       string
	Partitions []ReassignPartition
}

// ReassignPartition is one partition's target replicas; Cancel (Kafka's null replicas)
// reverts a reassignment in progress to the replicas it started from.
type ReassignPartition struct {
	Partition int32
	Cancel    bool
	Replicas  []int32
}

// AlterReassignmentsResp answers AlterReassignmentsReq, topics and partitions in request
// order: 0 once the reassignment is recorded (it then runs in the background), or
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT, INVALID_REPLICATION_FACTOR,
// NO_REASSIGNMENT_IN_PROGRESS (a cancel with none) with Kafka's message.
type AlterReassignmentsResp struct {
	ErrorCode    int16
	ErrorMessage string
	Topics       []ReassignTopicResp
}

// ReassignTopicResp is one topic's answers.
type ReassignTopicResp struct {
	Name       string
	Partitions []ReassignPartitionResp
}

// ReassignPartitionResp is one partition's answer.
type ReassignPartitionResp struct {
	Partition    int32
	ErrorCode    int16
	ErrorMessage string
}

// ListReassignmentsReq is Kafka's ListPartitionReassignments: All (Kafka's null topics) or
// the named partitions.
type ListReassignmentsReq struct {
	All    bool
	Topics []ListReassignTopic
}

// ListReassignTopic names partitions of one topic.
type ListReassignTopic struct {
	Name       string
	Partitions []int32
}

// ListReassignmentsResp lists the reassignments in progress (of the partitions asked for;
// partitions without one are left out, as Kafka does), topics by name.
type ListReassignmentsResp struct {
	ErrorCode    int16
	ErrorMessage string
	Topics       []ListedReassignTopic
}

// ListedReassignTopic is one topic's reassignments in progress.
type ListedReassignTopic struct {
	Name       string
	Partitions []ListedReassignment
}

// ListedReassignment is one partition's reassignment in progress (Kafka broker ids):
// Replicas the whole current set (the target first), Adding the target replicas that were not
// replicas before it started, Removing the replicas that will go.
type ListedReassignment struct {
	Partition int32
	Replicas  []int32
	Adding    []int32
	Removing  []int32
}

// ElectLeadersReq is Kafka's ElectLeaders: ElectionType 0 preferred, 1 unclean; All (null
// topics) or the named partitions.
type ElectLeadersReq struct {
	ElectionType int8
	All          bool
	Topics       []ListReassignTopic
}

// ElectLeadersResp answers per partition: 0 (the preferred replica leads now),
// ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
// UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST. With All, partitions whose election was not
// needed are left out (as Kafka does).
type ElectLeadersResp struct {
	ErrorCode    int16
	ErrorMessage string
	Topics       []ReassignTopicResp
}

// TransferPartitionLeaderReq asks the broker that leads a replicated partition's raft group
// to hand the leadership to replica To (a raft id): the quorum leader sends it for a
// preferred-leader election and before a reassignment removes the leader. It is not
// forwarded: a broker that does not lead the partition answers NOT_LEADER_OR_FOLLOWER.
type TransferPartitionLeaderReq struct {
	Topic     string
	Partition int32
	To        uint64
}

// TransferPartitionLeaderResp answers once To leads (0), or with NOT_LEADER_OR_FOLLOWER,
// UNKNOWN_TOPIC_OR_PARTITION, REQUEST_TIMED_OUT (To did not take over in time; the caller
// may ask again).
type TransferPartitionLeaderResp struct {
	ErrorCode    int16
	ErrorMessage string
}

// CompleteReassignmentReq is what a partition's raft leader reports once its group's voters
// are exactly Target (raft ids), the partition's reassignment target: the controller then
// settles the partition's replicas (metadata CompleteReassignment). Brokers only.
type CompleteReassignmentReq struct {
	Topic     string
	Partition int32
	Target    []uint64
}

// CompleteReassignmentResp answers 0 once recorded; NO_REASSIGNMENT_IN_PROGRESS or
// INVALID_REPLICA_ASSIGNMENT (another target now) when the state refuses it.
type CompleteReassignmentResp struct {
	ErrorCode    int16
	ErrorMessage string
}
