package gateway

// Fetch (key 1), v0–16.
//
//   - v0–v3 answer legacy message sets: the stored v2 batches are down-converted
//     (kafkawire.DownConvert: decompressed, one uncompressed message per record at its
//     offset, records below the fetch offset and control batches left out) to magic 0 for
//     v0/v1 and magic 1 for v2/v3, as Kafka does. Record headers are lost (v0–v3 have none).
//   - The backend long-polls: it waits up to max_wait_ms for min_bytes and honours max_bytes
//     and the per-partition max_bytes; the gateway only translates.
//   - v13+ name topics by id; an id unknown after a cache refresh is UNKNOWN_TOPIC_ID for
//     each of its partitions.
//   - Fetch sessions (v7+, KIP-227) are served by fetch_session.go. With sessions turned off
//     (Config.FetchSessions.Slots < 0) the answer's session id is always 0 (clients then
//     keep sending full requests); a request naming a session id is answered with
//     FETCH_SESSION_ID_NOT_FOUND so the client starts over, and forgotten topics are ignored.
//   - preferred_read_replica is -1, aborted transactions are empty: with read_committed the
//     backend leaves aborted batches out of the answer itself (broker/txn_partition.go).
//   - A backend failure answers every partition with BackendErrorCode(err).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/acl"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/kafkawire"
)

var noRecords = []byte{}

// fetchAnswer is a Fetch response whose record sets are in pooled backend buffers: the
// connection's writer calls release once it has written (or dropped) the answer.
type fetchAnswer struct {
	*kmsg.FetchResponse
	release func()
}

// fetchTopicNames returns the name of each of req's topics, in order: as given up to v12,
// resolved from the topic id from v13 ("" for an unknown id).
func fetchTopicNames(ctx context.Context, r *Request, req *kmsg.FetchRequest) []string {
	if req.Version >= 13 {
		ids := make([][16]byte, len(req.Topics))
		for i := range req.Topics {
			ids[i] = req.Topics[i].TopicID
		}
		return r.Server.topics.names(ctx, ids)
	}
	names := make([]string, len(req.Topics))
	for i := range req.Topics {
		names[i] = req.Topics[i].Topic
	}
	return names
}

// newFetchReq is the backend request with req's limits (max_bytes 0 or less: 50 MiB) and
// room for n partitions.
func newFetchReq(req *kmsg.FetchRequest, n int) *brokerop.FetchReq {
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 50 << 20
	}
	return &brokerop.FetchReq{
		MaxWaitMs: req.MaxWaitMillis, MinBytes: req.MinBytes, MaxBytes: maxBytes,
		IsolationLevel: req.IsolationLevel, Partitions: make([]brokerop.FetchPartition, 0, n),
	}
}

// fetchPooled runs breq, unless it names no partition, on the backend's FetchPooled: record
// bytes may live in read buffers the backend reuses once release (nil if there is nothing to
// release) is called, after the answer is written to the socket. errCode is the code to answer
// every partition with when the call failed or answered another partition count; bresp is
// only valid when it is 0.
func fetchPooled(ctx context.Context, r *Request, breq *brokerop.FetchReq) (bresp *brokerop.FetchResp, release func(), errCode int16) {
	if len(breq.Partitions) == 0 {
		return nil, nil, 0
	}
	bresp, release, err := r.Server.Backend().FetchPooled(ctx, breq)
	if err != nil {
		errCode = BackendErrorCode(err)
	} else if len(bresp.Partitions) != len(breq.Partitions) {
		errCode = kafkawire.ErrUnknownServerError
	}
	if errCode != 0 && release != nil {
		release()
		release = nil
	}
	return bresp, release, errCode
}

func handleFetch(ctx context.Context, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 && r.Server.sessions != nil && (req.SessionID != 0 || req.SessionEpoch != -1) {
		return handleSessionFetch(ctx, r, req) // fetch_session.go; sessionless fetches stay here
	}
	if req.SessionID != 0 {
		resp.ErrorCode = kafkawire.ErrFetchSessionIDNotFound
		return resp, nil
	}

	names := fetchTopicNames(ctx, r, req)
	authorized := r.authorizedFn(ctx)
	denied := make([]bool, len(req.Topics))
	for i := range req.Topics {
		if names[i] != "" && !authorized(acl.FetchTopic, names[i]) {
			denied[i] = true
		}
	}

	n := 0
	for i := range req.Topics {
		if names[i] != "" && !denied[i] {
			n += len(req.Topics[i].Partitions)
		}
	}
	breq := newFetchReq(req, n)
	for i := range req.Topics {
		if names[i] == "" || denied[i] {
			continue
		}
		for _, p := range req.Topics[i].Partitions {
			breq.Partitions = append(breq.Partitions, brokerop.FetchPartition{
				Topic: names[i], Partition: p.Partition, Offset: p.FetchOffset, MaxBytes: p.PartitionMaxBytes,
				CurrentLeaderEpoch: p.CurrentLeaderEpoch, // -1 (none) before v9
			})
		}
	}

	bresp, release, errCode := fetchPooled(ctx, r, breq)

	total := 0
	for i := range req.Topics {
		total += len(req.Topics[i].Partitions)
	}
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	parts := make([]kmsg.FetchResponseTopicPartition, total)
	k, bi := 0, 0
	for i := range req.Topics {
		t := &req.Topics[i]
		rt := &resp.Topics[i]
		rt.Default()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		rt.Partitions = parts[k : k+len(t.Partitions) : k+len(t.Partitions)]
		k += len(t.Partitions)
		for j := range t.Partitions {
			rp := &rt.Partitions[j]
			rp.Default()
			rp.Partition = t.Partitions[j].Partition
			rp.RecordBatches = noRecords // librdkafka rejects a null record set
			switch {
			case names[i] == "":
				rp.ErrorCode = kafkawire.ErrUnknownTopicID
			case denied[i]:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case errCode != 0:
				rp.ErrorCode = errCode
			default:
				bp := &bresp.Partitions[bi]
				bi++
				rp.ErrorCode, rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = bp.ErrorCode, bp.HighWatermark, bp.LastStableOffset, bp.LogStartOffset
				if bp.Records != nil {
					rp.RecordBatches = bp.Records
				}
			}
		}
	}
	if req.Version < 4 {
		downConvertFetch(req, resp)
		if release != nil {
			release() // the answer now holds converted copies
		}
		return resp, nil
	}
	if release != nil {
		return fetchAnswer{resp, release}, nil
	}
	return resp, nil
}

// downConvertFetch replaces every partition's record batches with a legacy message set
// (Fetch v0–v3). A batch that cannot be converted answers CORRUPT_MESSAGE for its partition
// after the messages converted before it, if any.
func downConvertFetch(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) {
	magic := int8(0)
	if req.Version >= 2 {
		magic = 1
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			rp := &resp.Topics[i].Partitions[j]
			if len(rp.RecordBatches) == 0 {
				continue
			}
			ms, err := kafkawire.DownConvert(nil, rp.RecordBatches, magic, req.Topics[i].Partitions[j].FetchOffset)
			if err != nil && len(ms) == 0 {
				rp.ErrorCode = kafkawire.ErrCorruptMessage
			}
			if ms == nil {
				ms = noRecords
			}
			rp.RecordBatches = ms
		}
	}
}
