package brokermesh

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func newEP(t *testing.T) *endpoint.Endpoint {
	t.Helper()
	ep, err := endpoint.New(endpoint.Options{SecretKey: key.GenerateSecretKey(), BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

func TestOverMeshTrustedAndUntrusted(t *testing.T) {
	brokerEP, trustedGW, strangerGW := newEP(t), newEP(t), newEP(t)
	var trust TrustList
	trust.Add(trustedGW.NodeID())
	Serve(brokerEP, NewServer(nil, brokerop.Parts{Data: &fakeBroker{}}), trust, nil)

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
