package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// shareClock is the broker's clock in the share tests: time moves only when a test says so.
type shareClock struct{ ns atomic.Int64 }

func (c *shareClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *shareClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func newShareClock() *shareClock {
	c := &shareClock{}
	c.ns.Store(time.Unix(1_700_000_000, 0).UnixNano())
	return c
}
func shareBackend(b *broker.Broker, g *group.Coordinator) gateway.Backend {
	return b.Service(g)
}

// startShareServer serves a real broker (with the share coordinator) on a fake clock.
func startShareServer(t *testing.T, cfg share.Config) (string, *shareClock) {
	t.Helper()
	clk := newShareClock()
	b, err := broker.Open(broker.Config{Dir: t.TempDir(), DefaultPartitions: 1, Logger: slog.New(slog.DiscardHandler), Now: clk.Now, Share: cfg})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := group.Open(group.Config{Dir: t.TempDir()})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { gc.Close(); b.Close() })
	g := serve.Start(t, gateway.Config{Backend: shareBackend(b, gc), AdvertisedHost: "127.0.0.1", Logger: slog.New(slog.DiscardHandler)}, nil)
	return g.Addr, clk
}

// shareClient drives the share-group protocol with kmsg requests on one connection.
type shareClient struct {
	t     *testing.T
	c     *rawConn
	corr  int32
	topic [16]byte
}

func (s *shareClient) do(req kmsg.Request, v int16) kmsg.Response {
	s.t.Helper()
	req.SetVersion(v)
	s.corr++
	return s.c.roundTrip(req, s.corr)
}

func (s *shareClient) heartbeat(group, member string, epoch int32, topics []string) *kmsg.ShareGroupHeartbeatResponse {
	s.t.Helper()
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.MemberEpoch, req.SubscribedTopicNames = group, member, epoch, topics
	return s.do(req, 1).(*kmsg.ShareGroupHeartbeatResponse)
}

type ack struct {
	first, last int64
	types       []int8
}

// ackBatches is acks as a ShareFetch's acknowledgement batches.
func ackBatches(acks []ack) []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch {
	var out []kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch
	for _, a := range acks {
		b := kmsg.NewShareFetchRequestTopicPartitionAcknowledgementBatch()
		b.FirstOffset, b.LastOffset, b.AcknowledgeTypes = a.first, a.last, a.types
		out = append(out, b)
	}
	return out
}

func (s *shareClient) fetch(v int16, group, member string, epoch, maxRecords int32, acks ...ack) *kmsg.ShareFetchResponse {
	s.t.Helper()
	req := kmsg.NewPtrShareFetchRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch, req.MaxRecords, req.MaxWaitMillis = kmsg.StringPtr(group), kmsg.StringPtr(member), epoch, maxRecords, 0
	rt := kmsg.NewShareFetchRequestTopic()
	rt.TopicID = s.topic
	rp := kmsg.NewShareFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rp.AcknowledgementBatches = ackBatches(acks)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return s.do(req, v).(*kmsg.ShareFetchResponse)
}

