package group

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/meshkafka/meshkafka/wal/waltest"
)

// KIP-447: a transactional offset commit naming a membership is fenced against the group
// as Kafka fences it; one naming none (TxnOffsetCommit < v3) passes.
func TestCheckTxnMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := open(t, Config{Dir: "/data/groups", FS: waltest.NewCrashFS()})
		defer c.Close()
		j := join(t, c, "a")
		if j == nil {
			t.FailNow()
		}
		check := func(m TxnMember) int16 {
			t.Helper()
			code, err := c.CheckTxnMember(context.Background(), "g", m.Generation, m.MemberID, m.InstanceID)
			if err != nil {
				t.Fatal(err)
			}
			return code
		}
		for _, tc := range []struct {
			m    TxnMember
			want int16
		}{
			{TxnMember{Generation: -1}, errNone},
			{TxnMember{Generation: j.Generation, MemberID: j.MemberID}, errNone},
			{TxnMember{Generation: -1, MemberID: j.MemberID}, errNone},
			{TxnMember{Generation: j.Generation + 1, MemberID: j.MemberID}, errIllegalGeneration},
			{TxnMember{Generation: j.Generation - 1}, errIllegalGeneration},
			{TxnMember{Generation: j.Generation, MemberID: "zombie"}, errUnknownMemberID},
		} {
			if got := check(tc.m); got != tc.want {
				t.Errorf("%+v: code %d, want %d", tc.m, got, tc.want)
			}
		}
		// An unknown group is an empty one.
		code, err := c.CheckTxnMember(context.Background(), "none", -1, "", "")
		if err != nil || code != errNone {
			t.Fatalf("unknown group, no member: %d %v", code, err)
		}
		code, _ = c.CheckTxnMember(context.Background(), "none", 3, "m", "")
		if code != errUnknownMemberID {
			t.Fatalf("unknown group, a member: %d", code)
		}
	})
}

// A static member replaced by a new member id under the same instance id is fenced.
func TestCheckTxnMemberStatic(t *testing.T) {
	g := &group{members: map[string]*member{"new": {}}, statics: map[string]string{"i1": "new"}, generation: 4}
	if code := checkTxnMember(g, &TxnMember{Generation: 4, MemberID: "old", InstanceID: "i1"}); code != errFencedInstanceID {
		t.Fatalf("old static member: %d, want FENCED_INSTANCE_ID", code)
	}
	if code := checkTxnMember(g, &TxnMember{Generation: 4, MemberID: "new", InstanceID: "i1"}); code != errNone {
		t.Fatalf("current static member: %d", code)
	}
}

// A KIP-848 consumer group's transactional offset commits (TxnOffsetCommit v3+ from kgo's
// GroupTransactSession on a consumer group) are checked against its members and their epochs,
// not against the classic members it has none of (which answered every one
// UNKNOWN_MEMBER_ID, so such a session aborted every transaction).
func TestCheckTxnMemberConsumerGroup(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 2))
	c := &client{names: []string{"a"}, inst: "i1"}
	h.join(c)
	check := func(m TxnMember) int16 {
		t.Helper()
		h.tok++
		outs := h.m.CheckTxnMember(h.now, h.tok, &TxnMember{Group: "g", Generation: m.Generation, MemberID: m.MemberID, InstanceID: m.InstanceID})
		return outs[0].Resp.(int16)
	}
	for _, tc := range []struct {
		m    TxnMember
		want int16
	}{
		{TxnMember{Generation: -1}, errNone},
		{TxnMember{Generation: c.epoch, MemberID: c.id, InstanceID: "i1"}, errNone},
		{TxnMember{Generation: -1, MemberID: c.id}, errNone},
		{TxnMember{Generation: c.epoch + 1, MemberID: c.id}, errStaleMemberEpoch},
		{TxnMember{Generation: c.epoch, MemberID: "zombie"}, errUnknownMemberID},
		{TxnMember{Generation: c.epoch, MemberID: c.id, InstanceID: "other"}, errFencedInstanceID},
	} {
		if got := check(tc.m); got != tc.want {
			t.Errorf("%+v: code %d, want %d", tc.m, got, tc.want)
		}
	}
}
