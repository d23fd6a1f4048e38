package brokermesh

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/telemetry"
)

// DataStore is the part of a broker whose work StoreSpans traces.
type DataStore interface {
	Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error)
	Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error)
}

// StoreSpans wraps a broker's Produce and Fetch in the broker-side spans broker.produce.store
// and broker.fetch.read. Give it to NewServer before the broker itself, so it serves those two
// ops and the broker serves the rest.
type StoreSpans struct{ Store DataStore }

// Produce traces and forwards.
func (s StoreSpans) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	ctx, span := telemetry.Tracer().Start(ctx, telemetry.SpanBrokerProduce)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("kafka.partitions", len(req.Partitions)), attribute.Int("kafka.acks", int(req.Acks)))
	}
	resp, err := s.Store.Produce(ctx, req)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return resp, err
}

// Fetch traces and forwards (FetchPooled, never releasing: the buffers are then garbage
// collected instead of reused).
func (s StoreSpans) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	resp, _, err := s.FetchPooled(ctx, req)
	return resp, err
}

// PooledFetcher is the optional target capability behind a zero-copy Fetch answer:
// FetchPooled's record bytes live in read buffers the target reuses once release is called
// (broker.Broker has it). The server writes them to the stream by reference and releases
// them after the write.
type PooledFetcher interface {
	FetchPooled(ctx context.Context, req *brokerop.FetchReq) (resp *brokerop.FetchResp, release func(), err error)
}

// FetchPooled traces and forwards; a Store without pooling answers with Fetch.
func (s StoreSpans) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	ctx, span := telemetry.Tracer().Start(ctx, telemetry.SpanBrokerFetch)
	defer span.End()
	var resp *brokerop.FetchResp
	release := func() {}
	var err error
	if pf, ok := s.Store.(PooledFetcher); ok {
		resp, release, err = pf.FetchPooled(ctx, req)
	} else {
		resp, err = s.Store.Fetch(ctx, req)
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return resp, release, err
}

// ProduceStaged traces a staged produce: the span covers the append and the durability wait.
// A Store without staging is called synchronously (order is kept; nothing is pipelined).
func (s StoreSpans) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	ctx, span := telemetry.Tracer().Start(ctx, telemetry.SpanBrokerProduce)
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("kafka.partitions", len(req.Partitions)), attribute.Int("kafka.acks", int(req.Acks)))
	}
	var wait func() (*brokerop.ProduceResp, error)
	if sp, ok := s.Store.(StagedProducer); ok {
		wait = sp.ProduceStaged(ctx, req)
	} else {
		resp, err := s.Store.Produce(ctx, req)
		wait = func() (*brokerop.ProduceResp, error) { return resp, err }
	}
	return func() (*brokerop.ProduceResp, error) {
		defer span.End()
		resp, err := wait()
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		return resp, err
	}
}