func (s *shareClient) acknowledge(group, member string, epoch int32, acks ...ack) *kmsg.ShareAcknowledgeResponse {
	s.t.Helper()
	req := kmsg.NewPtrShareAcknowledgeRequest()
	req.GroupID, req.MemberID, req.ShareSessionEpoch = kmsg.StringPtr(group), kmsg.StringPtr(member), epoch
	rt := kmsg.NewShareAcknowledgeRequestTopic()
	rt.TopicID = s.topic
	rp := kmsg.NewShareAcknowledgeRequestTopicPartition()
	for _, b := range ackBatches(acks) { // the same fields in ShareAcknowledge's type
		rp.AcknowledgementBatches = append(rp.AcknowledgementBatches, kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch(b))
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return s.do(req, 2).(*kmsg.ShareAcknowledgeResponse)
}

func (s *shareClient) startOffset(group, topic string) (int64, int64) {
	s.t.Helper()
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	g := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
	g.GroupID = group
	rt := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	g.Topics = append(g.Topics, rt)
	req.Groups = append(req.Groups, g)
	resp := s.do(req, 1).(*kmsg.DescribeShareGroupOffsetsResponse)
	if len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Topics) != 1 || len(resp.Groups[0].Topics[0].Partitions) != 1 {
		s.t.Fatalf("DescribeShareGroupOffsets: %+v", resp)
	}
	if resp.Groups[0].Topics[0].TopicID != s.topic {
		s.t.Fatalf("DescribeShareGroupOffsets topic id %x, want %x", resp.Groups[0].Topics[0].TopicID, s.topic)
	}
	p := resp.Groups[0].Topics[0].Partitions[0]
	return p.StartOffset, p.Lag
}

type acquired struct {
	first, last int64
	count       int16
}

// fetched checks a ShareFetch answer and returns its acquired runs and the offsets of the
// records it carries within them.
func (s *shareClient) fetched(resp *kmsg.ShareFetchResponse) ([]acquired, []int64, int16) {
	s.t.Helper()
	if resp.ErrorCode != 0 {
		s.t.Fatalf("ShareFetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	var runs []acquired
	var offs []int64
	ackCode := int16(0)
	for _, rt := range resp.Topics {
		if rt.TopicID != s.topic {
			s.t.Fatalf("answer for topic %x", rt.TopicID)
		}
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				s.t.Fatalf("partition error %v", kerr.ErrorForCode(rp.ErrorCode))
			}
			ackCode = rp.AcknowledgeErrorCode
			for _, a := range rp.AcquiredRecords {
				runs = append(runs, acquired{a.FirstOffset, a.LastOffset, a.DeliveryCount})
			}
			for _, off := range recordOffsets(s.t, rp.Records) {
				for _, a := range rp.AcquiredRecords {
					if off >= a.FirstOffset && off <= a.LastOffset {
						offs = append(offs, off)
						break
					}
				}
			}
		}
	}
	return runs, offs, ackCode
}

// recordOffsets decodes record batches into their records' offsets.
func recordOffsets(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	for len(b) > 0 {
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(b); err != nil {
			t.Fatalf("record batch: %v", err)
		}
		for i := range batch.NumRecords {
			out = append(out, batch.FirstOffset+int64(i))
		}
		b = b[12+int(batch.Length):]
	}
	return out
}

func offsets(first, last int64) []int64 {
	var out []int64
	for o := first; o <= last; o++ {
		out = append(out, o)
	}
	return out
}

