package kafkawire

import (
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FetchWriter encodes Fetch response frames without copying large record sets: the frame
// is a list of slices (for one writev) in which every record set of at least RefMin bytes is
// the caller's own slice, between encoded pieces. The bytes are exactly those of
// [AppendResponse]. The zero value copies every record set; a FetchWriter reuses its memory
// from frame to frame and is not safe for concurrent use.
type FetchWriter struct {
	// RefMin is the smallest record set sent by reference rather than copied (0: copy all).
	RefMin int

	enc  []byte     // every encoded byte of the frame, record sets below RefMin included
	refs []fetchRef // record sets sent by reference, in frame order
	vec  net.Buffers
}

// fetchRef is a record set that goes into the frame after enc[:at].
type fetchRef struct {
	at   int
	data []byte
}

// Frame encodes resp (at its version) as a response frame with correlation id corr and
// returns the frame as slices to write in order (e.g. with net.Buffers.WriteTo). The
// slices stay valid until the next Frame call. ok is false, and nothing is returned, when
// resp carries fields this encoder does not write (tagged fields, node endpoints, unknown
// tags): the caller then encodes it with AppendResponse.
func (w *FetchWriter) Frame(corr int32, resp *kmsg.FetchResponse) (frame net.Buffers, ok bool) {
	v := resp.Version
	flex := v >= 12
	if v < 4 || (flex && !fetchPlain(resp)) {
		return nil, false
	}
	w.refs = w.refs[:0]
	dst := append(w.enc[:0], 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if flex {
		dst = append(dst, 0) // response header v1: no tags
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(resp.ThrottleMillis))
	if v >= 7 {
		dst = binary.BigEndian.AppendUint16(dst, uint16(resp.ErrorCode))
		dst = binary.BigEndian.AppendUint32(dst, uint32(resp.SessionID))
	}
	dst = appendLen(dst, len(resp.Topics), flex)
	refBytes := 0
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if v <= 12 {
			if flex {
				dst = binary.AppendUvarint(dst, uint64(len(t.Topic))+1)
			} else {
				dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.Topic)))
			}
			dst = append(dst, t.Topic...)
		} else {
			dst = append(dst, t.TopicID[:]...)
		}
		dst = appendLen(dst, len(t.Partitions), flex)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			dst = binary.BigEndian.AppendUint32(dst, uint32(p.Partition))
			dst = binary.BigEndian.AppendUint16(dst, uint16(p.ErrorCode))
			dst = binary.BigEndian.AppendUint64(dst, uint64(p.HighWatermark))
			dst = binary.BigEndian.AppendUint64(dst, uint64(p.LastStableOffset))
			if v >= 5 {
				dst = binary.BigEndian.AppendUint64(dst, uint64(p.LogStartOffset))
			}
			if p.AbortedTransactions == nil {
				dst = appendNullLen(dst, flex)
			} else {
				dst = appendLen(dst, len(p.AbortedTransactions), flex)
				for _, a := range p.AbortedTransactions {
					dst = binary.BigEndian.AppendUint64(dst, uint64(a.ProducerID))
					dst = binary.BigEndian.AppendUint64(dst, uint64(a.FirstOffset))
					if flex {
						dst = append(dst, 0)
					}
				}
			}
			if v >= 11 {
				dst = binary.BigEndian.AppendUint32(dst, uint32(p.PreferredReadReplica))
			}
			if p.RecordBatches == nil {
				dst = appendNullLen(dst, flex)
			} else {
				dst = appendLen(dst, len(p.RecordBatches), flex)
				if w.RefMin > 0 && len(p.RecordBatches) >= w.RefMin {
					w.refs = append(w.refs, fetchRef{at: len(dst), data: p.RecordBatches})
					refBytes += len(p.RecordBatches)
				} else {
					dst = append(dst, p.RecordBatches...)
				}
			}
			if flex {
				dst = append(dst, 0) // partition tags
			}
		}
		if flex {
			dst = append(dst, 0) // topic tags
		}
	}
	if flex {
		dst = append(dst, 0) // response tags
	}
	binary.BigEndian.PutUint32(dst, uint32(len(dst)-4+refBytes))
	w.enc = dst

	vec := w.vec[:0]
	prev := 0
	for _, r := range w.refs {
		if r.at > prev {
			vec = append(vec, dst[prev:r.at])
		}
		vec = append(vec, r.data)
		prev = r.at
	}
	vec = append(vec, dst[prev:])
	w.vec = vec
	clear(w.refs) // drop the references to record sets once framed
	return vec, true
}

// Release drops the references the last frame holds to record sets and shrinks the
// encode buffer if one large frame grew it past max bytes.
func (w *FetchWriter) Release(max int) {
	clear(w.vec[:cap(w.vec)])
	w.vec = w.vec[:0]
	if cap(w.enc) > max {
		w.enc = nil
	}
}

// fetchPlain reports whether a flexible resp has only what Frame encodes: no tagged
// fields (diverging epoch, current leader, snapshot id, node endpoints) and no unknown tags.
func fetchPlain(resp *kmsg.FetchResponse) bool {
	if len(resp.Brokers) > 0 || resp.UnknownTags.Len() > 0 {
		return false
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			p := &t.Partitions[j]
			if p.UnknownTags.Len() > 0 ||
				p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1 || p.DivergingEpoch.UnknownTags.Len() > 0 ||
				p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1 || p.CurrentLeader.UnknownTags.Len() > 0 ||
				p.SnapshotID.EndOffset != -1 || p.SnapshotID.Epoch != -1 || p.SnapshotID.UnknownTags.Len() > 0 {
				return false
			}
			for _, a := range p.AbortedTransactions {
				if a.UnknownTags.Len() > 0 {
					return false
				}
			}
		}
	}
	return true
}

// appendLen appends an array or bytes length: int32, or uvarint n+1 when flexible.
func appendLen(dst []byte, n int, flex bool) []byte {
	if flex {
		return binary.AppendUvarint(dst, uint64(n)+1)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// appendNullLen appends the length of a null array or bytes: int32 -1, or uvarint 0 when
// flexible.
func appendNullLen(dst []byte, flex bool) []byte {
	if flex {
		return append(dst, 0)
	}
	return binary.BigEndian.AppendUint32(dst, 0xffffffff)
}
