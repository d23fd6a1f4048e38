package group

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// Machine-level tests of KIP-848 consumer groups, driven with a fake clock (the now
// arguments) and simulated clients that follow the protocol.

var (
	tidA = tid{0xa}
	tidB = tid{0xb}
	tidC = tid{0xc}
)

type cgHarness struct {
	t      *testing.T
	m      *Machine
	now    time.Time
	tok    Token
	topics []brokerop.ConsumerGroupTopic
}

func newCGHarness(t *testing.T, topics ...brokerop.ConsumerGroupTopic) *cgHarness {
	n := 0
	return &cgHarness{
		t:   t,
		now: time.Unix(1_000_000, 0),
		m: NewMachine(MachineConfig{ConsumerStartGrace: -1, NewMemberID: func(c string) string {
			n++
			return fmt.Sprintf("%s-%d", c, n)
		}}),
		topics: topics,
	}
}

func topic(name string, id tid, parts int32) brokerop.ConsumerGroupTopic {
	return brokerop.ConsumerGroupTopic{Name: name, TopicID: id, Partitions: parts}
}

func (h *cgHarness) hb(req *brokerop.ConsumerGroupHeartbeatReq) *brokerop.ConsumerGroupHeartbeatResp {
	h.t.Helper()
	h.tok++
	if req.Group == "" {
		req.Group = "g"
	}
	req.HasTopics, req.Topics = true, h.topics
	outs := h.m.ConsumerGroupHeartbeat(h.now, h.tok, req)
	if len(outs) != 1 || outs[0].Token != h.tok || len(outs[0].Records) != 0 {
		h.t.Fatalf("heartbeat outputs: %+v", outs)
	}
	return outs[0].Resp.(*brokerop.ConsumerGroupHeartbeatResp)
}

func (h *cgHarness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	if dl, ok := h.m.NextDeadline(); ok && !h.now.Before(dl) {
		h.m.Tick(h.now)
	}
}

// client is a simulated consumer: it owns what the last assignment gave it (revoking at once
// what an assignment leaves out) and reports what it owns on every heartbeat.
type client struct {
	h        *cgHarness
	id, inst string
	epoch    int32
	owned    assignment
	names    []string
	regex    string
	assignor string
}

// joinTwo joins c1 and then c2, both subscribed to topic a: the clients and c2's answer.
func (h *cgHarness) joinTwo() (c1, c2 *client, r2 *brokerop.ConsumerGroupHeartbeatResp) {
	h.t.Helper()
	c1 = &client{names: []string{"a"}}
	h.join(c1)
	c2 = &client{names: []string{"a"}}
	return c1, c2, h.join(c2)
}

func (h *cgHarness) join(c *client) *brokerop.ConsumerGroupHeartbeatResp {
	h.t.Helper()
	c.h = h
	req := &brokerop.ConsumerGroupHeartbeatReq{
		MemberID: c.id, InstanceID: c.inst, RebalanceTimeoutMs: 30000, ServerAssignor: c.assignor,
		HasOwned: true, Owned: []brokerop.ConsumerGroupTopicPartitions{}, ClientID: "cl",
	}
	if c.regex != "" {
		req.HasSubscribedTopicRegex, req.SubscribedTopicRegex = true, c.regex
	} else {
		req.HasSubscribedTopicNames, req.SubscribedTopicNames = true, c.names
	}
	resp := h.hb(req)
	if resp.ErrorCode != 0 {
		h.t.Fatalf("join: error %d %s", resp.ErrorCode, resp.ErrorMessage)
	}
	c.id, c.epoch = resp.MemberID, resp.MemberEpoch
	c.apply(resp)
	return resp
}

func (c *client) apply(resp *brokerop.ConsumerGroupHeartbeatResp) {
	if resp.ErrorCode != 0 {
		return
	}
	c.epoch = resp.MemberEpoch
	if resp.HasAssignment {
		c.owned = assignment{}
		for _, t := range resp.Assignment {
			for _, p := range t.Partitions {
				c.owned.add(t.TopicID, p)
			}
		}
	}
}

func (c *client) ownedWire() []brokerop.ConsumerGroupTopicPartitions {
	out := []brokerop.ConsumerGroupTopicPartitions{}
	for t, ps := range c.owned {
		out = append(out, brokerop.ConsumerGroupTopicPartitions{TopicID: t, Partitions: slices.Clone(ps)})
	}
	return out
}

