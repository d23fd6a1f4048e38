package share

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestAssignmentCoversPartitionsAfterChurn drives the coordinator the way kgo's share
// consumer does (epoch 0 to join with its topics; the epoch the last response gave; a lost
// response makes the next heartbeat a full one, with the topics; -1 to leave; a member that
// stops heartbeating expires) through random membership churn, and checks that once every
// live member has heartbeated, the members' own views of their assignments (the last
// assignment each was sent) cover every partition of the subscribed topics and match the
// coordinator's. A partition nobody fetches would strand its released records.
func TestAssignmentCoversPartitionsAfterChurn(t *testing.T) {
	topics := topicsAB
	subs := []string{"a", "b"}
	type client struct {
		id       string
		epoch    int32
		full     bool // the next heartbeat names its topics (joined, or after an error)
		assigned []TP
		silent   bool // stopped heartbeating: the session timeout removes it
	}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		m := NewMachine(Config{})
		now := t0
		var live []*client
		next := 0
		hb := func(c *client, lose bool) {
			req := HeartbeatReq{Group: "g", MemberID: c.id, MemberEpoch: c.epoch}
			if c.full {
				req.Topics = subs
			}
			r := m.Heartbeat(now, req, topics)
			if lose {
				c.full = true // kgo resends the topics after any error
				return
			}
			switch r.ErrorCode {
			case errNone:
			case ErrUnknownMemberID, ErrFencedMemberEpoch:
				c.epoch, c.full, c.assigned = 0, true, nil
				return
			default:
				t.Fatalf("seed %d: heartbeat %s: %+v", seed, c.id, r)
			}
			c.epoch, c.full = r.MemberEpoch, false
			if r.HasAssignment {
				c.assigned = r.Assignment
			}
		}
		for step := range 60 {
			now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
			m.Tick(now)
			switch op := rng.IntN(10); {
			case op < 3 || len(live) == 0:
				c := &client{id: fmt.Sprintf("m%02d", next), full: true}
				next++
				live = append(live, c)
				hb(c, rng.IntN(4) == 0)
			case op < 5:
				i := rng.IntN(len(live))
				c := live[i]
				live = slices.Delete(live, i, i+1)
				if rng.IntN(3) == 0 {
					c.silent = true // never heartbeats again
					continue
				}
				m.Heartbeat(now, HeartbeatReq{Group: "g", MemberID: c.id, MemberEpoch: -1}, topics)
			default:
				c := live[rng.IntN(len(live))]
				hb(c, rng.IntN(4) == 0)
			}
			if step%10 != 9 {
				continue
			}
			// Settle: past any silent member's session timeout, then every live member
			// heartbeats every heartbeat interval for longer than the session timeout, as kgo does.
			for range 11 {
				now = now.Add(m.cfg.HeartbeatInterval)
				m.Tick(now)
				for _, c := range live {
					hb(c, false)
				}
			}
			covered := map[TP]int{}
			for _, c := range live {
				for _, tp := range c.assigned {
					covered[tp]++
				}
			}
			if len(live) > 0 {
				for _, tp := range []TP{{"a", 0}, {"a", 1}, {"a", 2}, {"b", 0}} {
					if covered[tp] == 0 {
						t.Fatalf("seed %d step %d: %v assigned to no live member (%d live)", seed, step, tp, len(live))
					}
				}
			}
			d, _ := m.Describe("g")
			if len(d.Members) != len(live) {
				t.Fatalf("seed %d step %d: coordinator has %d members, %d live", seed, step, len(d.Members), len(live))
			}
			for i, mem := range d.Members {
				if c := live[i]; c.id != mem.ID || !slices.Equal(c.assigned, mem.Assigned) {
					t.Fatalf("seed %d step %d: member %s holds %v, coordinator says %s: %v", seed, step, c.id, c.assigned, mem.ID, mem.Assigned)
				}
			}
		}
	}
}
