package main

import (
	"context"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Replica moves need a metadata quorum: the embedded broker does not serve them (the
// gateway answers as Kafka does when no broker has the feature).

func (backend) AlterReassignments(ctx context.Context, req *brokerop.AlterReassignmentsReq) (*brokerop.AlterReassignmentsResp, error) {
	return noQuorum.AlterReassignments(ctx, req)
}

func (backend) ListReassignments(ctx context.Context, req *brokerop.ListReassignmentsReq) (*brokerop.ListReassignmentsResp, error) {
	return noQuorum.ListReassignments(ctx, req)
}

func (backend) ElectLeaders(ctx context.Context, req *brokerop.ElectLeadersReq) (*brokerop.ElectLeadersResp, error) {
	return noQuorum.ElectLeaders(ctx, req)
}

func (backend) TransferPartitionLeader(ctx context.Context, req *brokerop.TransferPartitionLeaderReq) (*brokerop.TransferPartitionLeaderResp, error) {
	return noQuorum.TransferPartitionLeader(ctx, req)
}

func (backend) CompleteReassignment(ctx context.Context, req *brokerop.CompleteReassignmentReq) (*brokerop.CompleteReassignmentResp, error) {
	return noQuorum.CompleteReassignment(ctx, req)
}
