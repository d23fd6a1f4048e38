package brokermesh

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/telemetry"
)

// Tracing is a decorator around a Service on each side of the hop, not code in the carrier:
// the carrier only moves the span context (the caller writes the context it is called with
// into the request header as W3C traceparent/tracestate; the server gives the op the
// caller's span context as its parent).
//
//	gateway request ─ mesh.kafkaop.sent (TraceCalls, client kind)
//	                    └ mesh.kafkaop.handle (TraceHandled, server kind; on the broker)
//	                        └ broker.produce.store / broker.fetch.read (StoreSpans)

// TraceCalls decorates the gateway side of one broker (its Caller): every op runs in a span
// mesh.kafkaop.sent naming the op and the broker (remote), marked failed with the op's error.
func TraceCalls(svc brokerop.Service, remote string) brokerop.Service {
	return brokerop.Intercept(svc, spanAround(telemetry.Tracer(), telemetry.SpanKafkaOpSent, trace.SpanKindClient, func(context.Context) string { return remote }))
}

// TraceHandled decorates the broker's Service as the Server runs it: every op runs in a span
// mesh.kafkaop.handle naming the op and the calling peer, the child of the caller's
// mesh.kafkaop.sent. NewServer applies it.
func TraceHandled(svc brokerop.Service) brokerop.Service {
	return brokerop.Intercept(svc, spanAround(telemetry.Tracer(), telemetry.SpanKafkaOpHandle, trace.SpanKindServer, peerOf))
}

func spanAround(tracer trace.Tracer, name string, kind trace.SpanKind, peer func(context.Context) string) brokerop.Interceptor {
	return func(ctx context.Context, op string) (context.Context, func(error)) {
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(kind))
		if span.IsRecording() {
			span.SetAttributes(attribute.String("kafkaop.op", op), attribute.String("mesh.peer", peer(ctx)))
		}
		return ctx, func(err error) {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
	}
}

type peerKey struct{}

// withPeer gives an op's context the name of the peer that called it.
func withPeer(ctx context.Context, remote string) context.Context {
	return context.WithValue(ctx, peerKey{}, remote)
}

// PeerOf is the NodeId text of the peer whose call ctx belongs to (a Service served by a
// Server sees it), or "" for a local call.
func PeerOf(ctx context.Context) string { return peerOf(ctx) }

func peerOf(ctx context.Context) string {
	s, _ := ctx.Value(peerKey{}).(string)
	return s
}
