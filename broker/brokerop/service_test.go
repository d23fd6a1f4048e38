package brokerop

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

type heartbeatOnly struct{ Unimplemented }

func (heartbeatOnly) Heartbeat(_ context.Context, req *HeartbeatReq) (*HeartbeatResp, error) {
	return &HeartbeatResp{ErrorCode: int16(req.Generation)}, nil
}

func (h heartbeatOnly) ProduceStaged(ctx context.Context, req *ProduceReq) func() (*ProduceResp, error) {
	return ProduceNow(ctx, h.Produce, req)
}

func (h heartbeatOnly) FetchPooled(ctx context.Context, req *FetchReq) (*FetchResp, func(), error) {
	return FetchUnpooled(ctx, h.Fetch, req)
}

// Dispatch routes every op code to its method; an op the Service does not declare answers
// ErrUnsupported, as does an unknown code.
func TestDispatch(t *testing.T) {
	var svc Service = heartbeatOnly{}
	resp, err := Dispatch(context.Background(), svc, OpHeartbeat, &HeartbeatReq{Generation: 7})
	if err != nil || resp.(*HeartbeatResp).ErrorCode != 7 {
		t.Fatalf("heartbeat: %+v %v", resp, err)
	}
	for _, s := range Specs() {
		if s.Code == OpHeartbeat {
			continue
		}
		if _, err := Dispatch(context.Background(), svc, s.Code, s.NewRequest()); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", s.Name, err)
		}
	}
	if _, err := Dispatch(context.Background(), svc, 0x7f, &HeartbeatReq{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown code: %v", err)
	}
	if _, err := Dispatch(context.Background(), svc, OpHeartbeat, &FetchReq{}); err == nil {
		t.Error("a request of the wrong type was dispatched")
	}
}

// Parts sends each op to its part; a nil part answers ErrUnsupported.
func TestParts(t *testing.T) {
	p := Parts{Groups: heartbeatOnly{}}
	if r, err := p.Heartbeat(context.Background(), &HeartbeatReq{Generation: 3}); err != nil || r.ErrorCode != 3 {
		t.Fatalf("heartbeat: %+v %v", r, err)
	}
	if _, err := p.Metadata(context.Background(), &MetadataReq{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("metadata without an Admin part: %v", err)
	}
	if _, err := p.ProduceStaged(context.Background(), &ProduceReq{})(); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("staged produce without a Data part: %v", err)
	}
	if _, _, err := p.FetchPooled(context.Background(), &FetchReq{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("pooled fetch without a Data part: %v", err)
	}
}

// Intercept runs around every op, with the op's name and outcome, and for ProduceStaged until
// its wait returned.
func TestIntercept(t *testing.T) {
	var log []string
	svc := Intercept(heartbeatOnly{}, func(ctx context.Context, op string) (context.Context, func(error)) {
		log = append(log, "start "+op)
		return ctx, func(err error) { log = append(log, fmt.Sprintf("end %s %v", op, errors.Is(err, ErrUnsupported))) }
	})
	if _, err := svc.Heartbeat(context.Background(), &HeartbeatReq{}); err != nil {
		t.Fatal(err)
	}
	_, _ = svc.Metadata(context.Background(), &MetadataReq{})
	wait := svc.ProduceStaged(context.Background(), &ProduceReq{})
	log = append(log, "staged")
	_, _ = wait()
	_, _, _ = svc.FetchPooled(context.Background(), &FetchReq{})
	want := []string{"start heartbeat", "end heartbeat false", "start metadata", "end metadata true",
		"start produce", "staged", "end produce true", "start fetch", "end fetch true"}
	if fmt.Sprint(log) != fmt.Sprint(want) {
		t.Fatalf("calls:\n got %v\nwant %v", log, want)
	}
}
