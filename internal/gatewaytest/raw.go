package gatewaytest

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/kafkawire"
)

// ReadResponse reads the next response frame from fr, a connection on which a test wrote req
// by hand with correlation id corr, and decodes it as req's answer at req's version. It fails
// tb when the frame does not come, carries another correlation id or does not decode.
func ReadResponse(tb testing.TB, fr *kafkawire.FrameReader, req kmsg.Request, corr int32) kmsg.Response {
	tb.Helper()
	frame, err := fr.Next()
	if err != nil {
		tb.Fatalf("reading response to key %d: %v", req.Key(), err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != corr {
		tb.Fatalf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	body := frame[4:]
	if resp.IsFlexible() && req.Key() != 18 { // a flexible header's tags; ApiVersions keeps the old header
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		tb.Fatalf("decoding response to key %d v%d: %v", req.Key(), req.GetVersion(), err)
	}
	return resp
}
