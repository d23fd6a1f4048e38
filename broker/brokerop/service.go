package brokerop

import (
	"context"
	"errors"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

//go:generate go run ../../internal/cmd/opgen -src . -ops ops_gen.go -caller ../brokermesh/caller_gen.go

// Service is the gateway↔broker contract: every KafkaOp as one method. The broker serves it
// (broker.Broker for data and admin, group.Coordinator for groups), the mesh carrier carries
// it (brokermesh.Caller on the gateway side, brokermesh.Server dispatching to a Service on the
// broker side), and the gateway calls it (gateway.Backend is a Service).
//
// This declaration is the source of the generated code (ops_gen.go, by internal/cmd/opgen):
// a method whose doc has a //kafkaop:<name> <Code> line is an op; opgen generates the
// postcard encoder and decoder of its request and response structs (and of every struct they
// hold), the op table (Lookup, Specs), the dispatch switch (Dispatch), Unimplemented, and the
// mesh Caller's methods. A []byte field tagged kafkaop:"records" holds record sets: the
// generated vectored encoder writes it by reference (vecframe.go).
//
// The local forms ProduceStaged and FetchPooled are the ones the gateway and the mesh server
// call; a decorator that overrides Produce or Fetch of an embedded Service must override them
// too (with ProduceNow / FetchUnpooled over its own Produce / Fetch), or the embedded
// Service's forms bypass it.
//
// A Service that serves only some ops embeds Unimplemented: the others answer an error
// wrapping ErrUnsupported, which the carrier sends as StatusUnknownOp and the gateway answers
// as Kafka does when no broker has the feature.
type Service interface {
	DataService
	AdminService
	GroupService
	ProducerService
	SecurityService
	QuorumService
	ShareService
}

// DataService is the partition data path.
type DataService interface {
	// Produce appends record batches.
	//kafkaop:produce OpProduce
	Produce(ctx context.Context, req *ProduceReq) (*ProduceResp, error)

	// ProduceStaged is Produce in two steps, keeping produce order when requests are
	// pipelined: it appends every partition (or sends the request, over the mesh) before it
	// returns, so appends keep the order of the calls, and the returned function waits for
	// the durability the acks ask for and gives Produce's answer; call it exactly once. req
	// and its record bytes are not used after ProduceStaged returns. A Service without
	// pipelining implements it with ProduceNow.
	ProduceStaged(ctx context.Context, req *ProduceReq) func() (*ProduceResp, error)

	// Fetch reads from partitions.
	//kafkaop:fetch OpFetch
	Fetch(ctx context.Context, req *FetchReq) (*FetchResp, error)

	// FetchPooled is Fetch whose record bytes may live in reused read buffers until release
	// is called (the gateway calls it after the Kafka answer is written; the broker's mesh
	// server after the answer frame is written). A Service without pooled buffers implements
	// it with FetchUnpooled.
	FetchPooled(ctx context.Context, req *FetchReq) (resp *FetchResp, release func(), err error)

	// ListOffsets looks offsets up by timestamp.
	//kafkaop:list_offsets OpListOffsets
	ListOffsets(ctx context.Context, req *ListOffsetsReq) (*ListOffsetsResp, error)
}

// AdminService is topic and cluster administration.
type AdminService interface {
	// Metadata describes brokers and topics.
	//kafkaop:metadata OpMetadata
	Metadata(ctx context.Context, req *MetadataReq) (*MetadataResp, error)

	// CreateTopics creates topics.
	//kafkaop:create_topics OpCreateTopics
	CreateTopics(ctx context.Context, req *CreateTopicsReq) (*CreateTopicsResp, error)

	// DeleteTopics deletes topics and purges their data.
	//kafkaop:delete_topics OpDeleteTopics
	DeleteTopics(ctx context.Context, req *DeleteTopicsReq) (*DeleteTopicsResp, error)

	// CreatePartitions grows topics.
	//kafkaop:create_partitions OpCreatePartitions
	CreatePartitions(ctx context.Context, req *CreatePartitionsReq) (*CreatePartitionsResp, error)

	// DescribeConfigs describes topic or broker configs.
	//kafkaop:describe_configs OpDescribeConfigs
	DescribeConfigs(ctx context.Context, req *DescribeConfigsReq) (*DescribeConfigsResp, error)

	// AlterConfigs replaces resources' dynamic config sets.
	//kafkaop:alter_configs OpAlterConfigs
	AlterConfigs(ctx context.Context, req *AlterConfigsReq) (*AlterConfigsResp, error)

	// IncrementalAlterConfigs changes single configs.
	//kafkaop:incremental_alter_configs OpIncrementalAlterConfigs
	IncrementalAlterConfigs(ctx context.Context, req *IncrementalAlterConfigsReq) (*AlterConfigsResp, error)

	// DescribeCluster describes the cluster id, controller and brokers.
	//kafkaop:describe_cluster OpDescribeCluster
	DescribeCluster(ctx context.Context, req *DescribeClusterReq) (*DescribeClusterResp, error)

	// DeleteRecords moves partitions' log start offsets up.
	//kafkaop:delete_records OpDeleteRecords
	DeleteRecords(ctx context.Context, req *DeleteRecordsReq) (*DeleteRecordsResp, error)

	// DescribeLogDirs describes log directories and partition sizes.
	//kafkaop:describe_log_dirs OpDescribeLogDirs
	DescribeLogDirs(ctx context.Context, req *DescribeLogDirsReq) (*DescribeLogDirsResp, error)

	// OffsetForLeaderEpoch answers leader epochs' end offsets.
	//kafkaop:offset_for_leader_epoch OpOffsetForLeaderEpoch
	OffsetForLeaderEpoch(ctx context.Context, req *OffsetForLeaderEpochReq) (*OffsetForLeaderEpochResp, error)

	// DescribeClientQuotas lists client quotas.
	//kafkaop:describe_client_quotas OpDescribeClientQuotas
	DescribeClientQuotas(ctx context.Context, req *DescribeClientQuotasReq) (*DescribeClientQuotasResp, error)

	// AlterClientQuotas changes client quotas.
	//kafkaop:alter_client_quotas OpAlterClientQuotas
	AlterClientQuotas(ctx context.Context, req *AlterClientQuotasReq) (*AlterClientQuotasResp, error)
}

// GroupService is the consumer-group coordinator.
type GroupService interface {
	// JoinGroup joins a member to a group.
	//kafkaop:join_group OpJoinGroup
	JoinGroup(ctx context.Context, req *JoinGroupReq) (*JoinGroupResp, error)

	// SyncGroup hands out the leader's assignment.
	//kafkaop:sync_group OpSyncGroup
	SyncGroup(ctx context.Context, req *SyncGroupReq) (*SyncGroupResp, error)

	// Heartbeat keeps a member alive.
	//kafkaop:heartbeat OpHeartbeat
	Heartbeat(ctx context.Context, req *HeartbeatReq) (*HeartbeatResp, error)

	// LeaveGroup removes members.
	//kafkaop:leave_group OpLeaveGroup
	LeaveGroup(ctx context.Context, req *LeaveGroupReq) (*LeaveGroupResp, error)

	// OffsetCommit stores committed offsets.
	//kafkaop:offset_commit OpOffsetCommit
	OffsetCommit(ctx context.Context, req *OffsetCommitReq) (*OffsetCommitResp, error)

	// OffsetFetch reads committed offsets.
	//kafkaop:offset_fetch OpOffsetFetch
	OffsetFetch(ctx context.Context, req *OffsetFetchReq) (*OffsetFetchResp, error)

	// ListGroups lists groups.
	//kafkaop:list_groups OpListGroups
	ListGroups(ctx context.Context, req *ListGroupsReq) (*ListGroupsResp, error)

	// DescribeGroups describes groups and their members.
	//kafkaop:describe_groups OpDescribeGroups
	DescribeGroups(ctx context.Context, req *DescribeGroupsReq) (*DescribeGroupsResp, error)

	// DeleteGroups deletes empty groups.
	//kafkaop:delete_groups OpDeleteGroups
	DeleteGroups(ctx context.Context, req *DeleteGroupsReq) (*DeleteGroupsResp, error)

	// OffsetDelete deletes committed offsets.
	//kafkaop:offset_delete OpOffsetDelete
	OffsetDelete(ctx context.Context, req *OffsetDeleteReq) (*OffsetDeleteResp, error)

	// ConsumerGroupHeartbeat joins, heartbeats and leaves a KIP-848 consumer group.
	//kafkaop:consumer_group_heartbeat OpConsumerGroupHeartbeat
	ConsumerGroupHeartbeat(ctx context.Context, req *ConsumerGroupHeartbeatReq) (*ConsumerGroupHeartbeatResp, error)

	// ConsumerGroupDescribe describes KIP-848 consumer groups.
	//kafkaop:consumer_group_describe OpConsumerGroupDescribe
	ConsumerGroupDescribe(ctx context.Context, req *ConsumerGroupDescribeReq) (*ConsumerGroupDescribeResp, error)
}

// ProducerService hands out producer ids and is the transaction coordinator.
type ProducerService interface {
	// InitProducerID allocates a producer id.
	//kafkaop:init_producer_id OpInitProducerID
	InitProducerID(ctx context.Context, req *InitProducerIDReq) (*InitProducerIDResp, error)

	// InitTxnProducerID hands out a transactional id's producer id and a bumped epoch.
	//kafkaop:init_txn_producer_id OpInitTxnProducerID
	InitTxnProducerID(ctx context.Context, req *InitTxnProducerIDReq) (*InitProducerIDResp, error)

	// AddPartitionsToTxn adds partitions to a transaction.
	//kafkaop:add_partitions_to_txn OpAddPartitionsToTxn
	AddPartitionsToTxn(ctx context.Context, req *AddPartitionsToTxnReq) (*TxnResp, error)

	// AddOffsetsToTxn adds a group's offsets to a transaction.
	//kafkaop:add_offsets_to_txn OpAddOffsetsToTxn
	AddOffsetsToTxn(ctx context.Context, req *AddOffsetsToTxnReq) (*TxnResp, error)

	// TxnOffsetCommit commits offsets inside a transaction.
	//kafkaop:txn_offset_commit OpTxnOffsetCommit
	TxnOffsetCommit(ctx context.Context, req *TxnOffsetCommitReq) (*TxnResp, error)

	// EndTxn commits or aborts a transaction.
	//kafkaop:end_txn OpEndTxn
	EndTxn(ctx context.Context, req *EndTxnReq) (*TxnResp, error)

	// ListTransactions lists the coordinator's transactions.
	//kafkaop:list_transactions OpListTransactions
	ListTransactions(ctx context.Context, req *ListTransactionsReq) (*ListTransactionsResp, error)

	// DescribeTransactions describes transactional ids.
	//kafkaop:describe_transactions OpDescribeTransactions
	DescribeTransactions(ctx context.Context, req *DescribeTransactionsReq) (*DescribeTransactionsResp, error)

	// DescribeProducers lists the active producers of partitions.
	//kafkaop:describe_producers OpDescribeProducers
	DescribeProducers(ctx context.Context, req *DescribeProducersReq) (*DescribeProducersResp, error)

	// WriteMarkers writes a transaction's markers into partitions this broker leads.
	//kafkaop:write_markers OpWriteMarkers
	WriteMarkers(ctx context.Context, req *WriteMarkersReq) (*TxnResp, error)

	// VerifyTxn asks the transaction coordinator whether a transactional batch may be
	// appended.
	//kafkaop:verify_txn OpVerifyTxn
	VerifyTxn(ctx context.Context, req *VerifyTxnReq) (*TxnResp, error)
}

// SecurityService keeps the cluster's SCRAM credentials and ACLs (security.go).
type SecurityService interface {
	// DescribeUserScramCredentials returns stored SCRAM credentials.
	//kafkaop:describe_user_scram_credentials OpDescribeUserScramCredentials
	DescribeUserScramCredentials(ctx context.Context, req *DescribeUserScramCredentialsReq) (*DescribeUserScramCredentialsResp, error)

	// AlterUserScramCredentials deletes and upserts SCRAM credentials, durably.
	//kafkaop:alter_user_scram_credentials OpAlterUserScramCredentials
	AlterUserScramCredentials(ctx context.Context, req *AlterUserScramCredentialsReq) (*AlterUserScramCredentialsResp, error)

	// DescribeAcls returns the stored ACL bindings a filter selects.
	//kafkaop:describe_acls OpDescribeAcls
	DescribeAcls(ctx context.Context, req *DescribeAclsReq) (*DescribeAclsResp, error)

	// CreateAcls stores ACL bindings, durably.
	//kafkaop:create_acls OpCreateAcls
	CreateAcls(ctx context.Context, req *CreateAclsReq) (*CreateAclsResp, error)

	// DeleteAcls deletes the ACL bindings filters select, durably.
	//kafkaop:delete_acls OpDeleteAcls
	DeleteAcls(ctx context.Context, req *DeleteAclsReq) (*DeleteAclsResp, error)
}

// QuorumService is the metadata quorum's own ops: the broker list and placement the
// gateways route by, and joining a broker to the quorum (package broker/controller).
type QuorumService interface {
	// ClusterBrokers lists the quorum's brokers, their addresses and liveness, and the leader.
	//kafkaop:cluster_brokers OpClusterBrokers
	ClusterBrokers(ctx context.Context, req *ClusterBrokersReq) (*ClusterBrokersResp, error)

	// Placement tells which broker owns each partition of topics.
	//kafkaop:placement OpPlacement
	Placement(ctx context.Context, req *PlacementReq) (*PlacementResp, error)

	// QuorumJoin adds a broker to the metadata quorum.
	//kafkaop:quorum_join OpQuorumJoin
	QuorumJoin(ctx context.Context, req *QuorumJoinReq) (*QuorumJoinResp, error)

	// UpdatePartition records a replicated partition's leader, leader epoch and ISR as its
	// leader reports them.
	//kafkaop:update_partition OpUpdatePartition
	UpdatePartition(ctx context.Context, req *UpdatePartitionReq) (*UpdatePartitionResp, error)

	// QuorumAdmin runs an operator's membership change on the leader.
	//kafkaop:quorum_admin OpQuorumAdmin
	QuorumAdmin(ctx context.Context, req *QuorumAdminReq) (*QuorumAdminResp, error)

	// DescribeQuorum describes the quorum's raft state, from the leader.
	//kafkaop:describe_quorum OpDescribeQuorum
	DescribeQuorum(ctx context.Context, req *DescribeQuorumReq) (*DescribeQuorumResp, error)

	// AlterReassignments starts, changes or cancels replica reassignments (Kafka's
	// AlterPartitionReassignments), on the leader.
	//kafkaop:alter_reassignments OpAlterReassignments
	AlterReassignments(ctx context.Context, req *AlterReassignmentsReq) (*AlterReassignmentsResp, error)

	// ListReassignments lists the replica reassignments in progress, from the leader.
	//kafkaop:list_reassignments OpListReassignments
	ListReassignments(ctx context.Context, req *ListReassignmentsReq) (*ListReassignmentsResp, error)

	// ElectLeaders moves partitions' leadership to their preferred replicas, on the leader.
	//kafkaop:elect_leaders OpElectLeaders
	ElectLeaders(ctx context.Context, req *ElectLeadersReq) (*ElectLeadersResp, error)

	// TransferPartitionLeader hands a replicated partition's raft leadership to another
	// replica; served by the broker leading it (never forwarded).
	//kafkaop:transfer_partition_leader OpTransferPartitionLeader
	TransferPartitionLeader(ctx context.Context, req *TransferPartitionLeaderReq) (*TransferPartitionLeaderResp, error)

	// CompleteReassignment records that a partition's raft group reached its reassignment
	// target (its leader reports it), on the leader.
	//kafkaop:complete_reassignment OpCompleteReassignment
	CompleteReassignment(ctx context.Context, req *CompleteReassignmentReq) (*CompleteReassignmentResp, error)
}

// ShareService is the share-group coordinator (KIP-932, share.go).
type ShareService interface {
	// ShareGroupHeartbeat joins, heartbeats or leaves a share group.
	//kafkaop:share_group_heartbeat OpShareGroupHeartbeat
	ShareGroupHeartbeat(ctx context.Context, req *ShareGroupHeartbeatReq) (*ShareGroupHeartbeatResp, error)

	// ShareGroupDescribe describes share groups.
	//kafkaop:share_group_describe OpShareGroupDescribe
	ShareGroupDescribe(ctx context.Context, req *ShareGroupDescribeReq) (*ShareGroupDescribeResp, error)

	// ShareFetch acknowledges and acquires records in a share session.
	//kafkaop:share_fetch OpShareFetch
	ShareFetch(ctx context.Context, req *ShareFetchReq) (*ShareFetchResp, error)

	// ShareAcknowledge acknowledges records in a share session.
	//kafkaop:share_acknowledge OpShareAcknowledge
	ShareAcknowledge(ctx context.Context, req *ShareAcknowledgeReq) (*ShareAcknowledgeResp, error)

	// DescribeShareGroupOffsets reads share groups' start offsets.
	//kafkaop:describe_share_group_offsets OpDescribeShareGroupOffsets
	DescribeShareGroupOffsets(ctx context.Context, req *DescribeShareGroupOffsetsReq) (*DescribeShareGroupOffsetsResp, error)

	// AlterShareGroupOffsets sets an empty share group's start offsets.
	//kafkaop:alter_share_group_offsets OpAlterShareGroupOffsets
	AlterShareGroupOffsets(ctx context.Context, req *AlterShareGroupOffsetsReq) (*AlterShareGroupOffsetsResp, error)

	// DeleteShareGroupOffsets forgets an empty share group's state for topics.
	//kafkaop:delete_share_group_offsets OpDeleteShareGroupOffsets
	DeleteShareGroupOffsets(ctx context.Context, req *DeleteShareGroupOffsetsReq) (*DeleteShareGroupOffsetsResp, error)
}

// Message is a struct with a generated postcard codec: every op request and response, the
// structs they hold, and the frame headers.
type Message interface {
	// AppendPostcard appends the postcard encoding to b.
	AppendPostcard(b []byte) []byte
	decode(d *postcard.Decoder) error
	sizeHint() int
}

// ErrUnsupported is wrapped by the error of an op a Service does not serve (Unimplemented).
var ErrUnsupported = errors.New("op not served")

func unsupported(op string) error { return &unsupportedError{op: op} }

type unsupportedError struct{ op string }

func (e *unsupportedError) Error() string { return "op " + e.op + " is not served by this node" }
func (e *unsupportedError) Unwrap() error { return ErrUnsupported }

var errNilAnswer = errors.New("brokerop: op returned neither an answer nor an error")

// ProduceNow is ProduceStaged for a Service that produces synchronously: it calls produce at
// once (so order is kept; nothing is pipelined) and returns its result.
func ProduceNow(ctx context.Context, produce func(context.Context, *ProduceReq) (*ProduceResp, error), req *ProduceReq) func() (*ProduceResp, error) {
	resp, err := produce(ctx, req)
	return func() (*ProduceResp, error) { return resp, err }
}

// FetchUnpooled is FetchPooled for a Service whose answers live in their own memory.
func FetchUnpooled(ctx context.Context, fetch func(context.Context, *FetchReq) (*FetchResp, error), req *FetchReq) (*FetchResp, func(), error) {
	resp, err := fetch(ctx, req)
	return resp, func() {}, err
}

// ProduceStaged forwards to p.Data; without one the answer is ErrUnsupported.
func (p Parts) ProduceStaged(ctx context.Context, req *ProduceReq) func() (*ProduceResp, error) {
	if p.Data == nil {
		return func() (*ProduceResp, error) { return nil, unsupported("produce") }
	}
	return p.Data.ProduceStaged(ctx, req)
}

// FetchPooled forwards to p.Data; without one the answer is ErrUnsupported.
func (p Parts) FetchPooled(ctx context.Context, req *FetchReq) (*FetchResp, func(), error) {
	if p.Data == nil {
		return nil, nil, unsupported("fetch")
	}
	return p.Data.FetchPooled(ctx, req)
}

// Interceptor runs around every op of an intercepted Service (Intercept): it is called with
// the op's name before the op runs and returns the context the op runs with and the function
// called with the op's error once it completed (for ProduceStaged, once its wait returned).
type Interceptor func(ctx context.Context, op string) (context.Context, func(error))

// Intercept decorates svc: every op, and the local forms, runs inside around (tracing,
// metrics). The op methods are generated (ops_gen.go).
func Intercept(svc Service, around Interceptor) Service { return intercepted{svc: svc, around: around} }

// ProduceStaged runs inside around until its wait returned.
func (s intercepted) ProduceStaged(ctx context.Context, req *ProduceReq) func() (*ProduceResp, error) {
	ctx, done := s.around(ctx, "produce")
	wait := s.svc.ProduceStaged(ctx, req)
	return func() (*ProduceResp, error) {
		resp, err := wait()
		done(err)
		return resp, err
	}
}

// FetchPooled runs inside around.
func (s intercepted) FetchPooled(ctx context.Context, req *FetchReq) (*FetchResp, func(), error) {
	ctx, done := s.around(ctx, "fetch")
	resp, release, err := s.svc.FetchPooled(ctx, req)
	done(err)
	return resp, release, err
}
