package meshctl

import (
	"net/netip"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestDirectoryOrderingAndExpiry(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	dir := NewDirectory("m", 30*time.Second)
	a, b := key.GenerateSecretKey().Public(), key.GenerateSecretKey().Public()
	addr1 := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
	addr2 := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:2")}
	obs := func(at time.Duration, d Digest) (ChangeKind, bool) {
		c, ok := dir.Observe(t0.Add(at), d)
		return c.Kind, ok
	}
	if k, ok := obs(0, Digest{Node: a, Role: RoleBroker, MeshID: "m", Seq: 10, Addrs: addr1}); !ok || k != Up {
		t.Fatalf("first digest: %v %v", k, ok)
	}
	if _, ok := obs(time.Second, Digest{Node: a, Role: RoleBroker, MeshID: "m", Seq: 10, Addrs: addr2}); ok {
		t.Fatal("replayed seq reported")
	}
	if e, _ := dir.Get(t0.Add(time.Second), a); e.Addrs[0] != addr1[0] {
		t.Fatal("replayed seq replaced the entry")
	}
	if _, ok := obs(time.Second, Digest{Node: a, Role: RoleBroker, MeshID: "other", Seq: 99}); ok {
		t.Fatal("foreign mesh accepted")
	}
	if _, ok := obs(2*time.Second, Digest{Node: a, Role: RoleBroker, MeshID: "m", Seq: 11, Addrs: addr1, Partitions: 5}); ok {
		t.Fatal("load-only change reported")
	}
	if k, ok := obs(3*time.Second, Digest{Node: a, Role: RoleBroker, MeshID: "m", Seq: 12, Addrs: addr2}); !ok || k != Updated {
		t.Fatalf("address change: %v %v", k, ok)
	}
	if k, ok := obs(4*time.Second, Digest{Node: b, Role: RoleGateway, MeshID: "m", Seq: 1}); !ok || k != Up {
		t.Fatal("second node")
	}
	if l := dir.List(t0.Add(5*time.Second), RoleBroker); len(l) != 1 || l[0].Node != a {
		t.Fatalf("brokers: %+v", l)
	}
	if l := dir.List(t0.Add(5*time.Second), 0); len(l) != 2 {
		t.Fatalf("all: %+v", l)
	}
	// a last heard at 3s, b at 4s; staleness 30s.
	if c := dir.Expire(t0.Add(32 * time.Second)); len(c) != 0 {
		t.Fatalf("expired early: %+v", c)
	}
	if l := dir.List(t0.Add(33*time.Second), 0); len(l) != 1 || l[0].Node != b {
		t.Fatalf("a still listed after staleness: %+v", l)
	}
	c := dir.Expire(t0.Add(33 * time.Second))
	if len(c) != 1 || c[0].Kind != Down || c[0].Digest.Node != a {
		t.Fatalf("expire: %+v", c)
	}
	// A restarted a (smaller seq: its clock went back) is accepted once expired.
	if k, ok := obs(34*time.Second, Digest{Node: a, Role: RoleBroker, MeshID: "m", Seq: 3, Addrs: addr1}); !ok || k != Up {
		t.Fatalf("restarted node: %v %v", k, ok)
	}
	if dir.Len() != 2 {
		t.Fatalf("len %d", dir.Len())
	}
}
