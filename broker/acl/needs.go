package acl

import "strconv"

// Kafka's operation map: which operation on which type of resource each request asks for.
// The gateway (per Kafka API) and the broker (per KafkaOp, package brokerop's OpNeeds) both
// decide from these values, so the two planes agree on what a request needs.

// Need is one operation on one type of resource that a request asks for.
type Need struct {
	Op   Operation
	Type ResourceType
}

// On is the need asked on the resource named name.
func (n Need) On(name string) Ask { return Ask{Need: n, Name: name} }

// OnCluster is the need asked on the cluster (its only resource).
func (n Need) OnCluster() Ask { return Ask{Need: n, Name: ClusterName} }

// OnAny is the need asked on any resource of its type (Kafka's authorizeByResourceType: an
// idempotent producer with WRITE on some topic needs no IDEMPOTENT_WRITE on the cluster).
func (n Need) OnAny() Ask { return Ask{Need: n, Any: true} }

// DeniedCode is the Kafka error code a request refused this need is answered with:
// TOPIC_AUTHORIZATION_FAILED (29), GROUP_AUTHORIZATION_FAILED (30),
// CLUSTER_AUTHORIZATION_FAILED (31), TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53),
// DELEGATION_TOKEN_AUTHORIZATION_FAILED (65).
func (n Need) DeniedCode() int16 {
	switch n.Type {
	case ResourceTopic:
		return 29
	case ResourceGroup:
		return 30
	case ResourceTransactionalID:
		return 53
	case ResourceDelegationToken:
		return 65
	}
	return 31
}

// Ask is a Need on a concrete resource (Name), or on any resource of the type (Any).
type Ask struct {
	Need
	Name string
	Any  bool
}

// Allows decides one ask: Authorize, or AuthorizeAny for an ask on any resource.
func (a *Authorizer) Allows(principal, host string, q Ask) bool {
	if q.Any {
		return a.AuthorizeAny(principal, host, q.Op, q.Type)
	}
	return a.Authorize(principal, host, q.Op, Resource{Type: q.Type, Name: q.Name})
}

