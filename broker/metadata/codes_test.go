package metadata_test

import (
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The Code constants are Kafka's codes: the controller hands them to clients as they are.
func TestCodesAreKafkas(t *testing.T) {
	for _, c := range []struct {
		got  int16
		want *kerr.Error
	}{
		{metadata.CodeUnknownServerError, kerr.UnknownServerError},
		{metadata.CodeUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
		{metadata.CodeBrokerNotAvailable, kerr.BrokerNotAvailable},
		{metadata.CodeInvalidTopicException, kerr.InvalidTopicException},
		{metadata.CodeInvalidGroupID, kerr.InvalidGroupID},
		{metadata.CodeTopicAlreadyExists, kerr.TopicAlreadyExists},
		{metadata.CodeInvalidPartitions, kerr.InvalidPartitions},
		{metadata.CodeInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
		{metadata.CodeInvalidRequest, kerr.InvalidRequest},
		{metadata.CodeGroupIDNotFound, kerr.GroupIDNotFound},
		{metadata.CodeFencedLeaderEpoch, kerr.FencedLeaderEpoch},
		{metadata.CodeInconsistentClusterID, kerr.InconsistentClusterID},
		{metadata.CodeInvalidReplicationFactor, kerr.InvalidReplicationFactor},
		{metadata.CodeNoReassignmentInProgress, kerr.NoReassignmentInProgress},
	} {
		if c.got != c.want.Code {
			t.Errorf("%s: have %d, Kafka's is %d", c.want.Message, c.got, c.want.Code)
		}
	}
	if metadata.CodeNone != 0 {
		t.Error("CodeNone is not 0")
	}
}
