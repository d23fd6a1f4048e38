package broker

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/share"
)

func shareFetch(t *testing.T, e *env, member string, epoch, maxRecords int32, acks ...brokerop.ShareAckBatch) []brokerop.ShareAcquired {
	t.Helper()
	resp, err := e.b.ShareFetch(context.Background(), &brokerop.ShareFetchReq{Group: "g", MemberID: member, SessionEpoch: epoch, MaxRecords: maxRecords,
		Partitions: []brokerop.ShareFetchPartition{{Topic: "q", Partition: 0, Acks: acks}}})
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("ShareFetch: %v %+v", err, resp)
	}
	var out []brokerop.ShareAcquired
	for _, p := range resp.Partitions {
		if p.ErrorCode != 0 || p.AckErrorCode != 0 {
			t.Fatalf("partition: %+v", p)
		}
		out = append(out, p.Acquired...)
	}
	return out
}

func shareStart(t *testing.T, e *env) int64 {
	t.Helper()
	resp, err := e.b.DescribeShareGroupOffsets(context.Background(), &brokerop.DescribeShareGroupOffsetsReq{Groups: []brokerop.ShareOffsetsGroup{{Group: "g", All: true}}})
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 || len(resp.Groups[0].Partitions) != 1 {
		t.Fatalf("DescribeShareGroupOffsets: %v %+v", err, resp)
	}
	return resp.Groups[0].Partitions[0].StartOffset
}

// TestShareStateSurvivesCrash: acknowledgements and group configs answered before a crash
// are there after it; records acquired but not acknowledged come back for redelivery with
// their delivery counted.
func TestShareStateSurvivesCrash(t *testing.T) {
	e := newEnv(t)
	e.create("q", 1, nil)
	for i := range 10 {
		e.mustProduce(-1, "q", 0, makeBatch(false, vals(1, string(rune('a'+i)))...))
	}
	earliest := "earliest"
	cresp, err := e.b.IncrementalAlterConfigs(context.Background(), &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{
		{Type: brokerop.ResourceGroupConfig, Name: "g", Configs: []brokerop.IncrementalAlterConfig{{Name: "share.auto.offset.reset", Op: brokerop.ConfigOpSet, Value: &earliest}}},
		{Type: brokerop.ResourceGroupConfig, Name: "g", Configs: []brokerop.IncrementalAlterConfig{{Name: "share.bogus", Op: brokerop.ConfigOpSet, Value: &earliest}}},
		{Type: brokerop.ResourceTopic, Name: "q", Configs: []brokerop.IncrementalAlterConfig{{Name: "retention.ms", Op: brokerop.ConfigOpSet, Value: ptrTo("60000")}}},
	}})
	if err != nil || cresp.Resources[0].ErrorCode != 0 || cresp.Resources[1].ErrorCode == 0 || cresp.Resources[2].ErrorCode != 0 {
		t.Fatalf("IncrementalAlterConfigs: %v %+v", err, cresp)
	}
	hb, err := e.b.ShareGroupHeartbeat(context.Background(), &brokerop.ShareGroupHeartbeatReq{Group: "g", MemberID: "A", HasTopics: true, Topics: []string{"q"}})
	if err != nil || hb.ErrorCode != 0 || !reflect.DeepEqual(hb.Assignment, []brokerop.ShareTP{{Topic: "q", Partition: 0}}) {
		t.Fatalf("heartbeat: %v %+v", err, hb)
	}
	if got := shareFetch(t, e, "A", 0, 5); !reflect.DeepEqual(got, []brokerop.ShareAcquired{{First: 0, Last: 4, Count: 1}}) {
		t.Fatalf("first fetch: %+v", got)
	}
	// Accept 0-2 and release 3 (piggy-backed); the same request acquires five more: 3 again
	// and 5-8.
	got := shareFetch(t, e, "A", 1, 5, brokerop.ShareAckBatch{First: 0, Last: 3, Types: []int8{1, 1, 1, 2}})
	if !reflect.DeepEqual(got, []brokerop.ShareAcquired{{First: 3, Last: 3, Count: 2}, {First: 5, Last: 8, Count: 1}}) {
		t.Fatalf("second fetch: %+v", got)
	}
	if s := shareStart(t, e); s != 3 {
		t.Fatalf("SPSO %d, want 3", s)
	}

	e.crash(nil)

	if s := shareStart(t, e); s != 3 {
		t.Fatalf("SPSO after crash %d, want 3", s)
	}
	dresp, err := e.b.DescribeConfigs(context.Background(), &brokerop.DescribeConfigsReq{Resources: []brokerop.DescribeConfigsResource{
		{Type: brokerop.ResourceGroupConfig, Name: "g", ConfigNames: []string{"share.auto.offset.reset", "share.record.lock.duration.ms"}}}})
	if err != nil || len(dresp.Resources) != 1 || len(dresp.Resources[0].Configs) != 2 {
		t.Fatalf("DescribeConfigs: %v %+v", err, dresp)
	}
	for _, c := range dresp.Resources[0].Configs {
		switch c.Name {
		case "share.auto.offset.reset":
			if *c.Value != "earliest" || c.Source != brokerop.SourceGroupConfig {
				t.Fatalf("reset after crash: %+v", c)
			}
		case "share.record.lock.duration.ms":
			if *c.Value != "30000" || c.Source != brokerop.SourceDefault {
				t.Fatalf("lock duration: %+v", c)
			}
		}
	}
	// The member rejoins. What was written with the acknowledgements: 3 available after one
	// delivery, 4 held (written as available, one delivery); the acquisitions after it (3's
	// second, 5-8) were not written. So 3-4 come back for their second delivery, 5-9 for
	// their first.
	if hb, _ := e.b.ShareGroupHeartbeat(context.Background(), &brokerop.ShareGroupHeartbeatReq{Group: "g", MemberID: "A", HasTopics: true, Topics: []string{"q"}}); hb.ErrorCode != 0 {
		t.Fatalf("rejoin: %+v", hb)
	}
	if got := shareFetch(t, e, "A", 0, 20); !reflect.DeepEqual(got, []brokerop.ShareAcquired{{First: 3, Last: 4, Count: 2}, {First: 5, Last: 9, Count: 1}}) {
		t.Fatalf("after crash: %+v", got)
	}
}

