package telemetry

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Recent keeps the last traces with their spans (parent links, attributes, errors) and drops
// the oldest past its bound.
func TestRecentKeepsTheLastTraces(t *testing.T) {
	r := NewRecent(2, 3)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("test")
	for i := range 3 {
		ctx, root := tr.Start(context.Background(), "root")
		root.SetAttributes(attribute.Int("n", i))
		for range 4 { // one more than a trace keeps
			_, child := tr.Start(ctx, "child")
			if i == 2 {
				child.RecordError(errors.New("boom"))
				child.SetStatus(codes.Error, "boom")
			}
			child.End()
		}
		root.End()
	}
	got := r.Traces()
	if len(got) != 2 {
		t.Fatalf("%d traces kept, want 2", len(got))
	}
	newest := got[0]
	if len(newest.Spans) != 3 {
		t.Fatalf("%d spans kept, want the bound 3", len(newest.Spans))
	}
	// The children ended first; the root came last and was over the bound: the kept spans
	// are three children of the newest trace, each with a parent and the error.
	for _, s := range newest.Spans {
		if s.Name != "child" || s.ParentID == "" || s.Error != "boom" || s.RemoteParent {
			t.Fatalf("span %+v", s)
		}
	}
	if got[1].ID == newest.ID || newest.End.Before(newest.Start) {
		t.Fatalf("traces %+v", got)
	}
}

// The rate sampler lets perSecond new roots through at once, then drops until tokens come
// back; ParentBased makes children follow their root.
func TestRateSampler(t *testing.T) {
	r := NewRecent(100, 10)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(&rateSampler{perSecond: 2})), sdktrace.WithSpanProcessor(r))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("test")
	sampled := 0
	for range 10 {
		ctx, root := tr.Start(context.Background(), "root")
		_, child := tr.Start(ctx, "child")
		if child.SpanContext().IsSampled() != root.SpanContext().IsSampled() {
			t.Fatal("a child did not follow its root's decision")
		}
		if root.SpanContext().IsSampled() {
			sampled++
		}
		child.End()
		root.End()
	}
	if sampled != 2 {
		t.Fatalf("%d of 10 back-to-back roots sampled, want the burst of 2", sampled)
	}
	if n := len(r.Traces()); n != 2 {
		t.Fatalf("%d traces recorded, want 2", n)
	}
}
