package gateway_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// Per-item codes keep the request's order when the gateway answers some items itself: a
// ShareAcknowledge partition of an unknown topic id is UNKNOWN_TOPIC_ID and never reaches the
// backend, and the partitions around it get the backend's codes for them.
func TestShareItemCodesInRequestOrder(t *testing.T) {
	addr, _ := startShareServer(t, share.Config{AutoOffsetReset: "earliest"})
	cl := kafkaclients.KgoClient(t, addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("q"), kgo.ProducerLinger(0))
	for _, v := range []string{"a", "b"} {
		if err := cl.ProduceSync(context.Background(), kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s := &shareClient{t: t, c: dial(t, addr)}
	md := s.do(&kmsg.MetadataRequest{Topics: []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("q")}}}, 12).(*kmsg.MetadataResponse)
	s.topic = md.Topics[0].TopicID
	s.heartbeat("g", "A", 0, []string{"q"})
	if runs, _, _ := s.fetched(s.fetch(1, "g", "A", 0, 10)); len(runs) != 1 {
		t.Fatalf("fetched %v", runs)
	}

	req := kmsg.NewPtrShareAcknowledgeRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr("g"), kmsg.StringPtr("A"), 1
	topic := func(id [16]byte, parts ...int32) {
		rt := kmsg.NewShareAcknowledgeRequestTopic()
		rt.TopicID = id
		for _, p := range parts {
			rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
			rp.Partition = p
			b := kmsg.NewShareAcknowledgeRequestTopicPartitionAcknowledgementBatch()
			b.FirstOffset, b.LastOffset, b.AcknowledgeTypes = 1, 1, []int8{1}
			if p == 0 {
				b.FirstOffset = 0 // accept 0 and 1
			}
			rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, b)
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	topic([16]byte{9}, 0)
	topic(s.topic, 7, 0)
	topic([16]byte{8}, 0, 1)
	resp := s.do(req, 2).(*kmsg.ShareAcknowledgeResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 3 {
		t.Fatalf("ShareAcknowledge: %+v", resp)
	}
	var got [][]int16
	for _, rt := range resp.Topics {
		var codes []int16
		for _, rp := range rt.Partitions {
			codes = append(codes, rp.ErrorCode)
		}
		got = append(got, codes)
	}
	unknownID := kerr.UnknownTopicID.Code
	if len(got[0]) != 1 || got[0][0] != unknownID || len(got[1]) != 2 || got[1][0] == 0 || got[1][1] != 0 ||
		len(got[2]) != 2 || got[2][0] != unknownID || got[2][1] != unknownID {
		t.Fatalf("codes %v, want [[UNKNOWN_TOPIC_ID] [an error for partition 7, 0] [UNKNOWN_TOPIC_ID UNKNOWN_TOPIC_ID]]", got)
	}
	if start, _ := s.startOffset("g", "q"); start != 2 {
		t.Fatalf("start offset %d after accepting 0-1", start)
	}

	// DeleteShareGroupOffsets: per topic in request order, the backend's code for each.
	s.heartbeat("g", "A", -1, nil)
	del := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
	del.GroupID = "g"
	del.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: "nosuch"}, {Topic: "q"}}
	dr := s.do(del, 0).(*kmsg.DeleteShareGroupOffsetsResponse)
	if dr.ErrorCode != 0 || len(dr.Topics) != 2 || dr.Topics[0].Topic != "nosuch" || dr.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code ||
		dr.Topics[1].ErrorCode != 0 || dr.Topics[1].TopicID != s.topic {
		t.Fatalf("DeleteShareGroupOffsets: %+v", dr)
	}
}