func ptrTo(s string) *string { return &s }

// With share.isolation.level=read_committed a share group gets records only below the last
// stable offset: an open transaction's records are acquired once it commits (the commit
// marker's offset with them, which the client acknowledges as a gap); an aborted
// transaction's records are never handed out, their offsets skipped.
func TestShareReadCommitted(t *testing.T) {
	e := txnEnv(t)
	e.create("q", 1, nil)
	for _, kv := range [][2]string{{"share.auto.offset.reset", "earliest"}, {"share.isolation.level", "read_committed"}} {
		v := kv[1]
		r, err := e.b.IncrementalAlterConfigs(context.Background(), &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{
			{Type: brokerop.ResourceGroupConfig, Name: "g", Configs: []brokerop.IncrementalAlterConfig{{Name: kv[0], Op: brokerop.ConfigOpSet, Value: &v}}}}})
		if err != nil || r.Resources[0].ErrorCode != 0 {
			t.Fatalf("set %s: %v %+v", kv[0], err, r)
		}
	}
	if hb, _ := e.b.ShareGroupHeartbeat(context.Background(), &brokerop.ShareGroupHeartbeatReq{Group: "g", MemberID: "A", HasTopics: true, Topics: []string{"q"}}); hb.ErrorCode != 0 {
		t.Fatalf("join: %+v", hb)
	}
	pid, epoch := e.initTxn("tx", 60000)
	if code := e.addParts("tx", pid, epoch, "q", 0); code != 0 {
		t.Fatalf("add partitions: %d", code)
	}
	e.mustProduce(-1, "q", 0, txnBatch(pid, epoch, 0, "a", "b")) // offsets 0-1, open
	if got := shareFetch(t, e, "A", 0, 10); len(got) != 0 {
		t.Fatalf("records of an open transaction acquired: %+v", got)
	}
	if code := e.endTxn("tx", pid, epoch, true); code != 0 { // marker at 2
		t.Fatalf("commit: %d", code)
	}
	if got := shareFetch(t, e, "A", 1, 10); !reflect.DeepEqual(got, []brokerop.ShareAcquired{{First: 0, Last: 2, Count: 1}}) {
		t.Fatalf("after commit: %+v", got)
	}
	if code := e.addParts("tx", pid, epoch, "q", 0); code != 0 {
		t.Fatalf("add partitions: %d", code)
	}
	e.mustProduce(-1, "q", 0, txnBatch(pid, epoch, 2, "x"))   // offset 3, aborted below
	if code := e.endTxn("tx", pid, epoch, false); code != 0 { // marker at 4
		t.Fatalf("abort: %d", code)
	}
	e.mustProduce(-1, "q", 0, makeBatch(false, vals(1, "c")...)) // offset 5
	// While 0-2 are held, the aborted batch (3, left out of the read) is a gap acquisition
	// does not cross.
	if got := shareFetch(t, e, "A", 2, 10); len(got) != 0 {
		t.Fatalf("acquired past a gap with records still held: %+v", got)
	}
	// Accept 0-1 and acknowledge the commit marker (2) as a gap: SPSO reaches 3, jumps the
	// aborted offset, and the abort marker (4) and "c" (5) are acquired.
	resp, err := e.b.ShareFetch(context.Background(), &brokerop.ShareFetchReq{Group: "g", MemberID: "A", SessionEpoch: 3, MaxRecords: 10,
		Partitions: []brokerop.ShareFetchPartition{{Topic: "q", Partition: 0, Acks: []brokerop.ShareAckBatch{{First: 0, Last: 2, Types: []int8{1, 1, 0}}}}}})
	if err != nil || len(resp.Partitions) != 1 || resp.Partitions[0].AckErrorCode != 0 ||
		!reflect.DeepEqual(resp.Partitions[0].Acquired, []brokerop.ShareAcquired{{First: 4, Last: 5, Count: 1}}) {
		t.Fatalf("fetch past the abort: %v %+v", err, resp)
	}
	offs, values := decodeBatches(t, resp.Partitions[0].Records)
	for i, v := range values {
		if v == "x" {
			t.Fatalf("the aborted record was handed out (offset %d)", offs[i])
		}
	}
	if !slices.Contains(values, "c") {
		t.Fatalf("the record after the abort is missing: %v %v", offs, values)
	}
}

