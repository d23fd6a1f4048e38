package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/kafkawire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type testServer struct {
	srv  *gateway.Server
	addr string
	mem  *gatewaytest.MemBackend
}

func start(t testing.TB, cfg gateway.Config) *testServer {
	t.Helper()
	mem, _ := cfg.Backend.(*gatewaytest.MemBackend)
	if cfg.Backend == nil {
		mem = gatewaytest.NewMem(1)
		cfg.Backend = mem
	}
	cfg.AdvertisedHost = "127.0.0.1"
	cfg.Logger = slog.New(slog.DiscardHandler)
	g := serve.Start(t, cfg, nil)
	return &testServer{srv: g.Server, addr: g.Addr, mem: mem}
}

// rawConn speaks the Kafka protocol by hand, for byte-level tests.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	fr *kafkawire.FrameReader
}

func dial(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, fr: kafkawire.NewFrameReader(c, 0)}
}

// write sends b. A peer that already closed the connection (a reset or broken pipe while
// writing: the server refusing a frame before it has all of it) is not a failure here: the
// read that follows sees the connection closed, and tests that expect an answer fail there.
func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			return
		}
		r.t.Fatal(err)
	}
}

func encode(req kmsg.Request, corr int32) []byte {
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, corr)
}

// readFrame returns the next response frame (correlation id first) or an error.
func (r *rawConn) readFrame() ([]byte, error) {
	return r.fr.Next()
}

// roundTrip sends req and decodes the answer at req's version.
func (r *rawConn) roundTrip(req kmsg.Request, corr int32) kmsg.Response {
	r.t.Helper()
	r.write(encode(req, corr))
	return r.readResponse(req, corr)
}

func (r *rawConn) readResponse(req kmsg.Request, corr int32) kmsg.Response {
	r.t.Helper()
	return gatewaytest.ReadResponse(r.t, r.fr, req, corr)
}

// expectClosed asserts the server closes the connection without answering.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	if frame, err := r.readFrame(); err == nil {
		r.t.Fatalf("got a %d-byte answer, want the connection closed", len(frame))
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatalf("connection still open: %v", err)
		}
	}
}

func makeRecords(topic string, n int) []*kgo.Record {
	out := make([]*kgo.Record, n)
	base := time.UnixMilli(1_700_000_000_000)
	for i := range out {
		out[i] = &kgo.Record{
			Topic:     topic,
			Key:       []byte(fmt.Sprintf("key-%03d", i)),
			Value:     bytes.Repeat([]byte{byte(i)}, 10+i%50),
			Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte{0, byte(i), 0xff}}, {Key: "empty"}},
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
		}
	}
	return out
}

func sameRecord(a, b *kgo.Record) bool {
	return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && a.Timestamp.Equal(b.Timestamp) &&
		slices.EqualFunc(a.Headers, b.Headers, func(x, y kgo.RecordHeader) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) })
}

// consumeAll reads n records of topic from the start.
func consumeAll(t testing.TB, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := kafkaclients.KgoClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), n, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		got = append(got, fs.Records()...)
	}
	return got
}

func TestKgoProduceConsume(t *testing.T) {
	for _, parts := range []int32{1, 8} {
		for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
			t.Run(fmt.Sprintf("partitions=%d/codec=%d", parts, codec), func(t *testing.T) {
				ts := start(t, gateway.Config{Backend: gatewaytest.NewMem(parts)})
				topic := "t"
				want := makeRecords(topic, 200)
				cl := kafkaclients.KgoClient(t, ts.addr, kgo.ProducerBatchCompression(codec), kgo.AllowAutoTopicCreation())
				if err := cl.ProduceSync(context.Background(), want...).FirstErr(); err != nil {
					t.Fatal(err)
				}
				got := consumeAll(t, ts.addr, topic, len(want))
				if len(got) != len(want) {
					t.Fatalf("got %d records, want %d", len(got), len(want))
				}
				// Per partition, records come back in produce order with contiguous offsets.
				byPart := map[int32][]*kgo.Record{}
				for _, r := range got {
					byPart[r.Partition] = append(byPart[r.Partition], r)
				}
				if parts > 1 && len(byPart) < 2 {
					t.Fatalf("records landed in %d partitions", len(byPart))
				}
				wantByPart := map[int32][]*kgo.Record{}
				for _, r := range want {
					wantByPart[r.Partition] = append(wantByPart[r.Partition], r)
				}
				for p, rs := range byPart {
					for i, r := range rs {
						if r.Offset != int64(i) {
							t.Fatalf("partition %d record %d has offset %d", p, i, r.Offset)
						}
						if !sameRecord(r, wantByPart[p][i]) {
							t.Fatalf("partition %d offset %d: got %+v, want %+v", p, i, r, wantByPart[p][i])
						}
					}
				}
			})
		}
	}
}

