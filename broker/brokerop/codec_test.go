package brokerop

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// Byte examples; these are also the examples in the package doc.
func TestGoldenBytes(t *testing.T) {
	cases := []struct {
		name string
		v    any
		hex  string
	}{
		{"fetch partition", &FetchPartition{Topic: "t", Partition: 3, Offset: -1, MaxBytes: 1048576},
			// "t" | zigzag(3)=6 | zigzag(-1)=1 | zigzag(1048576)=2097152 as LEB128 80 80 80 01 |
			// CurrentLeaderEpoch zigzag(0)=0
			"0174" + "06" + "01" + "80808001" + "00"},
		{"metadata req", &MetadataReq{Topics: []string{"a", "bc"}, AutoCreate: true},
			"02" + "0161" + "026263" + "01"},
		{"request header", &RequestHeader{RequestID: 300, DeadlineMs: 5000},
			"ac02" + "8827" + "00" + "00"},
		{"topic id", &DeleteTopicResp{Name: "x", ErrorCode: -1, TopicID: [16]byte{1, 2}},
			"0178" + "01" + "0102" + strings.Repeat("00", 14)},
		{"create topic configs sorted", &CreateTopic{Name: "o", NumPartitions: 3, ReplicationFactor: 1,
			Configs: map[string]string{"retention.ms": "1", "cleanup.policy": "delete"}},
			"016f" + "06" + "02" + "02" + "0e" + hex.EncodeToString([]byte("cleanup.policy")) + "06" +
				hex.EncodeToString([]byte("delete")) + "0c" + hex.EncodeToString([]byte("retention.ms")) + "0131"},
	}
	for _, c := range cases {
		got, err := Marshal(nil, c.v)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if hex.EncodeToString(got) != c.hex {
			t.Errorf("%s:\n got %x\nwant %s", c.name, got, c.hex)
		}
		back := reflect.New(reflect.TypeOf(c.v).Elem()).Interface()
		if err := Unmarshal(got, back); err != nil {
			t.Fatalf("%s: decode: %v", c.name, err)
		}
		if !reflect.DeepEqual(back, c.v) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", c.name, back, c.v)
		}
	}
}

// fill sets random values everywhere in v, so round trips cover every field of every op.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 1)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := int64(r.Uint64())
		v.SetInt(x >> (64 - v.Type().Bits()))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(r.Uint64() >> (64 - v.Type().Bits()))
	case reflect.String:
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		v.SetString(string(b))
	case reflect.Slice:
		n := r.IntN(4)
		if depth > 3 {
			n = 0
		}
		if n == 0 {
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			fill(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fill(r, v.Index(i), depth+1)
		}
	case reflect.Map:
		n := r.IntN(3)
		if n == 0 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i < n; i++ {
			k := reflect.New(v.Type().Key()).Elem()
			fill(r, k, depth+1)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(r, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		if r.IntN(2) == 0 || depth > 3 {
			return
		}
		e := reflect.New(v.Type().Elem())
		fill(r, e.Elem(), depth+1)
		v.Set(e)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i), depth+1)
			}
		}
	}
}

func TestEveryOpRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range Specs() {
		for i := 0; i < 50; i++ {
			req := s.NewRequest()
			fill(r, reflect.ValueOf(req).Elem(), 0)
			h := RequestHeader{RequestID: r.Uint64(), DeadlineMs: r.Uint32(), TraceParent: "00-ab-cd-01"}
			frame, err := EncodeRequest(s.Code, h, req)
			if err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
			tag, payload, err := ReadFrame(bytes.NewReader(frame), 0)
			if err != nil || tag != s.Code {
				t.Fatalf("%s: read frame: tag %v err %v", s.Name, tag, err)
			}
			gh, body, err := DecodeRequest(tag, payload)
			if err != nil {
				t.Fatalf("%s: decode: %v", s.Name, err)
			}
			if gh != h || !reflect.DeepEqual(body, req) {
				t.Fatalf("%s: request round trip mismatch\n got %+v\nwant %+v", s.Name, body, req)
			}

			resp := s.NewResponse()
			fill(r, reflect.ValueOf(resp).Elem(), 0)
			rh := ResponseHeader{RequestID: h.RequestID}
			frame, err = EncodeResponse(s.Code, rh, resp)
			if err != nil {
				t.Fatal(err)
			}
			_, payload, err = ReadFrame(bytes.NewReader(frame), 0)
			if err != nil {
				t.Fatal(err)
			}
			back := s.NewResponse()
			grh, err := DecodeResponse(payload, back)
			if err != nil || grh != rh || !reflect.DeepEqual(back, resp) {
				t.Fatalf("%s: response round trip: err %v\n got %+v\nwant %+v", s.Name, err, back, resp)
			}
		}
	}
}

func TestErrorResponseHasNoBody(t *testing.T) {
	frame, err := EncodeResponse(OpFetch, ResponseHeader{RequestID: 7, Status: StatusUnauthorized, Message: "nope"}, &FetchResp{})
	if err != nil {
		t.Fatal(err)
	}
	_, payload, _ := ReadFrame(bytes.NewReader(frame), 0)
	h, err := DecodeResponse(payload, &FetchResp{})
	if err != nil || h.Status != StatusUnauthorized || h.Message != "nope" || h.RequestID != 7 {
		t.Fatalf("h=%+v err=%v", h, err)
	}
}

