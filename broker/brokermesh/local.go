package brokermesh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Local is a StreamOpener that reaches a Server in the same process through memory: a
// Caller over it calls the server's Service with no mesh connection, as if the process
// dialled itself. A broker's embedded Kafka listener (the direct data path) gives its
// gateway-side cluster view a Local for the broker itself.
//
// Each call's request frame is buffered until the caller finishes it (Stream.Close) and then
// handed to the server on the caller's goroutine, so calls reach the server in the order the
// caller finishes them; a Produce is appended right there (Service.ProduceStaged), as
// ServeConn does for a mesh connection, so pipelined produces keep their order. Answers come
// back through a pipe (a server write waits for the caller's read). Every other op runs on a
// goroutine of its own, owned by the Local: Close cancels them and waits for them.
type Local struct {
	srv    *Server
	remote string
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // orders request hand-over; guards closed
	closed bool
	wg     sync.WaitGroup
}

// NewLocal returns a Local serving srv's ops; remote names the caller in the server's logs.
func NewLocal(srv *Server, remote string) *Local {
	ctx, cancel := context.WithCancel(context.Background())
	return &Local{srv: srv, remote: remote, ctx: ctx, cancel: cancel}
}

// errLocalClosed is what a stream of a closed Local reports.
var errLocalClosed = errors.New("kafkaop: local server closed")

// OpenStream implements StreamOpener.
func (l *Local) OpenStream(ctx context.Context) (Stream, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errLocalClosed
	}
	pr, pw := io.Pipe()
	sctx, scancel := context.WithCancel(l.ctx)
	// An answer nobody will read (the call abandoned, the Local closed) must not hold its
	// goroutine: the pipe breaks when the call's context ends. A pipe already closed after a
	// complete answer keeps its clean end.
	context.AfterFunc(sctx, func() { _ = pw.CloseWithError(errLocalClosed) })
	return &localStream{l: l, resp: pr, server: &localServerSide{w: pw, ctx: sctx, cancel: scancel, local: l.ctx}}, nil
}

// Close cancels the calls in progress and waits for them; later streams fail.
func (l *Local) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

// serve hands a finished request to the server (called from the caller's Close).
func (l *Local) serve(req []byte, ss *localServerSide) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		ss.cancel()
		_ = ss.w.CloseWithError(errLocalClosed)
		return errLocalClosed
	}
	ss.r = bytes.NewReader(req)
	if len(req) == 0 || brokerop.OpOf(brokerop.Code(req[0])) != brokerop.OpProduce {
		l.wg.Go(func() {
			defer ss.cancel()
			l.srv.ServeStream(ss.ctx, l.remote, ss)
		})
		return nil
	}
	call, ok := l.srv.read(ss.ctx, l.remote, ss, nil)
	if !ok {
		ss.cancel()
		return nil
	}
	if refused, _ := l.srv.check(call); refused != nil {
		l.wg.Go(func() {
			defer ss.cancel()
			l.srv.refuse(call, refused)
		})
		return nil
	}
	wait := l.srv.svc.ProduceStaged(call.ctx, call.body.(*brokerop.ProduceReq))
	l.wg.Go(func() {
		defer ss.cancel()
		out, err := wait()
		if err != nil {
			l.srv.answer(call, nil, l.srv.failed(call, err))
			return
		}
		l.srv.answer(call, out, ResponseOf(call.h.RequestID))
	})
	return nil
}

// localStream is the caller's side of one call.
type localStream struct {
	l      *Local
	req    bytes.Buffer
	resp   *io.PipeReader
	server *localServerSide

	mu       sync.Mutex
	finished bool // Close or CancelWrite was called
}

func (s *localStream) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return 0, errors.New("kafkaop: write after the end of the request")
	}
	return s.req.Write(b)
}

// Close ends the request and hands it to the server.
func (s *localStream) Close() error {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return nil
	}
	s.finished = true
	req := s.req.Bytes()
	s.mu.Unlock()
	return s.l.serve(req, s.server)
}

func (s *localStream) Read(b []byte) (int, error) { return s.resp.Read(b) }

// CancelRead abandons the answer: the server's write fails and its call is cancelled.
func (s *localStream) CancelRead(code quic.StreamErrorCode) {
	_ = s.resp.CloseWithError(&quic.StreamError{ErrorCode: code})
	s.server.cancel()
}

// CancelWrite abandons the request before it was finished (after, it changes nothing).
func (s *localStream) CancelWrite(code quic.StreamErrorCode) {
	s.mu.Lock()
	abandoned := !s.finished
	s.finished = true
	s.mu.Unlock()
	if abandoned {
		s.server.cancel()
		_ = s.server.w.CloseWithError(&quic.StreamError{ErrorCode: code})
	}
}

// localServerSide is the server's side of one call: the buffered request and the answer pipe.
type localServerSide struct {
	r      *bytes.Reader
	w      *io.PipeWriter
	ctx    context.Context // ends when the caller abandons the call or the Local closes
	cancel context.CancelFunc
	local  context.Context // the Local's: ended by Close
}

func (s *localServerSide) Read(b []byte) (int, error) { return s.r.Read(b) }

// Write passes the answer on, unless the Local was closed: a handler cut short by Close would
// answer "context canceled", and the caller must see the Local gone (ErrUnavailable) instead.
func (s *localServerSide) Write(b []byte) (int, error) {
	if s.local.Err() != nil {
		_ = s.w.CloseWithError(errLocalClosed)
		return 0, errLocalClosed
	}
	return s.w.Write(b)
}
func (s *localServerSide) Close() error { return s.w.Close() }
func (s *localServerSide) CancelRead(quic.StreamErrorCode) {
}

func (s *localServerSide) CancelWrite(code quic.StreamErrorCode) {
	_ = s.w.CloseWithError(&quic.StreamError{ErrorCode: code})
}

// Context implements the stream context Server.read watches.
func (s *localServerSide) Context() context.Context { return s.ctx }
