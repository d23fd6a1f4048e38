package brokerop

// Code identifies a KafkaOp on the wire: the tag of its frames (frame.go).
type Code uint8

// Op codes: every op's code in one table, in code order (LAYOUT.md lists them the same way,
// with each op's name and structs). 0x02–0x0B follow Rafka's table; the rest are ours, a range
// for each kind of op so that an op added to one kind never takes a code of another. Codes stay
// below FlagPrincipal (0x80); 0x7F stays unused (the tests use it as an unknown code). The
// comments name the file holding each range's request and response structs.
const (
	// Data, group and topic ops (ops.go, group.go). 0x02–0x0B are Rafka's, JoinGroup to
	// OffsetFetch included; Metadata and CreateTopics are ours.
	OpProduce      Code = 0x02
	OpFetch        Code = 0x03
	OpListOffsets  Code = 0x04
	OpDeleteTopics Code = 0x05
	OpJoinGroup    Code = 0x06
	OpSyncGroup    Code = 0x07
	OpHeartbeat    Code = 0x08
	OpLeaveGroup   Code = 0x09
	OpOffsetCommit Code = 0x0A
	OpOffsetFetch  Code = 0x0B
	OpMetadata     Code = 0x0C
	OpCreateTopics Code = 0x0D

	// 0x20–0x27: topic and cluster administration (admin.go): Kafka's CreatePartitions,
	// DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and DescribeCluster.
	OpCreatePartitions        Code = 0x20
	OpDescribeConfigs         Code = 0x21
	OpAlterConfigs            Code = 0x22
	OpIncrementalAlterConfigs Code = 0x23
	OpDescribeCluster         Code = 0x24

	// 0x28–0x2F: group administration (group.go). FindCoordinator has no op: the gateway
	// answers it itself with its own address.
	OpListGroups     Code = 0x28
	OpDescribeGroups Code = 0x29
	OpDeleteGroups   Code = 0x2A
	OpOffsetDelete   Code = 0x2B

	// 0x30–0x3F: producer ids (producer.go) and transactions (txn.go; Kafka's transactions,
	// exactly-once): the transaction coordinator lives with the producer-id counter.
	OpInitProducerID       Code = 0x30
	OpInitTxnProducerID    Code = 0x31
	OpAddPartitionsToTxn   Code = 0x32
	OpAddOffsetsToTxn      Code = 0x33
	OpTxnOffsetCommit      Code = 0x34
	OpEndTxn               Code = 0x35
	OpListTransactions     Code = 0x36
	OpDescribeTransactions Code = 0x37
	OpDescribeProducers    Code = 0x38
	OpWriteMarkers         Code = 0x39
	OpVerifyTxn            Code = 0x3A

	// 0x40–0x47: security (security.go): SCRAM credentials (Kafka's
	// DescribeUserScramCredentials and AlterUserScramCredentials, APIs 50/51) and ACLs.
	OpDescribeUserScramCredentials Code = 0x40
	OpAlterUserScramCredentials    Code = 0x41
	OpDescribeAcls                 Code = 0x42
	OpCreateAcls                   Code = 0x43
	OpDeleteAcls                   Code = 0x44

	// 0x50–0x57: log and quota administration (records.go), the second admin range (0x20–0x27
	// is full): Kafka's DeleteRecords, DescribeLogDirs, OffsetForLeaderEpoch,
	// DescribeClientQuotas and AlterClientQuotas.
	OpDeleteRecords        Code = 0x50
	OpDescribeLogDirs      Code = 0x51
	OpOffsetForLeaderEpoch Code = 0x52
	OpDescribeClientQuotas Code = 0x53
	OpAlterClientQuotas    Code = 0x54

	// 0x60–0x6F: the metadata quorum (quorum.go; package broker/controller serves them on
	// every broker, and a broker that is not the quorum leader forwards them to it). From
	// 0x66, replica moves (issue #16 item 3): Kafka's AlterPartitionReassignments (API 45),
	// ListPartitionReassignments (API 46) and ElectLeaders (API 43), and the leadership
	// transfer the quorum leader asks of a partition's raft leader.
	OpClusterBrokers          Code = 0x60
	OpPlacement               Code = 0x61
	OpQuorumJoin              Code = 0x62
	OpQuorumAdmin             Code = 0x63
	OpUpdatePartition         Code = 0x64
	OpDescribeQuorum          Code = 0x65
	OpAlterReassignments      Code = 0x66
	OpListReassignments       Code = 0x67
	OpElectLeaders            Code = 0x68
	OpTransferPartitionLeader Code = 0x69
	OpCompleteReassignment    Code = 0x6A

	// 0x70–0x77: KIP-848 consumer groups, the "consumer" group protocol of Kafka 4.0
	// (group848.go).
	OpConsumerGroupHeartbeat Code = 0x70
	OpConsumerGroupDescribe  Code = 0x71

	// 0x78–0x7E: share groups (KIP-932, "queues for Kafka"; share.go), served by the
	// broker's share coordinator (package broker/share).
	OpShareGroupHeartbeat       Code = 0x78
	OpShareGroupDescribe        Code = 0x79
	OpShareFetch                Code = 0x7A
	OpShareAcknowledge          Code = 0x7B
	OpDescribeShareGroupOffsets Code = 0x7C
	OpAlterShareGroupOffsets    Code = 0x7D
	OpDeleteShareGroupOffsets   Code = 0x7E
)
