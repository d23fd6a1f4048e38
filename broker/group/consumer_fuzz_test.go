package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// FuzzConsumerGroup drives KIP-848 consumer groups with an arbitrary sequence of client
// actions decoded from the input (joins, honest heartbeats, heartbeats with made-up epochs
// and owned partitions, leaves with -1 and -2, commits, topic changes, time passing) and
// checks after every step: a partition is held by at most one member and the ownership map
// is exactly what members hold; no member is past its group's epoch; group epochs never go
// back; clients that follow the protocol never own a partition at the same time; Tick leaves
// no deadline in the past.
func FuzzConsumerGroup(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 3, 1, 1, 0})
	f.Add([]byte{0, 2, 0, 3, 1, 2, 1, 3, 4, 2, 1, 3, 0, 2, 5, 60, 1, 3})
	f.Add([]byte{0, 0, 6, 9, 1, 0, 2, 0, 7, 0, 5, 200, 0, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		ids := 0
		m := NewMachine(MachineConfig{NewMemberID: func(c string) string { ids++; return fmt.Sprintf("%s-%d", c, ids) }})
		now := time.Unix(1_000_000, 0)
		topics := []brokerop.ConsumerGroupTopic{{Name: "a", TopicID: tid{1}, Partitions: 3}, {Name: "b", TopicID: tid{2}, Partitions: 2}}
		type fclient struct {
			id, inst string
			epoch    int32
			joined   bool
			owned    assignment
		}
		clients := []*fclient{{}, {}, {inst: "s1"}, {inst: "s2"}}
		var tok Token
		lastEpoch := map[string]int32{}
		next := func(i *int) byte {
			if *i >= len(data) {
				return 0
			}
			b := data[*i]
			*i++
			return b
		}
		send := func(req *brokerop.ConsumerGroupHeartbeatReq) *brokerop.ConsumerGroupHeartbeatResp {
			tok++
			req.Group = "g"
			req.HasTopics, req.Topics = true, topics
			outs := m.ConsumerGroupHeartbeat(now, tok, req)
			if len(outs) != 1 || outs[0].Token != tok {
				t.Fatalf("heartbeat answered %d times", len(outs))
			}
			return outs[0].Resp.(*brokerop.ConsumerGroupHeartbeatResp)
		}
		wire := func(a assignment) []brokerop.ConsumerGroupTopicPartitions {
			out := []brokerop.ConsumerGroupTopicPartitions{}
			for t, ps := range a {
				out = append(out, brokerop.ConsumerGroupTopicPartitions{TopicID: t, Partitions: ps})
			}
			return out
		}
		absorb := func(c *fclient, r *brokerop.ConsumerGroupHeartbeatResp) {
			switch {
			case r.ErrorCode == errUnknownMemberID || r.ErrorCode == errFencedMemberEpoch || r.ErrorCode == errFencedInstanceID:
				c.joined, c.epoch, c.owned = false, 0, nil // the client gives everything up and rejoins
			case r.ErrorCode != 0:
			default:
				c.id, c.epoch = r.MemberID, r.MemberEpoch
				if r.HasAssignment {
					c.owned = assignment{}
					for _, tp := range r.Assignment {
						for _, p := range tp.Partitions {
							c.owned.add(tp.TopicID, p)
						}
					}
				}
			}
		}
		for i := 0; i < len(data); {
			op, c := next(&i)%8, clients[int(next(&i))%len(clients)]
			switch op {
			case 0: // join
				if c.joined {
					break
				}
				r := send(&brokerop.ConsumerGroupHeartbeatReq{MemberID: c.id, InstanceID: c.inst, RebalanceTimeoutMs: 10000,
					HasSubscribedTopicNames: true, SubscribedTopicNames: []string{"a", "b"}, HasOwned: true,
					ServerAssignor: []string{"", "uniform", "range"}[int(next(&i))%3]})
				if r.ErrorCode == 0 {
					c.joined = true
				}
				absorb(c, r)
			case 1: // honest heartbeat
				if !c.joined {
					break
				}
				absorb(c, send(&brokerop.ConsumerGroupHeartbeatReq{MemberID: c.id, InstanceID: c.inst, MemberEpoch: c.epoch, RebalanceTimeoutMs: -1, HasOwned: true, Owned: wire(c.owned)}))
			case 2: // heartbeat with a made-up epoch and owned set (a confused or stale client)
				epoch := int32(next(&i) % 8)
				owned := assignment{}
				owned.add(tid{1}, int32(next(&i)%3))
				r := send(&brokerop.ConsumerGroupHeartbeatReq{MemberID: c.id, InstanceID: c.inst, MemberEpoch: epoch, RebalanceTimeoutMs: -1, HasOwned: true, Owned: wire(owned)})
				if r.ErrorCode == 0 && c.joined {
					absorb(c, r) // accepted: the answer is authoritative for this client
				} else if c.joined && r.ErrorCode != 0 {
					absorb(c, r)
				}
			case 3, 4: // leave (-1) or static leave (-2)
				if !c.joined {
					break
				}
				send(&brokerop.ConsumerGroupHeartbeatReq{MemberID: c.id, InstanceID: c.inst, MemberEpoch: -1 - int32(op-3), RebalanceTimeoutMs: -1})
				c.joined, c.epoch, c.owned = false, 0, nil
				if c.inst == "" {
					c.id = ""
				}
			case 5: // time passes
				now = now.Add(time.Duration(next(&i)) * time.Second)
				if d, ok := m.NextDeadline(); ok && !now.Before(d) {
					m.Tick(now)
				}
				if d, ok := m.NextDeadline(); ok && !now.Before(d) {
					t.Fatalf("deadline %v left in the past at %v", d, now)
				}
			case 6: // a topic grows
				topics[next(&i)%2].Partitions += int32(next(&i) % 3)
			case 7: // commit with the client's epoch
				tok++
				outs := m.OffsetCommit(now, tok, &brokerop.OffsetCommitReq{Group: "g", MemberID: c.id, Generation: c.epoch,
					Topics: []brokerop.OffsetCommitTopic{{Topic: "a", Partitions: []brokerop.OffsetCommitPartition{{Partition: 0, Offset: 1}}}}})
				if len(outs) != 1 {
					t.Fatalf("commit answered %d times", len(outs))
				}
				m.Apply(outs[0].Records)
			}
			// Server-side invariants.
			g := m.groups["g"]
			if g == nil || g.cg == nil {
				continue
			}
			cg := g.cg
			if cg.epoch < lastEpoch["g"] {
				t.Fatalf("group epoch went back from %d to %d", lastEpoch["g"], cg.epoch)
			}
			lastEpoch["g"] = cg.epoch
			held := map[tpart]string{}
			for id, mem := range cg.members {
				if mem.epoch > cg.epoch {
					t.Fatalf("member %s at epoch %d past the group's %d", id, mem.epoch, cg.epoch)
				}
				for _, a := range []assignment{mem.assigned, mem.revoking} {
					for _, tp := range a.parts() {
						if o, ok := held[tp]; ok {
							t.Fatalf("partition %v held by %s and %s", tp, o, id)
						}
						held[tp] = id
					}
				}
			}
			if len(held) != len(cg.owners) {
				t.Fatalf("owners map has %d entries, members hold %d", len(cg.owners), len(held))
			}
			for tp, id := range held {
				if cg.owners[tp] != id {
					t.Fatalf("owners[%v] = %q, held by %q", tp, cg.owners[tp], id)
				}
			}
			// Client-side: clients that are members never share a partition. (A client whose
			// session expired without it knowing is not: the session timeout is the bound.)
			seen := map[tpart]int{}
			for ci, cl := range clients {
				if mem := cg.members[cl.id]; !cl.joined || mem == nil || mem.epoch < 0 {
					continue
				}
				for _, tp := range cl.owned.parts() {
					if o, ok := seen[tp]; ok {
						t.Fatalf("clients %d and %d both own %v", o, ci, tp)
					}
					seen[tp] = ci
				}
			}
		}
	})
}
