package gateway

// Share groups (KIP-932, "queues for Kafka"): ShareGroupHeartbeat (key 76) v1,
// ShareGroupDescribe (77) v1, ShareFetch (78) v1–2, ShareAcknowledge (79) v1–2,
// DescribeShareGroupOffsets (90) v0–1, AlterShareGroupOffsets (91) v0 and
// DeleteShareGroupOffsets (92) v0. v0 of the first four was Kafka 4.0's early access and is
// not served (Kafka 4.1 removed it too). Each is handed to the backend's share coordinator
// (brokerop.ShareService, package broker/share); FindCoordinator for the group answers the
// gateway itself, as for consumer groups. A backend without share groups (its ops answer
// brokerop.ErrUnsupported) makes them COORDINATOR_NOT_AVAILABLE, a failed call
// NOT_COORDINATOR.
//
// Topics are addressed by id in ShareFetch, ShareAcknowledge and the heartbeat's
// assignment: ids are resolved through the gateway's topic-id cache (refreshed once on a
// miss); an unknown id is UNKNOWN_TOPIC_ID for its partitions, which never reach the
// backend.
//
// Authorization (authz.go), as Kafka's KafkaApis asks for it:
//
//   - ShareGroupHeartbeat: READ on the group (GROUP_AUTHORIZATION_FAILED), DESCRIBE on every
//     subscribed topic (TOPIC_AUTHORIZATION_FAILED).
//   - ShareGroupDescribe: DESCRIBE on each group (its entry GROUP_AUTHORIZATION_FAILED).
//   - ShareFetch, ShareAcknowledge: READ on the group (top-level GROUP_AUTHORIZATION_FAILED),
//     READ on each topic (its partitions TOPIC_AUTHORIZATION_FAILED, not sent on).
//   - DescribeShareGroupOffsets: DESCRIBE on the group, DESCRIBE on each topic.
//   - AlterShareGroupOffsets: READ on the group, READ on each topic.
//   - DeleteShareGroupOffsets: DELETE on the group, READ on each topic.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// shareCall runs one share-coordinator call and reduces "no share groups" and call failures
// to the Kafka error code to answer with (0 when resp is valid).
func shareCall[Req, Resp any](ctx context.Context, r *Request, op func(brokerop.ShareService, context.Context, *Req) (*Resp, error), req *Req) (*Resp, int16) {
	return coordinatorCall(r, "share", func() (*Resp, error) { return op(r.Server.Backend(), ctx, req) })
}

// topicIDs resolves names to ids, refreshing the cache once when any is unknown (zero id
// for a topic that stays unknown).
func (c *topicIDCache) ids(ctx context.Context, names []string) [][16]byte {
	look := func() ([][16]byte, bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		out, all := make([][16]byte, len(names)), true
		for i, n := range names {
			id, ok := c.byName[n]
			out[i], all = id, all && ok
		}
		return out, all
	}
	out, all := look()
	if all {
		return out
	}
	if resp, err := c.backend.Metadata(ctx, &brokerop.MetadataReq{}); err == nil {
		c.observe(resp)
	}
	out, _ = look()
	return out
}

// shareAssignment groups an assignment by topic, with the topics' ids.
func shareAssignment(ctx context.Context, r *Request, tps []brokerop.ShareTP) ([]string, [][16]byte, [][]int32) {
	var names []string
	var parts [][]int32
	for _, tp := range tps {
		if len(names) == 0 || names[len(names)-1] != tp.Topic {
			names, parts = append(names, tp.Topic), append(parts, nil)
		}
		parts[len(parts)-1] = append(parts[len(parts)-1], tp.Partition)
	}
	return names, r.Server.topics.ids(ctx, names), parts
}

