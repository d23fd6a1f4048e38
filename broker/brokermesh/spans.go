package brokermesh

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/telemetry"
)

// StoreSpans decorates a broker's DataService: Produce and Fetch (and their staged and pooled
// forms) run inside the broker-side spans broker.produce.store and broker.fetch.read;
// ListOffsets goes through as is. Use it as the Data part of the Service given to NewServer
// (brokerop.Parts{Data: StoreSpans{b}, ...}).
type StoreSpans struct{ brokerop.DataService }

// Produce traces and forwards.
func (s StoreSpans) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	ctx, span := telemetry.Tracer().Start(ctx, telemetry.SpanBrokerProduce)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("kafka.partitions", len(req.Partitions)), attribute.Int("kafka.acks", int(req.Acks)))
	}
	resp, err := s.DataService.Produce(ctx, req)
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

// FetchPooled traces and forwards.
func (s StoreSpans) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	ctx, span := telemetry.Tracer().Start(ctx, telemetry.SpanBrokerFetch)
	defer span.End()
	resp, release, err := s.DataService.FetchPooled(ctx, req)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return resp, release, err
}

// ProduceStaged traces a staged produce: the span covers the append and the durability wait.
func (s StoreSpans) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	ctx, span := telemetry.Tracer().Start(ctx, telemetry.SpanBrokerProduce)
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("kafka.partitions", len(req.Partitions)), attribute.Int("kafka.acks", int(req.Acks)))
	}
	wait := s.DataService.ProduceStaged(ctx, req)
	return func() (*brokerop.ProduceResp, error) {
		defer span.End()
		resp, err := wait()
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		return resp, err
	}
}
