package kafkawire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// encodeRequest builds a request frame the way a client does (kmsg's formatter).
func encodeRequest(t testing.TB, req kmsg.Request, corr int32, clientID *string) []byte {
	t.Helper()
	f := kmsg.NewRequestFormatter()
	if clientID != nil {
		f = kmsg.NewRequestFormatter(kmsg.FormatterClientID(*clientID))
	}
	return f.AppendRequest(nil, req, corr)
}

func TestFrameReader(t *testing.T) {
	var stream []byte
	stream = AppendFrame(stream, []byte("hello"))
	stream = AppendFrame(stream, nil)
	stream = AppendFrame(stream, bytes.Repeat([]byte{7}, 100000)) // larger than the bufio buffer
	fr := NewFrameReader(bytes.NewReader(stream), 0)
	for i, want := range [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{7}, 100000)} {
		got, err := fr.Next()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, err %v; want %d bytes", i, len(got), err, len(want))
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("after last frame: got %v, want io.EOF", err)
	}
}

func TestFrameReaderErrors(t *testing.T) {
	cases := []struct {
		name  string
		in    []byte
		max   int
		error error
	}{
		{"truncated size", []byte{0, 0}, 0, io.ErrUnexpectedEOF},
		{"truncated body", []byte{0, 0, 0, 9, 1, 2, 3}, 0, io.ErrUnexpectedEOF},
		{"size cut after prefix", []byte{0, 0, 0, 1}, 0, io.ErrUnexpectedEOF},
		{"oversize", []byte{0, 0, 1, 1, 0}, 256, ErrFrameTooLarge},
		{"negative", []byte{0xff, 0xff, 0xff, 0xff}, 0, ErrFrameTooLarge},
		{"default max", binary.BigEndian.AppendUint32(nil, DefaultMaxFrame+1), 0, ErrFrameTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewFrameReader(bytes.NewReader(c.in), c.max).Next()
			if !errors.Is(err, c.error) {
				t.Fatalf("got %v, want %v", err, c.error)
			}
		})
	}
	// Exactly at the maximum is accepted.
	fr := NewFrameReader(bytes.NewReader(AppendFrame(nil, make([]byte, 256))), 256)
	if b, err := fr.Next(); err != nil || len(b) != 256 {
		t.Fatalf("frame at max: %d bytes, %v", len(b), err)
	}
}

func TestParseHeaderVersions(t *testing.T) {
	id := "client-1"
	// Header v1: Metadata v5 (not flexible).
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(5)
	topic := kmsg.NewMetadataRequestTopic()
	topic.Topic = kmsg.StringPtr("orders")
	md.Topics = append(md.Topics, topic)
	frame := encodeRequest(t, md, 42, &id)[4:]
	h, req, err := DecodeRequest(frame)
	if err != nil {
		t.Fatal(err)
	}
	if h.APIKey != 3 || h.APIVersion != 5 || h.CorrelationID != 42 || h.ClientID != id || h.Flexible {
		t.Fatalf("header v1: got %+v", h)
	}
	if got := req.(*kmsg.MetadataRequest); len(got.Topics) != 1 || *got.Topics[0].Topic != "orders" {
		t.Fatalf("body: %+v", got)
	}

	// Header v2: Metadata v12 (flexible), null client id.
	md.SetVersion(12)
	frame = encodeRequest(t, md, 7, nil)[4:]
	h, req, err = DecodeRequest(frame)
	if err != nil {
		t.Fatal(err)
	}
	if h.APIVersion != 12 || h.CorrelationID != 7 || h.ClientID != "" || !h.Flexible {
		t.Fatalf("header v2: got %+v", h)
	}
	if got := req.(*kmsg.MetadataRequest); len(got.Topics) != 1 || *got.Topics[0].Topic != "orders" {
		t.Fatalf("body v12: %+v", got)
	}

	// Header v2 with a non-empty tagged-field section in the header.
	hdr := []byte{0, 3, 0, 12, 0, 0, 0, 9, 0xff, 0xff, 2, 0, 1, 0xaa, 5, 0}
	frame = append(hdr, md.AppendTo(nil)...)
	h, req, err = DecodeRequest(frame)
	if err != nil || h.CorrelationID != 9 || len(req.(*kmsg.MetadataRequest).Topics) != 1 {
		t.Fatalf("header tags: %+v %v", h, err)
	}

	// Header v0: ControlledShutdown v0 has no client id.
	frame = []byte{0, 7, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3}
	h, req, err = DecodeRequest(frame)
	if err != nil || h.APIKey != 7 || req.(*kmsg.ControlledShutdownRequest).BrokerID != 3 {
		t.Fatalf("header v0: %+v %v", h, err)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrTruncated},
		{"short", []byte{0, 3, 0, 1, 0, 0}, ErrTruncated},
		{"no client id", []byte{0, 3, 0, 1, 0, 0, 0, 1}, ErrTruncated},
		{"client id cut", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 5, 'a'}, ErrTruncated},
		{"bad client id length", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xf0}, ErrTruncated},
		{"tags cut", []byte{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 1, 0, 9}, ErrTruncated},
		{"unknown key", []byte{0x7f, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff}, ErrUnknownKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := ParseHeader(c.frame); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// A truncated body is a decode error, not a panic.
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(9)
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = make([]byte, 100)
	pt.Partitions = append(pt.Partitions, pp)
	p.Topics = append(p.Topics, pt)
	frame := encodeRequest(t, p, 1, nil)[4:]
	if _, _, err := DecodeRequest(frame[:len(frame)-50]); err == nil {
		t.Fatal("truncated produce body decoded without error")
	}
	// A version beyond kmsg's range is refused by DecodeBody.
	if _, err := DecodeBody(RequestHeader{APIKey: 3, APIVersion: 99}, nil); err == nil {
		t.Fatal("version 99 decoded")
	}
}

