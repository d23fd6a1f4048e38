package brokerop

// Data and topic ops: produce, fetch, list offsets, metadata, create and delete topics (op
// codes: codes.go).

// ProduceReq appends record batches to partitions.
type ProduceReq struct {
	Acks       int16 // 0, 1 or -1 (all: answered after fsync)
	TimeoutMs  int32
	Partitions []ProducePartition
	// TxnAdd: a transactional batch adds its partition to its producer's transaction
	// (Produce v12+ under transaction.version 2, KIP-890 part 2) instead of needing an
	// AddPartitionsToTxn before it. Only sent to a backend that serves
	// transaction.version 2.
	TxnAdd bool
}

// ProducePartition carries the raw RecordBatch bytes a client sent for one partition
// (one or more v2 batches back to back, possibly compressed; never decompressed by the broker).
type ProducePartition struct {
	Topic     string
	Partition int32
	Records   []byte `kafkaop:"records"`
}

// ProduceResp answers ProduceReq, one entry per requested partition in the same order.
type ProduceResp struct {
	Partitions []ProducePartitionResp
}

// ProducePartitionResp is the outcome for one partition.
type ProducePartitionResp struct {
	Topic          string
	Partition      int32
	ErrorCode      int16
	ErrorMessage   string
	BaseOffset     int64
	LogAppendTime  int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset int64
}

// FetchReq reads from partitions. The broker waits up to MaxWaitMs for MinBytes to accumulate
// across all partitions of the request and returns early when they do.
type FetchReq struct {
	MaxWaitMs      int32
	MinBytes       int32
	MaxBytes       int32 // total response budget
	IsolationLevel int8
	Partitions     []FetchPartition
}

// FetchPartition is one partition to read.
type FetchPartition struct {
	Topic     string
	Partition int32
	Offset    int64
	MaxBytes  int32 // per-partition budget
	// CurrentLeaderEpoch is the leader epoch the client knows (Fetch v9+); ≤ 0: none. A
	// replicated partition's leader answers FENCED_LEADER_EPOCH below its epoch and
	// UNKNOWN_LEADER_EPOCH above it.
	CurrentLeaderEpoch int32
}

// FetchResp answers FetchReq, one entry per requested partition in the same order.
type FetchResp struct {
	Partitions []FetchPartitionResp
}

// FetchPartitionResp holds whole stored record batches starting at or before the fetch offset.
type FetchPartitionResp struct {
	Topic            string
	Partition        int32
	ErrorCode        int16
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	Records          []byte `kafkaop:"records"`
}

// ListOffsetsReq asks for offsets by timestamp (-1 latest, -2 earliest, -3 max timestamp).
type ListOffsetsReq struct {
	IsolationLevel int8
	Partitions     []ListOffsetsPartition
}

// ListOffsetsPartition is one partition to look up.
type ListOffsetsPartition struct {
	Topic     string
	Partition int32
	Timestamp int64
	// CurrentLeaderEpoch is the leader epoch the client knows (ListOffsets v4+); ≤ 0: none.
	CurrentLeaderEpoch int32
}

// ListOffsetsResp answers ListOffsetsReq in request order.
type ListOffsetsResp struct {
	Partitions []ListOffsetsPartitionResp
}

// ListOffsetsPartitionResp is the found offset (-1 when no record matches the timestamp).
type ListOffsetsPartitionResp struct {
	Topic     string
	Partition int32
	ErrorCode int16
	Timestamp int64
	Offset    int64
	// LeaderEpoch is the partition's leader epoch (0 for a single-owner partition, the raft
	// term for a replicated one).
	LeaderEpoch int32
}

// MetadataReq describes topics. Topics nil means all topics. AutoCreate creates missing ones
// with the broker's default partition count.
type MetadataReq struct {
	Topics     []string
	AutoCreate bool
}

// MetadataResp lists the known brokers and the requested topics.
type MetadataResp struct {
	Brokers      []BrokerInfo
	Topics       []TopicInfo
	ClusterID    string // stable across restarts
	ControllerID int32
}

// BrokerInfo identifies a broker node. NodeID is the Kafka-visible broker id; MeshID the mesh
// node id text (empty in-process); Kafka the host:port of the broker's own Kafka listener
// when it advertises one (the direct data path, issue #16 item 4), else "".
type BrokerInfo struct {
	NodeID int32
	MeshID string
	Kafka  string
}

// TopicInfo describes one topic.
type TopicInfo struct {
	Name       string
	ErrorCode  int16
	TopicID    [16]byte
	Internal   bool
	Partitions []PartitionInfo
}

// PartitionInfo describes one partition and the broker that owns it. For a replicated
// partition (issue #16; the metadata quorum's controller fills these) Leader is the Kafka id
// of its leader broker (the raft leader last reported, else the preferred leader),
// LeaderEpoch its epoch (-1 while no leader was reported), Replicas, ISR and OfflineReplicas
// the Kafka ids of its replicas, in-sync replicas and replicas whose broker is not live;
// Replicas is empty for a single-owner partition.
type PartitionInfo struct {
	Partition       int32
	Leader          int32
	ErrorCode       int16
	LeaderEpoch     int32
	Replicas        []int32
	ISR             []int32
	OfflineReplicas []int32
}

// CreateTopicsReq creates topics.
type CreateTopicsReq struct {
	Topics       []CreateTopic
	ValidateOnly bool
}

// CreateTopic is one topic to create. NumPartitions -1 means the broker default.
type CreateTopic struct {
	Name              string
	NumPartitions     int32
	ReplicationFactor int16
	Configs           map[string]string
}

// CreateTopicsResp answers CreateTopicsReq in request order.
type CreateTopicsResp struct {
	Topics []CreateTopicResp
}

// CreateTopicResp is the outcome for one topic.
type CreateTopicResp struct {
	Name          string
	ErrorCode     int16
	ErrorMessage  string
	TopicID       [16]byte
	NumPartitions int32
	// ReplicationFactor and Configs (the topic's full config set, as DescribeConfigs reports
	// it without synonyms) are set on success; CreateTopics v5+ returns them.
	ReplicationFactor int16
	Configs           []ConfigEntry
}

// DeleteTopicsReq deletes topics and purges their data.
type DeleteTopicsReq struct {
	Topics []string
}

// DeleteTopicsResp answers DeleteTopicsReq in request order.
type DeleteTopicsResp struct {
	Topics []DeleteTopicResp
}

// DeleteTopicResp is the outcome for one topic.
type DeleteTopicResp struct {
	Name      string
	ErrorCode int16
	TopicID   [16]byte
}