func (c *client) beat() *brokerop.ConsumerGroupHeartbeatResp {
	c.h.t.Helper()
	resp := c.h.hb(&brokerop.ConsumerGroupHeartbeatReq{
		MemberID: c.id, MemberEpoch: c.epoch, InstanceID: c.inst, RebalanceTimeoutMs: -1,
		HasOwned: true, Owned: c.ownedWire(),
	})
	c.apply(resp)
	return resp
}

func (c *client) leave(epoch int32) *brokerop.ConsumerGroupHeartbeatResp {
	return c.h.hb(&brokerop.ConsumerGroupHeartbeatReq{MemberID: c.id, MemberEpoch: epoch, InstanceID: c.inst, RebalanceTimeoutMs: -1})
}

// noDoubleOwnership fails if two clients own a partition at once.
func noDoubleOwnership(t *testing.T, cs ...*client) {
	t.Helper()
	seen := map[tpart]string{}
	for _, c := range cs {
		for _, tp := range c.owned.parts() {
			if o, ok := seen[tp]; ok {
				t.Fatalf("partition %x/%d owned by %s and %s", tp.topic[0], tp.part, o, c.id)
			}
			seen[tp] = c.id
		}
	}
}

func settle(t *testing.T, rounds int, cs ...*client) {
	t.Helper()
	for range rounds {
		for _, c := range cs {
			if r := c.beat(); r.ErrorCode != 0 {
				t.Fatalf("%s heartbeat: error %d", c.id, r.ErrorCode)
			}
			noDoubleOwnership(t, cs...)
		}
	}
}

func TestConsumerGroupJoinGetsEverything(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 4), topic("b", tidB, 2))
	c := &client{names: []string{"a", "b"}}
	resp := h.join(c)
	if c.id != "cl-1" || resp.MemberEpoch != 1 || resp.HeartbeatIntervalMs != 5000 || !resp.HasAssignment {
		t.Fatalf("join: %+v", resp)
	}
	if got := c.owned.count(); got != 6 {
		t.Fatalf("owned %d partitions, want 6: %v", got, c.owned)
	}
	// A keepalive with nothing changed carries no assignment and keeps the epoch.
	r := c.beat()
	if r.ErrorCode != 0 || r.MemberEpoch != 1 || r.HasAssignment {
		t.Fatalf("keepalive: %+v", r)
	}
}

func TestConsumerGroupRevokeBeforeAssign(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 4))
	c1, c2, r := h.joinTwo()
	// c2 is at epoch 2 but gets nothing: c1 still holds everything.
	if r.MemberEpoch != 2 || c2.owned.count() != 0 {
		t.Fatalf("second join: %+v owned %v", r, c2.owned)
	}
	// c1 is asked to revoke two partitions and stays at epoch 1 until it has.
	r = c1.beat()
	if r.MemberEpoch != 1 || !r.HasAssignment || c1.owned.count() != 2 {
		t.Fatalf("c1 revoke: %+v owned %v", r, c1.owned)
	}
	// c2 still gets nothing until c1 reports the revocation.
	if r = c2.beat(); c2.owned.count() != 0 {
		t.Fatalf("c2 got partitions c1 has not released: %+v", r)
	}
	r = c1.beat() // reports owning only two: moves to epoch 2
	if r.MemberEpoch != 2 {
		t.Fatalf("c1 after revoking: %+v", r)
	}
	r = c2.beat()
	if !r.HasAssignment || c2.owned.count() != 2 || r.MemberEpoch != 2 {
		t.Fatalf("c2 after release: %+v owned %v", r, c2.owned)
	}
	noDoubleOwnership(t, c1, c2)
	d := h.m.ConsumerGroupDescribe(h.now, 99, &brokerop.ConsumerGroupDescribeReq{Groups: []string{"g"}})[0].Resp.(*brokerop.ConsumerGroupDescribeResp)
	if g := d.Groups[0]; g.State != "Stable" || g.Epoch != 2 || g.AssignmentEpoch != 2 || len(g.Members) != 2 || g.AssignorName != "uniform" {
		t.Fatalf("describe: %+v", g)
	}
}

