// Package magicep starts a mesh endpoint on a magicsock (endpoint.Options.Paths), the way
// the mesh binaries run one, for the tests of magicsock and of interop; Lab does so on a
// natlab internet with an in-memory relay, for the tests of the broker's mesh transports;
// Loopback starts a plain endpoint on loopback UDP for the tests that need no more. It is its own package
// because internal/meshtest cannot import mesh/endpoint: endpoint's own tests import
// meshtest.
package magicep

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/internal/meshtest/natlab"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
)

// New runs an endpoint with a fresh key on a magicsock bound to 127.0.0.1 with homeRelay as
// its home relay, and closes it when t ends (Close is idempotent: a test may close it earlier).
func New(t testing.TB, homeRelay string) *endpoint.Endpoint {
	t.Helper()
	_, ep := run(t, magicsock.Options{SecretKey: key.GenerateSecretKey(), BindAddr: "127.0.0.1:0", HomeRelay: homeRelay})
	t.Cleanup(func() { _ = ep.Close() })
	return ep
}

// Loopback runs an endpoint with a fresh key on a plain UDP socket bound to 127.0.0.1 (no
// magicsock: direct loopback paths only) and closes it when t ends (a test may close it
// earlier).
func Loopback(t testing.TB) *endpoint.Endpoint {
	t.Helper()
	ep, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ep.Close() })
	return ep
}

// Connected runs two Loopback endpoints, b serving alpn (each connection held open until it
// closes), and a connected to b on alpn: a connection that lasts until t ends.
func Connected(t testing.TB, alpn string) (a, b *endpoint.Endpoint) {
	t.Helper()
	a, b = Loopback(t), Loopback(t)
	b.Handle(alpn, func(ctx context.Context, c *endpoint.Conn) { <-ctx.Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := a.Dial(ctx, b.Addr(), alpn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return a, b
}

// ServeEcho answers every stream of every connection on alpn with the stream's own bytes,
// each stream in its own goroutine. When t ends it closes ep and waits for those goroutines.
func ServeEcho(t testing.TB, ep *endpoint.Endpoint, alpn string) {
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ep.Close() // ends the streams
		wg.Wait()
	})
	ep.Handle(alpn, func(ctx context.Context, c *endpoint.Conn) {
		defer c.Close()
		for {
			s, err := c.AcceptStream(ctx)
			if err != nil {
				return
			}
			wg.Go(func() { _, _ = io.Copy(s, s); _ = s.Close() })
		}
	})
}

// Lab is a natlab internet with an in-memory relay: UDP, relay and QUIC timers all run in
// memory (inside a synctest bubble, in virtual time), touching no socket. Tests of the
// transports over the mesh (broker/quorum/raftmesh, broker/replica/replmesh) run their nodes
// on it.
type Lab struct {
	Net      *natlab.Network
	Relay    *relayserver.Server
	dial     func(ctx context.Context, url string, priv ed25519.PrivateKey) (*relay.Client, error)
	viaRelay bool
	next     byte
}

// NewLab returns an empty lab, closed when t ends. With viaRelay every endpoint gets the
// lab's relay as its home relay.
func NewLab(t testing.TB, viaRelay bool) *Lab {
	t.Helper()
	n := natlab.New(natlab.Config{Seed: 1})
	t.Cleanup(func() { _ = n.Close() })
	srv, dial := meshtest.StartMemRelay(t)
	return &Lab{Net: n, Relay: srv, dial: dial, viaRelay: viaRelay}
}

// Machine adds a machine to the lab, at the next address 192.0.2.<n>.
func (l *Lab) Machine() *natlab.Machine {
	l.next++
	return l.Net.AddMachine(fmt.Sprintf("m%d", l.next), netip.AddrFrom4([4]byte{192, 0, 2, l.next}))
}

// Endpoint runs an endpoint with key sk on a magicsock on m's UDP port 41641 (the caller
// closes the endpoint).
func (l *Lab) Endpoint(t testing.TB, m *natlab.Machine, sk key.SecretKey) (*magicsock.Conn, *endpoint.Endpoint) {
	t.Helper()
	pc, err := m.ListenPacket(41641)
	if err != nil {
		t.Fatal(err)
	}
	opts := magicsock.Options{SecretKey: sk, UDP: pc, DialRelay: l.dial}
	if l.viaRelay {
		opts.HomeRelay = meshtest.MemRelayURL
	}
	return run(t, opts)
}

// run starts a magicsock with opts and an endpoint with the same key on it.
func run(t testing.TB, opts magicsock.Options) (*magicsock.Conn, *endpoint.Endpoint) {
	t.Helper()
	ms, err := magicsock.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := endpoint.New(endpoint.Options{SecretKey: opts.SecretKey, Paths: ms})
	if err != nil {
		_ = ms.Close()
		t.Fatal(err)
	}
	return ms, ep
}
