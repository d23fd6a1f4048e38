package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// groupBackend is the in-memory topic backend plus a real group coordinator.
type groupBackend struct {
	*gatewaytest.MemBackend
	*group.Coordinator
}

var _ gateway.GroupBackend = groupBackend{}

// groupRoundTrip starts a gateway serving groups on one partition and returns a round trip
// over one raw connection to it (correlation ids count up from 1).
func groupRoundTrip(t *testing.T) func(kmsg.Request) kmsg.Response {
	t.Helper()
	raw := dial(t, startGroups(t, 1).addr)
	corr := int32(0)
	return func(req kmsg.Request) kmsg.Response { corr++; return raw.roundTrip(req, corr) }
}

func startGroups(t *testing.T, partitions int32) *testServer {
	t.Helper()
	coord, err := group.Open(group.Config{
		Dir: "/groups", FS: waltest.NewCrashFS(),
		Machine: group.MachineConfig{InitialRebalanceDelay: 100 * time.Millisecond, MinSessionTimeout: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := start(t, gateway.Config{Backend: groupBackend{gatewaytest.NewMem(partitions), coord}})
	t.Cleanup(func() { coord.Close() }) // runs after the server's cleanup (LIFO)
	return ts
}

func TestFindCoordinatorWithoutGroupBackend(t *testing.T) {
	ts := start(t, gateway.Config{})
	raw := dial(t, ts.addr)
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.SetVersion(3)
	req.CoordinatorKey = "g"
	if r := raw.roundTrip(req, 1).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 15 {
		t.Fatalf("FindCoordinator without groups: %+v", r)
	}
	jr := kmsg.NewPtrJoinGroupRequest()
	jr.SetVersion(5)
	jr.Group, jr.ProtocolType, jr.SessionTimeoutMillis = "g", "consumer", 10000
	if r := raw.roundTrip(jr, 2).(*kmsg.JoinGroupResponse); r.ErrorCode != 15 {
		t.Fatalf("JoinGroup without groups: %+v", r)
	}
}

func TestFindCoordinator(t *testing.T) {
	ts := startGroups(t, 1)
	raw := dial(t, ts.addr)
	for v := int16(0); v <= 6; v++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.SetVersion(v)
		req.CoordinatorKey = "g"
		req.CoordinatorKeys = []string{"g", "h"}
		r := raw.roundTrip(req, int32(v)).(*kmsg.FindCoordinatorResponse)
		if v < 4 {
			if r.ErrorCode != 0 || r.Host != "127.0.0.1" || r.NodeID != 0 || r.Port <= 0 {
				t.Fatalf("v%d: %+v", v, r)
			}
		} else if len(r.Coordinators) != 2 || r.Coordinators[1].Key != "h" || r.Coordinators[1].Host != "127.0.0.1" {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.SetVersion(3)
	req.CoordinatorType = 1
	req.CoordinatorKey = "txn"
	if r := raw.roundTrip(req, 9).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 15 {
		t.Fatalf("transaction coordinator: %+v", r)
	}
}

// Every advertised version of the membership and offset APIs round-trips through kmsg: join
// (with MEMBER_ID_REQUIRED from v4), sync as leader, heartbeat, commit, fetch, leave.
func TestGroupAPIVersions(t *testing.T) {
	rt := groupRoundTrip(t)
	for v := int16(0); v <= 9; v++ {
		g := fmt.Sprintf("g%d", v)
		join := kmsg.NewPtrJoinGroupRequest()
		join.SetVersion(v)
		join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = g, "consumer", 10000, 10000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{1, 2, 3}
		join.Protocols = append(join.Protocols, p)
		jr := rt(join).(*kmsg.JoinGroupResponse)
		if v >= 4 {
			if jr.ErrorCode != 79 || jr.MemberID == "" {
				t.Fatalf("v%d first join: %+v", v, jr)
			}
			join.MemberID = jr.MemberID
			jr = rt(join).(*kmsg.JoinGroupResponse)
		}
		if jr.ErrorCode != 0 || jr.Generation != 1 || jr.LeaderID != jr.MemberID || len(jr.Members) != 1 ||
			string(jr.Members[0].ProtocolMetadata) != "\x01\x02\x03" || jr.Protocol == nil || *jr.Protocol != "range" {
			t.Fatalf("v%d join: %+v", v, jr)
		}
		member := jr.MemberID

		sv := min(v, 5)
		sync := kmsg.NewPtrSyncGroupRequest()
		sync.SetVersion(sv)
		sync.Group, sync.Generation, sync.MemberID = g, 1, member
		if sv >= 5 {
			pt, pn := "consumer", "range"
			sync.ProtocolType, sync.Protocol = &pt, &pn
		}
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = member, []byte("mine")
		sync.GroupAssignment = append(sync.GroupAssignment, a)
		if sr := rt(sync).(*kmsg.SyncGroupResponse); sr.ErrorCode != 0 || string(sr.MemberAssignment) != "mine" {
			t.Fatalf("v%d sync: %+v", sv, sr)
		}

		hb := kmsg.NewPtrHeartbeatRequest()
		hb.SetVersion(min(v, 4))
		hb.Group, hb.Generation, hb.MemberID = g, 1, member
		if hr := rt(hb).(*kmsg.HeartbeatResponse); hr.ErrorCode != 0 {
			t.Fatalf("v%d heartbeat: %+v", v, hr)
		}
		hb.Generation = 0
		if hr := rt(hb).(*kmsg.HeartbeatResponse); hr.ErrorCode != 22 {
			t.Fatalf("v%d stale heartbeat: %+v", v, hr)
		}

		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.SetVersion(v)
		oc.Group, oc.Generation, oc.MemberID = g, 1, member
		ot := kmsg.NewOffsetCommitRequestTopic()
		ot.Topic = "t"
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Partition, op.Offset, op.LeaderEpoch = 3, 100+int64(v), 7
		md := "meta"
		op.Metadata = &md
		ot.Partitions = append(ot.Partitions, op)
		oc.Topics = append(oc.Topics, ot)
		if v == 0 {
			// v0 is a generation-less commit: refused while the group has members
			if r := rt(oc).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 25 {
				t.Fatalf("v0 commit: %+v", r)
			}
		} else if r := rt(oc).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("v%d commit: %+v", v, r)
		}

		lv := kmsg.NewPtrLeaveGroupRequest()
		lv.SetVersion(min(v, 5))
		lv.Group, lv.MemberID = g, member
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = member
		lv.Members = append(lv.Members, m)
		lr := rt(lv).(*kmsg.LeaveGroupResponse)
		if lr.ErrorCode != 0 || (v >= 3 && (len(lr.Members) != 1 || lr.Members[0].ErrorCode != 0)) {
			t.Fatalf("v%d leave: %+v", v, lr)
		}
		if v == 0 {
			if r := rt(oc).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("v0 commit to an empty group: %+v", r)
			}
		}

		of := kmsg.NewPtrOffsetFetchRequest()
		of.SetVersion(v)
		of.Group = g
		want := 100 + int64(v)
		if v >= 8 {
			fg := kmsg.NewOffsetFetchRequestGroup()
			fg.Group = g
			ft := kmsg.NewOffsetFetchRequestGroupTopic()
			ft.Topic, ft.Partitions = "t", []int32{3, 4}
			fg.Topics = append(fg.Topics, ft)
			of.Groups = append(of.Groups, fg)
			fr := rt(of).(*kmsg.OffsetFetchResponse)
			ps := fr.Groups[0].Topics[0].Partitions
			if fr.Groups[0].ErrorCode != 0 || ps[0].Offset != want || ps[0].LeaderEpoch != 7 || *ps[0].Metadata != "meta" || ps[1].Offset != -1 {
				t.Fatalf("v%d fetch: %+v", v, fr)
			}
			continue
		}
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = "t", []int32{3, 4}
		of.Topics = append(of.Topics, ft)
		fr := rt(of).(*kmsg.OffsetFetchResponse)
		ps := fr.Topics[0].Partitions
		if ps[0].Offset != want || *ps[0].Metadata != "meta" || ps[1].Offset != -1 || ps[0].ErrorCode != 0 {
			t.Fatalf("v%d fetch: %+v", v, fr)
		}
		if v >= 5 && v < 6 && ps[0].LeaderEpoch != -1 {
			t.Fatalf("v%d: leader epoch %d from a pre-v6 commit", v, ps[0].LeaderEpoch)
		}
		if v >= 2 {
			of.Topics = nil // all committed partitions
			fr := rt(of).(*kmsg.OffsetFetchResponse)
			if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 || fr.Topics[0].Partitions[0].Offset != want {
				t.Fatalf("v%d fetch all: %+v", v, fr)
			}
		}
	}
}

// A franz-go consumer group through the gateway: two members split four partitions, every
// record is consumed once the group settles, offsets are committed; when one member leaves
// the other takes over and resumes from the commits. Admin APIs see the group.
func TestGroupKgoConsumers(t *testing.T) {
	ts := startGroups(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod := kafkaclients.KgoClient(t, ts.addr, kgo.DefaultProduceTopic("events"), kgo.AllowAutoTopicCreation())
	produce := func(from, n int) {
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%16), Value: fmt.Appendf(nil, "%d", i)})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 200)

	var mu sync.Mutex
	seen := map[string]int{}
	consumer := func(name string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.ConsumerGroup("workers"), kgo.ConsumeTopics("events"),
			kgo.ClientID(name), kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	poll := func(cl *kgo.Client, want int) {
		for {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			if n >= want {
				return
			}
			pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fs := cl.PollFetches(pctx)
			pcancel()
			if ctx.Err() != nil {
				t.Fatalf("timed out with %d of %d records", n, want)
			}
			fs.EachRecord(func(r *kgo.Record) {
				mu.Lock()
				seen[string(r.Value)]++
				mu.Unlock()
			})
			if err := cl.CommitUncommittedOffsets(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Logf("commit: %v", err)
			}
		}
	}
	a, b := consumer("a"), consumer("b")
	var wg sync.WaitGroup
	wg.Go(func() { poll(a, 200) })
	wg.Go(func() { poll(b, 200) })
	wg.Wait()

	adm := kadm.NewClient(kafkaclients.KgoClient(t, ts.addr))
	dg, err := adm.DescribeGroups(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	d := dg["workers"]
	if d.State != "Stable" || len(d.Members) != 2 || d.Protocol == "" {
		t.Fatalf("describe: %+v", d)
	}
	var assigned []int32
	for _, m := range d.Members {
		ca, _ := m.Assigned.AsConsumer()
		for _, tp := range ca.Topics {
			assigned = append(assigned, tp.Partitions...)
		}
	}
	sort.Slice(assigned, func(i, j int) bool { return assigned[i] < assigned[j] })
	if fmt.Sprint(assigned) != "[0 1 2 3]" {
		t.Fatalf("assigned partitions %v", assigned)
	}

	// b leaves (kgo's Close sends LeaveGroup); a takes over every partition and consumes what
	// is produced next.
	b.Close()
	produce(200, 100)
	poll(a, 300)
	if err := a.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	offs, err := adm.FetchOffsets(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 300 {
		t.Fatalf("committed offsets sum to %d, want 300: %+v", total, offs)
	}
	lg, err := adm.ListGroups(ctx)
	if err != nil || len(lg) != 1 || lg["workers"].State != "Stable" {
		t.Fatalf("list: %+v %v", lg, err)
	}
	if r, _ := adm.DeleteGroups(ctx, "workers"); !errors.Is(r["workers"].Err, errorForCode(68)) {
		t.Fatalf("delete live group: %+v", r)
	}
	a.Close()

	// a fresh member of the group resumes at the committed offsets: nothing is redelivered
	c := consumer("c")
	defer c.Close()
	produce(300, 10)
	before := len(seen)
	poll(c, 310)
	for v, n := range seen {
		if n > 1 {
			t.Fatalf("record %s consumed %d times after a clean handover", v, n)
		}
	}
	if len(seen) != before+10 {
		t.Fatalf("seen %d, want %d", len(seen), before+10)
	}
	c.Close()

	dr, err := adm.DeleteOffsets(ctx, "workers", kadm.TopicsSet{"events": {0: {}}})
	if err != nil || dr.Error() != nil {
		t.Fatalf("offset delete: %v %v", err, dr.Error())
	}
	if r, err := adm.DeleteGroups(ctx, "workers"); err != nil || r.Error() != nil {
		t.Fatalf("delete empty group: %v %v", err, r.Error())
	}
	if r, _ := adm.DeleteGroups(ctx, "workers"); !errors.Is(r["workers"].Err, errorForCode(69)) {
		t.Fatalf("delete deleted group: %+v", r)
	}
}

// Every advertised version of the group administration APIs round-trips through kmsg.
func TestGroupAdminAPIVersions(t *testing.T) {
	rt := groupRoundTrip(t)
	commit := func(g string) {
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.SetVersion(8)
		oc.Group, oc.Generation = g, -1
		ot := kmsg.NewOffsetCommitRequestTopic()
		ot.Topic = "t"
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Offset = 5
		ot.Partitions = append(ot.Partitions, op)
		oc.Topics = append(oc.Topics, ot)
		if r := rt(oc).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit: %+v", r)
		}
	}
	commit("a")
	commit("b")
	for v := int16(0); v <= 5; v++ {
		lg := kmsg.NewPtrListGroupsRequest()
		lg.SetVersion(v)
		if v >= 4 {
			lg.StatesFilter = []string{"Empty"}
		}
		if v >= 5 {
			lg.TypesFilter = []string{"classic"}
		}
		r := rt(lg).(*kmsg.ListGroupsResponse)
		if r.ErrorCode != 0 || len(r.Groups) != 2 || r.Groups[0].Group != "a" {
			t.Fatalf("ListGroups v%d: %+v", v, r)
		}
		if v >= 4 && r.Groups[1].GroupState != "Empty" {
			t.Fatalf("ListGroups v%d state %q", v, r.Groups[1].GroupState)
		}
		if v >= 5 && r.Groups[1].GroupType != "classic" {
			t.Fatalf("ListGroups v%d type %q", v, r.Groups[1].GroupType)
		}
	}
	lg := kmsg.NewPtrListGroupsRequest()
	lg.SetVersion(4)
	lg.StatesFilter = []string{"Stable"}
	if r := rt(lg).(*kmsg.ListGroupsResponse); len(r.Groups) != 0 {
		t.Fatalf("ListGroups Stable filter: %+v", r.Groups)
	}
	for v := int16(0); v <= 6; v++ {
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.SetVersion(v)
		dg.Groups = []string{"a", "nope"}
		r := rt(dg).(*kmsg.DescribeGroupsResponse)
		if len(r.Groups) != 2 || r.Groups[0].State != "Empty" || r.Groups[0].ErrorCode != 0 || r.Groups[1].State != "Dead" {
			t.Fatalf("DescribeGroups v%d: %+v", v, r)
		}
		want := int16(0)
		if v >= 6 {
			want = 69
		}
		if r.Groups[1].ErrorCode != want {
			t.Fatalf("DescribeGroups v%d unknown group: error %d, want %d", v, r.Groups[1].ErrorCode, want)
		}
	}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "a"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "t"
	odt.Partitions = append(odt.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
	od.Topics = append(od.Topics, odt)
	if r := rt(od).(*kmsg.OffsetDeleteResponse); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("OffsetDelete: %+v", r)
	}
	od.Group = "nope"
	if r := rt(od).(*kmsg.OffsetDeleteResponse); r.ErrorCode != 69 {
		t.Fatalf("OffsetDelete unknown group: %+v", r)
	}
	for v := int16(0); v <= 2; v++ {
		commit("c")
		dg := kmsg.NewPtrDeleteGroupsRequest()
		dg.SetVersion(v)
		dg.Groups = []string{"c", "nope"}
		r := rt(dg).(*kmsg.DeleteGroupsResponse)
		if len(r.Groups) != 2 || r.Groups[0].ErrorCode != 0 || r.Groups[1].ErrorCode != 69 {
			t.Fatalf("DeleteGroups v%d: %+v", v, r)
		}
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.SetVersion(7)
	of.Group = "c"
	if r := rt(of).(*kmsg.OffsetFetchResponse); r.ErrorCode != 0 || len(r.Topics) != 0 {
		t.Fatalf("offsets of a deleted group: %+v", r)
	}
}

// shortGroups answers some group ops with fewer entries than asked (a broken or mismatched
// backend); the gateway must answer with an error, not crash.
type shortGroups struct{ groupBackend }

func (shortGroups) OffsetCommit(context.Context, *brokerop.OffsetCommitReq) (*brokerop.OffsetCommitResp, error) {
	return &brokerop.OffsetCommitResp{}, nil
}

func (shortGroups) DescribeGroups(context.Context, *brokerop.DescribeGroupsReq) (*brokerop.DescribeGroupsResp, error) {
	return &brokerop.DescribeGroupsResp{}, nil
}

func (shortGroups) DeleteGroups(context.Context, *brokerop.DeleteGroupsReq) (*brokerop.DeleteGroupsResp, error) {
	return &brokerop.DeleteGroupsResp{}, nil
}

func TestGroupMismatchedBackendAnswers(t *testing.T) {
	coord, err := group.Open(group.Config{Dir: "/groups", FS: waltest.NewCrashFS()})
	if err != nil {
		t.Fatal(err)
	}
	defer coord.Close()
	ts := start(t, gateway.Config{Backend: shortGroups{groupBackend{gatewaytest.NewMem(1), coord}}})
	raw := dial(t, ts.addr)
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.SetVersion(8)
	oc.Group, oc.Generation = "g", -1
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "t"
	ot.Partitions = append(ot.Partitions, kmsg.NewOffsetCommitRequestTopicPartition())
	oc.Topics = append(oc.Topics, ot)
	if r := raw.roundTrip(oc, 1).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != -1 {
		t.Fatalf("commit: %+v", r)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g"}
	if r := raw.roundTrip(dg, 2).(*kmsg.DescribeGroupsResponse); r.Groups[0].ErrorCode != -1 {
		t.Fatalf("describe: %+v", r)
	}
	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g"}
	if r := raw.roundTrip(del, 3).(*kmsg.DeleteGroupsResponse); r.Groups[0].ErrorCode != -1 {
		t.Fatalf("delete: %+v", r)
	}
}
