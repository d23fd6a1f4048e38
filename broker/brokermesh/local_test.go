package brokermesh

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// blockingFetch is a fakeBroker whose fetches with MaxWaitMs > 0 say they started and block
// until their context ends, reporting its error.
type blockingFetch struct {
	*fakeBroker
	started chan struct{}
	ended   chan error
}

func (b *blockingFetch) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	if req.MaxWaitMs == 0 {
		return b.fakeBroker.FetchPooled(ctx, req)
	}
	b.started <- struct{}{}
	<-ctx.Done()
	b.ended <- ctx.Err()
	return nil, nil, ctx.Err()
}

func newLocal(t *testing.T) (*Caller, *Local, *blockingFetch) {
	t.Helper()
	fb := &blockingFetch{fakeBroker: &fakeBroker{}, started: make(chan struct{}, 1), ended: make(chan error, 1)}
	l := NewLocal(NewServer(nil, brokerop.Parts{Data: fb}), "self")
	t.Cleanup(l.Close)
	return NewCaller(l, "self"), l, fb
}

// Pipelined produces through a Local reach the service in the order they were sent, and
// each answer names its own append.
func TestLocalKeepsProduceOrder(t *testing.T) {
	c, _, fb := newLocal(t)
	const n = 200
	waits := make([]func() (*brokerop.ProduceResp, error), n)
	for i := range n {
		waits[i] = c.ProduceStaged(context.Background(), &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{
			{Topic: fmt.Sprintf("t%d", i), Records: []byte{byte(i)}}}})
	}
	for i, w := range waits {
		resp, err := w()
		if err != nil || len(resp.Partitions) != 1 || resp.Partitions[0].Topic != fmt.Sprintf("t%d", i) {
			t.Fatalf("produce %d: %+v, %v", i, resp, err)
		}
		if resp.Partitions[0].BaseOffset != int64(i) {
			t.Fatalf("produce %d appended as number %d: order lost", i, resp.Partitions[0].BaseOffset)
		}
	}
	for i, p := range fb.produced {
		if p.Topic != fmt.Sprintf("t%d", i) || len(p.Records) != 1 || p.Records[0] != byte(i) {
			t.Fatalf("append %d: %+v", i, p)
		}
	}
	r, err := c.Fetch(context.Background(), &brokerop.FetchReq{})
	if err != nil || len(r.Partitions) != 1 || string(r.Partitions[0].Records) != "data" {
		t.Fatalf("fetch: %+v, %v", r, err)
	}
	if _, err := c.Metadata(context.Background(), &brokerop.MetadataReq{}); err == nil {
		t.Fatal("an op the service does not serve succeeded")
	}
}

// A caller that gives up on a call cancels the server's work; closing the Local ends calls in
// progress and refuses new ones.
func TestLocalCancelAndClose(t *testing.T) {
	c, l, fb := newLocal(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Fetch(ctx, &brokerop.FetchReq{MaxWaitMs: 60000})
		errc <- err
	}()
	<-fb.started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller: %v", err)
	}
	if err := <-fb.ended; err == nil {
		t.Fatal("handler context not cancelled")
	}

	go func() {
		_, err := c.Fetch(context.Background(), &brokerop.FetchReq{MaxWaitMs: 60000})
		errc <- err
	}()
	<-fb.started
	l.Close()
	if err := <-errc; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("caller after Close: %v", err)
	}
	<-fb.ended
	if _, err := c.Fetch(context.Background(), &brokerop.FetchReq{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call after Close: %v", err)
	}
}
