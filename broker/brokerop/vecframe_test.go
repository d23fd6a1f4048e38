package brokerop

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// vecFramesMatch checks, for each refMin, that the slices of frame and of buffers (the
// vectored encodings) join to flat's frame (iteration iter), and returns that frame; check,
// if not nil, looks at frame's slices too.
func vecFramesMatch(t *testing.T, iter int, flat func() ([]byte, error), frame, buffers func(refMin int) ([][]byte, error),
	check func(refMin int, bufs [][]byte)) []byte {
	t.Helper()
	want, err := flat()
	if err != nil {
		t.Fatal(err)
	}
	for _, refMin := range []int{0, 1, 100, 1 << 20} {
		bufs, err := frame(refMin)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Join(bufs, nil); !bytes.Equal(got, want) {
			t.Fatalf("iter %d refMin %d: frame differs from the flat encoding\n got %x\nwant %x", iter, refMin, got[:min(len(got), 64)], want[:min(len(want), 64)])
		}
		if bufs, err := buffers(refMin); err != nil || !bytes.Equal(bytes.Join(bufs, nil), want) {
			t.Fatalf("iter %d refMin %d: the Buffers encoding differs from the flat encoding (%v)", iter, refMin, err)
		}
		if check != nil {
			check(refMin, bufs)
		}
	}
	return want
}

// randBytes returns n random bytes.
func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// FetchResponseFrame's slices, joined, are EncodeResponse's frame for any answer, whichever
// record sets go by reference.
func TestFetchResponseFrameMatchesEncode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 500 {
		resp := &FetchResp{}
		for range rng.IntN(5) {
			p := FetchPartitionResp{
				Topic:            strings.Repeat("t", rng.IntN(300)),
				Partition:        rng.Int32() - 1<<30,
				ErrorCode:        int16(rng.IntN(200) - 100),
				HighWatermark:    rng.Int64() >> rng.IntN(64),
				LastStableOffset: -rng.Int64N(1 << 40),
				LogStartOffset:   rng.Int64N(3) - 1,
			}
			if n := rng.IntN(4); n > 0 {
				p.Records = randBytes(rng, []int{0, 5, 200, 70_000}[n])
			}
			resp.Partitions = append(resp.Partitions, p)
		}
		h := ResponseHeader{RequestID: rng.Uint64()}
		if iter%7 == 0 {
			h.Status, h.Message = StatusInternal, "broken"
		}
		want := vecFramesMatch(t, iter, func() ([]byte, error) { return EncodeResponse(OpFetch, h, resp) },
			func(refMin int) ([][]byte, error) { return FetchResponseFrame(h, resp, refMin) },
			func(refMin int) ([][]byte, error) { return EncodeResponseBuffers(OpFetch, h, resp, refMin) },
			func(refMin int, bufs [][]byte) {
				for _, b := range bufs {
					for i := range resp.Partitions {
						if r := resp.Partitions[i].Records; len(r) >= max(refMin, 1) && len(b) > 0 && &b[0] == &r[0] && len(b) != len(r) {
							t.Fatalf("record set referenced with the wrong length")
						}
					}
				}
			})
		tag, payload, err := ReadFrame(bytes.NewReader(want), 0)
		if err != nil || tag != OpFetch {
			t.Fatalf("ReadFrame: %v %v", tag, err)
		}
		var back FetchResp
		if _, err := DecodeResponse(payload, &back); err != nil {
			t.Fatal(err)
		}
		if h.Status == StatusOK && len(back.Partitions) != len(resp.Partitions) {
			t.Fatalf("decoded %d partitions, want %d", len(back.Partitions), len(resp.Partitions))
		}
	}
}

// Record sets at or above refMin are not copied into the frame.
func TestFetchResponseFrameReferencesRecords(t *testing.T) {
	big := make([]byte, 4096)
	resp := &FetchResp{Partitions: []FetchPartitionResp{{Topic: "a", Records: big}, {Topic: "b", Records: []byte{1, 2}}}}
	bufs, err := FetchResponseFrame(ResponseHeader{RequestID: 9}, resp, 1024)
	if err != nil {
		t.Fatal(err)
	}
	refs := 0
	for _, b := range bufs {
		if len(b) == len(big) && &b[0] == &big[0] {
			refs++
		}
		if len(b) > 0 && &b[0] == &resp.Partitions[1].Records[0] {
			t.Fatal("a small record set was referenced, not copied")
		}
	}
	if refs != 1 || len(bufs) != 3 {
		t.Fatalf("got %d slices with %d references to the big record set, want 3 and 1", len(bufs), refs)
	}
}

// ProduceRequestFrame's slices, joined, are EncodeRequest's frame, and they decode back.
func TestProduceRequestFrameMatchesEncode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 500 {
		req := &ProduceReq{Acks: int16(rng.IntN(3) - 1), TimeoutMs: rng.Int32() - 1<<30}
		for range rng.IntN(5) {
			p := ProducePartition{Topic: strings.Repeat("p", rng.IntN(300)), Partition: rng.Int32N(1000) - 10}
			if n := rng.IntN(4); n > 0 {
				p.Records = randBytes(rng, []int{0, 7, 300, 70_000}[n])
			}
			req.Partitions = append(req.Partitions, p)
		}
		h := RequestHeader{RequestID: rng.Uint64(), DeadlineMs: rng.Uint32(), TraceParent: strings.Repeat("0", rng.IntN(60)), TraceState: "k=v"}
		want := vecFramesMatch(t, iter, func() ([]byte, error) { return EncodeRequest(OpProduce, h, req) },
			func(refMin int) ([][]byte, error) { return ProduceRequestFrame(h, req, refMin) },
			func(refMin int) ([][]byte, error) { return EncodeRequestBuffers(OpProduce, h, req, refMin) },
			nil)
		tag, payload, err := ReadFrame(bytes.NewReader(want), 0)
		if err != nil || tag != OpProduce {
			t.Fatalf("ReadFrame: %v %v", tag, err)
		}
		gh, body, err := DecodeRequest(tag, payload)
		if err != nil || gh.RequestID != h.RequestID || len(body.(*ProduceReq).Partitions) != len(req.Partitions) {
			t.Fatalf("decode: %v %+v", err, gh)
		}
	}
}

// Ops without record sets go out as one slice, the plain frame.
func TestEncodeBuffersOtherOps(t *testing.T) {
	req := &ListOffsetsReq{Partitions: []ListOffsetsPartition{{Topic: "t", Timestamp: -1}}}
	want, _ := EncodeRequest(OpListOffsets, RequestHeader{RequestID: 7}, req)
	if bufs, err := EncodeRequestBuffers(OpListOffsets, RequestHeader{RequestID: 7}, req, 1); err != nil || len(bufs) != 1 || !bytes.Equal(bufs[0], want) {
		t.Fatalf("request: %d slices, %v", len(bufs), err)
	}
	resp := &ListOffsetsResp{}
	want, _ = EncodeResponse(OpListOffsets, ResponseHeader{RequestID: 7}, resp)
	if bufs, err := EncodeResponseBuffers(OpListOffsets, ResponseHeader{RequestID: 7}, resp, 1); err != nil || len(bufs) != 1 || !bytes.Equal(bufs[0], want) {
		t.Fatalf("response: %d slices, %v", len(bufs), err)
	}
}