func handleShareGroupHeartbeat(ctx context.Context, r *Request, req *kmsg.ShareGroupHeartbeatRequest, resp *kmsg.ShareGroupHeartbeatResponse) {
	if !r.Authorized(ctx, acl.GroupMember, req.GroupID) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return
	}
	if denied := topicsDenied(ctx, r, acl.DescribeTopic, len(req.SubscribedTopicNames), func(i int) string { return req.SubscribedTopicNames[i] }); anyTrue(denied) {
		resp.ErrorCode = kerr.TopicAuthorizationFailed.Code
		return
	}
	breq := &brokerop.ShareGroupHeartbeatReq{Group: req.GroupID, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch, Rack: req.RackID,
		HasTopics: req.SubscribedTopicNames != nil, Topics: req.SubscribedTopicNames, ClientID: r.Header.ClientID, ClientHost: r.host()}
	bresp, code := shareCall(ctx, r, brokerop.ShareService.ShareGroupHeartbeat, breq)
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	resp.ErrorCode, resp.ErrorMessage = bresp.ErrorCode, nilIfEmpty(bresp.ErrorMessage)
	resp.MemberID, resp.MemberEpoch, resp.HeartbeatIntervalMillis = kmsg.StringPtr(bresp.MemberID), bresp.MemberEpoch, bresp.HeartbeatIntervalMs
	if bresp.HasAssignment && bresp.ErrorCode == 0 {
		a := kmsg.NewShareGroupHeartbeatResponseAssignment()
		names, ids, parts := shareAssignment(ctx, r, bresp.Assignment)
		for i := range names {
			if ids[i] == ([16]byte{}) {
				continue // deleted meanwhile
			}
			tp := kmsg.NewShareGroupHeartbeatResponseAssignmentTopicPartition()
			tp.TopicID, tp.Partitions = ids[i], parts[i]
			a.TopicPartitions = append(a.TopicPartitions, tp)
		}
		resp.Assignment = &a
	}
}

func anyTrue(bs []bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}

func handleShareGroupDescribe(ctx context.Context, r *Request, req *kmsg.ShareGroupDescribeRequest, resp *kmsg.ShareGroupDescribeResponse) {
	breq := &brokerop.ShareGroupDescribeReq{}
	allowed := make([]bool, len(req.GroupIDs))
	for i, g := range req.GroupIDs {
		if allowed[i] = r.Authorized(ctx, acl.DescribeGroup, g); allowed[i] {
			breq.Groups = append(breq.Groups, g)
		}
	}
	var bresp *brokerop.ShareGroupDescribeResp
	code := int16(0)
	if len(breq.Groups) > 0 {
		bresp, code = shareCall(ctx, r, brokerop.ShareService.ShareGroupDescribe, breq)
	}
	k := 0
	for i, g := range req.GroupIDs {
		rg := kmsg.NewShareGroupDescribeResponseGroup()
		rg.GroupID = g
		switch {
		case !allowed[i]:
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
		case code != 0:
			rg.ErrorCode = code
		case k < len(bresp.Groups):
			d := bresp.Groups[k]
			k++
			rg.ErrorCode, rg.GroupState, rg.GroupEpoch, rg.AssignmentEpoch, rg.Assignor = d.ErrorCode, d.State, d.Epoch, d.AssignmentEpoch, "simple"
			for _, m := range d.Members {
				rm := kmsg.NewShareGroupDescribeResponseGroupMember()
				rm.MemberID, rm.RackID, rm.MemberEpoch, rm.ClientID, rm.ClientHost, rm.SubscribedTopicNames = m.MemberID, nilIfEmpty(m.Rack), m.Epoch, m.ClientID, m.ClientHost, m.Topics
				names, ids, parts := shareAssignment(ctx, r, m.Assigned)
				for j := range names {
					tp := kmsg.NewShareGroupDescribeResponseGroupMemberAssignmentTopicPartition()
					tp.Topic, tp.TopicID, tp.Partitions = names[j], ids[j], parts[j]
					rm.Assignment.TopicPartitions = append(rm.Assignment.TopicPartitions, tp)
				}
				rg.Members = append(rg.Members, rm)
			}
			if req.IncludeAuthorizedOperations {
				rg.AuthorizedOperations = r.authorizedOps(ctx, acl.ResourceGroup, g)
			}
		default:
			rg.ErrorCode = kafkawire.ErrNotCoordinator
		}
		resp.Groups = append(resp.Groups, rg)
	}
}

// sharePart is one partition of a ShareFetch or ShareAcknowledge as the gateway resolved it.
type sharePart struct {
	id    [16]byte
	topic string
	part  int32
	code  int16 // answered by the gateway (unknown id, refused topic); not sent on
}

// resolveShareParts resolves ids and checks READ on each topic.
func resolveShareParts(ctx context.Context, r *Request, ids [][16]byte, parts [][]int32) [][]sharePart {
	names := r.Server.topics.names(ctx, ids)
	authorized := r.authorizedFn(ctx)
	out := make([][]sharePart, len(ids))
	for i, id := range ids {
		code := int16(0)
		switch {
		case names[i] == "":
			code = kafkawire.ErrUnknownTopicID
		case !authorized(acl.FetchTopic, names[i]):
			code = kerr.TopicAuthorizationFailed.Code
		}
		for _, p := range parts[i] {
			out[i] = append(out[i], sharePart{id: id, topic: names[i], part: p, code: code})
		}
	}
	return out
}

