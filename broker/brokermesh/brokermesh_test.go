package brokermesh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/telemetrytest"
	"github.com/meshkafka/meshkafka/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeBroker serves Produce and Fetch only.
type fakeBroker struct {
	brokerop.Unimplemented
	mu        sync.Mutex
	produced  []brokerop.ProducePartition
	deadline  time.Duration
	fetchDone chan error // receives the handler's ctx error when a blocked fetch ends
}

func (f *fakeBroker) Produce(ctx context.Context, req *brokerop.ProduceReq) (*brokerop.ProduceResp, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(dl)
	}
	resp := &brokerop.ProduceResp{}
	for _, p := range req.Partitions {
		resp.Partitions = append(resp.Partitions, brokerop.ProducePartitionResp{Topic: p.Topic, Partition: p.Partition, BaseOffset: int64(len(f.produced))})
		p.Records = bytes.Clone(p.Records) // a Service keeps no reference to request records
		f.produced = append(f.produced, p)
	}
	return resp, nil
}

func (f *fakeBroker) Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error) {
	if req.MaxWaitMs < 0 {
		return nil, errors.New("boom")
	}
	if req.MaxWaitMs > 0 { // block until cancelled
		<-ctx.Done()
		f.fetchDone <- ctx.Err()
		return nil, ctx.Err()
	}
	return &brokerop.FetchResp{Partitions: []brokerop.FetchPartitionResp{{Topic: "t", Records: []byte("data")}}}, nil
}

func (f *fakeBroker) ProduceStaged(ctx context.Context, req *brokerop.ProduceReq) func() (*brokerop.ProduceResp, error) {
	return brokerop.ProduceNow(ctx, f.Produce, req)
}

func (f *fakeBroker) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	return brokerop.FetchUnpooled(ctx, f.Fetch, req)
}

type quicOpener struct{ c *quic.Conn }

func (o quicOpener) OpenStream(ctx context.Context) (Stream, error) { return o.c.OpenStreamSync(ctx) }

func tlsPair(t testing.TB) (*tls.Config, *tls.Config) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	srv := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}, NextProtos: []string{ALPN}}
	cli := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}}
	return srv, cli
}

// setup starts a server on loopback QUIC and returns a caller connected to it.
func setup(t *testing.T, data brokerop.DataService) (*Caller, *quic.Conn) {
	t.Helper()
	return setupGuarded(t, brokerop.Parts{Data: data}, nil)
}

// setupGuarded is setup serving svc with the server checking calls with g (nil: none); the
// caller is the peer "peer".
func setupGuarded(t testing.TB, svc brokerop.Service, g *Guard) (*Caller, *quic.Conn) {
	t.Helper()
	srvTLS, cliTLS := tlsPair(t)
	ln, err := quic.ListenAddr("127.0.0.1:0", srvTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := NewServer(nil, svc)
	s.SetGuard(g)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() { s.ServeConn(ctx, "peer", c) })
		}
	})
	cc, err := quic.DialAddr(ctx, ln.Addr().String(), cliTLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.CloseWithError(0, "")
		cancel()
		ln.Close()
		wg.Wait()
	})
	return NewCaller(quicOpener{cc}, "broker"), cc
}

