package telemetry

import (
	"context"
	"os"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestEnabled(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false},
	}
	for _, c := range cases {
		if got := Enabled(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("Enabled(%v) = %v, want %v", c.env, got, c.want)
		}
	}
}

func TestInjectExtractCrossesProcesses(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, parent := tp.Tracer("t").Start(context.Background(), SpanKafkaOpSent)
	tpHeader, _ := Inject(ctx)
	parent.End()
	if tpHeader == "" {
		t.Fatal("no traceparent injected")
	}
	remote := Extract(context.Background(), tpHeader, "")
	_, child := tp.Tracer("t").Start(remote, SpanKafkaOpHandle)
	child.End()
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans", len(spans))
	}
	if spans[1].Parent().SpanID() != spans[0].SpanContext().SpanID() || spans[1].SpanContext().TraceID() != spans[0].SpanContext().TraceID() {
		t.Fatalf("child not linked to parent: %v vs %v", spans[1].Parent(), spans[0].SpanContext())
	}
	if got := Extract(context.Background(), "", ""); trace.SpanContextFromContext(got).IsValid() {
		t.Fatal("empty traceparent produced a span context")
	}
}

func TestSetupOffByDefault(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	shutdown, err := Setup(context.Background(), Config{Export: Enabled(os.Getenv), ServiceName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	_, span := Tracer().Start(context.Background(), "x")
	if span.IsRecording() {
		t.Fatal("span records with tracing off")
	}
	span.End()
}
