package gateway

// Produce (key 0), v0–12.
//
//   - v0–v2 carry legacy message sets (magic 0/1); the gateway converts each partition's set
//     to one uncompressed RecordBatch v2 (kafkawire.ConvertMessageSet) before the broker sees
//     it, because the broker stores v2 batches only. A set that does not convert (bad CRC,
//     truncated, unknown codec) is CORRUPT_MESSAGE for that partition and nothing of it is
//     stored. librdkafka needs Produce v0 in the advertised range before it compresses with
//     gzip, snappy or lz4 even though it then produces with v3+, so serving v0–v2 matters.
//   - Each partition's records go to the backend as the raw bytes the client sent; the broker
//     validates (CRC, counts), deduplicates idempotent producers' retries (InitProducerID,
//     api_init_producer_id.go), checks transactional batches against the producer's
//     transaction (api_txn.go) and assigns offsets.
//   - acks=0: no response is written. acks other than 0, 1, -1: INVALID_REQUIRED_ACKS.
//   - Pipelining: Produce registers a Stage function. Through the backend's ProduceStaged
//     (a backend that stages, as broker.Broker does), the append happens in request order on the connection's reader and
//     the wait for durability (acks=-1: fsync) happens on the writer, so a client with
//     several produce requests in flight on one connection has them appended in order and
//     sharing fsyncs; answers still go out in request order. A backend that says its wait
//     returns at once (readyStager: acks=0/1, transactional batches of transaction.version
//     2) has the request finished and answered by the reader when nothing is queued.
//   - v12 is v11 on the wire; it says the client runs transactions as version 2 (KIP-890
//     part 2): with a backend that serves it (api_versions.go), a transactional batch adds
//     its partition to the producer's transaction (brokerop.ProduceReq.TxnAdd) instead of
//     needing AddPartitionsToTxn first. Otherwise v12 is served as v11.
//   - A backend failure answers every partition with BackendErrorCode(err).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func stageProduce(ctx context.Context, r *Request) (func() (kmsg.Response, error), error) {
	req := r.Body.(*kmsg.ProduceRequest)

	n := 0
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	breq := &brokerop.ProduceReq{Acks: req.Acks, TimeoutMs: req.TimeoutMillis, Partitions: make([]brokerop.ProducePartition, 0, n),
		TxnAdd: req.Version >= 12 && r.txnV2()}
	// refused holds, by flat index, the error of partitions not sent: legacy sets that did
	// not convert (v0–v2 only) and topics the principal may not WRITE (authz.go).
	var refused []int16
	refuse := func(k int, code int16) {
		if refused == nil {
			refused = make([]int16, n)
		}
		refused[k] = code
	}
	authorized := r.authorizedFn(ctx)
	// Transactional records (any batch with the transactional attribute) need WRITE on the
	// request's transactional id, which must be there: Kafka's rule, applied only with
	// authorization on (without it the broker checks the producer's transaction).
	txnDenied := r.authz(ctx) != nil && req.Version >= 3 && hasTransactionalRecords(req) &&
		(req.TransactionID == nil || !authorized(acl.ProduceTxnID, *req.TransactionID))
	for i := range req.Topics {
		t := &req.Topics[i]
		topicDenied := !txnDenied && !authorized(acl.ProduceTopic, t.Topic)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			records := p.Records
			switch {
			case txnDenied:
				refuse(len(breq.Partitions), kerr.TransactionalIDAuthorizationFailed.Code)
				records = nil
			case topicDenied:
				refuse(len(breq.Partitions), kerr.TopicAuthorizationFailed.Code)
				records = nil
			case req.Version < 3:
				var err error
				if records, err = kafkawire.ConvertMessageSet(records); err != nil {
					refuse(len(breq.Partitions), kafkawire.ErrCorruptMessage)
					records = nil
				}
			}
			breq.Partitions = append(breq.Partitions, brokerop.ProducePartition{Topic: t.Topic, Partition: p.Partition, Records: records})
		}
	}
	sent := breq.Partitions
	if refused != nil { // only convertible, authorized partitions go to the backend
		sent = make([]brokerop.ProducePartition, 0, n)
		for k, p := range breq.Partitions {
			if refused[k] == 0 {
				sent = append(sent, p)
			}
		}
	}

	var wait func() (*brokerop.ProduceResp, error)
	ready := true
	switch {
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
	case len(sent) == 0:
		wait = func() (*brokerop.ProduceResp, error) { return &brokerop.ProduceResp{}, nil }
	default:
		breq.Partitions = sent
		if rb, ok := r.Server.Backend().(readyStager); ok {
			wait, ready = rb.ProduceStagedReady(ctx, breq)
		} else {
			wait, ready = r.Server.Backend().ProduceStaged(ctx, breq), false
		}
	}
	r.finishReady = ready
	return func() (kmsg.Response, error) { return finishProduce(req, refused, n, len(sent), wait) }, nil
}

// readyStager is a backend whose staged produce says whether its wait returns at once
// (broker.Broker): the connection's reader then finishes the request itself when nothing is
// queued before it, instead of handing it to the writer goroutine (serve).
type readyStager interface {
	ProduceStagedReady(ctx context.Context, req *brokerop.ProduceReq) (func() (*brokerop.ProduceResp, error), bool)
}

// hasTransactionalRecords reports whether any partition of req carries a transactional batch.
func hasTransactionalRecords(req *kmsg.ProduceRequest) bool {
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			if kafkawire.HasTransactionalBatch(req.Topics[i].Partitions[j].Records) {
				return true
			}
		}
	}
	return false
}

// finishProduce waits for the backend's answer and builds the Kafka response (nil for
// acks=0). corrupt marks the partitions that were never sent (flat index).
func finishProduce(req *kmsg.ProduceRequest, refused []int16, n, sent int, wait func() (*brokerop.ProduceResp, error)) (kmsg.Response, error) {
	var bresp *brokerop.ProduceResp
	errCode := int16(0)
	if wait == nil {
		errCode = kafkawire.ErrInvalidRequiredAcks
	} else {
		var err error
		if bresp, err = wait(); err != nil {
			errCode = BackendErrorCode(err)
		} else if len(bresp.Partitions) != sent {
			errCode = kafkawire.ErrUnknownServerError
		}
	}
	if req.Acks == 0 {
		return nil, nil
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	parts := make([]kmsg.ProduceResponseTopicPartition, n) // one allocation for every partition
	k, bi := 0, 0
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		rt.Topic = t.Topic
		rt.Partitions = parts[k : k+len(t.Partitions) : k+len(t.Partitions)]
		for j := range t.Partitions {
			rp := &rt.Partitions[j]
			rp.Default()
			rp.Partition = t.Partitions[j].Partition
			switch {
			case refused != nil && refused[k+j] != 0:
				rp.ErrorCode, rp.BaseOffset = refused[k+j], -1
			case errCode != 0:
				rp.ErrorCode, rp.BaseOffset = errCode, -1
			default:
				bp := &bresp.Partitions[bi]
				bi++
				rp.ErrorCode, rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = bp.ErrorCode, bp.BaseOffset, bp.LogAppendTime, bp.LogStartOffset
				if bp.ErrorMessage != "" {
					rp.ErrorMessage = kmsg.StringPtr(bp.ErrorMessage)
				}
			}
		}
		k += len(t.Partitions)
	}
	return resp, nil
}
