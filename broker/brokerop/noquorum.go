package brokerop

import "context"

// NoQuorum answers the metadata-quorum ops (the 0x60 range: ClusterBrokers, Placement,
// QuorumJoin, QuorumAdmin, UpdatePartition, DescribeQuorum and the replica-move ops) as
// Unimplemented does, with an
// error wrapping ErrUnsupported. Embed it in a Service built of a single broker and its group
// coordinator (each embedding Unimplemented, so the quorum ops would otherwise be ambiguous):
// such a broker is a cluster of one with no metadata quorum.
type NoQuorum struct{}

// ClusterBrokers is not served.
func (NoQuorum) ClusterBrokers(ctx context.Context, req *ClusterBrokersReq) (*ClusterBrokersResp, error) {
	return Unimplemented{}.ClusterBrokers(ctx, req)
}

// Placement is not served.
func (NoQuorum) Placement(ctx context.Context, req *PlacementReq) (*PlacementResp, error) {
	return Unimplemented{}.Placement(ctx, req)
}

// QuorumJoin is not served.
func (NoQuorum) QuorumJoin(ctx context.Context, req *QuorumJoinReq) (*QuorumJoinResp, error) {
	return Unimplemented{}.QuorumJoin(ctx, req)
}

// QuorumAdmin is not served.
func (NoQuorum) QuorumAdmin(ctx context.Context, req *QuorumAdminReq) (*QuorumAdminResp, error) {
	return Unimplemented{}.QuorumAdmin(ctx, req)
}

// UpdatePartition is not served.
func (NoQuorum) UpdatePartition(ctx context.Context, req *UpdatePartitionReq) (*UpdatePartitionResp, error) {
	return Unimplemented{}.UpdatePartition(ctx, req)
}

// DescribeQuorum is not served.
func (NoQuorum) DescribeQuorum(ctx context.Context, req *DescribeQuorumReq) (*DescribeQuorumResp, error) {
	return Unimplemented{}.DescribeQuorum(ctx, req)
}

// AlterReassignments is not served (replica moves need the quorum).
func (NoQuorum) AlterReassignments(ctx context.Context, req *AlterReassignmentsReq) (*AlterReassignmentsResp, error) {
	return Unimplemented{}.AlterReassignments(ctx, req)
}

// ListReassignments is not served.
func (NoQuorum) ListReassignments(ctx context.Context, req *ListReassignmentsReq) (*ListReassignmentsResp, error) {
	return Unimplemented{}.ListReassignments(ctx, req)
}

// ElectLeaders is not served.
func (NoQuorum) ElectLeaders(ctx context.Context, req *ElectLeadersReq) (*ElectLeadersResp, error) {
	return Unimplemented{}.ElectLeaders(ctx, req)
}

// TransferPartitionLeader is not served.
func (NoQuorum) TransferPartitionLeader(ctx context.Context, req *TransferPartitionLeaderReq) (*TransferPartitionLeaderResp, error) {
	return Unimplemented{}.TransferPartitionLeader(ctx, req)
}

// CompleteReassignment is not served.
func (NoQuorum) CompleteReassignment(ctx context.Context, req *CompleteReassignmentReq) (*CompleteReassignmentResp, error) {
	return Unimplemented{}.CompleteReassignment(ctx, req)
}
