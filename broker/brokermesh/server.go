package brokermesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
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

// Server answers KafkaOps by dispatching them to a Service (brokerop.Dispatch, the generated
// switch). Ops the Service does not serve (brokerop.Unimplemented) are answered with
// StatusUnknownOp.
type Server struct {
	svc       brokerop.Service
	logger    *slog.Logger
	maxFrame  int
	tracer    trace.Tracer
	guard     atomic.Pointer[Guard] // nil: no checks (guard.go)
	actLogged sync.Map              // peer → true: refused for naming a principal, logged
}

// NewServer returns a server dispatching to svc (e.g. broker.Broker.Service with a group
// coordinator), traced (TraceHandled). logger may be nil.
func NewServer(logger *slog.Logger, svc brokerop.Service) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{svc: TraceHandled(svc), logger: logger, maxFrame: brokerop.DefaultMaxFrame, tracer: telemetry.Tracer()}
}

// ServeStream handles one call on st and returns when it is answered or reset. remote names the
// caller for logs and spans.
func (s *Server) ServeStream(ctx context.Context, remote string, st Stream) {
	s.serveStream(ctx, remote, st, nil)
}

// serveStream is ServeStream giving finished calls' stream credit back through cr (nil: the
// stream's own rules).
func (s *Server) serveStream(ctx context.Context, remote string, st Stream, cr *credits) {
	if c, ok := s.read(ctx, remote, st, nil); ok {
		c.credits = cr
		refused, allow := s.check(c)
		if refused != nil {
			s.refuse(c, refused)
			return
		}
		if req, ok := c.body.(*brokerop.FetchReq); ok {
			// The answer's records are written from the service's read buffers, which go
			// back once the stream write returned (quic-go copies what Write is given).
			resp, release, err := s.svc.FetchPooled(c.ctx, req)
			if err != nil {
				s.answer(c, nil, s.failed(c, err))
				return
			}
			defer release()
			s.answer(c, resp, ResponseOf(c.h.RequestID))
			return
		}
		out, resp := s.run(c)
		if allow != nil && out != nil {
			brokerop.FilterAnswer(c.body, out, allow)
		}
		s.answer(c, out, resp)
	}
}

// recordRefMin is the smallest record set a Produce request or Fetch answer writes by
// reference rather than copying it into the frame.
const recordRefMin = 4 << 10

// inCall is one decoded request, ready to run.
type inCall struct {
	st     Stream
	tag    brokerop.Code
	spec   brokerop.Spec
	h      brokerop.RequestHeader
	body   any
	ctx    context.Context
	remote string
	cancel context.CancelFunc // ends ctx (deadline, caller's reset); nil: nothing to end
	stop   func() bool        // unregisters the reset watch; nil: none
	// credits, if set, holds the connection's finished calls' stream credit, given back just
	// before this call's answer is written (credits).
	credits *credits
}

// read reads and decodes one request frame. On bad input the stream is reset and ok is false.
func (s *Server) read(ctx context.Context, remote string, st Stream, alloc func(n int) []byte) (c *inCall, ok bool) {
	tag, payload, err := brokerop.ReadFrameInto(st, s.maxFrame, alloc)
	if err == nil {
		// Streams are single-use: the frame must be followed by the end of the stream. Reading
		// the FIN also lets QUIC free the stream's slot (the peer may open only 100 at once).
		err = expectEOF(st)
	}
	if err != nil {
		if !errors.Is(err, io.EOF) {
			s.reject(ctx, st, ErrCodeMalformed, "mesh.kafkaop.malformed", remote, err)
		} else {
			st.CancelWrite(ErrCodeMalformed)
		}
		return nil, false
	}
	spec, ok := brokerop.Lookup(brokerop.OpOf(tag))
	if !ok {
		s.reject(ctx, st, ErrCodeUnknownOp, telemetry.SpanUnsupportedTag, remote, fmt.Errorf("unknown op tag %#x", uint8(tag)))
		return nil, false
	}
	h, body, err := brokerop.DecodeRequest(tag, payload)
	if err != nil {
		s.reject(ctx, st, ErrCodeMalformed, "mesh.kafkaop.malformed", remote, err)
		return nil, false
	}
	c = &inCall{st: st, tag: brokerop.OpOf(tag), spec: spec, h: h, body: body, remote: remote}
	// The caller's span is the op's parent; the op's own span is TraceHandled's. A principal
	// the header names is checked here (check) and not passed on: the op's own calls to
	// other brokers name none.
	ctx = withPeer(telemetry.Extract(brokerop.WithoutActing(ctx), h.TraceParent, h.TraceState), remote)
	sc, reset := st.(interface{ Context() context.Context })
	// One cancellable context serves the deadline and the caller's reset.
	switch {
	case h.DeadlineMs > 0:
		ctx, c.cancel = context.WithTimeout(ctx, time.Duration(h.DeadlineMs)*time.Millisecond)
	case reset:
		ctx, c.cancel = context.WithCancel(ctx)
	}
	if reset {
		// The stream's context ends when the caller resets the stream (it cancels our write
		// side with STOP_SENDING): stop working on a call nobody waits for.
		c.stop = context.AfterFunc(sc.Context(), c.cancel)
	}
	c.ctx = ctx
	return c, true
}