// TestShareFetchWaitWakesOnFreedRecords: a ShareFetch long-polling at the end of the input
// (nothing to acquire, no append coming) returns as soon as records become acquirable
// again, released by another member's acknowledgement or by an expired acquisition lock,
// not when its MaxWaitMs runs out.
func TestShareFetchWaitWakesOnFreedRecords(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Now = time.Now }) // lock expiry on the real clock
	e.create("q", 1, nil)
	for i := range 5 {
		e.mustProduce(-1, "q", 0, makeBatch(false, vals(1, string(rune('a'+i)))...))
	}
	cresp, err := e.b.IncrementalAlterConfigs(context.Background(), &brokerop.IncrementalAlterConfigsReq{Resources: []brokerop.IncrementalAlterConfigsResource{
		{Type: brokerop.ResourceGroupConfig, Name: "g", Configs: []brokerop.IncrementalAlterConfig{
			{Name: "share.auto.offset.reset", Op: brokerop.ConfigOpSet, Value: ptrTo("earliest")},
			{Name: "share.record.lock.duration.ms", Op: brokerop.ConfigOpSet, Value: ptrTo("1000")}}},
	}})
	if err != nil || cresp.Resources[0].ErrorCode != 0 {
		t.Fatalf("IncrementalAlterConfigs: %v %+v", err, cresp)
	}
	for _, m := range []string{"A", "B"} {
		if hb, err := e.b.ShareGroupHeartbeat(context.Background(), &brokerop.ShareGroupHeartbeatReq{Group: "g", MemberID: m, HasTopics: true, Topics: []string{"q"}}); err != nil || hb.ErrorCode != 0 {
			t.Fatalf("heartbeat %s: %v %+v", m, err, hb)
		}
	}
	if got := shareFetch(t, e, "A", 0, 5); !reflect.DeepEqual(got, []brokerop.ShareAcquired{{First: 0, Last: 4, Count: 1}}) {
		t.Fatalf("A: %+v", got)
	}
	if got := shareFetch(t, e, "B", 0, 5); got != nil { // B is caught up: A holds everything
		t.Fatalf("B: %+v", got)
	}
	const maxWait = 10 * time.Second
	waitFetch := func(epoch int32) ([]brokerop.ShareAcquired, time.Duration) {
		start := time.Now()
		resp, err := e.b.ShareFetch(context.Background(), &brokerop.ShareFetchReq{Group: "g", MemberID: "B", SessionEpoch: epoch, MaxRecords: 5,
			MaxWaitMs: int32(maxWait / time.Millisecond), Partitions: []brokerop.ShareFetchPartition{{Topic: "q", Partition: 0}}})
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("ShareFetch: %v %+v", err, resp)
		}
		var out []brokerop.ShareAcquired
		for _, p := range resp.Partitions {
			out = append(out, p.Acquired...)
		}
		return out, time.Since(start)
	}

	// A releases record 2 while B waits.
	acked := make(chan *brokerop.ShareAcknowledgeResp, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		resp, _ := e.b.ShareAcknowledge(context.Background(), &brokerop.ShareAcknowledgeReq{Group: "g", MemberID: "A", SessionEpoch: 1,
			Partitions: []brokerop.ShareAckPartition{{Topic: "q", Partition: 0, Acks: []brokerop.ShareAckBatch{{First: 2, Last: 2, Types: []int8{share.AckRelease}}}}}})
		acked <- resp
	}()
	got, took := waitFetch(1)
	if r := <-acked; r == nil || r.ErrorCode != 0 || len(r.Partitions) != 1 || r.Partitions[0].ErrorCode != 0 {
		t.Fatalf("A's release: %+v", r)
	}
	if !reflect.DeepEqual(got, []brokerop.ShareAcquired{{First: 2, Last: 2, Count: 2}}) || took >= maxWait/2 {
		t.Fatalf("after a release: %+v after %v (the wait must end when a record is released)", got, took)
	}

	// A's locks on 0-1 and 3-4 (1 s) expire while B waits.
	got, took = waitFetch(2)
	if !reflect.DeepEqual(got, []brokerop.ShareAcquired{{First: 0, Last: 1, Count: 2}, {First: 3, Last: 4, Count: 2}}) || took >= maxWait/2 {
		t.Fatalf("after the locks expired: %+v after %v (the wait must end when a lock expires)", got, took)
	}
}
