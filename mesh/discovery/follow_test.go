package discovery

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type peersList struct {
	mu sync.Mutex
	p  []NodeAddr
}

func (l *peersList) Peers() []NodeAddr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]NodeAddr(nil), l.p...)
}

func (l *peersList) set(p ...NodeAddr) {
	l.mu.Lock()
	l.p = p
	l.mu.Unlock()
}

// Follow reports each node once, again when its address changes, and never a node that only
// stayed the same; kick makes it look at once.
func TestFollow(t *testing.T) {
	a := NodeAddr{ID: key.GenerateSecretKey().Public(), Direct: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:1")}}
	b := NodeAddr{ID: key.GenerateSecretKey().Public(), Direct: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:1")}}
	var l peersList
	l.set(a)
	ctx, cancel := context.WithCancel(context.Background())
	kick := make(chan struct{})
	got := make(chan NodeAddr, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, nil, &l, time.Hour, kick, func(p NodeAddr) { got <- p })
	}()
	expect := func(want NodeAddr) {
		t.Helper()
		select {
		case p := <-got:
			if p.ID != want.ID || len(p.Direct) != len(want.Direct) || p.Direct[0] != want.Direct[0] {
				t.Fatalf("got %+v, want %+v", p, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no report of %+v", want)
		}
	}
	expect(a)
	l.set(a, b)
	kick <- struct{}{}
	expect(b)
	a2 := NodeAddr{ID: a.ID, Direct: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:2")}}
	l.set(a2, b)
	kick <- struct{}{}
	expect(a2)
	kick <- struct{}{} // nothing changed
	kick <- struct{}{} // (the second send returns only after the first pass is done)
	select {
	case p := <-got:
		t.Fatalf("unchanged node reported again: %+v", p)
	default:
	}
	cancel()
	<-done
}

// TestFollowPollsEveryInterval: with no kick, a change is seen at the next interval of the
// injected clock, not before.
func TestFollowPollsEveryInterval(t *testing.T) {
	a := NodeAddr{ID: key.GenerateSecretKey().Public(), Direct: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:1")}}
	b := NodeAddr{ID: key.GenerateSecretKey().Public(), Direct: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:1")}}
	var l peersList
	l.set(a)
	fake := clock.NewFake(time.Unix(0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan NodeAddr, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, fake, &l, time.Minute, nil, func(p NodeAddr) { got <- p })
	}()
	if p := <-got; p.ID != a.ID { // the ticker is made before this first pass
		t.Fatalf("first pass reported %v", p.ID)
	}
	l.set(a, b)
	fake.Advance(59 * time.Second)
	select {
	case p := <-got:
		t.Fatalf("reported %v before the interval passed", p.ID)
	default:
	}
	fake.Advance(time.Second)
	if p := <-got; p.ID != b.ID {
		t.Fatalf("tick reported %v, want b", p.ID)
	}
	cancel()
	<-done
}