func TestProduceRoundTripWithDeadline(t *testing.T) {
	fb := &fakeBroker{}
	c, _ := setup(t, fb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Produce(ctx, &brokerop.ProduceReq{Acks: -1, Partitions: []brokerop.ProducePartition{{Topic: "a", Partition: 2, Records: []byte{1, 2, 3}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Partitions) != 1 || resp.Partitions[0].Topic != "a" || resp.Partitions[0].Partition != 2 {
		t.Fatalf("resp = %+v", resp)
	}
	fb.mu.Lock() // the handler ran on the server's goroutine
	defer fb.mu.Unlock()
	if string(fb.produced[0].Records) != "\x01\x02\x03" {
		t.Fatalf("broker got %+v", fb.produced)
	}
	if fb.deadline <= 0 || fb.deadline > 5*time.Second {
		t.Fatalf("handler deadline %v, want within (0, 5s]", fb.deadline)
	}
}

func TestErrorsAndUnservedOps(t *testing.T) {
	c, _ := setup(t, &fakeBroker{})
	_, err := c.Fetch(context.Background(), &brokerop.FetchReq{MaxWaitMs: -1})
	var ce *CallError
	if !errors.As(err, &ce) || ce.Status != brokerop.StatusInternal || ce.Message != "boom" {
		t.Fatalf("err = %v", err)
	}
	_, err = c.JoinGroup(context.Background(), &brokerop.JoinGroupReq{})
	if !errors.As(err, &ce) || ce.Status != brokerop.StatusUnknownOp {
		t.Fatalf("unserved op: err = %v", err)
	}
}

// A garbage or unknown-tag stream is reset; the connection and other streams carry on.
func TestGarbageStreamResetConnectionSurvives(t *testing.T) {
	c, cc := setup(t, &fakeBroker{})
	for _, garbage := range [][]byte{
		{0x7f, 0x01, 0x00},                      // unknown tag
		{byte(brokerop.OpFetch), 0x03, 1, 2, 3}, // malformed payload
		{byte(brokerop.OpFetch), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // bad length
	} {
		st, err := cc.OpenStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		st.Write(garbage)
		st.Close()
		buf := make([]byte, 16)
		_, err = st.Read(buf)
		var se *quic.StreamError
		if !errors.As(err, &se) {
			t.Fatalf("garbage %x: read err = %v, want stream reset", garbage, err)
		}
		if _, err := c.Fetch(context.Background(), &brokerop.FetchReq{}); err != nil {
			t.Fatalf("after garbage %x: %v", garbage, err)
		}
	}
}

func TestCallerCancelStopsHandler(t *testing.T) {
	fb := &fakeBroker{fetchDone: make(chan error, 1)}
	c, _ := setup(t, fb)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Fetch(ctx, &brokerop.FetchReq{MaxWaitMs: 60000})
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller err = %v", err)
	}
	select {
	case err := <-fb.fetchDone:
		if err == nil {
			t.Fatal("handler ctx not cancelled")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler still blocked after the caller cancelled")
	}
}

func TestTraceCrossesTheHop(t *testing.T) {
	rec, tp := telemetrytest.Record(t)
	c, _ := setup(t, &fakeBroker{})
	traced := TraceCalls(c, "broker") // tracing is a decorator around the Caller
	ctx, root := tp.Tracer("x").Start(context.Background(), telemetry.SpanGatewayRequest)
	if _, err := traced.Fetch(ctx, &brokerop.FetchReq{}); err != nil {
		t.Fatal(err)
	}
	root.End()
	byName := map[string]sdktrace.ReadOnlySpan{}
	deadline := time.Now().Add(2 * time.Second)
	for len(byName) < 3 && time.Now().Before(deadline) {
		for _, s := range rec.Ended() {
			byName[s.Name()] = s
		}
		time.Sleep(10 * time.Millisecond)
	}
	sent, handle := byName[telemetry.SpanKafkaOpSent], byName[telemetry.SpanKafkaOpHandle]
	if sent == nil || handle == nil {
		t.Fatalf("spans: %v", byName)
	}
	if sent.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Fatal("sent span is not a child of the gateway span")
	}
	if handle.Parent().SpanID() != sent.SpanContext().SpanID() || handle.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Fatal("handle span is not a child of the sent span in the same trace")
	}
}

func TestClientCoversEveryOp(t *testing.T) {
	ct := reflect.TypeFor[*Caller]()
	for _, s := range brokerop.Specs() {
		req, resp := reflect.TypeOf(s.NewRequest()).Elem(), reflect.TypeOf(s.NewResponse()).Elem()
		name := req.Name()[:len(req.Name())-3]
		m, ok := ct.MethodByName(name)
		if !ok {
			t.Errorf("Caller has no method %s for op %s", name, s.Name)
			continue
		}
		if m.Type.NumIn() != 3 || m.Type.In(2) != reflect.PointerTo(req) || m.Type.Out(0) != reflect.PointerTo(resp) {
			t.Errorf("Caller.%s has the wrong signature %v", name, m.Type)
		}
	}
}

// A caller whose FIN arrives after its frame must not leak the broker's stream slots: the
// broker reads each stream to its end, so more calls than the 100-stream limit all complete.
func TestLateFinDoesNotLeakStreams(t *testing.T) {
	_, cc := setup(t, &fakeBroker{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	frame, err := brokerop.EncodeRequest(brokerop.OpFetch, brokerop.RequestHeader{RequestID: 1}, &brokerop.FetchReq{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 150; i++ {
		st, err := cc.OpenStreamSync(ctx)
		if err != nil {
			t.Fatalf("call %d: open: %v", i, err)
		}
		if _, err := st.Write(frame); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // the FIN goes in a packet of its own
		st.Close()
		if _, _, err := brokerop.ReadFrame(st, 0); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if err := expectEOF(st); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}