func TestApiVersions(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	for _, v := range []int16{0, 1, 2, 3, 4} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(v)
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw", "1"
		resp := c.roundTrip(req, int32(v)).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: error %d", v, resp.ErrorCode)
		}
		got := map[int16][2]int16{}
		for _, k := range resp.ApiKeys {
			got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		want := map[int16][2]int16{0: {0, 12}, 1: {0, 16}, 2: {0, 7}, 3: {0, 12}, 18: {0, 4}, 19: {0, 7}, 20: {0, 6}}
		for k, r := range want {
			if got[k] != r {
				t.Fatalf("v%d: key %d advertised %v, want %v", v, k, got[k], r)
			}
		}
		// A backend that names no transaction.version: no feature (clients run version 1).
		if len(resp.SupportedFeatures)+len(resp.FinalizedFeatures) != 0 || resp.FinalizedFeaturesEpoch != -1 {
			t.Fatalf("v%d: features %+v %+v epoch %d", v, resp.SupportedFeatures, resp.FinalizedFeatures, resp.FinalizedFeaturesEpoch)
		}
	}
}

func TestApiVersionsTooNew(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	// A v127 body the server cannot know: header v2 would be the client's guess.
	frame := []byte{0, 18, 0, 127, 0, 0, 0, 77, 0xff, 0xff, 0, 0xde, 0xad}
	c.write(kafkawire.AppendFrame(nil, frame))
	resp, err := c.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	if corr := binary.BigEndian.Uint32(resp); corr != 77 {
		t.Fatalf("correlation %d", corr)
	}
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(0)
	if err := av.ReadFrom(resp[4:]); err != nil {
		t.Fatalf("v0 body with v0 header: %v", err)
	}
	// Only the ApiVersions range, as Kafka answers: the client retries at our version and
	// learns the features there (kgo would otherwise keep this v0 answer, which has none).
	if av.ErrorCode != kafkawire.ErrUnsupportedVersion || len(av.ApiKeys) != 1 || av.ApiKeys[0].ApiKey != 18 || av.ApiKeys[0].MaxVersion != 4 {
		t.Fatalf("got error %d with keys %+v", av.ErrorCode, av.ApiKeys)
	}
	// The connection stays usable: the client retries with a version we speak.
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	if r := c.roundTrip(req, 78).(*kmsg.ApiVersionsResponse); r.ErrorCode != 0 {
		t.Fatalf("retry error %d", r.ErrorCode)
	}
}

func TestPipelinedInOrder(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	var reqs []kmsg.Request
	var buf []byte
	for i := range 30 {
		var req kmsg.Request
		switch i % 3 {
		case 0:
			req = kmsg.NewPtrApiVersionsRequest()
			req.SetVersion(int16(i % 4))
		case 1:
			md := kmsg.NewPtrMetadataRequest()
			md.SetVersion(int16(i % 13))
			req = md
		case 2:
			fe := kmsg.NewPtrFetchRequest()
			fe.SetVersion(int16(4 + i%13))
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = "absent"
			ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
			fe.Topics = append(fe.Topics, ft)
			req = fe
		}
		reqs = append(reqs, req)
		buf = append(buf, encode(req, int32(1000+i))...)
	}
	c.write(buf) // every request in one write
	for i, req := range reqs {
		c.readResponse(req, int32(1000+i))
	}
}

func TestAcksZeroHasNoAnswer(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	p := produceReq(9, "t", 0, batch(3))
	p.Acks = 0
	av := kmsg.NewPtrApiVersionsRequest()
	c.write(append(encode(p, 1), encode(av, 2)...))
	c.readResponse(av, 2) // the first answer on the wire is the ApiVersions one
	if n := ts.mem.Calls("Produce"); n != 1 {
		t.Fatalf("backend saw %d produce calls", n)
	}
}

