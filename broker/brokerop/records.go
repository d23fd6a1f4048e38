package brokerop

// Log and quota administration ops (Kafka's DeleteRecords, DescribeLogDirs,
// OffsetForLeaderEpoch, DescribeClientQuotas and AlterClientQuotas). Op codes: codes.go,
// 0x50–0x57.

// DeleteRecordsReq moves partitions' log start offsets up: records below Offset are no
// longer readable. Offset -1 means the high watermark.
type DeleteRecordsReq struct {
	TimeoutMs  int32
	Partitions []DeleteRecordsPartition
}

// DeleteRecordsPartition is one partition and the offset its log is to start at.
type DeleteRecordsPartition struct {
	Topic     string
	Partition int32
	Offset    int64
}

// DeleteRecordsResp answers DeleteRecordsReq in request order.
type DeleteRecordsResp struct {
	Partitions []DeleteRecordsPartitionResp
}

// DeleteRecordsPartitionResp holds the partition's log start offset after the delete (-1
// with an error).
type DeleteRecordsPartitionResp struct {
	Topic        string
	Partition    int32
	ErrorCode    int16
	LowWatermark int64
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// DescribeLogDirsReq describes the log directory: All for every partition, else only
// Partitions (an unknown one is left out of the answer, as Kafka does).
type DescribeLogDirsReq struct {
	All        bool
	Partitions []TopicPartition
}

// DescribeLogDirsResp lists the broker's log directories.
type DescribeLogDirsResp struct {
	Dirs []LogDir
}

// LogDir is one log directory and the partitions in it. TotalBytes and UsableBytes are the
// file system's (-1 when unknown).
type LogDir struct {
	Path        string
	ErrorCode   int16
	TotalBytes  int64
	UsableBytes int64
	Partitions  []LogDirPartition
}

// LogDirPartition is one partition's size on disk (its segment files) and offset lag (0:
// the only replica is the leader).
type LogDirPartition struct {
	Topic     string
	Partition int32
	Size      int64
	OffsetLag int64
}

// OffsetForLeaderEpochReq asks, per partition, for the end offset of a leader epoch.
type OffsetForLeaderEpochReq struct {
	Partitions []OffsetForLeaderEpochPartition
}

// OffsetForLeaderEpochPartition is one partition and the epoch asked about.
type OffsetForLeaderEpochPartition struct {
	Topic       string
	Partition   int32
	LeaderEpoch int32
	// CurrentLeaderEpoch is the leader epoch the client knows (v2+); ≤ 0: none.
	CurrentLeaderEpoch int32
}

// OffsetForLeaderEpochResp answers OffsetForLeaderEpochReq in request order.
type OffsetForLeaderEpochResp struct {
	Partitions []OffsetForLeaderEpochPartitionResp
}

// OffsetForLeaderEpochPartitionResp is the largest epoch at most the one asked about and
// its end offset (-1, -1 when there is none).
type OffsetForLeaderEpochPartitionResp struct {
	Topic       string
	Partition   int32
	ErrorCode   int16
	LeaderEpoch int32
	EndOffset   int64
}

// Quota entity types and match types, as Kafka names and numbers them.
const (
	QuotaEntityUser     = "user"
	QuotaEntityClientID = "client-id"
	QuotaEntityIP       = "ip"

	QuotaMatchExact   int8 = 0
	QuotaMatchDefault int8 = 1
	QuotaMatchAny     int8 = 2
)

// QuotaEntityPart is one part of a quota entity: its type and name (nil: the default
// entity of that type).
type QuotaEntityPart struct {
	Type string
	Name *string
}

// QuotaValue is one quota of an entity. Value is the decimal text of Kafka's double
// (strconv's shortest form, so it survives the hop exactly).
type QuotaValue struct {
	Key   string
	Value string
}

// QuotaEntry is an entity and its quotas.
type QuotaEntry struct {
	Entity []QuotaEntityPart
	Values []QuotaValue
}

// QuotaFilterComponent is one component of a DescribeClientQuotas filter.
type QuotaFilterComponent struct {
	EntityType string
	MatchType  int8 // QuotaMatchExact (Match), QuotaMatchDefault or QuotaMatchAny
	Match      *string
}

// DescribeClientQuotasReq lists the quotas of entities matching every component (Strict:
// entities with no other parts).
type DescribeClientQuotasReq struct {
	Components []QuotaFilterComponent
	Strict     bool
}

// DescribeClientQuotasResp holds the matching entities, or an error for the whole request.
type DescribeClientQuotasResp struct {
	ErrorCode    int16
	ErrorMessage string
	Entries      []QuotaEntry
}

// QuotaOp sets (Remove false) or removes one quota of an entity.
type QuotaOp struct {
	Key    string
	Value  string
	Remove bool
}

// AlterClientQuotasEntry is one entity's quota changes.
type AlterClientQuotasEntry struct {
	Entity []QuotaEntityPart
	Ops    []QuotaOp
}

// AlterClientQuotasReq changes quotas of entities; every entity is changed or none.
type AlterClientQuotasReq struct {
	Entries      []AlterClientQuotasEntry
	ValidateOnly bool
}

// AlterClientQuotasResp answers AlterClientQuotasReq in request order.
type AlterClientQuotasResp struct {
	Entries []AlterClientQuotasEntryResp
}

// AlterClientQuotasEntryResp is the outcome for one entity.
type AlterClientQuotasEntryResp struct {
	ErrorCode    int16
	ErrorMessage string
	Entity       []QuotaEntityPart
}
