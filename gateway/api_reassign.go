package gateway

// Replica moves of replicated partitions (issue #16 item 3), served by the metadata quorum's
// controller (brokerop AlterReassignments, ListReassignments, ElectLeaders; package
// broker/controller carries them out):
//
//   - AlterPartitionReassignments (key 45), v0–1: per partition the target replicas (Kafka
//     broker ids, preferred leader first) or null to cancel. The answer comes once the
//     reassignment is recorded; the partition's raft leader then adds the new replicas as
//     learners, promotes them once caught up and removes the others (handing its
//     leadership over first if it goes), while clients keep producing and consuming. Codes:
//     UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (empty list, unknown or
//     repeated broker, single-owner partition), INVALID_REPLICATION_FACTOR (a target of
//     another length: the replication factor does not change, whatever
//     AllowReplicationFactorChange says), NO_REASSIGNMENT_IN_PROGRESS (cancel with none).
//     ALTER on the cluster is required (CLUSTER_AUTHORIZATION_FAILED at the top level).
//   - ListPartitionReassignments (key 46), v0: the reassignments in progress (all with null
//     topics), each with its whole replica set (target first), adding and removing replicas.
//     DESCRIBE on the cluster is required.
//   - ElectLeaders (key 43), v0–2: PREFERRED (v0 always) moves leadership to the first
//     replica (ELECTION_NOT_NEEDED when it leads, PREFERRED_LEADER_NOT_AVAILABLE when it is
//     not live and in sync); UNCLEAN is never needed: raft elects only replicas holding every
//     committed record, so a partition with a leader answers ELECTION_NOT_NEEDED and one
//     without ELIGIBLE_LEADERS_NOT_AVAILABLE. With null topics every partition is elected and
//     only those an election was tried for are listed, as Kafka does. ALTER on the cluster is
//     required.
//
// A backend without a metadata quorum (one embedded broker) answers UNSUPPORTED_VERSION; a
// backend failure answers NOT_CONTROLLER (retriable) or REQUEST_TIMED_OUT.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// controllerErrorCode maps a Backend error of a controller op to Kafka's code.
// clusterRefused answers (through fail) a request whose principal may not have need on the
// cluster, and reports whether it did.
func clusterRefused(ctx context.Context, r *Request, need acl.Need, fail func(code int16, msg string)) bool {
	if r.authorizedCluster(ctx, need) {
		return false
	}
	fail(kerr.ClusterAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Message)
	return true
}

// backendFailed answers (through fail) a backend call's error, or the top-level error code
// its answer carries (top is called only without an error), and reports whether it did.
func backendFailed(err error, top func() (int16, string), fail func(code int16, msg string)) bool {
	if err != nil {
		fail(controllerErrorCode(err), err.Error())
		return true
	}
	if code, msg := top(); code != 0 {
		fail(code, msg)
		return true
	}
	return false
}

func controllerErrorCode(err error) int16 {
	switch {
	case unsupported(err):
		return kerr.UnsupportedVersion.Code
	}
	if c := BackendErrorCode(err); c != kerr.NotLeaderForPartition.Code {
		return c
	}
	return kerr.NotController.Code
}

func handleAlterPartitionReassignments(ctx context.Context, r *Request, req *kmsg.AlterPartitionAssignmentsRequest, resp *kmsg.AlterPartitionAssignmentsResponse) {
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	fail := func(code int16, msg string) {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
	}
	if clusterRefused(ctx, r, acl.AlterCluster, fail) {
		return
	}
	breq := &brokerop.AlterReassignmentsReq{}
	for _, t := range req.Topics {
		bt := brokerop.ReassignTopic{Name: t.Topic}
		for _, p := range t.Partitions {
			bt.Partitions = append(bt.Partitions, brokerop.ReassignPartition{Partition: p.Partition, Cancel: p.Replicas == nil, Replicas: p.Replicas})
		}
		breq.Topics = append(breq.Topics, bt)
	}
	bresp, err := r.Server.Backend().AlterReassignments(ctx, breq)
	if backendFailed(err, func() (int16, string) { return bresp.ErrorCode, bresp.ErrorMessage }, fail) {
		return
	}
	for _, t := range bresp.Topics {
		rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		rt.Topic = t.Name
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, p.ErrorCode
			if p.ErrorCode != 0 {
				rp.ErrorMessage = kmsg.StringPtr(p.ErrorMessage)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func handleListPartitionReassignments(ctx context.Context, r *Request, req *kmsg.ListPartitionReassignmentsRequest, resp *kmsg.ListPartitionReassignmentsResponse) {
	fail := func(code int16, msg string) {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
	}
	if clusterRefused(ctx, r, acl.DescribeCluster, fail) {
		return
	}
	breq := &brokerop.ListReassignmentsReq{All: req.Topics == nil}
	for _, t := range req.Topics {
		breq.Topics = append(breq.Topics, brokerop.ListReassignTopic{Name: t.Topic, Partitions: t.Partitions})
	}
	bresp, err := r.Server.Backend().ListReassignments(ctx, breq)
	if backendFailed(err, func() (int16, string) { return bresp.ErrorCode, bresp.ErrorMessage }, fail) {
		return
	}
	for _, t := range bresp.Topics {
		rt := kmsg.NewListPartitionReassignmentsResponseTopic()
		rt.Topic = t.Name
		for _, p := range t.Partitions {
			rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			rp.Partition, rp.Replicas, rp.AddingReplicas, rp.RemovingReplicas = p.Partition, nonNil(p.Replicas), nonNil(p.Adding), nonNil(p.Removing)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func handleElectLeaders(ctx context.Context, r *Request, req *kmsg.ElectLeadersRequest, resp *kmsg.ElectLeadersResponse) {
	// Every requested partition gets the same code (Kafka answers per partition; v1+ also at
	// the top level).
	failAll := func(code int16, msg string) {
		if resp.Version >= 1 {
			resp.ErrorCode = code
		}
		for _, t := range req.Topics {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewElectLeadersResponseTopicPartition()
				rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, code, kmsg.StringPtr(msg)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	if clusterRefused(ctx, r, acl.AlterCluster, failAll) {
		return
	}
	breq := &brokerop.ElectLeadersReq{All: req.Topics == nil}
	if req.Version >= 1 {
		breq.ElectionType = req.ElectionType
	}
	for _, t := range req.Topics {
		breq.Topics = append(breq.Topics, brokerop.ListReassignTopic{Name: t.Topic, Partitions: t.Partitions})
	}
	bresp, err := r.Server.Backend().ElectLeaders(ctx, breq)
	if backendFailed(err, func() (int16, string) { return bresp.ErrorCode, bresp.ErrorMessage }, failAll) {
		return
	}
	for _, t := range bresp.Topics {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = t.Name
		for _, p := range t.Partitions {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, p.ErrorCode
			if p.ErrorCode != 0 {
				rp.ErrorMessage = kmsg.StringPtr(p.ErrorMessage)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}