// batch builds a RecordBatch v2 holding n small records, as a client would.
func batch(n int) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = []byte{byte(i)}
		body := r.AppendTo(nil)
		recs = append(recs, body...)
	}
	b := kmsg.NewRecordBatch()
	b.Magic = 2
	b.LastOffsetDelta = int32(n - 1)
	b.NumRecords = int32(n)
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	b.Records = recs
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	return raw
}

func produceReq(v int16, topic string, part int32, records []byte) *kmsg.ProduceRequest {
	p := kmsg.NewPtrProduceRequest()
	p.SetVersion(v)
	p.Acks = -1
	p.TimeoutMillis = 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = topic
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition, pp.Records = part, records
	pt.Partitions = append(pt.Partitions, pp)
	p.Topics = append(p.Topics, pt)
	return p
}

// fetchReq is a Fetch of partition 0 of topic from offset 0, up to 1 MiB (the version is left
// to the caller).
func fetchReq(topic string) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	return req
}

func createTopic(t testing.TB, c *rawConn, name string, parts int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = name, parts, 1
	req.Topics = append(req.Topics, ct)
	resp := c.roundTrip(req, 1).(*kmsg.CreateTopicsResponse)
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s: %d", name, resp.Topics[0].ErrorCode)
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	ts := start(t, gateway.Config{MaxFrameBytes: 1 << 20})
	good := dial(t, ts.addr)
	createTopic(t, good, "keep", 1)
	if r := good.roundTrip(produceReq(8, "keep", 0, batch(5)), 2).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
	bodyOf := func(req kmsg.Request) []byte { return encode(req, 5)[4:] }
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	truncated := bodyOf(md)
	truncated = truncated[:len(truncated)-3]
	oldFetch := kmsg.NewPtrFetchRequest()
	oldFetch.SetVersion(17) // above the served v0–16
	cases := []struct {
		name string
		wire []byte
	}{
		{"oversize", binary.BigEndian.AppendUint32(nil, 1<<20+1)},
		{"negative size", []byte{0x80, 0, 0, 0}},
		{"unknown key", kafkawire.AppendFrame(nil, []byte{0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xff, 0xff})},
		{"unserved key", kafkawire.AppendFrame(nil, bodyOf(kmsg.NewPtrWriteTxnMarkersRequest()))},
		{"unsupported version", kafkawire.AppendFrame(nil, bodyOf(oldFetch))},
		{"truncated body", kafkawire.AppendFrame(nil, truncated)},
		{"truncated header", kafkawire.AppendFrame(nil, []byte{0, 3, 0})},
		{"garbage body", kafkawire.AppendFrame(nil, append([]byte{0, 1, 0, 11, 0, 0, 0, 1, 0, 0}, bytes.Repeat([]byte{0xff}, 40)...))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := dial(t, ts.addr)
			bad.write(c.wire)
			bad.expectClosed()
			// The other connection and the stored data are unaffected.
			fe := fetchReq("keep")
			fe.SetVersion(11)
			r := good.roundTrip(fe, 9).(*kmsg.FetchResponse)
			p := r.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.HighWatermark != 5 || len(p.RecordBatches) != len(batch(5)) {
				t.Fatalf("after bad input: error %d hwm %d %d bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
			}
		})
	}
}