func TestAppendResponseHeaders(t *testing.T) {
	// Flexible Metadata response: header v1 (tag byte after the correlation id).
	mr := kmsg.NewPtrMetadataResponse()
	mr.SetVersion(12)
	frame := AppendResponse(nil, 5, mr)
	body := mr.AppendTo(nil)
	if got := int(binary.BigEndian.Uint32(frame)); got != len(frame)-4 || got != 4+1+len(body) {
		t.Fatalf("flexible size %d, frame %d, body %d", got, len(frame), len(body))
	}
	if frame[8] != 0 || binary.BigEndian.Uint32(frame[4:]) != 5 {
		t.Fatalf("flexible header bytes % x", frame[:9])
	}
	back := kmsg.NewPtrMetadataResponse()
	back.SetVersion(12)
	if err := back.ReadFrom(frame[9:]); err != nil {
		t.Fatal(err)
	}

	// Non-flexible: header v0.
	mr.SetVersion(5)
	frame = AppendResponse([]byte("prefix"), 6, mr)[6:]
	if got := int(binary.BigEndian.Uint32(frame)); got != 4+len(mr.AppendTo(nil)) {
		t.Fatalf("v0 header size %d", got)
	}

	// ApiVersions v3 is flexible in its body but its response header is always v0.
	av := ApiVersionsResponse(3, VersionRange{18, 0, 3}, []VersionRange{{0, 3, 9}, {18, 0, 3}})
	frame = AppendResponse(nil, 8, av)
	if got := int(binary.BigEndian.Uint32(frame)); got != 4+len(av.AppendTo(nil)) {
		t.Fatalf("ApiVersions header not v0: size %d", got)
	}
	back2 := kmsg.NewPtrApiVersionsResponse()
	back2.SetVersion(3)
	if err := back2.ReadFrom(frame[8:]); err != nil || len(back2.ApiKeys) != 2 || back2.ApiKeys[0].MaxVersion != 9 {
		t.Fatalf("ApiVersions v3 parse: %v %+v", err, back2)
	}
}

func TestApiVersionsUnsupported(t *testing.T) {
	ranges := []VersionRange{{0, 3, 11}, {18, 0, 4}}
	av := ApiVersionsResponse(9, VersionRange{18, 0, 4}, ranges)
	if av.GetVersion() != 0 || av.ErrorCode != ErrUnsupportedVersion {
		t.Fatalf("got v%d error %d", av.GetVersion(), av.ErrorCode)
	}
	frame := AppendResponse(nil, 1, av)
	// A v0 body: error code, then the api list (int32 count, 6 bytes per entry).
	body := frame[8:]
	if len(body) != 2+4+6*len(ranges) || binary.BigEndian.Uint16(body) != 35 {
		t.Fatalf("v0 body % x", body)
	}
	back := kmsg.NewPtrApiVersionsResponse()
	back.SetVersion(0)
	if err := back.ReadFrom(body); err != nil || back.ApiKeys[1].ApiKey != 18 || back.ApiKeys[1].MaxVersion != 4 {
		t.Fatalf("v0 parse: %v %+v", err, back)
	}
	if ok := ApiVersionsResponse(2, VersionRange{18, 0, 4}, ranges); ok.ErrorCode != 0 || ok.GetVersion() != 2 {
		t.Fatalf("supported version answered with %d v%d", ok.ErrorCode, ok.GetVersion())
	}
}

