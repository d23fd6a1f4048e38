package cluster

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/kafkawire"
)

// PlacementTopic is the internal topic, on the controller broker, that records which broker
// owns each partition of every topic. Gateways append to it and replay it; the first record for
// a topic incarnation wins, later ones may only extend it (CreatePartitions), so every gateway
// reading the log reaches the same placement.
const PlacementTopic = "__meshkafka_placement"

// The placement log is read only up to its durable point. The broker serves records as soon
// as they are appended, before they are fsynced, and a crash of the controller can drop a
// record that is not yet durable; a gateway that routed by it would disagree with the log.
// A gateway learns the durable point from its own appends: they are acks=all, so when one is
// answered every record before it is durable too. Records past that point are left for a
// later read; a gateway that finds no (durable) placement for a topic appends its own, which
// makes everything before it durable, and the first record still wins. The topic is created
// with flush.messages=1 so that acks=all means fsynced even if the broker's default flush
// policy is relaxed.
var placementTopicConfigs = map[string]string{"flush.messages": "1"}

// placement is one topic incarnation's partition owners (NodeId text, by partition index).
type placement struct {
	TopicID string   `json:"id"` // hex of the controller's topic id
	Owners  []string `json:"owners"`
}

// applyPlacement folds one log record into the table.
func applyPlacement(table map[string]placement, topic string, p placement) {
	cur, ok := table[topic]
	if !ok || cur.TopicID != p.TopicID {
		table[topic] = p
		return
	}
	if len(p.Owners) <= len(cur.Owners) {
		return // a racing gateway's duplicate: the first record stands
	}
	for i := range cur.Owners {
		if cur.Owners[i] != p.Owners[i] {
			return // an extension must keep the existing owners
		}
	}
	table[topic] = p
}

func topicIDHex(id [16]byte) string { return hex.EncodeToString(id[:]) }

// encodeRecordBatch builds an uncompressed RecordBatch v2 holding one record.
func encodeRecordBatch(key, value []byte, now time.Time) []byte {
	return kafkawire.AppendRecordBatch(nil, []kafkawire.BatchRecord{{Timestamp: now.UnixMilli(), Key: key, Value: value}})
}

// decodeRecords calls fn with the offset, key and value of every record in the uncompressed
// v2 batches of data, and returns the offset after the last batch.
func decodeRecords(data []byte, fn func(offset int64, key, value []byte)) (next int64, err error) {
	next = -1
	for len(data) > 0 {
		if len(data) < 12 {
			return next, errors.New("short batch")
		}
		n := 12 + int(int32(binary.BigEndian.Uint32(data[8:])))
		if n < 12+49 || n > len(data) {
			return next, errors.New("bad batch length")
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(data[:n]); err != nil {
			return next, err
		}
		data = data[n:]
		if b.Attributes&7 != 0 {
			return next, fmt.Errorf("compressed placement batch (attributes %#x)", b.Attributes)
		}
		recs := b.Records
		for range b.NumRecords {
			l, k := binary.Varint(recs)
			if k <= 0 || l < 0 || int(l) > len(recs)-k {
				return next, errors.New("bad record length")
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:k+int(l)]); err != nil {
				return next, err
			}
			recs = recs[k+int(l):]
			fn(b.FirstOffset+int64(r.OffsetDelta), r.Key, r.Value)
		}
		next = b.FirstOffset + int64(b.LastOffsetDelta) + 1
	}
	return next, nil
}

func encodePlacement(p placement) []byte {
	b, _ := json.Marshal(p)
	return b
}

func decodePlacement(b []byte) (placement, error) {
	var p placement
	err := json.Unmarshal(b, &p)
	return p, err
}
