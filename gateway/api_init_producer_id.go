package gateway

// InitProducerID (key 22), v0–5 (v4+ flexible): producer ids for idempotent producers.
//
//   - A null transactional id is handed to the backend's InitProducerID (the broker's durable
//     counter; over the mesh, the controller's). The producer id/epoch the request may carry
//     (v3+, an epoch bump after a sequence error, KIP-360) is passed on; as in Kafka's
//     non-transactional case the answer is a fresh producer id at epoch 0.
//   - A transactional id goes to the backend's transaction coordinator (InitTxnProducerID,
//     api_txn.go) with transaction.timeout.ms and, v3+, the producer id/epoch the client
//     holds (KIP-360/588: a new InitProducerID for the id fences the old epoch). With
//     authorization on it needs WRITE on the transactional id (else
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED, and no backend call). A backend
//     without transactions answers TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which is fatal in
//     kgo, librdkafka and the Java client, so a transactional producer fails at once with a
//     clear error instead of retrying a "coordinator not available" forever.
//   - A backend that does not serve InitProducerID (brokerop.ErrUnsupported) answers success with producer id -1, epoch -1: clients
//     then produce without idempotence, as against a broker too old for it.
//   - A backend failure is COORDINATOR_NOT_AVAILABLE, which clients retry.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleInitProducerID(ctx context.Context, r *Request, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		initTxnProducerID(ctx, r, req, resp)
		return
	}
	// An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic
	// (Kafka 3's rule).
	if !r.authorizedCluster(ctx, acl.IdempotentWrite) && !r.authorizedAny(ctx, acl.ProduceTopic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return
	}
	breq := &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1}
	if req.Version >= 3 {
		breq.ProducerID, breq.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	}
	bresp, err := r.Server.Backend().InitProducerID(ctx, breq)
	if unsupported(err) {
		return // no broker allocates ids: the client produces without idempotence
	}
	if err != nil {
		r.Server.Logger().Warn("gateway: InitProducerID", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return
	}
	resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = bresp.ErrorCode, bresp.ProducerID, bresp.ProducerEpoch
}

func initTxnProducerID(ctx context.Context, r *Request, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	if !r.Authorized(ctx, acl.TxnWrite, *req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return
	}
	breq := &brokerop.InitTxnProducerIDReq{TransactionalID: *req.TransactionalID, TimeoutMs: req.TransactionTimeoutMillis, ProducerID: -1, ProducerEpoch: -1}
	if req.Version >= 3 {
		breq.ProducerID, breq.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	}
	bresp, err := r.Server.Backend().InitTxnProducerID(ctx, breq)
	switch {
	case unsupported(err):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
	case err != nil:
		r.Server.Logger().Warn("gateway: InitProducerID (transactional)", "err", err)
		resp.ErrorCode = kerr.NotCoordinator.Code
	default:
		resp.ErrorCode, resp.ProducerID, resp.ProducerEpoch = bresp.ErrorCode, bresp.ProducerID, bresp.ProducerEpoch
		if resp.ErrorCode == kerr.ProducerFenced.Code && req.Version < 4 {
			resp.ErrorCode = kerr.InvalidProducerEpoch.Code // PRODUCER_FENCED is v4+ (KIP-588)
		}
	}
}
