// Package telemetrytest records the spans that code under test ends: it installs a recording
// TracerProvider as the global one, which telemetry.Tracer (and so every traced package)
// starts its spans from.
package telemetrytest

import (
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Record makes a TracerProvider that records every span ended through it the global one until
// the test ends (the previous one comes back then) and returns its recorder, and the provider
// for the test's own spans.
func Record(tb testing.TB) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	tb.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	tb.Cleanup(func() { otel.SetTracerProvider(prev) })
	return rec, tp
}
