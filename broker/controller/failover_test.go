package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// An op forwarded to a leader that stopped answering (its connections still up, so nothing
// ever fails on the wire) is abandoned when the follower's raft sees the leadership move,
// and forwarded to the new leader: the client gets its answer from there. Before, the
// forwarded call waited on the dead leader until the caller's deadline (or, across
// processes, the mesh's idle timeout).
func TestForwardedOpFollowsNewLeader(t *testing.T) {
	h, li := newThreeHarness(t)
	fi := (li + 1) % 3
	old := h.nodes[li]
	eventually(t, "the follower knows the leader", func() error {
		if id, ok := h.nodes[fi].q.Leader(); !ok || id != old.id {
			return fmt.Errorf("follower's leader %x, want %x", id, old.id)
		}
		return nil
	})

	old.hang.Store(true)
	type answer struct {
		r   *brokerop.CreateTopicsResp
		err error
	}
	done := make(chan answer, 1)
	// The bound is a hang bound: without following the new leader the op never returns
	// before it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		r, err := h.caller(fi).CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "moved", NumPartitions: 2, ReplicationFactor: 1}}})
		done <- answer{r, err}
	}()
	if op := <-old.hung; op != "create_topics" {
		t.Fatalf("the old leader got %q, want the forwarded create_topics", op)
	}
	h.net.Isolate(old.id) // the others elect a new leader

	a := <-done
	if a.err != nil || len(a.r.Topics) != 1 || a.r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create through the follower after the leader stopped answering: %+v, %v", a.r, a.err)
	}
	nl := -1
	for i, n := range h.nodes {
		if st := n.q.Status(); i != li && st.Leader == n.id {
			nl = i
		}
	}
	if nl < 0 {
		t.Fatal("no new leader among the others, yet the op was answered")
	}
	pctx, pcancel := ctx5()
	defer pcancel()
	pl, err := h.caller(nl).Placement(pctx, &brokerop.PlacementReq{Topics: []string{"moved"}})
	if err != nil || len(pl.Topics) != 1 || pl.Topics[0].ErrorCode != 0 || len(pl.Topics[0].Owners) != 2 {
		t.Fatalf("the new leader's placement of the topic: %+v, %v", pl, err)
	}
}

// Removing the leader through itself hands the leadership over first, then the new leader
// removes it: the quorum keeps a leader throughout, the old leader is neither a voter nor a
// registered broker, and metadata writes keep working.
func TestRemoveTheLeader(t *testing.T) {
	h, li := newThreeHarness(t)
	old := h.nodes[li]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hang bound
	defer cancel()
	eventually(t, "remove the leader through itself", func() error {
		return old.ctl.Remove(ctx, old.ep.NodeID())
	})
	nl, err := h.leaderIndex()
	if err != nil || nl == li {
		t.Fatalf("leader %d after removing %d: %v", nl, li, err)
	}
	cb := h.waitMembers(nl, 2, 2)
	for _, b := range cb.Brokers {
		if b.MeshID == old.ep.NodeID().String() || b.RaftID == old.id {
			t.Fatalf("the removed leader is still listed: %+v", cb.Brokers)
		}
	}
	eventually(t, "the old leader sees its removal", func() error {
		if !old.q.Status().Removed {
			return fmt.Errorf("not removed yet")
		}
		return nil
	})
	cctx, ccancel := ctx5()
	defer ccancel()
	r, err := h.caller(nl).CreateTopics(cctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "after-remove", NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create after removing the leader: %+v, %v", r, err)
	}
}
