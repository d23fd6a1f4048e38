package cluster

import (
	"context"
	"fmt"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Replica moves (AlterPartitionReassignments, ListPartitionReassignments, ElectLeaders) are
// controller ops: any broker takes them and forwards them to the quorum leader. Brokers
// without them (from before replica moves) make them brokerop.ErrUnsupported.

// AlterReassignments asks any broker (quorum mode).
func (c *Cluster) AlterReassignments(ctx context.Context, req *brokerop.AlterReassignmentsReq) (*brokerop.AlterReassignmentsResp, error) {
	return quorumOnly(ctlDo(ctx, c, true, req, (*Broker).AlterReassignments))
}

// ListReassignments asks any broker (quorum mode).
func (c *Cluster) ListReassignments(ctx context.Context, req *brokerop.ListReassignmentsReq) (*brokerop.ListReassignmentsResp, error) {
	return quorumOnly(ctlDo(ctx, c, true, req, (*Broker).ListReassignments))
}

// ElectLeaders asks any broker (quorum mode).
func (c *Cluster) ElectLeaders(ctx context.Context, req *brokerop.ElectLeadersReq) (*brokerop.ElectLeadersResp, error) {
	return quorumOnly(ctlDo(ctx, c, true, req, (*Broker).ElectLeaders))
}

// TransferPartitionLeader is broker-to-broker only (the quorum leader asks a partition's
// leader); a gateway never sends it.
func (c *Cluster) TransferPartitionLeader(context.Context, *brokerop.TransferPartitionLeaderReq) (*brokerop.TransferPartitionLeaderResp, error) {
	return nil, fmt.Errorf("%w: TransferPartitionLeader is between brokers", brokerop.ErrUnsupported)
}

// CompleteReassignment is broker-to-broker only (a partition's leader reports to the quorum).
func (c *Cluster) CompleteReassignment(context.Context, *brokerop.CompleteReassignmentReq) (*brokerop.CompleteReassignmentResp, error) {
	return nil, fmt.Errorf("%w: CompleteReassignment is between brokers", brokerop.ErrUnsupported)
}

func quorumOnly[T any](r T, err error) (T, error) {
	if err != nil && opUnknown(err) {
		var zero T
		return zero, fmt.Errorf("%w: the brokers cannot move replicas (%w)", brokerop.ErrUnsupported, err)
	}
	return r, err
}
