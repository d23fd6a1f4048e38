package brokerop

import (
	"encoding/binary"
	"net"
)

// FetchResponseFrame is EncodeResponse(OpFetch, h, resp) as slices to write in order (one
// vectored write, or one stream write per slice): every partition's Records of at least
// refMin bytes is resp's own slice, between encoded pieces, so a broker answering from
// pooled read buffers sends stored record bytes without copying them into a frame first.
// The concatenated bytes are exactly EncodeResponse's; resp's records must stay unchanged
// until the slices are written.
func FetchResponseFrame(h ResponseHeader, resp *FetchResp, refMin int) (net.Buffers, error) {
	if h.Status != StatusOK {
		f, err := EncodeResponse(OpFetch, h, nil)
		return net.Buffers{f}, err
	}
	small := 64 + 64*len(resp.Partitions)
	for i := range resp.Partitions {
		p := &resp.Partitions[i]
		small += len(p.Topic)
		if len(p.Records) < refMin {
			small += len(p.Records)
		}
	}
	enc, err := Marshal(make([]byte, frameHeadroom, frameHeadroom+small+len(h.Message)), &h)
	if err != nil {
		return nil, err
	}
	var out net.Buffers
	mark := 0 // enc[mark:] is not yet in out; out[0] starts with the headroom
	enc = binary.AppendUvarint(enc, uint64(len(resp.Partitions)))
	for i := range resp.Partitions {
		p := &resp.Partitions[i]
		enc = binary.AppendUvarint(enc, uint64(len(p.Topic)))
		enc = append(enc, p.Topic...)
		enc = appendZigzag(enc, int64(p.Partition))
		enc = appendZigzag(enc, int64(p.ErrorCode))
		enc = appendZigzag(enc, p.HighWatermark)
		enc = appendZigzag(enc, p.LastStableOffset)
		enc = appendZigzag(enc, p.LogStartOffset)
		enc = binary.AppendUvarint(enc, uint64(len(p.Records)))
		if len(p.Records) < refMin || len(p.Records) == 0 {
			enc = append(enc, p.Records...)
			continue
		}
		// enc may move when it grows later; the slices already in out keep the old array,
		// whose bytes no later append touches.
		out = append(out, enc[mark:], p.Records)
		mark = len(enc)
	}
	if mark < len(enc) || len(out) == 0 {
		out = append(out, enc[mark:])
	}
	n := -frameHeadroom
	for _, s := range out {
		n += len(s)
	}
	var hdr [frameHeadroom]byte
	hdr[0] = byte(OpFetch)
	hl := 1 + binary.PutUvarint(hdr[1:], uint64(n))
	start := frameHeadroom - hl
	copy(out[0][start:], hdr[:hl])
	out[0] = out[0][start:]
	return out, nil
}

func appendZigzag(b []byte, x int64) []byte {
	return binary.AppendUvarint(b, uint64(x<<1)^uint64(x>>63))
}
