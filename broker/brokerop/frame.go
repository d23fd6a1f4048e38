package brokerop

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// Frame layout of every KafkaOp stream (both directions; one frame per direction per stream):
//
//	tag      u8          the op code (Code)
//	length   uvarint     unsigned LEB128 byte length of payload
//	payload  length bytes
//
// A request payload is postcard(RequestHeader) followed by postcard(<op request struct>); a
// response payload is postcard(ResponseHeader) followed, when Status is StatusOK, by
// postcard(<op response struct>). The writer finishes its side of the stream after the frame.

// DefaultMaxFrame bounds a frame's payload (Kafka's own request limit is 100 MiB).
const DefaultMaxFrame = 128 << 20

// ErrFrameTooLarge is returned for a frame whose declared length exceeds the reader's limit.
var ErrFrameTooLarge = errors.New("brokerop: frame too large")

// RequestHeader precedes every op request body.
//
// Principal and ClientHost are the header's extension: the Kafka principal a gateway acts
// for ("User:bob"; User:ANONYMOUS for an unauthenticated client) and the client's address as
// ACLs name hosts. They are on the wire only when Principal is set, after TraceState, and the
// frame's tag then has FlagPrincipal set, so a frame without them (an older gateway's, or a
// node's own call) is the header as it always was and decodes with no principal. A frame
// whose tag has the flag but whose extension names no principal is malformed.
type RequestHeader struct {
	RequestID   uint64
	DeadlineMs  uint32 // time budget left when sent, in ms; 0 = none
	TraceParent string // W3C traceparent, empty if not traced
	TraceState  string // W3C tracestate
	Principal   string `kafkaop:"ext"` // the Kafka principal the caller acts for; "" none
	ClientHost  string `kafkaop:"ext"` // the client's host, with Principal
}

// FlagPrincipal is set on a request frame's tag when its header carries the principal
// extension (RequestHeader.Principal, ClientHost). Op codes stay below it.
const FlagPrincipal = 0x80

// OpOf is the op code of a request frame's tag (FlagPrincipal cleared).
func OpOf(tag Code) Code { return tag &^ FlagPrincipal }

// requestTag is the tag of a request frame for op c with header h.
func requestTag(c Code, h *RequestHeader) Code {
	if h.Principal != "" {
		return c | FlagPrincipal
	}
	return c
}

// appendHeader appends a frame header: its generated encoding, and for a RequestHeader with a
// principal the extension.
func appendHeader(b []byte, header Message) []byte {
	b = header.AppendPostcard(b)
	switch h := header.(type) {
	case *RequestHeader:
		if h.Principal != "" {
			b = postcard.AppendString(b, h.Principal)
			b = postcard.AppendString(b, h.ClientHost)
		}
	case *ResponseHeader:
		if h.Status == StatusUnauthorized && h.ErrorCode != 0 {
			b = postcard.AppendZigzag(b, int64(h.ErrorCode))
		}
	}
	return b
}

// headerTag is the frame tag for op c with header (a request's may carry FlagPrincipal).
func headerTag(c Code, header Message) Code {
	if h, ok := header.(*RequestHeader); ok {
		return requestTag(c, h)
	}
	return c
}

// Status is the outcome class of a call, in ResponseHeader.
type Status uint8

// Statuses. Anything but StatusOK carries a message and no body.
const (
	StatusOK           Status = 0
	StatusUnknownOp    Status = 1
	StatusMalformed    Status = 2
	StatusUnauthorized Status = 3
	StatusInternal     Status = 4
	StatusDeadline     Status = 5
	StatusUnavailable  Status = 6
)

// ResponseHeader precedes every op response body.
//
// ErrorCode is its extension: the Kafka error code of a StatusUnauthorized answer (the
// broker refused the principal the call acts for, e.g. TOPIC_AUTHORIZATION_FAILED), on the
// wire after Message only for that status and a non-zero code.
type ResponseHeader struct {
	RequestID uint64
	Status    Status
	Message   string
	ErrorCode int16 `kafkaop:"ext"`
}

// AppendFrame appends a frame to b.
func AppendFrame(b []byte, tag Code, payload []byte) []byte {
	b = append(b, byte(tag))
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// ReadFrame reads one frame. max <= 0 means DefaultMaxFrame. A clean EOF before the tag is
// returned as io.EOF; anything cut short is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int) (Code, []byte, error) {
	return ReadFrameInto(r, max, nil)
}

// ReadFrameInto is ReadFrame reading the payload into alloc(n) (which must return at least n
// bytes of capacity; its contents do not matter) instead of fresh memory; nil allocates. A
// caller that pools payload memory passes it here. alloc is called only once the declared
// length passed the max check.
func ReadFrameInto(r io.Reader, max int, alloc func(n int) []byte) (Code, []byte, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	br, ok := r.(io.ByteReader)
	if !ok {
		br = &byteReader{r: r}
	}
	tag, err := br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("brokerop: frame length: %w", err)
	}
	if n > uint64(max) {
		return 0, nil, fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, n, max)
	}
	var payload []byte
	if alloc != nil {
		payload = alloc(int(n))[:n]
	} else {
		payload = make([]byte, n)
	}
	var rr io.Reader = r
	if b, ok := br.(*bufio.Reader); ok {
		rr = b
	}
	if _, err := io.ReadFull(rr, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return Code(tag), payload, nil
}