func TestBackendFailureIsRetriableError(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	createTopic(t, c, "t", 1)
	ts.mem.Fail(errors.New("broker unreachable"))
	r := c.roundTrip(produceReq(11, "t", 0, batch(1)), 2).(*kmsg.ProduceResponse)
	if code := r.Topics[0].Partitions[0].ErrorCode; code != kafkawire.ErrNotLeaderOrFollower {
		t.Fatalf("got %d, want NOT_LEADER_OR_FOLLOWER", code)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("t")
	md.Topics = append(md.Topics, mt)
	if mr := c.roundTrip(md, 3).(*kmsg.MetadataResponse); mr.Topics[0].ErrorCode != kafkawire.ErrLeaderNotAvailable {
		t.Fatalf("metadata error %d", mr.Topics[0].ErrorCode)
	}
	ts.mem.Fail(nil)
	if r := c.roundTrip(produceReq(11, "t", 0, batch(1)), 4).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatal("produce failed after recovery")
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	ask := func(v int16, topic string, allow bool) kmsg.MetadataResponseTopic {
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(v)
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		md.Topics = append(md.Topics, mt)
		md.AllowAutoTopicCreation = allow
		r := c.roundTrip(md, 1).(*kmsg.MetadataResponse)
		if len(r.Brokers) != 1 || r.Brokers[0].Host != "127.0.0.1" || r.Brokers[0].NodeID != 0 {
			t.Fatalf("brokers %+v", r.Brokers)
		}
		return r.Topics[0]
	}
	if tp := ask(12, "no", false); tp.ErrorCode != kafkawire.ErrUnknownTopicOrPartition {
		t.Fatalf("allow=false: error %d", tp.ErrorCode)
	}
	tp := ask(12, "yes", true)
	if tp.ErrorCode != 0 || len(tp.Partitions) != 1 || tp.TopicID == ([16]byte{}) || tp.Partitions[0].Leader != 0 {
		t.Fatalf("allow=true: %+v", tp)
	}
	if tp := ask(3, "old", false); tp.ErrorCode != 0 {
		t.Fatalf("v3 does not auto-create: %d", tp.ErrorCode)
	}
	// By id (v12, null name).
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.TopicID = tp.TopicID
	md.Topics = append(md.Topics, mt)
	if r := c.roundTrip(md, 2).(*kmsg.MetadataResponse); len(r.Topics) != 1 || *r.Topics[0].Topic != "yes" {
		t.Fatalf("by id: %+v", r.Topics)
	}
	mt.TopicID = [16]byte{1}
	md.Topics[0] = mt
	if r := c.roundTrip(md, 3).(*kmsg.MetadataResponse); r.Topics[0].ErrorCode != kafkawire.ErrUnknownTopicID {
		t.Fatalf("unknown id: %+v", r.Topics)
	}

	off := start(t, gateway.Config{DisableAutoCreate: true})
	c = dial(t, off.addr)
	if tp := ask(3, "old", false); tp.ErrorCode != kafkawire.ErrUnknownTopicOrPartition {
		t.Fatalf("DisableAutoCreate v3: %d", tp.ErrorCode)
	}
}

func TestAdminWithKadm(t *testing.T) {
	ts := start(t, gateway.Config{})
	adm := kadm.NewClient(kafkaclients.KgoClient(t, ts.addr))
	ctx := context.Background()
	cr, err := adm.CreateTopics(ctx, 8, 1, nil, "a", "b")
	if err != nil || cr.Error() != nil {
		t.Fatalf("create: %v %v", err, cr.Error())
	}
	if cr, _ := adm.CreateTopics(ctx, 1, 1, nil, "a"); !errors.Is(cr["a"].Err, errorForCode(36)) {
		t.Fatalf("duplicate: %v", cr["a"].Err)
	}
	if cr, _ := adm.CreateTopics(ctx, 1, 3, nil, "c"); !errors.Is(cr["c"].Err, errorForCode(38)) {
		t.Fatalf("rf 3: %v", cr["c"].Err)
	}
	td, err := adm.ListTopics(ctx)
	if err != nil || len(td["a"].Partitions) != 8 || len(td) != 2 {
		t.Fatalf("list: %v %+v", err, td)
	}
	dr, err := adm.DeleteTopics(ctx, "a")
	if err != nil || dr.Error() != nil {
		t.Fatalf("delete: %v %v", err, dr.Error())
	}
	// kgo caches metadata answers briefly, so look with a raw request.
	raw := dial(t, ts.addr)
	all := kmsg.NewPtrMetadataRequest()
	all.SetVersion(12)
	if mr := raw.roundTrip(all, 1).(*kmsg.MetadataResponse); len(mr.Topics) != 1 || *mr.Topics[0].Topic != "b" {
		t.Fatalf("after delete: %+v", mr.Topics)
	}
	// Delete by topic id (DeleteTopics v6).
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.SetVersion(6)
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.TopicID = td["b"].ID
	req.Topics = append(req.Topics, dt)
	resp := raw.roundTrip(req, 2).(*kmsg.DeleteTopicsResponse)
	if resp.Topics[0].ErrorCode != 0 || *resp.Topics[0].Topic != "b" {
		t.Fatalf("delete by id: %+v", resp.Topics[0])
	}
}

func errorForCode(c int16) error {
	return kerrFor(c)
}

// TestFetchEmptyRecordsNotNull: librdkafka rejects a null record set (size -1), so an empty
// or failed partition answers with an empty one.
func TestFetchEmptyRecordsNotNull(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	createTopic(t, c, "empty", 1)
	for _, v := range []int16{4, 11, 12} {
		fe := kmsg.NewPtrFetchRequest()
		fe.SetVersion(v)
		fe.MaxBytes = 1 << 20
		for _, topic := range []string{"empty", "absent"} {
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic = topic
			ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
			fe.Topics = append(fe.Topics, ft)
		}
		r := c.roundTrip(fe, 2).(*kmsg.FetchResponse)
		for _, rt := range r.Topics {
			if p := rt.Partitions[0]; p.RecordBatches == nil {
				t.Fatalf("v%d %s: null record set (error %d)", v, rt.Topic, p.ErrorCode)
			}
		}
		if code := r.Topics[1].Partitions[0].ErrorCode; code != kafkawire.ErrUnknownTopicOrPartition {
			t.Fatalf("absent topic: error %d", code)
		}
	}
}

// legacyMessage encodes one magic-1 message (offset, size, crc, magic, attributes,
// timestamp, key, value).
func legacyMessage(ts int64, key, value []byte) []byte {
	m := []byte{0, 0, 0, 0, 1, 0}
	m = binary.BigEndian.AppendUint64(m, uint64(ts))
	for _, b := range [][]byte{key, value} {
		m = binary.BigEndian.AppendUint32(m, uint32(len(b)))
		m = append(m, b...)
	}
	binary.BigEndian.PutUint32(m, crc32.ChecksumIEEE(m[4:]))
	out := binary.BigEndian.AppendUint64(nil, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(len(m)))
	return append(out, m...)
}

// TestProduceLegacyMessageSet: Produce v0–v2 message sets are converted to v2 batches that a
// modern consumer reads back; a corrupt set is CORRUPT_MESSAGE and stores nothing.
func TestProduceLegacyMessageSet(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	createTopic(t, c, "legacy", 1)
	ms := append(legacyMessage(1_700_000_000_000, []byte("k0"), []byte("v0")), legacyMessage(1_700_000_000_001, []byte("k1"), []byte("v1"))...)
	for v := int16(0); v <= 2; v++ {
		r := c.roundTrip(produceReq(v, "legacy", 0, ms), int32(v)).(*kmsg.ProduceResponse)
		if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != int64(2*v) {
			t.Fatalf("v%d: error %d base %d", v, p.ErrorCode, p.BaseOffset)
		}
	}
	bad := append([]byte(nil), ms...)
	bad[len(bad)-1] ^= 0xff
	r := c.roundTrip(produceReq(2, "legacy", 0, bad), 9).(*kmsg.ProduceResponse)
	if code := r.Topics[0].Partitions[0].ErrorCode; code != kafkawire.ErrCorruptMessage {
		t.Fatalf("corrupt set: error %d", code)
	}
	got := consumeAll(t, ts.addr, "legacy", 6)
	if len(got) != 6 {
		t.Fatalf("%d records", len(got))
	}
	for i, rec := range got {
		if rec.Offset != int64(i) || string(rec.Key) != fmt.Sprintf("k%d", i%2) || string(rec.Value) != fmt.Sprintf("v%d", i%2) ||
			rec.Timestamp.UnixMilli() != 1_700_000_000_000+int64(i%2) {
			t.Fatalf("record %d: %+v", i, rec)
		}
	}
}

// gatedBackend stages produces (appending at once) and holds every answer until released.
type gatedBackend struct {
	*gatewaytest.MemBackend
	staged  chan int64 // base offset of each staged produce, in staging order
	release chan struct{}
}

func (g *gatedBackend) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	resp, err := g.MemBackend.Produce(ctx, req)
	if err == nil {
		g.staged <- resp.Partitions[0].BaseOffset
	}
	return func() (*brokerop.ProduceResp, error) {
		<-g.release
		return resp, err
	}
}

