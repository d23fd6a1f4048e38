package endpoint

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/mesh/discovery"
	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
)

func newEPOpts(t testing.TB, o Options) *Endpoint {
	t.Helper()
	if o.BindAddr == "" {
		o.BindAddr = "127.0.0.1:0"
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// relayOnlyPair starts an in-process relay and two endpoints homed on it with direct paths
// disabled, so every packet between them crosses the relay; b serves echoALPN.
func relayOnlyPair(t testing.TB) (srv *relayserver.Server, url string, a, b *Endpoint) {
	t.Helper()
	srv, url = meshtest.StartRelay(t)
	a = newEPOpts(t, Options{HomeRelay: url, DisableDirect: true})
	b = newEPOpts(t, Options{HomeRelay: url, DisableDirect: true})
	b.Handle(echoALPN, echo)
	return srv, url, a, b
}

// TestHomeRelayOption: Options.HomeRelay alone gives the endpoint a relay path (no
// hand-built magicsock): its Addr carries the relay URL, and a node known only by id and
// relay URL is dialed through the relay (direct paths disabled, so every packet must cross
// the relay server).
func TestHomeRelayOption(t *testing.T) {
	srv, url, a, b := relayOnlyPair(t)
	if got := b.Addr(); got.RelayURL != url || got.ID != b.NodeID() {
		t.Fatalf("b.Addr() = %+v, want relay %s", got, url)
	}
	if _, ok := a.paths.(interface{ HomeRelayURL() string }); !ok {
		t.Fatalf("endpoint built no magicsock: %T", a.paths)
	}
	before := srv.Stats().PacketsSent
	c, err := a.Dial(ctxT(t), NodeAddr{ID: b.NodeID(), RelayURL: url}, echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, make([]byte, 64<<10))
	if got := srv.Stats().PacketsSent - before; got < 10 {
		t.Fatalf("relay forwarded %d packets; the connection did not use it", got)
	}
}

// Without a relay path, a relay-only address is refused with a clear error.
func TestRelayOnlyAddrWithoutRelayPath(t *testing.T) {
	a := newEP(t)
	_, err := a.Dial(ctxT(t), NodeAddr{ID: key.GenerateSecretKey().Public(), RelayURL: "http://127.0.0.1:1"}, echoALPN)
	if !errors.Is(err, ErrNoAddresses) {
		t.Fatalf("err = %v, want ErrNoAddresses", err)
	}
}

func newMDNS(t testing.TB, h *meshtest.Link, sk key.SecretKey) *mdns.Service {
	t.Helper()
	s, err := mdns.New(mdns.Config{Self: sk.Public(), Conns: h.MDNSConns(), Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestDiscoveryDial: two endpoints share an (in-memory) mDNS link; b publishes itself on
// start, and a dials b by node id alone: Dial asks discovery, learns b's address and connects.
func TestDiscoveryDial(t *testing.T) {
	var h meshtest.Link
	skA, skB := key.GenerateSecretKey(), key.GenerateSecretKey()
	mA, mB := newMDNS(t, &h, skA), newMDNS(t, &h, skB)
	a := newEPOpts(t, Options{SecretKey: skA, Discovery: mA})
	b := newEPOpts(t, Options{SecretKey: skB, Discovery: mB})
	b.Handle(echoALPN, echo)
	if _, ok := a.NodeAddrOf(b.NodeID()); ok {
		t.Fatal("a knows b before dialing")
	}
	c, err := a.Dial(ctxT(t), NodeAddr{ID: b.NodeID()}, echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("found by mdns"))
	got, ok := a.NodeAddrOf(b.NodeID())
	if !ok || !slices.Equal(got.Direct, b.Addr().Direct) {
		t.Fatalf("a's book has %+v, want b's address %v", got, b.Addr().Direct)
	}
	// b's own mDNS service never lists itself; a is listed there (a published too).
	meshtest.WaitFor(t, func() bool {
		for _, p := range mB.Peers() {
			if p.ID == a.NodeID() && slices.Equal(p.Direct, a.Addr().Direct) {
				return true
			}
		}
		return false
	})
}

// fakeDisc records lookups and publications.
type fakeDisc struct {
	lookups   atomic.Int64
	mu        sync.Mutex
	published []discovery.NodeAddr
	addr      discovery.NodeAddr // answer; zero ID: not found
}

func (f *fakeDisc) Lookup(ctx context.Context, id key.PublicKey) (discovery.NodeAddr, error) {
	f.lookups.Add(1)
	if f.addr.ID == id {
		return f.addr, nil
	}
	<-ctx.Done()
	return discovery.NodeAddr{}, errors.Join(discovery.ErrNotFound, ctx.Err())
}

func (f *fakeDisc) Publish(a discovery.NodeAddr) {
	f.mu.Lock()
	f.published = append(f.published, a)
	f.mu.Unlock()
}

// Discovery is asked only when nothing is known; a failed lookup ends the dial with
// discovery.ErrNotFound; the endpoint publishes its relay URL and non-loopback addresses
// (loopback only when it has nothing else).
func TestDiscoveryRules(t *testing.T) {
	b := newEP(t)
	b.Handle(echoALPN, echo)
	f := &fakeDisc{}
	a := newEPOpts(t, Options{Discovery: f})
	if _, err := a.Dial(ctxT(t), b.Addr(), echoALPN); err != nil {
		t.Fatal(err)
	}
	if n := f.lookups.Load(); n != 0 {
		t.Fatalf("discovery asked %d times for a node with a known address", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := a.Dial(ctx, NodeAddr{ID: key.GenerateSecretKey().Public()}, echoALPN)
	if !errors.Is(err, discovery.ErrNotFound) || f.lookups.Load() != 1 {
		t.Fatalf("unknown node: err %v after %d lookups", err, f.lookups.Load())
	}
	meshtest.WaitFor(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.published) == 1 && f.published[0].ID == a.NodeID() &&
			slices.Equal(f.published[0].Direct, a.Addr().Direct)
	})

	pa := publishable(NodeAddr{ID: a.NodeID(), RelayURL: "http://r", Direct: []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:5"), netip.MustParseAddrPort("192.168.1.2:5")}})
	if pa.RelayURL != "http://r" || !slices.Equal(pa.Direct, []netip.AddrPort{netip.MustParseAddrPort("192.168.1.2:5")}) {
		t.Fatalf("publishable = %+v", pa)
	}
}

// TestHomeRelayFallback: a node whose address carries no relay URL (as from a seed list, a
// control-plane digest or mDNS) and whose direct address does not work is reached through
// our own home relay, where it is connected too.
func TestHomeRelayFallback(t *testing.T) {
	srv, _, a, b := relayOnlyPair(t)
	before := srv.Stats().PacketsSent
	dead := netip.MustParseAddrPort("127.0.0.1:9")
	c, err := a.Dial(ctxT(t), NodeAddr{ID: b.NodeID(), Direct: []netip.AddrPort{dead}}, echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("via our home relay"))
	if got := srv.Stats().PacketsSent - before; got < 4 {
		t.Fatalf("relay forwarded %d packets", got)
	}
}

// TestHomeRelayNoAddress: a node known by id alone is reached through our home relay; with a
// discovery service that finds nothing, Dial asks it once, then falls back to the relay.
func TestHomeRelayNoAddress(t *testing.T) {
	_, url := meshtest.StartRelay(t)
	f := &fakeDisc{}
	a := newEPOpts(t, Options{HomeRelay: url, DisableDirect: true, Discovery: f})
	b := newEPOpts(t, Options{HomeRelay: url, DisableDirect: true})
	b.Handle(echoALPN, echo)
	c, err := a.Dial(ctxT(t), NodeAddr{ID: b.NodeID()}, echoALPN)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("by id alone"))
	if n := f.lookups.Load(); n != 1 {
		t.Fatalf("discovery asked %d times", n)
	}
}

// TestPlainAndRelayNodesMix: a node on a plain socket (no disco) and a node with a relay path
// (magicsock) reach each other directly, each way: the magicsock answers QUIC from an address
// no known node has, and sends to a node's direct candidates before any disco Pong.
func TestPlainAndRelayNodesMix(t *testing.T) {
	_, url := meshtest.StartRelay(t)
	plain := newEP(t)
	ms := newEPOpts(t, Options{HomeRelay: url})
	plain.Handle(echoALPN, echo)
	ms.Handle(echoALPN, echo)
	direct := NodeAddr{ID: ms.NodeID(), Direct: ms.Addr().Direct}
	c, err := plain.Dial(ctxT(t), direct, echoALPN)
	if err != nil {
		t.Fatalf("plain -> magicsock: %v", err)
	}
	roundTrip(t, c, make([]byte, 100<<10))
	c2, err := ms.Dial(ctxT(t), plain.Addr(), echoALPN)
	if err != nil {
		t.Fatalf("magicsock -> plain: %v", err)
	}
	roundTrip(t, c2, make([]byte, 100<<10))
}