type byteReader struct {
	r   io.Reader
	one [1]byte
}

func (b *byteReader) ReadByte() (byte, error) {
	_, err := io.ReadFull(b.r, b.one[:])
	return b.one[0], err
}

// EncodeRequest builds the full request frame for op code c; body is a pointer to the op's
// request struct.
func EncodeRequest(c Code, h RequestHeader, body any) ([]byte, error) {
	m, ok := body.(Message)
	if !ok {
		return nil, fmt.Errorf("brokerop: no postcard mapping for %T", body)
	}
	return encodeFrame(c, &h, m), nil
}

// EncodeResponse builds the full response frame; body is ignored unless h.Status is StatusOK.
func EncodeResponse(c Code, h ResponseHeader, body any) ([]byte, error) {
	if h.Status != StatusOK {
		return encodeFrame(c, &h, nil), nil
	}
	m, ok := body.(Message)
	if !ok {
		return nil, fmt.Errorf("brokerop: no postcard mapping for %T", body)
	}
	return encodeFrame(c, &h, m), nil
}

// frameHeadroom is room for the tag and the longest length varint in front of the payload.
const frameHeadroom = 1 + binary.MaxVarintLen64

// encodeFrame encodes header and body into one buffer sized from a hint, leaving headroom in
// front for the tag and length, so the payload is written once and never copied.
func encodeFrame(c Code, header, body Message) []byte {
	hint := frameHeadroom + 64 + header.sizeHint()
	if h, ok := header.(*RequestHeader); ok {
		hint += len(h.Principal) + len(h.ClientHost) + 10
	}
	if body != nil {
		hint += body.sizeHint()
	}
	c = headerTag(c, header)
	buf := appendHeader(make([]byte, frameHeadroom, hint), header)
	if body != nil {
		buf = body.AppendPostcard(buf)
	}
	n := len(buf) - frameHeadroom
	var hdr [frameHeadroom]byte
	hdr[0] = byte(c)
	hl := 1 + binary.PutUvarint(hdr[1:], uint64(n))
	start := frameHeadroom - hl
	copy(buf[start:], hdr[:hl])
	return buf[start:]
}

// DecodeRequest splits a request payload for the frame tag c (an op code, with
// FlagPrincipal when the header carries a principal) into its header and a freshly allocated
// body of the op's request type.
func DecodeRequest(c Code, payload []byte) (RequestHeader, any, error) {
	var h RequestHeader
	spec, ok := Lookup(OpOf(c))
	if !ok {
		return h, nil, fmt.Errorf("brokerop: unknown op %#x", uint8(c))
	}
	rest, err := decodeRequestHeader(payload, &h, c&FlagPrincipal != 0)
	if err != nil {
		return h, nil, err
	}
	body := spec.newReq()
	if err := Unmarshal(rest, body); err != nil {
		return h, nil, err
	}
	return h, body, nil
}

// DecodeResponse decodes a response payload for op c into its header and, when the status is
// OK, into body (a pointer to the op's response type).
func DecodeResponse(payload []byte, body any) (ResponseHeader, error) {
	var h ResponseHeader
	rest, err := decodePrefix(payload, &h)
	if err != nil {
		return h, err
	}
	if h.Status == StatusUnauthorized && len(rest) != 0 {
		d := postcard.NewDecoder(rest)
		if h.ErrorCode, err = d.I16(); err != nil {
			return h, malformed(err)
		}
		if h.ErrorCode == 0 {
			return h, fmt.Errorf("%w: error code extension of 0", ErrMalformed)
		}
		rest = d.Rest()
	}
	if h.Status != StatusOK {
		if len(rest) != 0 {
			return h, fmt.Errorf("%w: body after error status", ErrMalformed)
		}
		return h, nil
	}
	return h, Unmarshal(rest, body)
}

// decodeRequestHeader decodes a request header from the front of payload, with the principal
// extension when ext (the tag's FlagPrincipal), and returns the rest.
func decodeRequestHeader(payload []byte, h *RequestHeader, ext bool) ([]byte, error) {
	d := postcard.NewDecoder(payload)
	if err := h.decode(&d); err != nil {
		return nil, malformed(err)
	}
	if ext {
		var err error
		if h.Principal, err = d.String(); err != nil {
			return nil, malformed(err)
		}
		if h.ClientHost, err = d.String(); err != nil {
			return nil, malformed(err)
		}
		if h.Principal == "" {
			return nil, fmt.Errorf("%w: principal flag without a principal", ErrMalformed)
		}
	}
	return d.Rest(), nil
}

// decodePrefix decodes a header struct from the front of payload and returns the rest.
func decodePrefix(payload []byte, h Message) ([]byte, error) {
	d := postcard.NewDecoder(payload)
	if err := h.decode(&d); err != nil {
		return nil, malformed(err)
	}
	return d.Rest(), nil
}
