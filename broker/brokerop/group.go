package brokerop

// Group ops: the classic group protocol (join, sync, heartbeat, leave, offset commit and
// fetch: Rafka's 0x06–0x0B) and group administration (0x28–0x2F). Op codes: codes.go.

// GroupProtocol is one (name, metadata) pair a member offers in JoinGroup, e.g. ("range",
// consumer-protocol subscription bytes). The coordinator never interprets Metadata.
type GroupProtocol struct {
	Name     string
	Metadata []byte
}

// JoinGroupReq joins (or rejoins) a member to a group.
//
// MemberID "" means a new member. InstanceID "" means a dynamic member (Kafka's null
// group.instance.id); otherwise the member is static. RequireKnownMemberID is set by the gateway
// for JoinGroup v4 and later: a new dynamic member is then given an id with MEMBER_ID_REQUIRED
// and must join again with it (KIP-394). RebalanceTimeoutMs is the session timeout for v0.
type JoinGroupReq struct {
	Group                string
	MemberID             string
	InstanceID           string
	ClientID             string
	ClientHost           string
	ProtocolType         string
	Protocols            []GroupProtocol
	SessionTimeoutMs     int32
	RebalanceTimeoutMs   int32
	RequireKnownMemberID bool
	Reason               string
}

// JoinGroupMember is one member as the leader sees it in the JoinGroup response, with the
// metadata it offered for the chosen protocol.
type JoinGroupMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte
}

// JoinGroupResp answers JoinGroupReq once the rebalance completes (or at once on an error,
// MEMBER_ID_REQUIRED, or a static member rejoining a stable group). Members is filled for the
// leader only. A static leader that rejoins a stable group is told the old leader id (not its
// own), so it acts as a follower and keeps the current assignment (Kafka's pre-v9 behaviour;
// SkipAssignment is never needed).
type JoinGroupResp struct {
	ErrorCode    int16
	Generation   int32
	ProtocolType string
	Protocol     string
	LeaderID     string
	MemberID     string
	Members      []JoinGroupMember
}

// SyncGroupAssignment is the leader's assignment for one member.
type SyncGroupAssignment struct {
	MemberID   string
	Assignment []byte
}

// SyncGroupReq completes a rebalance. Only the leader sends Assignments; followers wait until it
// has. ProtocolType and Protocol (SyncGroup v5) may be empty (not checked).
type SyncGroupReq struct {
	Group        string
	MemberID     string
	InstanceID   string
	Generation   int32
	ProtocolType string
	Protocol     string
	Assignments  []SyncGroupAssignment
}

// SyncGroupResp carries the member's assignment for the generation.
type SyncGroupResp struct {
	ErrorCode    int16
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatReq keeps a member's session alive.
type HeartbeatReq struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
}

// HeartbeatResp answers HeartbeatReq; REBALANCE_IN_PROGRESS tells the member to rejoin.
type HeartbeatResp struct {
	ErrorCode int16
}

// LeaveGroupMember identifies one leaving member (LeaveGroup v3 batches them; older versions
// send one MemberID). A static member may leave by InstanceID with an empty MemberID.
type LeaveGroupMember struct {
	MemberID   string
	InstanceID string
	Reason     string
}

// LeaveGroupReq removes members from a group.
type LeaveGroupReq struct {
	Group   string
	Members []LeaveGroupMember
}

// LeaveGroupMemberResp is the outcome for one member, in request order.
type LeaveGroupMemberResp struct {
	MemberID   string
	InstanceID string
	ErrorCode  int16
}

// LeaveGroupResp answers LeaveGroupReq. For a single-member request (LeaveGroup v0–v2) the
// gateway reports Members[0].ErrorCode as the top-level error when ErrorCode is 0.
type LeaveGroupResp struct {
	ErrorCode int16
	Members   []LeaveGroupMemberResp
}

// OffsetCommitPartition is one offset to commit. LeaderEpoch -1 means unknown.
type OffsetCommitPartition struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// OffsetCommitTopic groups the partitions of one topic.
type OffsetCommitTopic struct {
	Topic      string
	Partitions []OffsetCommitPartition
}

// OffsetCommitReq commits offsets for a group. Generation -1 with an empty MemberID is a
// "simple" commit, accepted only while the group has no members (standalone consumers, admin
// tools). The response is sent only after the offsets are durable.
//
// Writer and Seq order the commits of one sender that may deliver a commit twice: the
// gateway (gateway/cluster) gives each of its commits the next Seq under its Writer (a
// random id per process) and sends a commit again, with the same stamp, to another broker
// when the first stops answering, while the first may still forward its copy to the
// coordinator later. The coordinator never lets a commit overwrite a partition's offset last
// committed by the same Writer under a higher Seq: the late copy is answered as committed
// (overwritten at once), not applied. Writer 0: no order (every commit is applied).
type OffsetCommitReq struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
	Topics     []OffsetCommitTopic
	Writer     uint64
	Seq        uint64
}

