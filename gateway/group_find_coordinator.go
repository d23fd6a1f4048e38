package gateway

// FindCoordinator (key 10), v0–6. Answered here, with no backend call: the gateway is the
// coordinator of every group (it hands group ops to its backend). Key type 0 (group) gets the
// advertised host/port and node id, and so does 1 (transaction) when the backend serves
// transactions (api_txn.go); other types are INVALID_REQUEST. Without group (transaction)
// support in the backend, that key type gets COORDINATOR_NOT_AVAILABLE.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func handleFindCoordinator(ctx context.Context, r *Request, req *kmsg.FindCoordinatorRequest, resp *kmsg.FindCoordinatorResponse) {
	host, port := r.Advertised()
	be := r.Server.Backend()
	groups := req.CoordinatorType == 0 && r.Server.groups.has(func() error {
		_, err := be.DescribeGroups(ctx, &brokerop.DescribeGroupsReq{})
		return err
	})
	txns := req.CoordinatorType == 1 && r.Server.txns.has(func() error {
		_, err := be.DescribeTransactions(ctx, &brokerop.DescribeTransactionsReq{})
		return err
	})
	answer := func(key string) kmsg.FindCoordinatorResponseCoordinator {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		switch {
		case req.CoordinatorType == 0 && !r.Authorized(ctx, acl.DescribeGroup, key):
			c.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case req.CoordinatorType == 1 && !r.Authorized(ctx, acl.DescribeTxnID, key):
			c.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case groups || txns: // each is false for the other key type
			c.NodeID, c.Host, c.Port = r.Server.NodeID(), host, port
			return c
		case req.CoordinatorType == 0:
			c.ErrorCode = kafkawire.ErrCoordinatorNotAvailable
			c.ErrorMessage = nilIfEmpty("this gateway's backend has no group coordinator")
		case req.CoordinatorType == 1:
			c.ErrorCode = kafkawire.ErrCoordinatorNotAvailable
			c.ErrorMessage = nilIfEmpty("this gateway's backend has no transaction coordinator")
		default:
			c.ErrorCode = kafkawire.ErrInvalidRequest
			c.ErrorMessage = nilIfEmpty("unsupported coordinator type")
		}
		c.NodeID, c.Port = -1, -1
		return c
	}
	if req.Version >= 4 {
		for _, k := range req.CoordinatorKeys {
			resp.Coordinators = append(resp.Coordinators, answer(k))
		}
		return
	}
	c := answer(req.CoordinatorKey)
	resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
}
