package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// probeBroker is a broker for ctlDo: dead answers nothing (every call waits for its context,
// as a call to a SIGKILLed broker does until the connection's idle timeout); a live one
// answers probes at once and CreateTopics after opDelay.
type probeBroker struct {
	brokerop.Service // nil: only the ops below are called
	dead             bool
	opDelay          time.Duration
	creates, probes  atomic.Int32
}

func (p *probeBroker) CreateTopics(ctx context.Context, req *brokerop.CreateTopicsReq) (*brokerop.CreateTopicsResp, error) {
	p.creates.Add(1)
	if p.dead {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	select {
	case <-time.After(p.opDelay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &brokerop.CreateTopicsResp{Topics: []brokerop.CreateTopicResp{{Name: req.Topics[0].Name}}}, nil
}

func (p *probeBroker) ClusterBrokers(ctx context.Context, req *brokerop.ClusterBrokersReq) (*brokerop.ClusterBrokersResp, error) {
	p.probes.Add(1)
	if p.dead {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &brokerop.ClusterBrokersResp{}, nil
}

// probeCluster is a quorum-mode cluster of the given brokers, the first one preferred.
func probeCluster(t *testing.T, bs ...*probeBroker) *Cluster {
	t.Helper()
	var seeds []endpoint.NodeAddr
	for range bs {
		seeds = append(seeds, endpoint.NodeAddr{ID: key.GenerateSecretKey().Public()})
	}
	c, err := New(seeds, func(a endpoint.NodeAddr) *brokermesh.Caller { return brokermesh.NewCaller(nil, a.ID.ShortString()) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.mode = modeQuorum
	for i, s := range seeds {
		id := s.ID.String()
		b := &Broker{Service: bs[i], caller: brokermesh.NewCaller(nil, id)}
		c.callers[id] = b
		c.members[id] = true
		if i == 0 {
			c.preferred = b
		}
	}
	return c
}

func createOne(ctx context.Context, c *Cluster) (*brokerop.CreateTopicsResp, error) {
	return c.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: "t", NumPartitions: 1}}})
}

// A controller op in flight to a broker that stopped answering is abandoned once the broker
// fails a liveness probe, and the next broker answers it: within probeAfter+probeTimeout
// (virtual time), not at the caller's deadline. The dead broker is asked last afterwards.
func TestCtlDoLeavesABrokerThatFailsItsProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dead, live := &probeBroker{dead: true}, &probeBroker{}
		c := probeCluster(t, dead, live)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		start := time.Now()
		r, err := createOne(ctx, c)
		if err != nil || len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 {
			t.Fatalf("create: %+v, %v", r, err)
		}
		if took := time.Since(start); took > probeAfter+probeTimeout {
			t.Fatalf("answered after %v (virtual), want within %v", took, probeAfter+probeTimeout)
		}
		if dead.creates.Load() != 1 || live.creates.Load() != 1 || dead.probes.Load() != 1 {
			t.Fatalf("creates: dead %d, live %d; probes of the dead one %d", dead.creates.Load(), live.creates.Load(), dead.probes.Load())
		}
		if order := c.rotation(); order[len(order)-1].Service != dead {
			t.Fatal("the broker that failed its probe is not asked last")
		}
		// The next op starts with the live broker.
		if _, err := createOne(ctx, c); err != nil || dead.creates.Load() != 1 {
			t.Fatalf("second create: %v; the dead broker was asked %d times", err, dead.creates.Load())
		}
	})
}

// A live broker that takes long over an op (it answers its probes) is waited for: the op is
// not sent to another broker as well.
func TestCtlDoWaitsForALiveBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow, other := &probeBroker{opDelay: 20 * probeTimeout}, &probeBroker{}
		c := probeCluster(t, slow, other)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, err := createOne(ctx, c); err != nil {
			t.Fatal(err)
		}
		if slow.creates.Load() != 1 || other.creates.Load() != 0 {
			t.Fatalf("creates: slow %d, other %d; want the slow broker's answer only", slow.creates.Load(), other.creates.Load())
		}
		if slow.probes.Load() < 2 {
			t.Fatalf("the slow broker was probed %d times while it worked", slow.probes.Load())
		}
	})
}