// OffsetCommitPartitionResp is the outcome for one partition.
type OffsetCommitPartitionResp struct {
	Partition int32
	ErrorCode int16
}

// OffsetCommitTopicResp groups partition outcomes of one topic, in request order.
type OffsetCommitTopicResp struct {
	Topic      string
	Partitions []OffsetCommitPartitionResp
}

// OffsetCommitResp answers OffsetCommitReq in request order.
type OffsetCommitResp struct {
	Topics []OffsetCommitTopicResp
}

// OffsetFetchTopic names the partitions to look up in one topic.
type OffsetFetchTopic struct {
	Topic      string
	Partitions []int32
}

// OffsetFetchReq reads committed offsets of one group (the gateway splits OffsetFetch v8's
// multi-group requests). Topics nil means every committed partition of the group.
type OffsetFetchReq struct {
	Group         string
	Topics        []OffsetFetchTopic
	RequireStable bool
}

// OffsetFetchPartitionResp is a committed offset; Offset -1 means none is committed.
type OffsetFetchPartitionResp struct {
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	ErrorCode   int16
}

// OffsetFetchTopicResp groups the partitions of one topic.
type OffsetFetchTopicResp struct {
	Topic      string
	Partitions []OffsetFetchPartitionResp
}

// OffsetFetchResp answers OffsetFetchReq: requested partitions in request order, or every
// committed partition sorted by topic and partition when Topics was nil.
type OffsetFetchResp struct {
	ErrorCode int16
	Topics    []OffsetFetchTopicResp
}

// ListGroupsReq lists groups, optionally filtered by state names (Kafka's "Stable",
// "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"; case-insensitive) and group
// types ("classic"; case-insensitive). Empty filters match everything.
type ListGroupsReq struct {
	StatesFilter []string
	TypesFilter  []string
}

// ListedGroup is one group in ListGroupsResp.
type ListedGroup struct {
	Group        string
	ProtocolType string
	State        string
	Type         string
}

// ListGroupsResp lists groups sorted by name.
type ListGroupsResp struct {
	ErrorCode int16
	Groups    []ListedGroup
}

// DescribeGroupsReq describes groups by name.
type DescribeGroupsReq struct {
	Groups []string
}

// DescribedMember is one member of a described group.
type DescribedMember struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Metadata   []byte // for the group's chosen protocol
	Assignment []byte // current assignment (empty until the leader has synced)
}

// DescribedGroup describes one group. An unknown group is reported with State "Dead" and
// ErrorCode 0, as Kafka does up to DescribeGroups v5 (the gateway maps it to
// GROUP_ID_NOT_FOUND for v6).
type DescribedGroup struct {
	Group        string
	ErrorCode    int16
	State        string
	ProtocolType string
	Protocol     string
	Members      []DescribedMember
}

// DescribeGroupsResp answers DescribeGroupsReq in request order.
type DescribeGroupsResp struct {
	Groups []DescribedGroup
}

// DeleteGroupsReq deletes groups and their committed offsets. Only groups without members can
// be deleted (NON_EMPTY_GROUP otherwise).
type DeleteGroupsReq struct {
	Groups []string
}

// DeletedGroup is the outcome for one group.
type DeletedGroup struct {
	Group     string
	ErrorCode int16
}

// DeleteGroupsResp answers DeleteGroupsReq in request order.
type DeleteGroupsResp struct {
	Groups []DeletedGroup
}

// OffsetDeleteTopic names partitions whose committed offsets should be removed.
type OffsetDeleteTopic struct {
	Topic      string
	Partitions []int32
}

// OffsetDeleteReq deletes committed offsets of a group. A partition of a topic the group's
// members are subscribed to is refused with GROUP_SUBSCRIBED_TO_TOPIC.
type OffsetDeleteReq struct {
	Group  string
	Topics []OffsetDeleteTopic
}

// OffsetDeletePartitionResp is the outcome for one partition.
type OffsetDeletePartitionResp struct {
	Partition int32
	ErrorCode int16
}

// OffsetDeleteTopicResp groups partition outcomes of one topic, in request order.
type OffsetDeleteTopicResp struct {
	Topic      string
	Partitions []OffsetDeletePartitionResp
}

// OffsetDeleteResp answers OffsetDeleteReq. ErrorCode is a group-level error
// (GROUP_ID_NOT_FOUND, …); partition errors are per partition.
type OffsetDeleteResp struct {
	ErrorCode int16
	Topics    []OffsetDeleteTopicResp
}
