package gateway

// Transactions (exactly-once): InitProducerID with a transactional id
// (api_init_producer_id.go), AddPartitionsToTxn (key 24) v0–5, AddOffsetsToTxn (25) v0–4,
// EndTxn (26) v0–5, TxnOffsetCommit (28) v0–5, DescribeProducers (61) v0,
// DescribeTransactions (65) v0, ListTransactions (66) v0–1. Each is handed to the backend's
// transaction coordinator (brokerop.ProducerService); FindCoordinator with key type 1
// answers the gateway itself, as for groups. A backend without transactions (its ops answer
// brokerop.ErrUnsupported) makes them COORDINATOR_NOT_AVAILABLE; a failed call
// NOT_COORDINATOR (clients look the coordinator up again and retry).
//
// Transactions version 2 (KIP-890 part 2), with a backend that serves it (the feature
// transaction.version, api_versions.go): EndTxn v5 bumps the producer epoch at every end and
// answers the new producer id and epoch (brokerop.EndTxnReq.Bump), TxnOffsetCommit v5 adds
// its group to the transaction itself (no AddOffsetsToTxn; TxnOffsetCommitReq.AddGroup),
// and Produce v12 adds its partition (api_produce.go). With a backend that does not, v5
// is served as v4 (EndTxn answers producer id and epoch -1, and TxnOffsetCommit needs
// AddOffsetsToTxn): clients use these versions only when the feature is advertised. The
// versions that only add TRANSACTION_ABORTABLE (AddPartitionsToTxn v5, AddOffsetsToTxn v4,
// EndTxn v4, TxnOffsetCommit v4) are served as the one before: nothing here answers it.
// TxnOffsetCommit v3's generation, member id and group instance id are checked against the
// group as Kafka does (KIP-447: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID).
// PRODUCER_FENCED is answered as INVALID_PRODUCER_EPOCH to versions from before KIP-588
// (InitProducerID < 4, AddPartitionsToTxn/AddOffsetsToTxn/EndTxn < 2, TxnOffsetCommit < 3).
// AddPartitionsToTxn v4 (the batched broker-to-broker form) is served: VerifyOnly
// transactions answer whether every partition is already in the transaction.
//
// Authorization (authz.go), as Kafka's KafkaApis asks for it:
//
//   - AddPartitionsToTxn v0–3: WRITE on the transactional id (else every partition is
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and WRITE on each topic; if any topic is refused
//     its partitions are TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED, and
//     nothing is added. v4 (sent by brokers) needs CLUSTER_ACTION on the cluster, else the
//     top-level error is CLUSTER_AUTHORIZATION_FAILED.
//   - AddOffsetsToTxn: WRITE on the transactional id, then READ on the group
//     (GROUP_AUTHORIZATION_FAILED). EndTxn: WRITE on the transactional id.
//   - TxnOffsetCommit: WRITE on the transactional id, then READ on the group (either refusal
//     answers every partition), then READ on each topic: refused topics' partitions are
//     TOPIC_AUTHORIZATION_FAILED and the others are committed.
//   - DescribeTransactions: DESCRIBE on each transactional id (else
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and only the partitions of topics the principal
//     may DESCRIBE are listed. ListTransactions lists only the ids it may DESCRIBE.
//   - DescribeProducers: READ on each topic (TOPIC_AUTHORIZATION_FAILED).
//   - Transactional Produce (api_produce.go) needs WRITE on the transactional id and
//     FindCoordinator key type 1 (group_find_coordinator.go) DESCRIBE on it.
//
// Refused requests and partitions never reach the backend.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// fenced maps PRODUCER_FENCED to INVALID_PRODUCER_EPOCH for request versions from before
// KIP-588 (below since), as Kafka does: older clients do not know the code.
func fenced(code, version, since int16) int16 {
	if code == kerr.ProducerFenced.Code && version < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

// txnCall runs one transaction-coordinator call and reduces "no transaction support" and
// call failures to the Kafka error code to answer with (0 when resp is valid).
func txnCall[Req, Resp any](ctx context.Context, r *Request, op func(ProducerIDBackend, context.Context, *Req) (*Resp, error), req *Req) (*Resp, int16) {
	return coordinatorCall(r, "transaction", func() (*Resp, error) { return op(r.Server.Backend(), ctx, req) })
}

func addPartitions(ctx context.Context, r *Request, id string, pid int64, epoch int16, topics []kmsg.AddPartitionsToTxnRequestTopic) []kmsg.AddPartitionsToTxnResponseTopic {
	breq := &brokerop.AddPartitionsToTxnReq{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch}
	for _, t := range topics {
		for _, p := range t.Partitions {
			breq.Partitions = append(breq.Partitions, brokerop.TxnPartition{Topic: t.Topic, Partition: p})
		}
	}
	code := int16(0)
	if bresp, c := txnCall(ctx, r, ProducerIDBackend.AddPartitionsToTxn, breq); c != 0 {
		code = c
	} else {
		code = bresp.ErrorCode
	}
	return partitionsAnswer(topics, func(string) int16 { return code })
}

// partitionsAnswer answers every partition of topics with code(topic).
func partitionsAnswer(topics []kmsg.AddPartitionsToTxnRequestTopic, code func(topic string) int16) []kmsg.AddPartitionsToTxnResponseTopic {
	out := make([]kmsg.AddPartitionsToTxnResponseTopic, 0, len(topics))
	for _, t := range topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		c := code(t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, c
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out
}

// addPartitionsRefused is a client's (v0–3) AddPartitionsToTxn authorization: nil when the
// principal may write the transactional id and every topic, else the answer for every
// partition (Kafka's: a refused topic fails the whole request, the partitions it did not
// refuse are OPERATION_NOT_ATTEMPTED).
func addPartitionsRefused(ctx context.Context, r *Request, id string, topics []kmsg.AddPartitionsToTxnRequestTopic) []kmsg.AddPartitionsToTxnResponseTopic {
	authorized := r.authorizedFn(ctx)
	if !authorized(acl.TxnWrite, id) {
		return partitionsAnswer(topics, func(string) int16 { return kerr.TransactionalIDAuthorizationFailed.Code })
	}
	var denied map[string]bool
	for _, t := range topics {
		if !authorized(acl.ProduceTopic, t.Topic) {
			if denied == nil {
				denied = map[string]bool{}
			}
			denied[t.Topic] = true
		}
	}
	if denied == nil {
		return nil
	}
	return partitionsAnswer(topics, func(topic string) int16 {
		if denied[topic] {
			return kerr.TopicAuthorizationFailed.Code
		}
		return kerr.OperationNotAttempted.Code
	})
}

func handleAddPartitionsToTxn(ctx context.Context, r *Request, req *kmsg.AddPartitionsToTxnRequest, resp *kmsg.AddPartitionsToTxnResponse) {
	if req.Version < 4 {
		if resp.Topics = addPartitionsRefused(ctx, r, req.TransactionalID, req.Topics); resp.Topics != nil {
			return
		}
		resp.Topics = addPartitions(ctx, r, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Topics)
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				p := &resp.Topics[i].Partitions[j]
				p.ErrorCode = fenced(p.ErrorCode, req.Version, 2)
			}
		}
		return
	}
	// v4 comes from brokers only (Kafka: CLUSTER_ACTION, and no per-transaction checks).
	if !r.authorizedCluster(ctx, acl.ClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return
	}
	for _, t := range req.Transactions {
		rt := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rt.TransactionalID = t.TransactionalID
		topics := make([]kmsg.AddPartitionsToTxnRequestTopic, len(t.Topics))
		for i, tt := range t.Topics {
			topics[i] = kmsg.AddPartitionsToTxnRequestTopic{Topic: tt.Topic, Partitions: tt.Partitions}
		}
		var res []kmsg.AddPartitionsToTxnResponseTopic
		if t.VerifyOnly {
			res = verifyPartitions(ctx, r, t.TransactionalID, t.ProducerID, t.ProducerEpoch, topics)
		} else {
			res = addPartitions(ctx, r, t.TransactionalID, t.ProducerID, t.ProducerEpoch, topics)
		}
		for _, x := range res {
			tt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			tt.Topic = x.Topic
			for _, p := range x.Partitions {
				tp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				tp.Partition, tp.ErrorCode = p.Partition, p.ErrorCode
				tt.Partitions = append(tt.Partitions, tp)
			}
			rt.Topics = append(rt.Topics, tt)
		}
		resp.Transactions = append(resp.Transactions, rt)
	}
}

