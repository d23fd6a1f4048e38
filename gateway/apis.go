package gateway

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/kafkawire"
)

// The Kafka APIs this package serves and the versions it advertises, in one table. Each
// API's behaviour and version notes are in its file (api_*.go, group_*.go).
func init() {
	for _, a := range []API{
		{Key: kafkawire.KeyProduce, MinVersion: 0, MaxVersion: 12, Stage: stageProduce},
		{Key: kafkawire.KeyFetch, MinVersion: 0, MaxVersion: 16, Handle: handleFetch},
		{Key: kafkawire.KeyListOffsets, MinVersion: 0, MaxVersion: 7, Handle: typed(handleListOffsets)},
		{Key: kafkawire.KeyMetadata, MinVersion: 0, MaxVersion: 12, Handle: typed(handleMetadata)},
		{Key: kafkawire.KeyApiVersions, MinVersion: 0, MaxVersion: 4, Handle: handleApiVersions},
		{Key: kafkawire.KeyCreateTopics, MinVersion: 0, MaxVersion: 7, Handle: typed(handleCreateTopics)},
		{Key: kafkawire.KeyDeleteTopics, MinVersion: 0, MaxVersion: 6, Handle: typed(handleDeleteTopics)},
		{Key: kmsg.InitProducerID.Int16(), MinVersion: 0, MaxVersion: 5, Handle: typed(handleInitProducerID)},
		{Key: kmsg.CreatePartitions.Int16(), MinVersion: 0, MaxVersion: 3, Handle: typed(handleCreatePartitions)}, // api_admin.go
		{Key: kmsg.DescribeConfigs.Int16(), MinVersion: 0, MaxVersion: 4, Handle: typed(handleDescribeConfigs)},
		{Key: kmsg.AlterConfigs.Int16(), MinVersion: 0, MaxVersion: 2, Handle: typed(handleAlterConfigs)},
		{Key: kmsg.IncrementalAlterConfigs.Int16(), MinVersion: 0, MaxVersion: 1, Handle: typed(handleIncrementalAlterConfigs)},
		{Key: kmsg.DescribeCluster.Int16(), MinVersion: 0, MaxVersion: 1, Handle: typed(handleDescribeCluster)},
		{Key: kmsg.DescribeQuorum.Int16(), MinVersion: 0, MaxVersion: 2, Handle: typed(handleDescribeQuorum)},
		{Key: kmsg.AlterPartitionAssignments.Int16(), MinVersion: 0, MaxVersion: 1, Handle: typed(handleAlterPartitionReassignments)}, // api_reassign.go
		{Key: kmsg.ListPartitionReassignments.Int16(), MinVersion: 0, MaxVersion: 0, Handle: typed(handleListPartitionReassignments)},
		{Key: kmsg.ElectLeaders.Int16(), MinVersion: 0, MaxVersion: 2, Handle: typed(handleElectLeaders)},
		{Key: kmsg.DeleteRecords.Int16(), MinVersion: 0, MaxVersion: 2, Handle: typed(handleDeleteRecords)}, // api_records.go
		{Key: kmsg.OffsetForLeaderEpoch.Int16(), MinVersion: 0, MaxVersion: 4, Handle: typed(handleOffsetForLeaderEpoch)},
		{Key: kmsg.DescribeLogDirs.Int16(), MinVersion: 0, MaxVersion: 4, Handle: typed(handleDescribeLogDirs)},
		{Key: kmsg.DescribeClientQuotas.Int16(), MinVersion: 0, MaxVersion: 1, Handle: typed(handleDescribeClientQuotas)},
		{Key: kmsg.AlterClientQuotas.Int16(), MinVersion: 0, MaxVersion: 1, Handle: typed(handleAlterClientQuotas)},
		{Key: kafkawire.KeyFindCoordinator, MinVersion: 0, MaxVersion: 6, Handle: typed(handleFindCoordinator)}, // group_*.go
		{Key: kmsg.JoinGroup.Int16(), MinVersion: 0, MaxVersion: 9, Handle: typed(handleJoinGroup)},
		{Key: kmsg.SyncGroup.Int16(), MinVersion: 0, MaxVersion: 5, Handle: typed(handleSyncGroup)},
		{Key: kmsg.Heartbeat.Int16(), MinVersion: 0, MaxVersion: 4, Handle: typed(handleHeartbeat)},
		{Key: kmsg.LeaveGroup.Int16(), MinVersion: 0, MaxVersion: 5, Handle: typed(handleLeaveGroup)},
		{Key: kmsg.OffsetCommit.Int16(), MinVersion: 0, MaxVersion: 9, Handle: typed(handleOffsetCommit)},
		{Key: kmsg.OffsetFetch.Int16(), MinVersion: 0, MaxVersion: 9, Handle: typed(handleOffsetFetch)},
		{Key: kmsg.ListGroups.Int16(), MinVersion: 0, MaxVersion: 5, Handle: typed(handleListGroups)},
		{Key: kmsg.DescribeGroups.Int16(), MinVersion: 0, MaxVersion: 6, Handle: typed(handleDescribeGroups)},
		{Key: kmsg.DeleteGroups.Int16(), MinVersion: 0, MaxVersion: 2, Handle: typed(handleDeleteGroups)},
		{Key: kmsg.OffsetDelete.Int16(), MinVersion: 0, MaxVersion: 0, Handle: typed(handleOffsetDelete)},
		{Key: kmsg.ConsumerGroupHeartbeat.Int16(), MinVersion: 0, MaxVersion: 1, Handle: typed(handleConsumerGroupHeartbeat)}, // group_consumer.go
		{Key: kmsg.ConsumerGroupDescribe.Int16(), MinVersion: 0, MaxVersion: 1, Handle: typed(handleConsumerGroupDescribe)},
		{Key: kmsg.SASLHandshake.Int16(), MinVersion: 0, MaxVersion: 1, Handle: handleSaslHandshake}, // sasl.go
		{Key: kmsg.SASLAuthenticate.Int16(), MinVersion: 0, MaxVersion: 2, Handle: handleSaslAuthenticate},
		{Key: kmsg.DescribeUserSCRAMCredentials.Int16(), MinVersion: 0, MaxVersion: 0, Handle: typed(handleDescribeUserScramCredentials)}, // api_scram.go
		{Key: kmsg.AlterUserSCRAMCredentials.Int16(), MinVersion: 0, MaxVersion: 0, Handle: typed(handleAlterUserScramCredentials)},
		{Key: kmsg.DescribeACLs.Int16(), MinVersion: 0, MaxVersion: 3, Handle: typed(handleDescribeAcls)}, // api_acls.go
		{Key: kmsg.CreateACLs.Int16(), MinVersion: 0, MaxVersion: 3, Handle: typed(handleCreateAcls)},
		{Key: kmsg.DeleteACLs.Int16(), MinVersion: 0, MaxVersion: 3, Handle: typed(handleDeleteAcls)},
		{Key: kmsg.AddPartitionsToTxn.Int16(), MinVersion: 0, MaxVersion: 5, Handle: typed(handleAddPartitionsToTxn)}, // api_txn.go
		{Key: kmsg.AddOffsetsToTxn.Int16(), MinVersion: 0, MaxVersion: 4, Handle: typed(handleAddOffsetsToTxn)},
		{Key: kmsg.EndTxn.Int16(), MinVersion: 0, MaxVersion: 5, Handle: typed(handleEndTxn)},
		{Key: kmsg.TxnOffsetCommit.Int16(), MinVersion: 0, MaxVersion: 5, Handle: typed(handleTxnOffsetCommit)},
		{Key: kmsg.DescribeProducers.Int16(), MinVersion: 0, MaxVersion: 0, Handle: typed(handleDescribeProducers)},
		{Key: kmsg.DescribeTransactions.Int16(), MinVersion: 0, MaxVersion: 0, Handle: typed(handleDescribeTransactions)},
		{Key: kmsg.ListTransactions.Int16(), MinVersion: 0, MaxVersion: 1, Handle: typed(handleListTransactions)},
		{Key: kmsg.ShareGroupHeartbeat.Int16(), MinVersion: 1, MaxVersion: 1, Handle: typed(handleShareGroupHeartbeat)}, // api_share.go
		{Key: kmsg.ShareGroupDescribe.Int16(), MinVersion: 1, MaxVersion: 1, Handle: typed(handleShareGroupDescribe)},
		{Key: kmsg.ShareFetch.Int16(), MinVersion: 1, MaxVersion: 2, Handle: typed(handleShareFetch)},
		{Key: kmsg.ShareAcknowledge.Int16(), MinVersion: 1, MaxVersion: 2, Handle: typed(handleShareAcknowledge)},
		{Key: kmsg.DescribeShareGroupOffsets.Int16(), MinVersion: 0, MaxVersion: 1, Handle: typed(handleDescribeShareGroupOffsets)},
		{Key: kmsg.AlterShareGroupOffsets.Int16(), MinVersion: 0, MaxVersion: 0, Handle: typed(handleAlterShareGroupOffsets)},
		{Key: kmsg.DeleteShareGroupOffsets.Int16(), MinVersion: 0, MaxVersion: 0, Handle: typed(handleDeleteShareGroupOffsets)},
	} {
		Register(a)
	}
}

// typed adapts a handler of one request type to a Handler: it is given the decoded request
// and the empty response of its kind (version already set), fills the response, and that
// response is the answer. It is for APIs that always answer and never fail the connection.
func typed[Req kmsg.Request, Resp kmsg.Response](h func(ctx context.Context, r *Request, req Req, resp Resp)) Handler {
	return func(ctx context.Context, r *Request) (kmsg.Response, error) {
		req := r.Body.(Req)
		resp := req.ResponseKind().(Resp)
		h(ctx, r, req, resp)
		return resp, nil
	}
}
