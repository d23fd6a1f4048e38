package brokermesh

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// PlacementTopic is the internal topic, on the controller broker, that records which broker
// owns each partition of every topic. Gateways append to it and replay it; the first record for
// a topic incarnation wins, later ones may only extend it (CreatePartitions), so every gateway
// reading the log reaches the same placement.
const PlacementTopic = "__meshkafka_placement"

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

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeRecordBatch builds an uncompressed RecordBatch v2 holding one record.
func encodeRecordBatch(key, value []byte, now time.Time) []byte {
	ts := now.UnixMilli()
	var rec []byte
	rec = append(rec, 0)              // attributes
	rec = binary.AppendVarint(rec, 0) // timestamp delta
	rec = binary.AppendVarint(rec, 0) // offset delta
	rec = binary.AppendVarint(rec, int64(len(key)))
	rec = append(rec, key...)
	rec = binary.AppendVarint(rec, int64(len(value)))
	rec = append(rec, value...)
	rec = binary.AppendVarint(rec, 0)                      // headers
	var body []byte                                        // from attributes to the end: what the CRC covers
	body = binary.BigEndian.AppendUint16(body, 0)          // attributes
	body = binary.BigEndian.AppendUint32(body, 0)          // last offset delta
	body = binary.BigEndian.AppendUint64(body, uint64(ts)) // base timestamp
	body = binary.BigEndian.AppendUint64(body, uint64(ts)) // max timestamp
	body = binary.BigEndian.AppendUint64(body, ^uint64(0)) // producer id -1
	body = binary.BigEndian.AppendUint16(body, 0xffff)     // producer epoch -1
	body = binary.BigEndian.AppendUint32(body, 0xffffffff) // base sequence -1
	body = binary.BigEndian.AppendUint32(body, 1)          // record count
	body = binary.AppendVarint(body, int64(len(rec)))
	body = append(body, rec...)
	var b []byte
	b = binary.BigEndian.AppendUint64(b, 0)                       // base offset (the broker assigns it)
	b = binary.BigEndian.AppendUint32(b, uint32(4+1+4+len(body))) // batch length: from leader epoch on
	b = binary.BigEndian.AppendUint32(b, 0)                       // partition leader epoch
	b = append(b, 2)                                              // magic
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(body, castagnoli))
	return append(b, body...)
}

// decodeRecords returns the (key, value) of every record in uncompressed v2 batches, and the
// offset after the last batch.
func decodeRecords(data []byte, fn func(offset int64, key, value []byte)) (next int64, err error) {
	next = -1
	for len(data) > 0 {
		if len(data) < 61 {
			return next, errors.New("short batch")
		}
		base := int64(binary.BigEndian.Uint64(data))
		n := int(binary.BigEndian.Uint32(data[8:]))
		if n < 49 || 12+n > len(data) {
			return next, errors.New("bad batch length")
		}
		batch := data[12 : 12+n]
		data = data[12+n:]
		if attrs := binary.BigEndian.Uint16(batch[9:]); attrs&7 != 0 {
			return next, fmt.Errorf("compressed placement batch (attributes %#x)", attrs)
		}
		lastDelta := int64(binary.BigEndian.Uint32(batch[11:]))
		count := int(binary.BigEndian.Uint32(batch[45:]))
		recs := batch[49:]
		for i := 0; i < count; i++ {
			l, k := binary.Varint(recs)
			if k <= 0 || l < 0 || int(l) > len(recs)-k {
				return next, errors.New("bad record length")
			}
			r := recs[k : k+int(l)]
			recs = recs[k+int(l):]
			r = r[1:] // attributes
			var fields [2]int64
			for j := range fields {
				v, m := binary.Varint(r)
				if m <= 0 {
					return next, errors.New("bad record")
				}
				fields[j], r = v, r[m:]
			}
			var kv [2][]byte
			for j := range kv {
				v, m := binary.Varint(r)
				if m <= 0 || v > int64(len(r)-m) {
					return next, errors.New("bad record field")
				}
				if v >= 0 {
					kv[j] = r[m : m+int(v)]
					r = r[m+int(v):]
				} else {
					r = r[m:]
				}
			}
			fn(base+fields[1], kv[0], kv[1])
		}
		next = base + lastDelta + 1
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
