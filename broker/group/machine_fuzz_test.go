package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// FuzzMachine drives the coordinator with an arbitrary request/time sequence decoded from the
// input (a few groups, clients and instance ids so that requests collide) and checks the
// invariants every driver relies on: every request is answered exactly once (immediately or
// later, and all of them once every timeout has passed), answers carry only tokens that were
// handed in, Tick leaves no timer in the past, generations never go back (unless the group
// is deleted), NextDeadline matches a scan of all groups, and a Stable or
// CompletingRebalance group has a leader that is a member. A tick of 255 moves the
// coordinator (a new Machine from the durable records, RestoreMembers; parked requests are
// lost): a member that left (LeaveGroup answered OK) is never a member again, and the
// generation does not go back.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 5, 10})
	f.Add([]byte{0, 1, 1, 0, 2, 1, 0, 1, 2, 1, 1, 1, 4, 1, 1, 5, 200, 2, 1, 1})
	f.Add([]byte{0, 0, 4, 0, 1, 4, 6, 0, 0, 5, 9, 0, 0, 4, 7, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 1, 5, 0, 255, 2, 0, 1, 3, 1, 2, 5, 0, 255, 2, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		ids := 0
		m := NewMachine(MachineConfig{
			MinSessionTimeout: time.Second, InitialRebalanceDelay: 2 * time.Second,
			NewMemberID: func(c string) string { ids++; return fmt.Sprintf("%s-%d", c, ids) },
		})
		now := time.Unix(1_000_000, 0)
		answered := map[Token]int{}
		issued := map[Token]bool{}
		lastGen := map[string]int32{}
		known := []string{""} // member ids seen in answers, reused by later requests
		left := map[string]bool{}
		var tok Token
		check := func(outs []Output) {
			for _, o := range outs {
				if o.Token == 0 && o.Resp == nil && len(o.Records) > 0 {
					m.Apply(o.Records) // records only (a group emptied by a timer)
					continue
				}
				if !issued[o.Token] {
					t.Fatalf("answer for unknown token %d", o.Token)
				}
				answered[o.Token]++
				if answered[o.Token] > 1 {
					t.Fatalf("token %d answered twice", o.Token)
				}
				if r, ok := o.Resp.(*brokerop.JoinGroupResp); ok && r.MemberID != "" {
					known = append(known, r.MemberID)
				}
				if r, ok := o.Resp.(*brokerop.LeaveGroupResp); ok {
					for _, lm := range r.Members {
						if lm.ErrorCode == 0 && lm.MemberID != "" {
							left[lm.MemberID] = true
						}
					}
				}
				if len(o.Records) > 0 {
					m.Apply(o.Records)
				}
			}
			for id := range lastGen {
				if m.groups[id] == nil {
					delete(lastGen, id) // deleted: a new group of that name starts over, as in Kafka
				}
			}
			for id, g := range m.groups {
				if g.generation < lastGen[id] {
					t.Fatalf("group %s generation went back from %d to %d", id, lastGen[id], g.generation)
				}
				lastGen[id] = g.generation
				if g.state == Stable || g.state == CompletingRebalance {
					if _, ok := g.members[g.leader]; !ok {
						t.Fatalf("group %s %s with leader %q not a member", id, g.state, g.leader)
					}
				}
				if len(g.order) != len(g.members) {
					t.Fatalf("group %s: order %v vs %d members", id, g.order, len(g.members))
				}
				for mid := range g.members {
					if left[mid] {
						t.Fatalf("group %s: member %s left, yet is a member", id, mid)
					}
				}
			}
			// the timer heap agrees with a scan of every group
			var want time.Time
			wantOK := false
			for _, g := range m.groups {
				if d, ok := g.nextDeadline(); ok && (!wantOK || d.Before(want)) {
					want, wantOK = d, true
				}
			}
			if got, ok := m.NextDeadline(); ok != wantOK || !got.Equal(want) {
				t.Fatalf("NextDeadline = %v %v, scan says %v %v", got, ok, want, wantOK)
			}
		}
		next := func() Token { tok++; issued[tok] = true; return tok }
		for i := 0; i+2 < len(data); i += 3 {
			op, a, b := data[i]%8, data[i+1], data[i+2]
			g := fmt.Sprintf("g%d", a%2)
			client := fmt.Sprintf("c%d", a%3)
			member := known[int(b)%len(known)]
			inst := ""
			if b&0x80 != 0 {
				inst = fmt.Sprintf("i%d", a%2)
			}
			gen := int32(b%4) - 1
			switch op {
			case 0:
				check(m.JoinGroup(now, next(), &brokerop.JoinGroupReq{
					Group: g, MemberID: member, InstanceID: inst, ClientID: client, ProtocolType: "consumer",
					Protocols:        []brokerop.GroupProtocol{{Name: []string{"range", "sticky"}[b%2], Metadata: []byte{b % 3}}, {Name: "range"}},
					SessionTimeoutMs: 1000 + int32(a%3)*1000, RebalanceTimeoutMs: int32(b%5) * 1000, RequireKnownMemberID: a&0x40 != 0,
				}))
			case 1:
				req := &brokerop.SyncGroupReq{Group: g, MemberID: member, InstanceID: inst, Generation: gen}
				for _, k := range known[1:] {
					req.Assignments = append(req.Assignments, brokerop.SyncGroupAssignment{MemberID: k, Assignment: []byte(k)})
				}
				check(m.SyncGroup(now, next(), req))
			case 2:
				check(m.Heartbeat(now, next(), &brokerop.HeartbeatReq{Group: g, MemberID: member, InstanceID: inst, Generation: gen}))
			case 3:
				check(m.LeaveGroup(now, next(), &brokerop.LeaveGroupReq{Group: g, Members: []brokerop.LeaveGroupMember{{MemberID: member, InstanceID: inst}}}))
			case 4:
				check(m.OffsetCommit(now, next(), &brokerop.OffsetCommitReq{Group: g, MemberID: member, InstanceID: inst, Generation: gen,
					Topics: []brokerop.OffsetCommitTopic{{Topic: "t", Partitions: []brokerop.OffsetCommitPartition{{Partition: int32(b % 3), Offset: int64(a)}}}}}))
			case 5:
				if b == 255 { // the coordinator moves
					recs := m.Snapshot()
					m = NewMachine(m.cfg)
					m.Apply(recs)
					m.RestoreMembers(now)
					for tk := range issued {
						if answered[tk] == 0 {
							answered[tk] = 1 // parked on the old coordinator: lost
						}
					}
					check(nil)
					continue
				}
				now = now.Add(time.Duration(b) * 50 * time.Millisecond)
				check(m.Tick(now))
				if d, ok := m.NextDeadline(); ok && !d.After(now) {
					t.Fatalf("after Tick at %v a timer is still due at %v", now, d)
				}
			case 6:
				check(m.DeleteGroups(now, next(), &brokerop.DeleteGroupsReq{Groups: []string{g}}))
			case 7:
				check(m.OffsetDelete(now, next(), &brokerop.OffsetDeleteReq{Group: g, Topics: []brokerop.OffsetDeleteTopic{{Topic: "t", Partitions: []int32{int32(b % 3)}}}}))
			}
		}
		// Let every timer fire: every parked request must be answered.
		for range 1000 {
			d, ok := m.NextDeadline()
			if !ok {
				break
			}
			now = d
			check(m.Tick(now))
		}
		for tk := range issued {
			if answered[tk] != 1 {
				t.Fatalf("token %d answered %d times after every timeout passed", tk, answered[tk])
			}
		}
	})
}
