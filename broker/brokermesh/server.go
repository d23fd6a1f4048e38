package brokermesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/telemetry"
)

// ALPN is the KafkaOp protocol identifier on the mesh.
const ALPN = "/meshkafka/kafkaop/0"

// Stream and connection error codes.
const (
	ErrCodeUnknownOp quic.StreamErrorCode = 1
	ErrCodeMalformed quic.StreamErrorCode = 2
	ErrCodeCancelled quic.StreamErrorCode = 3

	ErrCodeUntrusted quic.ApplicationErrorCode = 0x4b01
)

// Stream is the part of a QUIC bi-stream the carrier uses; *quic.Stream implements it.
type Stream interface {
	io.Reader
	io.Writer
	Close() error
	CancelRead(quic.StreamErrorCode)
	CancelWrite(quic.StreamErrorCode)
}

// Server answers KafkaOps by calling methods of its targets: op X with request type XReq is
// served by the first target that has a method X(context.Context, *XReq) (*XResp, error).
type Server struct {
	targets  []reflect.Value
	logger   *slog.Logger
	maxFrame int
	tracer   trace.Tracer

	mu      sync.Mutex
	methods map[brokerop.Code]reflect.Value // guarded by mu; resolved lazily
}

// NewServer returns a server dispatching to targets (e.g. a *broker.Broker and a group
// coordinator). logger may be nil.
func NewServer(logger *slog.Logger, targets ...any) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{logger: logger, maxFrame: brokerop.DefaultMaxFrame, methods: map[brokerop.Code]reflect.Value{}, tracer: telemetry.Tracer()}
	for _, t := range targets {
		s.targets = append(s.targets, reflect.ValueOf(t))
	}
	return s
}

var (
	ctxType = reflect.TypeFor[context.Context]()
	errType = reflect.TypeFor[error]()
)

func (s *Server) method(spec brokerop.Spec) (reflect.Value, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.methods[spec.Code]; ok {
		return m, m.IsValid()
	}
	name := strings.TrimSuffix(spec.Req.Name(), "Req")
	var found reflect.Value
	for _, t := range s.targets {
		m := t.MethodByName(name)
		if !m.IsValid() {
			continue
		}
		mt := m.Type()
		if mt.NumIn() == 2 && mt.In(0) == ctxType && mt.In(1) == reflect.PointerTo(spec.Req) &&
			mt.NumOut() == 2 && mt.Out(0) == reflect.PointerTo(spec.Resp) && mt.Out(1) == errType {
			found = m
			break
		}
	}
	s.methods[spec.Code] = found
	return found, found.IsValid()
}

// ServeStream handles one call on st and returns when it is answered or reset. remote names the
// caller for logs and spans.
func (s *Server) ServeStream(ctx context.Context, remote string, st Stream) {
	tag, payload, err := brokerop.ReadFrame(st, s.maxFrame)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			s.reject(ctx, st, ErrCodeMalformed, "mesh.kafkaop.malformed", remote, err)
		} else {
			st.CancelWrite(ErrCodeMalformed)
		}
		return
	}
	spec, ok := brokerop.Lookup(tag)
	if !ok {
		s.reject(ctx, st, ErrCodeUnknownOp, telemetry.SpanUnsupportedTag, remote, fmt.Errorf("unknown op tag %#x", uint8(tag)))
		return
	}
	h, body, err := brokerop.DecodeRequest(tag, payload)
	if err != nil {
		s.reject(ctx, st, ErrCodeMalformed, "mesh.kafkaop.malformed", remote, err)
		return
	}
	ctx = telemetry.Extract(ctx, h.TraceParent, h.TraceState)
	ctx, span := s.tracer.Start(ctx, telemetry.SpanKafkaOpHandle, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("kafkaop.op", spec.Name), attribute.String("mesh.peer", remote)))
	defer span.End()
	if h.DeadlineMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(h.DeadlineMs)*time.Millisecond)
		defer cancel()
	}
	if sc, ok := st.(interface{ Context() context.Context }); ok {
		// The stream's context ends when the caller resets the stream (it cancels our write
		// side with STOP_SENDING): stop working on a call nobody waits for.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		stop := context.AfterFunc(sc.Context(), cancel)
		defer stop()
		defer cancel()
	}
	resp := ResponseOf(h.RequestID)
	var out any
	if m, ok := s.method(spec); !ok {
		resp.Status, resp.Message = brokerop.StatusUnknownOp, "op "+spec.Name+" is not served by this node"
	} else {
		res := m.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(body)})
		if e, _ := res[1].Interface().(error); e != nil {
			resp.Status, resp.Message = statusOf(ctx, e), e.Error()
			span.RecordError(e)
			span.SetStatus(codes.Error, e.Error())
		} else {
			out = res[0].Interface()
		}
	}
	frame, err := brokerop.EncodeResponse(tag, resp, out)
	if err != nil {
		s.logger.Error("kafkaop: encode response", "op", spec.Name, "err", err)
		st.CancelWrite(ErrCodeMalformed)
		return
	}
	if _, err := st.Write(frame); err != nil {
		span.RecordError(err)
		return
	}
	_ = st.Close()
}

// ResponseOf returns an OK response header for request id.
func ResponseOf(id uint64) brokerop.ResponseHeader { return brokerop.ResponseHeader{RequestID: id} }

func statusOf(ctx context.Context, err error) brokerop.Status {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return brokerop.StatusDeadline
	}
	return brokerop.StatusInternal
}

func (s *Server) reject(ctx context.Context, st Stream, code quic.StreamErrorCode, spanName, remote string, err error) {
	_, span := s.tracer.Start(ctx, spanName, trace.WithAttributes(attribute.String("mesh.peer", remote)))
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	span.End()
	s.logger.Warn("kafkaop: stream reset", "peer", remote, "err", err)
	st.CancelRead(code)
	st.CancelWrite(code)
}

// StreamAccepter is the part of a mesh connection the server loop uses.
type StreamAccepter interface {
	AcceptStream(ctx context.Context) (*quic.Stream, error)
}

// ServeConn accepts streams on c until ctx ends or the connection closes, serving each on its
// own goroutine, and waits for them before returning.
func (s *Server) ServeConn(ctx context.Context, remote string, c StreamAccepter) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() { s.ServeStream(ctx, remote, st) })
	}
}
