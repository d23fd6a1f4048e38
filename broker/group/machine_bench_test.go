package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// BenchmarkCoordinatorHeartbeat: one heartbeat plus the owner loop's NextDeadline, with many
// stable groups of three members each (the steady state of a busy coordinator).
func BenchmarkCoordinatorHeartbeat(b *testing.B) {
	for _, groups := range []int{10, 1000} {
		b.Run(fmt.Sprintf("groups=%d/impl=ours", groups), func(b *testing.B) {
			m := NewMachine(MachineConfig{InitialRebalanceDelay: time.Millisecond})
			now := time.Unix(1000, 0)
			var tok Token
			for gi := range groups {
				for c := range 3 {
					tok++
					m.JoinGroup(now, tok, &brokerop.JoinGroupReq{Group: fmt.Sprintf("g%d", gi), ClientID: fmt.Sprint(c), ProtocolType: "consumer",
						Protocols: []brokerop.GroupProtocol{{Name: "range"}}, SessionTimeoutMs: 45000, RebalanceTimeoutMs: 60000})
				}
			}
			// the initial delay (extended once, members kept arriving) ends: every group
			// completes its join with 3 members
			for range 2 {
				now = now.Add(time.Millisecond)
				m.Tick(now)
			}
			type mem struct{ g, id string }
			var mems []mem
			for id, g := range m.groups {
				tok++
				m.SyncGroup(now, tok, &brokerop.SyncGroupReq{Group: id, MemberID: g.leader, Generation: g.generation})
				if g.state != Stable || len(g.members) != 3 {
					b.Fatalf("group %s: %s with %d members", id, g.state, len(g.members))
				}
				for _, mid := range g.order {
					mems = append(mems, mem{id, mid})
				}
			}
			i := 0
			for b.Loop() {
				mm := mems[i%len(mems)]
				i++
				tok++
				outs := m.Heartbeat(now, tok, &brokerop.HeartbeatReq{Group: mm.g, MemberID: mm.id, Generation: 1})
				if outs[0].Resp.(*brokerop.HeartbeatResp).ErrorCode != 0 {
					b.Fatal("heartbeat failed")
				}
				m.NextDeadline()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
		})
	}
}
