package brokerop

// Topic and cluster administration ops (Kafka's CreatePartitions, DescribeConfigs,
// AlterConfigs, IncrementalAlterConfigs and DescribeCluster). Op codes: codes.go, 0x20–0x27.

// Config resource types, as Kafka numbers them in DescribeConfigs and AlterConfigs.
const (
	ResourceTopic  int8 = 2
	ResourceBroker int8 = 4
)

// Config sources, as Kafka numbers them in DescribeConfigs v1+.
const (
	SourceUnknown              int8 = 0
	SourceDynamicTopic         int8 = 1
	SourceDynamicBroker        int8 = 2
	SourceDynamicDefaultBroker int8 = 3
	SourceStaticBroker         int8 = 4
	SourceDefault              int8 = 5
)

// Config value types, as Kafka numbers them in DescribeConfigs v3+.
const (
	ConfigTypeUnknown int8 = 0
	ConfigTypeBoolean int8 = 1
	ConfigTypeString  int8 = 2
	ConfigTypeInt     int8 = 3
	ConfigTypeShort   int8 = 4
	ConfigTypeLong    int8 = 5
	ConfigTypeDouble  int8 = 6
	ConfigTypeList    int8 = 7
)

// IncrementalAlterConfigs operations, as Kafka numbers them.
const (
	ConfigOpSet      int8 = 0
	ConfigOpDelete   int8 = 1
	ConfigOpAppend   int8 = 2
	ConfigOpSubtract int8 = 3
)

// CreatePartitionsReq grows topics to a new partition count.
type CreatePartitionsReq struct {
	Topics       []CreatePartitionsTopic
	ValidateOnly bool
}

// CreatePartitionsTopic is one topic to grow. Assignments, if not empty, lists the replica
// broker ids of each new partition (Count - current entries).
type CreatePartitionsTopic struct {
	Name        string
	Count       int32
	Assignments [][]int32
}

// CreatePartitionsResp answers CreatePartitionsReq in request order.
type CreatePartitionsResp struct {
	Topics []CreatePartitionsTopicResp
}

// CreatePartitionsTopicResp is the outcome for one topic.
type CreatePartitionsTopicResp struct {
	Name         string
	ErrorCode    int16
	ErrorMessage string
}

// DescribeConfigsReq describes the configs of topics or brokers.
type DescribeConfigsReq struct {
	Resources            []DescribeConfigsResource
	IncludeSynonyms      bool
	IncludeDocumentation bool
}

// DescribeConfigsResource is one resource to describe. An empty ConfigNames means all configs.
type DescribeConfigsResource struct {
	Type        int8 // ResourceTopic or ResourceBroker
	Name        string
	ConfigNames []string
}

// DescribeConfigsResp answers DescribeConfigsReq in request order.
type DescribeConfigsResp struct {
	Resources []DescribeConfigsResourceResp
}

// DescribeConfigsResourceResp holds one resource's configs (or its error).
type DescribeConfigsResourceResp struct {
	Type         int8
	Name         string
	ErrorCode    int16
	ErrorMessage string
	Configs      []ConfigEntry
}

// ConfigEntry is one config as DescribeConfigs reports it. Value is nil for sensitive configs.
type ConfigEntry struct {
	Name          string
	Value         *string
	ReadOnly      bool
	IsDefault     bool // v0's flag: Source is SourceDefault
	Source        int8
	IsSensitive   bool
	Synonyms      []ConfigSynonym // only with IncludeSynonyms: this entry's source first, then fallbacks
	ConfigType    int8
	Documentation string // only with IncludeDocumentation
}

// ConfigSynonym is one place a config's value can come from, most specific first.
type ConfigSynonym struct {
	Name   string
	Value  *string
	Source int8
}

// AlterConfigsReq replaces the whole dynamic config set of resources (Kafka's legacy
// AlterConfigs: configs not listed go back to their defaults).
type AlterConfigsReq struct {
	Resources    []AlterConfigsResource
	ValidateOnly bool
}

// AlterConfigsResource is one resource's new config set.
type AlterConfigsResource struct {
	Type    int8
	Name    string
	Configs []AlterConfig
}

// AlterConfig is one config value; a nil Value means "no override".
type AlterConfig struct {
	Name  string
	Value *string
}

// AlterConfigsResp answers AlterConfigsReq and IncrementalAlterConfigsReq in request order.
type AlterConfigsResp struct {
	Resources []AlterConfigsResourceResp
}

// AlterConfigsResourceResp is the outcome for one resource.
type AlterConfigsResourceResp struct {
	Type         int8
	Name         string
	ErrorCode    int16
	ErrorMessage string
}

// IncrementalAlterConfigsReq changes single configs of resources.
type IncrementalAlterConfigsReq struct {
	Resources    []IncrementalAlterConfigsResource
	ValidateOnly bool
}

// IncrementalAlterConfigsResource is one resource's config changes.
type IncrementalAlterConfigsResource struct {
	Type    int8
	Name    string
	Configs []IncrementalAlterConfig
}

// IncrementalAlterConfig is one change: Op is ConfigOpSet, ConfigOpDelete, ConfigOpAppend or
// ConfigOpSubtract (the last two for list configs only).
type IncrementalAlterConfig struct {
	Name  string
	Op    int8
	Value *string
}

// DescribeClusterReq asks for the cluster id, controller and brokers.
type DescribeClusterReq struct{}

// DescribeClusterResp describes the cluster. The gateway adds each broker's advertised
// host and port.
type DescribeClusterResp struct {
	ErrorCode    int16
	ErrorMessage string
	ClusterID    string
	ControllerID int32
	Brokers      []BrokerInfo
}
