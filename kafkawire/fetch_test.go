package kafkawire

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// randomFetchResponse builds a Fetch response of version v with random topics, partitions
// and record sets (null, empty, small and large) and aborted transactions.
func randomFetchResponse(r *rand.Rand, v int16) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(v)
	resp.ThrottleMillis = r.Int32()
	resp.ErrorCode = int16(r.IntN(100))
	resp.SessionID = r.Int32()
	for range r.IntN(4) {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = string(bytes.Repeat([]byte{'t'}, r.IntN(300)))
		for k := range t.TopicID {
			t.TopicID[k] = byte(r.IntN(256))
		}
		for range r.IntN(5) {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition, p.ErrorCode = r.Int32(), int16(r.IntN(100))
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = r.Int64(), r.Int64(), r.Int64()
			p.PreferredReadReplica = r.Int32()
			switch r.IntN(3) {
			case 0:
				p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			case 1:
				for range 1 + r.IntN(3) {
					p.AbortedTransactions = append(p.AbortedTransactions, kmsg.FetchResponseTopicPartitionAbortedTransaction{ProducerID: r.Int64(), FirstOffset: r.Int64()})
				}
			}
			switch r.IntN(4) {
			case 0: // null
			case 1:
				p.RecordBatches = []byte{}
			default:
				p.RecordBatches = make([]byte, r.IntN(3000))
				for k := range p.RecordBatches {
					p.RecordBatches[k] = byte(r.IntN(256))
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func TestFetchWriterMatchesKmsg(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var w FetchWriter
	for i := range 2000 {
		v := int16(4 + i%13)
		resp := randomFetchResponse(r, v)
		w.RefMin = []int{0, 1, 100, 1000}[i%4]
		corr := r.Int32()
		frame, ok := w.Frame(corr, resp)
		if !ok {
			t.Fatalf("v%d: plain response refused", v)
		}
		var got []byte
		for _, b := range frame {
			got = append(got, b...)
		}
		want := AppendResponse(nil, corr, resp)
		if !bytes.Equal(got, want) {
			t.Fatalf("v%d refMin %d: frame differs from AppendResponse\n got %x\nwant %x", v, w.RefMin, got, want)
		}
		// Record sets at or above RefMin are the caller's slices, not copies.
		refs := 0
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if w.RefMin > 0 && len(p.RecordBatches) >= w.RefMin {
					refs++
					found := false
					for _, b := range frame {
						if len(b) > 0 && len(b) == len(p.RecordBatches) && &b[0] == &p.RecordBatches[0] {
							found = true
						}
					}
					if !found {
						t.Fatalf("v%d: record set of %d bytes was copied (RefMin %d)", v, len(p.RecordBatches), w.RefMin)
					}
				}
			}
		}
		if len(frame) < 2*refs {
			t.Fatalf("v%d: %d slices for %d references", v, len(frame), refs)
		}
		// The decoded frame gives back the response.
		dec := kmsg.NewPtrFetchResponse()
		dec.SetVersion(v)
		hdr := 8
		if v >= 12 {
			hdr = 9
		}
		if err := dec.ReadFrom(got[hdr:]); err != nil {
			t.Fatalf("v%d: decode: %v", v, err)
		}
	}
	w.Release(0)
	if w.enc != nil {
		t.Fatal("Release(0) kept the encode buffer")
	}
}

func TestFetchWriterRefusesTaggedFields(t *testing.T) {
	var w FetchWriter
	for _, set := range []func(*kmsg.FetchResponse){
		func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].CurrentLeader.LeaderID = 3 },
		func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].DivergingEpoch.Epoch = 3 },
		func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].SnapshotID.Epoch = 3 },
		func(r *kmsg.FetchResponse) { r.Brokers = []kmsg.FetchResponseBroker{{NodeID: 1, Host: "h"}} },
		func(r *kmsg.FetchResponse) { r.UnknownTags.Set(9, []byte{1}) },
		func(r *kmsg.FetchResponse) { r.Topics[0].UnknownTags.Set(9, []byte{1}) },
	} {
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(16)
		tp := kmsg.NewFetchResponseTopic()
		tp.Partitions = []kmsg.FetchResponseTopicPartition{kmsg.NewFetchResponseTopicPartition()}
		resp.Topics = []kmsg.FetchResponseTopic{tp}
		if _, ok := w.Frame(1, resp); !ok {
			t.Fatal("plain v16 response refused")
		}
		set(resp)
		if _, ok := w.Frame(1, resp); ok {
			t.Fatal("response with tagged fields accepted")
		}
		resp.SetVersion(11) // not flexible: tagged fields are not on the wire
		frame, ok := w.Frame(1, resp)
		if !ok {
			t.Fatal("v11 response refused")
		}
		var got []byte
		for _, b := range frame {
			got = append(got, b...)
		}
		if want := AppendResponse(nil, 1, resp); !bytes.Equal(got, want) {
			t.Fatalf("v11 frame differs\n got %x\nwant %x", got, want)
		}
	}
	old := kmsg.NewPtrFetchResponse()
	old.SetVersion(3)
	if _, ok := w.Frame(1, old); ok {
		t.Fatal("v3 response accepted")
	}
}