// verifyPartitions answers a VerifyOnly transaction: each partition is fine if it is in the
// ongoing transaction of that producer and epoch, else INVALID_TXN_STATE (or the fencing
// error).
func verifyPartitions(ctx context.Context, r *Request, id string, pid int64, epoch int16, topics []kmsg.AddPartitionsToTxnRequestTopic) []kmsg.AddPartitionsToTxnResponseTopic {
	bresp, code := txnCall(ctx, r, ProducerIDBackend.DescribeTransactions, &brokerop.DescribeTransactionsReq{TransactionalIDs: []string{id}})
	in := map[brokerop.TxnPartition]bool{}
	if code == 0 && len(bresp.Transactions) == 1 {
		d := bresp.Transactions[0]
		switch {
		case d.ErrorCode != 0 || d.ProducerID != pid:
			code = kerr.InvalidProducerIDMapping.Code
		case d.ProducerEpoch > epoch:
			code = kerr.ProducerFenced.Code
		case d.ProducerEpoch < epoch:
			code = kerr.InvalidProducerEpoch.Code
		}
		for _, p := range d.Partitions {
			in[p] = d.State == "Ongoing"
		}
	}
	out := make([]kmsg.AddPartitionsToTxnResponseTopic, 0, len(topics))
	for _, t := range topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			if code == 0 && !in[brokerop.TxnPartition{Topic: t.Topic, Partition: p}] {
				rp.ErrorCode = kerr.InvalidTxnState.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		out = append(out, rt)
	}
	return out
}