// The map, by Kafka API (Kafka's documented operation map, KIP-11 and the APIs' own pages).
var (
	// Produce: WRITE on each topic; a transactional produce WRITE on its transactional id.
	ProduceTopic = Need{OpWrite, ResourceTopic}
	ProduceTxnID = Need{OpWrite, ResourceTransactionalID}
	// Fetch (a consumer's): READ on each topic.
	FetchTopic = Need{OpRead, ResourceTopic}
	// ListOffsets, OffsetForLeaderEpoch: DESCRIBE on each topic.
	DescribeTopic = Need{OpDescribe, ResourceTopic}
	// Metadata: DESCRIBE on each topic (unauthorized ones hidden when all are asked for);
	// auto-creation CREATE on the cluster or on the topic.
	MetadataTopic = DescribeTopic
	// CreateTopics: CREATE on the cluster, or on each topic.
	CreateCluster = Need{OpCreate, ResourceCluster}
	CreateTopic   = Need{OpCreate, ResourceTopic}
	// DeleteTopics, DeleteRecords: DELETE on each topic.
	DeleteTopic = Need{OpDelete, ResourceTopic}
	// CreatePartitions: ALTER on each topic.
	AlterTopic = Need{OpAlter, ResourceTopic}
	// DescribeConfigs / AlterConfigs / IncrementalAlterConfigs: DESCRIBE_CONFIGS /
	// ALTER_CONFIGS on each topic, or on the cluster for a broker resource.
	DescribeTopicConfigs   = Need{OpDescribeConfigs, ResourceTopic}
	DescribeClusterConfigs = Need{OpDescribeConfigs, ResourceCluster}
	AlterTopicConfigs      = Need{OpAlterConfigs, ResourceTopic}
	AlterClusterConfigs    = Need{OpAlterConfigs, ResourceCluster}
	// JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit: READ on the group;
	// OffsetCommit, TxnOffsetCommit and OffsetDelete also READ on each topic.
	GroupMember = Need{OpRead, ResourceGroup}
	CommitTopic = Need{OpRead, ResourceTopic}
	// OffsetFetch: DESCRIBE on the group (and on each topic it answers about); FindCoordinator
	// and DescribeGroups: DESCRIBE on the group (ListGroups: DESCRIBE on the cluster or the group).
	DescribeGroup = Need{OpDescribe, ResourceGroup}
	// DeleteGroups, OffsetDelete: DELETE on the group.
	DeleteGroup = Need{OpDelete, ResourceGroup}
	// InitProducerID: IDEMPOTENT_WRITE on the cluster, or WRITE on any topic; with a
	// transactional id WRITE on it.
	IdempotentWrite = Need{OpIdempotentWrite, ResourceCluster}
	// AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn: WRITE on the
	// transactional id (AddPartitionsToTxn also WRITE on each topic, AddOffsetsToTxn and
	// TxnOffsetCommit READ on the group).
	TxnWrite = Need{OpWrite, ResourceTransactionalID}
	// DescribeTransactions, ListTransactions, FindCoordinator (transaction): DESCRIBE on the
	// transactional id.
	DescribeTxnID = Need{OpDescribe, ResourceTransactionalID}
	// DescribeProducers: READ on each topic.
	DescribeProducersTopic = Need{OpRead, ResourceTopic}
	// WriteTxnMarkers (the coordinator's own markers): CLUSTER_ACTION on the cluster.
	ClusterAction = Need{OpClusterAction, ResourceCluster}
	// DescribeAcls, DescribeUserScramCredentials, DescribeLogDirs, DescribeQuorum,
	// ListPartitionReassignments, Metadata's and DescribeCluster's authorized operations:
	// DESCRIBE on the cluster.
	DescribeCluster = Need{OpDescribe, ResourceCluster}
	// CreateAcls, DeleteAcls, AlterUserScramCredentials, AlterPartitionReassignments,
	// ElectLeaders: ALTER on the cluster.
	AlterCluster = Need{OpAlter, ResourceCluster}
	// DescribeClientQuotas / AlterClientQuotas: DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster.
	DescribeQuotas = DescribeClusterConfigs
	AlterQuotas    = AlterClusterConfigs
)

var opNames = [...]string{OpUnknown: "UNKNOWN", OpAny: "ANY", OpAll: "ALL", OpRead: "READ", OpWrite: "WRITE",
	OpCreate: "CREATE", OpDelete: "DELETE", OpAlter: "ALTER", OpDescribe: "DESCRIBE", OpClusterAction: "CLUSTER_ACTION",
	OpDescribeConfigs: "DESCRIBE_CONFIGS", OpAlterConfigs: "ALTER_CONFIGS", OpIdempotentWrite: "IDEMPOTENT_WRITE",
	OpCreateTokens: "CREATE_TOKENS", OpDescribeTokens: "DESCRIBE_TOKENS"}

// String is Kafka's name of the operation (READ, WRITE, …).
func (o Operation) String() string {
	if o >= 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "UNKNOWN"
}

var typeNames = [...]string{ResourceUnknown: "UNKNOWN", ResourceAny: "ANY", ResourceTopic: "TOPIC", ResourceGroup: "GROUP",
	ResourceCluster: "CLUSTER", ResourceTransactionalID: "TRANSACTIONAL_ID", ResourceDelegationToken: "DELEGATION_TOKEN", ResourceUser: "USER"}

// String is Kafka's name of the resource type (TOPIC, GROUP, …).
func (t ResourceType) String() string {
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "UNKNOWN"
}

// String describes the ask: `WRITE on TOPIC "t"`, `WRITE on any TOPIC`.
func (q Ask) String() string {
	if q.Any {
		return q.Op.String() + " on any " + q.Type.String()
	}
	return q.Op.String() + " on " + q.Type.String() + " " + strconv.Quote(q.Name)
}
