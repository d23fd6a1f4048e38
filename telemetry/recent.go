package telemetry

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Recent keeps the spans of the last traces this process recorded, for the status page's
// waterfall (no exporter, no Jaeger needed). It is a span processor: Setup installs it when
// Config.Recent is set. Memory is bounded: at most Traces traces of at most SpansPerTrace
// spans each; the oldest trace goes first.
type Recent struct {
	traces, spansPerTrace int

	mu    sync.Mutex
	order []trace.TraceID // oldest first
	byID  map[trace.TraceID]*TraceView
}

// TraceView is one recorded trace: its spans in start order.
type TraceView struct {
	ID    string
	Start time.Time
	End   time.Time
	Spans []SpanView
}

// SpanView is one finished span.
type SpanView struct {
	Name         string
	SpanID       string
	ParentID     string // "" for the trace's root in this process
	Start, End   time.Time
	Error        string // the span's status description when it ended in error
	Attrs        []string
	RemoteParent bool // the parent span lives in another process (it came over the mesh)
}

// NewRecent keeps the last traces traces of at most spansPerTrace spans (defaults 20 and
// 64 when ≤ 0).
func NewRecent(traces, spansPerTrace int) *Recent {
	if traces <= 0 {
		traces = 20
	}
	if spansPerTrace <= 0 {
		spansPerTrace = 64
	}
	return &Recent{traces: traces, spansPerTrace: spansPerTrace, byID: map[trace.TraceID]*TraceView{}}
}

// OnStart implements sdktrace.SpanProcessor (nothing to do).
func (r *Recent) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd records a finished span.
func (r *Recent) OnEnd(s sdktrace.ReadOnlySpan) {
	sc := s.SpanContext()
	v := SpanView{Name: s.Name(), SpanID: sc.SpanID().String(), Start: s.StartTime(), End: s.EndTime(),
		RemoteParent: s.Parent().IsRemote()}
	if p := s.Parent(); p.IsValid() {
		v.ParentID = p.SpanID().String()
	}
	if st := s.Status(); st.Code == codes.Error {
		v.Error = st.Description
		if v.Error == "" {
			v.Error = "error"
		}
	}
	for _, kv := range s.Attributes() {
		v.Attrs = append(v.Attrs, string(kv.Key)+"="+kv.Value.String())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tv := r.byID[sc.TraceID()]
	if tv == nil {
		if len(r.order) >= r.traces {
			delete(r.byID, r.order[0])
			r.order = slices.Delete(r.order, 0, 1)
		}
		tv = &TraceView{ID: sc.TraceID().String(), Start: v.Start, End: v.End}
		r.byID[sc.TraceID()] = tv
		r.order = append(r.order, sc.TraceID())
	}
	if len(tv.Spans) >= r.spansPerTrace {
		return
	}
	tv.Spans = append(tv.Spans, v)
	if v.Start.Before(tv.Start) {
		tv.Start = v.Start
	}
	if v.End.After(tv.End) {
		tv.End = v.End
	}
}

// Shutdown implements sdktrace.SpanProcessor.
func (r *Recent) Shutdown(context.Context) error { return nil }

// ForceFlush implements sdktrace.SpanProcessor.
func (r *Recent) ForceFlush(context.Context) error { return nil }

// Traces returns copies of the recorded traces, newest first, each with its spans in start
// order.
func (r *Recent) Traces() []TraceView {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TraceView, 0, len(r.order))
	for i := len(r.order) - 1; i >= 0; i-- {
		tv := *r.byID[r.order[i]]
		tv.Spans = slices.Clone(tv.Spans)
		slices.SortStableFunc(tv.Spans, func(a, b SpanView) int { return a.Start.Compare(b.Start) })
		out = append(out, tv)
	}
	return out
}

// rateSampler samples at most perSecond new root traces a second (a token bucket with a
// one-second burst); spans with a parent follow the parent's decision (ParentBased wraps it).
type rateSampler struct {
	perSecond float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func (s *rateSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	now := time.Now()
	s.mu.Lock()
	if !s.last.IsZero() {
		s.tokens = min(s.perSecond, s.tokens+now.Sub(s.last).Seconds()*s.perSecond)
	} else {
		s.tokens = s.perSecond
	}
	s.last = now
	ok := s.tokens >= 1
	if ok {
		s.tokens--
	}
	s.mu.Unlock()
	if !ok {
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: psc.TraceState()}
	}
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: psc.TraceState()}
}

func (s *rateSampler) Description() string { return "meshkafka/rate" }
