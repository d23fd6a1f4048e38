package gateway

import (
	"context"
	"errors"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// Backend is what the gateway needs from brokers. Implementations answer Kafka errors in
// the response structs' ErrorCode fields; a non-nil Go error means the op did not reach a
// broker or no answer came back. Implementations must not keep references to request
// slices after returning, and the gateway keeps none into responses after encoding them.
type Backend interface {
	Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error)
	Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error)
	ListOffsets(ctx context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error)
	Metadata(ctx context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error)
	CreateTopics(ctx context.Context, req *brokerop.CreateTopicsReq) (*brokerop.CreateTopicsResp, error)
	DeleteTopics(ctx context.Context, req *brokerop.DeleteTopicsReq) (*brokerop.DeleteTopicsResp, error)
}

// BackendErrorCode maps a Go error returned by a Backend call to the Kafka error code sent
// to the client: REQUEST_TIMED_OUT for a deadline, otherwise NOT_LEADER_OR_FOLLOWER, which
// makes clients refresh metadata and retry.
func BackendErrorCode(err error) int16 {
	if errors.Is(err, context.DeadlineExceeded) {
		return kafkawire.ErrRequestTimedOut
	}
	return kafkawire.ErrNotLeaderOrFollower
}
