package brokerop

import (
	"encoding/binary"
	"net"
)

// Vectored frames: the two ops that carry record bytes, Produce requests and Fetch answers,
// can be encoded as slices to write in order (one vectored write, or one stream write per
// slice) in which every record set of at least refMin bytes is the caller's own slice,
// between encoded pieces. The concatenated bytes are exactly those of EncodeRequest /
// EncodeResponse; the record sets must stay unchanged until the slices are written.

// EncodeRequestBuffers is EncodeRequest as slices to write in order: a Produce request's record
// sets of at least refMin bytes by reference (ProduceRequestFrame), any other op in one slice.
func EncodeRequestBuffers(c Code, h RequestHeader, body any, refMin int) (net.Buffers, error) {
	if req, ok := body.(*ProduceReq); ok && c == OpProduce {
		return ProduceRequestFrame(h, req, refMin)
	}
	f, err := EncodeRequest(c, h, body)
	return net.Buffers{f}, err
}

// EncodeResponseBuffers is EncodeResponse as slices to write in order: a Fetch answer's record
// sets of at least refMin bytes by reference (FetchResponseFrame), any other op in one slice.
func EncodeResponseBuffers(c Code, h ResponseHeader, body any, refMin int) (net.Buffers, error) {
	if resp, ok := body.(*FetchResp); ok && c == OpFetch && h.Status == StatusOK {
		return FetchResponseFrame(h, resp, refMin)
	}
	f, err := EncodeResponse(c, h, body)
	return net.Buffers{f}, err
}

// ProduceRequestFrame is EncodeRequest(OpProduce, h, req) as slices, record sets by reference.
func ProduceRequestFrame(h RequestHeader, req *ProduceReq, refMin int) (net.Buffers, error) {
	v, err := newVecFrame(&h, 16+32*len(req.Partitions), refMin)
	if err != nil {
		return nil, err
	}
	v.enc = appendZigzag(v.enc, int64(req.Acks))
	v.enc = appendZigzag(v.enc, int64(req.TimeoutMs))
	v.enc = binary.AppendUvarint(v.enc, uint64(len(req.Partitions)))
	for i := range req.Partitions {
		p := &req.Partitions[i]
		v.string(p.Topic)
		v.enc = appendZigzag(v.enc, int64(p.Partition))
		v.bytes(p.Records)
	}
	return v.frame(OpProduce), nil
}

// FetchResponseFrame is EncodeResponse(OpFetch, h, resp) as slices, record sets by reference,
// so a broker answering from pooled read buffers sends stored record bytes without copying
// them into a frame first.
func FetchResponseFrame(h ResponseHeader, resp *FetchResp, refMin int) (net.Buffers, error) {
	if h.Status != StatusOK {
		f, err := EncodeResponse(OpFetch, h, nil)
		return net.Buffers{f}, err
	}
	v, err := newVecFrame(&h, 16+64*len(resp.Partitions), refMin)
	if err != nil {
		return nil, err
	}
	v.enc = binary.AppendUvarint(v.enc, uint64(len(resp.Partitions)))
	for i := range resp.Partitions {
		p := &resp.Partitions[i]
		v.string(p.Topic)
		v.enc = appendZigzag(v.enc, int64(p.Partition))
		v.enc = appendZigzag(v.enc, int64(p.ErrorCode))
		v.enc = appendZigzag(v.enc, p.HighWatermark)
		v.enc = appendZigzag(v.enc, p.LastStableOffset)
		v.enc = appendZigzag(v.enc, p.LogStartOffset)
		v.bytes(p.Records)
	}
	return v.frame(OpFetch), nil
}

// vecFrame builds a vectored frame: enc holds the encoded pieces (after frameHeadroom bytes
// for the tag and length), out the slices so far; enc[mark:] is not in out yet.
type vecFrame struct {
	enc    []byte
	out    net.Buffers
	mark   int
	refMin int
}

func newVecFrame(header any, hint, refMin int) (*vecFrame, error) {
	enc, err := Marshal(make([]byte, frameHeadroom, frameHeadroom+128+hint), header)
	if err != nil {
		return nil, err
	}
	return &vecFrame{enc: enc, refMin: refMin}, nil
}

func (v *vecFrame) string(s string) {
	v.enc = append(binary.AppendUvarint(v.enc, uint64(len(s))), s...)
}

// bytes encodes a byte string: copied when short, otherwise by reference.
func (v *vecFrame) bytes(p []byte) {
	v.enc = binary.AppendUvarint(v.enc, uint64(len(p)))
	if len(p) == 0 || len(p) < v.refMin {
		v.enc = append(v.enc, p...)
		return
	}
	// enc may move when it grows later; the slices already in out keep the old array, whose
	// bytes no later append touches.
	v.out = append(v.out, v.enc[v.mark:], p)
	v.mark = len(v.enc)
}

// frame finishes the frame with op code tag: the tag and payload length go into the headroom
// in front of the first slice.
func (v *vecFrame) frame(tag Code) net.Buffers {
	if v.mark < len(v.enc) || len(v.out) == 0 {
		v.out = append(v.out, v.enc[v.mark:])
	}
	n := -frameHeadroom
	for _, s := range v.out {
		n += len(s)
	}
	var hdr [frameHeadroom]byte
	hdr[0] = byte(tag)
	hl := 1 + binary.PutUvarint(hdr[1:], uint64(n))
	start := frameHeadroom - hl
	copy(v.out[0][start:], hdr[:hl])
	v.out[0] = v.out[0][start:]
	return v.out
}

func appendZigzag(b []byte, x int64) []byte {
	return binary.AppendUvarint(b, uint64(x<<1)^uint64(x>>63))
}
