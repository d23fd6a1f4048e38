package brokermesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

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
	asNode   atomic.Bool                   // name no principal (AsNode)
	notice   atomic.Pointer[RefusalNotice] // reports refusals (refusal.go); nil: none
	remote   string
	nextID   atomic.Uint64
	maxFrame int
}

// NewCaller returns a caller that opens streams with open; remote names the broker in errors
// (and in spans, TraceCalls).
func NewCaller(open StreamOpener, remote string) *Caller {
	return &Caller{open: open, remote: remote, maxFrame: brokerop.DefaultMaxFrame}
}

// NoticeRefusals makes the caller report a broker's refusal of this node to n (logged once
// per broker).
func (c *Caller) NoticeRefusals(n *RefusalNotice) { c.notice.Store(n) }

// refusal turns a transport error into a *NotTrustedError when the broker refused this node,
// and reports it.
func (c *Caller) refusal(err error) error {
	err = notTrusted(c.remote, err)
	if n := c.notice.Load(); n != nil {
		n.Note(err)
	}
	return err
}

// AsNode makes every call of c the calling node's own, naming no principal whatever its
// context carries: a broker's calls to another broker (its own Kafka listener routing a
// request to the partition's leader) are broker-to-broker, which name none (guard.go).
func (c *Caller) AsNode() *Caller {
	c.asNode.Store(true)
	return c
}

// Remote names the broker this caller calls.
func (c *Caller) Remote() string { return c.remote }

// Resetter is a StreamOpener that can drop its connection (MeshOpener).
type Resetter interface {
	// Reset closes the current connection, failing every call on it at once; the next call
	// dials again.
	Reset(reason string)
}

// Reset drops the caller's connection when its opener can (a Resetter): for a broker that
// stopped answering (SIGKILL: nothing closes the connection, and calls on it wait for the
// idle timeout; a broker restarted meanwhile is reached only on a new connection). It
// reports whether there was an opener to reset.
func (c *Caller) Reset(reason string) bool {
	r, ok := c.open.(Resetter)
	if ok {
		r.Reset(reason)
	}
	return ok
}

// Call sends req (a pointer to an op request struct) and decodes the answer into resp.
func (c *Caller) Call(ctx context.Context, op brokerop.Code, req, resp any) error {
	return c.send(ctx, op, req)(resp)
}

// send opens the call's stream and writes the request before it returns, so calls made one
// after another reach the broker's accept loop in that order; the returned function reads the
// answer into resp (call it exactly once).
func (c *Caller) send(ctx context.Context, op brokerop.Code, req any) func(resp any) error {
	return c.sendInto(ctx, op, req, nil)
}

// sendInto is send reading the answer's payload into alloc's memory (nil allocates).
func (c *Caller) sendInto(ctx context.Context, op brokerop.Code, req any, alloc func(n int) []byte) func(resp any) error {
	spec, ok := brokerop.Lookup(op)
	if !ok {
		err := fmt.Errorf("kafkaop: unknown op %#x", uint8(op))
		return func(any) error { return err }
	}
	fail := func(err error) func(any) error {
		return func(any) error { return err }
	}
	h := brokerop.RequestHeader{RequestID: c.nextID.Add(1)}
	if dl, ok := ctx.Deadline(); ok {
		ms := time.Until(dl).Milliseconds()
		if ms <= 0 {
			return fail(context.DeadlineExceeded)
		}
		h.DeadlineMs = uint32(min(ms, 1<<32-1))
	}
	// The span the caller runs in (TraceCalls) becomes the broker's parent.
	h.TraceParent, h.TraceState = telemetry.Inject(ctx)
	// The principal a gateway acts for (guard.go); none for the node's own calls.
	if a, ok := brokerop.ActingOf(ctx); ok && !c.asNode.Load() {
		h.Principal, h.ClientHost = a.Principal, a.Host
	}
	frame, err := brokerop.EncodeRequestBuffers(op, h, req, recordRefMin) // record sets by reference
	if err != nil {
		return fail(err)
	}
	st, err := c.open.OpenStream(ctx)
	if err != nil {
		return fail(c.refusal(fmt.Errorf("%w: %s: open stream: %w", ErrUnavailable, c.remote, err)))
	}
	stop := context.AfterFunc(ctx, func() {
		st.CancelWrite(ErrCodeCancelled)
		st.CancelRead(ErrCodeCancelled)
	})
	for _, b := range frame { // quic-go copies what Write is given before Write returns
		if _, err := st.Write(b); err != nil {
			err = c.streamErr(ctx, "write", err)
			stop()
			return fail(err)
		}
	}
	if err := st.Close(); err != nil {
		err = c.streamErr(ctx, "finish", err)
		stop()
		return fail(err)
	}
	return func(resp any) error {
		defer stop()
		tag, payload, err := brokerop.ReadFrameInto(st, c.maxFrame, alloc)
		if err == nil {
			err = expectEOF(st) // frees the stream's slot; the broker finishes after its frame
		}
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
		if rh.Status == brokerop.StatusUnauthorized && rh.ErrorCode != 0 {
			// The broker refused the principal: the gateway answers the client with the code.
			return &brokerop.RefusedError{Code: rh.ErrorCode, Message: "broker " + c.remote + " refused " + spec.Name + ": " + rh.Message}
		}
		if rh.Status != brokerop.StatusOK {
			return &CallError{Op: spec.Name, Status: rh.Status, Message: rh.Message}
		}
		return nil
	}
}

// StartFetch sends a Fetch at once and returns the function that reads its answer (call it
// exactly once) into a pooled payload: the answer's record bytes live there until release is
// called, exactly once, after resp is no longer used.
func (c *Caller) StartFetch(ctx context.Context, req *brokerop.FetchReq) func() (resp *brokerop.FetchResp, release func(), err error) {
	held := &pooledPayload{}
	recv := c.sendInto(ctx, brokerop.OpFetch, req, held.alloc)
	return func() (*brokerop.FetchResp, func(), error) {
		resp := new(brokerop.FetchResp)
		if err := recv(resp); err != nil {
			held.release()
			return nil, nil, err
		}
		return resp, held.release, nil
	}
}

// FetchPooled is Fetch whose answer's record bytes live in a pooled payload until release is
// called (brokerop.Service): the caller calls release exactly once, after it no longer uses
// resp. The Fetch answer frame is read straight into the pooled payload.
func (c *Caller) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	return c.StartFetch(ctx, req)()
}

// ProduceStaged sends the produce at once (the broker appends produces in the order a caller
// sends them) and returns a wait for the answer, so a gateway can pipeline produce requests
// over the mesh and they still share the broker's fsyncs. req is not used after it returns.
func (c *Caller) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	recv := c.send(ctx, brokerop.OpProduce, req)
	return func() (*brokerop.ProduceResp, error) {
		resp := new(brokerop.ProduceResp)
		if err := recv(resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

func (c *Caller) streamErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var se *quic.StreamError
	if errors.As(err, &se) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return c.refusal(fmt.Errorf("%w: %s: stream %s: %w", ErrUnavailable, c.remote, what, err))
	}
	return c.refusal(fmt.Errorf("%w: %s: %s: %w", ErrUnavailable, c.remote, what, err))
}

var _ brokerop.Service = (*Caller)(nil)