// FuzzDecodeRequest feeds arbitrary frames to the request decoder. Invariants: it never
// panics; a frame that decodes re-encodes (header + body) into a frame that decodes to the
// same header and the same body encoding.
func FuzzDecodeRequest(f *testing.F) {
	id := "fuzz"
	md := kmsg.NewPtrMetadataRequest()
	for _, v := range []int16{0, 4, 9, 12} {
		md.SetVersion(v)
		f.Add(encodeRequest(f, md, 1, &id)[4:])
	}
	p := kmsg.NewPtrProduceRequest()
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "t"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = []byte("batch")
	pt.Partitions = append(pt.Partitions, pp)
	p.Topics = append(p.Topics, pt)
	for _, v := range []int16{3, 8, 9, 11} {
		p.SetVersion(v)
		f.Add(encodeRequest(f, p, 2, nil)[4:])
	}
	fe := kmsg.NewPtrFetchRequest()
	for _, v := range []int16{4, 11, 12, 13, 16} {
		fe.SetVersion(v)
		f.Add(encodeRequest(f, fe, 3, &id)[4:])
	}
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	f.Add(encodeRequest(f, av, 4, &id)[4:])
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, req, err := DecodeRequest(frame)
		if err != nil {
			return
		}
		if h.APIKey == KeyControlledShut && h.APIVersion == 0 {
			return // header v0: kmsg's formatter always writes a client id
		}
		again := kmsg.NewRequestFormatter()
		if h.ClientID != "" {
			again = kmsg.NewRequestFormatter(kmsg.FormatterClientID(h.ClientID))
		}
		re := again.AppendRequest(nil, req, h.CorrelationID)
		h2, req2, err := DecodeRequest(re[4:])
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if h2.APIKey != h.APIKey || h2.APIVersion != h.APIVersion || h2.CorrelationID != h.CorrelationID || h2.ClientID != h.ClientID {
			t.Fatalf("header changed: %+v vs %+v", h, h2)
		}
		if !bytes.Equal(req.AppendTo(nil), req2.AppendTo(nil)) {
			t.Fatal("body encoding changed across a round trip")
		}
	})
}

func TestFrameReaderLargeFrames(t *testing.T) {
	for _, n := range []int{growChunk, growChunk + 1, 3*growChunk + 17, 9 << 20} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		fr := NewFrameReader(bytes.NewReader(AppendFrame(nil, payload)), 0)
		got, err := fr.Next()
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("%d bytes: got %d, %v", n, len(got), err)
		}
		// Cut short: an error, not a partial frame.
		fr = NewFrameReader(bytes.NewReader(AppendFrame(nil, payload)[:n/2]), 0)
		if _, err := fr.Next(); err != io.ErrUnexpectedEOF {
			t.Fatalf("%d bytes cut: %v", n, err)
		}
	}
	// A huge announced size with no data does not allocate the announced size.
	allocs := testing.AllocsPerRun(5, func() {
		NewFrameReader(bytes.NewReader(binary.BigEndian.AppendUint32(nil, 90<<20)), 0).Next()
	})
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	NewFrameReader(bytes.NewReader(binary.BigEndian.AppendUint32(nil, 90<<20)), 0).Next()
	runtime.ReadMemStats(&ms1)
	if grew := ms1.TotalAlloc - ms0.TotalAlloc; grew > 4<<20 {
		t.Fatalf("announced 90 MiB with no data allocated %d bytes (%v allocs)", grew, allocs)
	}
}

// TestAppendResponseNoAllocs: encoding a response into a reused buffer does not allocate.
func TestAppendResponseNoAllocs(t *testing.T) {
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(9)
	rt := kmsg.NewProduceResponseTopic()
	rt.Topic = "t"
	rt.Partitions = append(rt.Partitions, kmsg.NewProduceResponseTopicPartition())
	resp.Topics = append(resp.Topics, rt)
	buf := AppendResponse(nil, 1, resp)
	if n := testing.AllocsPerRun(100, func() { buf = AppendResponse(buf[:0], 2, resp) }); n != 0 {
		t.Fatalf("%v allocations per response", n)
	}
}

// TestFrameReaderLargeFrameGrowsFromSpare: a frame larger than the recycled one it is read into
// grows from that memory, not from a fresh growChunk doubled up to its size (which allocated
// 31 MiB for a 16 MiB frame), and arrives intact.
func TestFrameReaderLargeFrameGrowsFromSpare(t *testing.T) {
	sizes := []int{3 << 20, 5 << 20, 16 << 20}
	var stream []byte
	for i, n := range sizes {
		payload := make([]byte, n)
		for j := range payload {
			payload[j] = byte(i + j*7)
		}
		stream = AppendFrame(stream, payload)
	}
	fr := NewFrameReader(&chunkReader{data: stream, chunks: []int{100_000, 1 << 20, 7}}, 0)
	var spare []byte
	for i, n := range sizes {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		got, err := fr.NextReuse(spare)
		runtime.ReadMemStats(&ms1)
		if err != nil || len(got) != n {
			t.Fatalf("frame %d: %d bytes, %v", i, len(got), err)
		}
		for j := range got {
			if got[j] != byte(i+j*7) {
				t.Fatalf("frame %d differs at byte %d", i, j)
			}
		}
		if i > 0 {
			if grew := ms1.TotalAlloc - ms0.TotalAlloc; grew > uint64(n)*7/4 { // the old way: 15 and 31 MiB
				t.Fatalf("frame %d of %d bytes read into a %d-byte spare allocated %d bytes", i, n, cap(spare), grew)
			}
		}
		spare = got
	}
}
