package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// TestInitProducerIDGoesToController: producer ids come from the controller's one counter,
// so every gateway's ids are unique across the cluster.
func TestInitProducerIDGoesToController(t *testing.T) {
	gw := newEP(t)
	bs := startBrokers(t, 3, gw)
	c := clusterFor(t, gw, bs)
	ctx := timeoutCtx(t, 30*time.Second)
	var ctl *testBroker
	for _, b := range bs {
		if b.ep.NodeID().String() == c.Controller() {
			ctl = b
		}
	}
	if ctl == nil {
		t.Fatal("controller not among the brokers")
	}
	for i := range int64(5) {
		r, err := c.InitProducerID(ctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
		if err != nil || r.ErrorCode != 0 || r.ProducerID != i || r.ProducerEpoch != 0 {
			t.Fatalf("InitProducerID %d over the mesh: %v %+v", i, err, r)
		}
	}
	// The controller's own counter moved on; the other brokers' did not.
	r, err := ctl.b.InitProducerID(ctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
	if err != nil || r.ProducerID != 5 {
		t.Fatalf("controller's next id: %v %+v, want 5", err, r)
	}
}

// groupsOnly serves ops of a broker that predates idempotence (no InitProducerID method).
type groupsOnly struct{ brokerop.Unimplemented }

func (groupsOnly) Metadata(context.Context, *brokerop.MetadataReq) (*brokerop.MetadataResp, error) {
	return &brokerop.MetadataResp{}, nil
}

// TestInitProducerIDOldController: a controller that does not serve the op gives producer id
// -1 (clients produce without idempotence) rather than an error clients would retry forever.
func TestInitProducerIDOldController(t *testing.T) {
	gw := newEP(t)
	ep := newEP(t)
	var trust brokermesh.TrustList
	trust.Add(gw.NodeID())
	brokermesh.Serve(ep, brokermesh.NewServer(nil, brokerop.Parts{Admin: groupsOnly{}}), trust, nil)
	c := clusterForAddrs(t, gw, ep)
	ctx := timeoutCtx(t, 30*time.Second)
	r, err := c.InitProducerID(ctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1})
	if err != nil || r.ErrorCode != 0 || r.ProducerID != -1 || r.ProducerEpoch != -1 {
		t.Fatalf("old controller: %v %+v, want producer id -1 and no error", err, r)
	}
	// A direct call still reports the refusal.
	if _, err := c.ctl().InitProducerID(ctx, &brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1}); !opUnknown(err) {
		t.Fatalf("direct call: %v, want an unknown-op error", err)
	}
}