func TestMalformedInputs(t *testing.T) {
	good, _ := Marshal(nil, &FetchPartition{Topic: "topic", Partition: 1, Offset: 2, MaxBytes: 3})
	for i := 0; i < len(good); i++ {
		var fp FetchPartition
		if err := Unmarshal(good[:i], &fp); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated at %d: err = %v", i, err)
		}
	}
	var fp FetchPartition
	if err := Unmarshal(append(good, 0), &fp); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
	// i32 overflow: zigzag value 2^33 (FetchPartition is a string, then an i32).
	bad := append([]byte{0x00}, 0x80, 0x80, 0x80, 0x80, 0x20)
	if err := Unmarshal(bad, &FetchPartition{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("overflow accepted: %v", err)
	}
	// bool byte 2, huge count.
	for _, b := range [][]byte{{0x00, 0x02}, {0xff, 0xff, 0xff, 0xff, 0x0f}} {
		var m MetadataReq
		if err := Unmarshal(b, &m); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%x accepted: %v", b, err)
		}
	}
	var dt DeleteTopicsReq
	if err := Unmarshal([]byte{0x01, 0x01, 0xff}, &dt); !errors.Is(err, ErrMalformed) {
		t.Fatalf("invalid utf-8 accepted: %v", err)
	}
}

func TestReadFrameLimits(t *testing.T) {
	f := AppendFrame(nil, OpProduce, make([]byte, 100))
	if _, _, err := ReadFrame(bytes.NewReader(f), 99); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader(f[:50]), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader(nil), 0); err != io.EOF {
		t.Fatalf("empty: %v", err)
	}
	if _, _, err := DecodeRequest(0x7f, nil); err == nil {
		t.Fatal("unknown op accepted")
	}
}

func FuzzDecodeOp(f *testing.F) {
	for _, s := range Specs() {
		frame, _ := EncodeRequest(s.Code, RequestHeader{RequestID: 1}, s.NewRequest())
		f.Add(frame)
	}
	p, _ := EncodeRequest(OpProduce, RequestHeader{RequestID: 9, TraceParent: "x"}, &ProduceReq{Acks: -1,
		Partitions: []ProducePartition{{Topic: "t", Records: []byte{1, 2, 3}}}})
	f.Add(p)
	// The header's principal extension (FlagPrincipal).
	pa, _ := EncodeRequest(OpFetch, RequestHeader{RequestID: 3, Principal: "User:bob", ClientHost: "10.0.0.7"}, &FetchReq{
		Partitions: []FetchPartition{{Topic: "t"}}})
	f.Add(pa)
	f.Fuzz(func(t *testing.T, data []byte) {
		tag, payload, err := ReadFrame(bytes.NewReader(data), 1<<20)
		if err != nil {
			return
		}
		h, body, err := DecodeRequest(tag, payload)
		if err != nil {
			return
		}
		// A successful decode re-encodes to the same bytes (canonical encoding), except for
		// map order and non-minimal varints, which Marshal normalises: decode again and compare.
		again, err := EncodeRequest(tag, h, body)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		_, p2, err := ReadFrame(bytes.NewReader(again), 0)
		if err != nil {
			t.Fatal(err)
		}
		h2, body2, err := DecodeRequest(tag, p2)
		if err != nil || h2 != h || !reflect.DeepEqual(body, body2) {
			t.Fatalf("unstable round trip: %v", err)
		}
	})
}

// FuzzDecodeResponse: any payload decodes as any op's answer or fails with ErrMalformed; a
// decoded answer re-encodes to a frame that decodes to the same answer.
func FuzzDecodeResponse(f *testing.F) {
	specs := Specs()
	for i, s := range specs {
		frame, _ := EncodeResponse(s.Code, ResponseHeader{RequestID: 1}, s.NewResponse())
		_, payload, _ := ReadFrame(bytes.NewReader(frame), 0)
		f.Add(uint8(i), payload)
	}
	fr, _ := EncodeResponse(OpFetch, ResponseHeader{RequestID: 2}, &FetchResp{Partitions: []FetchPartitionResp{{Topic: "t", Records: []byte{1, 2}}}})
	_, payload, _ := ReadFrame(bytes.NewReader(fr), 0)
	f.Add(uint8(1), payload)
	ur, _ := EncodeResponse(OpProduce, ResponseHeader{RequestID: 3, Status: StatusUnauthorized, Message: "no", ErrorCode: 29}, nil)
	_, payload, _ = ReadFrame(bytes.NewReader(ur), 0)
	f.Add(uint8(0), payload)
	f.Fuzz(func(t *testing.T, op uint8, payload []byte) {
		s := specs[int(op)%len(specs)]
		resp := s.NewResponse()
		h, err := DecodeResponse(payload, resp)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: error %v does not wrap ErrMalformed", s.Name, err)
			}
			return
		}
		again, err := EncodeResponse(s.Code, h, resp)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		_, p2, err := ReadFrame(bytes.NewReader(again), 0)
		if err != nil {
			t.Fatal(err)
		}
		back := s.NewResponse()
		h2, err := DecodeResponse(p2, back)
		if err != nil || h2 != h || (h.Status == StatusOK && !reflect.DeepEqual(back, resp)) {
			t.Fatalf("%s: unstable round trip: %v", s.Name, err)
		}
	})
}