func handleAddOffsetsToTxn(ctx context.Context, r *Request, req *kmsg.AddOffsetsToTxnRequest, resp *kmsg.AddOffsetsToTxnResponse) {
	authorized := r.authorizedFn(ctx)
	switch {
	case !authorized(acl.TxnWrite, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return
	case !authorized(acl.GroupMember, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return
	}
	bresp, code := txnCall(ctx, r, ProducerIDBackend.AddOffsetsToTxn, &brokerop.AddOffsetsToTxnReq{
		TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch, Group: req.Group})
	if code == 0 {
		code = bresp.ErrorCode
	}
	resp.ErrorCode = fenced(code, req.Version, 2)
}

func handleEndTxn(ctx context.Context, r *Request, req *kmsg.EndTxnRequest, resp *kmsg.EndTxnResponse) {
	if !r.Authorized(ctx, acl.TxnWrite, req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return
	}
	bump := req.Version >= 5 && r.txnV2()
	bresp, code := txnCall(ctx, r, ProducerIDBackend.EndTxn, &brokerop.EndTxnReq{
		TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch, Commit: req.Commit, Bump: bump})
	if code == 0 {
		code = bresp.ErrorCode
	}
	resp.ErrorCode = fenced(code, req.Version, 2)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if bump && code == 0 {
		resp.ProducerID, resp.ProducerEpoch = bresp.ProducerID, bresp.ProducerEpoch
	}
}

func handleTxnOffsetCommit(ctx context.Context, r *Request, req *kmsg.TxnOffsetCommitRequest, resp *kmsg.TxnOffsetCommitResponse) {
	breq := &brokerop.TxnOffsetCommitReq{TransactionalID: req.TransactionalID, Group: req.Group, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
		Generation: -1, AddGroup: req.Version >= 5 && r.txnV2()}
	if req.Version >= 3 { // KIP-447: the consumer's membership, fenced against the group
		breq.Generation, breq.MemberID = req.Generation, req.MemberID
		if req.InstanceID != nil {
			breq.InstanceID = *req.InstanceID
		}
	}
	authorized := r.authorizedFn(ctx)
	refused := int16(0) // the whole request's refusal
	switch {
	case !authorized(acl.TxnWrite, req.TransactionalID):
		refused = kerr.TransactionalIDAuthorizationFailed.Code
	case !authorized(acl.GroupMember, req.Group):
		refused = kerr.GroupAuthorizationFailed.Code
	}
	topicDenied := make([]bool, len(req.Topics))
	for i, t := range req.Topics {
		if refused != 0 {
			break
		}
		if topicDenied[i] = !authorized(acl.CommitTopic, t.Topic); topicDenied[i] {
			continue
		}
		bt := brokerop.OffsetCommitTopic{Topic: t.Topic}
		for _, p := range t.Partitions {
			le := int32(-1)
			if req.Version >= 2 {
				le = p.LeaderEpoch
			}
			bt.Partitions = append(bt.Partitions, brokerop.OffsetCommitPartition{Partition: p.Partition, Offset: p.Offset, LeaderEpoch: le, Metadata: strOrEmpty(p.Metadata)})
		}
		breq.Topics = append(breq.Topics, bt)
	}
	code := refused
	if refused == 0 && (len(breq.Topics) > 0 || len(req.Topics) == 0) {
		var bresp *brokerop.TxnResp
		if bresp, code = txnCall(ctx, r, ProducerIDBackend.TxnOffsetCommit, breq); code == 0 {
			code = bresp.ErrorCode
		}
		code = fenced(code, req.Version, 3)
	}
	for i, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			if topicDenied[i] {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}

func handleListTransactions(ctx context.Context, r *Request, req *kmsg.ListTransactionsRequest, resp *kmsg.ListTransactionsResponse) {
	known := map[string]bool{"Empty": true, "Ongoing": true, "PrepareCommit": true, "PrepareAbort": true, "CompleteCommit": true, "CompleteAbort": true, "Dead": true, "PrepareEpochFence": true}
	var states []string
	for _, s := range req.StateFilters {
		if known[s] {
			states = append(states, s)
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
	}
	if len(req.StateFilters) > 0 && len(states) == 0 {
		return // only unknown states: nothing matches
	}
	minDur := int64(-1)
	if req.Version >= 1 {
		minDur = req.DurationFilterMillis
	}
	bresp, code := txnCall(ctx, r, ProducerIDBackend.ListTransactions, &brokerop.ListTransactionsReq{States: states, ProducerIDs: req.ProducerIDFilters, MinDurationMs: minDur})
	if code != 0 {
		resp.ErrorCode = code
		return
	}
	authorized := r.authorizedFn(ctx)
	for _, t := range bresp.Transactions {
		if !authorized(acl.DescribeTxnID, t.TransactionalID) {
			continue
		}
		s := kmsg.NewListTransactionsResponseTransactionState()
		s.TransactionalID, s.ProducerID, s.TransactionState = t.TransactionalID, t.ProducerID, t.State
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
}

func handleDescribeTransactions(ctx context.Context, r *Request, req *kmsg.DescribeTransactionsRequest, resp *kmsg.DescribeTransactionsResponse) {
	authorized := r.authorizedFn(ctx)
	sentAt := make([]int, len(req.TransactionalIDs)) // index in breq, -1: refused
	breq := &brokerop.DescribeTransactionsReq{}
	for i, id := range req.TransactionalIDs {
		sentAt[i] = -1
		if authorized(acl.DescribeTxnID, id) {
			sentAt[i] = len(breq.TransactionalIDs)
			breq.TransactionalIDs = append(breq.TransactionalIDs, id)
		}
	}
	var bresp *brokerop.DescribeTransactionsResp
	code := int16(0)
	if len(breq.TransactionalIDs) > 0 {
		bresp, code = oneEach(len(breq.TransactionalIDs), func(b *brokerop.DescribeTransactionsResp) int { return len(b.Transactions) })(
			txnCall(ctx, r, ProducerIDBackend.DescribeTransactions, breq))
	}
	for i, id := range req.TransactionalIDs {
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID, s.ErrorCode = id, code
		switch {
		case sentAt[i] < 0:
			s.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case code == 0:
			d := bresp.Transactions[sentAt[i]]
			s.ErrorCode, s.State, s.TimeoutMillis, s.StartTimestamp, s.ProducerID, s.ProducerEpoch = d.ErrorCode, d.State, d.TimeoutMs, d.StartMs, d.ProducerID, d.ProducerEpoch
			for _, p := range d.Partitions {
				if !authorized(acl.DescribeTopic, p.Topic) {
					continue // Kafka lists only the topics the principal may describe
				}
				if n := len(s.Topics); n == 0 || s.Topics[n-1].Topic != p.Topic {
					t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					t.Topic = p.Topic
					s.Topics = append(s.Topics, t)
				}
				t := &s.Topics[len(s.Topics)-1]
				t.Partitions = append(t.Partitions, p.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
}

func handleDescribeProducers(ctx context.Context, r *Request, req *kmsg.DescribeProducersRequest, resp *kmsg.DescribeProducersResponse) {
	breq := &brokerop.DescribeProducersReq{}
	denied := topicsDenied(ctx, r, acl.DescribeProducersTopic, len(req.Topics), func(i int) string { return req.Topics[i].Topic })
	for k, t := range req.Topics {
		if denied[k] {
			continue
		}
		for _, p := range t.Partitions {
			breq.Partitions = append(breq.Partitions, brokerop.TxnPartition{Topic: t.Topic, Partition: p})
		}
	}
	var bresp *brokerop.DescribeProducersResp
	code := int16(0)
	if len(breq.Partitions) > 0 || len(req.Topics) == 0 {
		bresp, code = oneEach(len(breq.Partitions), func(b *brokerop.DescribeProducersResp) int { return len(b.Partitions) })(
			txnCall(ctx, r, ProducerIDBackend.DescribeProducers, breq))
	}
	i := 0
	for k, t := range req.Topics {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			if denied[k] {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
				continue
			}
			if code == 0 {
				bp := bresp.Partitions[i]
				rp.ErrorCode = bp.ErrorCode
				for _, ap := range bp.Producers {
					a := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					a.ProducerID, a.ProducerEpoch, a.LastSequence, a.LastTimestamp, a.CoordinatorEpoch, a.CurrentTxnStartOffset =
						ap.ProducerID, ap.ProducerEpoch, ap.LastSequence, ap.LastTimestamp, ap.CoordinatorEpoch, ap.TxnStartOffset
					rp.ActiveProducers = append(rp.ActiveProducers, a)
				}
			}
			i++
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
}
