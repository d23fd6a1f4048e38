package gateway

import (
	"context"
	"errors"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// Backend is what the gateway needs from brokers: the broker Service, every op as one
// method (broker.Broker with a group.Coordinator in process, brokermesh.Cluster over the
// mesh). Implementations answer Kafka errors in the response structs' ErrorCode fields; a
// non-nil Go error means the op did not reach a broker or no answer came back, and an error
// wrapping brokerop.ErrUnsupported (brokerop.Unimplemented) that no broker has the feature:
// the gateway then answers as Kafka does without it (group APIs COORDINATOR_NOT_AVAILABLE,
// admin APIs INVALID_REQUEST, InitProducerID producer id -1). Implementations must not keep
// references to request slices after returning, and the gateway keeps none into responses
// after encoding them.
type Backend = brokerop.Service

// The parts of a Backend, by the APIs that use them.
type (
	// AdminBackend serves topic and cluster administration (api_admin.go).
	AdminBackend = brokerop.AdminService
	// GroupBackend serves the consumer-group APIs (group_*.go).
	GroupBackend = brokerop.GroupService
	// ProducerIDBackend serves InitProducerID (api_init_producer_id.go).
	ProducerIDBackend = brokerop.ProducerService
)

// unsupported reports whether err says no broker serves the op.
func unsupported(err error) bool { return errors.Is(err, brokerop.ErrUnsupported) }

// BackendErrorCode maps a Go error returned by a Backend call to the Kafka error code sent
// to the client: the code of an error that names one (KafkaErrorCode() int16: a broker that
// refused this gateway as untrusted answers CLUSTER_AUTHORIZATION_FAILED), REQUEST_TIMED_OUT
// for a deadline, otherwise NOT_LEADER_OR_FOLLOWER, which makes clients refresh metadata and
// retry.
func BackendErrorCode(err error) int16 {
	var coded interface{ KafkaErrorCode() int16 }
	if errors.As(err, &coded) {
		return coded.KafkaErrorCode() // e.g. a broker that does not trust this gateway: CLUSTER_AUTHORIZATION_FAILED
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return kafkawire.ErrRequestTimedOut
	}
	return kafkawire.ErrNotLeaderOrFollower
}

// backendCall makes one backend call about n items (none: no call, an empty answer) and
// reduces its failure to the code every item answers with (0: answer from resp): the
// backend's error (BackendErrorCode), or UNKNOWN_SERVER_ERROR when the answer does not hold
// one item per asked one (items counts them).
func backendCall[Resp any](n int, call func() (*Resp, error), items func(*Resp) int) (*Resp, int16) {
	if n == 0 {
		return new(Resp), 0
	}
	resp, err := call()
	if err != nil {
		return nil, BackendErrorCode(err)
	}
	return oneEach(n, items)(resp, 0)
}

// oneEach returns a check of a call's outcome (as groupCall and txnCall return it): a
// successful answer that does not hold one item per asked one (n; items counts them) is
// UNKNOWN_SERVER_ERROR.
func oneEach[Resp any](n int, items func(*Resp) int) func(*Resp, int16) (*Resp, int16) {
	return func(resp *Resp, code int16) (*Resp, int16) {
		if code == 0 && items(resp) != n {
			return nil, kafkawire.ErrUnknownServerError
		}
		return resp, code
	}
}
