package brokerop

import (
	"bytes"
	"strings"
	"testing"
)

// The codec's hot paths: a gateway encoding a Produce request and decoding a Fetch answer, a
// broker decoding the Produce request and encoding the Fetch answer (vectored), and a small
// control op both ways.

func benchProduce() *ProduceReq {
	req := &ProduceReq{Acks: -1, TimeoutMs: 30000}
	for i := range 8 {
		req.Partitions = append(req.Partitions, ProducePartition{Topic: "bench-topic", Partition: int32(i), Records: make([]byte, 16<<10)})
	}
	return req
}

func benchFetch() *FetchResp {
	resp := &FetchResp{}
	for i := range 8 {
		resp.Partitions = append(resp.Partitions, FetchPartitionResp{Topic: "bench-topic", Partition: int32(i), HighWatermark: 1 << 40,
			LastStableOffset: 1 << 40, LogStartOffset: 0, Records: make([]byte, 64<<10)})
	}
	return resp
}

func BenchmarkCodecProduceRequest(b *testing.B) {
	req := benchProduce()
	h := RequestHeader{RequestID: 1, DeadlineMs: 30000, TraceParent: strings.Repeat("0", 55)}
	frame, _ := EncodeRequest(OpProduce, h, req)
	_, payload, _ := ReadFrame(bytes.NewReader(frame), 0)
	b.Run("encode-vec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ProduceRequestFrame(h, req, 4<<10); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := DecodeRequest(OpProduce, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCodecFetchResponse(b *testing.B) {
	resp := benchFetch()
	h := ResponseHeader{RequestID: 1}
	frame, _ := EncodeResponse(OpFetch, h, resp)
	_, payload, _ := ReadFrame(bytes.NewReader(frame), 0)
	b.Run("encode-vec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := FetchResponseFrame(h, resp, 4<<10); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var back FetchResp
			if _, err := DecodeResponse(payload, &back); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCodecHeartbeat(b *testing.B) {
	req := &HeartbeatReq{Group: "g", MemberID: "member-1", Generation: 7}
	h := RequestHeader{RequestID: 1, DeadlineMs: 5000}
	frame, _ := EncodeRequest(OpHeartbeat, h, req)
	_, payload, _ := ReadFrame(bytes.NewReader(frame), 0)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := EncodeRequest(OpHeartbeat, h, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := DecodeRequest(OpHeartbeat, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