// resolveShareTopics resolves the partitions of a ShareFetch's topics (or a ShareAcknowledge's,
// through ackTopicsAsFetch): resolveShareParts, indexed like the request.
func resolveShareTopics(ctx context.Context, r *Request, topics []kmsg.ShareFetchRequestTopic) [][]sharePart {
	ids, parts := make([][16]byte, len(topics)), make([][]int32, len(topics))
	for i, t := range topics {
		ids[i] = t.TopicID
		for _, p := range t.Partitions {
			parts[i] = append(parts[i], p.Partition)
		}
	}
	return resolveShareParts(ctx, r, ids, parts)
}

// ackTopicsAsFetch is a ShareAcknowledge's topics in ShareFetch's types (which only add
// PartitionMaxBytes, left zero), so that both requests are resolved and read by one code.
func ackTopicsAsFetch(topics []kmsg.ShareAcknowledgeRequestTopic) []kmsg.ShareFetchRequestTopic {
	out := make([]kmsg.ShareFetchRequestTopic, len(topics))
	for i, t := range topics {
		out[i].TopicID = t.TopicID
		for _, p := range t.Partitions {
			fp := kmsg.NewShareFetchRequestTopicPartition()
			fp.Partition = p.Partition
			for _, a := range p.AcknowledgementBatches {
				fp.AcknowledgementBatches = append(fp.AcknowledgementBatches, kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch(a))
			}
			out[i].Partitions = append(out[i].Partitions, fp)
		}
	}
	return out
}

// shareAcks is a partition's acknowledgement batches as the backend takes them.
func shareAcks(batches []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch) []brokerop.ShareAckBatch {
	var out []brokerop.ShareAckBatch
	for _, a := range batches {
		out = append(out, brokerop.ShareAckBatch{First: a.FirstOffset, Last: a.LastOffset, Types: a.AcknowledgeTypes})
	}
	return out
}

