package gateway

// Committed offsets: OffsetCommit, OffsetFetch and OffsetDelete.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// handleOffsetCommit serves OffsetCommit (key 8), v0–9. v0 (ZooKeeper-era, no generation) is a
// generation-less "simple" commit. The per-partition retention (v2–4) and commit timestamp (v1)
// are ignored: committed offsets do not expire. The response is sent once the offsets are
// durable.
func handleOffsetCommit(ctx context.Context, r *Request, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse) {
	breq := &brokerop.OffsetCommitReq{Group: req.Group, MemberID: req.MemberID, InstanceID: strOrEmpty(req.InstanceID), Generation: req.Generation}
	if req.Version == 0 {
		breq.MemberID, breq.Generation = "", -1
	}
	// Authorization: READ on the group (else every partition is GROUP_AUTHORIZATION_FAILED)
	// and READ on each topic (else its partitions are TOPIC_AUTHORIZATION_FAILED, not sent).
	authorized := r.authorizedFn(ctx)
	groupOK := authorized(acl.GroupMember, req.Group)
	sentAt := make([]int, len(req.Topics)) // index in breq.Topics, -1 when not sent
	for i, t := range req.Topics {
		sentAt[i] = -1
		if !groupOK || !authorized(acl.CommitTopic, t.Topic) {
			continue
		}
		sentAt[i] = len(breq.Topics)
		bt := brokerop.OffsetCommitTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			epoch := p.LeaderEpoch
			if req.Version < 6 {
				epoch = -1
			}
			bt.Partitions = append(bt.Partitions, brokerop.OffsetCommitPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: epoch, Metadata: strOrEmpty(p.Metadata)})
		}
		breq.Topics = append(breq.Topics, bt)
	}
	var bresp *brokerop.OffsetCommitResp
	var code int16
	if len(breq.Topics) > 0 || len(req.Topics) == 0 {
		bresp, code = groupCall(ctx, r, GroupBackend.OffsetCommit, breq)
		if code == 0 && !sameShape(bresp, breq) {
			code = kafkawire.ErrUnknownServerError // a backend answer that does not match the request
		}
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case !groupOK:
				rp.ErrorCode = kerr.GroupAuthorizationFailed.Code
			case sentAt[i] < 0:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case code != 0:
				rp.ErrorCode = code
			default:
				rp.ErrorCode = bresp.Topics[sentAt[i]].Partitions[j].ErrorCode
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func sameShape(bresp *brokerop.OffsetCommitResp, req *brokerop.OffsetCommitReq) bool {
	if len(bresp.Topics) != len(req.Topics) {
		return false
	}
	for i := range req.Topics {
		if len(bresp.Topics[i].Partitions) != len(req.Topics[i].Partitions) {
			return false
		}
	}
	return true
}

// fetchGroupOffsets answers one group; topics nil means all.
func fetchGroupOffsets(ctx context.Context, r *Request, group string, topics []brokerop.OffsetFetchTopic, requireStable bool) (*brokerop.OffsetFetchResp, int16) {
	// Authorization: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED) and on each
	// topic: a topic asked by name without it answers TOPIC_AUTHORIZATION_FAILED; all
	// topics hides those without it.
	authorized := r.authorizedFn(ctx)
	var bresp *brokerop.OffsetFetchResp
	var code int16
	var denied []brokerop.OffsetFetchTopicResp
	if !authorized(acl.DescribeGroup, group) {
		code = kerr.GroupAuthorizationFailed.Code
	} else {
		sent := topics
		if topics != nil {
			sent = []brokerop.OffsetFetchTopic{}
			for _, t := range topics {
				if authorized(acl.DescribeTopic, t.Topic) {
					sent = append(sent, t)
					continue
				}
				bt := brokerop.OffsetFetchTopicResp{Topic: t.Topic}
				for _, p := range t.Partitions {
					bt.Partitions = append(bt.Partitions, brokerop.OffsetFetchPartitionResp{Partition: p, Offset: -1, LeaderEpoch: -1, ErrorCode: kerr.TopicAuthorizationFailed.Code})
				}
				denied = append(denied, bt)
			}
		}
		if topics == nil || len(sent) > 0 {
			breq := &brokerop.OffsetFetchReq{Group: group, Topics: sent, RequireStable: requireStable}
			bresp, code = groupCall(ctx, r, GroupBackend.OffsetFetch, breq)
			if code == 0 && bresp.ErrorCode != 0 {
				code = bresp.ErrorCode
			}
		} else {
			bresp = &brokerop.OffsetFetchResp{}
		}
		if code == 0 {
			kept := bresp.Topics[:0:0]
			for _, t := range bresp.Topics {
				if topics != nil || authorized(acl.DescribeTopic, t.Topic) {
					kept = append(kept, t)
				}
			}
			bresp.Topics = append(kept, denied...)
		}
	}
	if code == 0 && requireStable {
		code = markUnstable(ctx, r, group, bresp)
	}
	if code != 0 {
		// Answer each requested partition with the error (v0–1 have no group-level code).
		bresp = &brokerop.OffsetFetchResp{ErrorCode: code}
		for _, t := range topics {
			bt := brokerop.OffsetFetchTopicResp{Topic: t.Topic}
			for _, p := range t.Partitions {
				bt.Partitions = append(bt.Partitions, brokerop.OffsetFetchPartitionResp{Partition: p, Offset: -1, LeaderEpoch: -1, ErrorCode: code})
			}
			bresp.Topics = append(bresp.Topics, bt)
		}
	}
	return bresp, code
}

// markUnstable answers UNSTABLE_OFFSET_COMMIT (KIP-447) for the partitions of bresp that an
// ongoing or committing transaction holds pending offsets of (api_txn.go): a consumer that
// requires stable offsets waits until the transaction ends instead of reading the offsets
// from before it. A failed call answers the group NOT_COORDINATOR (retried); a backend
// without transactions has no pending offsets.
func markUnstable(ctx context.Context, r *Request, group string, bresp *brokerop.OffsetFetchResp) int16 {
	lresp, code := txnCall(ctx, r, ProducerIDBackend.ListTransactions, &brokerop.ListTransactionsReq{
		States: []string{"Ongoing", "PrepareCommit"}, MinDurationMs: -1, Group: group})
	switch {
	case code == kafkawire.ErrCoordinatorNotAvailable:
		return 0 // no transaction support
	case code != 0:
		return code
	}
	pending := map[brokerop.TxnPartition]bool{}
	for _, t := range lresp.Transactions {
		for _, p := range t.PendingOffsets {
			pending[p] = true
		}
	}
	for i := range bresp.Topics {
		t := &bresp.Topics[i]
		for j := range t.Partitions {
			if p := &t.Partitions[j]; pending[brokerop.TxnPartition{Topic: t.Topic, Partition: p.Partition}] && p.ErrorCode == 0 {
				p.ErrorCode = errUnstableOffsetCommit
			}
		}
	}
	return 0
}

// handleOffsetFetch serves OffsetFetch (key 9), v0–9. v0 is served like v1. Topics null (v2+)
// means every committed partition of the group. v8+ batch groups (one backend call per group).
// The member id and epoch of v9 belong to the KIP-848 consumer protocol and are ignored for
// classic groups, as Kafka does for a member epoch of -1, and not checked for consumer groups
// either (decision, see broker/group). A partition without a commit has
// offset -1.
func handleOffsetFetch(ctx context.Context, r *Request, req *kmsg.OffsetFetchRequest, resp *kmsg.OffsetFetchResponse) {
	if req.Version >= 8 {
		for _, g := range req.Groups {
			var topics []brokerop.OffsetFetchTopic
			if g.Topics != nil {
				topics = []brokerop.OffsetFetchTopic{}
				for _, t := range g.Topics {
					topics = append(topics, brokerop.OffsetFetchTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			bresp, code := fetchGroupOffsets(ctx, r, g.Group, topics, req.RequireStable)
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			for _, t := range bresp.Topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.ErrorCode
					md := p.Metadata
					rp.Metadata = &md
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return
	}
	var topics []brokerop.OffsetFetchTopic
	if req.Topics != nil || req.Version < 2 {
		topics = []brokerop.OffsetFetchTopic{}
		for _, t := range req.Topics {
			topics = append(topics, brokerop.OffsetFetchTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
	}
	bresp, code := fetchGroupOffsets(ctx, r, req.Group, topics, req.RequireStable)
	resp.ErrorCode = code
	for _, t := range bresp.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.ErrorCode
			md := p.Metadata
			rp.Metadata = &md
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

// handleOffsetDelete serves OffsetDelete (key 47), v0. Offsets of topics the group's consumers
// subscribe to are refused per partition with GROUP_SUBSCRIBED_TO_TOPIC.
func handleOffsetDelete(ctx context.Context, r *Request, req *kmsg.OffsetDeleteRequest, resp *kmsg.OffsetDeleteResponse) {
	// Authorization: DELETE on the group, READ on each topic (else its partitions are
	// TOPIC_AUTHORIZATION_FAILED and are not sent).
	authorized := r.authorizedFn(ctx)
	if !authorized(acl.DeleteGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return
	}
	breq := &brokerop.OffsetDeleteReq{Group: req.Group}
	var denied []kmsg.OffsetDeleteResponseTopic
	for _, t := range req.Topics {
		if !authorized(acl.CommitTopic, t.Topic) {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			denied = append(denied, rt)
			continue
		}
		bt := brokerop.OffsetDeleteTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			bt.Partitions = append(bt.Partitions, p.Partition)
		}
		breq.Topics = append(breq.Topics, bt)
	}
	bresp, code := groupCall(ctx, r, GroupBackend.OffsetDelete, breq)
	if code == 0 {
		code = bresp.ErrorCode
	}
	resp.ErrorCode = code
	if code != 0 {
		return
	}
	for _, t := range bresp.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, p.ErrorCode
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	resp.Topics = append(resp.Topics, denied...)
}