func TestConsumerGroupEpochFencing(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 2))
	c1, c2, _ := h.joinTwo()
	settle(t, 3, c1, c2)
	if c1.epoch != 2 || c2.epoch != 2 {
		t.Fatalf("epochs %d %d", c1.epoch, c2.epoch)
	}
	// A newer epoch than the member's is fenced.
	req := &brokerop.ConsumerGroupHeartbeatReq{MemberID: c1.id, MemberEpoch: 3, RebalanceTimeoutMs: -1}
	if r := h.hb(req); r.ErrorCode != errFencedMemberEpoch {
		t.Fatalf("epoch 3: %+v", r)
	}
	// The previous epoch is accepted when the owned partitions are a subset of the
	// assignment (a lost response), and fenced without owned partitions.
	req = &brokerop.ConsumerGroupHeartbeatReq{MemberID: c1.id, MemberEpoch: 1, RebalanceTimeoutMs: -1, HasOwned: true, Owned: c1.ownedWire()}
	if r := h.hb(req); r.ErrorCode != 0 || r.MemberEpoch != 2 {
		t.Fatalf("previous epoch with subset: %+v", r)
	}
	req = &brokerop.ConsumerGroupHeartbeatReq{MemberID: c1.id, MemberEpoch: 1, RebalanceTimeoutMs: -1}
	if r := h.hb(req); r.ErrorCode != errFencedMemberEpoch {
		t.Fatalf("previous epoch without owned: %+v", r)
	}
	// Owning a partition it was not given: fenced.
	req = &brokerop.ConsumerGroupHeartbeatReq{MemberID: c1.id, MemberEpoch: 1, RebalanceTimeoutMs: -1, HasOwned: true,
		Owned: []brokerop.ConsumerGroupTopicPartitions{{TopicID: tidA, Partitions: []int32{0, 1}}}}
	if r := h.hb(req); r.ErrorCode != errFencedMemberEpoch {
		t.Fatalf("previous epoch with foreign partitions: %+v", r)
	}
	if r := h.hb(&brokerop.ConsumerGroupHeartbeatReq{MemberID: "nobody", MemberEpoch: 2, RebalanceTimeoutMs: -1}); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("unknown member: %+v", r)
	}
	if r := h.hb(&brokerop.ConsumerGroupHeartbeatReq{Group: "other", MemberID: "x", MemberEpoch: 2, RebalanceTimeoutMs: -1}); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("unknown group: %+v", r)
	}
}

func TestConsumerGroupInvalidRequests(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 2))
	base := func() *brokerop.ConsumerGroupHeartbeatReq {
		return &brokerop.ConsumerGroupHeartbeatReq{RebalanceTimeoutMs: 1000, HasSubscribedTopicNames: true, SubscribedTopicNames: []string{"a"}, HasOwned: true}
	}
	for name, tc := range map[string]struct {
		mod  func(*brokerop.ConsumerGroupHeartbeatReq)
		code int16
	}{
		"bad assignor": {func(r *brokerop.ConsumerGroupHeartbeatReq) { r.ServerAssignor = "sticky" }, errUnsupportedAssignor},
		"bad regex": {func(r *brokerop.ConsumerGroupHeartbeatReq) {
			r.HasSubscribedTopicRegex, r.SubscribedTopicRegex = true, "a("
		}, errInvalidRegularExpress},
		"owned on join": {func(r *brokerop.ConsumerGroupHeartbeatReq) {
			r.Owned = []brokerop.ConsumerGroupTopicPartitions{{TopicID: tidA}}
		}, errInvalidRequest},
		"null owned on join": {func(r *brokerop.ConsumerGroupHeartbeatReq) { r.HasOwned = false }, errInvalidRequest},
		"no subscription":    {func(r *brokerop.ConsumerGroupHeartbeatReq) { r.HasSubscribedTopicNames = false }, errInvalidRequest},
		"no rebalance":       {func(r *brokerop.ConsumerGroupHeartbeatReq) { r.RebalanceTimeoutMs = -1 }, errInvalidRequest},
		"epoch below -2":     {func(r *brokerop.ConsumerGroupHeartbeatReq) { r.MemberEpoch = -3 }, errInvalidRequest},
		"empty id heartbeat": {func(r *brokerop.ConsumerGroupHeartbeatReq) { r.MemberEpoch = 4 }, errUnknownMemberID},
	} {
		req := base()
		tc.mod(req)
		if r := h.hb(req); r.ErrorCode != tc.code || r.ErrorMessage == "" {
			t.Errorf("%s: got %d %q, want %d with a message", name, r.ErrorCode, r.ErrorMessage, tc.code)
		}
	}
	h.tok++
	if r := h.m.ConsumerGroupHeartbeat(h.now, h.tok, base())[0].Resp.(*brokerop.ConsumerGroupHeartbeatResp); r.ErrorCode != errInvalidGroupID {
		t.Errorf("empty group id: %+v", r)
	}
	if len(h.m.groups) != 0 {
		t.Fatalf("a refused request created a group: %v", h.m.groups)
	}
}