func handleShareFetch(ctx context.Context, r *Request, req *kmsg.ShareFetchRequest, resp *kmsg.ShareFetchResponse) {
	group, member := strOrEmpty(req.GroupID), strOrEmpty(req.MemberID)
	if !r.Authorized(ctx, acl.GroupMember, group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return
	}
	resolved := resolveShareTopics(ctx, r, req.Topics)
	breq := &brokerop.ShareFetchReq{Group: group, MemberID: member, SessionEpoch: req.ShareSessionEpoch, MaxWaitMs: req.MaxWaitMillis,
		MinBytes: req.MinBytes, MaxBytes: req.MaxBytes, MaxRecords: req.MaxRecords, Renew: req.IsRenewAck}
	byName := map[string][16]byte{}
	var local []kmsg.ShareFetchResponseTopic // partitions the gateway answers itself
	for i, t := range req.Topics {
		var lt *kmsg.ShareFetchResponseTopic
		for j, p := range t.Partitions {
			sp := resolved[i][j]
			if sp.code != 0 {
				if lt == nil {
					local = append(local, kmsg.NewShareFetchResponseTopic())
					lt = &local[len(local)-1]
					lt.TopicID = t.TopicID
				}
				rp := kmsg.NewShareFetchResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, sp.code
				if len(p.AcknowledgementBatches) > 0 {
					rp.AcknowledgeErrorCode = sp.code
				}
				lt.Partitions = append(lt.Partitions, rp)
				continue
			}
			byName[sp.topic] = t.TopicID
			breq.Partitions = append(breq.Partitions, brokerop.ShareFetchPartition{Topic: sp.topic, Partition: p.Partition,
				MaxBytes: p.PartitionMaxBytes, Acks: shareAcks(p.AcknowledgementBatches)})
		}
	}
	fids, fparts := make([][16]byte, len(req.ForgottenTopicsData)), make([][]int32, len(req.ForgottenTopicsData))
	for i, f := range req.ForgottenTopicsData {
		fids[i], fparts[i] = f.TopicID, f.Partitions
	}
	for _, ps := range resolveShareParts(ctx, r, fids, fparts) {
		for _, sp := range ps {
			if sp.topic != "" {
				breq.Forgotten = append(breq.Forgotten, brokerop.ShareTP{Topic: sp.topic, Partition: sp.part})
			}
		}
	}
	bresp, code := shareCall(ctx, r, brokerop.ShareService.ShareFetch, breq)
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	resp.ErrorCode, resp.ErrorMessage, resp.AcquisitionLockTimeoutMillis = bresp.ErrorCode, nilIfEmpty(bresp.ErrorMessage), bresp.LockMs
	if bresp.ErrorCode != 0 {
		return
	}
	var names []string
	for _, p := range bresp.Partitions {
		if _, ok := byName[p.Topic]; !ok {
			names = append(names, p.Topic)
		}
	}
	if len(names) > 0 { // session partitions added by earlier requests
		for i, id := range r.Server.topics.ids(ctx, names) {
			byName[names[i]] = id
		}
	}
	at := map[[16]byte]int{}
	for _, p := range bresp.Partitions {
		id := byName[p.Topic]
		k, ok := at[id]
		if !ok {
			k = len(resp.Topics)
			at[id] = k
			rt := kmsg.NewShareFetchResponseTopic()
			rt.TopicID = id
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewShareFetchResponseTopicPartition()
		rp.Partition, rp.ErrorCode, rp.AcknowledgeErrorCode, rp.Records = p.Partition, p.ErrorCode, p.AckErrorCode, p.Records
		for _, a := range p.Acquired {
			ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
			ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = a.First, a.Last, a.Count
			rp.AcquiredRecords = append(rp.AcquiredRecords, ar)
		}
		resp.Topics[k].Partitions = append(resp.Topics[k].Partitions, rp)
	}
	resp.Topics = append(resp.Topics, local...)
}

func handleShareAcknowledge(ctx context.Context, r *Request, req *kmsg.ShareAcknowledgeRequest, resp *kmsg.ShareAcknowledgeResponse) {
	group, member := strOrEmpty(req.GroupID), strOrEmpty(req.MemberID)
	if !r.Authorized(ctx, acl.GroupMember, group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return
	}
	topics := ackTopicsAsFetch(req.Topics)
	resolved := resolveShareTopics(ctx, r, topics)
	breq := &brokerop.ShareAcknowledgeReq{Group: group, MemberID: member, SessionEpoch: req.ShareSessionEpoch, Renew: req.IsRenewAck}
	for i, t := range topics {
		for j, p := range t.Partitions {
			if sp := resolved[i][j]; sp.code == 0 {
				breq.Partitions = append(breq.Partitions, brokerop.ShareAckPartition{Topic: sp.topic, Partition: p.Partition, Acks: shareAcks(p.AcknowledgementBatches)})
			}
		}
	}
	bresp, code := shareCall(ctx, r, brokerop.ShareService.ShareAcknowledge, breq)
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	resp.ErrorCode, resp.ErrorMessage, resp.AcquisitionLockTimeoutMillis = bresp.ErrorCode, nilIfEmpty(bresp.ErrorMessage), bresp.LockMs
	if bresp.ErrorCode != 0 {
		return
	}
	codes := &shareCodes{n: len(bresp.Partitions), code: func(k int) int16 { return bresp.Partitions[k].ErrorCode }}
	for i, t := range req.Topics {
		rt := kmsg.NewShareAcknowledgeResponseTopic()
		rt.TopicID = t.TopicID
		for j, p := range t.Partitions {
			rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes.next(resolved[i][j].code)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func handleDescribeShareGroupOffsets(ctx context.Context, r *Request, req *kmsg.DescribeShareGroupOffsetsRequest, resp *kmsg.DescribeShareGroupOffsetsResponse) {
	authorized := r.authorizedFn(ctx)
	for _, g := range req.Groups {
		rg := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		rg.GroupID = g.GroupID
		if !authorized(acl.DescribeGroup, g.GroupID) {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		bg := brokerop.ShareOffsetsGroup{Group: g.GroupID, All: g.Topics == nil}
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				bg.Partitions = append(bg.Partitions, brokerop.ShareTP{Topic: t.Topic, Partition: p})
			}
		}
		bresp, code := shareCall(ctx, r, brokerop.ShareService.DescribeShareGroupOffsets, &brokerop.DescribeShareGroupOffsetsReq{Groups: []brokerop.ShareOffsetsGroup{bg}})
		switch {
		case code != 0:
			rg.ErrorCode = code
		case len(bresp.Groups) != 1:
			rg.ErrorCode = kafkawire.ErrNotCoordinator
		default:
			bgr := bresp.Groups[0]
			rg.ErrorCode = bgr.ErrorCode
			var names []string
			for _, p := range bgr.Partitions {
				if len(names) == 0 || names[len(names)-1] != p.Topic {
					names = append(names, p.Topic)
				}
			}
			ids := r.Server.topics.ids(ctx, names)
			k := -1
			for _, p := range bgr.Partitions {
				if k < 0 || rg.Topics[k].Topic != p.Topic {
					k++
					rt := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
					rt.Topic, rt.TopicID = p.Topic, ids[k]
					rg.Topics = append(rg.Topics, rt)
				}
				rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
				rp.Partition, rp.StartOffset, rp.LeaderEpoch, rp.Lag, rp.ErrorCode = p.Partition, p.StartOffset, p.LeaderEpoch, p.Lag, p.ErrorCode
				if !authorized(acl.DescribeTopic, p.Topic) {
					rp.StartOffset, rp.Lag, rp.ErrorCode = -1, -1, kerr.TopicAuthorizationFailed.Code
				}
				rg.Topics[k].Partitions = append(rg.Topics[k].Partitions, rp)
			}
		}
		resp.Groups = append(resp.Groups, rg)
	}
}

func handleAlterShareGroupOffsets(ctx context.Context, r *Request, req *kmsg.AlterShareGroupOffsetsRequest, resp *kmsg.AlterShareGroupOffsetsResponse) {
	names := topicNames(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	breq := &brokerop.AlterShareGroupOffsetsReq{Group: req.GroupID}
	refused, bresp, code := shareOffsetsCall(ctx, r, acl.GroupMember, req.GroupID, names, brokerop.ShareService.AlterShareGroupOffsets, breq, func(i int) {
		for _, p := range req.Topics[i].Partitions {
			breq.Partitions = append(breq.Partitions, brokerop.ShareOffset{Topic: names[i], Partition: p.Partition, StartOffset: p.StartOffset})
		}
	})
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	resp.ErrorCode = bresp.ErrorCode
	codes := &shareCodes{top: bresp.ErrorCode, n: len(bresp.Partitions), code: func(k int) int16 { return bresp.Partitions[k].ErrorCode }}
	ids := r.Server.topics.ids(ctx, names)
	for i, t := range req.Topics {
		rt := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, ids[i]
		for _, p := range t.Partitions {
			rp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes.next(refused[i])
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func topicNames(n int, name func(int) string) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = name(i)
	}
	return out
}

// shareOffsetsCall serves the checks and the call of AlterShareGroupOffsets and
// DeleteShareGroupOffsets: need on the group (else code GROUP_AUTHORIZATION_FAILED), READ on
// each topic (refused[i] TOPIC_AUTHORIZATION_FAILED, or 0 for a topic that add(i) puts in
// breq), then op with breq (code as shareCall's).
func shareOffsetsCall[Req, Resp any](ctx context.Context, r *Request, need acl.Need, group string, topics []string,
	op func(brokerop.ShareService, context.Context, *Req) (*Resp, error), breq *Req, add func(i int)) (refused []int16, bresp *Resp, code int16) {
	if !r.Authorized(ctx, need, group) {
		return nil, nil, kerr.GroupAuthorizationFailed.Code
	}
	refused = make([]int16, len(topics))
	for i, denied := range topicsDenied(ctx, r, acl.FetchTopic, len(topics), func(i int) string { return topics[i] }) {
		if denied {
			refused[i] = kerr.TopicAuthorizationFailed.Code
		} else {
			add(i)
		}
	}
	bresp, code = shareCall(ctx, r, op, breq)
	return refused, bresp, code
}

// shareCodes hands out a share answer's error codes in request order. next(refused) is the
// code of the request's next item: refused when the gateway answered the item itself (not
// sent on), else the answer's own code (top) when it failed as a whole, else the backend's
// code for its next item (code(k) for k below n, in turn).
type shareCodes struct {
	top  int16
	n, k int
	code func(k int) int16
}

func (c *shareCodes) next(refused int16) int16 {
	switch {
	case refused != 0:
		return refused
	case c.top != 0:
		return c.top
	case c.k < c.n:
		c.k++
		return c.code(c.k - 1)
	}
	return 0
}

func handleDeleteShareGroupOffsets(ctx context.Context, r *Request, req *kmsg.DeleteShareGroupOffsetsRequest, resp *kmsg.DeleteShareGroupOffsetsResponse) {
	names := topicNames(len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	breq := &brokerop.DeleteShareGroupOffsetsReq{Group: req.GroupID}
	refused, bresp, code := shareOffsetsCall(ctx, r, acl.DeleteGroup, req.GroupID, names, brokerop.ShareService.DeleteShareGroupOffsets, breq, func(i int) {
		breq.Topics = append(breq.Topics, names[i])
	})
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	resp.ErrorCode = bresp.ErrorCode
	codes := &shareCodes{top: bresp.ErrorCode, n: len(bresp.Topics), code: func(k int) int16 { return bresp.Topics[k].ErrorCode }}
	ids := r.Server.topics.ids(ctx, names)
	for i, name := range names {
		rt := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		rt.Topic, rt.TopicID, rt.ErrorCode = name, ids[i], codes.next(refused[i])
		resp.Topics = append(resp.Topics, rt)
	}
}
