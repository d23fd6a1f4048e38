package gateway

// KIP-848 consumer groups: ConsumerGroupHeartbeat (key 68) and ConsumerGroupDescribe (key
// 69), v0–1 each, as Kafka 4.0 serves them. The coordinator (broker/group) runs the
// server-side assignors and the reconciliation; the gateway translates the wire form and, on
// every heartbeat, hands the coordinator the cluster's topics (names, ids, partition counts:
// one Metadata call to the backend for all topics) so it can resolve subscribed names and
// regular expressions. If that call fails the heartbeat goes without them and the
// coordinator keeps the topics it last saw.
//
// Authorization: READ on the group for a heartbeat, DESCRIBE for a describe (else
// GROUP_AUTHORIZATION_FAILED), as Kafka. Topics matched by a regex are not filtered by the
// member's DESCRIBE permission on them (Kafka 4.0 filters them; not implemented).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

func handleConsumerGroupHeartbeat(ctx context.Context, r *Request, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) {
	if !r.Authorized(ctx, acl.GroupMember, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return
	}
	breq := &brokerop.ConsumerGroupHeartbeatReq{
		Group:              req.Group,
		MemberID:           req.MemberID,
		MemberEpoch:        req.MemberEpoch,
		InstanceID:         strOrEmpty(req.InstanceID),
		RackID:             strOrEmpty(req.RackID),
		RebalanceTimeoutMs: req.RebalanceTimeoutMillis,
		ServerAssignor:     strOrEmpty(req.ServerAssignor),
		ClientID:           r.Header.ClientID,
		ClientHost:         "/" + r.host(),
	}
	if req.SubscribedTopicNames != nil {
		breq.HasSubscribedTopicNames, breq.SubscribedTopicNames = true, req.SubscribedTopicNames
	}
	if req.Version >= 1 && req.SubscribedTopicRegex != nil {
		breq.HasSubscribedTopicRegex, breq.SubscribedTopicRegex = true, *req.SubscribedTopicRegex
	}
	if req.Topics != nil {
		breq.HasOwned, breq.Owned = true, []brokerop.ConsumerGroupTopicPartitions{}
		for _, t := range req.Topics {
			breq.Owned = append(breq.Owned, brokerop.ConsumerGroupTopicPartitions{TopicID: t.TopicID, Partitions: t.Partitions})
		}
	}
	if md, err := r.Server.Backend().Metadata(ctx, &brokerop.MetadataReq{}); err == nil {
		breq.HasTopics, breq.Topics = true, []brokerop.ConsumerGroupTopic{}
		for _, t := range md.Topics {
			if t.ErrorCode == 0 && !t.Internal {
				breq.Topics = append(breq.Topics, brokerop.ConsumerGroupTopic{Name: t.Name, TopicID: t.TopicID, Partitions: int32(len(t.Partitions))})
			}
		}
	}
	bresp, code := groupCall(ctx, r, GroupBackend.ConsumerGroupHeartbeat, breq)
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	resp.ErrorCode = bresp.ErrorCode
	resp.ErrorMessage = nilIfEmpty(bresp.ErrorMessage)
	resp.MemberID = nilIfEmpty(bresp.MemberID)
	resp.MemberEpoch = bresp.MemberEpoch
	resp.HeartbeatIntervalMillis = bresp.HeartbeatIntervalMs
	if bresp.ErrorCode == 0 && bresp.HasAssignment {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		for _, t := range bresp.Assignment {
			tp := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			tp.TopicID, tp.Partitions = t.TopicID, t.Partitions
			a.Topics = append(a.Topics, tp)
		}
		resp.Assignment = &a
	}
}

func handleConsumerGroupDescribe(ctx context.Context, r *Request, req *kmsg.ConsumerGroupDescribeRequest, resp *kmsg.ConsumerGroupDescribeResponse) {
	breq := &brokerop.ConsumerGroupDescribeReq{}
	sentAt, bresp, code := perGroupCall(ctx, r, acl.DescribeGroup, req.Groups, breq, &breq.Groups, GroupBackend.ConsumerGroupDescribe,
		func(b *brokerop.ConsumerGroupDescribeResp) int { return len(b.Groups) })
	for i, name := range req.Groups {
		rg := kmsg.NewConsumerGroupDescribeResponseGroup()
		rg.Group = name
		rg.AuthorizedOperations = -2147483648 // not requested
		switch {
		case sentAt[i] < 0:
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case code != 0:
			rg.ErrorCode = code
		default:
			g := bresp.Groups[sentAt[i]]
			rg.ErrorCode, rg.ErrorMessage = g.ErrorCode, nilIfEmpty(g.ErrorMessage)
			rg.State, rg.Epoch, rg.AssignmentEpoch, rg.AssignorName = g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName
			if req.IncludeAuthorizedOperations {
				rg.AuthorizedOperations = r.authorizedOps(ctx, acl.ResourceGroup, name)
			}
			for _, m := range g.Members {
				rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.RackID, rm.MemberEpoch = m.MemberID, nilIfEmpty(m.InstanceID), nilIfEmpty(m.RackID), m.MemberEpoch
				rm.ClientID, rm.ClientHost = m.ClientID, m.ClientHost
				rm.SubscribedTopics = m.SubscribedTopicNames
				if rm.SubscribedTopics == nil {
					rm.SubscribedTopics = []string{}
				}
				rm.SubscribedTopicRegex = nilIfEmpty(m.SubscribedTopicRegex)
				rm.Assignment = describedAssignment(m.Assignment)
				rm.TargetAssignment = describedAssignment(m.TargetAssignment)
				rm.MemberType = 1 // consumer protocol (v1)
				rg.Members = append(rg.Members, rm)
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
}

func describedAssignment(a []brokerop.ConsumerGroupTopicPartitions) kmsg.Assignment {
	out := kmsg.NewAssignment()
	for _, t := range a {
		tp := kmsg.NewAssignmentTopicPartition()
		tp.TopicID, tp.Topic, tp.Partitions = t.TopicID, t.Topic, t.Partitions
		out.TopicPartitions = append(out.TopicPartitions, tp)
	}
	return out
}
