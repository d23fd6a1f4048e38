package brokermesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/telemetry"
)

// StreamOpener opens a bi-stream to one broker (a mesh connection, re-dialled as needed).
type StreamOpener interface {
	OpenStream(ctx context.Context) (Stream, error)
}

// CallError is a call that reached the broker but was refused or failed there.
type CallError struct {
	Op      string
	Status  brokerop.Status
	Message string
}

func (e *CallError) Error() string {
	return fmt.Sprintf("kafkaop %s: status %d: %s", e.Op, e.Status, e.Message)
}

// ErrUnavailable wraps failures to reach a broker or to get an answer (connection refused or
// lost, stream reset); the gateway maps it to a retriable Kafka error.
var ErrUnavailable = errors.New("kafkaop: broker unavailable")

// Caller makes KafkaOp calls to one broker.
type Caller struct {
	open     StreamOpener
	remote   string
	nextID   atomic.Uint64
	maxFrame int
	tracer   trace.Tracer
}

// NewCaller returns a caller that opens streams with open; remote names the broker in spans.
func NewCaller(open StreamOpener, remote string) *Caller {
	return &Caller{open: open, remote: remote, maxFrame: brokerop.DefaultMaxFrame, tracer: telemetry.Tracer()}
}

// Call sends req (a pointer to an op request struct) and decodes the answer into resp.
func (c *Caller) Call(ctx context.Context, op brokerop.Code, req, resp any) (err error) {
	spec, ok := brokerop.Lookup(op)
	if !ok {
		return fmt.Errorf("kafkaop: unknown op %#x", uint8(op))
	}
	ctx, span := c.tracer.Start(ctx, telemetry.SpanKafkaOpSent, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("kafkaop.op", spec.Name), attribute.String("mesh.peer", c.remote)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	h := brokerop.RequestHeader{RequestID: c.nextID.Add(1)}
	if dl, ok := ctx.Deadline(); ok {
		ms := time.Until(dl).Milliseconds()
		if ms <= 0 {
			return context.DeadlineExceeded
		}
		h.DeadlineMs = uint32(min(ms, 1<<32-1))
	}
	h.TraceParent, h.TraceState = telemetry.Inject(ctx)
	frame, err := brokerop.EncodeRequest(op, h, req)
	if err != nil {
		return err
	}
	st, err := c.open.OpenStream(ctx)
	if err != nil {
		return fmt.Errorf("%w: %s: open stream: %w", ErrUnavailable, c.remote, err)
	}
	stop := context.AfterFunc(ctx, func() {
		st.CancelWrite(ErrCodeCancelled)
		st.CancelRead(ErrCodeCancelled)
	})
	defer stop()
	if _, err := st.Write(frame); err != nil {
		return c.streamErr(ctx, "write", err)
	}
	if err := st.Close(); err != nil {
		return c.streamErr(ctx, "finish", err)
	}
	tag, payload, err := brokerop.ReadFrame(st, c.maxFrame)
	if err != nil {
		return c.streamErr(ctx, "read", err)
	}
	if tag != op {
		return fmt.Errorf("kafkaop %s: answer has tag %#x", spec.Name, uint8(tag))
	}
	rh, err := brokerop.DecodeResponse(payload, resp)
	if err != nil {
		return fmt.Errorf("kafkaop %s: %w", spec.Name, err)
	}
	if rh.RequestID != h.RequestID {
		return fmt.Errorf("kafkaop %s: answer for request %d, want %d", spec.Name, rh.RequestID, h.RequestID)
	}
	if rh.Status != brokerop.StatusOK {
		return &CallError{Op: spec.Name, Status: rh.Status, Message: rh.Message}
	}
	return nil
}

func (c *Caller) streamErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var se *quic.StreamError
	if errors.As(err, &se) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s: stream %s: %w", ErrUnavailable, c.remote, what, err)
	}
	return fmt.Errorf("%w: %s: %s: %w", ErrUnavailable, c.remote, what, err)
}