func TestConsumerGroupSessionTimeout(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 4))
	c1, c2, _ := h.joinTwo()
	settle(t, 3, c1, c2)
	// c2 stops heartbeating; c1 keeps going.
	for range 8 {
		h.advance(5 * time.Second)
		c1.beat()
	}
	if c1.owned.count() != 2 {
		t.Fatalf("c1 before c2's session ends: %v", c1.owned)
	}
	h.advance(5 * time.Second) // 45s since c2's last heartbeat: the session timeout
	if r := c2.beat(); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("expired member: %+v", r)
	}
	c1.beat()
	if c1.owned.count() != 4 || c1.epoch != 3 {
		t.Fatalf("c1 after c2 expired: epoch %d owned %v", c1.epoch, c1.owned)
	}
}

func TestConsumerGroupRebalanceTimeout(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 4))
	c1, c2, _ := h.joinTwo()
	// c1 is told to revoke but keeps reporting all four partitions.
	r := h.hb(&brokerop.ConsumerGroupHeartbeatReq{MemberID: c1.id, MemberEpoch: 1, RebalanceTimeoutMs: -1, HasOwned: true,
		Owned: []brokerop.ConsumerGroupTopicPartitions{{TopicID: tidA, Partitions: []int32{0, 1, 2, 3}}}})
	if r.MemberEpoch != 1 || !r.HasAssignment {
		t.Fatalf("revocation: %+v", r)
	}
	for range 6 { // 30s: the rebalance timeout
		h.advance(5 * time.Second)
		c2.beat()
		h.hb(&brokerop.ConsumerGroupHeartbeatReq{MemberID: c1.id, MemberEpoch: 1, RebalanceTimeoutMs: -1, HasOwned: true,
			Owned: []brokerop.ConsumerGroupTopicPartitions{{TopicID: tidA, Partitions: []int32{0, 1, 2, 3}}}})
	}
	if r := c1.beat(); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("member that never revoked: %+v", r)
	}
	c2.beat()
	if c2.owned.count() != 4 {
		t.Fatalf("c2 after c1 was removed: %v", c2.owned)
	}
}

func TestConsumerGroupLeave(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 3))
	c1, c2, _ := h.joinTwo()
	settle(t, 3, c1, c2)
	if r := c2.leave(-1); r.ErrorCode != 0 || r.MemberEpoch != -1 || r.MemberID != c2.id {
		t.Fatalf("leave: %+v", r)
	}
	settle(t, 2, c1)
	if c1.owned.count() != 3 || c1.epoch != 3 {
		t.Fatalf("after leave: epoch %d owned %v", c1.epoch, c1.owned)
	}
	if r := c2.leave(-1); r.ErrorCode != errUnknownMemberID {
		t.Fatalf("second leave: %+v", r)
	}
}

func TestConsumerGroupStaticMember(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 4))
	c1 := &client{names: []string{"a"}, inst: "i1"}
	c2 := &client{names: []string{"a"}, inst: "i2"}
	h.join(c1)
	h.join(c2)
	settle(t, 3, c1, c2)
	kept := c2.owned.clone()
	epoch := c2.epoch
	// Another member with c1's instance id while c1 is active: refused.
	dup := &client{names: []string{"a"}, inst: "i1", id: "new-1"}
	dup.h = h
	r := h.hb(&brokerop.ConsumerGroupHeartbeatReq{MemberID: dup.id, InstanceID: "i1", RebalanceTimeoutMs: 1000,
		HasSubscribedTopicNames: true, SubscribedTopicNames: []string{"a"}, HasOwned: true})
	if r.ErrorCode != errUnreleasedInstanceID {
		t.Fatalf("duplicate instance: %+v", r)
	}
	// c2 leaves temporarily (-2): its partitions stay reserved, no rebalance.
	if r := c2.leave(-2); r.ErrorCode != 0 || r.MemberEpoch != -2 {
		t.Fatalf("static leave: %+v", r)
	}
	c1.beat()
	if c1.owned.count() != 2 || c1.epoch != epoch {
		t.Fatalf("c1 after static leave: epoch %d owned %v", c1.epoch, c1.owned)
	}
	// It comes back under a new member id and gets the same epoch and partitions.
	back := &client{names: []string{"a"}, inst: "i2", id: "c2-again"}
	h.join(back)
	if back.epoch != epoch || !back.owned.equal(kept) {
		t.Fatalf("static rejoin: epoch %d (want %d) owned %v (want %v)", back.epoch, epoch, back.owned, kept)
	}
	// The old id is gone.
	if r := c2.beat(); r.ErrorCode != errFencedInstanceID && r.ErrorCode != errUnknownMemberID {
		t.Fatalf("old static id: %+v", r)
	}
	// A static member that left and does not return within the session timeout is removed.
	back.leave(-2)
	for range 10 {
		h.advance(5 * time.Second)
		c1.beat()
	}
	c1.beat()
	if c1.owned.count() != 4 {
		t.Fatalf("c1 after the static member expired: %v", c1.owned)
	}
}

