package brokerop

// Transaction ops (Kafka's transactions, exactly-once). Op codes: codes.go, in the producer
// ops' range 0x30–0x3F: the transaction coordinator lives with the producer-id counter.

// WriteMarkersReq is Kafka's WriteTxnMarkers, sent by the transaction coordinator to the
// broker that leads (replicated) or owns each partition: a commit or abort marker of the
// producer at its epoch into each partition, answered once the markers are durable
// (committed, for replicated partitions). Answered with TxnResp: 0, or
// NOT_LEADER_OR_FOLLOWER when a partition is not led here (the coordinator looks the
// leader up again and retries), or another error; partitions that do not exist are skipped.
type WriteMarkersReq struct {
	ProducerID    int64
	ProducerEpoch int16
	Commit        bool
	Partitions    []TxnPartition
}

// VerifyTxnReq asks the transaction coordinator whether the producer may append a
// transactional batch to the partition: its transaction is ongoing at that epoch and
// includes the partition (KIP-890's verification). Answered with TxnResp: 0, or
// INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING, INVALID_TXN_STATE, or
// COORDINATOR_NOT_AVAILABLE.
type VerifyTxnReq struct {
	ProducerID    int64
	ProducerEpoch int16
	Topic         string
	Partition     int32
}

// InitTxnProducerIDReq is Kafka's InitProducerID with a transactional id: the coordinator
// hands out the id's producer id with a bumped epoch (fencing earlier producers of the id,
// and aborting their ongoing transaction). ProducerID/ProducerEpoch are what the client
// already holds (-1/-1 for none; KIP-360). Answered with InitProducerIDResp.
type InitTxnProducerIDReq struct {
	TransactionalID string
	TimeoutMs       int32
	ProducerID      int64
	ProducerEpoch   int16
}

// TxnPartition names one partition.
type TxnPartition struct {
	Topic     string
	Partition int32
}

// AddPartitionsToTxnReq adds partitions to a transaction.
type AddPartitionsToTxnReq struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Partitions      []TxnPartition
}

// TxnResp is the answer of the transaction ops that have one error code.
type TxnResp struct {
	ErrorCode int16
	// ProducerID and ProducerEpoch answer a successful EndTxnReq with Bump: the pair the
	// producer continues with (not meaningful otherwise).
	ProducerID    int64
	ProducerEpoch int16
}

// AddOffsetsToTxnReq adds a consumer group's offsets to a transaction.
type AddOffsetsToTxnReq struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Group           string
}

// TxnOffsetCommitReq commits offsets inside a transaction: they become the group's
// committed offsets only when the transaction commits. Generation, MemberID and InstanceID
// are the consumer's group membership (TxnOffsetCommit v3, KIP-447; -1, "" and "" for
// none), fenced against the group.
type TxnOffsetCommitReq struct {
	TransactionalID string
	Group           string
	ProducerID      int64
	ProducerEpoch   int16
	Topics          []OffsetCommitTopic
	Generation      int32
	MemberID        string
	InstanceID      string
	// AddGroup adds the group to the transaction first (TxnOffsetCommit v5 under
	// transaction.version 2: no AddOffsetsToTxn before it).
	AddGroup bool
}

// EndTxnReq commits (Commit) or aborts a transaction.
type EndTxnReq struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Commit          bool
	// Bump: EndTxn v5 under transaction.version 2 (KIP-890 part 2), which bumps the
	// producer epoch at every end and answers the new pair (TxnResp.ProducerID/Epoch).
	Bump bool
}

// ListTransactionsReq filters transactions: by state names (empty: all), producer ids
// (empty: all), running for at least MinDurationMs (-1: any), and, with Group set, holding
// pending offsets of that group (the gateway's OffsetFetch with require_stable, KIP-447).
type ListTransactionsReq struct {
	States        []string
	ProducerIDs   []int64
	MinDurationMs int64
	Group         string
}

// TxnListing is one transaction of ListTransactionsResp.
type TxnListing struct {
	TransactionalID string
	ProducerID      int64
	State           string
	PendingOffsets  []TxnPartition // with ListTransactionsReq.Group: that group's pending partitions
}

// ListTransactionsResp lists transactions, sorted by id.
type ListTransactionsResp struct {
	Transactions []TxnListing
}

// DescribeTransactionsReq describes transactional ids.
type DescribeTransactionsReq struct {
	TransactionalIDs []string
}

// TxnDescription is one transactional id's state (ErrorCode TRANSACTIONAL_ID_NOT_FOUND for
// an unknown id).
type TxnDescription struct {
	TransactionalID string
	ErrorCode       int16
	State           string
	TimeoutMs       int32
	StartMs         int64 // -1 when no transaction is ongoing
	ProducerID      int64
	ProducerEpoch   int16
	Partitions      []TxnPartition
}

// DescribeTransactionsResp answers in request order.
type DescribeTransactionsResp struct {
	Transactions []TxnDescription
}

// DescribeProducersReq asks for the active producers of partitions.
type DescribeProducersReq struct {
	Partitions []TxnPartition
}

// ProducerInfo is one active producer of a partition.
type ProducerInfo struct {
	ProducerID       int64
	ProducerEpoch    int32
	LastSequence     int32
	LastTimestamp    int64
	CoordinatorEpoch int32
	TxnStartOffset   int64 // -1 without an ongoing transaction
}

// DescribeProducersPartition is one partition's answer.
type DescribeProducersPartition struct {
	Topic     string
	Partition int32
	ErrorCode int16
	Producers []ProducerInfo
}

// DescribeProducersResp answers in request order.
type DescribeProducersResp struct {
	Partitions []DescribeProducersPartition
}
