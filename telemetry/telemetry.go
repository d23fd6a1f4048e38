package telemetry

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Span names, as in Rafka.
const (
	SpanGatewayRequest  = "gateway.kafka.request"
	SpanKafkaOpSent     = "mesh.kafkaop.sent"
	SpanKafkaOpHandle   = "mesh.kafkaop.handle"
	SpanBrokerProduce   = "broker.produce.store"
	SpanBrokerFetch     = "broker.fetch.read"
	SpanUnsupportedTag  = "mesh.frame.unsupported_tag"
	InstrumentationName = "github.com/meshkafka/meshkafka"
)

// Tracer returns the project's tracer from the global provider.
func Tracer() trace.Tracer { return otel.Tracer(InstrumentationName) }

// Enabled reports whether the environment, read through getenv, asks for trace export. The
// binaries call it with os.Getenv to fill Config.Export.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.ToLower(getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Config says what Setup installs. The binaries fill it from the environment (package
// cmd/internal/cli): this package reads no environment variable itself.
type Config struct {
	// Export turns on the OTLP/HTTP trace exporter (Enabled(os.Getenv) in the binaries).
	Export bool
	// ServiceName is the service.name resource attribute (OTEL_SERVICE_NAME, else the binary's
	// default name).
	ServiceName string
	// Recent, if set, keeps the last traces in process (the status page's waterfall). Without
	// Export, traces are then sampled at RecentPerSecond new root traces a second (spans
	// with a remote parent follow its decision), so the cost stays that of a non-recording
	// span for almost every request.
	Recent *Recent
	// RecentPerSecond: root traces sampled a second for Recent without Export. 0 means 5.
	RecentPerSecond float64
}

// Setup installs the W3C propagator and, with cfg.Export, an OTLP/HTTP trace exporter as the
// global tracer provider. The returned shutdown flushes and stops the exporter; it is never nil.
// The exporter's endpoint, the other resource attributes and the sampler are read by the
// OpenTelemetry SDK from its standard variables.
func Setup(ctx context.Context, cfg Config) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !cfg.Export && cfg.Recent == nil {
		return func(context.Context) error { return nil }, nil
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName)))
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if cfg.Export {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	} else {
		rate := cfg.RecentPerSecond
		if rate <= 0 {
			rate = 5
		}
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(&rateSampler{perSecond: rate})))
	}
	if cfg.Recent != nil {
		opts = append(opts, sdktrace.WithSpanProcessor(cfg.Recent))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// Inject returns the W3C traceparent and tracestate of the span in ctx ("" when none).
func Inject(ctx context.Context) (traceParent, traceState string) {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c["traceparent"], c["tracestate"]
}

// Extract returns ctx carrying the remote span context described by traceparent/tracestate.
func Extract(ctx context.Context, traceParent, traceState string) context.Context {
	if traceParent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceParent, "tracestate": traceState})
}