func TestConsumerGroupRegexAndNewTopics(t *testing.T) {
	h := newCGHarness(t, topic("orders-1", tidA, 1), topic("other", tidB, 1))
	c := &client{regex: "orders-.*"}
	h.join(c)
	if c.owned.count() != 1 || !c.owned.has(tidA, 0) {
		t.Fatalf("regex join: %v", c.owned)
	}
	// "orders" alone does not match (the whole name must match).
	h.topics = append(h.topics, topic("orders", tid{0xd}, 1), topic("orders-2", tidC, 2))
	r := c.beat()
	if r.MemberEpoch != 2 || c.owned.count() != 3 || !c.owned.has(tidC, 1) || c.owned.has(tid{0xd}, 0) {
		t.Fatalf("after new topics: %+v owned %v", r, c.owned)
	}
	// A partition added to a subscribed topic is picked up too.
	h.topics[0].Partitions = 2
	c.beat()
	if c.owned.count() != 4 {
		t.Fatalf("after growing a topic: %v", c.owned)
	}
}

func TestConsumerGroupRangeAssignor(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 3), topic("b", tidB, 3))
	c1 := &client{names: []string{"a", "b"}, assignor: "range"}
	c2 := &client{names: []string{"a", "b"}, assignor: "range"}
	h.join(c1)
	h.join(c2)
	settle(t, 3, c1, c2)
	first, second := c1, c2
	if first.id > second.id {
		first, second = second, first
	}
	if !slices.Equal(first.owned[tidA], []int32{0, 1}) || !slices.Equal(first.owned[tidB], []int32{0, 1}) ||
		!slices.Equal(second.owned[tidA], []int32{2}) || !slices.Equal(second.owned[tidB], []int32{2}) {
		t.Fatalf("range: %v / %v", first.owned, second.owned)
	}
}

func TestAssignUniformBalancedAndSticky(t *testing.T) {
	spec := assignSpec{
		members:    []string{"a", "b", "c"},
		subscribed: map[string][]tid{"a": {tidA}, "b": {tidA}, "c": {tidA}},
		partitions: map[tid]int32{tidA: 10},
		previous:   map[string]assignment{},
	}
	out := assignUniform(spec)
	counts := []int{out["a"].count(), out["b"].count(), out["c"].count()}
	slices.Sort(counts)
	if !slices.Equal(counts, []int{3, 3, 4}) {
		t.Fatalf("uniform counts %v", counts)
	}
	// A fourth member: every earlier member keeps all but what it must give up.
	spec.members = append(spec.members, "d")
	spec.subscribed["d"] = []tid{tidA}
	spec.previous = out
	next := assignUniform(spec)
	moved := 0
	for _, m := range []string{"a", "b", "c"} {
		for _, tp := range out[m].parts() {
			if !next[m].has(tp.topic, tp.part) {
				moved++
			}
		}
	}
	if moved != 2 || next["d"].count() != 2 {
		t.Fatalf("sticky: moved %d, d got %v", moved, next["d"])
	}
}

// TestConsumerGroupSimulation joins, leaves and expires random members of a group and checks
// after every heartbeat that no partition is owned twice, and at the end that the group
// converges to a balanced assignment covering every partition.
func TestConsumerGroupSimulation(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			h := newCGHarness(t, topic("a", tidA, 7), topic("b", tidB, 5))
			assignor := []string{"uniform", "range"}[seed%2]
			var live []*client
			for step := range 200 {
				switch x := rng.IntN(10); {
				case x == 0 && len(live) < 6:
					c := &client{names: []string{"a", "b"}, assignor: assignor}
					h.join(c)
					live = append(live, c)
				case x == 1 && len(live) > 1:
					i := rng.IntN(len(live))
					live[i].leave(-1)
					live = slices.Delete(live, i, i+1)
				default:
					if len(live) == 0 {
						continue
					}
					c := live[rng.IntN(len(live))]
					if r := c.beat(); r.ErrorCode != 0 {
						t.Fatalf("step %d: %s heartbeat error %d", step, c.id, r.ErrorCode)
					}
				}
				h.advance(time.Second)
				noDoubleOwnership(t, live...)
			}
			if len(live) == 0 {
				return
			}
			settle(t, 4, live...)
			total, lo, hi := 0, 100, 0
			for _, c := range live {
				n := c.owned.count()
				total += n
				lo, hi = min(lo, n), max(hi, n)
			}
			if total != 12 {
				t.Fatalf("converged to %d partitions owned, want 12", total)
			}
			if assignor == "uniform" && hi-lo > 1 {
				t.Fatalf("uniform not balanced: %d..%d", lo, hi)
			}
			d := h.m.ConsumerGroupDescribe(h.now, 1, &brokerop.ConsumerGroupDescribeReq{Groups: []string{"g"}})[0].Resp.(*brokerop.ConsumerGroupDescribeResp)
			if d.Groups[0].State != "Stable" {
				t.Fatalf("state after settling: %s", d.Groups[0].State)
			}
		})
	}
}

