package interop

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/discovery"
	"github.com/meshkafka/meshkafka/mesh/discovery/mdns"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// newMDNS starts a Go mDNS service on the real multicast sockets, publishing direct.
func newMDNS(t testing.TB, direct ...netip.AddrPort) (*mdns.Service, key.PublicKey) {
	t.Helper()
	id := key.GenerateSecretKey().Public()
	s, err := mdns.New(mdns.Config{Self: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if len(direct) > 0 {
		s.Publish(discovery.NodeAddr{ID: id, Direct: direct})
	}
	return s, id
}

// TestMDNSRustAndGoFindEachOther: with multicast enabled on loopback, a Rust node (default
// discovery) and a Go node find each other's direct addresses by mDNS, given nothing.
func TestMDNSRustAndGoFindEachOther(t *testing.T) {
	irohnode.RequireNamespace(t)
	if err := irohnode.EnableLoopbackMulticast(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 60*time.Second)
	goAddr := netip.MustParseAddrPort("127.0.0.1:4444")
	svc, goID := newMDNS(t, goAddr)

	rust := rustNode(t, irohnode.NodeOptions{Discovery: true})
	rustID, err := key.ParsePublicKey(rust.ID)
	if err != nil {
		t.Fatal(err)
	}

	// Go finds Rust.
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	got, err := svc.Lookup(lctx, rustID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Go found the Rust node after %v at %v", time.Since(start).Round(time.Millisecond), got.Direct)
	for _, a := range rust.Addr.Addresses {
		if !slices.Contains(got.Direct, netip.MustParseAddrPort(a)) {
			t.Errorf("Rust address %s not announced by mDNS (got %v)", a, got.Direct)
		}
	}

	// Rust finds Go: the announced address lands in its node map, no addNodeAddr.
	start = time.Now()
	for {
		infos, err := rust.RemoteInfos(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(infos, func(ri irohnode.RemoteInfo) bool { return ri.NodeID == goID.String() })
		if i >= 0 && slices.Contains(infos[i].Addrs, goAddr.String()) {
			t.Logf("Rust found the Go node after %v: %+v", time.Since(start).Round(time.Millisecond), infos[i])
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("Rust node does not list the Go node %s at %v: %+v", goID, goAddr, infos)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMDNSGoLAN: several Go nodes on one link discover each other within a few seconds.
func TestMDNSGoLAN(t *testing.T) {
	irohnode.RequireNamespace(t)
	if err := irohnode.EnableLoopbackMulticast(); err != nil {
		t.Fatal(err)
	}
	const n = 6
	svcs := make([]*mdns.Service, n)
	ids := make([]key.PublicKey, n)
	for i := range n {
		svcs[i], ids[i] = newMDNS(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+i)))
	}
	start := time.Now()
	meshtest.LookupAll(t, svcs, ids, func(j int) []netip.AddrPort {
		return []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+j))}
	})
	t.Logf("%d Go nodes found all %d others within %v", n, n-1, time.Since(start).Round(time.Millisecond))
}
