package brokermesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/syncbuf"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// syncBuf is a log destination safe for concurrent writes.
type syncBuf struct{ syncbuf.Buffer }

func (s *syncBuf) lines(substr string) int { return strings.Count(s.String(), substr) }

// The broker logs a node's refusals once per minute, with how many there were; another node
// is logged on its own; memory stays bounded by maxRefusalPeers however many keys are refused.
func TestRefusalLogOncePerPeerPerMinute(t *testing.T) {
	var out syncBuf
	clk := clock.NewFake(time.Unix(1000, 0))
	r := newRefusalLog(slog.New(slog.NewTextHandler(&out, nil)), clk)
	a, b := key.GenerateSecretKey().Public(), key.GenerateSecretKey().Public()
	for range 60 { // a gateway retrying every second for a minute
		r.refused(a, "x")
		clk.Advance(time.Second - time.Millisecond)
	}
	if n := out.lines("node=" + a.String()); n != 1 {
		t.Fatalf("%d lines for one node within a minute, want 1", n)
	}
	r.refused(b, "y")
	if n := out.lines("node=" + b.String()); n != 1 {
		t.Fatalf("another node: %d lines, want 1", n)
	}
	clk.Advance(time.Second)
	r.refused(a, "x")
	if n := out.lines("node=" + a.String()); n != 2 {
		t.Fatalf("after a minute: %d lines, want 2", n)
	}
	if !strings.Contains(out.String(), "refusals=60") {
		t.Fatalf("the second line does not count the refusals in between:\n%s", out.String())
	}
	r.maxPeers = 64 // key generation is slow under -race: a small bound, the same code
	for i := range 3 * r.maxPeers {
		r.refused(key.GenerateSecretKey().Public(), fmt.Sprint(i))
		if i%16 == 0 {
			clk.Advance(time.Millisecond)
		}
	}
	r.mu.Lock()
	n := len(r.peers)
	r.mu.Unlock()
	if n > r.maxPeers {
		t.Fatalf("%d refused nodes remembered, bound %d", n, r.maxPeers)
	}
}

// Over the mesh: a refused call is a *NotTrustedError (still ErrUnavailable) with Kafka's
// CLUSTER_AUTHORIZATION_FAILED, and the caller's RefusalNotice logs it once however often the
// caller retries.
func TestRefusalNoticeOverMesh(t *testing.T) {
	brokerEP, strangerGW := newEP(t), newEP(t)
	Serve(brokerEP, NewServer(nil, brokerop.Parts{Data: &fakeBroker{}}), TrustList{}, nil)
	var out syncBuf
	notice := &RefusalNotice{Log: slog.New(slog.NewTextHandler(&out, nil)), Self: strangerGW.NodeID()}
	c := NewCaller(NewMeshOpener(strangerGW, brokerEP.Addr()), "broker-1")
	c.NoticeRefusals(notice)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		_, err := c.Produce(ctx, &brokerop.ProduceReq{})
		var nt *NotTrustedError
		if !errors.As(err, &nt) || !errors.Is(err, ErrUnavailable) || nt.KafkaErrorCode() != 31 || nt.Broker != "broker-1" {
			t.Fatalf("refused call: %v", err)
		}
	}
	if n := out.lines("broker broker-1 refused this node (not trusted); add " + strangerGW.NodeID().String()); n != 1 {
		t.Fatalf("%d notices, want 1:\n%s", n, out.String())
	}
}