func TestConsumerGroupOffsetCommit(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 2))
	c1 := &client{names: []string{"a"}}
	h.join(c1)
	commit := func(member string, gen int32, part int32) int16 {
		h.tok++
		outs := h.m.OffsetCommit(h.now, h.tok, &brokerop.OffsetCommitReq{Group: "g", MemberID: member, Generation: gen,
			Topics: []brokerop.OffsetCommitTopic{{Topic: "a", Partitions: []brokerop.OffsetCommitPartition{{Partition: part, Offset: 42}}}}})
		if code := outs[0].Resp.(*brokerop.OffsetCommitResp).Topics[0].Partitions[0].ErrorCode; code != 0 {
			return code
		}
		h.m.Apply(outs[0].Records)
		return 0
	}
	if code := commit(c1.id, 1, 0); code != 0 {
		t.Fatalf("commit at the member epoch: %d", code)
	}
	if code := commit(c1.id, 2, 0); code != errStaleMemberEpoch {
		t.Fatalf("commit at a future epoch: %d", code)
	}
	if code := commit("nobody", 1, 0); code != errUnknownMemberID {
		t.Fatalf("commit by unknown member: %d", code)
	}
	if code := commit("", -1, 0); code != errUnknownMemberID {
		t.Fatalf("simple commit to a group with members: %d", code)
	}
	c2 := &client{names: []string{"a"}}
	h.join(c2)
	settle(t, 3, c1, c2)
	if c1.epoch != 2 {
		t.Fatalf("c1 epoch %d", c1.epoch)
	}
	// Epoch 1 is still good for the partition c1 kept since epoch 1, not for one it lost.
	keptPart := c1.owned[tidA][0]
	if code := commit(c1.id, 1, keptPart); code != 0 {
		t.Fatalf("older epoch, partition held since then: %d", code)
	}
	if code := commit(c1.id, 1, 1-keptPart); code != errStaleMemberEpoch {
		t.Fatalf("older epoch, partition no longer held: %d", code)
	}
	h.tok++
	f := h.m.OffsetFetch(h.now, h.tok, &brokerop.OffsetFetchReq{Group: "g"})[0].Resp.(*brokerop.OffsetFetchResp)
	if len(f.Topics) != 1 || f.Topics[0].Partitions[0].Offset != 42 {
		t.Fatalf("fetch: %+v", f)
	}
}

