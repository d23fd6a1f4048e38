package kafka_test

// Log and quota administration with kadm: DeleteRecords, DescribeLogDirs,
// OffsetForLeaderEpoch, DescribeClientQuotas / AlterClientQuotas — each API, its error
// paths, and the durable state across a restart.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func adminCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// direct sends req to the gateway itself, not sharded by kgo (which would answer unknown
// topics itself), at the highest version both sides know up to Kafka 2.8 (Fetch by name).
func direct(t *testing.T, s *rcStack, req kmsg.Request) kmsg.Response {
	t.Helper()
	cl := s.kgo(t, kgo.MaxVersions(kversion.V2_8_0()))
	resp, err := cl.SeedBrokers()[0].Request(adminCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func logDirSize(t *testing.T, adm *kadm.Client, topic string, p int32) int64 {
	t.Helper()
	dirs, err := adm.DescribeAllLogDirs(adminCtx(t), kadm.TopicsSet{topic: {p: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var size int64 = -1
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			t.Fatalf("log dir %s: %v", d.Dir, d.Err)
		}
		if dp, ok := d.Topics.Lookup(topic, p); ok {
			size = dp.Size
		}
	})
	if size < 0 {
		t.Fatalf("%s-%d not in any log dir: %+v", topic, p, dirs)
	}
	return size
}

func TestKadmDeleteRecords(t *testing.T) {
	ctx := adminCtx(t)
	s := rcStart(t, t.TempDir(), "")
	adm := kadm.NewClient(s.kgo(t))
	segBytes := "4096"
	if r, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"segment.bytes": &segBytes}, "dr"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	cl := s.kgo(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	const n = 400
	for i := range n {
		r := &kgo.Record{Topic: "dr", Partition: 0, Value: fmt.Appendf(nil, "value-%04d-%0100d", i, i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	before := logDirSize(t, adm, "dr", 0)
	if before < n*100 {
		t.Fatalf("log dir size %d for %d records of >100 bytes", before, n)
	}

	var o kadm.Offsets
	o.Add(kadm.Offset{Topic: "dr", Partition: 0, At: 300})
	res, err := adm.DeleteRecords(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := res.Lookup("dr", 0); r.Err != nil || r.LowWatermark != 300 {
		t.Fatalf("delete records to 300: %+v", r)
	}
	after := logDirSize(t, adm, "dr", 0)
	if after >= before/2 {
		t.Fatalf("segments below 300 not reclaimed: %d bytes before, %d after", before, after)
	}
	check := func(s *rcStack, want int64) {
		t.Helper()
		adm := kadm.NewClient(s.kgo(t))
		starts, err := adm.ListStartOffsets(adminCtx(t), "dr")
		if err != nil {
			t.Fatal(err)
		}
		if so, _ := starts.Lookup("dr", 0); so.Err != nil || so.Offset != want {
			t.Fatalf("start offset %+v, want %d", so, want)
		}
		// A fetch below the start is OFFSET_OUT_OF_RANGE; at the start it reads the record there.
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis, req.MaxBytes = 0, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "dr"
		for _, off := range []int64{want - 1, want} {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.FetchOffset, rp.PartitionMaxBytes = off, 1<<20
			rt.Partitions = []kmsg.FetchRequestTopicPartition{rp}
			req.Topics = []kmsg.FetchRequestTopic{rt}
			resp := direct(t, s, req).(*kmsg.FetchResponse)
			p := resp.Topics[0].Partitions[0]
			if off < want && p.ErrorCode != kerr.OffsetOutOfRange.Code {
				t.Fatalf("fetch at %d below start %d: error %d", off, want, p.ErrorCode)
			}
			if off == want && (p.ErrorCode != 0 || p.LogStartOffset != want || len(p.RecordBatches) == 0) {
				t.Fatalf("fetch at start %d: error %d, log start %d, %d bytes", want, p.ErrorCode, p.LogStartOffset, len(p.RecordBatches))
			}
		}
		// A consumer from the beginning gets exactly the records from the start on.
		c := s.kgo(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"dr": {0: kgo.NewOffset().AtStart()}}))
		var got []int64
		for len(got) < n-int(want) {
			fs := c.PollFetches(adminCtx(t))
			if err := fs.Err(); err != nil {
				t.Fatal(err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Offset) })
		}
		if got[0] != want || got[len(got)-1] != n-1 {
			t.Fatalf("consumed offsets %d..%d, want %d..%d", got[0], got[len(got)-1], want, n-1)
		}
	}
	check(s, 300)

	// Error paths, with raw requests so that kadm's own checks do not answer first.
	raw := kmsg.NewPtrDeleteRecordsRequest()
	raw.TimeoutMillis = 1000
	add := func(topic string, p int32, off int64) {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = p, off
		rt.Partitions = append(rt.Partitions, rp)
		raw.Topics = append(raw.Topics, rt)
	}
	add("absent", 0, 1) // unknown topic
	add("dr", 9, 1)     // bad partition
	add("dr", 0, n+1)   // above the high watermark
	add("dr", 0, -5)    // negative, not -1
	add("dr", 0, 100)   // below the start: nothing changes
	add("dr", 1, -1)    // -1: the high watermark of an empty partition
	resp := direct(t, s, raw).(*kmsg.DeleteRecordsResponse)
	want := []struct {
		code int16
		low  int64
	}{{kerr.UnknownTopicOrPartition.Code, -1}, {kerr.UnknownTopicOrPartition.Code, -1}, {kerr.OffsetOutOfRange.Code, -1},
		{kerr.OffsetOutOfRange.Code, -1}, {0, 300}, {0, 0}}
	for i, w := range want {
		p := resp.Topics[i].Partitions[0]
		if p.ErrorCode != w.code || p.LowWatermark != w.low {
			t.Fatalf("entry %d (%s-%d): error %d low %d, want %d %d", i, resp.Topics[i].Topic, p.Partition, p.ErrorCode, p.LowWatermark, w.code, w.low)
		}
	}

	// Durable: the start survives a restart; -1 then deletes everything.
	s = s.restart()
	check(s, 300)
	adm = kadm.NewClient(s.kgo(t))
	o = nil
	o.Add(kadm.Offset{Topic: "dr", Partition: 0, At: -1})
	res, err = adm.DeleteRecords(ctx, o)
	if r, _ := res.Lookup("dr", 0); err != nil || r.Err != nil || r.LowWatermark != n {
		t.Fatalf("delete records to the end: %v %+v", err, r)
	}
	s = s.restart()
	adm = kadm.NewClient(s.kgo(t))
	starts, err := adm.ListStartOffsets(ctx, "dr")
	if so, _ := starts.Lookup("dr", 0); err != nil || so.Offset != n {
		t.Fatalf("start after deleting all and a restart: %v %+v", err, so)
	}
	ends, err := adm.ListEndOffsets(ctx, "dr")
	if eo, _ := ends.Lookup("dr", 0); err != nil || eo.Offset != n {
		t.Fatalf("end after deleting all: %v %+v", err, eo)
	}
	// Appends go on at the old end.
	if r, err := s.kgo(t, kgo.RecordPartitioner(kgo.ManualPartitioner())).ProduceSync(ctx, &kgo.Record{Topic: "dr", Value: []byte("next")}).First(); err != nil || r.Offset != n {
		t.Fatalf("produce after delete: %v offset %d", err, r.Offset)
	}
}

func TestKadmDescribeLogDirs(t *testing.T) {
	ctx := adminCtx(t)
	s := rcStart(t, t.TempDir(), "")
	s.createTopic(t, "ld", 3)
	cl := s.kgo(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := range 30 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ld", Partition: 1, Value: fmt.Appendf(nil, "%0200d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(s.kgo(t))
	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	all.Each(func(d kadm.DescribedLogDir) {
		n++
		if d.Err != nil || d.Dir == "" {
			t.Fatalf("dir %+v", d)
		}
		for p := range int32(3) {
			dp, ok := d.Topics.Lookup("ld", p)
			if !ok {
				t.Fatalf("ld-%d missing from %s", p, d.Dir)
			}
			if (p == 1) != (dp.Size > 30*200) || dp.OffsetLag != 0 {
				t.Fatalf("ld-%d: size %d lag %d", p, dp.Size, dp.OffsetLag)
			}
		}
	})
	if n != 1 {
		t.Fatalf("%d log dirs, want 1", n)
	}
	// Asking for a missing topic or partition leaves it out, as Kafka does.
	req := kmsg.NewPtrDescribeLogDirsRequest()
	for topic, ps := range map[string][]int32{"ld": {1, 7}, "absent": {0}} {
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = topic, ps
		req.Topics = append(req.Topics, rt)
	}
	resp := direct(t, s, req).(*kmsg.DescribeLogDirsResponse)
	if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 1 || resp.Dirs[0].Topics[0].Topic != "ld" ||
		len(resp.Dirs[0].Topics[0].Partitions) != 1 || resp.Dirs[0].Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("filtered log dirs: %+v", resp.Dirs)
	}
}

func TestKadmOffsetForLeaderEpoch(t *testing.T) {
	ctx := adminCtx(t)
	s := rcStart(t, t.TempDir(), "")
	s.createTopic(t, "ep", 2)
	cl := s.kgo(t, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for range 7 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "ep", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(s.kgo(t))
	var req kadm.OffsetForLeaderEpochRequest
	req.Add("ep", 0, 0)
	req.Add("ep", 1, 0)
	res, err := adm.OffsetForLeaderEpoch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 7, 1: 0} {
		r := res["ep"][p]
		if r.Err != nil || r.LeaderEpoch != 0 || r.EndOffset != want {
			t.Fatalf("ep-%d epoch 0: %+v, want end %d", p, r, want)
		}
	}
	// An epoch the partition never had is undefined; unknown partitions are errors.
	raw := kmsg.NewPtrOffsetForLeaderEpochRequest()
	raw.ReplicaID = -1
	for _, c := range []struct {
		topic      string
		p          int32
		cur, epoch int32
	}{{"ep", 0, -1, 5}, {"ep", 9, -1, 0}, {"absent", 0, -1, 0}, {"ep", 0, 3, 0}} {
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = c.topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = c.p, c.cur, c.epoch
		rt.Partitions = append(rt.Partitions, rp)
		raw.Topics = append(raw.Topics, rt)
	}
	resp := direct(t, s, raw).(*kmsg.OffsetForLeaderEpochResponse)
	want := []struct {
		code  int16
		epoch int32
		end   int64
	}{{0, -1, -1}, {kerr.UnknownTopicOrPartition.Code, -1, -1}, {kerr.UnknownTopicOrPartition.Code, -1, -1}, {kerr.UnknownLeaderEpoch.Code, -1, -1}}
	for i, w := range want {
		p := resp.Topics[i].Partitions[0]
		if p.ErrorCode != w.code || p.LeaderEpoch != w.epoch || p.EndOffset != w.end {
			t.Fatalf("entry %d: %+v, want %+v", i, p, w)
		}
	}
}

func TestKadmClientQuotas(t *testing.T) {
	ctx := adminCtx(t)
	s := rcStart(t, t.TempDir(), "")
	adm := kadm.NewClient(s.kgo(t))
	slow, alice := "slow", "alice"
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &slow}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}, {Key: "consumer_byte_rate", Value: 2048.5}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}, {Type: "client-id"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 50}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "no_such_quota", Value: 1}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &alice}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: -3}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "ip"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 3}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id"}, {Type: "client-id"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 3}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if wantErr := i >= 2; (r.Err != nil) != wantErr || (wantErr && !errors.Is(r.Err, kerr.InvalidRequest)) {
			t.Fatalf("alter entry %d (%v): %v %s", i, r.Entity, r.Err, r.ErrMessage)
		}
	}
	describe := func(s *rcStack) {
		t.Helper()
		adm := kadm.NewClient(s.kgo(t))
		all, err := adm.DescribeClientQuotas(adminCtx(t), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, q := range all {
			got[q.Entity.String()] = fmt.Sprint(q.Values)
		}
		want := map[string]string{
			"{client-id=slow}":                  "[consumer_byte_rate=2048.500000 producer_byte_rate=1024.000000]",
			"{client-id=<default>, user=alice}": "[request_percentage=50.000000]",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("described %v, want %v", got, want)
		}
		// Filters: exact client id, default client id, strict.
		q, err := adm.DescribeClientQuotas(adminCtx(t), false, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchName: &slow, MatchType: 0}})
		if err != nil || len(q) != 1 || q[0].Entity.String() != "{client-id=slow}" {
			t.Fatalf("exact filter: %v %v", err, q)
		}
		q, err = adm.DescribeClientQuotas(adminCtx(t), false, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchType: 1}})
		if err != nil || len(q) != 1 || q[0].Entity.String() != "{client-id=<default>, user=alice}" {
			t.Fatalf("default filter: %v %v", err, q)
		}
		q, err = adm.DescribeClientQuotas(adminCtx(t), true, []kadm.DescribeClientQuotaComponent{{Type: "client-id", MatchType: 2}})
		if err != nil || len(q) != 1 || q[0].Entity.String() != "{client-id=slow}" {
			t.Fatalf("strict any filter: %v %v", err, q)
		}
	}
	describe(s)
	s = s.restart()
	describe(s)

	// Removing every quota of an entity removes the entity.
	adm = kadm.NewClient(s.kgo(t))
	if _, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}, {Type: "client-id"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Remove: true}}}}); err != nil {
		t.Fatal(err)
	}
	s = s.restart()
	adm = kadm.NewClient(s.kgo(t))
	all, err := adm.DescribeClientQuotas(ctx, false, nil)
	if err != nil || len(all) != 1 {
		t.Fatalf("after removal: %v %v", err, all)
	}
	// A duplicate filter component is INVALID_REQUEST.
	if _, err := adm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchType: 2}, {Type: "user", MatchType: 1}}); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("duplicate component: %v", err)
	}
}
