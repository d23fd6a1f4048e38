// Package telemetry sets up OpenTelemetry tracing for the gateway and broker binaries and holds
// the span names shared across processes.
//
// Tracing is off by default: with no OTEL_* configuration the global tracer provider stays
// OpenTelemetry's no-op provider, so instrumented code pays only a non-recording span per call
// (no allocation of span data, no export). It is switched on by the standard variables, which
// the binaries read (Enabled, Config; the package itself reads no environment):
//
//	OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   enable OTLP/HTTP export
//	OTEL_TRACES_EXPORTER=otlp                                            enable with the default endpoint (localhost:4318)
//	OTEL_TRACES_EXPORTER=none / OTEL_SDK_DISABLED=true                   force off
//	OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES                          resource (read by the SDK)
//	OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG                         sampling (read by the SDK)
//
// Recent (Config.Recent) keeps the last traces in process for the status page's waterfall,
// with no exporter: the binaries set it with -metrics, and without OTLP export the SDK then
// samples a few new root traces a second (RecentPerSecond, default 5; children and spans
// whose remote parent was sampled follow their parent), so almost every request still costs
// only a non-recording span.
//
// The W3C trace-context propagator is always installed, so a trace started by a caller crosses
// the mesh: the KafkaOp carrier writes traceparent/tracestate into every request header.
package telemetry
