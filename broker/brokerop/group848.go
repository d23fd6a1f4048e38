package brokerop

// KIP-848 consumer-group ops (the "consumer" group protocol of Kafka 4.0). Op codes: codes.go,
// 0x70–0x77.

// ConsumerGroupTopicPartitions is a set of partitions of one topic, named by its topic id (as
// on the wire) and, in answers, also by name ("" when the coordinator does not know it).
type ConsumerGroupTopicPartitions struct {
	TopicID    [16]byte
	Topic      string
	Partitions []int32
}

// ConsumerGroupTopic is one topic of the cluster as the gateway knows it when it forwards a
// heartbeat: the coordinator resolves subscriptions (names and regular expressions) and runs
// the server-side assignor against this list.
type ConsumerGroupTopic struct {
	Name       string
	TopicID    [16]byte
	Partitions int32
}

// ConsumerGroupHeartbeatReq is one ConsumerGroupHeartbeat (Kafka API 68). The Has* flags
// carry Kafka's null (false: field not sent, "unchanged") as opposed to an empty value.
//
// MemberEpoch 0 joins (or rejoins), -1 leaves, -2 leaves as a static member that will come
// back (its assignment is kept until its session expires); a positive epoch is a heartbeat.
// Owned (with HasOwned) is the partitions the member owns now. ClientID and ClientHost come
// from the connection. Topics is every topic of the cluster (with HasTopics; see
// ConsumerGroupTopic).
type ConsumerGroupHeartbeatReq struct {
	Group                   string
	MemberID                string
	MemberEpoch             int32
	InstanceID              string // "" = null (a dynamic member)
	RackID                  string
	RebalanceTimeoutMs      int32 // -1: unchanged
	HasSubscribedTopicNames bool
	SubscribedTopicNames    []string
	HasSubscribedTopicRegex bool
	SubscribedTopicRegex    string
	ServerAssignor          string // "" = null (unchanged, or the default for a new member)
	HasOwned                bool
	Owned                   []ConsumerGroupTopicPartitions
	ClientID                string
	ClientHost              string
	HasTopics               bool
	Topics                  []ConsumerGroupTopic
}

// ConsumerGroupHeartbeatResp answers ConsumerGroupHeartbeatReq. Assignment (with
// HasAssignment) is the member's whole current assignment, sent when it changed, on a join
// and on a full request; otherwise the member keeps the one it has.
type ConsumerGroupHeartbeatResp struct {
	ErrorCode           int16
	ErrorMessage        string
	MemberID            string
	MemberEpoch         int32
	HeartbeatIntervalMs int32
	HasAssignment       bool
	Assignment          []ConsumerGroupTopicPartitions
}

// ConsumerGroupDescribeReq describes consumer groups (Kafka API 69).
type ConsumerGroupDescribeReq struct {
	Groups []string
}

// ConsumerGroupDescribeResp answers ConsumerGroupDescribeReq in request order.
type ConsumerGroupDescribeResp struct {
	Groups []ConsumerGroupDescribed
}

// ConsumerGroupDescribed is one described group: GROUP_ID_NOT_FOUND for a group that does
// not exist or is a classic group with members. State is Kafka's name (Empty, Assigning,
// Reconciling, Stable).
type ConsumerGroupDescribed struct {
	Group           string
	ErrorCode       int16
	ErrorMessage    string
	State           string
	Epoch           int32
	AssignmentEpoch int32
	AssignorName    string
	Members         []ConsumerGroupDescribedMember
}

// ConsumerGroupDescribedMember is one member of a described consumer group.
type ConsumerGroupDescribedMember struct {
	MemberID             string
	InstanceID           string
	RackID               string
	MemberEpoch          int32
	ClientID             string
	ClientHost           string
	SubscribedTopicNames []string
	SubscribedTopicRegex string
	Assignment           []ConsumerGroupTopicPartitions
	TargetAssignment     []ConsumerGroupTopicPartitions
}