// TestProducePipelined: with a backend that stages (ProduceStaged), produce requests pipelined on one
// connection are all appended (in order) while the first still waits for durability, and
// the answers come back in request order.
func TestProducePipelined(t *testing.T) {
	g := &gatedBackend{MemBackend: gatewaytest.NewMem(1), staged: make(chan int64, 8), release: make(chan struct{})}
	ts := start(t, gateway.Config{Backend: g})
	c := dial(t, ts.addr)
	createTopic(t, c, "pipe", 1)
	var reqs []kmsg.Request
	var wire []byte
	for i := range 3 {
		p := produceReq(9, "pipe", 0, batch(i+1))
		reqs = append(reqs, p)
		wire = append(wire, encode(p, int32(10+i))...)
	}
	c.write(wire)
	for i, want := range []int64{0, 1, 3} { // all three staged before any answer is released
		select {
		case got := <-g.staged:
			if got != want {
				t.Fatalf("staged #%d at base %d, want %d", i, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("produce #%d not staged while #0 waits", i)
		}
	}
	close(g.release)
	for i, req := range reqs {
		r := c.readResponse(req, int32(10+i)).(*kmsg.ProduceResponse)
		if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != []int64{0, 1, 3}[i] {
			t.Fatalf("answer %d: error %d base %d", i, p.ErrorCode, p.BaseOffset)
		}
	}
}

// TestAnswersWaitForStaged: the reader writes an answer that needs no finishing itself only
// when the writer has nothing queued (serve); behind a produce that still waits for
// durability, ApiVersions and Metadata answers wait their turn, and every answer leaves in
// request order. Then, with nothing queued, round trips on the same connection are answered
// (by the reader).
func TestAnswersWaitForStaged(t *testing.T) {
	g := &gatedBackend{MemBackend: gatewaytest.NewMem(1), staged: make(chan int64, 8), release: make(chan struct{})}
	p := produceReq(9, "gate", 0, batch(1))
	av := kmsg.NewPtrApiVersionsRequest()
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	c := heldBehindStaged(t, g, g, "gate", 20, p, av, md)
	if r := c.readResponse(p, 20).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", r.Topics[0].Partitions[0].ErrorCode)
	}
	c.readResponse(av, 21)
	c.readResponse(md, 22)
	for i := range 20 {
		c.roundTrip(av, int32(30+i))
	}
}

// heldBehindStaged starts a gateway on backend (whose staged produces g holds), creates
// topic, writes reqs on one connection (correlation ids from corr; the first a produce g
// holds), checks that no answer leaves while it is held (the reader has time to handle the
// requests behind it), releases it and returns the connection, ready to read the answers.
func heldBehindStaged(t *testing.T, backend gateway.Backend, g *gatedBackend, topic string, corr int32, reqs ...kmsg.Request) *rawConn {
	t.Helper()
	ts := start(t, gateway.Config{Backend: backend})
	var once sync.Once
	release := func() { once.Do(func() { close(g.release) }) }
	t.Cleanup(release) // before the gateway stops, should the test fail with the produce held
	c := dial(t, ts.addr)
	createTopic(t, c, topic, 1)
	var frames []byte
	for i, r := range reqs {
		frames = append(frames, encode(r, corr+int32(i))...)
	}
	c.write(frames)
	select {
	case <-g.staged:
	case <-time.After(5 * time.Second):
		t.Fatal("produce not staged")
	}
	c.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if frame, err := c.readFrame(); err == nil {
		t.Fatalf("answer %d before the held produce's", binary.BigEndian.Uint32(frame))
	}
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	release()
	c.fr = kafkawire.NewFrameReader(c.c, 0) // the timed-out read left the old reader's state unknown
	return c
}

// readyBackend is gatedBackend whose acks=1 produces say their wait returns at once
// (ProduceStagedReady), as the broker's do: the gateway's reader finishes them itself when
// nothing is queued.
type readyBackend struct{ *gatedBackend }

func (r readyBackend) ProduceStagedReady(ctx context.Context, req *brokerop.ProduceReq) (func() (*brokerop.ProduceResp, error), bool) {
	if req.Acks == 1 {
		resp, err := r.MemBackend.Produce(ctx, req)
		return func() (*brokerop.ProduceResp, error) { return resp, err }, true
	}
	return r.ProduceStaged(ctx, req), false
}

// TestReadyProduceWaitsForStaged: a produce whose finish returns at once (acks=1 on a
// backend that says so) behind one that waits for durability is answered after it, in
// request order; with nothing queued such produces are answered round trip after round trip.
func TestReadyProduceWaitsForStaged(t *testing.T) {
	g := readyBackend{&gatedBackend{MemBackend: gatewaytest.NewMem(1), staged: make(chan int64, 8), release: make(chan struct{})}}
	held := produceReq(9, "ready", 0, batch(1))
	quick := produceReq(9, "ready", 0, batch(2))
	quick.Acks = 1
	c := heldBehindStaged(t, g, g.gatedBackend, "ready", 40, held, quick)
	for i, want := range []int64{0, 1} {
		r := c.readResponse([]kmsg.Request{held, quick}[i], int32(40+i)).(*kmsg.ProduceResponse)
		if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != want {
			t.Fatalf("answer %d: error %d base %d, want base %d", i, p.ErrorCode, p.BaseOffset, want)
		}
	}
	for i := range 20 {
		r := c.roundTrip(quick, int32(50+i)).(*kmsg.ProduceResponse)
		if p := r.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != int64(3+2*i) {
			t.Fatalf("round trip %d: error %d base %d", i, p.ErrorCode, p.BaseOffset)
		}
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	ts := start(t, gateway.Config{IdleTimeout: 200 * time.Millisecond})
	c := dial(t, ts.addr)
	av := kmsg.NewPtrApiVersionsRequest()
	c.roundTrip(av, 1) // active: answered
	t0 := time.Now()
	c.expectClosed()
	if waited := time.Since(t0); waited < 150*time.Millisecond || waited > 5*time.Second {
		t.Fatalf("closed after %v idle, want about 200ms", waited)
	}
}

// TestFetchByTopicIDAfterRecreate: a topic id names one incarnation of a topic; after a
// delete and re-create through the gateway, the old id is UNKNOWN_TOPIC_ID.
func TestFetchByTopicIDAfterRecreate(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	create := func() [16]byte {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(7)
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "again", 1, -1
		req.Topics = append(req.Topics, ct)
		return c.roundTrip(req, 1).(*kmsg.CreateTopicsResponse).Topics[0].TopicID
	}
	fetch := func(id [16]byte) int16 {
		fe := kmsg.NewPtrFetchRequest()
		fe.SetVersion(13)
		fe.MaxBytes = 1 << 20
		ft := kmsg.NewFetchRequestTopic()
		ft.TopicID = id
		ft.Partitions = append(ft.Partitions, kmsg.NewFetchRequestTopicPartition())
		fe.Topics = append(fe.Topics, ft)
		r := c.roundTrip(fe, 2).(*kmsg.FetchResponse)
		if r.Topics[0].TopicID != id {
			t.Fatalf("answer names id %x, asked %x", r.Topics[0].TopicID, id)
		}
		return r.Topics[0].Partitions[0].ErrorCode
	}
	old := create()
	if code := fetch(old); code != 0 {
		t.Fatalf("fetch by id: error %d", code)
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.SetVersion(5)
	del.TopicNames = []string{"again"}
	if r := c.roundTrip(del, 3).(*kmsg.DeleteTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete: %d", r.Topics[0].ErrorCode)
	}
	fresh := create()
	if fresh == old {
		t.Fatal("re-created topic kept its id")
	}
	if code := fetch(old); code != kafkawire.ErrUnknownTopicID {
		t.Fatalf("old id after re-create: error %d", code)
	}
	if code := fetch(fresh); code != 0 {
		t.Fatalf("new id: error %d", code)
	}
}

// panickyBackend panics in Metadata for one topic name and in Produce for another.
type panickyBackend struct{ *gatewaytest.MemBackend }

func (p panickyBackend) Metadata(ctx context.Context, req *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	if slices.Contains(req.Topics, "boom") {
		panic("backend bug")
	}
	return p.MemBackend.Metadata(ctx, req)
}

func (p panickyBackend) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	if req.Partitions[0].Topic == "boom" {
		panic("backend bug in produce")
	}
	return p.MemBackend.Produce(ctx, req)
}

// ProduceStaged goes through the panicking Produce (MemBackend's own would bypass it).
func (p panickyBackend) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	return brokerop.ProduceNow(ctx, p.Produce, req)
}

// TestHandlerPanicClosesOnlyThatConnection: a panic in a handler or backend closes the
// connection that triggered it; the server and other connections carry on.
func TestHandlerPanicClosesOnlyThatConnection(t *testing.T) {
	ts := start(t, gateway.Config{Backend: panickyBackend{gatewaytest.NewMem(1)}})
	good := dial(t, ts.addr)
	createTopic(t, good, "fine", 1)
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("boom")
	md.Topics = append(md.Topics, mt)
	bad := dial(t, ts.addr)
	bad.write(encode(md, 1))
	bad.expectClosed()
	bad = dial(t, ts.addr)
	bad.write(encode(produceReq(9, "boom", 0, batch(1)), 1))
	bad.expectClosed()
	if r := good.roundTrip(produceReq(9, "fine", 0, batch(2)), 2).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("after panics: produce error %d", r.Topics[0].Partitions[0].ErrorCode)
	}
}