// done releases the call's context resources.
func (c *inCall) done() {
	if c.stop != nil {
		c.stop()
	}
	if c.cancel != nil {
		c.cancel()
	}
}

// run runs c's op on the service and returns the response (nil on error, recorded in resp).
func (s *Server) run(c *inCall) (out any, resp brokerop.ResponseHeader) {
	m, err := brokerop.Dispatch(c.ctx, s.svc, c.tag, c.body)
	if err != nil {
		return nil, s.failed(c, err)
	}
	return m, ResponseOf(c.h.RequestID)
}

func (s *Server) failed(c *inCall, e error) brokerop.ResponseHeader {
	resp := ResponseOf(c.h.RequestID)
	if errors.Is(e, brokerop.ErrUnsupported) {
		resp.Status, resp.Message = brokerop.StatusUnknownOp, e.Error()
		return resp
	}
	var refused *brokerop.RefusedError
	if errors.As(e, &refused) {
		resp.Status, resp.Message, resp.ErrorCode = brokerop.StatusUnauthorized, refused.Message, refused.Code
		return resp
	}
	resp.Status, resp.Message = statusOf(c.ctx, e), e.Error()
	return resp
}

// answer writes the response frame, finishes the stream and releases the call.
func (s *Server) answer(c *inCall, out any, resp brokerop.ResponseHeader) {
	defer c.done()
	frame, err := brokerop.EncodeResponseBuffers(c.tag, resp, out, recordRefMin) // record sets by reference
	if err != nil {
		s.logger.Error("kafkaop: encode response", "op", c.spec.Name, "err", err)
		c.st.CancelWrite(ErrCodeMalformed)
		return
	}
	if c.credits != nil {
		// Finished calls' credit now: its MAX_STREAMS frame goes out with this answer.
		c.credits.release()
	}
	for _, b := range frame {
		if _, err := c.st.Write(b); err != nil {
			s.logger.Debug("kafkaop: answer not delivered", "op", c.spec.Name, "peer", c.remote, "err", err)
			return
		}
	}
	_ = c.st.Close()
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

// ServeConn accepts streams on c until ctx ends or the connection closes and waits for every
// call it started before returning.
//
// Produce order: QUIC hands streams to AcceptStream in the order the caller opened them, and a
// Caller opens produce streams in the order of its ProduceStaged/Produce calls. So a produce
// stream is read and, with the Service's ProduceStaged, appended right here on the accepting
// goroutine, in that order (Service.ProduceStaged); only its fsync wait and the answer run on
// their own goroutine (pipelined produces share fsyncs). A produce payload is read into a
// pooled buffer that is reused once the append returned: ProduceStaged must not keep
// references to the request's record bytes after it returns (broker.Broker copies them into
// its log buffer or writes them out). Every other op is read and run on its own goroutine.
//
// Stream credit: a call's stream is done once the answer is acknowledged, and quic-go then
// gives its credit back to the caller in a MAX_STREAMS frame. Sent the moment the caller's
// ACK arrives, that frame needs a packet of its own, and the caller, having two
// ack-eliciting packets (it and the answer), ACKs at once: four packets per call where two
// do. So when the accepter leaves the credit to us (endpoint.Conn.AcceptStreamHeld, see
// ServeFunc), the finished calls' credit is given back just before the next answer is
// written and rides in its packet (credits). Released credit on a stream that released it
// already (endpoint.Conn.AcceptStream) or without quic-go's RequireStreamCreditRelease is a
// no-op.
func (s *Server) ServeConn(ctx context.Context, remote string, c StreamAccepter) {
	cr := &credits{}
	defer cr.release()
	var wg sync.WaitGroup
	defer wg.Wait()
	var one [1]byte
	for {
		st, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		cr.start()
		// Look at the tag only (a caller writes its frame right after opening the stream).
		_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := st.Peek(one[:]); n != 1 || err != nil || brokerop.OpOf(brokerop.Code(one[0])) != brokerop.OpProduce {
			_ = st.SetReadDeadline(time.Time{})
			wg.Go(func() {
				s.serveStream(ctx, remote, st, cr)
				cr.finish(st)
			})
			continue
		}
		held := &pooledPayload{}
		call, ok := s.read(ctx, remote, st, held.alloc)
		_ = st.SetReadDeadline(time.Time{})
		if !ok {
			held.release()
			cr.finish(st)
			continue
		}
		call.credits = cr
		if refused, _ := s.check(call); refused != nil {
			held.release()
			wg.Go(func() {
				defer cr.finish(st)
				s.refuse(call, refused)
			})
			continue
		}
		wait := s.svc.ProduceStaged(call.ctx, call.body.(*brokerop.ProduceReq))
		// The append copied the records (or wrote them out): the payload is free again.
		held.release()
		wg.Go(func() {
			defer cr.finish(st)
			out, err := wait()
			if err != nil {
				s.answer(call, nil, s.failed(call, err))
				return
			}
			s.answer(call, out, ResponseOf(call.h.RequestID))
		})
	}
}

// creditReleaser is a stream whose credit its accepter gives back (*quic.Stream).
type creditReleaser interface{ ReleaseStreamCredit() }

// Bounds on the stream credit a connection's server holds back: at most creditHoldMax
// finished calls, and none once the calls in progress and those held reach
// creditInflightMax, half the streams a caller may have open (endpoint.MaxIncomingBidi), so
// a caller is never kept waiting for a stream by credit held here.
const (
	creditHoldMax     = 8
	creditInflightMax = 50
)

// credits is the stream credit of one connection's finished calls, not yet given back.
type credits struct {
	mu       sync.Mutex
	inflight int              // calls accepted and not finished
	held     []creditReleaser // guarded by mu
}

// start counts a call accepted.
func (c *credits) start() {
	c.mu.Lock()
	c.inflight++
	c.mu.Unlock()
}

// finish counts st's call as done and holds its credit, giving back everything held when
// that reaches a bound.
func (c *credits) finish(st Stream) {
	r, ok := st.(creditReleaser)
	c.mu.Lock()
	c.inflight--
	if ok {
		c.held = append(c.held, r)
	}
	var out []creditReleaser
	if len(c.held) >= creditHoldMax || c.inflight+len(c.held) >= creditInflightMax {
		out, c.held = c.held, nil
	}
	c.mu.Unlock()
	for _, r := range out {
		r.ReleaseStreamCredit()
	}
}

// release gives back all credit held.
func (c *credits) release() {
	c.mu.Lock()
	out := c.held
	c.held = nil
	c.mu.Unlock()
	for _, r := range out {
		r.ReleaseStreamCredit()
	}
}

// StreamAccepter is the part of a mesh connection the server loop uses.
type StreamAccepter interface {
	AcceptStream(ctx context.Context) (*quic.Stream, error)
}

// expectEOF reads the end of a single-use stream after its one frame; anything more is an error.
func expectEOF(r io.Reader) error {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return fmt.Errorf("%w: bytes after the frame", brokerop.ErrMalformed)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
