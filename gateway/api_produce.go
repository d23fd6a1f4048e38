package gateway

// Produce (key 0), v3–11.
//
//   - v0–v2 (legacy message sets) are not advertised: the broker stores RecordBatch v2 only.
//   - Each partition's records go to the backend as the raw bytes the client sent; the broker
//     validates (CRC, counts) and assigns offsets. Transactional produce is not supported
//     (no InitProducerID is advertised, so clients fall back to plain produce).
//   - acks=0: no response is written. acks other than 0, 1, -1: INVALID_REQUIRED_ACKS.
//   - A backend failure answers every partition with BackendErrorCode(err).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func init() {
	Register(API{Key: kafkawire.KeyProduce, MinVersion: 3, MaxVersion: 11, Handle: handleProduce})
}

func handleProduce(ctx context.Context, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	n := 0
	for i := range req.Topics {
		n += len(req.Topics[i].Partitions)
	}
	breq := &brokerop.ProduceReq{Acks: req.Acks, TimeoutMs: req.TimeoutMillis, Partitions: make([]brokerop.ProducePartition, 0, n)}
	for i := range req.Topics {
		t := &req.Topics[i]
		for j := range t.Partitions {
			p := &t.Partitions[j]
			breq.Partitions = append(breq.Partitions, brokerop.ProducePartition{Topic: t.Topic, Partition: p.Partition, Records: p.Records})
		}
	}

	var bresp *brokerop.ProduceResp
	errCode := int16(0)
	switch req.Acks {
	case 0, 1, -1:
		var err error
		if bresp, err = r.Server.Backend().Produce(ctx, breq); err != nil {
			errCode = BackendErrorCode(err)
		} else if len(bresp.Partitions) != n {
			errCode = kafkawire.ErrUnknownServerError
		}
	default:
		errCode = kafkawire.ErrInvalidRequiredAcks
	}
	if req.Acks == 0 {
		return nil, nil
	}

	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	parts := make([]kmsg.ProduceResponseTopicPartition, n) // one allocation for every partition
	k := 0
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		rt.Topic = t.Topic
		rt.Partitions = parts[k : k+len(t.Partitions) : k+len(t.Partitions)]
		for j := range t.Partitions {
			rp := &rt.Partitions[j]
			rp.Default()
			rp.Partition = t.Partitions[j].Partition
			if errCode != 0 {
				rp.ErrorCode, rp.BaseOffset = errCode, -1
			} else {
				bp := &bresp.Partitions[k+j]
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