// TestShareGroupProtocol drives two consumers sharing one partition with kmsg requests:
// disjoint acquisition, accept/release/reject, SPSO, acquisition locks expiring and the
// records going to the other consumer, late acknowledgements refused, and archiving at the
// delivery-count limit. Time is the broker's fake clock.
func TestShareGroupProtocol(t *testing.T) {
	addr, clk := startShareServer(t, share.Config{DeliveryLimit: 3})
	cl := kafkaclients.KgoClient(t, addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("q"), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1))
	for i := range 10 {
		if err := cl.ProduceSync(context.Background(), kgo.StringRecord(string(rune('a'+i)))).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s := &shareClient{t: t, c: dial(t, addr)}
	md := s.do(&kmsg.MetadataRequest{Topics: []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("q")}}}, 12).(*kmsg.MetadataResponse)
	s.topic = md.Topics[0].TopicID

	// ApiVersions advertises the share APIs.
	av := s.do(kmsg.NewPtrApiVersionsRequest(), 3).(*kmsg.ApiVersionsResponse)
	want := map[int16][2]int16{76: {1, 1}, 77: {1, 1}, 78: {1, 2}, 79: {1, 2}, 90: {0, 1}, 91: {0, 0}, 92: {0, 0}}
	for _, k := range av.ApiKeys {
		if w, ok := want[k.ApiKey]; ok {
			if k.MinVersion != w[0] || k.MaxVersion != w[1] {
				t.Errorf("key %d advertised v%d-%d, want v%d-%d", k.ApiKey, k.MinVersion, k.MaxVersion, w[0], w[1])
			}
			delete(want, k.ApiKey)
		}
	}
	if len(want) != 0 {
		t.Fatalf("not advertised: %v", want)
	}

	// Start the group at the beginning (share.auto.offset.reset is latest by default).
	areq := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	areq.GroupID = "g"
	at := kmsg.NewAlterShareGroupOffsetsRequestTopic()
	at.Topic = "q"
	at.Partitions = []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0, StartOffset: 0}}
	areq.Topics = append(areq.Topics, at)
	if ar := s.do(areq, 0).(*kmsg.AlterShareGroupOffsetsResponse); ar.ErrorCode != 0 || ar.Topics[0].Partitions[0].ErrorCode != 0 || ar.Topics[0].TopicID != s.topic {
		t.Fatalf("AlterShareGroupOffsets: %+v", ar)
	}

	// Two members, one partition: both are assigned it (a share group shares partitions).
	ha := s.heartbeat("g", "A", 0, []string{"q"})
	hb := s.heartbeat("g", "B", 0, []string{"q"})
	for _, h := range []*kmsg.ShareGroupHeartbeatResponse{ha, hb} {
		if h.ErrorCode != 0 || h.Assignment == nil || len(h.Assignment.TopicPartitions) != 1 || h.Assignment.TopicPartitions[0].TopicID != s.topic ||
			!reflect.DeepEqual(h.Assignment.TopicPartitions[0].Partitions, []int32{0}) || h.HeartbeatIntervalMillis != 5000 {
			t.Fatalf("heartbeat: %+v", h)
		}
	}
	if h := s.heartbeat("g", "A", ha.MemberEpoch+7, nil); h.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Fatalf("bad member epoch: %v", kerr.ErrorForCode(h.ErrorCode))
	}
	dreq := kmsg.NewPtrShareGroupDescribeRequest()
	dreq.GroupIDs = []string{"g", "nope"}
	dr := s.do(dreq, 1).(*kmsg.ShareGroupDescribeResponse)
	if len(dr.Groups) != 2 || dr.Groups[0].ErrorCode != 0 || len(dr.Groups[0].Members) != 2 || dr.Groups[0].GroupState != "Stable" ||
		dr.Groups[0].Members[0].Assignment.TopicPartitions[0].Topic != "q" || dr.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ShareGroupDescribe: %+v", dr)
	}

	// A and B take disjoint records.
	runs, offs, _ := s.fetched(s.fetch(1, "g", "A", 0, 4))
	if !reflect.DeepEqual(runs, []acquired{{0, 3, 1}}) || !reflect.DeepEqual(offs, offsets(0, 3)) {
		t.Fatalf("A: %v %v", runs, offs)
	}
	runs, offs, _ = s.fetched(s.fetch(2, "g", "B", 0, 4))
	if !reflect.DeepEqual(runs, []acquired{{4, 7, 1}}) || !reflect.DeepEqual(offs, offsets(4, 7)) {
		t.Fatalf("B: %v %v", runs, offs)
	}
	// A: accept 0-1, release 2, reject 3.
	ak := s.acknowledge("g", "A", 1, ack{0, 3, []int8{1, 1, 2, 3}})
	if ak.ErrorCode != 0 || ak.Topics[0].Partitions[0].ErrorCode != 0 || ak.AcquisitionLockTimeoutMillis != 30000 {
		t.Fatalf("ShareAcknowledge: %+v", ak)
	}
	if start, lag := s.startOffset("g", "q"); start != 2 || lag != 8 {
		t.Fatalf("SPSO %d lag %d, want 2 and 8", start, lag)
	}
	// A again: the released record (second delivery) and the rest.
	runs, offs, _ = s.fetched(s.fetch(2, "g", "A", 2, 10))
	if !reflect.DeepEqual(runs, []acquired{{2, 2, 2}, {8, 9, 1}}) || !reflect.DeepEqual(offs, []int64{2, 8, 9}) {
		t.Fatalf("A again: %v %v", runs, offs)
	}
	// A session epoch out of order is refused.
	if r := s.fetch(2, "g", "A", 9, 10); r.ErrorCode != kerr.InvalidShareSessionEpoch.Code {
		t.Fatalf("wrong session epoch: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// The locks expire (30 s): A acknowledges what it holds (piggy-backed, too late: its
	// locks went at 30 s as well) and gets B's records and its own again.
	clk.Advance(31 * time.Second)
	s.heartbeat("g", "A", ha.MemberEpoch, nil)
	s.heartbeat("g", "B", hb.MemberEpoch, nil)
	runs, _, ackCode := s.fetched(s.fetch(2, "g", "A", 3, 10, ack{2, 2, []int8{1}}))
	if ackCode != kerr.InvalidRecordState.Code {
		t.Fatalf("late piggy-backed ack: %v", kerr.ErrorForCode(ackCode))
	}
	if !reflect.DeepEqual(runs, []acquired{{2, 2, 3}, {4, 9, 2}}) {
		t.Fatalf("after lock expiry: %v", runs)
	}
	// B's acknowledgement of the records it lost is refused.
	if bk := s.acknowledge("g", "B", 1, ack{4, 7, []int8{1}}); bk.Topics[0].Partitions[0].ErrorCode != kerr.InvalidRecordState.Code {
		t.Fatalf("B's late ack: %+v", bk)
	}
	// A accepts 4-9 and releases 2, which is at the delivery limit (3): archived.
	runs, _, ackCode = s.fetched(s.fetch(2, "g", "A", 4, 10, ack{2, 2, []int8{2}}, ack{4, 9, []int8{1}}))
	if ackCode != 0 || len(runs) != 0 {
		t.Fatalf("final acks: code %v, runs %v", kerr.ErrorForCode(ackCode), runs)
	}
	if start, lag := s.startOffset("g", "q"); start != 10 || lag != 0 {
		t.Fatalf("SPSO %d lag %d, want 10 and 0", start, lag)
	}

	// Offsets of a group with members cannot be altered or deleted.
	if ar := s.do(areq, 0).(*kmsg.AlterShareGroupOffsetsResponse); ar.Topics[0].Partitions[0].ErrorCode != kerr.NonEmptyGroup.Code && ar.ErrorCode != kerr.NonEmptyGroup.Code {
		t.Fatalf("alter with members: %+v", ar)
	}
	// Both leave; then the topic's state can be deleted.
	s.heartbeat("g", "A", -1, nil)
	s.heartbeat("g", "B", -1, nil)
	delReq := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
	delReq.GroupID = "g"
	delReq.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: "q"}}
	if dr := s.do(delReq, 0).(*kmsg.DeleteShareGroupOffsetsResponse); dr.ErrorCode != 0 || dr.Topics[0].ErrorCode != 0 || dr.Topics[0].TopicID != s.topic {
		t.Fatalf("DeleteShareGroupOffsets: %+v", dr)
	}
	if start, _ := s.startOffset("g", "q"); start != -1 {
		t.Fatalf("start offset after delete: %d", start)
	}
}

