package gateway_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// pidBackend is a MemBackend with producer ids.
type pidBackend struct {
	*gatewaytest.MemBackend
	mu   sync.Mutex
	next int64
	fail error
	reqs []brokerop.InitProducerIDReq
}

func (p *pidBackend) InitProducerID(_ context.Context, req *brokerop.InitProducerIDReq) (*brokerop.InitProducerIDResp, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	p.reqs = append(p.reqs, *req)
	p.next++
	return &brokerop.InitProducerIDResp{ProducerID: 100 + p.next, ProducerEpoch: 0}, nil
}

func initPIDReq(v int16, txn *string, id int64, epoch int16) *kmsg.InitProducerIDRequest {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(v)
	req.TransactionalID = txn
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = id, epoch
	return req
}

func TestInitProducerIDVersions(t *testing.T) {
	be := &pidBackend{MemBackend: gatewaytest.NewMem(1)}
	ts := start(t, gateway.Config{Backend: be})
	c := dial(t, ts.addr)
	for v := int16(0); v <= 5; v++ {
		r := c.roundTrip(initPIDReq(v, nil, 7, 3), int32(v)).(*kmsg.InitProducerIDResponse)
		if r.ErrorCode != 0 || r.ProducerID != 100+int64(v)+1 || r.ProducerEpoch != 0 {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
	// v3+ passes the producer's current id/epoch on (KIP-360 bump); older versions have none.
	for v, req := range be.reqs {
		want := brokerop.InitProducerIDReq{ProducerID: -1, ProducerEpoch: -1}
		if v >= 3 {
			want = brokerop.InitProducerIDReq{ProducerID: 7, ProducerEpoch: 3}
		}
		if req != want {
			t.Fatalf("v%d: backend got %+v, want %+v", v, req, want)
		}
	}
	// Transactions are not supported: a fatal, clear error, and no backend call.
	txn := "my-txn"
	for _, v := range []int16{0, 4, 5} {
		r := c.roundTrip(initPIDReq(v, &txn, -1, -1), 10+int32(v)).(*kmsg.InitProducerIDResponse)
		if r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code || r.ProducerID != -1 {
			t.Fatalf("transactional v%d: %+v", v, r)
		}
	}
	if len(be.reqs) != 6 {
		t.Fatalf("backend saw %d requests, want 6", len(be.reqs))
	}
	// Backend failure: COORDINATOR_NOT_AVAILABLE, which clients retry.
	be.mu.Lock()
	be.fail = errors.New("controller unreachable")
	be.mu.Unlock()
	if r := c.roundTrip(initPIDReq(4, nil, -1, -1), 20).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.CoordinatorNotAvailable.Code || r.ProducerID != -1 {
		t.Fatalf("backend failure: %+v", r)
	}
}

func TestInitProducerIDWithoutCapability(t *testing.T) {
	ts := start(t, gateway.Config{}) // MemBackend has no InitProducerID
	c := dial(t, ts.addr)
	r := c.roundTrip(initPIDReq(4, nil, -1, -1), 1).(*kmsg.InitProducerIDResponse)
	if r.ErrorCode != 0 || r.ProducerID != -1 || r.ProducerEpoch != -1 {
		t.Fatalf("got %+v, want success without a producer id", r)
	}
	// kgo (idempotent by default) then produces without a producer id.
	cl := kafkaclients.KgoClient(t, ts.addr, kgo.AllowAutoTopicCreation())
	rec := makeRecords("t", 3)
	if err := cl.ProduceSync(context.Background(), rec...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}
