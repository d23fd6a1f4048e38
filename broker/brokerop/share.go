package brokerop

// Share-group ops (KIP-932, "queues for Kafka"), served by the broker's share coordinator
// (package broker/share). Op codes: codes.go, 0x78–0x7E. Topics are named, not identified:
// the gateway resolves Kafka's topic ids.

// ShareTP names one partition.
type ShareTP struct {
	Topic     string
	Partition int32
}

// ShareGroupHeartbeatReq joins (MemberEpoch 0), heartbeats or leaves (-1) a share group.
// HasTopics is false when the subscription is unchanged since the last heartbeat (Kafka's
// null), Rack nil likewise.
type ShareGroupHeartbeatReq struct {
	Group       string
	MemberID    string
	MemberEpoch int32
	Rack        *string
	HasTopics   bool
	Topics      []string
	ClientID    string
	ClientHost  string
}

// ShareGroupHeartbeatResp answers it; Assignment is meaningful when HasAssignment.
type ShareGroupHeartbeatResp struct {
	ErrorCode           int16
	ErrorMessage        string
	MemberID            string
	MemberEpoch         int32
	HeartbeatIntervalMs int32
	HasAssignment       bool
	Assignment          []ShareTP
}

// ShareGroupDescribeReq describes share groups.
type ShareGroupDescribeReq struct {
	Groups []string
}

// ShareGroupDescribeResp answers it in request order.
type ShareGroupDescribeResp struct {
	Groups []ShareGroupDescription
}

// ShareGroupDescription is one group (GROUP_ID_NOT_FOUND when there is no such share group).
type ShareGroupDescription struct {
	Group           string
	ErrorCode       int16
	State           string
	Epoch           int32
	AssignmentEpoch int32
	Members         []ShareMemberDescription
}

// ShareMemberDescription is one member.
type ShareMemberDescription struct {
	MemberID   string
	Rack       string
	Epoch      int32
	ClientID   string
	ClientHost string
	Topics     []string
	Assigned   []ShareTP
}

// ShareAckBatch acknowledges offsets First..Last: one type for all, or one per offset
// (0 gap, 1 accept, 2 release, 3 reject, 4 renew).
type ShareAckBatch struct {
	First int64
	Last  int64
	Types []int8
}

// ShareFetchReq is a ShareFetch: the share-session update (SessionEpoch 0 opens, -1
// closes), acknowledgements piggy-backed per partition, and the fetch limits.
type ShareFetchReq struct {
	Group        string
	MemberID     string
	SessionEpoch int32
	MaxWaitMs    int32
	MinBytes     int32
	MaxBytes     int32
	MaxRecords   int32
	Renew        bool
	Partitions   []ShareFetchPartition
	Forgotten    []ShareTP
}

// ShareFetchPartition is one partition added to (or kept in) the session, with the
// acknowledgements for it.
type ShareFetchPartition struct {
	Topic     string
	Partition int32
	MaxBytes  int32
	Acks      []ShareAckBatch
}

// ShareFetchResp answers ShareFetchReq: the partitions with acquired records, an
// acknowledgement result or an error.
type ShareFetchResp struct {
	ErrorCode    int16
	ErrorMessage string
	LockMs       int32
	Partitions   []ShareFetchPartitionResp
}

// ShareAcquired is a run of acquired offsets with their delivery count.
type ShareAcquired struct {
	First int64
	Last  int64
	Count int16
}

// ShareFetchPartitionResp is one partition's answer: whole record batches covering the
// acquired offsets (the client keeps only those) and the acknowledgement result.
type ShareFetchPartitionResp struct {
	Topic        string
	Partition    int32
	ErrorCode    int16
	AckErrorCode int16
	Records      []byte `kafkaop:"records"`
	Acquired     []ShareAcquired
}

// ShareAcknowledgeReq acknowledges records in a share session (SessionEpoch -1 closes it).
type ShareAcknowledgeReq struct {
	Group        string
	MemberID     string
	SessionEpoch int32
	Renew        bool
	Partitions   []ShareAckPartition
}

// ShareAckPartition holds one partition's acknowledgements.
type ShareAckPartition struct {
	Topic     string
	Partition int32
	Acks      []ShareAckBatch
}

// ShareAcknowledgeResp answers ShareAcknowledgeReq.
type ShareAcknowledgeResp struct {
	ErrorCode    int16
	ErrorMessage string
	LockMs       int32
	Partitions   []ShareAckPartitionResp
}

// ShareAckPartitionResp is one partition's result.
type ShareAckPartitionResp struct {
	Topic     string
	Partition int32
	ErrorCode int16
}

// DescribeShareGroupOffsetsReq asks for share groups' start offsets.
type DescribeShareGroupOffsetsReq struct {
	Groups []ShareOffsetsGroup
}

// ShareOffsetsGroup is one group; All asks for every partition with state.
type ShareOffsetsGroup struct {
	Group      string
	All        bool
	Partitions []ShareTP
}

// DescribeShareGroupOffsetsResp answers it in request order.
type DescribeShareGroupOffsetsResp struct {
	Groups []ShareOffsetsGroupResp
}

// ShareOffsetsGroupResp is one group's offsets.
type ShareOffsetsGroupResp struct {
	Group      string
	ErrorCode  int16
	Partitions []ShareOffsetResp
}

// ShareOffsetResp is one partition's start offset (-1 without state) and lag (-1 unknown).
type ShareOffsetResp struct {
	Topic       string
	Partition   int32
	ErrorCode   int16
	StartOffset int64
	LeaderEpoch int32
	Lag         int64
}

// AlterShareGroupOffsetsReq sets start offsets of an empty share group.
type AlterShareGroupOffsetsReq struct {
	Group      string
	Partitions []ShareOffset
}

// ShareOffset is one partition's new start offset.
type ShareOffset struct {
	Topic       string
	Partition   int32
	StartOffset int64
}

// AlterShareGroupOffsetsResp answers it.
type AlterShareGroupOffsetsResp struct {
	ErrorCode  int16
	Partitions []ShareOffsetResult
}

// ShareOffsetResult is one partition's result.
type ShareOffsetResult struct {
	Topic     string
	Partition int32
	ErrorCode int16
}

// DeleteShareGroupOffsetsReq forgets the share state of topics in an empty share group.
type DeleteShareGroupOffsetsReq struct {
	Group  string
	Topics []string
}

// DeleteShareGroupOffsetsResp answers it.
type DeleteShareGroupOffsetsResp struct {
	ErrorCode int16
	Topics    []ShareTopicResult
}

// ShareTopicResult is one topic's result.
type ShareTopicResult struct {
	Topic     string
	ErrorCode int16
}

// ResourceGroupConfig is Kafka's GROUP config resource type (DescribeConfigs,
// IncrementalAlterConfigs): a group's configs, here the share groups' (share.*).
// SourceGroupConfig is the config source of a value set on a group.
const (
	ResourceGroupConfig int8 = 32
	SourceGroupConfig   int8 = 8
)
