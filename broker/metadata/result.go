package metadata

// Results of Apply, one type per command. Apply returns a pointer to one of these for a
// command it decoded, or an error (wrapping ErrMalformed, ErrUnknownCommand, ErrUnknownVersion
// or ErrStaleIndex) for an entry it could not apply; nil for an empty entry (raft's no-op).
// Codes are Kafka error codes (the Code* constants); Message is Kafka's text for the client.

// InitClusterResult reports the cluster id in force: the command's if it set it, else the one
// set before (Code INCONSISTENT_CLUSTER_ID when it differs from the command's).
type InitClusterResult struct {
	ClusterID string
	Code      int16
}

// RegisterBrokerResult reports a registration. Replaced is the raft id of the NodeID's previous
// incarnation that this one replaced (0 if none): the caller removes it from raft.
type RegisterBrokerResult struct {
	Code     int16
	Message  string
	KafkaID  int32
	Replaced uint64
}

// RemoveBrokerResult reports a removal (BROKER_NOT_AVAILABLE: no such raft id).
type RemoveBrokerResult struct {
	Code   int16
	NodeID NodeID // the removed broker's
}

// AllowBrokerResult reports whether an Allow/DisallowBroker changed the allowed set.
type AllowBrokerResult struct{ Changed bool }

// TopicResult is one topic's outcome in CreateTopics, DeleteTopics, CreatePartitions and
// AlterConfigs.
type TopicResult struct {
	Name    string
	ID      TopicID // the topic's id when it exists (created, deleted, changed)
	Code    int16
	Message string
}

// TopicsResult is the result of CreateTopics, DeleteTopics, CreatePartitions and AlterConfigs:
// one entry per topic of the command, in its order.
type TopicsResult struct{ Topics []TopicResult }

// MoveResult is one Move's outcome; Epoch is the partition's new epoch when it moved.
type MoveResult struct {
	Code    int16
	Message string
	Epoch   int32
}

// ReassignResult is the result of Reassign, one entry per move in order.
type ReassignResult struct{ Moves []MoveResult }

// AllocateProducerIDsResult reports the block [First, First+Count) on success.
type AllocateProducerIDsResult struct {
	Code  int16 // INVALID_REQUEST (bad count), UNKNOWN_SERVER_ERROR (id space exhausted)
	First int64
	Count int32
}

// CommitOffsetsResult reports a commit (INVALID_GROUP_ID for an empty group id).
type CommitOffsetsResult struct {
	Code      int16
	Committed int
}

// GroupGenerationsResult reports GroupGenerations (INVALID_GROUP_ID for an empty group id:
// nothing is recorded then).
type GroupGenerationsResult struct{ Code int16 }

// GroupResult is one group's outcome of DeleteGroups: Deleted offsets were removed;
// GROUP_ID_NOT_FOUND when the group had no committed offsets (the coordinator, which also
// knows groups without offsets, decides what the client sees).
type GroupResult struct {
	Group   string
	Code    int16
	Deleted int
}

// DeleteGroupsResult is the result of DeleteGroups, one entry per group in order.
type DeleteGroupsResult struct{ Groups []GroupResult }

// DeleteOffsetsResult reports how many of the listed offsets existed and were removed
// (GROUP_ID_NOT_FOUND when the group has no committed offsets at all).
type DeleteOffsetsResult struct {
	Code    int16
	Deleted int
}

// UpdatePartitionResult reports an UpdatePartition: Code UNKNOWN_TOPIC_OR_PARTITION, INVALID_REQUEST
// (a single-owner partition, a negative epoch, an ISR with duplicates or without the leader),
// INVALID_REPLICA_ASSIGNMENT (the leader or an ISR member is not a replica) or
// FENCED_LEADER_EPOCH (an older epoch, or another leader at the stored epoch). Changed says
// whether the stored leader, epoch or ISR changed.
type UpdatePartitionResult struct {
	Code    int16
	Message string
	Changed bool
}