func TestConsumerGroupMixedWithClassic(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 2))
	// A classic group with offsets but no members is upgraded by the first heartbeat; its
	// offsets stay.
	h.m.Apply([]Record{{Kind: KindCommit, Group: "g", Topic: "a", Partition: 0, Offset: 7, LeaderEpoch: -1}})
	c := &client{names: []string{"a"}}
	h.join(c)
	h.tok++
	f := h.m.OffsetFetch(h.now, h.tok, &brokerop.OffsetFetchReq{Group: "g"})[0].Resp.(*brokerop.OffsetFetchResp)
	if len(f.Topics) != 1 || f.Topics[0].Partitions[0].Offset != 7 {
		t.Fatalf("offsets after upgrade: %+v", f)
	}
	// Classic APIs on the consumer group.
	h.tok++
	j := h.m.JoinGroup(h.now, h.tok, &brokerop.JoinGroupReq{Group: "g", ProtocolType: "consumer", SessionTimeoutMs: 10000, RebalanceTimeoutMs: 10000,
		Protocols: []brokerop.GroupProtocol{{Name: "range"}}})[0].Resp.(*brokerop.JoinGroupResp)
	if j.ErrorCode != errInconsistentGroupProto {
		t.Fatalf("classic join to a consumer group: %+v", j)
	}
	h.tok++
	dg := h.m.DescribeGroups(h.now, h.tok, &brokerop.DescribeGroupsReq{Groups: []string{"g"}})[0].Resp.(*brokerop.DescribeGroupsResp)
	if dg.Groups[0].ErrorCode != errGroupIDNotFound {
		t.Fatalf("DescribeGroups of a consumer group: %+v", dg)
	}
	h.tok++
	lg := h.m.ListGroups(h.now, h.tok, &brokerop.ListGroupsReq{TypesFilter: []string{"consumer"}})[0].Resp.(*brokerop.ListGroupsResp)
	if len(lg.Groups) != 1 || lg.Groups[0].Type != "consumer" || lg.Groups[0].State != "Stable" {
		t.Fatalf("ListGroups: %+v", lg)
	}
	h.tok++
	del := h.m.DeleteGroups(h.now, h.tok, &brokerop.DeleteGroupsReq{Groups: []string{"g"}})[0].Resp.(*brokerop.DeleteGroupsResp)
	if del.Groups[0].ErrorCode != errNonEmptyGroup {
		t.Fatalf("DeleteGroups of a non-empty consumer group: %+v", del)
	}
	// Once empty, a classic member may take the group back.
	c.leave(-1)
	h.tok++
	if outs := h.m.JoinGroup(h.now, h.tok, &brokerop.JoinGroupReq{Group: "g", ClientID: "k", ProtocolType: "consumer", SessionTimeoutMs: 10000, RebalanceTimeoutMs: 10000,
		Protocols: []brokerop.GroupProtocol{{Name: "range"}}}); len(outs) != 0 {
		t.Fatalf("classic join to an emptied consumer group: %+v (want it parked for the rebalance)", outs[0].Resp)
	}
	if g := h.m.groups["g"]; g.cg != nil || len(g.members) != 1 || g.offsets[tp{"a", 0}].offset != 7 {
		t.Fatalf("group after the downgrade: %+v", g)
	}
	// A consumer heartbeat to a classic group with members is refused with a message.
	r := h.hb(&brokerop.ConsumerGroupHeartbeatReq{RebalanceTimeoutMs: 1000, HasSubscribedTopicNames: true, SubscribedTopicNames: []string{"a"}, HasOwned: true})
	if r.ErrorCode != errGroupIDNotFound || r.ErrorMessage == "" {
		t.Fatalf("consumer heartbeat to a classic group with members: %+v", r)
	}
	h.tok++
	cd := h.m.ConsumerGroupDescribe(h.now, h.tok, &brokerop.ConsumerGroupDescribeReq{Groups: []string{"g", "none"}})[0].Resp.(*brokerop.ConsumerGroupDescribeResp)
	if cd.Groups[0].ErrorCode != errGroupIDNotFound || cd.Groups[1].ErrorCode != errGroupIDNotFound {
		t.Fatalf("ConsumerGroupDescribe of classic and unknown groups: %+v", cd)
	}
}

