package kafka_test

// Bad input against the gateway with the real broker: oversize, truncated, unknown-key,
// unsupported-version and undecodable requests close only their own connection, and a
// produce with a corrupted batch is CORRUPT_MESSAGE with nothing stored. A kgo client on
// another connection keeps working and every record stored before is still there.

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func TestBadInputRealBroker(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
	s := rcStart(t, t.TempDir(), "")
	s.createTopic(t, "safe", 1)
	cl := s.kgo(t, kgo.DefaultProduceTopic("safe"))
	ctx := context.Background()
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	encode := func(req kmsg.Request) []byte {
		return kmsg.NewRequestFormatter(kmsg.FormatterClientID("bad")).AppendRequest(nil, req, 1)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	truncated := encode(md)[4:]
	truncated = truncated[:len(truncated)-2]
	oldFetch := kmsg.NewPtrFetchRequest()
	oldFetch.SetVersion(17) // above the served v0–16
	cases := map[string][]byte{
		"oversize":            binary.BigEndian.AppendUint32(nil, kafkawire.DefaultMaxFrame+1),
		"unknown key":         kafkawire.AppendFrame(nil, []byte{0x40, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff}),
		"unsupported version": encode(oldFetch),
		"truncated":           kafkawire.AppendFrame(nil, truncated),
		"half a frame":        kafkawire.AppendFrame(nil, make([]byte, 64))[:30],
	}
	for name, wire := range cases {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(wire)
		if name == "half a frame" {
			c.Close() // the client gives up mid-frame
			continue
		}
		if _, err := kafkawire.NewFrameReader(c, 0).Next(); err == nil {
			t.Errorf("%s: got an answer, want the connection closed", name)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: connection left open", name)
		}
		c.Close()
	}

	// A corrupted batch (one flipped byte after the CRC field) is refused and stores nothing.
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rec := kmsg.NewRecord()
	rec.Value = []byte("corrupt me")
	body := rec.AppendTo(nil)
	rec.Length = int32(len(body) - 1)
	recBytes := rec.AppendTo(nil)
	b := kmsg.NewRecordBatch()
	b.Magic, b.NumRecords, b.ProducerID, b.ProducerEpoch, b.FirstSequence = 2, 1, -1, -1, -1
	b.Records = recBytes
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12)) // length right, CRC (0) wrong
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(9)
	p.Acks, p.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "safe"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = raw
	pt.Partitions = append(pt.Partitions, pp)
	p.Topics = append(p.Topics, pt)
	c.Write(encode(p))
	resp := gatewaytest.ReadResponse(t, kafkawire.NewFrameReader(c, 0), p, 1).(*kmsg.ProduceResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kafkawire.ErrCorruptMessage {
		t.Fatalf("corrupt batch: error %d, want CORRUPT_MESSAGE", code)
	}

	// The kgo client (its connections untouched) still produces, and everything is there.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{10}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if end := s.endOffsets(t, "safe")[0]; end != 11 {
		t.Fatalf("high watermark %d, want 11", end)
	}
	got := kafkaclients.ConsumeKgo(t, s.addr, "safe")
	for i, m := range got {
		if m.Offset != int64(i) || len(m.Value) != 1 || m.Value[0] != byte(i) {
			t.Fatalf("record %d: offset %d value %v", i, m.Offset, m.Value)
		}
	}
}
