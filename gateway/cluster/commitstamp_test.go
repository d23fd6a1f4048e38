package cluster

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// stampBroker records the stamps of the offset commits it gets; a dead one answers nothing
// (its probes neither), as a broker cut off from the gateway.
type stampBroker struct {
	probeBroker
	mu     sync.Mutex
	stamps [][2]uint64 // (Writer, Seq) of each commit, in arrival order
}

func (s *stampBroker) OffsetCommit(ctx context.Context, req *brokerop.OffsetCommitReq) (*brokerop.OffsetCommitResp, error) {
	s.mu.Lock()
	s.stamps = append(s.stamps, [2]uint64{req.Writer, req.Seq})
	s.mu.Unlock()
	if s.dead {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &brokerop.OffsetCommitResp{}, nil
}

func (s *stampBroker) got() [][2]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][2]uint64(nil), s.stamps...)
}

// The gateway stamps each offset commit with its writer id and the next sequence number;
// the copy it sends again to another broker, after the first stopped answering, carries the
// same stamp (the coordinator then keeps whichever of the two copies comes first, and never
// lets either overwrite a later commit); the next commit a higher one. The caller's request
// is left as it was.
func TestOffsetCommitStamps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dead, live := &stampBroker{probeBroker: probeBroker{dead: true}}, &stampBroker{}
		c := probeCluster(t, &dead.probeBroker, &live.probeBroker)
		// probeCluster wires the probeBrokers; commits must reach the stampBrokers.
		for _, b := range c.callers {
			switch b.Service {
			case &dead.probeBroker:
				b.Service = dead
			case &live.probeBroker:
				b.Service = live
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		req := &brokerop.OffsetCommitReq{Group: "g", Generation: -1, Topics: []brokerop.OffsetCommitTopic{{Topic: "t",
			Partitions: []brokerop.OffsetCommitPartition{{Partition: 0, Offset: 453, LeaderEpoch: -1}}}}}
		for range 2 {
			if _, err := c.OffsetCommit(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		if req.Writer != 0 || req.Seq != 0 {
			t.Fatalf("the caller's request was changed: stamp %d/%d", req.Writer, req.Seq)
		}
		d, l := dead.got(), live.got()
		if len(d) != 1 || len(l) != 2 {
			t.Fatalf("commits: %d to the dead broker, %d to the live one; want 1 and 2", len(d), len(l))
		}
		w := d[0][0]
		if w == 0 || d[0] != l[0] {
			t.Fatalf("the first commit went out as %v and again as %v: want one non-zero stamp", d[0], l[0])
		}
		if l[1][0] != w || l[1][1] <= l[0][1] {
			t.Fatalf("the second commit's stamp %v does not follow the first's %v", l[1], l[0])
		}
		if other := probeCluster(t, &probeBroker{}); other.writer == w {
			t.Fatalf("two gateways share writer id %d", w)
		}
	})
}
