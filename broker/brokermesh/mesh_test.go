package brokermesh

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// newEP starts a mesh endpoint on loopback with a fresh identity.
func newEP(t *testing.T) *endpoint.Endpoint { return magicep.Loopback(t) }

// serveFakeTo serves a fakeBroker on a new endpoint that trusts only gw, and returns that
// endpoint.
func serveFakeTo(t *testing.T, gw *endpoint.Endpoint) *endpoint.Endpoint {
	t.Helper()
	ep := newEP(t)
	var trust TrustList
	trust.Add(gw.NodeID())
	Serve(ep, NewServer(nil, brokerop.Parts{Data: &fakeBroker{}}), trust, nil)
	return ep
}

func TestOverMeshTrustedAndUntrusted(t *testing.T) {
	trustedGW, strangerGW := newEP(t), newEP(t)
	brokerEP := serveFakeTo(t, trustedGW)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	good := NewCaller(NewMeshOpener(trustedGW, brokerEP.Addr()), "broker")
	resp, err := good.Produce(ctx, &brokerop.ProduceReq{Acks: 1, Partitions: []brokerop.ProducePartition{{Topic: "x", Records: []byte("r")}}})
	if err != nil || len(resp.Partitions) != 1 || resp.Partitions[0].Topic != "x" {
		t.Fatalf("trusted produce: %+v %v", resp, err)
	}

	bad := NewCaller(NewMeshOpener(strangerGW, brokerEP.Addr()), "broker")
	_, err = bad.Produce(ctx, &brokerop.ProduceReq{})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("untrusted produce: err = %v, want ErrUnavailable", err)
	}
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) || ae.ErrorCode != quic.ApplicationErrorCode(ErrCodeUntrusted) ||
		!strings.Contains(ae.ErrorMessage, strangerGW.NodeID().String()+" is not trusted") {
		t.Fatalf("untrusted produce: err %v does not carry the refusal", err)
	}
}

func TestParseTrustList(t *testing.T) {
	a, b := key.GenerateSecretKey().Public(), key.GenerateSecretKey().Public()
	tl, err := ParseTrustList(a.String() + ", " + b.String())
	if err != nil || !tl.Allows(a) || !tl.Allows(b) || tl.Len() != 2 {
		t.Fatalf("tl=%v err=%v", tl, err)
	}
	if tl.Allows(key.GenerateSecretKey().Public()) {
		t.Fatal("stranger allowed")
	}
	if _, err := ParseTrustList("nonsense"); err == nil {
		t.Fatal("garbage accepted")
	}
}

// Over the mesh the server holds finished calls' stream credit (ServeConn): three times
// as many calls as the caller may have streams open, one after another and then many at
// once, all get their streams.
func TestOverMeshStreamCreditComesBack(t *testing.T) {
	gw := newEP(t)
	brokerEP := serveFakeTo(t, gw)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := NewCaller(NewMeshOpener(gw, brokerEP.Addr()), "broker")
	produce := func(i int) error {
		resp, err := c.Produce(ctx, &brokerop.ProduceReq{Acks: 1, Partitions: []brokerop.ProducePartition{{Topic: "x", Records: []byte{byte(i)}}}})
		if err == nil && len(resp.Partitions) != 1 {
			err = errors.New("answer without the partition")
		}
		return err
	}
	for i := range 3 * endpoint.MaxIncomingBidi {
		if err := produce(i); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	errs := make(chan error, 3*endpoint.MaxIncomingBidi)
	for i := range 3 * endpoint.MaxIncomingBidi {
		go func() { errs <- produce(i) }()
	}
	for range 3 * endpoint.MaxIncomingBidi {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

type fakeReleaser struct {
	Stream
	released int
}

func (f *fakeReleaser) ReleaseStreamCredit() { f.released++ }

// credits holds finished calls' credit up to creditHoldMax, or until calls in progress and
// held ones reach creditInflightMax, and release gives everything back.
func TestCreditsBounds(t *testing.T) {
	var cr credits
	var streams []*fakeReleaser
	finish := func() *fakeReleaser {
		s := &fakeReleaser{}
		streams = append(streams, s)
		cr.start()
		cr.finish(s)
		return s
	}
	released := func() int {
		n := 0
		for _, s := range streams {
			if s.released > 1 {
				t.Fatalf("credit released %d times", s.released)
			}
			n += s.released
		}
		return n
	}
	for range creditHoldMax - 1 {
		finish()
	}
	if n := released(); n != 0 {
		t.Fatalf("%d released below the bound", n)
	}
	finish()
	if n := released(); n != creditHoldMax {
		t.Fatalf("%d released at the bound, want %d", n, creditHoldMax)
	}
	finish()
	cr.release()
	if n := released(); n != creditHoldMax+1 {
		t.Fatalf("%d released after release, want %d", n, creditHoldMax+1)
	}
	// Many calls in progress: a finished one's credit goes back at once.
	for range creditInflightMax {
		cr.start()
	}
	finish()
	if n := released(); n != creditHoldMax+2 {
		t.Fatalf("with %d calls in progress: %d released, want %d", creditInflightMax, n, creditHoldMax+2)
	}
	// A stream without credit of its own to release (Local) is only counted.
	cr.start()
	cr.finish(nil)
	if cr.inflight != creditInflightMax || len(cr.held) != 0 {
		t.Fatalf("inflight %d held %d", cr.inflight, len(cr.held))
	}
}
