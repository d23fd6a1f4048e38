package kafkawire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// API keys the gateway and its helpers refer to by name.
const (
	KeyProduce         int16 = 0
	KeyFetch           int16 = 1
	KeyListOffsets     int16 = 2
	KeyMetadata        int16 = 3
	KeyControlledShut  int16 = 7
	KeyFindCoordinator int16 = 10
	KeyApiVersions     int16 = 18
	KeyCreateTopics    int16 = 19
	KeyDeleteTopics    int16 = 20
)

// Errors from ParseHeader and DecodeBody.
var (
	ErrTruncated  = errors.New("kafkawire: truncated request")
	ErrUnknownKey = errors.New("kafkawire: unknown api key")
)

// RequestHeader is a parsed Kafka request header (v0, v1 or v2).
type RequestHeader struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	// ClientID is the client id; empty when absent or null (Kafka treats null as "").
	ClientID string
	// Flexible is true when the header carried tagged fields (v2), i.e. when the request
	// version is flexible.
	Flexible bool
}

// ParseHeader parses a request frame's header and returns it with the body that follows.
// The body aliases frame. It fails with ErrTruncated when the frame ends inside the header
// and with ErrUnknownKey (header still filled in as far as read) for a key kmsg does not
// know; the version is not checked here.
func ParseHeader(frame []byte) (RequestHeader, []byte, error) {
	var h RequestHeader
	if len(frame) < 8 {
		return h, nil, ErrTruncated
	}
	h.APIKey = int16(binary.BigEndian.Uint16(frame[0:]))
	h.APIVersion = int16(binary.BigEndian.Uint16(frame[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(frame[4:]))
	rest := frame[8:]
	req := kmsg.RequestForKey(h.APIKey)
	if req == nil {
		return h, nil, fmt.Errorf("%w %d", ErrUnknownKey, h.APIKey)
	}
	if h.APIKey == KeyControlledShut && h.APIVersion == 0 {
		return h, rest, nil // header v0: no client id
	}
	if len(rest) < 2 {
		return h, nil, ErrTruncated
	}
	if n := int16(binary.BigEndian.Uint16(rest)); n >= 0 {
		if len(rest) < 2+int(n) {
			return h, nil, ErrTruncated
		}
		h.ClientID = string(rest[2 : 2+int(n)])
		rest = rest[2+int(n):]
	} else if n == -1 {
		rest = rest[2:]
	} else {
		return h, nil, fmt.Errorf("%w: client id length %d", ErrTruncated, n)
	}
	req.SetVersion(h.APIVersion)
	if h.APIVersion >= 0 && req.IsFlexible() {
		h.Flexible = true
		var ok bool
		rest, ok = skipTags(rest)
		if !ok {
			return h, nil, ErrTruncated
		}
	}
	return h, rest, nil
}

// skipTags skips a tagged-field section (uvarint count, then uvarint tag, uvarint size and
// size bytes per field).
func skipTags(b []byte) ([]byte, bool) {
	n, b, ok := uvarint(b)
	if !ok {
		return nil, false
	}
	for ; n > 0; n-- {
		if _, b, ok = uvarint(b); !ok {
			return nil, false
		}
		var size uint64
		if size, b, ok = uvarint(b); !ok || size > uint64(len(b)) {
			return nil, false
		}
		b = b[size:]
	}
	return b, true
}

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<31 {
		return 0, nil, false
	}
	return v, b[n:], true
}

// DecodeBody decodes a request body of the key and version in h with kmsg. Strings in the
// result are copies; byte fields (record batches) alias body.
func DecodeBody(h RequestHeader, body []byte) (kmsg.Request, error) {
	req := kmsg.RequestForKey(h.APIKey)
	if req == nil {
		return nil, fmt.Errorf("%w %d", ErrUnknownKey, h.APIKey)
	}
	if h.APIVersion < 0 || h.APIVersion > req.MaxVersion() {
		return nil, fmt.Errorf("kafkawire: key %d version %d beyond the codec's range", h.APIKey, h.APIVersion)
	}
	req.SetVersion(h.APIVersion)
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("kafkawire: decode key %d v%d: %w", h.APIKey, h.APIVersion, err)
	}
	return req, nil
}

// DecodeRequest parses the header and decodes the body of one request frame.
func DecodeRequest(frame []byte) (RequestHeader, kmsg.Request, error) {
	h, body, err := ParseHeader(frame)
	if err != nil {
		return h, nil, err
	}
	req, err := DecodeBody(h, body)
	return h, req, err
}

// AppendResponse appends a complete response frame (size prefix, response header, body) to
// dst. The response header is v1 (with an empty tagged-field section) when resp is flexible,
// except for ApiVersions, whose response header is always v0.
func AppendResponse(dst []byte, correlationID int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if resp.IsFlexible() && resp.Key() != KeyApiVersions {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// VersionRange is an inclusive range of versions of one API key.
type VersionRange struct {
	Key, Min, Max int16
}

// ApiVersionsResponse builds the ApiVersions answer for a request of the given version
// listing ranges (in the order given). When the requested version is not within supported,
// it follows Kafka (KIP-511): the answer is a v0 body with UNSUPPORTED_VERSION and the same
// list, so the client can pick a version both sides speak.
func ApiVersionsResponse(version int16, supported VersionRange, ranges []VersionRange) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	if version < supported.Min || version > supported.Max {
		resp.SetVersion(0)
		resp.ErrorCode = ErrUnsupportedVersion
	} else {
		resp.SetVersion(version)
	}
	resp.ApiKeys = make([]kmsg.ApiVersionsResponseApiKey, 0, len(ranges))
	for _, r := range ranges {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = r.Key, r.Min, r.Max
		resp.ApiKeys = append(resp.ApiKeys, k)
	}
	return resp
}
