package brokerop

import (
	"encoding/binary"
	"net"
)

// Vectored frames: the structs that carry record sets (a []byte field tagged
// kafkaop:"records", at any depth: Produce requests and Fetch answers) get a generated
// by-reference encoder (appendVec), so their frames can be encoded as slices to write in
// order (one vectored write, or one stream write per slice) in which every record set of at
// least refMin bytes is the caller's own slice, between encoded pieces. The concatenated bytes
// are exactly those of EncodeRequest / EncodeResponse; the record sets must stay unchanged
// until the slices are written.

// vecMessage is a Message with record sets (its appendVec is generated).
type vecMessage interface {
	Message
	appendVec(w *vecFrame)
	vecHint() int // sizeHint without the record sets written by reference
}

// EncodeRequestBuffers is EncodeRequest as slices to write in order: record sets of at least
// refMin bytes by reference, an op without record sets in one slice.
func EncodeRequestBuffers(c Code, h RequestHeader, body any, refMin int) (net.Buffers, error) {
	if m, ok := body.(vecMessage); ok {
		return vecFrameOf(c, &h, m, refMin), nil
	}
	f, err := EncodeRequest(c, h, body)
	return net.Buffers{f}, err
}

// EncodeResponseBuffers is EncodeResponse as slices to write in order: record sets of at
// least refMin bytes by reference, an op without record sets (or an error) in one slice.
func EncodeResponseBuffers(c Code, h ResponseHeader, body any, refMin int) (net.Buffers, error) {
	if m, ok := body.(vecMessage); ok && h.Status == StatusOK {
		return vecFrameOf(c, &h, m, refMin), nil
	}
	f, err := EncodeResponse(c, h, body)
	return net.Buffers{f}, err
}

func vecFrameOf(c Code, header Message, body vecMessage, refMin int) net.Buffers {
	v := newVecFrame(header, body.vecHint(), refMin)
	body.appendVec(v)
	return v.frame(headerTag(c, header))
}

// ProduceRequestFrame is EncodeRequest(OpProduce, h, req) as slices, record sets by reference.
func ProduceRequestFrame(h RequestHeader, req *ProduceReq, refMin int) (net.Buffers, error) {
	return vecFrameOf(OpProduce, &h, req, refMin), nil
}

// FetchResponseFrame is EncodeResponse(OpFetch, h, resp) as slices, record sets by reference,
// so a broker answering from pooled read buffers sends stored record bytes without copying
// them into a frame first.
func FetchResponseFrame(h ResponseHeader, resp *FetchResp, refMin int) (net.Buffers, error) {
	if h.Status != StatusOK {
		f, err := EncodeResponse(OpFetch, h, nil)
		return net.Buffers{f}, err
	}
	return vecFrameOf(OpFetch, &h, resp, refMin), nil
}

// vecFrame builds a vectored frame: enc holds the encoded pieces (after frameHeadroom bytes
// for the tag and length), out the slices so far; enc[mark:] is not in out yet.
type vecFrame struct {
	enc    []byte
	out    net.Buffers
	mark   int
	refMin int
}

func newVecFrame(header Message, hint, refMin int) *vecFrame {
	return &vecFrame{enc: appendHeader(make([]byte, frameHeadroom, frameHeadroom+128+hint), header), refMin: refMin}
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
