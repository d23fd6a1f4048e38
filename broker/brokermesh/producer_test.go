package brokermesh

import (
	"context"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// TestInitProducerIDGoesToController: producer ids come from the controller's one counter,
// so every gateway's ids are unique across the cluster.
func TestInitProducerIDGoesToController(t *testing.T) {
	gw := newEP(t)
	bs := startBrokers(t, 3, gw)
	c := clusterFor(t, gw, bs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