// TestShareGroupKgo: franz-go's own share consumer (kgo.ShareGroup) against the gateway:
// two consumers of one share group consume a three-partition topic together; every record
// is delivered and accepted once, and the share-partition start offsets reach the end.
func TestShareGroupKgo(t *testing.T) {
	addr, _ := startShareServer(t, share.Config{})
	const n = 60
	prod := kafkaclients.KgoClient(t, addr, kgo.DefaultProduceTopic("kq"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	s := &shareClient{t: t, c: dial(t, addr)}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "kq", NumPartitions: 3, ReplicationFactor: 1}}
	if r := s.do(ct, 7).(*kmsg.CreateTopicsResponse); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v", kerr.ErrorForCode(r.Topics[0].ErrorCode))
	}
	for i := range n {
		r := kgo.StringRecord(string(rune('A' + i%26)))
		r.Partition = int32(i % 3)
		r.Key = []byte{byte(i)}
		if err := prod.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	areq := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	areq.GroupID = "kg"
	at := kmsg.NewAlterShareGroupOffsetsRequestTopic()
	at.Topic = "kq"
	for p := range int32(3) {
		at.Partitions = append(at.Partitions, kmsg.AlterShareGroupOffsetsRequestTopicPartition{Partition: p, StartOffset: 0})
	}
	areq.Topics = append(areq.Topics, at)
	if ar := s.do(areq, 0).(*kmsg.AlterShareGroupOffsetsResponse); ar.ErrorCode != 0 {
		t.Fatalf("alter: %+v", ar)
	}

	// Each consumer polls in its own goroutine (a poll blocks while the other one holds the
	// records it could get); the run ends when all n records were accepted.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	seen := map[byte]int{}
	total := 0
	var wg sync.WaitGroup
	for range 2 {
		c := kafkaclients.KgoClient(t, addr, kgo.ShareGroup("kg"), kgo.ConsumeTopics("kq"), kgo.FetchMaxWait(100*time.Millisecond))
		wg.Go(func() {
			for done.Err() == nil {
				fs := c.PollRecords(done, 10)
				for _, e := range fs.Errors() {
					if !errors.Is(e.Err, context.Canceled) {
						t.Errorf("fetch error: %v", e.Err)
					}
				}
				mu.Lock()
				for _, r := range fs.Records() {
					seen[r.Key[0]]++
					total++
					r.Ack(kgo.AckAccept)
				}
				if total >= n {
					stop()
				}
				mu.Unlock()
				if err := c.FlushAcks(ctx); err != nil {
					t.Errorf("flush acks: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("consumed %d of %d records: %v", total, n, ctx.Err())
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records, want %d", len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("record %d delivered %d times", k, c)
		}
	}
	dreq := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	dreq.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: "kg"}}
	dr := s.do(dreq, 1).(*kmsg.DescribeShareGroupOffsetsResponse)
	var starts []int64
	for _, tp := range dr.Groups[0].Topics {
		for _, p := range tp.Partitions {
			starts = append(starts, p.StartOffset)
		}
	}
	if !reflect.DeepEqual(starts, []int64{20, 20, 20}) {
		t.Fatalf("start offsets after consuming: %v (%+v)", starts, dr)
	}

	// ListGroups v5 lists the share group as Kafka does (kadm's ListShareGroups filters by
	// type "share"), and a filter for other types leaves it out.
	for _, tc := range []struct {
		types []string
		want  []string
	}{{nil, []string{"kg/share/share"}}, {[]string{"SHARE"}, []string{"kg/share/share"}}, {[]string{"classic", "consumer"}, nil}} {
		lg := kmsg.NewPtrListGroupsRequest()
		lg.TypesFilter = tc.types
		lr := s.do(lg, 5).(*kmsg.ListGroupsResponse)
		var got []string
		for _, g := range lr.Groups {
			got = append(got, g.Group+"/"+g.GroupType+"/"+g.ProtocolType)
			if g.Group == "kg" && g.GroupState != "Stable" && g.GroupState != "Empty" {
				t.Errorf("share group state %q", g.GroupState)
			}
		}
		if lr.ErrorCode != 0 || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ListGroups types %q: %v (error %d), want %v", tc.types, got, lr.ErrorCode, tc.want)
		}
	}
}