// Through the Coordinator (its owner goroutine and timer on the injected clock): a KIP-848
// member that stops heartbeating is removed once the clock passes its session timeout, and
// the remaining member is given its partitions; offsets committed with the member epoch are
// durable across a crash and reopen.
func TestCoordinatorConsumerGroupSessionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(time.Unix(1_700_000_000, 0))
		fs := waltest.NewCrashFS()
		c := open(t, Config{Dir: "/g", FS: fs, Clock: clk, Machine: MachineConfig{ConsumerStartGrace: -1}})
		topics := []brokerop.ConsumerGroupTopic{{Name: "a", TopicID: tidA, Partitions: 4}}
		hb := func(req *brokerop.ConsumerGroupHeartbeatReq) *brokerop.ConsumerGroupHeartbeatResp {
			t.Helper()
			req.Group, req.HasTopics, req.Topics = "g", true, topics
			r, err := c.ConsumerGroupHeartbeat(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		joinReq := func(id string) *brokerop.ConsumerGroupHeartbeatReq {
			return &brokerop.ConsumerGroupHeartbeatReq{MemberID: id, RebalanceTimeoutMs: 10000, HasSubscribedTopicNames: true,
				SubscribedTopicNames: []string{"a"}, HasOwned: true}
		}
		if r := hb(joinReq("m1")); r.ErrorCode != 0 || r.MemberEpoch != 1 {
			t.Fatalf("m1 join: %+v", r)
		}
		if r := hb(joinReq("m2")); r.ErrorCode != 0 || r.MemberEpoch != 2 {
			t.Fatalf("m2 join: %+v", r)
		}
		r1 := hb(&brokerop.ConsumerGroupHeartbeatReq{MemberID: "m1", MemberEpoch: 1, RebalanceTimeoutMs: -1, HasOwned: true,
			Owned: []brokerop.ConsumerGroupTopicPartitions{{TopicID: tidA, Partitions: []int32{0, 1, 2, 3}}}})
		owned := r1.Assignment // two partitions: the other two are to be revoked
		r1 = hb(&brokerop.ConsumerGroupHeartbeatReq{MemberID: "m1", MemberEpoch: 1, RebalanceTimeoutMs: -1, HasOwned: true, Owned: owned})
		if r1.MemberEpoch != 2 || len(owned) != 1 || len(owned[0].Partitions) != 2 {
			t.Fatalf("m1 after revoking: %+v (owns %+v)", r1, owned)
		}
		oc, err := c.OffsetCommit(context.Background(), &brokerop.OffsetCommitReq{Group: "g", MemberID: "m1", Generation: 2,
			Topics: []brokerop.OffsetCommitTopic{{Topic: "a", Partitions: []brokerop.OffsetCommitPartition{{Partition: owned[0].Partitions[0], Offset: 11, LeaderEpoch: -1}}}}})
		if err != nil || oc.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("commit: %+v %v", oc, err)
		}
		// m2 goes silent; m1 heartbeats every 5s until it is given everything.
		start := clk.Now()
		for {
			clk.Advance(5 * time.Second)
			synctest.Wait() // the owner has handled a timer that came due
			r := hb(&brokerop.ConsumerGroupHeartbeatReq{MemberID: "m1", MemberEpoch: r1.MemberEpoch, RebalanceTimeoutMs: -1, HasOwned: true, Owned: owned})
			if r.ErrorCode != 0 || clock.Since(clk, start) > 2*time.Minute {
				t.Fatalf("heartbeat: %+v after %v", r, clock.Since(clk, start))
			}
			if r.HasAssignment {
				owned = r.Assignment
			}
			r1 = r
			if n := len(owned[0].Partitions); n == 4 {
				break
			}
		}
		if d := clock.Since(clk, start); d < 45*time.Second || d > 50*time.Second {
			t.Fatalf("m2 removed after %v, want at its 45s session timeout", d)
		}
		if r1.MemberEpoch != 3 {
			t.Fatalf("epoch after m2 expired: %d", r1.MemberEpoch)
		}
		c2 := crashAndReopen(t, c, fs, "/g")
		defer c2.Close()
		of, err := c2.OffsetFetch(context.Background(), &brokerop.OffsetFetchReq{Group: "g"})
		if err != nil || len(of.Topics) != 1 || of.Topics[0].Partitions[0].Offset != 11 {
			t.Fatalf("offset after crash: %+v %v", of, err)
		}
		// Membership is not durable: the member rejoins.
		if r, _ := c2.ConsumerGroupHeartbeat(context.Background(), &brokerop.ConsumerGroupHeartbeatReq{Group: "g", MemberID: "m1", MemberEpoch: 3, RebalanceTimeoutMs: -1}); r.ErrorCode != errUnknownMemberID {
			t.Fatalf("heartbeat after restart: %+v", r)
		}
	})
}

// A coordinator that just started (a restart, or the quorum leader moved: membership is not
// durable) gives no partition for two heartbeat intervals, so that members of the previous
// coordinator, which may still be consuming, learn of it (UNKNOWN_MEMBER_ID) and let go
// first. Joins are accepted meanwhile and their epochs move on.
func TestConsumerGroupStartGrace(t *testing.T) {
	h := newCGHarness(t, topic("a", tidA, 2))
	h.m = NewMachine(MachineConfig{})
	c := &client{names: []string{"a"}}
	h.join(c)
	if c.epoch != 1 || c.owned.count() != 0 {
		t.Fatalf("join at start: epoch %d owned %v", c.epoch, c.owned)
	}
	h.advance(5 * time.Second)
	if r := c.beat(); r.ErrorCode != 0 || c.owned.count() != 0 {
		t.Fatalf("within the grace: %+v owned %v", r, c.owned)
	}
	h.advance(5 * time.Second)
	if r := c.beat(); r.ErrorCode != 0 || !r.HasAssignment || c.owned.count() != 2 || c.epoch != 1 {
		t.Fatalf("after the grace: %+v owned %v", r, c.owned)
	}
}
